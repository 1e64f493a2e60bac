//! A password-login account that exists only for one `sshd`.
//!
//! OpenSSH built without PAM (`UsePAM no`) checks passwords against `/etc/shadow`. Tests must
//! not change the machine's accounts, so an `sshd` started with a password runs in a private
//! mount namespace (`unshare --mount`) where copies of `/etc/passwd`, `/etc/shadow` and
//! `/etc/group` with one extra account, [`PASSWORD_USER`], are bind-mounted over the real
//! ones. The account's home is in the server's directory. Nothing outside that `sshd` and its
//! sessions sees it, and the namespace ends with them. This needs root with CAP_SYS_ADMIN.
//!
//! The Dropbear harness (`tests/support/dropbear.rs`) runs its server the same way, for the
//! password and for the `authorized_keys` in the account's home.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The account that logs in with the password.
pub const PASSWORD_USER: &str = "sekura-test";

/// `unshare` from util-linux.
pub const UNSHARE: &str = "/usr/bin/unshare";

/// The files to mount over `/etc`, prepared in `dir`.
pub struct PrivateAccounts {
    pub passwd: PathBuf,
    pub shadow: PathBuf,
    pub group: PathBuf,
    pub home: PathBuf,
    pub uid: u32,
}

impl PrivateAccounts {
    /// Copies the system's account files into `dir/etc` with [`PASSWORD_USER`] added (any
    /// system account of that name is left out), its password `password`, and makes its home.
    pub fn prepare(dir: &Path, password: &str) -> PrivateAccounts {
        assert!(
            super::super::is_root(),
            "an sshd with password login needs root (it gives sshd a private /etc/shadow)"
        );
        super::super::require_program(UNSHARE, "util-linux");
        let etc = dir.join("etc");
        std::fs::create_dir_all(&etc).expect("create etc dir");
        let passwd = read_without("/etc/passwd");
        let shadow = read_without("/etc/shadow");
        let group = read_without("/etc/group");
        let uid = (61234..65000)
            .find(|id| !id_taken(&passwd, *id) && !id_taken(&group, *id))
            .expect("a free uid");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("create home");
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).expect("chown home");

        let accounts = PrivateAccounts {
            passwd: etc.join("passwd"),
            shadow: etc.join("shadow"),
            group: etc.join("group"),
            home,
            uid,
        };
        let passwd = format!(
            "{passwd}{PASSWORD_USER}:x:{uid}:{uid}:Sekura test:{}:/bin/sh\n",
            accounts.home.display()
        );
        // Empty aging fields: no expiry, no forced change.
        let shadow = format!("{shadow}{PASSWORD_USER}:{}:::::::\n", crypt(password));
        let group = format!("{group}{PASSWORD_USER}:x:{uid}:\n");
        super::super::write_file(&accounts.passwd, passwd.as_bytes(), 0o644);
        super::super::write_file(&accounts.shadow, shadow.as_bytes(), 0o600);
        super::super::write_file(&accounts.group, group.as_bytes(), 0o644);
        accounts
    }

    /// A command that runs `program` in a new mount namespace with the files mounted over
    /// `/etc`; the process keeps the pid of the command (`unshare` and `sh` exec).
    pub fn command(&self, program: &str) -> Command {
        // Hide nscd, which would answer from the real files.
        let script = "set -e
mount --bind \"$1\" /etc/passwd
mount --bind \"$2\" /etc/shadow
mount --bind \"$3\" /etc/group
if [ -d /run/nscd ]; then mount -t tmpfs none /run/nscd; fi
shift 3
exec \"$@\"";
        let mut cmd = Command::new(UNSHARE);
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
        ])
        .arg("sekura-private-accounts")
        .arg(&self.passwd)
        .arg(&self.shadow)
        .arg(&self.group)
        .arg(program);
        cmd
    }
}

/// A file's lines, without any for [`PASSWORD_USER`], ending with a newline.
fn read_without(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let prefix = format!("{PASSWORD_USER}:");
    let mut kept = String::new();
    for line in text.lines().filter(|line| !line.starts_with(&prefix)) {
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Whether `id` is the third field (uid or gid) of a line.
fn id_taken(file: &str, id: u32) -> bool {
    let id = id.to_string();
    file.lines()
        .any(|line| line.split(':').nth(2) == Some(id.as_str()))
}

/// A SHA-512 crypt(3) hash of `password` (`openssl passwd -6`).
fn crypt(password: &str) -> String {
    use std::io::Write;
    assert!(
        !password.contains('\n'),
        "a test password cannot contain a newline"
    );
    super::super::require_program("/usr/bin/openssl", "openssl");
    let mut child = Command::new("/usr/bin/openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl passwd");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password to openssl");
    let out = child.wait_with_output().expect("wait for openssl passwd");
    assert!(
        out.status.success(),
        "openssl passwd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout)
        .expect("hash is ASCII")
        .trim()
        .to_owned();
    assert!(hash.starts_with("$6$"), "unexpected hash {hash:?}");
    hash
}
