//! A private Dropbear server for one test: a second SSH implementation to check the client
//! against, with its own key exchange, channel and window code.
//!
//! Each server has its own directory (`<temp>/sekura-dropbear-<pid>-<n>`) holding its host
//! keys (made by `dropbearkey`, in Dropbear's format, which is the only one the server reads),
//! a log (`dropbear -E`) and a pid file. It listens on a free port of 127.0.0.1 and is stopped
//! by its process id on drop.
//!
//! Dropbear has no option naming an `authorized_keys` file: it reads the one in the home
//! directory of the user logging in. So that no real home directory is read or written, the
//! server runs in a private mount namespace with a test account, [`PASSWORD_USER`], whose home
//! is in the server's directory (the mechanism of `sshd`'s password user, see
//! [`super::sshd::password`]). The user keys (made by `ssh-keygen`, in OpenSSH's format) are
//! listed in that home's `.ssh/authorized_keys`, and the account has a password. This needs
//! root with CAP_SYS_ADMIN, as the password tests against `sshd` do.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::process::{keep_dir, read_lossy, stop_server, wait_for_log, wait_until_listening};

use super::sshd::keys::{self, KeyPair, Spec};
use super::sshd::password::PrivateAccounts;
use super::sshd::PASSWORD_USER;

/// Dropbear's server.
pub const DROPBEAR: &str = "/usr/sbin/dropbear";
/// Dropbear's key generator.
pub const DROPBEARKEY: &str = "/usr/bin/dropbearkey";
/// How long a server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free ports are tried when another process takes the port first.
const START_ATTEMPTS: usize = 5;
/// Dropbear refuses more than four `-r` host keys.
pub const MAX_HOST_KEYS: usize = 4;

/// Host key kinds and the `dropbearkey` arguments that make them.
pub const DROPBEAR_HOST_KEY_KINDS: [(&str, &[&str]); 6] = [
    ("ed25519", &["-t", "ed25519"]),
    ("ecdsa256", &["-t", "ecdsa", "-s", "256"]),
    ("ecdsa384", &["-t", "ecdsa", "-s", "384"]),
    ("ecdsa521", &["-t", "ecdsa", "-s", "521"]),
    ("rsa", &["-t", "rsa", "-s", "3072"]),
    ("dss", &["-t", "dss"]),
];

/// User key kinds and the `ssh-keygen` arguments that make them; all are authorized.
pub const DROPBEAR_USER_KEY_KINDS: [(&str, &[&str]); 5] = [
    ("ed25519", &["-t", "ed25519"]),
    ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
    ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
    ("ecdsa521", &["-t", "ecdsa", "-b", "521"]),
    ("rsa", &["-t", "rsa", "-b", "3072"]),
];

/// How to start a [`Dropbear`]. `DropbearOptions::default()` is what [`Dropbear::start`] uses.
#[derive(Clone, Debug)]
pub struct DropbearOptions {
    /// The host key kinds the server loads (at most [`MAX_HOST_KEYS`]; kinds from
    /// [`DROPBEAR_HOST_KEY_KINDS`]). Default: ed25519, ecdsa256, ecdsa384, rsa.
    pub host_keys: Vec<&'static str>,
    /// The password of [`PASSWORD_USER`].
    pub password: String,
    /// Further `dropbear` arguments, e.g. `-K 1` (server keepalives) or `-W 1048576`
    /// (receive window).
    pub extra_args: Vec<String>,
}

impl Default for DropbearOptions {
    fn default() -> Self {
        DropbearOptions {
            host_keys: vec!["ed25519", "ecdsa256", "ecdsa384", "rsa"],
            password: "Sekura-dropbear-pw-1".into(),
            extra_args: Vec::new(),
        }
    }
}

/// A running private Dropbear. See the module documentation.
pub struct Dropbear {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The server's directory (removed on drop).
    pub dir: PathBuf,
    /// The account that logs in, by key or by password: [`PASSWORD_USER`].
    pub user: String,
    /// Its password.
    pub password: String,
    host_keys: Vec<&'static str>,
    child: Child,
}

impl Dropbear {
    /// Starts a server with the default options.
    pub fn start() -> Dropbear {
        Dropbear::start_with(DropbearOptions::default())
    }

    /// Starts a server and waits until it listens, at most [`START_TIMEOUT`]. Panics with the
    /// server's log if it exits or times out.
    pub fn start_with(opts: DropbearOptions) -> Dropbear {
        super::require_program(DROPBEAR, "dropbear-bin");
        super::require_program(DROPBEARKEY, "dropbear-bin");
        assert!(
            super::is_root(),
            "a private dropbear needs root with CAP_SYS_ADMIN: it runs in a mount namespace \
             with a test account whose home holds authorized_keys"
        );
        assert!(
            !opts.host_keys.is_empty() && opts.host_keys.len() <= MAX_HOST_KEYS,
            "dropbear takes 1 to {MAX_HOST_KEYS} host keys, not {:?}",
            opts.host_keys
        );
        let dir = super::fresh_dir("dropbear");
        let keys = shared_keys();
        for kind in &opts.host_keys {
            let key = &keys.host(kind).key;
            super::write_file(&host_key_path(&dir, kind), &key.private, 0o600);
        }
        let accounts = PrivateAccounts::prepare(&dir, &opts.password);
        let ssh_dir = accounts.home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).expect("create .ssh");
        let mut authorized = String::new();
        for (kind, pair) in &keys.user {
            let path = dir.join(format!("id_{kind}"));
            super::write_file(&path, &pair.private, 0o600);
            authorized.push_str(&pair.public);
            authorized.push('\n');
        }
        super::write_file(
            &dir.join("id_unauthorized"),
            &keys.unauthorized.private,
            0o600,
        );
        super::write_file(
            &ssh_dir.join("authorized_keys"),
            authorized.as_bytes(),
            0o644,
        );

        let log = dir.join("dropbear.log");
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = super::free_port();
            super::write_file(&log, b"", 0o644);
            let mut cmd = accounts.command(DROPBEAR);
            cmd.args(["-F", "-E", "-p"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-P")
                .arg(dir.join("dropbear.pid"));
            for kind in &opts.host_keys {
                cmd.arg("-r").arg(host_key_path(&dir, kind));
            }
            cmd.args(&opts.extra_args)
                .stdin(Stdio::null())
                .stdout(File::create(dir.join("dropbear.stdout")).expect("create stdout"))
                .stderr(File::options().append(true).open(&log).expect("open log"));
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {DROPBEAR}: {e}"));

            let outcome = wait_until_listening(&mut child, START_TIMEOUT, |child| {
                listens_on(child.id(), port)
            });
            match outcome {
                Ok(()) => {
                    return Dropbear {
                        port,
                        dir,
                        user: PASSWORD_USER.to_owned(),
                        password: opts.password,
                        host_keys: opts.host_keys,
                        child,
                    }
                }
                Err(why) => {
                    let report = format!(
                        "attempt {attempt}, port {port}: dropbear {why}\n--- log:\n{}",
                        read_lossy(&log)
                    );
                    if read_lossy(&log).contains("Address already in use") {
                        failures.push_str(&report);
                        continue;
                    }
                    keep_dir("dropbear", &dir);
                    panic!(
                        "private dropbear failed to start ({}):\n{report}(dropbear runs under \
                         `unshare --mount`, which needs root with CAP_SYS_ADMIN: in Docker, \
                         --privileged or --cap-add SYS_ADMIN)",
                        dir.display()
                    );
                }
            }
        }
        keep_dir("dropbear", &dir);
        panic!("private dropbear found no free port in {START_ATTEMPTS} attempts:\n{failures}");
    }

    /// 127.0.0.1 and the port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The listening server's process id (connections are served by forked children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The host key kinds this server loaded.
    pub fn host_keys(&self) -> &[&'static str] {
        &self.host_keys
    }

    /// The host key fingerprint of a kind this server loaded, `SHA256:<base64>` as
    /// `dropbearkey -y` prints it.
    pub fn host_key_fingerprint(&self, kind: &str) -> String {
        assert!(
            self.host_keys.contains(&kind),
            "this dropbear has no {kind} host key, only {:?}",
            self.host_keys
        );
        shared_keys().host(kind).fingerprint.clone()
    }

    /// The public line (`type base64 comment`) of a host key kind this server loaded.
    pub fn host_key_public(&self, kind: &str) -> String {
        assert!(self.host_keys.contains(&kind), "no {kind} host key");
        shared_keys().host(kind).key.public.clone()
    }

    /// A known_hosts file listing the host keys this server loaded, for
    /// `[127.0.0.1]:port`.
    pub fn known_hosts(&self) -> PathBuf {
        let path = self.dir.join("known_hosts");
        let mut text = String::new();
        for kind in &self.host_keys {
            let public = self.host_key_public(kind);
            text.push_str(&format!(
                "[127.0.0.1]:{} {}\n",
                self.port,
                public
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        super::write_file(&path, text.as_bytes(), 0o644);
        path
    }

    /// An OpenSSH `ssh` command for this server as [`Dropbear::user`], checking host keys
    /// against [`Dropbear::known_hosts`] (see [`super::openssh::ssh_command`]); add `-i`,
    /// then the command.
    pub fn ssh_command(&self) -> Command {
        super::openssh::ssh_command(self.port, &self.user, &self.known_hosts())
    }

    /// An authorized user private key (OpenSSH format, unencrypted): a kind of
    /// [`DROPBEAR_USER_KEY_KINDS`].
    pub fn user_key(&self, kind: &str) -> PathBuf {
        assert!(
            DROPBEAR_USER_KEY_KINDS.iter().any(|(k, _)| *k == kind),
            "no user key kind {kind:?}"
        );
        self.dir.join(format!("id_{kind}"))
    }

    /// The public line of [`Dropbear::user_key`].
    pub fn user_key_public(&self, kind: &str) -> String {
        shared_keys()
            .user
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, pair)| pair.public.clone())
            .unwrap_or_else(|| panic!("no user key kind {kind:?}"))
    }

    /// The `authorized_keys` file in [`Dropbear::user`]'s home (append to authorize more).
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("home").join(".ssh").join("authorized_keys")
    }

    /// An unencrypted ed25519 private key that is not authorized, for denial tests.
    pub fn unauthorized_key(&self) -> PathBuf {
        self.dir.join("id_unauthorized")
    }

    /// The server's log so far (its stderr, `-E`).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("dropbear.log"))
    }

    /// Waits until the log contains `needle` and returns the log; panics with the log after
    /// `timeout`. Dropbear logs an outcome after the client has seen it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        wait_for_log("dropbear", || self.log(), needle, timeout)
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        // Only the listener, by its pid: connections already accepted are served by forked
        // children, which end when their clients disconnect.
        let dir = self.dir.clone();
        stop_server("dropbear", &mut self.child, &dir, || {
            read_lossy(&dir.join("dropbear.log"))
        });
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`: the socket's inode
/// in `/proc/net/tcp` is one of the process's descriptors. (A connection attempt would not
/// tell whose listener answered: another test's server may have taken the port.)
fn listens_on(pid: u32, port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let sockets: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), inode.
            match (fields.get(1), fields.get(3), fields.get(9)) {
                (Some(addr), Some(&"0A"), Some(inode)) if *addr == local => {
                    Some(format!("socket:[{inode}]"))
                }
                _ => None,
            }
        })
        .collect();
    if sockets.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
            .unwrap_or(false)
    })
}

fn host_key_path(dir: &Path, kind: &str) -> PathBuf {
    dir.join(format!("dropbear_{kind}_host_key"))
}

/// A Dropbear host key and its fingerprint as `dropbearkey` computes it.
pub struct HostKey {
    pub key: KeyPair,
    pub fingerprint: String,
}

/// The keys of every server in this test process.
pub struct DropbearKeys {
    /// By [`DROPBEAR_HOST_KEY_KINDS`] kind.
    pub host: Vec<(&'static str, HostKey)>,
    /// By [`DROPBEAR_USER_KEY_KINDS`] kind.
    pub user: Vec<(&'static str, KeyPair)>,
    /// Not authorized anywhere.
    pub unauthorized: KeyPair,
}

impl DropbearKeys {
    fn host(&self, kind: &str) -> &HostKey {
        self.host
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, key)| key)
            .unwrap_or_else(|| panic!("no dropbear host key kind {kind:?}"))
    }
}

/// The process-wide keys, generated on first use, every generator running at once.
pub fn shared_keys() -> &'static DropbearKeys {
    static KEYS: OnceLock<DropbearKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = super::fresh_dir("dropbear-keygen");
        let host: Vec<_> = DROPBEAR_HOST_KEY_KINDS
            .iter()
            .map(|&(kind, args)| {
                let file = dir.join(format!("host-{kind}"));
                let child = Command::new(DROPBEARKEY)
                    .args(args)
                    .arg("-f")
                    .arg(&file)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn dropbearkey");
                (kind, file, child)
            })
            .collect();
        // The user keys, by ssh-keygen, while dropbearkey runs.
        let mut specs: Vec<Spec> = DROPBEAR_USER_KEY_KINDS
            .iter()
            .map(|&(kind, args)| Spec {
                role: "dropbear-user",
                kind,
                args,
                passphrase: "",
            })
            .collect();
        specs.push(Spec {
            role: "dropbear-unauthorized",
            kind: "ed25519",
            args: &["-t", "ed25519"],
            passphrase: "",
        });
        let mut user = keys::generate(&specs);
        let unauthorized = user.pop().expect("unauthorized key").1;
        let host = host
            .into_iter()
            .map(|(kind, file, child)| {
                let out = child.wait_with_output().expect("wait for dropbearkey");
                assert!(
                    out.status.success(),
                    "generating the dropbear {kind} host key failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                (kind, read_dropbear_key(&file))
            })
            .collect();
        std::fs::remove_dir_all(&dir).expect("remove keygen dir");
        DropbearKeys {
            host,
            user,
            unauthorized,
        }
    })
}

/// A Dropbear private key file, with the public line and fingerprint `dropbearkey -y` prints.
fn read_dropbear_key(file: &Path) -> HostKey {
    let out = Command::new(DROPBEARKEY)
        .arg("-y")
        .arg("-f")
        .arg(file)
        .output()
        .expect("run dropbearkey -y");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dropbearkey -y {}: {text}",
        file.display()
    );
    let public = text
        .lines()
        .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"))
        .unwrap_or_else(|| panic!("no public key line in dropbearkey -y output:\n{text}"))
        .trim()
        .to_owned();
    let fingerprint = text
        .lines()
        .find_map(|l| l.strip_prefix("Fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in dropbearkey -y output:\n{text}"))
        .trim()
        .to_owned();
    assert!(
        fingerprint.starts_with("SHA256:"),
        "dropbearkey fingerprint {fingerprint:?} is not SHA256"
    );
    HostKey {
        key: KeyPair {
            private: std::fs::read(file).expect("read dropbear key"),
            public,
        },
        fingerprint,
    }
}
