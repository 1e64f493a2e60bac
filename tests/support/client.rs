//! Sekura's client against a real server of the harness ([`Sshd`] or [`Dropbear`]):
//! connecting, logging in with a user key, running commands on sessions, and the keys Sekura
//! generates itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKey, PrivateKeyFormat, PublicKey};
use sekura::proto::ExitStatus;
use sekura::transport::{Channel, Transport};

use super::{Dropbear, Sshd, ENCRYPTED_KEY_PASSPHRASE};

/// Connect, handshake, authentication and channel timeouts: generous, only there so that a
/// bug fails a test instead of hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A private server of the harness that Sekura's client logs in to.
pub trait Server {
    /// The port on 127.0.0.1.
    fn port(&self) -> u16;
    /// The account whose user keys are authorized.
    fn user(&self) -> &str;
    /// The private key file of a user key kind.
    fn user_key_file(&self, kind: &str) -> PathBuf;
    /// The passphrase of that key file, if it is encrypted.
    fn user_key_passphrase(&self, _kind: &str) -> Option<&'static [u8]> {
        None
    }
    /// The fingerprint (`SHA256:<base64>`) of the server's host key of a kind.
    fn host_key_fingerprint(&self, kind: &str) -> String;
}

impl Server for Sshd {
    fn port(&self) -> u16 {
        self.port
    }
    fn user(&self) -> &str {
        &self.user
    }
    fn user_key_file(&self, kind: &str) -> PathBuf {
        self.user_key(kind)
    }
    fn user_key_passphrase(&self, kind: &str) -> Option<&'static [u8]> {
        (kind == "ed25519-enc").then_some(ENCRYPTED_KEY_PASSPHRASE.as_bytes())
    }
    fn host_key_fingerprint(&self, kind: &str) -> String {
        Sshd::host_key_fingerprint(self, kind)
    }
}

impl Server for Dropbear {
    fn port(&self) -> u16 {
        self.port
    }
    fn user(&self) -> &str {
        &self.user
    }
    fn user_key_file(&self, kind: &str) -> PathBuf {
        self.user_key(kind)
    }
    fn host_key_fingerprint(&self, kind: &str) -> String {
        Dropbear::host_key_fingerprint(self, kind)
    }
}

/// A connected, not yet started transport to `server`.
pub fn connect(server: &impl Server) -> Transport {
    super::driven::connect_on_driver(server.port(), TIMEOUT)
}

/// The user key of `kind`, loaded (with its passphrase if it has one).
pub fn user_key(server: &impl Server, kind: &str) -> PrivateKey {
    PrivateKey::from_file(
        &server.user_key_file(kind),
        server.user_key_passphrase(kind),
    )
    .unwrap_or_else(|e| panic!("load the {kind} user key: {e}"))
}

/// Authenticates the started transport `t` with the ed25519 user key.
pub fn auth_ed25519(t: &Transport, server: &impl Server) {
    t.auth_publickey(server.user(), &user_key(server, "ed25519"))
        .expect("publickey auth");
}

/// Connects, runs the key exchange and authenticates with the ed25519 user key.
pub fn login(server: &impl Server) -> Transport {
    log_in(connect(server), server)
}

/// As [`login`], on the transport's threads whatever the suite's driver: for tests of
/// what those threads do.
pub fn login_threaded(server: &impl Server) -> Transport {
    let t = Transport::connect("127.0.0.1", server.port(), Some(TIMEOUT))
        .unwrap_or_else(|e| panic!("connect to the private server: {e}"));
    log_in(t, server)
}

fn log_in(t: Transport, server: &impl Server) -> Transport {
    t.start_client().expect("key exchange");
    auth_ed25519(&t, server);
    t
}

/// Opens a session with a channel timeout of [`TIMEOUT`] and runs `command`.
pub fn exec(t: &Transport, command: &str) -> sekura::Result<Channel> {
    let ch = t.open_session()?;
    ch.set_timeout(Some(TIMEOUT));
    ch.exec(command)?;
    Ok(ch)
}

/// Reads stdout (or stderr) until EOF.
pub fn read_to_end(ch: &Channel, stderr: bool) -> sekura::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = if stderr {
            ch.recv_stderr(&mut buf)?
        } else {
            ch.recv(&mut buf)?
        };
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Runs `command` on a new session: (stdout, stderr, exit status).
pub fn run(t: &Transport, command: &str) -> sekura::Result<(String, String, ExitStatus)> {
    let ch = exec(t, command)?;
    let stdout = read_to_end(&ch, false)?;
    let stderr = read_to_end(&ch, true)?;
    let status = ch.recv_exit_status()?;
    Ok((
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
        status,
    ))
}

/// Asserts that `command` prints `expected` and exits 0.
pub fn assert_runs(t: &Transport, command: &str, expected: &str) {
    let (stdout, stderr, status) =
        run(t, command).unwrap_or_else(|e| panic!("running {command:?}: {:?}: {e}", e.kind()));
    assert_eq!(
        stdout, expected,
        "stdout of {command:?} (stderr {stderr:?})"
    );
    assert_eq!(status, ExitStatus::Code(0), "exit status of {command:?}");
}

/// The connection's error, whether a read on it reported it or returned EOF.
pub fn connection_error(t: &Transport, read: sekura::Result<usize>) -> sekura::Error {
    match read {
        Err(e) => e,
        Ok(_) => t.global_request("x", &[], false).unwrap_err(),
    }
}

/// The passphrase of [`generated_user_keys`]' files.
pub const GENERATED_KEY_PASSPHRASE: &[u8] = b"generated pass";

/// A key of every type Sekura generates (RSA with 2048 bits), each written to a file in
/// `dir` with [`GENERATED_KEY_PASSPHRASE`] and read back from it; asserts that the key read
/// back is the one generated.
pub fn generated_user_keys(dir: &Path) -> Vec<(KeyType, PrivateKey)> {
    [
        (KeyType::Ed25519, None),
        (KeyType::EcdsaP256, None),
        (KeyType::EcdsaP384, None),
        (KeyType::EcdsaP521, None),
        (KeyType::Rsa, Some(2048)),
        (KeyType::Dsa, None),
    ]
    .into_iter()
    .map(|(key_type, bits)| {
        let generated = PrivateKey::generate(key_type, bits, &mut OsRandom).unwrap();
        let path = dir.join(format!("id_{}", key_type.name()));
        generated
            .write_file(
                &path,
                PrivateKeyFormat::OpenSsh,
                Some(GENERATED_KEY_PASSPHRASE),
                &mut OsRandom,
            )
            .unwrap();
        let key = PrivateKey::from_file(&path, Some(GENERATED_KEY_PASSPHRASE)).unwrap();
        assert_eq!(key.public_key(), generated.public_key());
        (key_type, key)
    })
    .collect()
}

/// Appends `key` to the `authorized_keys` file at `path`.
pub fn authorize(path: &Path, key: &PublicKey) {
    let line = format!("{}\n", key.to_openssh());
    let mut authorized = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::io::Write::write_all(&mut authorized, line.as_bytes())
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

/// Runs `command` (one that outlives the check) on a new session of the logged-in `t`, turns
/// on our keepalive (every second, two unanswered allowed), then stops (SIGSTOP) every
/// process the server `server_pid` forked: asserts that the read waiting on the session fails
/// within 6 s with a Timeout naming the keepalive, and that the transport is dead.
pub fn assert_keepalive_detects_a_stopped_server(t: &Transport, server_pid: u32, command: &str) {
    let ch = exec(t, command).unwrap();
    t.set_keepalive(Duration::from_secs(1), 2).unwrap();
    let stopped = super::descendants(server_pid);
    assert!(
        !stopped.is_empty(),
        "no connection process of the server found"
    );
    super::signal(&stopped, "STOP");
    let start = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let result = ch.recv(&mut buf);
    let elapsed = start.elapsed();
    super::signal(&stopped, "CONT");
    assert!(!t.is_active(), "the transport must be dead");
    let err = connection_error(t, result);
    assert_eq!(err.kind(), sekura::ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("keepalive"), "{err}");
    assert!(
        elapsed < Duration::from_secs(6),
        "took {elapsed:?} for 1 s × 2 keepalives"
    );
}
