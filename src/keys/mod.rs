//! Keys (Paramiko's PKey): public keys from SSH blobs, `.pub`, authorized_keys and RFC 4716
//! text; private keys in every format OpenSSH and OpenSSL write, read and written; OpenSSH
//! certificates; key generation; signatures; SHA-256 and MD5 fingerprints.
//!
//! File and blob formats are parsed by the `ssh-key` crate; signing and verifying use the
//! RustCrypto primitives directly (`ed25519-dalek`, `p256`/`p384`/`p521`, `rsa`, `dsa`).
//!
//! Files: `public.rs` and `private.rs` hold the key types; `convert.rs` maps them to and from
//! `ssh-key`'s types; `openssh.rs` reads and writes `openssh-key-v1`; `pem.rs` the PEM family
//! (PKCS#1, SEC1, OpenSSL DSA, PKCS#8 plain and PBES2), with `legacy_pem.rs` for OpenSSL's
//! Proc-Type/DEK-Info encryption; `file.rs` reads bounded and writes atomically with mode
//! 0600; `generate.rs` makes new keys; `certificate.rs` reads OpenSSH certificates.
//!
//! Adding a key kind means one variant in `KeyType`, its rows in `SIGNATURE_ALGORITHMS` and
//! `HOST_KEY_ALGORITHMS`, and one arm in each `match` on the key material; the compiler lists
//! the arms that are missing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod certificate;
mod convert;
mod file;
mod generate;
mod legacy_pem;
mod openssh;
mod pem;
mod private;
mod public;
mod short_scalar;
mod signature;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cert;
#[cfg(test)]
mod tests_formats;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_write;
#[cfg(test)]
pub(crate) mod testutil;

pub use certificate::{CertType, Certificate};
pub use private::{PrivateKey, PrivateKeyFormat};
pub use public::PublicKey;

/// The kinds of key Sekura handles, by their SSH key type name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// ssh-ed25519 (RFC 8709).
    Ed25519,
    /// ecdsa-sha2-nistp256 (RFC 5656).
    EcdsaP256,
    /// ecdsa-sha2-nistp384 (RFC 5656).
    EcdsaP384,
    /// ecdsa-sha2-nistp521 (RFC 5656).
    EcdsaP521,
    /// ssh-rsa keys, signing with rsa-sha2-512, rsa-sha2-256 (RFC 8332) or legacy ssh-rsa.
    Rsa,
    /// ssh-dss (legacy): 1024-bit DSA with SHA-1.
    Dsa,
}

impl KeyType {
    /// Every supported kind, for lookups by name.
    pub const ALL: [KeyType; 6] = [
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::EcdsaP521,
        KeyType::Rsa,
        KeyType::Dsa,
    ];

    /// The key type name used in blobs, `.pub` files and known_hosts.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyType::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyType::Rsa => "ssh-rsa",
            KeyType::Dsa => "ssh-dss",
        }
    }

    /// The type name of OpenSSH certificates for keys of this kind (PROTOCOL.certkeys).
    pub fn certificate_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519-cert-v01@openssh.com",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            KeyType::EcdsaP384 => "ecdsa-sha2-nistp384-cert-v01@openssh.com",
            KeyType::EcdsaP521 => "ecdsa-sha2-nistp521-cert-v01@openssh.com",
            KeyType::Rsa => "ssh-rsa-cert-v01@openssh.com",
            KeyType::Dsa => "ssh-dss-cert-v01@openssh.com",
        }
    }

    /// The kind named `name` (a key type name such as "ssh-ed25519"), if supported.
    pub fn from_name(name: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The kind whose certificates are named `name`, if supported.
    pub fn from_certificate_name(name: &str) -> Option<KeyType> {
        KeyType::ALL
            .into_iter()
            .find(|t| t.certificate_name() == name)
    }

    /// The fixed size in bits of this kind's keys, or None for RSA (chosen at generation).
    pub fn fixed_bits(self) -> Option<usize> {
        match self {
            KeyType::Ed25519 | KeyType::EcdsaP256 => Some(256),
            KeyType::EcdsaP384 => Some(384),
            KeyType::EcdsaP521 => Some(521),
            KeyType::Dsa => Some(1024),
            KeyType::Rsa => None,
        }
    }
}

/// The hash a signature algorithm applies to the signed data before the key operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigDigest {
    /// The algorithm hashes internally (Ed25519).
    Intrinsic,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// One signature algorithm: its wire name, the key kind that makes it, its hash, whether it is
/// legacy (SHA-1, offered only when the application enables legacy algorithms), and the name
/// of the matching certificate algorithm (PROTOCOL.certkeys; RFC 8332 §3.3 for RSA).
#[derive(Debug)]
pub(crate) struct SignatureAlgorithm {
    pub(crate) name: &'static str,
    pub(crate) key_type: KeyType,
    pub(crate) digest: SigDigest,
    pub(crate) legacy: bool,
    pub(crate) certificate: &'static str,
}

/// Every supported signature algorithm, in the order of preference of DESIGN.md's algorithm
/// table (modern first, legacy last). [`HOST_KEY_ALGORITHMS`] lists the same names.
pub(crate) const SIGNATURE_ALGORITHMS: &[SignatureAlgorithm] = &[
    SignatureAlgorithm {
        name: "ssh-ed25519",
        key_type: KeyType::Ed25519,
        digest: SigDigest::Intrinsic,
        legacy: false,
        certificate: "ssh-ed25519-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "ecdsa-sha2-nistp256",
        key_type: KeyType::EcdsaP256,
        digest: SigDigest::Sha256,
        legacy: false,
        certificate: "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "ecdsa-sha2-nistp384",
        key_type: KeyType::EcdsaP384,
        digest: SigDigest::Sha384,
        legacy: false,
        certificate: "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "ecdsa-sha2-nistp521",
        key_type: KeyType::EcdsaP521,
        digest: SigDigest::Sha512,
        legacy: false,
        certificate: "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "rsa-sha2-512",
        key_type: KeyType::Rsa,
        digest: SigDigest::Sha512,
        legacy: false,
        certificate: "rsa-sha2-512-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "rsa-sha2-256",
        key_type: KeyType::Rsa,
        digest: SigDigest::Sha256,
        legacy: false,
        certificate: "rsa-sha2-256-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "ssh-rsa",
        key_type: KeyType::Rsa,
        digest: SigDigest::Sha1,
        legacy: true,
        certificate: "ssh-rsa-cert-v01@openssh.com",
    },
    SignatureAlgorithm {
        name: "ssh-dss",
        key_type: KeyType::Dsa,
        digest: SigDigest::Sha1,
        legacy: true,
        certificate: "ssh-dss-cert-v01@openssh.com",
    },
];

/// Every host key (signature) algorithm Sekura verifies, preferred first, with its legacy
/// flag: legacy algorithms (SHA-1) are offered only when the application enables them.
pub const HOST_KEY_ALGORITHMS: &[(&str, bool)] = &[
    ("ssh-ed25519", false),
    ("ecdsa-sha2-nistp256", false),
    ("ecdsa-sha2-nistp384", false),
    ("ecdsa-sha2-nistp521", false),
    ("rsa-sha2-512", false),
    ("rsa-sha2-256", false),
    ("ssh-rsa", true),
    ("ssh-dss", true),
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
