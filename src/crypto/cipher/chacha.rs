//! `chacha20-poly1305@openssh.com` (OpenSSH's PROTOCOL.chacha20poly1305).
//!
//! The 64-byte key is two ChaCha20 keys: K_2 (first half) encrypts the payload, K_1 (second
//! half) only the 4-byte length. Both use the sequence number as 64-bit big-endian nonce. The
//! Poly1305 key is the first 32 bytes of K_2's keystream block 0; the payload starts at block
//! 1; the tag covers the encrypted length and the encrypted rest. Separating the length lets
//! the receiver learn it without decrypting or trusting anything else.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chacha20::cipher::{StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20Legacy, KeyIvInit, LegacyNonce};
use poly1305::universal_hash::KeyInit;
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{sealable, MacChoice, OpeningKey, SealingKey};
use crate::crypto::IntegrityError;

const BLOCK: usize = 8;
const TAG: usize = 16;

/// Both halves of the key, wiped on drop. Cipher instances are per packet (the nonce is the
/// sequence number), and ChaCha20 key setup is only a copy.
pub(super) struct ChachaKey {
    payload_key: Zeroizing<[u8; 32]>,
    length_key: Zeroizing<[u8; 32]>,
}

pub(super) fn new_key(key: &[u8], _iv: &[u8], _mac: MacChoice<'_>) -> Option<ChachaKey> {
    let (k2, k1) = key.get(..64)?.split_at_checked(32)?;
    Some(ChachaKey {
        payload_key: Zeroizing::new(k2.try_into().ok()?),
        length_key: Zeroizing::new(k1.try_into().ok()?),
    })
}

pub(super) fn sealing_key(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn SealingKey>> {
    Some(Box::new(new_key(key, iv, mac)?))
}

pub(super) fn opening_key(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn OpeningKey>> {
    Some(Box::new(new_key(key, iv, mac)?))
}

/// The sequence number as the 64-bit big-endian nonce. Internals take the full u64 so that
/// published vectors with larger sequence numbers (libssh's) can be checked.
fn nonce(seq: u64) -> LegacyNonce {
    LegacyNonce::from(seq.to_be_bytes())
}

impl ChachaKey {
    /// K_1's cipher for this packet, at block 0.
    fn length_cipher(&self, seq: u64) -> ChaCha20Legacy {
        ChaCha20Legacy::new((&*self.length_key).into(), &nonce(seq))
    }

    /// K_2's cipher positioned at block 1, and the Poly1305 keyed from block 0.
    fn payload_cipher(&self, seq: u64) -> (ChaCha20Legacy, Poly1305) {
        let mut cipher = ChaCha20Legacy::new((&*self.payload_key).into(), &nonce(seq));
        let mut poly_key = Zeroizing::new([0u8; 32]);
        cipher.apply_keystream(&mut *poly_key);
        cipher.seek(64u64);
        let poly = Poly1305::new((&*poly_key).into());
        (cipher, poly)
    }

    pub(super) fn seal_at(&self, seq: u64, packet: &mut [u8], tag: &mut [u8]) {
        if !sealable(packet.len() >= 4 && tag.len() == TAG, packet, tag) {
            return;
        }
        let Some((length, body)) = packet.split_at_mut_checked(4) else {
            return;
        };
        self.length_cipher(seq).apply_keystream(length);
        let (mut cipher, poly) = self.payload_cipher(seq);
        cipher.apply_keystream(body);
        tag.copy_from_slice(&poly.compute_unpadded(packet));
    }

    pub(super) fn open_at(
        &self,
        seq: u64,
        packet: &mut [u8],
        tag: &[u8],
    ) -> Result<(), IntegrityError> {
        if tag.len() != TAG {
            return Err(IntegrityError);
        }
        let (length, body) = packet.split_at_mut_checked(4).ok_or(IntegrityError)?;
        let enc: [u8; 4] = (&*length).try_into().map_err(|_| IntegrityError)?;
        let plain_length = self.decrypt_length(seq, &enc);
        let declared = u32::from_be_bytes(plain_length) as usize;
        if declared != body.len() || body.len() % BLOCK != 0 {
            return Err(IntegrityError);
        }
        let (mut cipher, poly) = self.payload_cipher(seq);
        let expected = poly.compute_unpadded(packet);
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(IntegrityError);
        }
        let (length, body) = packet.split_at_mut_checked(4).ok_or(IntegrityError)?;
        length.copy_from_slice(&plain_length);
        cipher.apply_keystream(body);
        Ok(())
    }

    fn decrypt_length(&self, seq: u64, enc: &[u8; 4]) -> [u8; 4] {
        let mut plain = *enc;
        self.length_cipher(seq).apply_keystream(&mut plain);
        plain
    }
}

impl SealingKey for ChachaKey {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        true
    }

    fn tag_len(&self) -> usize {
        TAG
    }

    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        self.seal_at(u64::from(seq), packet, tag);
    }
}

impl OpeningKey for ChachaKey {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        true
    }

    fn tag_len(&self) -> usize {
        TAG
    }

    fn length_prefix_len(&self) -> usize {
        4
    }

    fn packet_length(&mut self, seq: u32, prefix: &mut [u8]) -> u32 {
        match prefix.first_chunk::<4>() {
            Some(enc) => u32::from_be_bytes(self.decrypt_length(u64::from(seq), enc)),
            None => 0,
        }
    }

    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), IntegrityError> {
        self.open_at(u64::from(seq), packet, tag)
    }
}
