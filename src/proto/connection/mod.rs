//! One SSH connection, client or server role, as a sans-IO state machine.
//!
//! Call order: create with [`Connection::client`] or [`Connection::server`], then repeat:
//! feed received bytes to [`Connection::handle_bytes`] (or `handle_bytes_in_place`); take
//! what changed from [`Connection::poll_event`] and a server's decisions from
//! [`Connection::take_server_event`]; call [`Connection::handle_timeout`] when
//! [`Connection::poll_timeout`] is due; send what [`Connection::poll_transmit`] moves into
//! the driver's buffer. Commands (authentication, channels) queue their messages the same
//! way. Time is always passed in. The first fatal error is sticky: every later call returns
//! it, and the DISCONNECT it queued can still be flushed.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod auth;
mod channels;
#[cfg(test)]
mod decision_tests;
mod decisions;
#[cfg(test)]
mod event_tests;
mod events;
mod global_requests;
mod incoming;
mod legality;
mod liveness;
mod logging;
mod server;
mod server_auth;
#[cfg(test)]
mod server_tests;

use std::collections::VecDeque;

use super::channel::Channels;
use super::config::ConnectionConfig;
use super::kex::{Kex, Phase, Role};
use super::kexinit::{Negotiated, Preferences};
use super::msg;
use super::packet::{NewSealingKey, PacketReader, PacketWriter, ReaderChange, ReaderSlot, Sealer};
use super::userauth::ClientAuth;
use super::version::{our_version, VersionReader};
use crate::crypto::compression;
use crate::crypto::rng::SecureRandom;
use crate::keys::PublicKey;
use crate::log::Level;
use crate::wire::{Reader, Writer};
use crate::{Error, ErrorKind, Result};
pub use auth::PublicKeySigning;
pub use events::Event;
use events::Events;
use global_requests::GlobalRequests;
use incoming::Incoming;
use legality::Verdict;
use liveness::Liveness;
pub use liveness::DEFAULT_REKEY_BYTES;
use logging::LogBuffer;

/// Messages held during a key exchange beyond which the connection fails. The application's
/// own data waits at a far lower mark (the transport's send queue limit); only answers to a
/// peer's requests can pile up here.
const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;
/// The same bound in messages, for floods of tiny answers.
const MAX_HELD_MESSAGES: usize = 64 * 1024;

/// One connection.
pub struct Connection {
    rng: Box<dyn SecureRandom>,
    prefs: Preferences,
    our_version: Vec<u8>,
    peer_version: Option<Vec<u8>>,
    version_reader: VersionReader,
    inbound: Vec<u8>,
    outbound: Vec<u8>,
    reader: ReaderSlot,
    writer: PacketWriter,
    /// Payload bytes and packets received since the last key change, for rekey accounting.
    bytes_in_since_keys: u64,
    packets_in_since_keys: u64,
    /// A received packet failed its integrity check (the disconnect reason is MAC_ERROR).
    integrity_failed: bool,
    kex: Kex,
    /// Payloads queued while a key exchange forbids sending them, with their total size.
    held: VecDeque<Vec<u8>>,
    held_bytes: usize,
    /// The first key exchange finished (both NEWKEYS exchanged).
    established: bool,
    host_key: Option<PublicKey>,
    negotiated: Option<Negotiated>,
    server_sig_algs: Option<Vec<String>>,
    auth: ClientAuth,
    channels: Channels,
    liveness: Liveness,
    globals: GlobalRequests,
    incoming: Incoming,
    events: Events,
    log: LogBuffer,
    /// Delayed compression (zlib@openssh.com) negotiated, waiting for USERAUTH_SUCCESS.
    compression_out_pending: bool,
    compression_in_pending: bool,
    /// Server-only state; None for a client.
    server: Option<Box<server::ServerState>>,
    error: Option<Error>,
}

impl Connection {
    /// A client connection that starts by sending its identification and KEXINIT.
    pub fn client(config: &ConnectionConfig, rng: Box<dyn SecureRandom>) -> Self {
        let mut conn = Connection::new(config.preferences.clone(), rng, Kex::new(Role::Client));
        conn.configure(config);
        let kexinit = conn.kex.start(&conn.prefs, conn.rng.as_mut());
        conn.write_now(&kexinit);
        conn
    }

    /// Puts `config`'s key renewal, keepalive and channel sizes in force.
    fn configure(&mut self, config: &ConnectionConfig) {
        self.set_rekey_limits(config.rekey_bytes, config.rekey_interval);
        self.set_keepalive(config.keepalive);
        self.set_channel_limits(config.channel_limits);
    }

    /// Either role, with our identification queued and nothing else.
    fn new(prefs: Preferences, rng: Box<dyn SecureRandom>, kex: Kex) -> Self {
        let our_version = our_version().into_bytes();
        let mut outbound = our_version.clone();
        outbound.extend_from_slice(b"\r\n");
        Connection {
            rng,
            prefs,
            our_version,
            peer_version: None,
            version_reader: VersionReader::default(),
            inbound: Vec::new(),
            outbound,
            reader: ReaderSlot::Here(PacketReader::new()),
            writer: PacketWriter::new(),
            bytes_in_since_keys: 0,
            packets_in_since_keys: 0,
            integrity_failed: false,
            kex,
            held: VecDeque::new(),
            held_bytes: 0,
            established: false,
            host_key: None,
            negotiated: None,
            server_sig_algs: None,
            auth: ClientAuth::new(),
            channels: Channels::default(),
            liveness: Liveness::default(),
            globals: GlobalRequests::default(),
            incoming: Incoming::default(),
            events: Events::default(),
            log: LogBuffer::default(),
            compression_out_pending: false,
            compression_in_pending: false,
            server: None,
            error: None,
        }
    }

    /// Replaces a client's algorithm preferences from the next key exchange on. A server's
    /// are fixed when it starts: its host key list was derived from them.
    pub fn set_preferences(&mut self, prefs: Preferences) -> Result<()> {
        if self.server.is_some() {
            return Err(Error::new(
                ErrorKind::State,
                "a server's algorithms are fixed once it has started",
            ));
        }
        self.prefs = prefs;
        Ok(())
    }

    /// The sticky error, if the connection has failed or ended.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    fn check_alive(&self) -> Result<()> {
        self.error.clone().map_or(Ok(()), Err)
    }

    /// For a call only a client makes: fails on a server connection, then as
    /// [`Self::check_alive`].
    fn client_call(&self) -> Result<()> {
        if self.kex.role == Role::Server {
            return Err(Error::new(
                ErrorKind::State,
                "a client's call, and this is a server connection",
            ));
        }
        self.check_alive()
    }

    /// Feeds bytes received from the peer, buffering any incomplete packet internally.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<()> {
        self.check_alive()?;
        let mut buf = std::mem::take(&mut self.inbound);
        buf.extend_from_slice(data);
        let consumed = self.handle_bytes_in_place(&mut buf)?;
        buf.drain(..consumed.min(buf.len()));
        self.inbound = buf;
        Ok(())
    }

    /// Processes received bytes where they lie (decrypting in place, no copy) and returns
    /// how many were consumed. The caller keeps the rest and passes it again, at the start of
    /// `data`, with the bytes that follow. Do not mix with [`Self::handle_bytes`].
    pub fn handle_bytes_in_place(&mut self, data: &mut [u8]) -> Result<usize> {
        self.check_alive()?;
        self.process(data).map_err(|e| self.fail(e))
    }

    /// The peer closed the stream.
    pub fn handle_eof(&mut self) {
        let who = match self.kex.role {
            Role::Client => "connection closed by the server",
            Role::Server => "connection closed by the client",
        };
        self.end_stream(who.to_owned());
    }

    /// The stream failed (reset by the peer, a broken pipe, a failed poll): the connection
    /// ends as if the peer had closed it, and the message says what failed, so that a reset
    /// is not mistaken for an orderly close.
    pub fn handle_stream_error(&mut self, cause: &dyn std::fmt::Display) {
        let peer = match self.kex.role {
            Role::Client => "server",
            Role::Server => "client",
        };
        self.end_stream(format!("connection to the {peer} lost: {cause}"));
    }

    fn end_stream(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(Error::new(ErrorKind::Closed, message));
            self.channels.close_all();
        }
    }

    /// Moves the bytes to send to the peer into `buf` (cleared first); the connection
    /// keeps `buf`'s allocation for what it queues next, so a driver that alternates two
    /// buffers allocates nothing per packet.
    #[must_use = "the bytes moved into `buf` must be sent"]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        let ready = self.writer.transmittable(self.outbound.len());
        if ready == self.outbound.len() {
            std::mem::swap(&mut self.outbound, buf);
        } else {
            // A key change follows: the bytes before it go first, so that the driver
            // seals them under the keys they were framed for.
            buf.extend(self.outbound.drain(..ready));
        }
        self.writer.transmitted(ready);
        buf.len()
    }

    /// Hands the sealer to a driver that seals outside its lock. Call right after
    /// [`Self::poll_transmit`] moved everything out (`None` otherwise, and once taken); from
    /// then on every transmitted byte must go through [`Sealer::seal_all`], and the keys from
    /// [`Self::poll_sealing_key`] must be applied before the bytes transmitted after them.
    pub fn take_sealer(&mut self) -> Option<Sealer> {
        self.writer.take_sealer(self.outbound.len())
    }

    /// The next keys for a driver's sealer, once every byte framed before them has been
    /// transmitted; [`Self::poll_transmit`] stops at each change until this is taken.
    #[must_use = "the keys must be put in force before sealing what is transmitted next"]
    pub fn poll_sealing_key(&mut self) -> Option<NewSealingKey> {
        self.writer.poll_sealing_key()
    }

    /// Hands the packet reader to a driver that opens packets outside its lock, once the
    /// peer's version line has been read (`None` before, and once taken). From then on the
    /// driver passes each opened payload to [`Self::handle_packet`] and calls
    /// [`Self::update_packet_reader`] before opening the next; `handle_bytes` no longer reads
    /// packets.
    pub fn take_packet_reader(&mut self) -> Option<PacketReader> {
        if self.peer_version.is_none() || !self.inbound.is_empty() {
            return None;
        }
        self.reader.take()
    }

    /// Handles one packet a driver opened with the reader it took.
    pub fn handle_packet(&mut self, payload: &[u8], seq: u32) -> Result<()> {
        self.check_alive()?;
        self.handle_payload(payload, seq).map_err(|e| self.fail(e))
    }

    /// A driver's reader could not open a packet: the connection ends with `e`.
    pub fn handle_unopenable(&mut self, e: Error, integrity_failed: bool) -> Error {
        self.integrity_failed = integrity_failed;
        self.fail(e)
    }

    /// Applies the key and compression changes handled packets made to a driver's reader.
    pub fn update_packet_reader(&mut self, reader: &mut PacketReader) {
        self.reader.update(reader);
    }

    /// Bytes the writer can send now: what the peer has not yet taken off our hands.
    pub fn outbound_backlog(&self) -> usize {
        self.outbound.len()
    }

    /// Bytes queued to send, including messages held back during a key exchange.
    pub fn pending_transmit(&self) -> usize {
        let behind_reply = self
            .server
            .as_ref()
            .map_or(0, |s| s.decisions.behind_reply_bytes);
        self.outbound.len() + self.held_bytes + behind_reply
    }

    /// Ends the connection with DISCONNECT `reason` and `description`.
    pub fn disconnect(&mut self, reason: u32, description: &str) {
        if self.error.is_none() {
            self.queue_disconnect(reason, description);
            self.error = Some(Error::new(
                ErrorKind::Closed,
                "connection closed by the application",
            ));
            self.channels.close_all();
        }
    }

    /// True once user authentication succeeded.
    pub fn is_authenticated(&self) -> bool {
        match &self.server {
            Some(server) => server.auth.is_authenticated(),
            None => self.auth.status == super::userauth::AuthStatus::Success,
        }
    }

    /// The server's host key, once the first key exchange has verified its signature; for a
    /// server, the key it signed with.
    pub fn host_key(&self) -> Option<&PublicKey> {
        self.host_key.as_ref()
    }

    /// True once the first key exchange is complete.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// The algorithms of the last key exchange.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    fn process(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut pos = 0;
        if self.peer_version.is_none() {
            let (line, used) = self.version_reader.parse(buf)?;
            pos = used;
            match line {
                None => return Ok(pos),
                Some(line) => {
                    let peer = match self.kex.role {
                        Role::Client => "server",
                        Role::Server => "client",
                    };
                    self.log(Level::Info, || {
                        format!("{peer} version: {}", String::from_utf8_lossy(&line))
                    });
                    self.peer_version = Some(line);
                }
            }
        }
        while self.error.is_none() && !self.input_stalled() {
            let (ReaderSlot::Here(reader), Some(rest)) = (&mut self.reader, buf.get_mut(pos..))
            else {
                break;
            };
            let d = match reader.decode(rest) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    self.integrity_failed = reader.integrity_failed;
                    return Err(e);
                }
            };
            let inflated = d.inflated.then(|| std::mem::take(&mut reader.inflated));
            let payload = match &inflated {
                Some(bytes) => bytes.as_slice(),
                None => rest.get(d.payload_start..d.payload_end).unwrap_or_default(),
            };
            self.handle_payload(payload, d.seq)?;
            if let (Some(bytes), ReaderSlot::Here(reader)) = (inflated, &mut self.reader) {
                reader.inflated = bytes;
            }
            pos += d.consumed;
        }
        Ok(pos)
    }

    /// One received payload, whoever opened it.
    fn handle_payload(&mut self, payload: &[u8], seq: u32) -> Result<()> {
        self.note_activity();
        self.log_packet("received", payload);
        self.bytes_in_since_keys += payload.len() as u64;
        self.packets_in_since_keys += 1;
        self.dispatch(payload, seq)?;
        self.rekey_if_due();
        Ok(())
    }

    fn dispatch(&mut self, payload: &[u8], seq: u32) -> Result<()> {
        let number = *payload
            .first()
            .ok_or_else(|| Error::protocol("empty packet"))?;
        if self.kex.ignore_next_kex_packet && (30..=49).contains(&number) {
            self.kex.ignore_next_kex_packet = false;
            return Ok(());
        }
        if self.wait_if_held(number, payload, seq) {
            return Ok(());
        }
        match self.verdict(number) {
            Verdict::Fatal(why) => return Err(Error::protocol(why)),
            Verdict::Unimplemented => {
                let mut w = Writer::message(msg::UNIMPLEMENTED);
                w.u32(seq);
                self.send(w.into_bytes());
                return Ok(());
            }
            Verdict::Ignore => return Ok(()),
            Verdict::Handle => {}
        }
        match number {
            msg::DISCONNECT => return Err(peer_disconnect(payload, self.kex.role)),
            msg::IGNORE | msg::DEBUG | msg::UNIMPLEMENTED => {}
            msg::KEXINIT => {
                let first_packet = seq == 0 && !self.established;
                let out =
                    self.kex
                        .on_kexinit(payload, &self.prefs, self.rng.as_mut(), first_packet)?;
                out.iter().for_each(|p| self.write_now(p));
            }
            msg::NEWKEYS => self.on_newkeys()?,
            _ if self.kex.role == Role::Server => self.dispatch_server(number, payload)?,
            _ => self.dispatch_client(number, payload)?,
        }
        self.note_handled(number, payload);
        Ok(())
    }

    /// The peer's NEWKEYS: its keys are in force from the next packet on.
    fn on_newkeys(&mut self) -> Result<()> {
        let opening = self.kex.on_newkeys()?;
        self.reader
            .apply(ReaderChange::Key(opening, self.kex.strict));
        self.bytes_in_since_keys = 0;
        self.packets_in_since_keys = 0;
        let method = self
            .negotiated
            .as_ref()
            .map_or("none", |n| match self.kex.role {
                Role::Client => n.compression_s2c,
                Role::Server => n.compression_c2s,
            });
        self.compression_in_pending = self.start_compression(method, false);
        self.on_kex_done();
        if !self.established {
            self.established = true;
            if self.kex.role == Role::Client {
                self.send(ClientAuth::service_request());
            }
        }
        Ok(())
    }

    /// The client's handling of messages past the transport layer.
    fn dispatch_client(&mut self, number: u8, payload: &[u8]) -> Result<()> {
        match number {
            msg::KEX_DH_GEX_GROUP if matches!(self.kex.phase, Phase::AwaitGexGroup { .. }) => {
                let init = self.kex.on_gex_group(payload, self.rng.as_mut())?;
                self.write_now(&init);
            }
            msg::KEX_ECDH_REPLY | msg::KEX_DH_GEX_REPLY => self.on_kex_reply(payload)?,
            msg::SERVICE_ACCEPT => self.auth.on_service_accept(payload)?,
            msg::EXT_INFO => self.on_ext_info(payload)?,
            msg::USERAUTH_FAILURE => {
                self.auth.on_failure(payload)?;
                let status = format!("{:?}", self.auth.status);
                self.log(Level::Info, || format!("authentication refused: {status}"));
            }
            msg::USERAUTH_SUCCESS => {
                self.auth.on_success()?;
                // zlib@openssh.com starts with the packets after USERAUTH_SUCCESS.
                if std::mem::take(&mut self.compression_in_pending) {
                    self.reader.apply(ReaderChange::Compression(true));
                }
                if std::mem::take(&mut self.compression_out_pending) {
                    self.writer.set_compression(true);
                }
                let user = self.auth.username.clone();
                self.log(Level::Info, || format!("authenticated as {user}"));
            }
            msg::USERAUTH_BANNER => self.auth.on_banner(payload)?,
            msg::USERAUTH_60 => {
                if let Err(e) = self.auth.on_60(payload) {
                    if e.kind() == ErrorKind::Protocol {
                        return Err(e);
                    }
                }
            }
            msg::GLOBAL_REQUEST => self.on_global_request(payload)?,
            msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => self.on_global_reply(payload)?,
            msg::CHANNEL_OPEN => self.on_channel_open_to_client(payload)?,
            _ => {
                for reply in self.channels.handle(payload)? {
                    self.send(reply);
                }
            }
        }
        Ok(())
    }

    fn on_kex_reply(&mut self, payload: &[u8]) -> Result<()> {
        let peer = self.peer_version.clone().unwrap_or_default();
        let outcome = self.kex.on_reply(payload, &self.our_version, &peer)?;
        if let Some(known) = &self.host_key {
            if *known != outcome.host_key {
                return Err(Error::new(
                    ErrorKind::HostKeyRejected,
                    "server host key changed during re-exchange",
                ));
            }
        }
        self.write_now(&outcome.newkeys);
        self.writer
            .set_key(outcome.sealing, self.kex.strict, self.outbound.len());
        self.compression_out_pending =
            self.start_compression(outcome.negotiated.compression_c2s, true);
        self.log_kex_summary(&outcome.negotiated, &outcome.host_key);
        self.host_key = Some(outcome.host_key);
        self.negotiated = Some(outcome.negotiated);
        self.flush_held();
        Ok(())
    }

    /// Messages held during the exchange go out under the new keys.
    fn flush_held(&mut self) {
        while let Some(p) = self.held.pop_front() {
            self.held_bytes -= p.len();
            self.write_now(&p);
        }
    }

    fn log_kex_summary(&mut self, n: &Negotiated, host_key: &PublicKey) {
        let summary = format!(
            "key exchange done: kex {}, host key {} {}, cipher {}/{}, MAC {}/{}, compression {}/{}",
            n.kex,
            n.host_key,
            host_key.fingerprint_sha256(),
            n.cipher_c2s,
            n.cipher_s2c,
            n.mac_c2s.unwrap_or("implicit"),
            n.mac_s2c.unwrap_or("implicit"),
            n.compression_c2s,
            n.compression_s2c,
        );
        self.log(Level::Info, || summary);
    }

    fn on_ext_info(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let count = r.u32("extension count")?;
        for _ in 0..count {
            let name = r.string("extension name")?;
            let value = r.string("extension value")?;
            if name == b"server-sig-algs" {
                let list = Reader::new(&crate::wire::string_bytes(value))
                    .name_list("server-sig-algs")?
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                self.server_sig_algs = Some(list);
            }
        }
        Ok(())
    }

    fn on_global_request(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        r.string("request name")?;
        if r.bool("want reply")? {
            self.send(vec![msg::REQUEST_FAILURE]);
        }
        Ok(())
    }

    /// Puts `method` in force for one direction after new keys; returns true when it is a
    /// delayed method that must wait for authentication.
    fn start_compression(&mut self, method: &str, outgoing: bool) -> bool {
        let algorithm = compression::find(method);
        let on = algorithm.is_some_and(|a| !a.identity);
        let delayed = algorithm.is_some_and(|a| a.delayed) && !self.is_authenticated();
        if outgoing {
            self.writer.set_compression(on && !delayed);
        } else {
            self.reader.apply(ReaderChange::Compression(on && !delayed));
        }
        on && delayed
    }

    /// Records the first fatal error, queues a DISCONNECT for it, and returns it.
    fn fail(&mut self, e: Error) -> Error {
        if self.error.is_none() {
            let reason = match e.kind() {
                ErrorKind::HostKeyRejected => msg::reason::HOST_KEY_NOT_VERIFIABLE,
                _ if self.integrity_failed => msg::reason::MAC_ERROR,
                _ if !self.established => msg::reason::KEY_EXCHANGE_FAILED,
                _ => msg::reason::PROTOCOL_ERROR,
            };
            if e.kind() != ErrorKind::Closed {
                self.queue_disconnect(reason, e.message());
            }
            self.log(Level::Error, || {
                format!("connection failed: {}", e.message())
            });
            self.error = Some(e.clone());
            self.channels.close_all();
        }
        self.error.clone().unwrap_or(e)
    }

    fn queue_disconnect(&mut self, reason: u32, description: &str) {
        let mut w = Writer::message(msg::DISCONNECT);
        w.u32(reason).string(description).string("");
        self.write_now(w.as_bytes());
    }

    /// Frames and seals a payload immediately, whatever the key exchange state.
    fn write_now(&mut self, payload: &[u8]) {
        self.log_packet("sent", payload);
        self.writer
            .write(&mut self.outbound, payload, self.rng.as_mut());
    }

    /// Sends a payload, or holds it while our key exchange forbids non-kex messages.
    fn send(&mut self, payload: Vec<u8>) {
        if self.sending_held() {
            self.held_bytes += payload.len();
            self.held.push_back(payload);
            if self.held_bytes > MAX_HELD_BYTES || self.held.len() > MAX_HELD_MESSAGES {
                // A peer that keeps asking for answers but never finishes the exchange
                // (Go CVE-2025-22869) is cut off rather than buffered for.
                let e = Error::protocol(
                    "the peer keeps sending requests without completing the key exchange",
                );
                self.fail(e);
            }
        } else {
            self.write_now(&payload);
        }
    }

    /// Between our KEXINIT and our NEWKEYS only key exchange messages may be sent.
    fn sending_held(&self) -> bool {
        matches!(
            self.kex.phase,
            Phase::SentKexInit { .. }
                | Phase::AwaitReply { .. }
                | Phase::AwaitInit { .. }
                | Phase::AwaitGexInit { .. }
        )
    }
}

fn peer_disconnect(payload: &[u8], role: Role) -> Error {
    let mut r = Reader::new(payload);
    let _ = r.u8("message number");
    let reason = r.u32("reason code").unwrap_or(0);
    let description = r
        .string("description")
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    Error::new(
        ErrorKind::Closed,
        format!(
            "{} disconnected: {description} (reason {reason})",
            match role {
                Role::Client => "server",
                Role::Server => "client",
            }
        ),
    )
}
