//! The connection protocol's channels (RFC 4254 §5-6): open, windows, data, EOF, close,
//! requests and their replies. Each channel buffers what arrived up to its window; the window
//! is re-opened only as the application reads, so a slow reader slows the sender.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, VecDeque};

use super::msg;
use crate::wire::{Reader, Writer};
use crate::{Error, Result};

/// Our channel number.
pub type ChannelId = u32;

/// The window we grant a channel unless configured otherwise: what the peer may send
/// before we have read it.
pub const WINDOW_SIZE: u32 = 2 * 1024 * 1024;
/// Largest data packet we accept unless configured otherwise.
pub const MAX_PACKET: u32 = 32 * 1024;

/// What a channel lets its peer send: the window granted, re-opened as the application
/// reads, and the largest data packet accepted. Fixed per channel when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimits {
    pub window: u32,
    pub max_packet: u32,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            window: WINDOW_SIZE,
            max_packet: MAX_PACKET,
        }
    }
}

impl ChannelLimits {
    /// Limits within what SSH allows: a packet of at least 1 KiB (RFC 4254 implementations
    /// must take 32 KiB; we never ask less than 1 KiB), a window of at least one packet.
    pub fn new(window: u32, max_packet: u32) -> ChannelLimits {
        let max_packet = max_packet.clamp(1024, 256 * 1024);
        ChannelLimits {
            window: window.max(max_packet),
            max_packet,
        }
    }
}
/// Largest data packet we send, whatever the peer allows.
const MAX_SEND_PACKET: u32 = 32 * 1024;
/// How far a stream nobody reads may grow past the window while the application waits for
/// another stream or the exit status, unless the application sets its own limit.
pub const DEFAULT_BUFFER_LIMIT: usize = 64 * 1024 * 1024;

/// One of a session's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// CHANNEL_DATA.
    Stdout,
    /// CHANNEL_EXTENDED_DATA of type 1.
    Stderr,
}

impl Stream {
    /// The stream's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "standard output",
            Stream::Stderr => "standard error",
        }
    }

    const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];
}

/// What the application blocks for on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// Data (or EOF) on one stream.
    Data(Stream),
    /// The exit status (or the close).
    Exit,
}

impl Awaited {
    const ALL: [Awaited; 3] = [
        Awaited::Data(Stream::Stdout),
        Awaited::Data(Stream::Stderr),
        Awaited::Exit,
    ];

    fn counts_against(self, stream: Stream) -> bool {
        self != Awaited::Data(stream)
    }
}

/// A count per stream.
#[derive(Debug, Default)]
struct PerStream<T> {
    stdout: T,
    stderr: T,
}

impl<T: Copy> PerStream<T> {
    fn get(&self, stream: Stream) -> T {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }

    fn get_mut(&mut self, stream: Stream) -> &mut T {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

/// Application threads blocked on a channel, per thing awaited.
#[derive(Debug, Default)]
struct Waiters {
    data: PerStream<u32>,
    exit: u32,
}

impl Waiters {
    fn count(&mut self, awaited: Awaited) -> &mut u32 {
        match awaited {
            Awaited::Data(stream) => self.data.get_mut(stream),
            Awaited::Exit => &mut self.exit,
        }
    }

    fn any(&self, awaited: Awaited) -> bool {
        match awaited {
            Awaited::Data(stream) => self.data.get(stream) > 0,
            Awaited::Exit => self.exit > 0,
        }
    }
}

/// Where standard error goes (Paramiko's set_combine_stderr, libssh2's MERGE and IGNORE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StderrMode {
    /// Its own stream.
    #[default]
    Separate,
    /// Into standard output, in arrival order.
    Merge,
    /// Dropped on arrival.
    Discard,
}

/// Lifecycle of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// CHANNEL_OPEN sent, no answer yet.
    Opening,
    /// Open and usable.
    Open,
    /// The peer refused to open it.
    OpenFailed { reason: u32, description: String },
    /// Both sides sent CHANNEL_CLOSE (or the connection ended).
    Closed,
}

/// How a remote command ended (RFC 4254 §6.10): a code or a signal, never a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit-status.
    Code(u32),
    /// exit-signal: signal name without "SIG", whether core was dumped, error message.
    Signal {
        name: String,
        core_dumped: bool,
        message: String,
    },
}

impl std::fmt::Display for ExitStatus {
    /// "exit status 3", or "killed by signal TERM (core dumped) message".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit status {code}"),
            ExitStatus::Signal {
                name,
                core_dumped,
                message,
            } => {
                write!(f, "killed by signal {name}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                if !message.is_empty() {
                    write!(f, " {message}")?;
                }
                Ok(())
            }
        }
    }
}

/// Bytes received and not yet read by the application.
#[derive(Debug, Default)]
pub struct RecvBuffer {
    bytes: Vec<u8>,
    read: usize,
}

impl RecvBuffer {
    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.read
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, data: &[u8]) {
        if self.read > 0 && self.read == self.bytes.len() {
            self.bytes.clear();
            self.read = 0;
        } else if self.read > self.bytes.len() / 2 && self.read > 64 * 1024 {
            self.bytes.drain(..self.read);
            self.read = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Copies up to `out.len()` bytes out.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let avail = self.bytes.get(self.read..).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.read += n;
        n
    }
}

/// One channel's state.
#[derive(Debug)]
pub struct Channel {
    pub state: ChannelState,
    remote_id: u32,
    /// Bytes the peer may still send us.
    local_window: u32,
    /// Bytes the application has read since we last re-opened the window.
    consumed: u32,
    /// Per stream, unread bytes whose window was already re-opened, so that reading them
    /// does not re-open it twice.
    prepaid: PerStream<usize>,
    /// Application threads blocked on this channel, per thing awaited.
    waiters: Waiters,
    /// How far an unread stream may grow past the window while somebody waits for
    /// something else; 0 keeps every stream within the window.
    pub buffer_limit: usize,
    pub stderr_mode: StderrMode,
    /// A session we opened that no exec, shell or subsystem request has started yet.
    pub unstarted_session: bool,
    /// This side sent the CHANNEL_OPEN: only then may the peer confirm or refuse it.
    pub opened_here: bool,
    /// What we let the peer send on this channel.
    pub limits: ChannelLimits,
    /// What the application has already been told: the EOF (a read returned 0), the exit
    /// status, the close. The pollable descriptor reports only what is new.
    pub eof_reported: bool,
    pub exit_reported: bool,
    pub close_reported: bool,
    /// What arrived as CHANNEL_DATA.
    pub stdout: RecvBuffer,
    /// What arrived as CHANNEL_EXTENDED_DATA type 1.
    pub stderr: RecvBuffer,
    pub eof_received: bool,
    pub close_received: bool,
    /// Bytes we may still send.
    pub remote_window: u32,
    remote_max_packet: u32,
    pub eof_sent: bool,
    pub close_sent: bool,
    pub exit: Option<ExitStatus>,
    /// Requests sent with want_reply, oldest first, whose replies have not arrived.
    awaiting_replies: usize,
    /// Replies (true = success) not yet taken by the application.
    pub replies: VecDeque<bool>,
    /// Application handles on this channel; it is forgotten when the last one goes.
    handles: u32,
}

impl Channel {
    /// Application handles still open on this channel.
    pub fn handles_left(&self) -> u32 {
        self.handles
    }

    /// True while there is something the application has not been told: unread data, an
    /// EOF no read has returned, an exit status or a close not yet seen.
    pub fn has_news(&self) -> bool {
        let read_ended = self.at_eof() || self.close_sent;
        !self.stdout.is_empty()
            || !self.stderr.is_empty()
            || (read_ended && !self.eof_reported)
            || (self.exit.is_some() && !self.exit_reported)
            || (self.state == ChannelState::Closed && !self.close_reported)
    }

    /// True once the peer can send nothing more: EOF or close received.
    pub fn at_eof(&self) -> bool {
        self.eof_received || self.close_received || self.state == ChannelState::Closed
    }

    /// The unread bytes of `stream`.
    pub fn buffer(&self, stream: Stream) -> &RecvBuffer {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    fn buffer_mut(&mut self, stream: Stream) -> &mut RecvBuffer {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Re-opens the window by what the application read from `stream` and returns the
    /// WINDOW_ADJUST to send, if one is due.
    pub fn on_read(&mut self, n: usize, stream: Stream) -> Option<Vec<u8>> {
        let prepaid = self.prepaid.get_mut(stream);
        let already = n.min(*prepaid);
        *prepaid -= already;
        self.credit(n - already)
    }

    /// True while some application thread waits for something other than `stream`.
    fn waited_around(&self, stream: Stream) -> bool {
        Awaited::ALL
            .into_iter()
            .any(|a| a.counts_against(stream) && self.waiters.any(a))
    }

    /// How many unread bytes of `stream` may have their window re-opened before being read.
    /// Standard error always gets a window of its own, so that a reader of stdout alone is
    /// not stalled by it; while somebody waits for something else, either stream may grow
    /// to the buffer limit, so that the wait never deadlocks on output nobody reads.
    fn prepay_limit(&self, stream: Stream) -> usize {
        let own = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => self.limits.window as usize,
        };
        if self.waited_around(stream) {
            own.max(self.buffer_limit)
        } else {
            own
        }
    }

    /// Re-opens the window for unread bytes of `stream` up to its prepay limit.
    fn prepay(&mut self, stream: Stream) -> Option<Vec<u8>> {
        let covered = self.buffer(stream).len().min(self.prepay_limit(stream));
        let due = covered.saturating_sub(self.prepaid.get(stream));
        if due == 0 {
            return None;
        }
        *self.prepaid.get_mut(stream) += due;
        self.credit(due)
    }

    /// An application thread starts waiting for `awaited`: the other streams' unread data
    /// is paid for up to the buffer limit, which may re-open the window (the message
    /// returned).
    pub fn wait_begin(&mut self, awaited: Awaited) -> Option<Vec<u8>> {
        *self.waiters.count(awaited) += 1;
        let mut adjust = None;
        for stream in Stream::BOTH {
            if awaited.counts_against(stream) {
                adjust = self.prepay(stream).or(adjust);
            }
        }
        adjust
    }

    /// The thread that called [`Self::wait_begin`] stopped waiting.
    pub fn wait_end(&mut self, awaited: Awaited) {
        let count = self.waiters.count(awaited);
        *count = count.saturating_sub(1);
    }

    /// The stream whose unread data has reached the buffer limit and shut the window, so
    /// that waiting for `awaited` could only end when somebody reads it.
    pub fn stalled_by(&self, awaited: Awaited) -> Option<Stream> {
        if self.at_eof() || self.local_window >= self.limits.max_packet {
            return None;
        }
        Stream::BOTH.into_iter().find(|&stream| {
            awaited.counts_against(stream) && self.buffer(stream).len() > self.prepaid.get(stream)
        })
    }

    /// Counts `n` bytes as consumed; once that is worth a message (half the window), returns
    /// the WINDOW_ADJUST that re-opens the window by them.
    fn credit(&mut self, n: usize) -> Option<Vec<u8>> {
        self.consumed = self
            .consumed
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        if self.consumed < self.limits.window / 2
            || self.close_sent
            || self.close_received
            || self.state != ChannelState::Open
        {
            return None;
        }
        let grant = std::mem::take(&mut self.consumed);
        self.local_window = self.local_window.saturating_add(grant);
        let mut w = Writer::message(msg::CHANNEL_WINDOW_ADJUST);
        w.u32(self.remote_id).u32(grant);
        Some(w.into_bytes())
    }

    /// Bytes of `len` that may go out now in one packet.
    pub fn sendable(&self, len: usize) -> usize {
        let limit = self
            .remote_window
            .min(self.remote_max_packet)
            .min(MAX_SEND_PACKET);
        len.min(limit as usize)
    }

    /// The header of a data packet (message number, recipient, length) for `len` bytes,
    /// charging the window; the caller appends the data itself to avoid a copy.
    pub fn data_header(&mut self, len: usize, extended: Option<u32>) -> Vec<u8> {
        self.remote_window = self.remote_window.saturating_sub(len as u32);
        let mut w = match extended {
            None => Writer::message(msg::CHANNEL_DATA),
            Some(_) => Writer::message(msg::CHANNEL_EXTENDED_DATA),
        };
        w.u32(self.remote_id);
        if let Some(code) = extended {
            w.u32(code);
        }
        w.u32(len as u32);
        w.into_bytes()
    }

    /// A CHANNEL_REQUEST with its type-specific fields already in `body`.
    pub fn request(&mut self, kind: &str, want_reply: bool, body: &[u8]) -> Vec<u8> {
        if want_reply {
            self.awaiting_replies += 1;
        }
        let mut w = Writer::message(msg::CHANNEL_REQUEST);
        w.u32(self.remote_id)
            .string(kind)
            .bool(want_reply)
            .raw(body);
        w.into_bytes()
    }

    /// CHANNEL_EOF, once.
    pub fn eof(&mut self) -> Option<Vec<u8>> {
        if self.eof_sent || self.close_sent || self.state != ChannelState::Open {
            return None;
        }
        self.eof_sent = true;
        let mut w = Writer::message(msg::CHANNEL_EOF);
        w.u32(self.remote_id);
        Some(w.into_bytes())
    }

    /// CHANNEL_CLOSE, once.
    pub fn close(&mut self) -> Option<Vec<u8>> {
        if self.close_sent || !matches!(self.state, ChannelState::Open) {
            return None;
        }
        self.close_sent = true;
        if self.close_received {
            self.state = ChannelState::Closed;
        }
        let mut w = Writer::message(msg::CHANNEL_CLOSE);
        w.u32(self.remote_id);
        Some(w.into_bytes())
    }
}

/// All channels of a connection.
#[derive(Debug, Default)]
pub struct Channels {
    map: HashMap<ChannelId, Channel>,
    next_id: ChannelId,
    /// The limits of channels opened from now on.
    limits: ChannelLimits,
}

impl Channels {
    /// Sets the limits of channels opened (by either side) from now on.
    pub fn set_limits(&mut self, limits: ChannelLimits) {
        self.limits = limits;
    }

    pub fn get(&self, id: ChannelId) -> Option<&Channel> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.map.get_mut(&id)
    }

    /// Counts a new application handle on channel `id`.
    pub fn retain(&mut self, id: ChannelId) {
        if let Some(c) = self.map.get_mut(&id) {
            c.handles += 1;
        }
    }

    /// Drops one application handle; forgets the channel with the last one and returns
    /// true then.
    pub fn release(&mut self, id: ChannelId) -> bool {
        let Some(c) = self.map.get_mut(&id) else {
            return false;
        };
        c.handles = c.handles.saturating_sub(1);
        if c.handles > 0 {
            return false;
        }
        // The peer may still answer our CLOSE: keep the number until its CLOSE arrives.
        if c.close_received || c.state != ChannelState::Open {
            self.map.remove(&id);
        }
        true
    }

    /// Marks every channel closed, when the connection ends.
    pub fn close_all(&mut self) {
        for c in self.map.values_mut() {
            c.state = ChannelState::Closed;
        }
    }

    /// Opens a channel of `kind` with its type-specific fields in `extra`; returns its id
    /// and the CHANNEL_OPEN payload.
    pub fn open(&mut self, kind: &str, extra: &[u8]) -> (ChannelId, Vec<u8>) {
        let id = self.insert(0, 0, 0);
        if let Some(c) = self.map.get_mut(&id) {
            c.unstarted_session = kind == "session";
            c.opened_here = true;
        }
        let mut w = Writer::message(msg::CHANNEL_OPEN);
        w.string(kind)
            .u32(id)
            .u32(self.limits.window)
            .u32(self.limits.max_packet)
            .raw(extra);
        (id, w.into_bytes())
    }

    /// Records a channel the peer asks to open, until [`Self::confirm`] or
    /// [`Self::refuse`] answers it.
    pub fn incoming(&mut self, remote_id: u32, window: u32, max_packet: u32) -> Result<ChannelId> {
        if max_packet == 0 {
            return Err(Error::protocol("peer announced a maximum packet size of 0"));
        }
        Ok(self.insert(remote_id, window, max_packet))
    }

    fn insert(&mut self, remote_id: u32, remote_window: u32, remote_max_packet: u32) -> ChannelId {
        // Skip numbers still in use: ids wrap after 2^32 channels on a long connection.
        while self.map.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let channel = Channel {
            state: ChannelState::Opening,
            remote_id,
            local_window: self.limits.window,
            limits: self.limits,
            consumed: 0,
            prepaid: PerStream::default(),
            waiters: Waiters::default(),
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            stderr_mode: StderrMode::Separate,
            unstarted_session: false,
            opened_here: false,
            eof_reported: false,
            exit_reported: false,
            close_reported: false,
            stdout: RecvBuffer::default(),
            stderr: RecvBuffer::default(),
            eof_received: false,
            close_received: false,
            remote_window,
            remote_max_packet,
            eof_sent: false,
            close_sent: false,
            exit: None,
            awaiting_replies: 0,
            replies: VecDeque::new(),
            handles: 0,
        };
        self.map.insert(id, channel);
        id
    }

    /// Opens a channel recorded by [`Self::incoming`]; returns the confirmation.
    /// The channel starts with one handle, which the application takes over when it accepts
    /// the channel: a channel the client closes before that is still there to be accepted.
    pub fn confirm(&mut self, id: ChannelId) -> Option<Vec<u8>> {
        let c = self.map.get_mut(&id)?;
        if c.state != ChannelState::Opening {
            return None;
        }
        c.state = ChannelState::Open;
        c.handles += 1;
        let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
        w.u32(c.remote_id)
            .u32(id)
            .u32(c.limits.window)
            .u32(c.limits.max_packet);
        Some(w.into_bytes())
    }

    /// Refuses and forgets a channel recorded by [`Self::incoming`].
    pub fn refuse(&mut self, id: ChannelId, reason: u32, description: &str) -> Option<Vec<u8>> {
        let c = self.map.remove(&id)?;
        let mut w = Writer::message(msg::CHANNEL_OPEN_FAILURE);
        w.u32(c.remote_id)
            .u32(reason)
            .string(description)
            .string("");
        Some(w.into_bytes())
    }

    /// Channels not yet forgotten.
    pub fn count(&self) -> usize {
        self.map.len()
    }

    /// CHANNEL_SUCCESS or CHANNEL_FAILURE for a request on channel `id`. A CLOSE the
    /// application queued after the request arrived is held behind this reply, so only the
    /// channel's state counts here.
    pub fn request_reply(&self, id: ChannelId, ok: bool) -> Option<Vec<u8>> {
        let c = self.map.get(&id)?;
        if c.state != ChannelState::Open {
            return None;
        }
        let mut w = Writer::message(if ok {
            msg::CHANNEL_SUCCESS
        } else {
            msg::CHANNEL_FAILURE
        });
        w.u32(c.remote_id);
        Some(w.into_bytes())
    }

    fn lookup(&mut self, r: &mut Reader<'_>) -> Result<&mut Channel> {
        let id = r.u32("recipient channel")?;
        self.map
            .get_mut(&id)
            .ok_or_else(|| Error::protocol(format!("message for unknown channel {id}")))
    }

    /// Dispatches one channel message (numbers 91-100). Returns payloads to send in reply.
    pub fn handle(&mut self, payload: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut r = Reader::new(payload);
        let number = r.u8("message number")?;
        let channel = self.lookup(&mut r)?;
        let mut replies = Vec::new();
        match number {
            msg::CHANNEL_OPEN_CONFIRMATION => {
                if channel.state != ChannelState::Opening || !channel.opened_here {
                    return Err(Error::protocol(
                        "CHANNEL_OPEN_CONFIRMATION for a channel we are not opening",
                    ));
                }
                channel.remote_id = r.u32("sender channel")?;
                channel.remote_window = r.u32("initial window size")?;
                channel.remote_max_packet = r.u32("maximum packet size")?;
                if channel.remote_max_packet == 0 {
                    return Err(Error::protocol("peer announced a maximum packet size of 0"));
                }
                channel.state = ChannelState::Open;
            }
            msg::CHANNEL_OPEN_FAILURE => {
                if channel.state != ChannelState::Opening || !channel.opened_here {
                    return Err(Error::protocol(
                        "CHANNEL_OPEN_FAILURE for a channel we are not opening",
                    ));
                }
                let reason = r.u32("reason code")?;
                let description = String::from_utf8_lossy(r.string("description")?).into_owned();
                channel.state = ChannelState::OpenFailed {
                    reason,
                    description,
                };
            }
            msg::CHANNEL_WINDOW_ADJUST => {
                let add = r.u32("bytes to add")?;
                channel.remote_window = channel
                    .remote_window
                    .checked_add(add)
                    .ok_or_else(|| Error::protocol("channel window adjusted past 2^32-1"))?;
            }
            msg::CHANNEL_DATA | msg::CHANNEL_EXTENDED_DATA => {
                let code = if number == msg::CHANNEL_EXTENDED_DATA {
                    Some(r.u32("data type")?)
                } else {
                    None
                };
                let data = r.string("channel data")?;
                replies.extend(receive_data(channel, code, data)?);
            }
            msg::CHANNEL_EOF => channel.eof_received = true,
            msg::CHANNEL_CLOSE => {
                channel.close_received = true;
                if let Some(close) = channel.close() {
                    replies.push(close);
                }
                channel.state = ChannelState::Closed;
                if channel.handles == 0 {
                    self.map.remove(&id_of(payload));
                }
            }
            msg::CHANNEL_REQUEST => {
                let kind = r.string("request type")?;
                let want_reply = r.bool("want reply")?;
                let known = receive_request(channel, kind, &mut r)?;
                if want_reply && !channel.close_sent {
                    let mut w = Writer::message(if known {
                        msg::CHANNEL_SUCCESS
                    } else {
                        msg::CHANNEL_FAILURE
                    });
                    w.u32(channel.remote_id);
                    replies.push(w.into_bytes());
                }
            }
            msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE => {
                if channel.awaiting_replies == 0 {
                    return Err(Error::protocol("channel request reply without a request"));
                }
                channel.awaiting_replies -= 1;
                channel.replies.push_back(number == msg::CHANNEL_SUCCESS);
            }
            other => {
                return Err(Error::protocol(format!(
                    "unexpected channel message {other}"
                )))
            }
        }
        Ok(replies)
    }
}

/// The recipient channel of a channel message (already checked to exist).
/// The recipient channel of a channel message.
pub(in crate::proto) fn id_of(payload: &[u8]) -> ChannelId {
    let mut r = Reader::new(payload);
    let _ = r.u8("message number");
    r.u32("recipient channel").unwrap_or(u32::MAX)
}

/// Stores arriving data, re-opening the window at once for what the prepay rule allows (see
/// [`Channel::prepay_limit`]); the rest waits for the application to read it.
fn receive_data(channel: &mut Channel, code: Option<u32>, data: &[u8]) -> Result<Option<Vec<u8>>> {
    if channel.state != ChannelState::Open || channel.eof_received {
        return Err(Error::protocol(
            "channel data after EOF or outside an open channel",
        ));
    }
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let max = channel.limits.max_packet;
    if len > max {
        return Err(Error::protocol(format!(
            "channel data of {len} bytes exceeds the maximum packet size {max}"
        )));
    }
    channel.local_window = channel
        .local_window
        .checked_sub(len)
        .ok_or_else(|| Error::protocol("peer sent more channel data than the window allows"))?;
    let stream = match (code, channel.stderr_mode) {
        (None, _) | (Some(1), StderrMode::Merge) => Stream::Stdout,
        (Some(1), StderrMode::Separate) => Stream::Stderr,
        // Discarded stderr and unknown data types are dropped but still re-open the window.
        (Some(_), _) => return Ok(channel.credit(data.len())),
    };
    channel.buffer_mut(stream).push(data);
    Ok(channel.prepay(stream))
}

/// Handles a request from the server; returns whether it was understood.
fn receive_request(channel: &mut Channel, kind: &[u8], r: &mut Reader<'_>) -> Result<bool> {
    match kind {
        b"exit-status" => {
            channel.exit = Some(ExitStatus::Code(r.u32("exit status")?));
            Ok(true)
        }
        b"exit-signal" => {
            let name = String::from_utf8_lossy(r.string("signal name")?).into_owned();
            let core_dumped = r.bool("core dumped")?;
            let message = String::from_utf8_lossy(r.string("error message")?).into_owned();
            channel.exit = Some(ExitStatus::Signal {
                name,
                core_dumped,
                message,
            });
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    fn open_channel() -> (Channels, ChannelId) {
        let mut chans = Channels::default();
        let (id, _) = chans.open("session", &[]);
        chans.retain(id);
        let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
        w.u32(id).u32(7).u32(1000).u32(500);
        chans.handle(w.as_bytes()).unwrap();
        (chans, id)
    }

    fn data(id: ChannelId, bytes: &[u8]) -> Vec<u8> {
        let mut w = Writer::message(msg::CHANNEL_DATA);
        w.u32(id).string(bytes);
        w.into_bytes()
    }

    #[test]
    fn window_is_enforced_and_reopened_on_read() {
        let (mut chans, id) = open_channel();
        let chunk = vec![1u8; MAX_PACKET as usize];
        for _ in 0..WINDOW_SIZE / MAX_PACKET {
            chans.handle(&data(id, &chunk)).unwrap();
        }
        assert!(
            chans.handle(&data(id, b"x")).is_err(),
            "data past the window must end the connection"
        );
        let c = chans.get_mut(id).unwrap();
        let mut out = vec![0u8; WINDOW_SIZE as usize / 2];
        assert_eq!(c.stdout.read(&mut out), out.len());
        let adjust = c
            .on_read(out.len(), Stream::Stdout)
            .expect("window adjust due");
        assert_eq!(&adjust[1..5], &7u32.to_be_bytes());
        assert!(chans.handle(&data(id, b"x")).is_ok());
    }

    #[test]
    fn each_channel_keeps_the_limits_it_opened_with() {
        let mut chans = Channels::default();
        chans.set_limits(ChannelLimits::new(8192, 2048));
        let (small, open) = chans.open("session", &[]);
        let mut r = crate::wire::Reader::new(&open);
        r.u8("number").unwrap();
        r.string("type").unwrap();
        r.u32("sender").unwrap();
        assert_eq!(
            (r.u32("window").unwrap(), r.u32("packet").unwrap()),
            (8192, 2048)
        );
        chans.set_limits(ChannelLimits::default());
        let (large, _) = chans.open("session", &[]);
        for id in [small, large] {
            let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
            w.u32(id).u32(id + 10).u32(1000).u32(500);
            chans.handle(w.as_bytes()).unwrap();
        }
        let e = chans.handle(&data(small, &[0; 2049])).unwrap_err();
        assert!(e.message().contains("maximum packet size 2048"), "{e}");
        assert!(chans.handle(&data(large, &[0; 2049])).is_ok());
        // The window never goes below one packet, the packet never below 1 KiB.
        assert_eq!(ChannelLimits::new(10, 10), ChannelLimits::new(1024, 1024));
    }

    #[test]
    fn unread_stderr_does_not_stall_stdout() {
        let (mut chans, id) = open_channel();
        let chunk = vec![1u8; MAX_PACKET as usize];
        let mut adjusts = 0;
        for _ in 0..WINDOW_SIZE / MAX_PACKET {
            let mut w = Writer::message(msg::CHANNEL_EXTENDED_DATA);
            w.u32(id).u32(1).string(&chunk);
            adjusts += chans.handle(w.as_bytes()).unwrap().len();
        }
        assert_eq!(adjusts, 2, "a window of unread stderr re-opens the window");
        assert!(
            chans.handle(&data(id, &chunk)).is_ok(),
            "stdout still flows"
        );
        let c = chans.get_mut(id).unwrap();
        let mut out = vec![0u8; WINDOW_SIZE as usize];
        assert_eq!(c.stderr.read(&mut out), out.len());
        assert!(
            c.on_read(out.len(), Stream::Stderr).is_none(),
            "prepaid stderr is not credited twice"
        );
    }

    #[test]
    fn window_adjust_overflow_and_zero_max_packet_are_refused() {
        let (mut chans, id) = open_channel();
        let mut w = Writer::message(msg::CHANNEL_WINDOW_ADJUST);
        w.u32(id).u32(u32::MAX);
        assert!(chans.handle(w.as_bytes()).is_err());
        let mut chans = Channels::default();
        let (id, _) = chans.open("session", &[]);
        let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
        w.u32(id).u32(7).u32(1000).u32(0);
        assert!(chans.handle(w.as_bytes()).is_err());
    }

    #[test]
    fn exit_signal_and_close_reply() {
        let (mut chans, id) = open_channel();
        let mut w = Writer::message(msg::CHANNEL_REQUEST);
        w.u32(id)
            .string("exit-signal")
            .bool(false)
            .string("KILL")
            .bool(false)
            .string("")
            .string("");
        assert!(chans.handle(w.as_bytes()).unwrap().is_empty());
        let mut w = Writer::message(msg::CHANNEL_CLOSE);
        w.u32(id);
        let replies = chans.handle(w.as_bytes()).unwrap();
        assert_eq!(replies.len(), 1);
        let c = chans.get(id).unwrap();
        assert_eq!(c.state, ChannelState::Closed);
        assert!(matches!(&c.exit, Some(ExitStatus::Signal { name, .. }) if name == "KILL"));
    }

    #[test]
    fn unknown_channel_and_unsolicited_reply_are_errors() {
        let (mut chans, id) = open_channel();
        assert!(chans.handle(&data(id + 5, b"x")).is_err());
        let mut w = Writer::message(msg::CHANNEL_SUCCESS);
        w.u32(id);
        assert!(chans.handle(w.as_bytes()).is_err());
    }
}
