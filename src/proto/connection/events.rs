//! What the layer above must learn after input, as [`Event`]s: for each channel (opened,
//! refused, data, window, EOF, close, exit status, requests and their answers) and for the
//! connection (key exchange, authentication, global requests and replies, channels the peer
//! opened, decisions owed). A driver wakes only the waiters of what changed; an event loop
//! or a binding can act on each kind. Repeats coalesce until polled, so what is pending is
//! bounded by the number of channels whatever the peer sends. Losing the connection is its
//! error, not an event: every waiter must learn that.

use std::collections::BTreeMap;

use super::Connection;
use crate::proto::channel::{id_of, ChannelId};
use crate::proto::msg::{self, Family};
use crate::wire::Reader;

/// One change since the last [`Connection::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The peer confirmed our open of the channel.
    ChannelOpened(ChannelId),
    /// The peer refused our open of the channel; the reason is on the channel.
    ChannelRefused(ChannelId),
    /// Data arrived on the channel (standard output or error).
    DataReadable(ChannelId),
    /// The peer opened the channel's window: more may be sent.
    WindowOpened(ChannelId),
    /// The peer will send no more data on the channel.
    Eof(ChannelId),
    /// The peer closed the channel.
    Closed(ChannelId),
    /// The command's exit status or signal arrived.
    ExitStatus(ChannelId),
    /// The peer answered one of our requests on the channel.
    RequestAnswered(ChannelId),
    /// The peer sent some other request on the channel (answered by the connection, or a
    /// server's decision).
    RequestReceived(ChannelId),
    /// A key exchange moved on (KEXINIT, the exchange's own messages).
    KeyExchange,
    /// A key exchange finished: the peer's new keys are in force.
    KeysRenewed,
    /// The peer's extension information (server-sig-algs) arrived.
    Extensions,
    /// Authentication moved on: the service accepted, an answer, a banner, prompts, or (for
    /// a server) the client's attempt.
    Authentication,
    /// The peer sent a global request.
    GlobalRequest,
    /// The peer answered one of our global requests.
    GlobalReplied,
    /// A channel the peer opened was accepted: take it with
    /// [`Connection::take_accepted_channel`].
    ChannelAccepted,
    /// A server's decision is owed: take it with [`Connection::take_server_event`].
    DecisionOwed,
}

/// The channel events, each one bit of a channel's pending set.
const CHANNEL_EVENTS: [fn(ChannelId) -> Event; 9] = [
    Event::ChannelOpened,
    Event::ChannelRefused,
    Event::DataReadable,
    Event::WindowOpened,
    Event::Eof,
    Event::Closed,
    Event::ExitStatus,
    Event::RequestAnswered,
    Event::RequestReceived,
];

/// The connection events, each one bit of the connection's pending set.
const CONNECTION_EVENTS: [Event; 8] = [
    Event::KeyExchange,
    Event::KeysRenewed,
    Event::Extensions,
    Event::Authentication,
    Event::GlobalRequest,
    Event::GlobalReplied,
    Event::ChannelAccepted,
    Event::DecisionOwed,
];

impl Event {
    /// The channel the event is about; `None` for the connection's events.
    pub fn channel(self) -> Option<ChannelId> {
        match self {
            Event::ChannelOpened(id)
            | Event::ChannelRefused(id)
            | Event::DataReadable(id)
            | Event::WindowOpened(id)
            | Event::Eof(id)
            | Event::Closed(id)
            | Event::ExitStatus(id)
            | Event::RequestAnswered(id)
            | Event::RequestReceived(id) => Some(id),
            _ => None,
        }
    }

    /// The bit of this event in its pending set.
    fn bit(self) -> u16 {
        let index = match self.channel() {
            Some(id) => CHANNEL_EVENTS.iter().position(|make| make(id) == self),
            None => CONNECTION_EVENTS.iter().position(|e| *e == self),
        };
        index.map_or(0, |i| 1 << i)
    }
}

/// Events not yet polled, each at most once: a set of bits per channel, one for the
/// connection.
#[derive(Debug, Default)]
pub(super) struct Events {
    channels: BTreeMap<ChannelId, u16>,
    connection: u16,
}

impl Events {
    /// Records `event` until it is polled.
    pub fn note(&mut self, event: Event) {
        match event.channel() {
            Some(id) => *self.channels.entry(id).or_default() |= event.bit(),
            None => self.connection |= event.bit(),
        }
    }

    /// The next event: a channel's (lowest id first, all of one channel together), then the
    /// connection's.
    fn next(&mut self) -> Option<Event> {
        if let Some(mut entry) = self.channels.first_entry() {
            let id = *entry.key();
            let bits = entry.get_mut();
            let index = bits.trailing_zeros() as usize;
            *bits &= bits.wrapping_sub(1);
            if *bits == 0 {
                entry.remove();
            }
            return CHANNEL_EVENTS.get(index).map(|make| make(id));
        }
        if self.connection == 0 {
            return None;
        }
        let index = self.connection.trailing_zeros() as usize;
        self.connection &= self.connection.wrapping_sub(1);
        CONNECTION_EVENTS.get(index).copied()
    }
}

impl Connection {
    /// Records what handling message `number` changed.
    pub(super) fn note_handled(&mut self, number: u8, payload: &[u8]) {
        let id = || id_of(payload);
        let event = match number {
            msg::NEWKEYS => Event::KeysRenewed,
            msg::EXT_INFO => Event::Extensions,
            msg::SERVICE_REQUEST | msg::SERVICE_ACCEPT => Event::Authentication,
            msg::GLOBAL_REQUEST => Event::GlobalRequest,
            msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => Event::GlobalReplied,
            msg::CHANNEL_OPEN_CONFIRMATION => Event::ChannelOpened(id()),
            msg::CHANNEL_OPEN_FAILURE => Event::ChannelRefused(id()),
            msg::CHANNEL_WINDOW_ADJUST => Event::WindowOpened(id()),
            msg::CHANNEL_DATA | msg::CHANNEL_EXTENDED_DATA => Event::DataReadable(id()),
            msg::CHANNEL_EOF => Event::Eof(id()),
            msg::CHANNEL_CLOSE => Event::Closed(id()),
            msg::CHANNEL_REQUEST if is_exit_report(payload) => Event::ExitStatus(id()),
            msg::CHANNEL_REQUEST => Event::RequestReceived(id()),
            msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE => Event::RequestAnswered(id()),
            _ => match msg::family(number) {
                Family::Kex => Event::KeyExchange,
                Family::UserAuth => Event::Authentication,
                // IGNORE, DEBUG, UNIMPLEMENTED change nothing; a CHANNEL_OPEN's outcome is
                // noted where it is decided (accepted, or a decision owed).
                _ => return,
            },
        };
        self.events.note(event);
    }

    /// The next change to report; a change repeated before it is polled is reported once.
    #[must_use = "a change nobody hears of leaves its waiters asleep"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.next()
    }
}

/// True for an exit-status or exit-signal channel request.
fn is_exit_report(payload: &[u8]) -> bool {
    let mut r = Reader::new(payload);
    let kind = r
        .u8("message number")
        .and_then(|_| r.u32("recipient channel"))
        .and_then(|_| r.string("request type"));
    matches!(kind, Ok(b"exit-status" | b"exit-signal"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn repeats_coalesce_and_every_kind_comes_out_once() {
        let mut events = Events::default();
        let all: Vec<Event> = CHANNEL_EVENTS
            .iter()
            .map(|make| make(7))
            .chain(CONNECTION_EVENTS)
            .collect();
        for _ in 0..3 {
            all.iter().for_each(|e| events.note(*e));
        }
        events.note(Event::Eof(2));
        let mut polled = Vec::new();
        while let Some(e) = events.next() {
            polled.push(e);
        }
        let mut expected = vec![Event::Eof(2)];
        expected.extend(all);
        assert_eq!(polled, expected);
    }
}
