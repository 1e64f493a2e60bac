//! Finite-field Diffie-Hellman: the fixed MODP groups (diffie-hellman-group1-sha1,
//! -group14-sha1/-sha256, -group16-sha512, -group18-sha512; RFC 4253, RFC 8268) and the groups
//! a server sends in group exchange (RFC 4419), all through [`DhGroup`].
//!
//! Private exponents are 512 random bits with the top bit set: at least twice the security
//! level of every group here (up to about 200 bits for 8192-bit groups), the size OpenSSH picks
//! for 256-bit keys. num-bigint cannot wipe its limbs, so transient copies of the exponent and
//! of K are not zeroized; the bytes we keep are.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt;

use num_bigint::BigUint;
use zeroize::Zeroizing;

use super::dh_primes::{FixedGroup, GROUP1, GROUP14, GROUP16, GROUP18};
use super::{mpint, prime, KexError, KexReply, KeyExchange};
use crate::crypto::rng::SecureRandom;
use crate::crypto::KexHash;

const EXPONENT_BYTES: usize = 64;

/// Sizes a client accepts from a group-exchange server: SECURITY.md's floor, and RFC 4419's
/// ceiling (which also bounds the work a server can make us do).
pub const GEX_MIN_BITS: u32 = 2048;
/// See [`GEX_MIN_BITS`].
pub const GEX_MAX_BITS: u32 = 8192;

/// A Diffie-Hellman group: prime modulus p and generator g, with their mpint encodings for
/// the group-exchange hash. Two groups are equal when p and g are.
#[derive(Clone)]
pub struct DhGroup {
    name: &'static str,
    p: BigUint,
    g: BigUint,
    p_encoded: Vec<u8>,
    g_encoded: Vec<u8>,
}

impl PartialEq for DhGroup {
    fn eq(&self, other: &Self) -> bool {
        self.p == other.p && self.g == other.g
    }
}

impl Eq for DhGroup {}

impl fmt::Debug for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhGroup")
            .field("name", &self.name)
            .field("bits", &self.bits())
            .field("g", &self.g)
            .finish_non_exhaustive()
    }
}

impl DhGroup {
    fn new(name: &'static str, p: BigUint, g: BigUint) -> Self {
        let p_encoded = mpint(&p.to_bytes_be()).to_vec();
        let g_encoded = mpint(&g.to_bytes_be()).to_vec();
        DhGroup {
            name,
            p,
            g,
            p_encoded,
            g_encoded,
        }
    }

    fn fixed(group: &FixedGroup) -> Self {
        Self::new(
            group.name,
            BigUint::from_bytes_be(group.prime),
            BigUint::from(2u32),
        )
    }

    /// RFC 3526's 2048-bit group (generator 2): a server's fallback when no modulus fits.
    pub fn group14() -> Self {
        Self::fixed(&GROUP14)
    }

    /// RFC 3526's 4096-bit group (generator 2).
    pub fn group16() -> Self {
        Self::fixed(&GROUP16)
    }

    /// RFC 3526's 8192-bit group (generator 2).
    pub fn group18() -> Self {
        Self::fixed(&GROUP18)
    }

    /// A group from a trusted source (the server's own moduli file), unchecked.
    pub(super) fn trusted(p: BigUint, g: BigUint) -> Self {
        Self::new("group-exchange", p, g)
    }

    /// Client side of group exchange: takes p and g as received in KEX_DH_GEX_GROUP (the raw
    /// contents of the two mpints, no length prefix) and checks what a client must: p odd, of
    /// 2048 to 8192 bits, a probable prime (trial division and Miller-Rabin to base 2; see
    /// `prime.rs` for the cost, up to about 0.4 s at 8192 bits), and 1 < g < p-1.
    pub fn from_wire(p: &[u8], g: &[u8]) -> Result<DhGroup, KexError> {
        if p.first().is_some_and(|&b| b & 0x80 != 0) || g.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(KexError("group exchange: p or g is negative".into()));
        }
        let p_value = BigUint::from_bytes_be(p);
        let bits = p_value.bits();
        if !(u64::from(GEX_MIN_BITS)..=u64::from(GEX_MAX_BITS)).contains(&bits) {
            return Err(KexError(format!(
                "group exchange: the server's {bits}-bit group is outside \
                 {GEX_MIN_BITS}..={GEX_MAX_BITS} bits"
            )));
        }
        if !p_value.bit(0) {
            return Err(KexError("group exchange: p is even".into()));
        }
        let g_value = BigUint::from_bytes_be(g);
        let one = BigUint::from(1u32);
        if g_value <= one || g_value >= &p_value - &one {
            return Err(KexError(
                "group exchange: generator out of range (need 1 < g < p-1)".into(),
            ));
        }
        if !prime::is_probable_prime(p, &p_value) {
            return Err(KexError("group exchange: p is not prime".into()));
        }
        Ok(Self::new("group-exchange", p_value, g_value))
    }

    /// Bits of p.
    pub fn bits(&self) -> u64 {
        self.p.bits()
    }

    /// p as an mpint (length prefix included), for the group-exchange hash and
    /// KEX_DH_GEX_GROUP.
    pub fn p_encoded(&self) -> &[u8] {
        &self.p_encoded
    }

    /// g as an mpint (length prefix included), likewise.
    pub fn g_encoded(&self) -> &[u8] {
        &self.g_encoded
    }

    /// Generates our exponent and public value (e, or f on the server) in this group; the
    /// exchange hashes with `hash`.
    pub fn start(&self, hash: KexHash, rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
        Box::new(DhExchange::new(self.clone(), hash, rng))
    }

    /// Server side: takes the client's e (raw mpint contents), validates it, and returns our
    /// f as an mpint and K as an mpint.
    pub fn respond(
        &self,
        rng: &mut dyn SecureRandom,
        client_public: &[u8],
    ) -> Result<KexReply, KexError> {
        // The hash is the caller's business here: only f and K come back.
        let ours = DhExchange::new(self.clone(), KexHash::Sha256, rng);
        let public = ours.public.clone();
        let shared = Box::new(ours).agree(client_public)?;
        Ok((public, shared))
    }
}

fn start_fixed(
    group: &FixedGroup,
    hash: KexHash,
    rng: &mut dyn SecureRandom,
) -> Box<dyn KeyExchange> {
    DhGroup::fixed(group).start(hash, rng)
}

pub(super) fn start_group1(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start_fixed(&GROUP1, KexHash::Sha1, rng)
}

pub(super) fn start_group14_sha1(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start_fixed(&GROUP14, KexHash::Sha1, rng)
}

pub(super) fn start_group14_sha256(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start_fixed(&GROUP14, KexHash::Sha256, rng)
}

pub(super) fn start_group16(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start_fixed(&GROUP16, KexHash::Sha512, rng)
}

pub(super) fn start_group18(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start_fixed(&GROUP18, KexHash::Sha512, rng)
}

/// What `KexMethod::start` gives for a group-exchange method: there is no group yet, so
/// nothing to send and nothing to agree on.
struct AwaitingGroup(KexHash);

pub(super) fn awaiting_group_sha1(_rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    Box::new(AwaitingGroup(KexHash::Sha1))
}

pub(super) fn awaiting_group_sha256(_rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    Box::new(AwaitingGroup(KexHash::Sha256))
}

impl KeyExchange for AwaitingGroup {
    fn hash(&self) -> KexHash {
        self.0
    }

    fn public_encoded(&self) -> &[u8] {
        &[]
    }

    fn agree(self: Box<Self>, _peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        Err(KexError(
            "group exchange needs the server's group first (DhGroup::from_wire, then start)".into(),
        ))
    }
}

/// Our exponent x (as bytes, wiped on drop) and e = g^x mod p as an mpint.
struct DhExchange {
    group: DhGroup,
    hash: KexHash,
    x: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl DhExchange {
    fn new(group: DhGroup, hash: KexHash, rng: &mut dyn SecureRandom) -> Self {
        let mut x = Zeroizing::new(vec![0u8; EXPONENT_BYTES]);
        rng.fill(&mut x);
        // Full length, and so never 0 or 1.
        if let Some(top) = x.first_mut() {
            *top |= 0x80;
        }
        let e = group.g.modpow(&BigUint::from_bytes_be(&x), &group.p);
        let public = mpint(&e.to_bytes_be()).to_vec();
        DhExchange {
            group,
            hash,
            x,
            public,
        }
    }
}

impl KeyExchange for DhExchange {
    fn hash(&self) -> KexHash {
        self.hash
    }

    fn public_encoded(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        let name = self.group.name;
        if peer_public.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(KexError(format!("DH {name} public value is negative")));
        }
        let p = &self.group.p;
        let f = BigUint::from_bytes_be(peer_public);
        // 1 < f < p-1 (RFC 4253 §8): 0, 1 and p-1 confine K to {0, 1, p-1}.
        let one = BigUint::from(1u32);
        if f <= one || f >= p - &one {
            return Err(KexError(format!(
                "DH {name} public value out of range (need 1 < f < p-1)"
            )));
        }
        // As OpenSSH's dh_pub_is_valid: a value with so few bits set has a trivial discrete
        // log and cannot have come from an honest peer.
        if f.count_ones() < 4 {
            return Err(KexError(format!(
                "DH {name} public value has too few bits set"
            )));
        }
        let k = f.modpow(&BigUint::from_bytes_be(&self.x), p);
        let magnitude = Zeroizing::new(k.to_bytes_be());
        Ok(mpint(&magnitude))
    }
}
