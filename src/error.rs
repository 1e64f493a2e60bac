//! The one error type of the Rust API. Its [`ErrorKind`] maps one to one onto the C API's
//! `ssh_result` codes; its message is what `sekura_last_error()` shows, so it says what
//! happened in a sentence specific enough to act on.

use std::fmt;

/// What class of failure an [`Error`] is. Append-only, like the C codes it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument was invalid (NULL, not UTF-8, out of range, unknown name).
    InvalidArg,
    /// A non-blocking call would have had to wait.
    Again,
    /// A blocking call's timeout elapsed.
    Timeout,
    /// The stream ended.
    Eof,
    /// The transport or channel is closed.
    Closed,
    /// Authentication was refused.
    AuthDenied,
    /// The server's host key was refused, or its signature over the exchange hash was wrong.
    HostKeyRejected,
    /// The peer broke the protocol, or no algorithm could be agreed.
    Protocol,
    /// A system call failed (connect, read, write).
    Io,
    /// A key or key file could not be parsed.
    KeyFormat,
    /// A key file is encrypted and no passphrase was given.
    PasswordRequired,
    /// The passphrase given for a key file is wrong.
    BadPassphrase,
    /// The call is not valid in the current state (for example exec on a used channel).
    State,
    /// The peer refused a request (channel open, exec, ...).
    Refused,
    /// A bug in Sekura (a caught panic, a broken invariant).
    Internal,
    /// A wait could only end if the application read a stream whose unread data reached
    /// the channel's buffer limit.
    BufferFull,
}

/// An error with a human-readable, specific message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A protocol violation or negotiation failure.
    pub fn protocol(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Protocol, message)
    }

    /// A malformed key or key file.
    pub fn key_format(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::KeyFormat, message)
    }

    /// A bad argument.
    pub fn invalid_arg(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArg, message)
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, as `sekura_last_error()` shows it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::wire::WireError> for Error {
    fn from(e: crate::wire::WireError) -> Self {
        Error::protocol(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                Error::new(ErrorKind::Timeout, format!("timed out: {e}"))
            }
            std::io::ErrorKind::UnexpectedEof => {
                Error::new(ErrorKind::Eof, "connection closed by peer")
            }
            _ => Error::new(ErrorKind::Io, e.to_string()),
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
