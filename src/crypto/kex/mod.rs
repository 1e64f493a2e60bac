//! Key exchange methods (RFC 4253 §8, RFC 4419, RFC 5656, RFC 8731, RFC 8268, and the
//! post-quantum hybrids of OpenSSH's PROTOCOL, draft-ietf-sshm-mlkem-hybrid-kex and
//! draft-josefsson-ntruprime-ssh): each produces our ephemeral public value and, given the
//! peer's, the shared secret K. The exchange hash and the signature around them belong to the
//! protocol core.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod curve25519;
mod dh;
mod dh_primes;
mod ecdh;
mod hybrid;
mod kem;
mod moduli;
mod prime;

pub use dh::{DhGroup, GEX_MAX_BITS, GEX_MIN_BITS};
pub use moduli::{choose_group, choose_group_random, parse_moduli, Modulus};

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
    /// X25519, ECDH and the hybrids (C_PK || C_X25519), an mpint for finite-field DH.
    fn public_encoded(&self) -> &[u8];
    /// Takes the peer's public value as the raw contents of its wire field (no length prefix;
    /// for DH the mpint's bytes), validates it (DH: 1 < f < p-1; X25519: reject all-zero
    /// shared secret, peer value must be 32 bytes; ECDH: point must decode on the curve,
    /// uncompressed SEC1; hybrids: exact length of CIPHERTEXT || S_X25519), and returns the
    /// shared secret K wire-encoded (length prefix included), zeroized on drop: an mpint, except
    /// for the hybrids where K = HASH(kem_secret || x25519_secret) is an SSH string (as in
    /// OpenSSH). Either way the bytes go into the exchange hash and key derivation as they
    /// are. Consumes the exchange: ephemeral keys are used once.
    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError>;
}

/// Which message flow a method uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KexKind {
    /// One round trip: KEXDH_INIT/KEX_ECDH_INIT (30) then the reply (31). Every method except
    /// group exchange, the hybrid post-quantum ones included.
    Ephemeral,
    /// RFC 4419: KEX_DH_GEX_REQUEST (34), GROUP (31), INIT (32), REPLY (33). The group comes
    /// from the server, so [`KexMethod::start`] cannot be used: validate it with
    /// [`DhGroup::from_wire`] and run [`DhGroup::start`] with [`KexMethod::hash`].
    GroupExchange,
}

/// The server's half of an ephemeral exchange: (our public value wire-encoded, K
/// wire-encoded).
pub type KexReply = (Vec<u8>, Zeroizing<Vec<u8>>);

type StartFn = fn(&mut dyn SecureRandom) -> Box<dyn KeyExchange>;
type RespondFn = fn(&mut dyn SecureRandom, &[u8]) -> Result<KexReply, KexError>;

/// One key exchange method as negotiated by name.
pub struct KexMethod {
    /// Wire name.
    pub name: &'static str,
    /// Off unless the application enables legacy algorithms.
    pub legacy: bool,
    /// The message flow the protocol core must run for this method.
    pub kind: KexKind,
    hash: KexHash,
    start: StartFn,
    /// A server side of its own (the KEM hybrids encapsulate); None means "generate our key
    /// and agree", which is the server side of every Diffie-Hellman-style method.
    respond: Option<RespondFn>,
}

impl fmt::Debug for KexMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KexMethod")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl KexMethod {
    /// The hash for the exchange hash and key derivation.
    pub fn hash(&self) -> KexHash {
        self.hash
    }

    /// Client side: generates our ephemeral key pair.
    ///
    /// For a [`KexKind::GroupExchange`] method there is no group yet: the exchange returned
    /// has an empty public value and refuses to agree (fail closed). Use [`DhGroup::start`].
    pub fn start(&self, rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
        (self.start)(rng)
    }

    /// Server side of a [`KexKind::Ephemeral`] method: takes the client's public value (the
    /// raw contents of its wire field, as [`KeyExchange::agree`] does), validates it, and
    /// returns our public value wire-encoded (as it goes in the reply and the exchange hash)
    /// and K wire-encoded. Diffie-Hellman methods generate a key and agree; the KEM hybrids
    /// encapsulate to the client's KEM key and add X25519. Group exchange methods are refused
    /// here: use [`DhGroup::respond`].
    pub fn respond(
        &self,
        rng: &mut dyn SecureRandom,
        client_public: &[u8],
    ) -> Result<KexReply, KexError> {
        match (self.kind, self.respond) {
            (KexKind::GroupExchange, _) => Err(KexError(format!(
                "{} needs the group exchange flow (DhGroup::respond)",
                self.name
            ))),
            (KexKind::Ephemeral, Some(respond)) => respond(rng, client_public),
            (KexKind::Ephemeral, None) => {
                let ours = (self.start)(rng);
                let public = ours.public_encoded().to_vec();
                let shared = ours.agree(client_public)?;
                Ok((public, shared))
            }
        }
    }
}

/// Every supported method in default preference order (DESIGN.md), legacy ones last.
/// Group exchange sits after the fixed groups so that a core without the GEX flow still
/// negotiates something else whenever the server offers it.
pub static KEX_METHODS: &[KexMethod] = &[
    ephemeral(
        "mlkem768x25519-sha256",
        KexHash::Sha256,
        hybrid::start_mlkem768,
        Some(hybrid::respond_mlkem768),
    ),
    ephemeral(
        "sntrup761x25519-sha512",
        KexHash::Sha512,
        hybrid::start_sntrup761,
        Some(hybrid::respond_sntrup761),
    ),
    ephemeral(
        "sntrup761x25519-sha512@openssh.com",
        KexHash::Sha512,
        hybrid::start_sntrup761,
        Some(hybrid::respond_sntrup761),
    ),
    ephemeral(
        "curve25519-sha256",
        KexHash::Sha256,
        curve25519::start,
        None,
    ),
    ephemeral(
        "curve25519-sha256@libssh.org",
        KexHash::Sha256,
        curve25519::start,
        None,
    ),
    ephemeral(
        "ecdh-sha2-nistp256",
        KexHash::Sha256,
        ecdh::start_nistp256,
        None,
    ),
    ephemeral(
        "ecdh-sha2-nistp384",
        KexHash::Sha384,
        ecdh::start_nistp384,
        None,
    ),
    ephemeral(
        "ecdh-sha2-nistp521",
        KexHash::Sha512,
        ecdh::start_nistp521,
        None,
    ),
    ephemeral(
        "diffie-hellman-group16-sha512",
        KexHash::Sha512,
        dh::start_group16,
        None,
    ),
    ephemeral(
        "diffie-hellman-group18-sha512",
        KexHash::Sha512,
        dh::start_group18,
        None,
    ),
    ephemeral(
        "diffie-hellman-group14-sha256",
        KexHash::Sha256,
        dh::start_group14_sha256,
        None,
    ),
    group_exchange(
        "diffie-hellman-group-exchange-sha256",
        KexHash::Sha256,
        false,
    ),
    legacy(ephemeral(
        "diffie-hellman-group14-sha1",
        KexHash::Sha1,
        dh::start_group14_sha1,
        None,
    )),
    legacy(ephemeral(
        "diffie-hellman-group1-sha1",
        KexHash::Sha1,
        dh::start_group1,
        None,
    )),
    group_exchange("diffie-hellman-group-exchange-sha1", KexHash::Sha1, true),
];

const fn ephemeral(
    name: &'static str,
    hash: KexHash,
    start: StartFn,
    respond: Option<RespondFn>,
) -> KexMethod {
    KexMethod {
        name,
        legacy: false,
        kind: KexKind::Ephemeral,
        hash,
        start,
        respond,
    }
}

const fn legacy(method: KexMethod) -> KexMethod {
    KexMethod {
        legacy: true,
        ..method
    }
}

const fn group_exchange(name: &'static str, hash: KexHash, legacy: bool) -> KexMethod {
    KexMethod {
        name,
        legacy,
        kind: KexKind::GroupExchange,
        hash,
        start: match hash {
            KexHash::Sha1 => dh::awaiting_group_sha1,
            _ => dh::awaiting_group_sha256,
        },
        respond: None,
    }
}

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
#[cfg(test)]
mod tests_ecdh;
#[cfg(test)]
mod tests_gex;
#[cfg(test)]
mod tests_pq;
