//! The outbound half: the connection frames and pads packets; a [`Sealer`] encrypts them,
//! inside the connection or, once a driver has taken it, outside the driver's lock.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::VecDeque;

use crate::crypto::cipher::{plaintext_sealing_key, SealingKey};
use crate::crypto::compression::Compressor;
use crate::crypto::rng::SecureRandom;

/// Padding bytes come from a pool refilled in bulk, so that small packets do not each cost
/// a call into the RNG.
#[derive(Default)]
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

/// How the sealing key in force wants packets framed, known before it seals them.
#[derive(Clone, Copy)]
struct Framing {
    block: usize,
    length_excluded: bool,
    tag_len: usize,
}

impl Framing {
    fn of(key: &dyn SealingKey) -> Framing {
        Framing {
            block: key.block_size().max(8),
            length_excluded: key.length_excluded(),
            tag_len: key.tag_len(),
        }
    }
}

/// The sealing key in force and its sequence number: encrypts framed packets in place.
pub struct Sealer {
    key: Box<dyn SealingKey>,
    seq: u32,
}

/// Keys that take over from the packet after the last one sealed under the keys before.
pub struct NewSealingKey {
    key: Box<dyn SealingKey>,
    /// Strict kex: the sequence number restarts at zero.
    reset_seq: bool,
}

impl Sealer {
    /// Seals the one framed packet `packet` (its tag's room included).
    fn seal_packet(&mut self, packet: &mut [u8]) {
        let body = packet.len().saturating_sub(self.key.tag_len());
        let (packet, tag) = packet.split_at_mut(body);
        self.key.seal(self.seq, packet, tag);
        self.seq = self.seq.wrapping_add(1);
    }

    /// Seals every packet in `buf`, which holds whole framed packets with room for their
    /// tags. Bytes that do not frame as a packet are zeroed rather than sent in clear.
    pub fn seal_all(&mut self, buf: &mut [u8]) {
        let tag_len = self.key.tag_len();
        let mut rest = buf;
        while !rest.is_empty() {
            let Some(len) = rest
                .first_chunk::<4>()
                .map(|b| u32::from_be_bytes(*b) as usize)
            else {
                break;
            };
            let total = 4 + len + tag_len;
            if total > rest.len() {
                break;
            }
            let (packet, after) = rest.split_at_mut(total);
            self.seal_packet(packet);
            rest = after;
        }
        debug_assert!(rest.is_empty(), "unframed bytes in the sealing buffer");
        rest.fill(0);
    }

    /// Puts keys in force for the packets sealed from now on.
    pub fn set_key(&mut self, new: NewSealingKey) {
        self.key = new.key;
        if new.reset_seq {
            self.seq = 0;
        }
    }
}

/// Where the sealing happens: in the connection, or in a driver that took the [`Sealer`];
/// then key changes wait here with the outbound offset they take effect at.
enum Sealing {
    Here(Sealer),
    Away(VecDeque<(usize, NewSealingKey)>),
}

/// Outbound half: frames payloads into packets and seals them (or leaves that to the
/// driver holding the [`Sealer`]).
pub struct PacketWriter {
    framing: Framing,
    sealing: Sealing,
    padding: PaddingPool,
    /// Bytes of payload framed since the last key change, for rekey accounting.
    pub bytes_since_keys: u64,
    /// Packets framed since the last key change.
    pub packets_since_keys: u64,
    /// zlib stream for outgoing payloads, once compression is in force.
    compressor: Option<Compressor>,
}

impl PacketWriter {
    /// A writer with no encryption, as at the start of a connection.
    pub fn new() -> Self {
        let key = plaintext_sealing_key();
        PacketWriter {
            framing: Framing::of(key.as_ref()),
            sealing: Sealing::Here(Sealer { key, seq: 0 }),
            padding: PaddingPool::default(),
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

    /// Pads and frames the packet begun at `start`, whose payload is the rest of `out`, and
    /// seals it unless a driver holds the sealer.
    pub fn finish(&mut self, out: &mut Vec<u8>, start: usize, rng: &mut dyn SecureRandom) {
        let raw_len = out.len() - start - 5;
        if let Some(compressor) = &mut self.compressor {
            let raw = out.split_off(start + 5);
            compressor.compress(&raw, out);
        }
        let payload_len = out.len() - start - 5;
        let Framing {
            block,
            length_excluded,
            tag_len,
        } = self.framing;
        let unpadded = if length_excluded {
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
        out.resize(out.len() + tag_len, 0);
        if let (Sealing::Here(sealer), Some(packet)) = (&mut self.sealing, out.get_mut(start..)) {
            sealer.seal_packet(packet);
        }
        self.bytes_since_keys += raw_len as u64;
        self.packets_since_keys += 1;
    }

    /// Frames one complete payload.
    pub fn write(&mut self, out: &mut Vec<u8>, payload: &[u8], rng: &mut dyn SecureRandom) {
        let start = Self::begin(out);
        out.extend_from_slice(payload);
        self.finish(out, start, rng);
    }

    /// Switches to new keys for the packets framed from now on; `queued` is how many bytes
    /// wait to be transmitted before them. With strict kex the sequence number restarts.
    pub fn set_key(&mut self, key: Box<dyn SealingKey>, reset_seq: bool, queued: usize) {
        self.framing = Framing::of(key.as_ref());
        self.bytes_since_keys = 0;
        self.packets_since_keys = 0;
        let new = NewSealingKey { key, reset_seq };
        match &mut self.sealing {
            Sealing::Here(sealer) => sealer.set_key(new),
            Sealing::Away(changes) => changes.push_back((queued, new)),
        }
    }

    /// Hands the sealer to a driver, which seals everything transmitted from now on. Only
    /// once, and only with nothing queued (`queued` bytes are), so that no byte is sealed
    /// twice or not at all.
    pub fn take_sealer(&mut self, queued: usize) -> Option<Sealer> {
        if queued != 0 || matches!(self.sealing, Sealing::Away(_)) {
            return None;
        }
        match std::mem::replace(&mut self.sealing, Sealing::Away(VecDeque::new())) {
            Sealing::Here(sealer) => Some(sealer),
            Sealing::Away(_) => None,
        }
    }

    /// How many of the `queued` bytes may be transmitted before the next key change.
    pub fn transmittable(&self, queued: usize) -> usize {
        match &self.sealing {
            Sealing::Away(changes) => changes.front().map_or(queued, |(at, _)| *at),
            Sealing::Here(_) => queued,
        }
    }

    /// `n` queued bytes were transmitted.
    pub fn transmitted(&mut self, n: usize) {
        if let Sealing::Away(changes) = &mut self.sealing {
            changes.iter_mut().for_each(|(at, _)| *at -= n);
        }
    }

    /// The next keys for the driver's sealer, once every byte before them was transmitted.
    pub fn poll_sealing_key(&mut self) -> Option<NewSealingKey> {
        match &mut self.sealing {
            Sealing::Away(changes) if changes.front().is_some_and(|(at, _)| *at == 0) => {
                changes.pop_front().map(|(_, new)| new)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::PacketReader;
    use super::*;
    use crate::crypto::cipher::find;
    use crate::crypto::rng::OsRandom;

    fn gcm() -> &'static crate::crypto::cipher::CipherAlgorithm {
        find("aes128-gcm@openssh.com").unwrap()
    }

    #[test]
    fn a_taken_sealer_seals_each_packet_under_the_keys_it_was_framed_for() {
        let (key, iv) = ([7u8; 16], [9u8; 12]);
        let mut writer = PacketWriter::new();
        let mut queued = Vec::new();
        let mut sealer = writer.take_sealer(queued.len()).unwrap();
        assert!(writer.take_sealer(0).is_none(), "taken only once");
        writer.write(&mut queued, b"\x02before", &mut OsRandom);
        writer.set_key(gcm().sealing_key(&key, &iv, None), true, queued.len());
        writer.write(&mut queued, b"\x02after", &mut OsRandom);

        // The bytes before the change go first and under the old keys.
        let first = writer.transmittable(queued.len());
        assert!(first > 0 && first < queued.len());
        assert!(writer.poll_sealing_key().is_none());
        let mut wire: Vec<u8> = queued.drain(..first).collect();
        writer.transmitted(first);
        sealer.seal_all(&mut wire);
        sealer.set_key(writer.poll_sealing_key().unwrap());
        let mut rest = std::mem::take(&mut queued);
        sealer.seal_all(&mut rest);
        wire.extend_from_slice(&rest);

        let mut reader = PacketReader::new();
        let a = reader.decode(&mut wire).unwrap().unwrap();
        assert_eq!(&wire[a.payload_start..a.payload_end], b"\x02before");
        reader.set_key(gcm().opening_key(&key, &iv, None), true);
        let mut rest = wire[a.consumed..].to_vec();
        let b = reader.decode(&mut rest).unwrap().unwrap();
        assert_eq!(&rest[b.payload_start..b.payload_end], b"\x02after");
        assert_eq!(b.seq, 0, "strict kex restarts the sequence");
    }

    #[test]
    fn the_sealer_is_not_taken_while_bytes_wait_to_be_sent() {
        let mut writer = PacketWriter::new();
        assert!(writer.take_sealer(5).is_none());
        assert!(writer.take_sealer(0).is_some());
    }
}
