//! A private OpenSSH `sshd` for one test.
//!
//! Each server has its own directory (`<temp>/sekura-sshd-<pid>-<n>`) holding its
//! configuration, host keys, user keys, `authorized_keys`, `known_hosts` and log; it listens on
//! a free port of 127.0.0.1 and lets the current user log in (root here, with
//! `PermitRootLogin yes`). Dropping the [`Sshd`] kills the server and removes the directory,
//! except when the test is panicking: then the directory is kept and the log printed.

pub mod keys;
pub mod password;

pub use keys::{ENCRYPTED_KEY_PASSPHRASE, HOST_KEY_KINDS, SSH_KEYGEN, USER_KEY_KINDS};
pub use password::PASSWORD_USER;

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::process::{keep_dir, read_lossy, stop_server, wait_for_log, wait_until_listening};

/// OpenSSH's server.
pub const SSHD: &str = "/usr/sbin/sshd";
/// OpenSSH's SFTP server, the `sftp` subsystem.
pub const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// How long a server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free ports are tried when another process takes the port first.
const START_ATTEMPTS: usize = 5;

/// How to start an [`Sshd`]. `SshdOptions::default()` is what [`Sshd::start`] uses.
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// `sshd_config` lines. They are placed before the harness's own lines, because `sshd`
    /// keeps the first value of a keyword: `KexAlgorithms curve25519-sha256` here replaces the
    /// default list. Lines from the first `Match` on go at the end of the file.
    pub extra_config: Vec<String>,
    /// Adds a password-login account, [`PASSWORD_USER`] with this password, visible only to
    /// this server (see [`Sshd::password_user`]). Needs root with CAP_SYS_ADMIN.
    pub password: Option<String>,
    /// New host keys for this server instead of the ones shared by the test process (for
    /// tests where two servers must not share a key).
    pub fresh_host_keys: bool,
}

/// A running private `sshd`. See the module documentation.
pub struct Sshd {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The server's directory (removed on drop).
    pub dir: PathBuf,
    /// The user whose keys are authorized: the current user.
    pub user: String,
    password: Option<String>,
    child: Child,
}

impl Sshd {
    /// Starts a server with the default options.
    pub fn start() -> Sshd {
        Sshd::start_with(SshdOptions::default())
    }

    /// Starts a server and waits until it is listening (its log says so), at most
    /// [`START_TIMEOUT`]. Panics with the server's log and stderr if it exits or times out.
    pub fn start_with(opts: SshdOptions) -> Sshd {
        super::require_program(SSHD, "openssh-server");
        super::require_program(SFTP_SERVER, "openssh-sftp-server");
        if super::is_root() {
            // The privilege separation directory; normally made by the system's service.
            std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let dir = super::fresh_dir("sshd");
        let user = super::current_user();
        write_keys(&dir, &opts);
        let accounts = opts
            .password
            .as_deref()
            .map(|pw| password::PrivateAccounts::prepare(&dir, pw));

        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = super::free_port();
            let config = dir.join("sshd_config");
            super::write_file(&config, config_text(&dir, port, &opts).as_bytes(), 0o644);
            write_known_hosts(&dir, port);
            let log = dir.join("sshd.log");
            super::write_file(&log, b"", 0o644);

            let mut cmd = match &accounts {
                Some(accounts) => accounts.command(SSHD),
                None => Command::new(SSHD),
            };
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(File::create(dir.join("sshd.stdout")).expect("create sshd.stdout"))
                .stderr(File::create(dir.join("sshd.stderr")).expect("create sshd.stderr"));
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {SSHD}: {e}"));

            let listening = format!("Server listening on 127.0.0.1 port {port}.");
            let outcome = wait_until_listening(&mut child, START_TIMEOUT, |_| {
                read_lossy(&log).contains(&listening)
            });
            let report = || {
                format!(
                    "attempt {attempt}, port {port}: sshd {}\n--- sshd.log:\n{}--- stderr:\n{}",
                    outcome.as_ref().err().map_or("", |e| e.as_str()),
                    read_lossy(&log),
                    read_lossy(&dir.join("sshd.stderr"))
                )
            };
            match outcome {
                Ok(()) => {
                    return Sshd {
                        port,
                        dir,
                        user,
                        password: opts.password,
                        child,
                    }
                }
                Err(_) if read_lossy(&log).contains("Address already in use") => {
                    failures.push_str(&report());
                }
                Err(_) => {
                    let mut message = report();
                    if accounts.is_some() {
                        message.push_str(
                            "(with a password, sshd runs under `unshare --mount`, which needs \
                             root with CAP_SYS_ADMIN: in Docker, --privileged or \
                             --cap-add SYS_ADMIN)\n",
                        );
                    }
                    keep_dir("sshd", &dir);
                    panic!(
                        "private sshd failed to start ({}):\n{message}",
                        dir.display()
                    );
                }
            }
        }
        keep_dir("sshd", &dir);
        panic!("private sshd found no free port in {START_ATTEMPTS} attempts:\n{failures}");
    }

    /// 127.0.0.1 and the port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The private host key file of a kind: "ed25519", "ecdsa" (nistp256) or "rsa" (3072 bits).
    pub fn host_key(&self, kind: &str) -> PathBuf {
        assert!(
            HOST_KEY_KINDS.iter().any(|(k, _)| *k == kind),
            "no host key kind {kind:?}; kinds: ed25519, ecdsa, rsa"
        );
        self.dir.join(format!("ssh_host_{kind}_key"))
    }

    /// The public host key file of a kind (see [`Sshd::host_key`]).
    pub fn host_key_pub(&self, kind: &str) -> PathBuf {
        with_pub(self.host_key(kind))
    }

    /// The host key's fingerprint, `SHA256:<base64 without padding>` as OpenSSH prints it.
    pub fn host_key_fingerprint(&self, kind: &str) -> String {
        keys::fingerprint(&self.host_key_pub(kind))
    }

    /// The name the host keys are listed under in [`Sshd::known_hosts`]:
    /// `[127.0.0.1]:port`. Through a relay, give it to OpenSSH as `HostKeyAlias`.
    pub fn host_key_alias(&self) -> String {
        format!("[127.0.0.1]:{}", self.port)
    }

    /// An OpenSSH `ssh` command for this server as [`Sshd::user`], checking host keys against
    /// [`Sshd::known_hosts`] (see [`super::openssh::ssh_command`]); add `-i`, then the command.
    pub fn ssh_command(&self) -> Command {
        super::openssh::ssh_command(self.port, &self.user, &self.known_hosts())
    }

    /// A known_hosts file listing every host key for `[127.0.0.1]:port`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// An authorized user private key (OpenSSH format): "ed25519", "ecdsa" (nistp256), "rsa"
    /// (3072 bits), unencrypted, or "ed25519-enc", encrypted with
    /// [`ENCRYPTED_KEY_PASSPHRASE`].
    pub fn user_key(&self, kind: &str) -> PathBuf {
        assert!(
            USER_KEY_KINDS.contains(&kind),
            "no user key kind {kind:?}; kinds: {USER_KEY_KINDS:?}"
        );
        self.dir.join(format!("id_{}", kind.replace('-', "_")))
    }

    /// The public half of [`Sshd::user_key`].
    pub fn user_key_pub(&self, kind: &str) -> PathBuf {
        with_pub(self.user_key(kind))
    }

    /// An unencrypted ed25519 private key that is not authorized, for denial tests.
    pub fn unauthorized_key(&self) -> PathBuf {
        self.dir.join("id_unauthorized")
    }

    /// The `authorized_keys` file, shared by the current user and [`PASSWORD_USER`].
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }

    /// The `sshd_config` the server runs with.
    pub fn config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    /// The account and password for password login. Panics unless the server was started
    /// with [`SshdOptions::password`].
    pub fn password_user(&self) -> (String, String) {
        let password = self
            .password
            .clone()
            .expect("password_user: start the Sshd with SshdOptions { password: Some(..) }");
        (PASSWORD_USER.to_owned(), password)
    }

    /// The server's log so far (`sshd -E`, `LogLevel VERBOSE` unless overridden).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("sshd.log"))
    }

    /// Waits until the log contains `needle` and returns the log; panics with the log after
    /// `timeout`. The server writes its log after the client has seen the outcome, so tests
    /// that assert on the log wait for it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        wait_for_log("sshd", || self.log(), needle, timeout)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Connections already accepted are served by child processes of their own (in their
        // own sessions); they end when their clients disconnect.
        let dir = self.dir.clone();
        stop_server("sshd", &mut self.child, &dir, || {
            read_lossy(&dir.join("sshd.log"))
        });
    }
}

fn with_pub(path: PathBuf) -> PathBuf {
    let mut name = path.into_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes host keys, user keys and `authorized_keys` into `dir`.
fn write_keys(dir: &std::path::Path, opts: &SshdOptions) {
    let shared = keys::shared();
    let fresh;
    let host = if opts.fresh_host_keys {
        fresh = keys::generate_host_keys();
        &fresh
    } else {
        &shared.host
    };
    for (kind, pair) in host {
        let path = dir.join(format!("ssh_host_{kind}_key"));
        super::write_file(&path, &pair.private, 0o600);
        super::write_file(
            &with_pub(path),
            format!("{}\n", pair.public).as_bytes(),
            0o644,
        );
    }
    let mut authorized = String::new();
    for (kind, pair) in &shared.user {
        let path = dir.join(format!("id_{}", kind.replace('-', "_")));
        super::write_file(&path, &pair.private, 0o600);
        super::write_file(
            &with_pub(path),
            format!("{}\n", pair.public).as_bytes(),
            0o644,
        );
        authorized.push_str(&pair.public);
        authorized.push('\n');
    }
    let path = dir.join("id_unauthorized");
    super::write_file(&path, &shared.unauthorized.private, 0o600);
    let public = format!("{}\n", shared.unauthorized.public);
    super::write_file(&with_pub(path), public.as_bytes(), 0o644);
    super::write_file(&dir.join("authorized_keys"), authorized.as_bytes(), 0o644);
}

/// `known_hosts` for `[127.0.0.1]:port` with every host key in `dir`.
fn write_known_hosts(dir: &std::path::Path, port: u16) {
    let mut text = String::new();
    for (kind, _) in HOST_KEY_KINDS {
        let public = read_lossy(&dir.join(format!("ssh_host_{kind}_key.pub")));
        let mut fields = public.split_whitespace();
        let (key_type, blob) = (
            fields.next().expect("key type"),
            fields.next().expect("key"),
        );
        text.push_str(&format!("[127.0.0.1]:{port} {key_type} {blob}\n"));
    }
    super::write_file(&dir.join("known_hosts"), text.as_bytes(), 0o644);
}

/// Algorithms the server offers, those of each list that this OpenSSH knows (so an older
/// OpenSSH without, say, sntrup761x25519-sha512 still starts). Legacy ones are on too: the
/// client's preferences decide, and tests narrow the server with `extra_config`.
const WANTED_ALGORITHMS: [(&str, &str, &[&str]); 5] = [
    (
        "KexAlgorithms",
        "kex",
        &[
            "mlkem768x25519-sha256",
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group14-sha256",
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1",
        ],
    ),
    (
        "Ciphers",
        "cipher",
        &[
            "chacha20-poly1305@openssh.com",
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-cbc",
            "aes192-cbc",
            "aes256-cbc",
        ],
    ),
    (
        "MACs",
        "mac",
        &[
            "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com",
            "hmac-sha1-etm@openssh.com",
            "umac-64-etm@openssh.com",
            "umac-128-etm@openssh.com",
            "hmac-sha2-256",
            "hmac-sha2-512",
            "hmac-sha1",
            "umac-64@openssh.com",
            "umac-128@openssh.com",
        ],
    ),
    (
        "HostKeyAlgorithms",
        "HostKeyAlgorithms",
        &[
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ],
    ),
    (
        "PubkeyAcceptedAlgorithms",
        "PubkeyAcceptedAlgorithms",
        &[
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
            "ssh-ed25519-cert-v01@openssh.com",
            "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            "rsa-sha2-512-cert-v01@openssh.com",
            "rsa-sha2-256-cert-v01@openssh.com",
        ],
    ),
];

/// `(keyword, comma-separated list)` for each of [`WANTED_ALGORITHMS`], computed once.
fn algorithm_lines() -> &'static [(String, String)] {
    static LINES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    LINES.get_or_init(|| {
        super::require_program(super::openssh::SSH, "openssh-client");
        WANTED_ALGORITHMS
            .iter()
            .map(|(keyword, query, wanted)| {
                let out = Command::new(super::openssh::SSH)
                    .args(["-Q", query])
                    .output()
                    .expect("run ssh -Q");
                assert!(out.status.success(), "ssh -Q {query} failed");
                let known = String::from_utf8_lossy(&out.stdout).into_owned();
                let known: Vec<&str> = known.lines().map(str::trim).collect();
                let list: Vec<&str> = wanted
                    .iter()
                    .copied()
                    .filter(|name| known.contains(name))
                    .collect();
                assert!(!list.is_empty(), "this OpenSSH knows none of our {keyword}");
                (keyword.to_string(), list.join(","))
            })
            .collect()
    })
}

/// The whole `sshd_config`.
fn config_text(dir: &std::path::Path, port: u16, opts: &SshdOptions) -> String {
    let split = opts
        .extra_config
        .iter()
        .position(|line| {
            let first = line.split_whitespace().next().unwrap_or("");
            first.eq_ignore_ascii_case("Match")
        })
        .unwrap_or(opts.extra_config.len());
    let (before, after) = opts.extra_config.split_at(split);
    let d = dir.display();

    let mut text = String::from("# Written by Sekura's test harness (tests/support/sshd.rs).\n");
    for line in before {
        text.push_str(line);
        text.push('\n');
    }
    // SHLVL=1 keeps the user's bash (as a nested shell) from sourcing ~/.bashrc for each
    // command, whose tools (pyenv's rehash) write to stderr when sessions run at once.
    text.push_str(&format!(
        "ListenAddress 127.0.0.1
Port {port}
AddressFamily inet
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication yes
PermitEmptyPasswords no
PubkeyAuthentication yes
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
AcceptEnv SEKURA_*
SetEnv SHLVL=1
Subsystem sftp {SFTP_SERVER}
"
    ));
    for (kind, _) in HOST_KEY_KINDS {
        text.push_str(&format!("HostKey {d}/ssh_host_{kind}_key\n"));
    }
    for (keyword, list) in algorithm_lines() {
        text.push_str(&format!("{keyword} {list}\n"));
    }
    for line in after {
        text.push_str(line);
        text.push('\n');
    }
    text
}
