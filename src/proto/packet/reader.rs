//! The inbound half: finds, authenticates and decrypts packets in a receive buffer.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::VecDeque;

use super::MAX_PACKET_LEN;
use crate::crypto::cipher::{plaintext_opening_key, OpeningKey};
use crate::crypto::compression::Decompressor;
use crate::{Error, ErrorKind, Result};

/// A change the connection queues for a [`PacketReader`] a driver holds, to apply before
/// it opens the next packet.
pub enum ReaderChange {
    /// New keys; with strict kex the sequence number restarts.
    Key(Box<dyn OpeningKey>, bool),
    /// Decompression starts (true) or stops.
    Compression(bool),
}

/// The connection's packet reader, or, once a driver took it, the changes queued for it.
pub enum ReaderSlot {
    /// The connection opens packets itself.
    Here(PacketReader),
    /// A driver holds the reader.
    Away(VecDeque<ReaderChange>),
}

impl ReaderSlot {
    /// Applies a change now, or queues it for the driver holding the reader.
    pub fn apply(&mut self, change: ReaderChange) {
        match self {
            ReaderSlot::Here(reader) => reader.apply(change),
            ReaderSlot::Away(changes) => changes.push_back(change),
        }
    }

    /// Takes the reader, leaving an empty queue; `None` once taken.
    pub fn take(&mut self) -> Option<PacketReader> {
        match std::mem::replace(self, ReaderSlot::Away(VecDeque::new())) {
            ReaderSlot::Here(reader) => Some(reader),
            away @ ReaderSlot::Away(_) => {
                *self = away;
                None
            }
        }
    }

    /// Applies the queued changes to the reader the driver holds.
    pub fn update(&mut self, reader: &mut PacketReader) {
        if let ReaderSlot::Away(changes) = self {
            changes.drain(..).for_each(|change| reader.apply(change));
        }
    }
}

/// Inbound half: finds, authenticates and decrypts packets in a receive buffer.
pub struct PacketReader {
    key: Box<dyn OpeningKey>,
    seq: u32,
    /// packet_length of a packet whose prefix was already decrypted, awaiting its remainder.
    pending_len: Option<usize>,
    /// zlib stream for incoming payloads, once compression is in force.
    decompressor: Option<Decompressor>,
    /// The last payload, when it had to be decompressed.
    pub inflated: Vec<u8>,
    /// A packet failed its integrity check (the disconnect reason is then MAC_ERROR).
    pub integrity_failed: bool,
}

/// Where the payload of a decoded packet sits in the buffer given to [`PacketReader::decode`].
/// A driver that opens packets itself hands the payload and `seq` to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Bytes of the buffer the packet took.
    pub consumed: usize,
    /// Payload start offset.
    pub payload_start: usize,
    /// Payload end offset.
    pub payload_end: usize,
    /// The packet's sequence number.
    pub seq: u32,
    /// The payload was compressed: it is in [`PacketReader::inflated`], not in the buffer.
    pub inflated: bool,
}

impl PacketReader {
    /// A reader with no encryption, as at the start of a connection.
    pub(crate) fn new() -> Self {
        PacketReader {
            key: plaintext_opening_key(),
            seq: 0,
            pending_len: None,
            decompressor: None,
            inflated: Vec::new(),
            integrity_failed: false,
        }
    }

    /// Decompresses every later payload with a fresh zlib stream (`on`), or stops.
    pub fn set_compression(&mut self, on: bool) {
        self.decompressor = on.then(Decompressor::new);
    }

    /// Decodes the packet at the start of `buf` in place. `Ok(None)` means more bytes are
    /// needed; the prefix work done so far is remembered for the next call with the same start.
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Option<Opened>> {
        let packet_len = match self.pending_len {
            Some(n) => n,
            None => {
                let prefix_len = self.key.length_prefix_len();
                let Some(prefix) = buf.get_mut(..prefix_len) else {
                    return Ok(None);
                };
                let n = self.key.packet_length(self.seq, prefix) as usize;
                self.check_length(n)?;
                self.pending_len = Some(n);
                n
            }
        };
        let tag_len = self.key.tag_len();
        let total = 4 + packet_len + tag_len;
        let Some(whole) = buf.get_mut(..total) else {
            return Ok(None);
        };
        self.pending_len = None;
        let (packet, tag) = whole.split_at_mut(4 + packet_len);
        if let Err(e) = self.key.open(self.seq, packet, tag) {
            self.integrity_failed = true;
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{e} (packet {})", self.seq),
            ));
        }
        let pad = usize::from(packet.get(4).copied().unwrap_or(0));
        if pad < 4 || pad + 1 > packet_len {
            return Err(Error::protocol(format!("invalid padding length {pad}")));
        }
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let payload_end = 4 + packet_len - pad;
        let inflated = match &mut self.decompressor {
            Some(d) => {
                self.inflated.clear();
                let compressed = packet.get(5..payload_end).unwrap_or_default();
                d.decompress(compressed, &mut self.inflated, MAX_PACKET_LEN)
                    .map_err(|e| Error::protocol(format!("decompression failed: {e}")))?;
                true
            }
            None => false,
        };
        Ok(Some(Opened {
            consumed: total,
            payload_start: 5,
            payload_end,
            seq,
            inflated,
        }))
    }

    fn check_length(&self, n: usize) -> Result<()> {
        if n > MAX_PACKET_LEN {
            return Err(Error::protocol(format!(
                "packet length {n} exceeds the limit of {MAX_PACKET_LEN} bytes"
            )));
        }
        let block = self.key.block_size().max(8);
        let framed = if self.key.length_excluded() { n } else { n + 4 };
        if n < 5 || framed % block != 0 {
            return Err(Error::protocol(format!(
                "packet length {n} is not a multiple of the cipher block size {block}"
            )));
        }
        Ok(())
    }

    /// Applies a change the connection queued.
    pub fn apply(&mut self, change: ReaderChange) {
        match change {
            ReaderChange::Key(key, reset_seq) => self.set_key(key, reset_seq),
            ReaderChange::Compression(on) => self.set_compression(on),
        }
    }

    /// Switches to new keys; with strict kex the sequence number restarts at zero.
    pub fn set_key(&mut self, key: Box<dyn OpeningKey>, reset_seq: bool) {
        self.key = key;
        if reset_seq {
            self.seq = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::super::PacketWriter;
    use super::*;
    use crate::crypto::rng::OsRandom;

    #[test]
    fn plaintext_round_trip_and_split_input() {
        let mut w = PacketWriter::new();
        let mut out = Vec::new();
        w.write(&mut out, b"\x05hello", &mut OsRandom);
        w.write(&mut out, b"\x02", &mut OsRandom);
        assert_eq!(out.len() % 8, 0);
        let mut r = PacketReader::new();
        assert_eq!(r.decode(&mut out[..3]).unwrap(), None);
        let d = r.decode(&mut out).unwrap().unwrap();
        assert_eq!(&out[d.payload_start..d.payload_end], b"\x05hello");
        let mut rest = out[d.consumed..].to_vec();
        let d2 = r.decode(&mut rest).unwrap().unwrap();
        assert_eq!(&rest[d2.payload_start..d2.payload_end], b"\x02");
        assert_eq!(d2.seq, 1);
    }

    #[test]
    fn hostile_lengths_are_refused_before_buffering() {
        let mut r = PacketReader::new();
        let mut huge = [0x80, 0, 0, 0, 4, 0, 0, 0];
        assert!(r.decode(&mut huge).is_err());
        let mut r = PacketReader::new();
        let mut max = [0xff, 0xff, 0xff, 0xff];
        let e = r.decode(&mut max).unwrap_err();
        assert!(e.message().contains("exceeds"), "{e}");
        let mut r = PacketReader::new();
        let mut tiny = [0, 0, 0, 0];
        assert!(r.decode(&mut tiny).is_err());
    }

    #[test]
    fn bad_padding_is_refused() {
        let mut r = PacketReader::new();
        let mut p = [0, 0, 0, 12, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(r.decode(&mut p).is_err());
    }
}
