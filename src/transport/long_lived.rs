//! Transport calls for a long-lived connection: key renewal, keepalive, global requests,
//! IGNORE, disconnect with a reason.

use std::sync::Arc;
use std::time::Duration;

use super::in_flight::InFlight;
use super::shared_connection::{SharedConnection, SEND_QUEUE_LIMIT};
use super::Transport;
use crate::proto::{msg, AlgorithmKind, ChannelLimits, Connection, ConnectionConfig};
use crate::{Error, ErrorKind, Result};

impl Transport {
    /// Forces a key re-exchange and returns once the new keys are in use.
    pub fn renegotiate_keys(&self) -> Result<()> {
        let shared = self.shared()?;
        let before = match self
            .in_flight
            .resume(|o| matches!(o, InFlight::Rekey { .. }))?
        {
            Some(InFlight::Rekey { before }) => before,
            _ => shared.with(|c| {
                c.start_rekey()?;
                Ok::<_, Error>(c.kex_count())
            })?,
        };
        let result = shared.wait(self.timeout(), "the key re-exchange", |c| {
            (c.kex_count() > before).then_some(Ok(()))
        });
        self.in_flight.settle(InFlight::Rekey { before }, result)
    }

    /// Offers zlib@openssh.com then zlib (Paramiko's use_compression), or only "none".
    /// Takes effect at the next key exchange.
    pub fn use_compression(&self, on: bool) -> Result<()> {
        let names = if on {
            "zlib@openssh.com,zlib,none"
        } else {
            "none"
        };
        self.set_preferred(AlgorithmKind::Compression, names)
    }

    /// The algorithms of the keys in use (Paramiko's local_cipher, remote_cipher, ...).
    pub fn negotiated(&self) -> Option<crate::proto::Negotiated> {
        self.shared().ok()?.state.lock().negotiated().cloned()
    }

    /// Key exchanges completed on this connection, the first included.
    pub fn key_exchange_count(&self) -> u64 {
        self.shared().map_or(0, |s| s.state.lock().kex_count())
    }

    /// Renews keys after `bytes` of traffic (both directions; capped by the cipher's safe
    /// limit) and, if given, after `interval`.
    pub fn set_rekey_limits(&self, bytes: u64, interval: Option<Duration>) -> Result<()> {
        self.configure(
            |config| {
                config.rekey_bytes = bytes;
                config.rekey_interval = interval;
            },
            |c| c.set_rekey_limits(bytes, interval),
        )
    }

    /// Sends a keepalive after `interval` of silence from the server and fails the
    /// connection after `max_missed` unanswered ones (OpenSSH's ServerAliveInterval and
    /// ServerAliveCountMax). A zero interval turns keepalives off.
    pub fn set_keepalive(&self, interval: Duration, max_missed: u32) -> Result<()> {
        let keepalive = Some((interval, max_missed.max(1)));
        self.configure(
            |config| config.keepalive = keepalive,
            |c| c.set_keepalive(keepalive),
        )
    }

    /// Sets the window granted to each channel opened from now on and the largest data
    /// packet accepted on it (clamped to 1-128 KiB; the window to at least one packet).
    /// A larger window moves more data per round trip on a slow link; a smaller one holds
    /// less unread data per channel.
    pub fn set_channel_limits(&self, window: u32, max_packet: u32) -> Result<()> {
        let limits = ChannelLimits::new(window, max_packet);
        self.configure(
            |config| config.channel_limits = limits,
            |c| c.set_channel_limits(limits),
        )
    }

    /// Sends SSH_MSG_IGNORE carrying `len` random bytes, waiting while the send queue is
    /// full: a caller sending IGNOREs back to back neither grows it without bound nor keeps
    /// the reader from learning that the connection ended.
    pub fn send_ignore(&self, len: usize) -> Result<()> {
        self.shared()?
            .wait(self.timeout(), "room in the send queue", |c| {
                (c.pending_transmit() < SEND_QUEUE_LIMIT).then(|| c.send_ignore(len))
            })
    }

    /// Sends a global request. With `want_reply`, waits for the answer: `Ok(Some(data))` when
    /// accepted (with the reply's data), an error of kind `Refused` when refused; without it
    /// returns `Ok(None)` at once.
    pub fn global_request(
        &self,
        name: &str,
        data: &[u8],
        want_reply: bool,
    ) -> Result<Option<Vec<u8>>> {
        let shared = self.shared()?;
        if !want_reply {
            shared.with(|c| c.global_request(name, false, data))?;
            return Ok(None);
        }
        let id = self.global_request_id(&shared, |c| {
            c.global_request(name, true, data)
                .map(Option::unwrap_or_default)
        })?;
        self.await_global_reply(&shared, id, name).map(Some)
    }

    /// The id of the global request a caller-driven repeat resumes, or a new one `send`
    /// makes.
    pub(super) fn global_request_id(
        &self,
        shared: &SharedConnection,
        send: impl FnOnce(&mut crate::proto::Connection) -> Result<u64>,
    ) -> Result<u64> {
        match self
            .in_flight
            .resume(|o| matches!(o, InFlight::Global(_)))?
        {
            Some(InFlight::Global(id)) => Ok(id),
            _ => shared.with(send),
        }
    }

    /// Waits for the answer to global request `id`: its data when accepted, `Refused`
    /// otherwise. A caller-driven transport resumes the wait on the repeated call.
    pub(super) fn await_global_reply(
        &self,
        shared: &SharedConnection,
        id: u64,
        name: &str,
    ) -> Result<Vec<u8>> {
        let reply = shared.wait(self.timeout(), "the global request reply", |c| {
            c.take_global_reply(id).map(Ok)
        });
        let reply = self.in_flight.settle(InFlight::Global(id), reply)?;
        reply.ok_or_else(|| {
            Error::new(
                ErrorKind::Refused,
                format!("the peer refused the global request {name}"),
            )
        })
    }

    /// Sends DISCONNECT with `reason` (RFC 4250 §4.2.2 codes) and `description`, then closes.
    pub fn disconnect(&self, reason: u32, description: &str) {
        if let Ok(shared) = self.shared() {
            shared.with(|c| c.disconnect(reason, description));
        }
        self.close();
    }

    /// The user name of the last authentication attempt, if any.
    pub fn username(&self) -> Option<String> {
        let shared = self.shared().ok()?;
        let conn = shared.state.lock();
        Some(conn.username().to_owned()).filter(|u| !u.is_empty())
    }

    /// Changes this transport's configuration (copying it first if it is shared) and, once
    /// the transport runs, its connection.
    fn configure(
        &self,
        change: impl FnOnce(&mut ConnectionConfig),
        apply: impl FnOnce(&mut Connection),
    ) -> Result<()> {
        let running = match self.shared() {
            Ok(shared) => Some(shared),
            Err(e) if e.kind() == ErrorKind::State => None,
            Err(e) => return Err(e),
        };
        change(Arc::make_mut(&mut self.config.lock()));
        if let Some(shared) = running {
            shared.with(apply);
            shared.nudge_reader();
        }
        Ok(())
    }
}

/// The reason code an application's disconnect carries unless it says otherwise.
pub const DISCONNECT_BY_APPLICATION: u32 = msg::reason::BY_APPLICATION;
