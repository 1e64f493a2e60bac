//! Key exchange methods (RFC 4253 §8, RFC 5656, RFC 8731, RFC 8268): each produces our
//! ephemeral public value and, given the peer's, the shared secret K. The exchange hash and
//! the signature around them belong to the protocol core.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod curve25519;
mod dh;
mod ecdh;

use std::fmt;

use zeroize::Zeroizing;

use super::rng::SecureRandom;
use super::KexHash;

/// Why the peer's public value was refused.
#[derive(Debug)]
pub struct KexError(pub String);

impl fmt::Display for KexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KexError {}

/// One side of one key exchange, from our ephemeral key to the shared secret.
pub trait KeyExchange: Send {
    /// The hash for the exchange hash and key derivation.
    fn hash(&self) -> KexHash;
    /// Our ephemeral public value, wire-encoded (uint32 length prefix included) exactly as it
    /// appears in KEX_ECDH_INIT / KEXDH_INIT and in the exchange hash: an SSH string for
    /// X25519 and ECDH, an mpint for finite-field DH.
    fn public_encoded(&self) -> &[u8];
    /// Takes the peer's public value as the raw contents of its wire field (no length prefix;
    /// for DH the mpint's bytes), validates it (DH: 1 < f < p-1; X25519: reject all-zero
    /// shared secret, peer value must be 32 bytes; ECDH: point must decode on the curve,
    /// uncompressed SEC1), and returns the shared secret K wire-encoded as an mpint (length
    /// prefix included), zeroized on drop. Consumes the exchange: ephemeral keys are used once.
    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError>;
}

/// One key exchange method as negotiated by name.
pub struct KexMethod {
    /// Wire name.
    pub name: &'static str,
    /// Off unless the application enables legacy algorithms.
    pub legacy: bool,
    start: fn(&mut dyn SecureRandom) -> Box<dyn KeyExchange>,
}

impl fmt::Debug for KexMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KexMethod")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KexMethod {
    /// Generates our ephemeral key pair.
    pub fn start(&self, rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
        (self.start)(rng)
    }
}

/// Every supported method, in default preference order. New methods (group18,
/// group-exchange, sntrup761, mlkem768) are one more row here and one more file.
pub static KEX_METHODS: &[KexMethod] = &[
    KexMethod {
        name: "curve25519-sha256",
        legacy: false,
        start: curve25519::start,
    },
    KexMethod {
        name: "curve25519-sha256@libssh.org",
        legacy: false,
        start: curve25519::start,
    },
    KexMethod {
        name: "ecdh-sha2-nistp256",
        legacy: false,
        start: ecdh::start_nistp256,
    },
    KexMethod {
        name: "diffie-hellman-group16-sha512",
        legacy: false,
        start: dh::start_group16,
    },
    KexMethod {
        name: "diffie-hellman-group14-sha256",
        legacy: false,
        start: dh::start_group14,
    },
];

/// Looks a method up by its wire name.
pub fn find(name: &str) -> Option<&'static KexMethod> {
    KEX_METHODS.iter().find(|m| m.name == name)
}

/// Encodes unsigned big-endian bytes as an mpint (RFC 4251 §5) into one buffer allocated at
/// its final size, so no copy of a secret is left behind by a reallocation.
fn mpint(magnitude: &[u8]) -> Zeroizing<Vec<u8>> {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let digits = magnitude.get(start..).unwrap_or_default();
    let pad = digits.first().is_some_and(|&b| b & 0x80 != 0);
    let len = digits.len() + usize::from(pad);
    let mut out = Zeroizing::new(Vec::with_capacity(4 + len));
    out.extend_from_slice(&(len as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

/// Encodes bytes as an SSH string (uint32 length, then the bytes).
fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests;
