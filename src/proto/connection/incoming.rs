//! Channels the peer opens, as the application sees them: the queue of accepted channels
//! (both roles), and a client's remote port forwards, whose forwarded-tcpip channels it
//! accepts (RFC 4254 §7.1, §7.2). A client refuses every other kind the server offers.

use std::collections::{HashMap, VecDeque};

use super::events::Event;
use super::Connection;
use crate::proto::channel::ChannelId;
use crate::proto::msg;
use crate::wire::{Reader, Writer};
use crate::Result;

/// Accepted channels and the forwards they may come from.
#[derive(Debug, Default)]
pub(super) struct Incoming {
    /// Channels opened by the peer and confirmed, not yet taken by the application.
    pub accepted: VecDeque<ChannelId>,
    /// Client: the (address, port) pairs the server listens on for us.
    forwards: Vec<(String, u32)>,
    /// Client: tcpip-forward requests awaiting the server's answer, by request id.
    requested: HashMap<u64, (String, u32)>,
}

impl Connection {
    /// The next channel the peer opened that was accepted (by a server's handler, or as a
    /// client's forwarded port).
    pub fn take_accepted_channel(&mut self) -> Option<ChannelId> {
        self.incoming.accepted.pop_front()
    }

    /// Client: asks the server to listen on `address:port` (0: a port of its choosing) and
    /// forward what connects there ("tcpip-forward"). Returns the request's id for
    /// [`Self::take_global_reply`]; once the server agrees, its forwarded-tcpip channels for
    /// that port are accepted.
    pub fn request_port_forward(&mut self, address: &str, port: u32) -> Result<u64> {
        let id = self.forward_request("tcpip-forward", address, port)?;
        self.incoming
            .requested
            .insert(id, (address.to_owned(), port));
        Ok(id)
    }

    /// Client: stops forwarding `address:port` ("cancel-tcpip-forward"); channels for it
    /// are refused from now on. Returns the request's id.
    pub fn cancel_port_forward(&mut self, address: &str, port: u32) -> Result<u64> {
        let id = self.forward_request("cancel-tcpip-forward", address, port)?;
        self.incoming
            .forwards
            .retain(|(a, p)| !(a == address && *p == port));
        Ok(id)
    }

    /// Sends global request `name` for `address:port`, wanting a reply; returns its id.
    fn forward_request(&mut self, name: &str, address: &str, port: u32) -> Result<u64> {
        self.client_call()?;
        let mut data = Writer::new();
        data.string(address).u32(port);
        let id = self.global_request(name, true, data.as_bytes())?;
        Ok(id.unwrap_or_default())
    }

    /// Records the forward of request `id` once the server accepted it; `reply` holds the
    /// chosen port when port 0 was asked for.
    pub(super) fn on_forward_reply(&mut self, id: u64, reply: Option<&[u8]>) {
        let Some((address, port)) = self.incoming.requested.remove(&id) else {
            return;
        };
        let Some(reply) = reply else {
            return;
        };
        let bound = match port {
            0 => Reader::new(reply).u32("bound port").unwrap_or(0),
            port => port,
        };
        if bound != 0 {
            self.incoming.forwards.push((address, bound));
        }
    }

    /// Client: a channel the server opens. Forwarded-tcpip channels for a forward we asked
    /// for are accepted; everything else is refused.
    pub(super) fn on_channel_open_to_client(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let kind = String::from_utf8_lossy(r.string("channel type")?).into_owned();
        let sender = r.u32("sender channel")?;
        let window = r.u32("initial window size")?;
        let max_packet = r.u32("maximum packet size")?;
        let forwarded = match kind.as_str() {
            "forwarded-tcpip" => {
                let address = String::from_utf8_lossy(r.string("connected address")?);
                let port = r.u32("connected port")?;
                self.is_forwarded(&address, port)
            }
            _ => false,
        };
        let channel = self.channels.incoming(sender, window, max_packet)?;
        let answer = if forwarded {
            self.incoming.accepted.push_back(channel);
            self.events.note(Event::ChannelAccepted);
            self.channels.confirm(channel)
        } else {
            let why = match kind.as_str() {
                "forwarded-tcpip" => "no such port forward was requested".to_owned(),
                other => format!("{other} channels are not accepted"),
            };
            self.channels.refuse(
                channel,
                msg::open_failure::ADMINISTRATIVELY_PROHIBITED,
                &why,
            )
        };
        if let Some(p) = answer {
            self.send(p);
        }
        Ok(())
    }

    /// True when `address:port` is one of our forwards. The server may name a wildcard or
    /// "localhost" request by the address it bound.
    fn is_forwarded(&self, address: &str, port: u32) -> bool {
        let wildcard = |a: &str| matches!(a, "" | "0.0.0.0" | "::" | "*" | "localhost");
        self.incoming
            .forwards
            .iter()
            .any(|(a, p)| *p == port && (a == address || wildcard(a)))
    }
}
