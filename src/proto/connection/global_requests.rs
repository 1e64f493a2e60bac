//! Global requests (RFC 4254 §4) we send, and the replies the peer owes: answered in order,
//! each to the application's request or to our keepalive.

use std::collections::{HashMap, VecDeque};

use super::super::msg;
use super::Connection;
use crate::wire::{Reader, Writer};
use crate::{Error, ErrorKind, Result};

/// Who is waiting for the answer to a global request we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GlobalWaiter {
    Keepalive,
    Application(u64),
}

/// Requests that wait for replies, and the replies not yet taken.
#[derive(Debug, Default)]
pub(super) struct GlobalRequests {
    waiters: VecDeque<GlobalWaiter>,
    /// Answers to application global requests: reply data, or None for a refusal.
    replies: HashMap<u64, Option<Vec<u8>>>,
    next_request: u64,
}

impl Connection {
    /// Sends a global request (RFC 4254 §4). With `want_reply` returns an id whose answer
    /// [`Self::take_global_reply`] gives once it arrives.
    pub fn global_request(
        &mut self,
        name: &str,
        want_reply: bool,
        data: &[u8],
    ) -> Result<Option<u64>> {
        self.check_alive()?;
        if !self.is_authenticated() {
            return Err(Error::new(
                ErrorKind::State,
                "global requests need an authenticated connection",
            ));
        }
        let id = self.globals.next_request;
        self.globals.next_request += 1;
        self.send_global_request(name, want_reply, data, GlobalWaiter::Application(id));
        Ok(want_reply.then_some(id))
    }

    pub(super) fn send_global_request(
        &mut self,
        name: &str,
        want_reply: bool,
        data: &[u8],
        waiter: GlobalWaiter,
    ) {
        let mut w = Writer::message(msg::GLOBAL_REQUEST);
        w.string(name).bool(want_reply).raw(data);
        if want_reply {
            self.globals.waiters.push_back(waiter);
        }
        self.send(w.into_bytes());
    }

    /// The answer to global request `id`: `Some(Some(data))` accepted with reply data,
    /// `Some(None)` refused, `None` not yet answered.
    pub fn take_global_reply(&mut self, id: u64) -> Option<Option<Vec<u8>>> {
        self.globals.replies.remove(&id)
    }

    /// True while global request replies are awaited (the legality table asks).
    pub(super) fn awaits_global_reply(&self) -> bool {
        !self.globals.waiters.is_empty()
    }

    /// REQUEST_SUCCESS or REQUEST_FAILURE: answers the oldest request that wanted a reply.
    pub(super) fn on_global_reply(&mut self, payload: &[u8]) -> Result<()> {
        let waiter = self
            .globals
            .waiters
            .pop_front()
            .ok_or_else(|| Error::protocol("global request reply without a request"))?;
        let mut r = Reader::new(payload);
        let accepted = r.u8("message number")? == msg::REQUEST_SUCCESS;
        if let GlobalWaiter::Application(id) = waiter {
            let data = accepted.then(|| r.remaining().to_vec());
            self.on_forward_reply(id, data.as_deref());
            self.globals.replies.insert(id, data);
        }
        Ok(())
    }
}
