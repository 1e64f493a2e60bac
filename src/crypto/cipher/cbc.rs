//! CBC (RFC 4253 §6.3): aes128-cbc, aes192-cbc, aes256-cbc and 3des-cbc, legacy only.
//!
//! With a plain MAC the length is inside the first encrypted block: the receiver decrypts that
//! block alone to learn the length ([`OpeningKey::packet_length`]), and the decryptor's chain
//! state (the last ciphertext block) carries on to the rest of the packet. With an `-etm` MAC
//! the length stays in clear, the tag covers it and the ciphertext, and is checked before
//! anything is decrypted. The chain runs on across packets, as RFC 4253 requires.
//!
//! CBC with MAC-then-encrypt is what the 2009 plaintext-recovery attacks on SSH used (a
//! receiver that waits for a forged length reveals it); that is why these are legacy.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ::cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InOutBuf, KeyInit,
    KeyIvInit,
};
use zeroize::Zeroize;

use super::{frame_ok, read_length, sealable, MacChoice, OpeningKey, SealingKey};
use crate::crypto::mac::Mac;
use crate::crypto::IntegrityError;

/// One direction: the CBC mode object `M` (block cipher key schedule and chain state, both
/// wiped on drop by cbc's `zeroize`) and the MAC.
pub(super) struct CbcKey<M> {
    mode: M,
    mac: Box<dyn Mac>,
    etm: bool,
    tag_len: usize,
}

fn new_key<M: KeyIvInit>(key: &[u8], iv: &[u8], mac: MacChoice<'_>) -> Option<CbcKey<M>> {
    let (alg, mac_key) = mac?;
    let mode = M::new_from_slices(key.get(..M::key_size())?, iv.get(..M::iv_size())?).ok()?;
    Some(CbcKey {
        mode,
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
    C: BlockCipherEncrypt + KeyInit + Send + 'static,
{
    Some(Box::new(new_key::<::cbc::Encryptor<C>>(key, iv, mac)?))
}

pub(super) fn opening_key<C>(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn OpeningKey>>
where
    C: BlockCipherDecrypt + KeyInit + Send + 'static,
{
    Some(Box::new(new_key::<::cbc::Decryptor<C>>(key, iv, mac)?))
}

/// True when `len` is a positive whole number of `block`s.
fn aligned(len: usize, block: usize) -> bool {
    len > 0 && len % block == 0
}

impl<M: BlockModeEncrypt + Send> CbcKey<M> {
    /// Encrypts `data` (a whole number of blocks, checked by the caller) in place.
    fn encrypt(&mut self, data: &mut [u8]) {
        let (blocks, _tail) = InOutBuf::from(data).into_chunks::<M::BlockSize>();
        self.mode.encrypt_blocks_inout(blocks);
    }
}

impl<M: BlockModeDecrypt + Send> CbcKey<M> {
    /// Decrypts `data` (a whole number of blocks, checked by the caller) in place.
    fn decrypt(&mut self, data: &mut [u8]) {
        let (blocks, _tail) = InOutBuf::from(data).into_chunks::<M::BlockSize>();
        self.mode.decrypt_blocks_inout(blocks);
    }
}

impl<M: BlockModeEncrypt + Send> SealingKey for CbcKey<M> {
    fn block_size(&self) -> usize {
        M::block_size()
    }

    fn length_excluded(&self) -> bool {
        self.etm
    }

    fn tag_len(&self) -> usize {
        self.tag_len
    }

    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        let block = M::block_size();
        let encrypted_len = if self.etm {
            packet.len().saturating_sub(4)
        } else {
            packet.len()
        };
        let ok = packet.len() >= 4 && aligned(encrypted_len, block) && tag.len() == self.tag_len;
        if !sealable(ok, packet, tag) {
            return;
        }
        if self.etm {
            if let Some(body) = packet.get_mut(4..) {
                self.encrypt(body);
            }
            self.mac.compute(seq, packet, tag);
        } else {
            self.mac.compute(seq, packet, tag);
            self.encrypt(packet);
        }
    }
}

impl<M: BlockModeDecrypt + Send> OpeningKey for CbcKey<M> {
    fn block_size(&self) -> usize {
        M::block_size()
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
            M::block_size()
        }
    }

    fn packet_length(&mut self, _seq: u32, prefix: &mut [u8]) -> u32 {
        if self.etm {
            return read_length(prefix).unwrap_or(0);
        }
        match prefix.get_mut(..M::block_size()) {
            Some(first) => {
                self.decrypt(first);
                read_length(first).unwrap_or(0)
            }
            None => 0,
        }
    }

    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), IntegrityError> {
        let block = M::block_size();
        if self.etm {
            if tag.len() != self.tag_len || !frame_ok(packet, block, true) || packet.len() <= 4 {
                return Err(IntegrityError);
            }
            self.mac.verify(seq, packet, tag)?;
            if let Some(body) = packet.get_mut(4..) {
                self.decrypt(body);
            }
            return Ok(());
        }
        // As for CTR: MAC-then-encrypt forces decryption before the check, and the buffer is
        // wiped on failure so that none of it can be used.
        let verdict = if tag.len() == self.tag_len && frame_ok(packet, block, false) {
            if let Some(rest) = packet.get_mut(block..) {
                self.decrypt(rest);
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
