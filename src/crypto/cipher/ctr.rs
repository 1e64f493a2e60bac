//! AES-CTR (RFC 4344) with an HMAC, either MAC-then-encrypt (RFC 4253: tag over the
//! plaintext packet) or OpenSSH's encrypt-then-MAC (tag over the length in clear and the
//! ciphertext, checked before anything is decrypted).
//!
//! The 128-bit big-endian counter runs on across packets, which is why one cipher object
//! lives as long as the key.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ::ctr::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroize;

use super::{frame_ok, read_length, sealable, MacChoice, OpeningKey, SealingKey};
use crate::crypto::mac::Mac;
use crate::crypto::IntegrityError;

const BLOCK: usize = 16;

/// One direction of CTR plus MAC. The AES key schedule inside `C` is zeroized on drop
/// (aes' `zeroize` feature); the MAC state likewise.
pub(super) struct CtrKey<C> {
    cipher: C,
    mac: Box<dyn Mac>,
    etm: bool,
    tag_len: usize,
}

fn new_key<C: KeyIvInit>(key: &[u8], iv: &[u8], mac: MacChoice<'_>) -> Option<CtrKey<C>> {
    let (alg, mac_key) = mac?;
    let cipher = C::new_from_slices(key.get(..C::key_size())?, iv.get(..C::iv_size())?).ok()?;
    Some(CtrKey {
        cipher,
        mac: alg.try_new_mac(mac_key)?,
        etm: alg.etm,
        tag_len: alg.tag_len,
    })
}

pub(super) fn sealing_key<C>(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn SealingKey>>
where
    C: KeyIvInit + StreamCipher + Send + 'static,
{
    Some(Box::new(new_key::<C>(key, iv, mac)?))
}

pub(super) fn opening_key<C>(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn OpeningKey>>
where
    C: KeyIvInit + StreamCipher + Send + 'static,
{
    Some(Box::new(new_key::<C>(key, iv, mac)?))
}

impl<C: StreamCipher + Send> SealingKey for CtrKey<C> {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        self.etm
    }

    fn tag_len(&self) -> usize {
        self.tag_len
    }

    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        let min = if self.etm { 4 } else { BLOCK };
        if !sealable(
            packet.len() >= min && tag.len() == self.tag_len,
            packet,
            tag,
        ) {
            return;
        }
        if self.etm {
            if let Some(body) = packet.get_mut(4..) {
                self.cipher.apply_keystream(body);
            }
            self.mac.compute(seq, packet, tag);
        } else {
            self.mac.compute(seq, packet, tag);
            self.cipher.apply_keystream(packet);
        }
    }
}

impl<C: StreamCipher + Send> OpeningKey for CtrKey<C> {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        self.etm
    }

    fn tag_len(&self) -> usize {
        self.tag_len
    }

    fn length_prefix_len(&self) -> usize {
        if self.etm {
            4
        } else {
            BLOCK
        }
    }

    fn packet_length(&mut self, _seq: u32, prefix: &mut [u8]) -> u32 {
        if self.etm {
            return read_length(prefix).unwrap_or(0);
        }
        match prefix.get_mut(..BLOCK) {
            Some(first) => {
                self.cipher.apply_keystream(first);
                read_length(first).unwrap_or(0)
            }
            None => 0,
        }
    }

    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), IntegrityError> {
        if self.etm {
            if tag.len() != self.tag_len || !frame_ok(packet, BLOCK, true) {
                return Err(IntegrityError);
            }
            self.mac.verify(seq, packet, tag)?;
            if let Some(body) = packet.get_mut(4..) {
                self.cipher.apply_keystream(body);
            }
            return Ok(());
        }
        // MAC-then-encrypt leaves no choice but to decrypt before verifying (and the first
        // block already is plaintext); on any failure the buffer is wiped so that none of it
        // can be used.
        let verdict = if tag.len() == self.tag_len && frame_ok(packet, BLOCK, false) {
            if let Some(rest) = packet.get_mut(BLOCK..) {
                self.cipher.apply_keystream(rest);
            }
            self.mac.verify(seq, packet, tag)
        } else {
            Err(IntegrityError)
        };
        if verdict.is_err() {
            packet.zeroize();
        }
        verdict
    }
}
