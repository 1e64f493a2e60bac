//! Randomness. The sans-IO core never reaches for the OS itself: a [`SecureRandom`] is passed
//! in, so tests and fuzzers can be deterministic and the transport decides the source.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::convert::Infallible;

use x25519_dalek::rand_core::{TryCryptoRng, TryRng};

/// Source of randomness passed into the sans-IO core.
pub trait SecureRandom: Send {
    /// Fills `buf` entirely with unpredictable bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (getrandom); aborts via panic only if the OS has no RNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        // Carrying on with predictable keys would be worse than stopping: there is no safe
        // fallback, so this is the one place a missing OS facility panics.
        if let Err(e) = getrandom::fill(buf) {
            #[allow(clippy::panic)]
            {
                panic!("the operating system's random number generator failed: {e}");
            }
        }
    }
}

/// Lets RustCrypto key generators (x25519-dalek, elliptic-curve; both on rand_core 0.10) draw
/// from our [`SecureRandom`], so every secret comes from the source the caller chose.
pub(crate) struct RandCoreAdapter<'a>(pub(crate) &'a mut dyn SecureRandom);

impl TryRng for RandCoreAdapter<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl TryCryptoRng for RandCoreAdapter<'_> {}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;

    /// Replays fixed bytes, for known-answer tests that need a chosen secret.
    pub(crate) struct FixedRandom(pub(crate) Vec<u8>);

    impl SecureRandom for FixedRandom {
        fn fill(&mut self, buf: &mut [u8]) {
            assert!(buf.len() <= self.0.len(), "FixedRandom ran out of bytes");
            let rest = self.0.split_off(buf.len());
            buf.copy_from_slice(&self.0);
            self.0 = rest;
        }
    }

    #[test]
    fn os_random_fills_and_differs() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn fixed_random_replays_in_order() {
        let mut r = FixedRandom(vec![1, 2, 3, 4, 5]);
        let mut x = [0u8; 2];
        r.fill(&mut x);
        assert_eq!(x, [1, 2]);
        let mut y = [0u8; 3];
        r.fill(&mut y);
        assert_eq!(y, [3, 4, 5]);
    }
}
