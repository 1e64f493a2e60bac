//! Channel handles: Paramiko's Channel over the shared connection state.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::shared_connection::{SharedConnection, SEND_QUEUE_LIMIT};
use crate::proto::{Awaited, ChannelId, ChannelState, Connection, ExitStatus, StderrMode, Stream};
use crate::wire::Writer;
use crate::{Error, ErrorKind, Result};

/// The extended data type of standard error (RFC 4254 §5.2).
const EXTENDED_STDERR: u32 = 1;

/// One channel of a transport.
///
/// Thread safety: all methods take `&self`; one thread may read while another writes.
pub struct Channel {
    shared: Arc<SharedConnection>,
    id: ChannelId,
    /// Blocking reads and writes wait this long; `None` forever, zero not at all.
    timeout: Mutex<Option<Duration>>,
    /// How long opening and requests wait for the server's answer.
    request_timeout: Option<Duration>,
    /// The request a caller-driven transport's repeated call resumes.
    request_in_flight: Mutex<Option<String>>,
}

impl Channel {
    /// Sends the open request for a channel of `kind`; the channel is counted as held until
    /// [`Self::finish_open`] hands it over or gives up.
    pub(super) fn begin_open(
        shared: &SharedConnection,
        kind: &str,
        extra: &[u8],
    ) -> Result<ChannelId> {
        shared.with(|c| {
            let id = c.open_channel_of(kind, extra)?;
            c.channel_retain(id);
            Ok(id)
        })
    }

    /// Waits for the peer's answer to opening `id`. "Would block" keeps the channel for
    /// the repeated call; any other failure lets it go.
    pub(super) fn finish_open(
        shared: Arc<SharedConnection>,
        id: ChannelId,
        timeout: Option<Duration>,
        kind: &str,
    ) -> Result<Channel> {
        let answer = shared.wait_channel(id, timeout, "the peer to open the channel", |c| match &c
            .channel(id)?
            .state
        {
            ChannelState::Opening => None,
            ChannelState::Open => Some(Ok(())),
            ChannelState::OpenFailed {
                reason,
                description,
            } => Some(Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "the peer refused to open a {kind} channel: {description} \
                         (reason {reason})"
                ),
            ))),
            ChannelState::Closed => Some(Err(Error::new(
                ErrorKind::Closed,
                "channel closed while opening",
            ))),
        });
        match answer {
            Ok(()) => Ok(Channel::adopt(shared, id, timeout)),
            Err(e) if e.kind() == ErrorKind::Again => Err(e),
            Err(e) => {
                // Dropping the handle releases the count begin_open made (and its waker).
                drop(Channel::adopt(shared, id, timeout));
                Err(e)
            }
        }
    }

    /// A handle on channel `id`, counted so that the channel lives as long as a handle does.
    pub(super) fn attach(
        shared: Arc<SharedConnection>,
        id: ChannelId,
        timeout: Option<Duration>,
    ) -> Channel {
        shared.with(|c| c.channel_retain(id));
        Channel::adopt(shared, id, timeout)
    }

    /// A handle taking over a count already made for it (a server's accepted channel).
    pub(super) fn adopt(
        shared: Arc<SharedConnection>,
        id: ChannelId,
        timeout: Option<Duration>,
    ) -> Channel {
        Channel {
            shared,
            id,
            timeout: Mutex::new(None),
            request_timeout: timeout,
            request_in_flight: Mutex::new(None),
        }
    }

    /// A descriptor that is readable while the channel has something new to report: data
    /// waiting, an EOF no read has returned yet, an exit status or a close not yet seen, or a
    /// dead connection. Once a read has returned the EOF it stays quiet until the exit
    /// status or the close arrives. For select, poll or epoll; it belongs to the channel and
    /// must not be closed by the caller.
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
        let resumed = {
            let mut in_flight = self.request_in_flight.lock();
            match in_flight.take() {
                Some(k) if k == kind => true,
                Some(k) => {
                    let e = format!("the {k} request is still in progress: repeat that call");
                    *in_flight = Some(k);
                    return Err(Error::new(ErrorKind::State, e));
                }
                None => false,
            }
        };
        if !resumed {
            let id = self.id;
            self.shared
                .with(|c| c.channel_request(id, kind, true, body))?;
        }
        let answer = self.await_reply(kind);
        if answer.as_ref().is_err_and(|e| e.kind() == ErrorKind::Again) {
            *self.request_in_flight.lock() = Some(kind.to_owned());
        }
        answer
    }

    fn await_reply(&self, kind: &str) -> Result<()> {
        let id = self.id;
        let ok = self.shared.wait_channel(
            id,
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
            if matches!(kind, "exec" | "shell" | "subsystem") {
                // Nothing started: the session may still run something else.
                self.shared.with(|c| {
                    if let Some(ch) = c.channel_mut(id) {
                        ch.unstarted_session = true;
                    }
                });
            }
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

    /// Waits with the channel timeout until `ready` answers. Once the wait blocks, the
    /// channel knows what it waits for (see [`crate::proto::Channel::wait_begin`]), so that
    /// output nobody reads cannot deadlock it.
    fn wait_for<R>(
        &self,
        awaited: Awaited,
        what: &str,
        mut ready: impl FnMut(&mut Connection) -> Option<Result<R>>,
    ) -> Result<R> {
        let id = self.id;
        let timeout = self.io_timeout();
        let mut registered = false;
        let result = self.shared.wait_channel(id, timeout, what, |c| {
            let answer = ready(c);
            if answer.is_some() && registered {
                registered = false;
                c.channel_wait_end(id, awaited);
            } else if answer.is_none() && !registered && self.shared.may_block(timeout) {
                registered = true;
                c.channel_wait_begin(id, awaited);
            }
            answer
        });
        // A wait that ended in a timeout or a dead connection is still registered.
        if registered {
            self.shared.with(|c| c.channel_wait_end(id, awaited));
        }
        result
    }

    fn read(&self, out: &mut [u8], stream: Stream) -> Result<usize> {
        let id = self.id;
        self.wait_for(Awaited::Data(stream), "channel data", |c| {
            let Some(ch) = c.channel(id) else {
                return Some(Err(gone()));
            };
            if !ch.buffer(stream).is_empty() || out.is_empty() {
                return Some(c.channel_read(id, out, stream));
            }
            // EOF only when the server said so or we closed; a dead connection says why.
            if ch.eof_received || ch.close_received || ch.close_sent {
                let closed = ch.state == ChannelState::Closed;
                if let Some(ch) = c.channel_mut(id) {
                    ch.eof_reported = true;
                    ch.close_reported |= closed;
                }
                return Some(Ok(0));
            }
            if let Some(e) = c.error() {
                return Some(Err(e.clone()));
            }
            if ch.unstarted_session {
                return Some(Err(not_started()));
            }
            ch.stalled_by(Awaited::Data(stream))
                .map(|blocking| Err(stalled(ch, blocking, stream.name())))
        })
    }

    /// Reads standard output; 0 means EOF.
    pub fn recv(&self, out: &mut [u8]) -> Result<usize> {
        self.read(out, Stream::Stdout)
    }

    /// Reads standard error (extended data type 1); 0 means EOF.
    pub fn recv_stderr(&self, out: &mut [u8]) -> Result<usize> {
        self.read(out, Stream::Stderr)
    }

    /// Sets how far an unread stream may grow past the SSH window while a call waits for
    /// the other stream or the exit status ([`crate::proto::DEFAULT_BUFFER_LIMIT`] unless
    /// set; 0 keeps both within the window). Past it the wait fails, naming the stream.
    pub fn set_buffer_limit(&self, limit: usize) -> Result<()> {
        let id = self.id;
        self.shared.with(|c| c.channel_set_buffer_limit(id, limit))
    }

    /// Sets where standard error arriving from now on goes: its own stream, merged into
    /// standard output, or discarded (Paramiko's set_combine_stderr).
    pub fn set_stderr_mode(&self, mode: StderrMode) -> Result<()> {
        let id = self.id;
        self.shared.with(|c| c.channel_set_stderr_mode(id, mode))
    }

    /// True when [`Self::send`] would take some data without waiting: the channel is open,
    /// the peer's window has room and the send queue is below its limit.
    pub fn send_ready(&self) -> bool {
        let conn = self.shared.state.lock();
        conn.error().is_none()
            && conn.pending_transmit() < SEND_QUEUE_LIMIT
            && conn.channel(self.id).is_some_and(|c| {
                c.state == ChannelState::Open && !c.close_sent && !c.eof_sent && c.remote_window > 0
            })
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
            .wait_channel(id, self.io_timeout(), "the channel window to open", |c| {
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
        let id = self.id;
        self.shared.with(|c| {
            let dead = c.error().is_some();
            match c.channel_mut(id) {
                None => true,
                Some(ch) => {
                    let closed = ch.state == ChannelState::Closed || ch.close_sent;
                    let ready = ch.exit.is_some() || closed || dead;
                    if ready {
                        note_exit_seen(ch);
                    }
                    ready
                }
            }
        })
    }

    /// How the command ended, if that is known yet.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let id = self.id;
        self.shared.with(|c| {
            let ch = c.channel_mut(id)?;
            let exit = ch.exit.clone()?;
            note_exit_seen(ch);
            Some(exit)
        })
    }

    /// Waits for how the command ended: exit code or signal. Never guesses: a channel that
    /// closed without either is an error. Waits with the channel timeout.
    pub fn recv_exit_status(&self) -> Result<ExitStatus> {
        let id = self.id;
        self.wait_for(Awaited::Exit, "the exit status", |c| {
            let Some(ch) = c.channel_mut(id) else {
                return Some(Err(gone()));
            };
            let closed = ch.state == ChannelState::Closed || ch.close_sent;
            if ch.exit.is_some() || closed {
                note_exit_seen(ch);
            }
            match (&ch.exit, closed) {
                (Some(exit), _) => Some(Ok(exit.clone())),
                (None, true) => Some(Err(Error::new(
                    ErrorKind::Eof,
                    "the channel closed without an exit status",
                ))),
                (None, false) if ch.unstarted_session => Some(Err(not_started())),
                (None, false) => ch
                    .stalled_by(Awaited::Exit)
                    .map(|blocking| Err(stalled(ch, blocking, "the exit status"))),
            }
        })
        .map_err(|e| match e.kind() {
            ErrorKind::Closed => Error::new(
                ErrorKind::Eof,
                "the connection closed without an exit status",
            ),
            _ => e,
        })
    }

    /// Closes the channel; buffered data stays readable, and every thread blocked on the
    /// channel returns at once.
    pub fn close(&self) -> Result<()> {
        let id = self.id;
        let result = self.shared.with(|c| c.channel_close(id));
        self.shared.wake_channel(id);
        result
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
            self.shared.forget_waker(id);
        }
    }
}

/// The exit status (or the close that replaces it) has been seen by the application.
fn note_exit_seen(ch: &mut crate::proto::channel::Channel) {
    ch.exit_reported |= ch.exit.is_some();
    ch.close_reported |= ch.state == ChannelState::Closed;
}

/// The error for a read or exit status wait on a session that runs nothing.
fn not_started() -> Error {
    Error::new(
        ErrorKind::State,
        "nothing runs on this session channel: start a command, shell or subsystem first",
    )
}

/// The error for a wait that only reading `blocking` could end.
fn stalled(ch: &crate::proto::channel::Channel, blocking: Stream, what: &str) -> Error {
    let switch = match blocking {
        Stream::Stderr => ", merge or discard standard error (stderr mode)",
        Stream::Stdout => "",
    };
    Error::new(
        ErrorKind::BufferFull,
        format!(
            "waiting for {what}, but {} bytes of {} are unread and fill the channel's buffer \
             (limit {} bytes past the window): read {}{switch}, or raise the buffer limit",
            ch.buffer(blocking).len(),
            blocking.name(),
            ch.buffer_limit,
            blocking.name(),
        ),
    )
}

/// The error for a channel the connection no longer knows.
fn gone() -> Error {
    Error::new(ErrorKind::Closed, "the channel is gone")
}
