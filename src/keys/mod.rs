//! Keys (Paramiko's PKey): public keys from SSH blobs and `.pub` lines, private keys from
//! OpenSSH and PEM files, signatures, fingerprints.
//!
//! File and blob formats are parsed by the `ssh-key` crate; signing and verifying use the
//! RustCrypto primitives directly (`ed25519-dalek`, `p256`, `rsa`).
//!
//! Adding a key kind (ecdsa-sha2-nistp384/521, ssh-dss) means one variant in `KeyType`, its
//! rows in `SIGNATURE_ALGORITHMS`, and one arm in each `match` on the key material in
//! `public.rs` and `private.rs`; the compiler lists the arms that are missing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod private;
mod public;
mod signature;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use private::PrivateKey;
pub use public::PublicKey;

/// The kinds of key Sekura handles, by their SSH key type name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    Ed25519,
    EcdsaP256,
    Rsa,
}

impl KeyType {
    /// Every supported kind, for lookups by name.
    const ALL: [KeyType; 3] = [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa];

    /// The key type name used in blobs, `.pub` files and known_hosts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::Rsa => "ssh-rsa",
        }
    }

    /// The kind named `name`, if supported.
    pub(crate) fn from_name(name: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The hash a signature algorithm applies to the signed data before the key operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigDigest {
    /// The algorithm hashes internally (Ed25519).
    Intrinsic,
    Sha1,
    Sha256,
    Sha512,
}

/// One signature algorithm: its wire name, the key kind that makes it, its hash, and whether
/// it is legacy (SHA-1), offered only when the application enables legacy algorithms.
#[derive(Debug)]
pub(crate) struct SignatureAlgorithm {
    pub(crate) name: &'static str,
    pub(crate) key_type: KeyType,
    pub(crate) digest: SigDigest,
    pub(crate) legacy: bool,
}

/// Every supported signature algorithm, preferred first within each key kind.
pub(crate) const SIGNATURE_ALGORITHMS: &[SignatureAlgorithm] = &[
    SignatureAlgorithm {
        name: "ssh-ed25519",
        key_type: KeyType::Ed25519,
        digest: SigDigest::Intrinsic,
        legacy: false,
    },
    SignatureAlgorithm {
        name: "ecdsa-sha2-nistp256",
        key_type: KeyType::EcdsaP256,
        digest: SigDigest::Sha256,
        legacy: false,
    },
    SignatureAlgorithm {
        name: "rsa-sha2-512",
        key_type: KeyType::Rsa,
        digest: SigDigest::Sha512,
        legacy: false,
    },
    SignatureAlgorithm {
        name: "rsa-sha2-256",
        key_type: KeyType::Rsa,
        digest: SigDigest::Sha256,
        legacy: false,
    },
    SignatureAlgorithm {
        name: "ssh-rsa",
        key_type: KeyType::Rsa,
        digest: SigDigest::Sha1,
        legacy: true,
    },
];

/// The signature algorithm named `name` if a key of `key_type` makes it.
pub(crate) fn signature_algorithm(
    key_type: KeyType,
    name: &str,
) -> Option<&'static SignatureAlgorithm> {
    SIGNATURE_ALGORITHMS
        .iter()
        .find(|a| a.key_type == key_type && a.name == name)
}

/// A name from untrusted input, shortened and escaped for an error message.
pub(crate) fn printable(name: &str) -> String {
    let short: String = name.chars().take(64).collect();
    let mut out = short.escape_debug().to_string();
    if name.chars().count() > 64 {
        out.push_str("...");
    }
    out
}
