//! The null cipher of the initial key exchange (RFC 4253 §6.3): no encryption, no MAC, and
//! only the frame checks every key makes.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::{frame_ok, read_length, OpeningKey, SealingKey};
use crate::crypto::IntegrityError;

/// Block 8, no tag, length in clear; stateless, so one type serves both directions.
pub(super) struct Plaintext;

const BLOCK: usize = 8;

impl SealingKey for Plaintext {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        false
    }

    fn tag_len(&self) -> usize {
        0
    }

    fn seal(&mut self, _seq: u32, _packet: &mut [u8], tag: &mut [u8]) {
        debug_assert!(tag.is_empty(), "the null cipher has no tag");
    }
}

impl OpeningKey for Plaintext {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn length_excluded(&self) -> bool {
        false
    }

    fn tag_len(&self) -> usize {
        0
    }

    fn length_prefix_len(&self) -> usize {
        4
    }

    fn packet_length(&mut self, _seq: u32, prefix: &mut [u8]) -> u32 {
        read_length(prefix).unwrap_or(0)
    }

    fn open(&mut self, _seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), IntegrityError> {
        if tag.is_empty() && frame_ok(packet, BLOCK, false) {
            Ok(())
        } else {
            Err(IntegrityError)
        }
    }
}
