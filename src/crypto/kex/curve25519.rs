//! curve25519-sha256 (RFC 8731), also under its original name curve25519-sha256@libssh.org.
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

/// Our ephemeral scalar (wiped by x25519-dalek when used or dropped) and public point.
struct X25519Exchange {
    secret: EphemeralSecret,
    public: Vec<u8>,
}

pub(super) fn start(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    let secret = EphemeralSecret::random_from_rng(&mut RandCoreAdapter(rng));
    let public = string(PublicKey::from(&secret).as_bytes());
    Box::new(X25519Exchange { secret, public })
}

impl KeyExchange for X25519Exchange {
    fn hash(&self) -> KexHash {
        KexHash::Sha256
    }

    fn public_encoded(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        let peer: [u8; 32] = peer_public.try_into().map_err(|_| {
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
        Ok(mpint(shared.as_bytes()))
    }
}
