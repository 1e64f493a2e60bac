//! What keeps a connection healthy over days: key re-exchange after a byte or time limit,
//! keepalives that detect a dead peer, IGNORE as cover traffic. These are the connection's
//! timers: [`Connection::poll_timeout`] says when the next is due.

use std::time::{Duration, Instant};

use super::super::kex::Phase;
use super::super::msg;
use super::global_requests::GlobalWaiter;
use super::Connection;
use crate::crypto::cipher;
use crate::log::Level;
use crate::wire::Writer;
use crate::{Error, ErrorKind, Result};

/// Default re-exchange limit: data in both directions under one set of keys.
pub const DEFAULT_REKEY_BYTES: u64 = 1 << 30;
/// Packets under one set of keys before a re-exchange, well before sequence numbers wrap.
const REKEY_PACKETS: u64 = 1 << 31;

/// The re-exchange and keepalive timers and counters.
#[derive(Debug)]
pub(super) struct Liveness {
    rekey_bytes: u64,
    rekey_interval: Option<Duration>,
    rekey_deadline: Option<Instant>,
    keepalive: Option<(Duration, u32)>,
    keepalive_deadline: Option<Instant>,
    keepalive_missed: u32,
    /// A packet arrived since the last keepalive tick.
    activity: bool,
    /// Completed key exchanges, the first included.
    pub kex_count: u64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            rekey_bytes: DEFAULT_REKEY_BYTES,
            rekey_interval: None,
            rekey_deadline: None,
            keepalive: None,
            keepalive_deadline: None,
            keepalive_missed: 0,
            activity: false,
            kex_count: 0,
        }
    }
}

impl Connection {
    /// Sets when keys are renewed: after `bytes` of data in both directions together (capped
    /// by the cipher's safe limit, RFC 4344 §3.2), and after `interval` if given.
    pub fn set_rekey_limits(&mut self, bytes: u64, interval: Option<Duration>) {
        self.liveness.rekey_bytes = bytes.max(1 << 16);
        self.liveness.rekey_interval = interval;
        self.liveness.rekey_deadline = None;
    }

    /// Sends a keepalive@openssh.com request after `interval` without traffic from the
    /// peer; after `max_missed` unanswered ones the connection fails. `None` turns it off.
    pub fn set_keepalive(&mut self, keepalive: Option<(Duration, u32)>) {
        self.liveness.keepalive = keepalive.filter(|(d, _)| !d.is_zero());
        self.liveness.keepalive_deadline = None;
        self.liveness.keepalive_missed = 0;
    }

    /// Completed key exchanges so far (1 after the first).
    pub fn kex_count(&self) -> u64 {
        self.liveness.kex_count
    }

    /// Starts a key re-exchange now, unless one is already under way.
    pub fn start_rekey(&mut self) -> Result<()> {
        self.check_alive()?;
        if !self.established {
            return Err(Error::new(
                ErrorKind::State,
                "the first key exchange has not completed",
            ));
        }
        if matches!(self.kex.phase, Phase::Idle) {
            let kexinit = self.kex.start(&self.prefs, self.rng.as_mut());
            self.write_now(&kexinit);
        }
        Ok(())
    }

    /// Called after each packet in either direction: re-exchanges keys when the limits say so.
    pub(super) fn rekey_if_due(&mut self) {
        if !self.established || !matches!(self.kex.phase, Phase::Idle) || self.error.is_some() {
            return;
        }
        let bytes = self.writer.bytes_since_keys + self.bytes_in_since_keys;
        let packets = self
            .writer
            .packets_since_keys
            .max(self.packets_in_since_keys);
        if bytes >= self.effective_rekey_bytes() || packets >= REKEY_PACKETS {
            self.log(Level::Info, || {
                format!("renewing keys after {bytes} bytes, {packets} packets")
            });
            let _ = self.start_rekey();
        }
    }

    /// The byte limit, lowered for block ciphers to 2^(L/4) blocks of L bits (RFC 4344
    /// §3.2). AEAD ciphers (chacha20-poly1305, AES-GCM) have no such bound this low.
    fn effective_rekey_bytes(&self) -> u64 {
        let block_limit = self
            .negotiated
            .as_ref()
            .and_then(|n| cipher::find(n.cipher_c2s))
            .filter(|c| !c.aead)
            .map(|c| {
                let block = c.block_size.max(8) as u64;
                (1u64 << (block * 8 / 4).min(62)).saturating_mul(block)
            });
        block_limit.map_or(self.liveness.rekey_bytes, |limit| {
            limit.min(self.liveness.rekey_bytes)
        })
    }

    /// A key exchange completed: restart the time limit.
    pub(super) fn on_kex_done(&mut self) {
        self.liveness.kex_count += 1;
        self.liveness.rekey_deadline = None;
    }

    /// A packet arrived: the peer is alive.
    pub(super) fn note_activity(&mut self) {
        self.liveness.activity = true;
        self.liveness.keepalive_missed = 0;
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let login = self
            .server
            .as_ref()
            .filter(|s| !s.auth.is_authenticated())
            .and_then(|s| s.login_deadline);
        [
            self.liveness.rekey_deadline,
            self.liveness.keepalive_deadline,
            login,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// True when a timer is configured but has no deadline yet: the next
    /// [`Self::handle_timeout`] starts it. Drivers that sleep until [`Self::poll_timeout`]
    /// call it first, so that setting a timer never needs a periodic wake-up.
    pub fn timers_unarmed(&self) -> bool {
        self.established
            && self.error.is_none()
            && ((self.liveness.rekey_interval.is_some() && self.liveness.rekey_deadline.is_none())
                || (self.liveness.keepalive.is_some()
                    && self.liveness.keepalive_deadline.is_none()))
    }

    /// Advances the timers to `now`: starts a due re-exchange, sends a due keepalive, or fails
    /// the connection when too many keepalives went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        self.check_alive()?;
        self.check_login_deadline(now)?;
        if !self.established {
            return Ok(());
        }
        if let Some(interval) = self.liveness.rekey_interval {
            match self.liveness.rekey_deadline {
                None => self.liveness.rekey_deadline = Some(now + interval),
                Some(d) if now >= d => {
                    self.start_rekey()?;
                    self.liveness.rekey_deadline = Some(now + interval);
                }
                Some(_) => {}
            }
        }
        self.keepalive_tick(now)
    }

    fn keepalive_tick(&mut self, now: Instant) -> Result<()> {
        let Some((interval, max_missed)) = self.liveness.keepalive else {
            return Ok(());
        };
        match self.liveness.keepalive_deadline {
            Some(d) if now < d => return Ok(()),
            None => {
                self.liveness.keepalive_deadline = Some(now + interval);
                return Ok(());
            }
            Some(_) => {}
        }
        self.liveness.keepalive_deadline = Some(now + interval);
        if std::mem::take(&mut self.liveness.activity) || !self.is_authenticated() {
            return Ok(());
        }
        if self.liveness.keepalive_missed >= max_missed {
            let e = Error::new(
                ErrorKind::Timeout,
                format!(
                    "the server did not answer {max_missed} keepalives sent {} s apart; connection considered dead",
                    interval.as_secs()
                ),
            );
            return Err(self.fail(e));
        }
        self.liveness.keepalive_missed += 1;
        self.send_global_request("keepalive@openssh.com", true, &[], GlobalWaiter::Keepalive);
        Ok(())
    }

    /// Sends SSH_MSG_IGNORE with `len` random bytes (traffic analysis cover, or a liveness
    /// poke that needs no answer).
    pub fn send_ignore(&mut self, len: usize) -> Result<()> {
        self.check_alive()?;
        let mut data = vec![0u8; len.min(crate::proto::MAX_PACKET_LEN / 2)];
        self.rng.fill(&mut data);
        let mut w = Writer::message(msg::IGNORE);
        w.string(&data);
        self.send(w.into_bytes());
        Ok(())
    }
}
