//! The decisions a server owes the application, and the client's messages that wait for
//! them. A message waits only behind a decision it depends on:
//! - every message past the transport layer while authentication is decided (nothing else
//!   is legal before it succeeds, and the next attempt must see this one's outcome);
//! - a channel's messages behind the request on that channel (the reply comes first, and
//!   the request's effect, a started command, sees the data that follows);
//! - global requests behind the global request (replies go out in request order).
//!
//! Everything else, other channels' data above all, is handled meanwhile. What waits is
//! bounded: past [`WAITING_LIMIT`] the connection takes no more input until an answer
//! releases some (backpressure, not an error: a slow handler is not the client's fault).

use std::collections::{HashMap, VecDeque};

use super::super::channel::ChannelId;
use super::super::msg;
use super::super::server::ServerEvent;
use super::events::Event;
use super::server_auth::PendingAuth;
use super::Connection;
use crate::wire::Reader;
use crate::{Error, ErrorKind, Result};

/// Bytes of the client's messages kept waiting for decisions before input stops.
const WAITING_LIMIT: usize = 1024 * 1024;

/// A decision the application owes, with what answering it needs.
pub(super) enum Pending {
    Auth(PendingAuth),
    ChannelOpen {
        channel: ChannelId,
        session: bool,
    },
    /// `starts`: a shell, exec or subsystem, which a session may run only once.
    ChannelRequest {
        channel: ChannelId,
        want_reply: bool,
        starts: bool,
    },
    Global {
        want_reply: bool,
    },
}

/// A channel request awaiting its answer.
#[derive(Clone, Copy)]
pub(super) struct OwedRequest {
    pub want_reply: bool,
    pub starts: bool,
}

/// The decisions owed, the events announcing them, and the messages behind them.
#[derive(Default)]
pub(super) struct Decisions {
    /// Events raised and not yet taken by the application, in the order raised.
    pub events: VecDeque<ServerEvent>,
    pub auth: Option<PendingAuth>,
    /// A global request's `want_reply`.
    pub global: Option<bool>,
    /// Channel opens, with whether each is a session.
    pub opens: HashMap<ChannelId, bool>,
    pub requests: HashMap<ChannelId, OwedRequest>,
    /// The client's messages waiting for a decision, in arrival order.
    waiting: VecDeque<Waiting>,
    waiting_bytes: usize,
    /// Our messages on a channel whose request awaits our reply: they go out after it,
    /// however quickly the application acts on its decision. With their total size.
    behind_reply: HashMap<ChannelId, VecDeque<Vec<u8>>>,
    pub behind_reply_bytes: usize,
}

/// A received message kept until the decision it depends on is made.
struct Waiting {
    payload: Vec<u8>,
    seq: u32,
    lane: Lane,
}

/// What a message depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Auth,
    Global,
    Channel(ChannelId),
}

impl Decisions {
    /// The lane that holds back a message with this number and payload, if any decision
    /// (or an earlier message of its lane still waiting) holds it back now.
    fn holding(&self, number: u8, payload: &[u8]) -> Option<Lane> {
        if number < msg::USERAUTH_REQUEST {
            return None;
        }
        let waits = |lane: Lane| self.waiting.iter().any(|w| w.lane == lane);
        if self.auth.is_some() || waits(Lane::Auth) {
            return Some(Lane::Auth);
        }
        let lane = match number {
            msg::GLOBAL_REQUEST => Lane::Global,
            msg::CHANNEL_OPEN_CONFIRMATION..=msg::CHANNEL_FAILURE => Lane::Channel(
                Reader::new(payload.get(1..).unwrap_or_default())
                    .u32("")
                    .ok()?,
            ),
            _ => return None,
        };
        let owed = match lane {
            Lane::Auth => false,
            Lane::Global => self.global.is_some(),
            Lane::Channel(id) => self.requests.contains_key(&id),
        };
        (owed || waits(lane)).then_some(lane)
    }
}

impl Connection {
    /// Server: the next decision the application must make, taken once. Several may be
    /// owed at once (channel opens, requests on different channels); each answer names what
    /// it decides.
    #[must_use = "a decision nobody makes holds back what depends on it"]
    pub fn take_server_event(&mut self) -> Option<ServerEvent> {
        self.server.as_mut()?.decisions.events.pop_front()
    }

    /// Server: true while a decision is raised and not yet taken.
    pub fn decision_owed(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|s| !s.decisions.events.is_empty())
    }

    /// Server: true when so much input waits for decisions that no more should be handed
    /// in until one is answered.
    pub fn input_stalled(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|s| s.decisions.waiting_bytes >= WAITING_LIMIT)
    }

    /// Raises `event`; what depends on it waits for the answer.
    pub(super) fn raise(&mut self, event: ServerEvent, pending: Pending) -> Result<()> {
        let d = &mut self.server_state()?.decisions;
        let duplicate = match pending {
            Pending::Auth(auth) => d.auth.replace(auth).is_some(),
            Pending::Global { want_reply } => d.global.replace(want_reply).is_some(),
            Pending::ChannelOpen { channel, session } => d.opens.insert(channel, session).is_some(),
            Pending::ChannelRequest {
                channel,
                want_reply,
                starts,
            } => d
                .requests
                .insert(channel, OwedRequest { want_reply, starts })
                .is_some(),
        };
        if duplicate {
            return Err(Error::new(
                ErrorKind::Internal,
                "a second decision of one kind was raised before the first was answered",
            ));
        }
        d.events.push_back(event);
        self.events.note(Event::DecisionOwed);
        Ok(())
    }

    /// Keeps a received message for later if a decision holds it back; true if kept.
    pub(super) fn wait_if_held(&mut self, number: u8, payload: &[u8], seq: u32) -> bool {
        let Some(d) = self.server.as_deref_mut().map(|s| &mut s.decisions) else {
            return false;
        };
        let Some(lane) = d.holding(number, payload) else {
            return false;
        };
        d.waiting_bytes += payload.len();
        d.waiting.push_back(Waiting {
            payload: payload.to_vec(),
            seq,
            lane,
        });
        true
    }

    /// After an answer: handles the waiting messages it released, in order; those still
    /// held wait again. A message that breaks the protocol ends the connection here, as it
    /// would have on arrival.
    pub(super) fn release_waiting(&mut self) {
        let Some(state) = self.server.as_deref_mut() else {
            return;
        };
        let waiting = std::mem::take(&mut state.decisions.waiting);
        state.decisions.waiting_bytes = 0;
        for w in waiting {
            if self.error.is_some() {
                return;
            }
            if let Err(e) = self.dispatch(&w.payload, w.seq) {
                self.fail(e);
            }
        }
    }

    /// True while channel `id` has a request awaiting our reply: what the application sends
    /// on it meanwhile must follow that reply.
    pub(super) fn reply_pending_on(&self, id: ChannelId) -> bool {
        self.server
            .as_deref()
            .is_some_and(|s| s.decisions.requests.get(&id).is_some_and(|r| r.want_reply))
    }

    /// Sends the application's message on channel `id`, after the reply to the request on
    /// that channel if one is still owed.
    pub(super) fn send_on(&mut self, id: ChannelId, payload: Vec<u8>) {
        if !self.reply_pending_on(id) {
            return self.send(payload);
        }
        if let Some(state) = self.server.as_deref_mut() {
            state.decisions.behind_reply_bytes += payload.len();
            state
                .decisions
                .behind_reply
                .entry(id)
                .or_default()
                .push_back(payload);
        }
    }

    /// Sends what the application queued on channel `id` behind the reply just sent.
    pub(super) fn send_behind_reply(&mut self, id: ChannelId) {
        let Some(state) = self.server.as_deref_mut() else {
            return;
        };
        let behind = state.decisions.behind_reply.remove(&id).unwrap_or_default();
        let bytes: usize = behind.iter().map(Vec::len).sum();
        state.decisions.behind_reply_bytes -= bytes;
        behind.into_iter().for_each(|p| self.send(p));
    }
}
