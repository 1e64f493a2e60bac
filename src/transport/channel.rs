//! Channel handles: Paramiko's Channel over the shared connection state.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::io::{Shared, SEND_QUEUE_LIMIT};
use crate::proto::{ChannelId, ChannelState, ExitStatus};
use crate::wire::Writer;
use crate::{Error, ErrorKind, Result};

/// The extended data type of standard error (RFC 4254 §5.2).
const EXTENDED_STDERR: u32 = 1;

/// One channel of a transport.
///
/// Thread safety: all methods take `&self`; one thread may read while another writes.
pub struct Channel {
    shared: Arc<Shared>,
    id: ChannelId,
    /// Blocking reads and writes wait this long; `None` forever, zero not at all.
    timeout: Mutex<Option<Duration>>,
    /// How long opening and requests wait for the server's answer.
    request_timeout: Option<Duration>,
}

impl Channel {
    pub(super) fn open(
        shared: Arc<Shared>,
        timeout: Option<Duration>,
        kind: &str,
        extra: &[u8],
    ) -> Result<Channel> {
        let id = shared.with(|c| c.open_channel_of(kind, extra))?;
        let channel = Channel::attach(shared, id, timeout);
        channel.shared.wait(timeout, "the server to open the channel", |c| match &c.channel(id)?.state {
            ChannelState::Opening => None,
            ChannelState::Open => Some(Ok(())),
            ChannelState::OpenFailed { reason, description } => Some(Err(Error::new(
                ErrorKind::Refused,
                format!("the server refused to open a session channel: {description} (reason {reason})"),
            ))),
            ChannelState::Closed => Some(Err(Error::new(ErrorKind::Closed, "channel closed while opening"))),
        })?;
        Ok(channel)
    }

    /// A handle on channel `id`, counted so that the channel lives as long as a handle does.
    pub(super) fn attach(shared: Arc<Shared>, id: ChannelId, timeout: Option<Duration>) -> Channel {
        shared.with(|c| c.channel_retain(id));
        Channel::adopt(shared, id, timeout)
    }

    /// A handle taking over a count already made for it (a server's accepted channel).
    pub(super) fn adopt(shared: Arc<Shared>, id: ChannelId, timeout: Option<Duration>) -> Channel {
        Channel {
            shared,
            id,
            timeout: Mutex::new(None),
            request_timeout: timeout,
        }
    }

    /// A descriptor that is readable exactly while [`Self::recv`] or [`Self::recv_stderr`]
    /// would not block: data waiting, EOF, close, or a dead connection. For select, poll or
    /// epoll; it belongs to the channel and must not be closed by the caller.
    pub fn fileno(&self) -> Result<std::os::fd::RawFd> {
        let id = self.id;
        let shared = &self.shared;
        shared.with(|c| shared.readiness.fd(c, id))
    }

    /// This channel's number (the one server callbacks are given).
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Sets the timeout of blocking reads and writes: `None` blocks, zero never waits.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        *self.timeout.lock() = timeout;
    }

    fn io_timeout(&self) -> Option<Duration> {
        *self.timeout.lock()
    }

    /// Sends a request and waits for the server's answer.
    pub(super) fn request(&self, kind: &str, body: &[u8]) -> Result<()> {
        let id = self.id;
        self.shared
            .with(|c| c.channel_request(id, kind, true, body))?;
        let ok = self.shared.wait(
            self.request_timeout,
            "the server to answer the channel request",
            |c| match c.channel_take_reply(id) {
                Some(reply) => Some(Ok(reply)),
                None if c
                    .channel(id)
                    .is_none_or(|ch| ch.state == ChannelState::Closed) =>
                {
                    Some(Err(Error::new(
                        ErrorKind::Closed,
                        "channel closed before the server answered",
                    )))
                }
                None => None,
            },
        )?;
        if ok {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Refused,
                format!("the server refused the {kind} request"),
            ))
        }
    }

    /// Sends a request that wants no reply.
    pub(super) fn notify(&self, kind: &str, body: &[u8]) -> Result<()> {
        let id = self.id;
        self.shared
            .with(|c| c.channel_request(id, kind, false, body))
    }

    /// Runs `command` on the server.
    pub fn exec(&self, command: &str) -> Result<()> {
        let mut body = Writer::new();
        body.string(command);
        self.request("exec", body.as_bytes())
    }

    fn read(&self, out: &mut [u8], stderr: bool) -> Result<usize> {
        let id = self.id;
        self.shared
            .wait(self.io_timeout(), "channel data", |c| {
                let Some(ch) = c.channel(id) else {
                    return Some(Err(gone()));
                };
                let buffered = if stderr {
                    ch.stderr.len()
                } else {
                    ch.stdout.len()
                };
                if buffered > 0 || out.is_empty() {
                    return Some(c.channel_read(id, out, stderr));
                }
                // EOF only when the server said so; a connection that died says why.
                if ch.eof_received || ch.close_received {
                    return Some(Ok(0));
                }
                c.error().map(|e| Err(e.clone()))
            })
            .map_err(|e| again_on_zero_timeout(e, self.io_timeout()))
    }

    /// Reads standard output; 0 means EOF.
    pub fn recv(&self, out: &mut [u8]) -> Result<usize> {
        self.read(out, false)
    }

    /// Reads standard error (extended data type 1); 0 means EOF.
    pub fn recv_stderr(&self, out: &mut [u8]) -> Result<usize> {
        self.read(out, true)
    }

    /// Sends as much of `data` as the window allows now (waiting for some window if none);
    /// returns the count sent.
    pub fn send(&self, data: &[u8]) -> Result<usize> {
        self.send_stream(data, None)
    }

    /// Sends standard error data (extended data type 1), as [`Self::send`] does stdout.
    pub fn send_stderr(&self, data: &[u8]) -> Result<usize> {
        self.send_stream(data, Some(EXTENDED_STDERR))
    }

    /// Sends all of `data` as standard error, waiting for window space as needed.
    pub fn sendall_stderr(&self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = self.send_stderr(data)?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    fn send_stream(&self, data: &[u8], extended: Option<u32>) -> Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let id = self.id;
        self.shared
            .wait(self.io_timeout(), "the channel window to open", |c| {
                if c.pending_transmit() >= SEND_QUEUE_LIMIT {
                    return None;
                }
                let mut sent = 0;
                while sent < data.len() && c.pending_transmit() < SEND_QUEUE_LIMIT {
                    match c.channel_send(id, data.get(sent..).unwrap_or_default(), extended) {
                        Ok(0) => break,
                        Ok(n) => sent += n,
                        Err(e) => return Some(Err(e)),
                    }
                }
                (sent > 0).then_some(Ok(sent))
            })
            .map_err(|e| again_on_zero_timeout(e, self.io_timeout()))
    }

    /// Sends all of `data`, waiting for window space as needed.
    pub fn sendall(&self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = self.send(data)?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Tells the server no more data follows.
    pub fn send_eof(&self) -> Result<()> {
        let id = self.id;
        self.shared.with(|c| c.channel_eof(id))
    }

    /// True once the server sent EOF or closed the channel.
    pub fn eof_received(&self) -> bool {
        self.shared
            .state
            .lock()
            .channel(self.id)
            .is_none_or(|c| c.at_eof())
    }

    /// True once exit-status or exit-signal arrived, or the channel closed without one.
    pub fn exit_status_ready(&self) -> bool {
        let conn = self.shared.state.lock();
        conn.channel(self.id)
            .is_none_or(|c| c.exit.is_some() || c.state == ChannelState::Closed)
            || conn.error().is_some()
    }

    /// How the command ended, if that is known yet.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.shared.state.lock().channel(self.id)?.exit.clone()
    }

    /// Waits for how the command ended: exit code or signal. Never guesses: a channel that
    /// closed without either is an error. Waits with the channel timeout.
    pub fn recv_exit_status(&self) -> Result<ExitStatus> {
        let id = self.id;
        self.shared
            .wait(self.io_timeout(), "the exit status", |c| {
                let Some(ch) = c.channel(id) else {
                    return Some(Err(gone()));
                };
                match (&ch.exit, &ch.state) {
                    (Some(exit), _) => Some(Ok(exit.clone())),
                    (None, ChannelState::Closed) => Some(Err(Error::new(
                        ErrorKind::Eof,
                        "the channel closed without an exit status",
                    ))),
                    _ => None,
                }
            })
            .map_err(|e| match e.kind() {
                ErrorKind::Closed => Error::new(
                    ErrorKind::Eof,
                    "the connection closed without an exit status",
                ),
                _ => again_on_zero_timeout(e, self.io_timeout()),
            })
    }

    /// Closes the channel; buffered data stays readable.
    pub fn close(&self) -> Result<()> {
        let id = self.id;
        self.shared.with(|c| c.channel_close(id))
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let id = self.id;
        let last = self.shared.with(|c| {
            c.channel_release(id);
            c.channel(id).is_none_or(|ch| ch.handles_left() == 0)
        });
        if last {
            self.shared.readiness.forget(id);
        }
    }
}

/// The error for a channel the connection no longer knows.
fn gone() -> Error {
    Error::new(ErrorKind::Closed, "the channel is gone")
}

/// A zero timeout is non-blocking mode: "would block" rather than "timed out".
fn again_on_zero_timeout(e: Error, timeout: Option<Duration>) -> Error {
    if e.kind() == ErrorKind::Timeout && timeout == Some(Duration::ZERO) {
        Error::new(ErrorKind::Again, "the operation would block")
    } else {
        e
    }
}
