//! An ssh-agent client (Paramiko's Agent and AgentKey): list the agent's keys and have it
//! sign with them, over the Unix socket named by `SSH_AUTH_SOCK`.
//!
//! Each request is one round trip on one connection, under a lock, within a deadline
//! ([`Agent::DEFAULT_TIMEOUT`] unless changed): a hung agent cannot hang the caller, and an
//! agent's lengths and counts are checked before anything is allocated for them (the
//! `protocol` module). After a failed round trip the connection is dropped and the next
//! request opens a new one, so a desynchronised stream is never read again.

mod protocol;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::PublicKey;

/// A key held by an ssh-agent (Paramiko's AgentKey): its public half and the comment the
/// agent gave it (usually the file it was loaded from). Sign with [`Agent::sign`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentKey {
    /// The public key.
    pub public: PublicKey,
    /// The agent's comment for the key.
    pub comment: String,
}

/// The connection and its settings, behind the lock.
#[derive(Debug)]
struct Connection {
    stream: Option<UnixStream>,
    timeout: Duration,
}

/// A connection to an ssh-agent (Paramiko's Agent).
///
/// Thread safety: `Send + Sync`; requests from several threads take turns on the one
/// connection.
#[derive(Debug)]
pub struct Agent {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl Agent {
    /// How long one request may take, from sending it to the last byte of the answer, unless
    /// changed with [`Agent::set_timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the agent named by the `SSH_AUTH_SOCK` environment variable. When it is
    /// unset or empty, or the socket does not answer, the error is [`ErrorKind::Io`] with a
    /// message starting "ssh-agent unavailable".
    pub fn connect() -> Result<Agent> {
        Agent::connect_auth_sock(std::env::var_os("SSH_AUTH_SOCK"))
    }

    /// [`Agent::connect`] with the variable's value given.
    fn connect_auth_sock(value: Option<std::ffi::OsString>) -> Result<Agent> {
        match value {
            Some(path) if !path.is_empty() => Agent::connect_path(PathBuf::from(path)),
            _ => Err(Error::new(
                ErrorKind::Io,
                "ssh-agent unavailable: SSH_AUTH_SOCK is not set",
            )),
        }
    }

    /// Connects to the agent listening on the Unix socket at `path`. Failure is
    /// [`ErrorKind::Io`] with a message starting "ssh-agent unavailable" and naming the path.
    pub fn connect_path(path: impl AsRef<Path>) -> Result<Agent> {
        let path = path.as_ref().to_path_buf();
        let stream = open(&path)?;
        Ok(Agent {
            path,
            connection: Mutex::new(Connection {
                stream: Some(stream),
                timeout: Agent::DEFAULT_TIMEOUT,
            }),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets how long one request may take; a zero duration is taken as one millisecond.
    pub fn set_timeout(&self, timeout: Duration) {
        self.connection.lock().timeout = timeout.max(Duration::from_millis(1));
    }

    /// Lists the agent's keys (Paramiko's `get_keys`), in the agent's order. Keys of types
    /// Sekura cannot use (certificates, security keys, DSA) are left out.
    ///
    /// Errors: [`ErrorKind::Refused`] when the agent answers with a failure,
    /// [`ErrorKind::Timeout`] when it does not answer in time, [`ErrorKind::Protocol`] for a
    /// malformed or oversized answer, [`ErrorKind::Io`] when the connection fails.
    pub fn identities(&self) -> Result<Vec<AgentKey>> {
        let answer = self.request(&protocol::request_identities())?;
        let identities = protocol::parse_identities(&answer)?;
        Ok(identities
            .into_iter()
            .filter_map(|id| {
                PublicKey::from_blob(&id.blob).ok().map(|public| AgentKey {
                    public,
                    comment: id.comment,
                })
            })
            .collect())
    }

    /// Has the agent sign `data` with `key` using `algorithm` ("ssh-ed25519",
    /// "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", ...; for RSA keys
    /// the SSH_AGENT_RSA_SHA2_256/512 flag is chosen from it). Returns the SSH signature
    /// blob (`string algorithm, string signature`), checked to be of `algorithm` and to
    /// verify with the key.
    ///
    /// Errors: [`ErrorKind::InvalidArg`] for an algorithm the key cannot make,
    /// [`ErrorKind::Refused`] when the agent refuses (for example it does not hold the key),
    /// [`ErrorKind::Protocol`] for a signature of another algorithm or one that does not
    /// verify, and as [`Agent::identities`].
    pub fn sign(&self, key: &AgentKey, data: &[u8], algorithm: &str) -> Result<Vec<u8>> {
        self.sign_with_public_key(&key.public, data, algorithm)
    }

    /// [`Agent::sign`] with the key given by its public half (for example a key listed
    /// earlier, or one the caller knows the agent holds).
    pub fn sign_with_public_key(
        &self,
        key: &PublicKey,
        data: &[u8],
        algorithm: &str,
    ) -> Result<Vec<u8>> {
        if !key.signature_algorithms(true).contains(&algorithm) {
            return Err(Error::invalid_arg(format!(
                "signature algorithm {algorithm:?} cannot be made with a {} key",
                key.key_type()
            )));
        }
        let body = protocol::sign_request(key.as_blob(), data, protocol::sign_flags(algorithm));
        let answer = self.request(&body)?;
        let describe = || format!("{} key {}", key.key_type(), key.fingerprint_sha256());
        let signature = protocol::parse_sign_response(&answer, || {
            Error::new(
                ErrorKind::Refused,
                format!("ssh-agent refused to sign with {}", describe()),
            )
        })?;
        key.verify(algorithm, data, &signature).map_err(|e| {
            Error::protocol(format!(
                "ssh-agent returned a bad {algorithm} signature for {}: {}",
                describe(),
                e.message()
            ))
        })?;
        Ok(signature)
    }

    /// One round trip: sends `body` framed, returns the answer's body. On any failure the
    /// connection is dropped (the next request reconnects).
    fn request(&self, body: &[u8]) -> Result<Vec<u8>> {
        let request = protocol::frame(body)?;
        let mut connection = self.connection.lock();
        let timeout = connection.timeout;
        let mut stream = match connection.stream.take() {
            Some(stream) => stream,
            None => open(&self.path)?,
        };
        let deadline = Instant::now() + timeout;
        let answer = round_trip(&mut stream, &request, deadline).map_err(|e| match e {
            RoundTripError::Io(e) => self.io_error(&e, timeout),
            RoundTripError::Frame(e) => e,
        })?;
        connection.stream = Some(stream);
        Ok(answer)
    }

    fn io_error(&self, e: &std::io::Error, timeout: Duration) -> Error {
        let path = self.path.display();
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Error::new(
                ErrorKind::Timeout,
                format!("ssh-agent at {path} did not answer within {timeout:?}"),
            ),
            std::io::ErrorKind::UnexpectedEof => Error::new(
                ErrorKind::Io,
                format!("ssh-agent at {path} closed the connection"),
            ),
            _ => Error::new(
                ErrorKind::Io,
                format!("ssh-agent at {path}: connection failed: {e}"),
            ),
        }
    }
}

/// Connects to the socket at `path`.
fn open(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!(
                "ssh-agent unavailable: cannot connect to {}: {e}",
                path.display()
            ),
        )
    })
}

enum RoundTripError {
    Io(std::io::Error),
    Frame(Error),
}

impl From<std::io::Error> for RoundTripError {
    fn from(e: std::io::Error) -> Self {
        RoundTripError::Io(e)
    }
}

/// Writes `request` and reads one framed answer, all before `deadline`.
fn round_trip(
    stream: &mut UnixStream,
    request: &[u8],
    deadline: Instant,
) -> std::result::Result<Vec<u8>, RoundTripError> {
    write_all_by(stream, request, deadline)?;
    let mut header = [0u8; 4];
    read_exact_by(stream, &mut header, deadline)?;
    let length = protocol::frame_length(header).map_err(RoundTripError::Frame)?;
    let mut body = vec![0u8; length];
    read_exact_by(stream, &mut body, deadline)?;
    Ok(body)
}

/// The time left before `deadline`, or a timeout error.
fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut))
}

fn read_exact_by(
    stream: &mut UnixStream,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<()> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(rest) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_all_by(stream: &mut UnixStream, buf: &[u8], deadline: Instant) -> std::io::Result<()> {
    let mut written = 0;
    while let Some(rest) = buf.get(written..).filter(|r| !r.is_empty()) {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        match stream.write(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
