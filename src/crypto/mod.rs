//! Thin wrappers over RustCrypto crates: packet ciphers and MACs, key exchange methods and
//! randomness. Each kind is one trait plus one table of wire names (see `cipher::CIPHERS`,
//! `mac::MACS`, `kex::KEX_METHODS`); the protocol core only ever sees the traits.

pub mod cipher;
pub mod compression;
pub mod kex;
pub mod mac;
pub mod rng;

/// A packet failed authentication or could not be decrypted. Deliberately carries no detail:
/// which check failed is not something to tell a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrityError;

impl std::fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("packet authentication failed (corrupted or forged data)")
    }
}

impl std::error::Error for IntegrityError {}

/// The hash a key exchange method uses for the exchange hash and key derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KexHash {
    /// SHA-256.
    Sha256,
    /// SHA-384 (ecdh-sha2-nistp384).
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-1, for the legacy diffie-hellman-group1/group14/group-exchange-sha1 methods.
    Sha1,
}

impl KexHash {
    /// Hashes the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            KexHash::Sha256 => {
                let mut h = sha2::Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            KexHash::Sha384 => {
                let mut h = sha2::Sha384::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            KexHash::Sha512 => {
                let mut h = sha2::Sha512::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            KexHash::Sha1 => {
                let mut h = sha1::Sha1::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    /// Bytes of digest output: 20, 32, 48 or 64.
    pub fn output_len(self) -> usize {
        match self {
            KexHash::Sha1 => 20,
            KexHash::Sha256 => 32,
            KexHash::Sha384 => 48,
            KexHash::Sha512 => 64,
        }
    }
}

/// Decodes a hex string (whitespace ignored), for test vectors.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not a hex digit: {b}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}
