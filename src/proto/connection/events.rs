//! What the layer above must learn after input: which channels changed (data, window, EOF,
//! close, requests and replies, open answers), and whether the connection as a whole did
//! (authentication, a channel the peer opens, global replies, key exchanges). A driver
//! wakes only the waiters of what changed. Losing the connection is its error, not an
//! event: every waiter must learn that.

use std::collections::BTreeSet;

use super::Connection;
use crate::proto::channel::{id_of, ChannelId};
use crate::proto::msg;

/// One change since the last [`Connection::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Something about this channel changed.
    Channel(ChannelId),
    /// Something about the connection outside any one channel changed.
    Connection,
}

/// Changes not yet polled, each once: bounded by the number of channels.
#[derive(Debug, Default)]
pub(super) struct Events {
    channels: BTreeSet<ChannelId>,
    connection: bool,
}

impl Connection {
    /// Records what handling message `number` changed.
    pub(super) fn note_handled(&mut self, number: u8, payload: &[u8]) {
        match number {
            msg::IGNORE | msg::DEBUG | msg::UNIMPLEMENTED => {}
            msg::CHANNEL_OPEN_CONFIRMATION..=msg::CHANNEL_FAILURE => {
                self.events.channels.insert(id_of(payload));
            }
            _ => self.events.connection = true,
        }
    }

    /// The next change to report, each channel and the connection at most once until they
    /// change again.
    #[must_use = "a change nobody hears of leaves its waiters asleep"]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(id) = self.events.channels.pop_first() {
            return Some(Event::Channel(id));
        }
        std::mem::take(&mut self.events.connection).then_some(Event::Connection)
    }
}
