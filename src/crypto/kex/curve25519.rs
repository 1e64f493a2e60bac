//! curve25519-sha256 (RFC 8731), also under its original name curve25519-sha256@libssh.org,
//! and the X25519 half of the post-quantum hybrids.
//!
//! K is the 32-byte X25519 output read as an unsigned big-endian integer and mpint-encoded
//! (RFC 8731 §3.1), exactly as OpenSSH does it.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::{mpint, string, KexError, KeyExchange};
use crate::crypto::rng::{RandCoreAdapter, SecureRandom};
use crate::crypto::KexHash;

/// Bytes of an X25519 public value and of its shared secret.
pub(super) const X25519_LEN: usize = 32;

/// One ephemeral X25519 key pair. The scalar is wiped by x25519-dalek when used or dropped.
pub(super) struct X25519Key {
    secret: EphemeralSecret,
    public: [u8; X25519_LEN],
}

impl X25519Key {
    pub(super) fn generate(rng: &mut dyn SecureRandom) -> Self {
        let secret = EphemeralSecret::random_from_rng(&mut RandCoreAdapter(rng));
        let public = PublicKey::from(&secret).to_bytes();
        X25519Key { secret, public }
    }

    pub(super) fn public(&self) -> &[u8; X25519_LEN] {
        &self.public
    }

    /// The raw 32-byte shared secret with the peer's public value, which must be exactly 32
    /// bytes and not a low-order point.
    pub(super) fn agree(self, peer_public: &[u8]) -> Result<Zeroizing<[u8; 32]>, KexError> {
        let peer: [u8; X25519_LEN] = peer_public.try_into().map_err(|_| {
            KexError(format!(
                "X25519 public value is {} bytes, must be 32",
                peer_public.len()
            ))
        })?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        // A low-order peer point gives an all-zero secret known to anyone (RFC 7748 §6.1,
        // RFC 8731 §3): refuse it.
        if !shared.was_contributory() {
            return Err(KexError(
                "X25519 public value is a low-order point (all-zero shared secret)".into(),
            ));
        }
        Ok(Zeroizing::new(*shared.as_bytes()))
    }
}

/// Our key pair and its public value as an SSH string.
struct X25519Exchange {
    key: X25519Key,
    public: Vec<u8>,
}

pub(super) fn start(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    let key = X25519Key::generate(rng);
    let public = string(key.public());
    Box::new(X25519Exchange { key, public })
}

impl KeyExchange for X25519Exchange {
    fn hash(&self) -> KexHash {
        KexHash::Sha256
    }

    fn public_encoded(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        let shared = self.key.agree(peer_public)?;
        Ok(mpint(&*shared))
    }
}
