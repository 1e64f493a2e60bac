//! The channels of one connection: numbering, opening by either side, answers to opens,
//! and the dispatch of every incoming channel message to its channel.

use std::collections::{HashMap, VecDeque};

use super::messages::{id_of, receive_data, receive_request};
use super::streams::{PerStream, Waiters};
use super::{
    Channel, ChannelId, ChannelLimits, ChannelState, RecvBuffer, StderrMode, DEFAULT_BUFFER_LIMIT,
};
use crate::proto::msg;
use crate::wire::{Reader, Writer};
use crate::{Error, Result};

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
