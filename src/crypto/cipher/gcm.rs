//! AES-GCM as OpenSSH does it (`aes128-gcm@openssh.com`, `aes256-gcm@openssh.com`, RFC 5647):
//! the 12-byte nonce is a 4-byte fixed field and an 8-byte invocation counter, big-endian,
//! incremented (mod 2^64) after every packet; packet_length travels in clear as the AAD.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::Tag;
use aes_gcm::{AeadCore, AeadInOut, KeyInit};

use super::{frame_ok, read_length, sealable, MacChoice, OpeningKey, SealingKey};
use crate::crypto::IntegrityError;

const BLOCK: usize = 16;
const TAG: usize = 16;

/// One direction of AES-GCM. The AES key schedule and GHASH key inside `A` are zeroized on
/// drop (aes-gcm's `zeroize` feature).
pub(super) struct GcmKey<A> {
    aead: A,
    fixed: [u8; 4],
    invocation: u64,
}

fn new_key<A: KeyInit>(key: &[u8], iv: &[u8], _mac: MacChoice<'_>) -> Option<GcmKey<A>> {
    let aead = A::new_from_slice(key.get(..A::key_size())?).ok()?;
    let fixed = iv.get(..4)?.try_into().ok()?;
    let invocation = u64::from_be_bytes(iv.get(4..12)?.try_into().ok()?);
    Some(GcmKey {
        aead,
        fixed,
        invocation,
    })
}

pub(super) fn sealing_key<A>(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn SealingKey>>
where
    A: KeyInit + AeadInOut + AeadCore<NonceSize = U12, TagSize = U16> + Send + 'static,
{
    Some(Box::new(new_key::<A>(key, iv, mac)?))
}

pub(super) fn opening_key<A>(
    key: &[u8],
    iv: &[u8],
    mac: MacChoice<'_>,
) -> Option<Box<dyn OpeningKey>>
where
    A: KeyInit + AeadInOut + AeadCore<NonceSize = U12, TagSize = U16> + Send + 'static,
{
    Some(Box::new(new_key::<A>(key, iv, mac)?))
}

impl<A> GcmKey<A> {
    /// The nonce for this packet; advances the invocation counter for the next one.
    fn next_nonce(&mut self) -> Array<u8, U12> {
        let [a, b, c, d] = self.fixed;
        let [e, f, g, h, i, j, k, l] = self.invocation.to_be_bytes();
        self.invocation = self.invocation.wrapping_add(1);
        Array::from([a, b, c, d, e, f, g, h, i, j, k, l])
    }
}

impl<A> SealingKey for GcmKey<A>
where
    A: AeadInOut + AeadCore<NonceSize = U12, TagSize = U16> + Send,
{
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        true
    }

    fn tag_len(&self) -> usize {
        TAG
    }

    fn seal(&mut self, _seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        if !sealable(packet.len() >= 4 && tag.len() == TAG, packet, tag) {
            return;
        }
        let nonce = self.next_nonce();
        let sealed = match packet.split_at_mut_checked(4) {
            Some((length, body)) => self
                .aead
                .encrypt_inout_detached(&nonce, length, body.into()),
            None => return,
        };
        match sealed {
            Ok(t) => tag.copy_from_slice(&t),
            // Only a packet beyond GCM's 64 GiB limit gets here; send nothing readable.
            Err(_) => {
                packet.fill(0);
                tag.fill(0);
            }
        }
    }
}

impl<A> OpeningKey for GcmKey<A>
where
    A: AeadInOut + AeadCore<NonceSize = U12, TagSize = U16> + Send,
{
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

    fn packet_length(&mut self, _seq: u32, prefix: &mut [u8]) -> u32 {
        read_length(prefix).unwrap_or(0)
    }

    fn open(&mut self, _seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), IntegrityError> {
        // The counter moves even on failure, as OpenSSH's does; the connection ends anyway.
        let nonce = self.next_nonce();
        let tag = <&Tag<A>>::try_from(tag).map_err(|_| IntegrityError)?;
        if !frame_ok(packet, BLOCK, true) {
            return Err(IntegrityError);
        }
        let (length, body) = packet.split_at_mut_checked(4).ok_or(IntegrityError)?;
        self.aead
            .decrypt_inout_detached(&nonce, length, body.into(), tag)
            .map_err(|_| IntegrityError)
    }
}
