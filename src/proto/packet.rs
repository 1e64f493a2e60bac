//! The binary packet protocol (RFC 4253 §6): framing, padding, sequence numbers, and the
//! current sealing and opening keys. Encryption happens in place in the caller's buffers.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::crypto::cipher::{plaintext_opening_key, plaintext_sealing_key, OpeningKey, SealingKey};
use crate::crypto::compression::{Compressor, Decompressor};
use crate::crypto::rng::SecureRandom;
use crate::{Error, ErrorKind, Result};

/// Largest packet_length accepted from a peer. RFC 4253 requires 35000; OpenSSH sends up to
/// 256 KiB. Anything above is refused before a byte of it is buffered.
pub const MAX_PACKET_LEN: usize = 256 * 1024;

/// Padding bytes come from a pool refilled in bulk, so that small packets do not each cost
/// a call into the RNG.
struct PaddingPool {
    bytes: Vec<u8>,
    used: usize,
}

impl PaddingPool {
    fn take(&mut self, rng: &mut dyn SecureRandom, n: usize) -> &[u8] {
        if self.used + n > self.bytes.len() {
            self.bytes.resize(4096, 0);
            rng.fill(&mut self.bytes);
            self.used = 0;
        }
        let start = self.used;
        self.used += n;
        self.bytes.get(start..self.used).unwrap_or_default()
    }
}

/// Outbound half: frames payloads into sealed packets.
pub struct PacketWriter {
    key: Box<dyn SealingKey>,
    seq: u32,
    padding: PaddingPool,
    /// Bytes of payload sealed since the last key change, for rekey accounting.
    pub bytes_since_keys: u64,
    /// Packets sealed since the last key change.
    pub packets_since_keys: u64,
    /// zlib stream for outgoing payloads, once compression is in force.
    compressor: Option<Compressor>,
}

impl PacketWriter {
    /// A writer with no encryption, as at the start of a connection.
    pub fn new() -> Self {
        PacketWriter {
            key: plaintext_sealing_key(),
            seq: 0,
            padding: PaddingPool {
                bytes: Vec::new(),
                used: 0,
            },
            bytes_since_keys: 0,
            packets_since_keys: 0,
            compressor: None,
        }
    }

    /// Compresses every later payload with a fresh zlib stream (`on`), or stops.
    pub fn set_compression(&mut self, on: bool) {
        self.compressor = on.then(Compressor::new);
    }

    /// Starts a packet at the end of `out`; append the payload, then call [`Self::finish`].
    pub fn begin(out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0u8; 5]);
        start
    }

    /// Pads, frames and seals the packet begun at `start`, whose payload is the rest of `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>, start: usize, rng: &mut dyn SecureRandom) {
        let raw_len = out.len() - start - 5;
        if let Some(compressor) = &mut self.compressor {
            let raw = out.split_off(start + 5);
            compressor.compress(&raw, out);
        }
        let payload_len = out.len() - start - 5;
        let block = self.key.block_size().max(8);
        let unpadded = if self.key.length_excluded() {
            1 + payload_len
        } else {
            5 + payload_len
        };
        let mut pad = block - unpadded % block;
        if pad < 4 {
            pad += block;
        }
        out.extend_from_slice(self.padding.take(rng, pad));
        let packet_len = (1 + payload_len + pad) as u32;
        let mut header = [0u8; 5];
        header[..4].copy_from_slice(&packet_len.to_be_bytes());
        header[4] = pad as u8;
        if let Some(slot) = out.get_mut(start..start + 5) {
            slot.copy_from_slice(&header);
        }
        let tag_len = self.key.tag_len();
        let end = out.len();
        out.resize(end + tag_len, 0);
        if let Some(region) = out.get_mut(start..) {
            let (packet, tag) = region.split_at_mut(end - start);
            self.key.seal(self.seq, packet, tag);
        }
        self.seq = self.seq.wrapping_add(1);
        self.bytes_since_keys += raw_len as u64;
        self.packets_since_keys += 1;
    }

    /// Frames one complete payload.
    pub fn write(&mut self, out: &mut Vec<u8>, payload: &[u8], rng: &mut dyn SecureRandom) {
        let start = Self::begin(out);
        out.extend_from_slice(payload);
        self.finish(out, start, rng);
    }

    /// Switches to new keys; with strict kex the sequence number restarts at zero.
    pub fn set_key(&mut self, key: Box<dyn SealingKey>, reset_seq: bool) {
        self.key = key;
        self.bytes_since_keys = 0;
        self.packets_since_keys = 0;
        if reset_seq {
            self.seq = 0;
        }
    }
}

/// Inbound half: finds, authenticates and decrypts packets in a receive buffer.
pub struct PacketReader {
    key: Box<dyn OpeningKey>,
    seq: u32,
    /// packet_length of a packet whose prefix was already decrypted, awaiting its remainder.
    pending_len: Option<usize>,
    /// Bytes of payload opened since the last key change.
    pub bytes_since_keys: u64,
    /// Packets opened since the last key change.
    pub packets_since_keys: u64,
    /// zlib stream for incoming payloads, once compression is in force.
    decompressor: Option<Decompressor>,
    /// The last payload, when it had to be decompressed.
    pub inflated: Vec<u8>,
    /// A packet failed its integrity check (the disconnect reason is then MAC_ERROR).
    pub integrity_failed: bool,
}

/// Where the payload of a decoded packet sits in the buffer given to [`PacketReader::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
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
    pub fn new() -> Self {
        PacketReader {
            key: plaintext_opening_key(),
            seq: 0,
            pending_len: None,
            bytes_since_keys: 0,
            packets_since_keys: 0,
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
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Option<Decoded>> {
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
        let raw_len = if inflated {
            self.inflated.len()
        } else {
            payload_end - 5
        };
        self.bytes_since_keys += raw_len as u64;
        self.packets_since_keys += 1;
        Ok(Some(Decoded {
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

    /// Switches to new keys; with strict kex the sequence number restarts at zero.
    pub fn set_key(&mut self, key: Box<dyn OpeningKey>, reset_seq: bool) {
        self.key = key;
        self.bytes_since_keys = 0;
        self.packets_since_keys = 0;
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
