//! One channel: its state, its windows in both directions, the waits on it, and the
//! messages it sends (data headers, requests, EOF, close, window adjusts).

use std::collections::VecDeque;

use super::streams::{PerStream, Waiters};
use super::{
    Awaited, ChannelLimits, ChannelState, ExitStatus, RecvBuffer, StderrMode, Stream,
    MAX_SEND_PACKET,
};
use crate::proto::msg;
use crate::wire::Writer;

/// One channel's state.
#[derive(Debug)]
pub struct Channel {
    pub state: ChannelState,
    pub(super) remote_id: u32,
    /// Bytes the peer may still send us.
    pub(super) local_window: u32,
    /// Bytes the application has read since we last re-opened the window.
    pub(super) consumed: u32,
    /// Per stream, unread bytes whose window was already re-opened, so that reading them
    /// does not re-open it twice.
    pub(super) prepaid: PerStream<usize>,
    /// Application threads blocked on this channel, per thing awaited.
    pub(super) waiters: Waiters,
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
    pub(super) remote_max_packet: u32,
    pub eof_sent: bool,
    pub close_sent: bool,
    pub exit: Option<ExitStatus>,
    /// Requests sent with want_reply, oldest first, whose replies have not arrived.
    pub(super) awaiting_replies: usize,
    /// Replies (true = success) not yet taken by the application.
    pub replies: VecDeque<bool>,
    /// Application handles on this channel; it is forgotten when the last one goes.
    pub(super) handles: u32,
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

    pub(super) fn buffer_mut(&mut self, stream: Stream) -> &mut RecvBuffer {
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
    pub(super) fn waited_around(&self, stream: Stream) -> bool {
        Awaited::ALL
            .into_iter()
            .any(|a| a.counts_against(stream) && self.waiters.any(a))
    }

    /// How many unread bytes of `stream` may have their window re-opened before being read.
    /// Standard error always gets a window of its own, so that a reader of stdout alone is
    /// not stalled by it; while somebody waits for something else, either stream may grow
    /// to the buffer limit, so that the wait never deadlocks on output nobody reads.
    pub(super) fn prepay_limit(&self, stream: Stream) -> usize {
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
    pub(super) fn prepay(&mut self, stream: Stream) -> Option<Vec<u8>> {
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
    pub(super) fn credit(&mut self, n: usize) -> Option<Vec<u8>> {
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
