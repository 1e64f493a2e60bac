//! Port forwarding on a transport: a client's remote forwards (Paramiko's
//! request_port_forward and cancel_port_forward; each connection to the forwarded port
//! arrives as a channel from [`Transport::accept`]), and the server's side of them, the
//! forwarded-tcpip channels it opens to the client (RFC 4254 §7).

use super::{Channel, Transport};
use crate::wire::{Reader, Writer};
use crate::Result;

impl Transport {
    /// Client: asks the server to listen on `address:port` (port 0: one it chooses) and
    /// forward each connection there as a channel, taken with [`Transport::accept`].
    /// Returns the port the server listens on.
    pub fn request_port_forward(&self, address: &str, port: u32) -> Result<u32> {
        let shared = self.shared()?;
        let id = self.global_request_id(&shared, |c| c.request_port_forward(address, port))?;
        let reply = self.await_global_reply(&shared, id, "tcpip-forward")?;
        match port {
            0 => Ok(Reader::new(&reply).u32("bound port")?),
            port => Ok(port),
        }
    }

    /// Client: stops the forward of `address:port`; its channels are refused from now on.
    pub fn cancel_port_forward(&self, address: &str, port: u32) -> Result<()> {
        let shared = self.shared()?;
        let id = self.global_request_id(&shared, |c| c.cancel_port_forward(address, port))?;
        self.await_global_reply(&shared, id, "cancel-tcpip-forward")
            .map(drop)
    }

    /// Server: opens a "forwarded-tcpip" channel to the client for a connection that
    /// reached `listening` (the address and port of a forward the client requested) from
    /// `origin`; waits for the client's answer.
    pub fn open_forwarded_tcpip(
        &self,
        listening: (&str, u32),
        origin: (&str, u32),
    ) -> Result<Channel> {
        let mut extra = Writer::new();
        extra
            .string(listening.0)
            .u32(listening.1)
            .string(origin.0)
            .u32(origin.1);
        self.open_channel("forwarded-tcpip", extra.as_bytes())
    }
}
