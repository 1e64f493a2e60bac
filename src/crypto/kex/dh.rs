//! Finite-field Diffie-Hellman over the RFC 3526 MODP groups with generator 2:
//! diffie-hellman-group14-sha256 and diffie-hellman-group16-sha512 (RFC 8268).
//!
//! Private exponents are 512 random bits with the top bit set: at least twice the security
//! level of either group (about 110 and 150 bits), and the size OpenSSH picks for 256-bit
//! keys. num-bigint cannot wipe its limbs, so transient copies of the exponent and of K are
//! not zeroized; the bytes we keep are.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use num_bigint::BigUint;
use zeroize::Zeroizing;

use super::{mpint, KexError, KeyExchange};
use crate::crypto::rng::SecureRandom;
use crate::crypto::KexHash;

/// A MODP group and the hash its method uses.
pub(super) struct Group {
    name: &'static str,
    pub(super) prime: &'static [u8],
    hash: KexHash,
}

const EXPONENT_BYTES: usize = 64;

/// RFC 3526 §3: the 2048-bit MODP group, generator 2.
const GROUP14_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);
/// RFC 3526 §5: the 4096-bit MODP group, generator 2.
const GROUP16_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
);

const GROUP14_PRIME: [u8; 256] = decode_hex(GROUP14_HEX);
const GROUP16_PRIME: [u8; 512] = decode_hex(GROUP16_HEX);

pub(super) static GROUP14: Group = Group {
    name: "group14",
    prime: &GROUP14_PRIME,
    hash: KexHash::Sha256,
};
pub(super) static GROUP16: Group = Group {
    name: "group16",
    prime: &GROUP16_PRIME,
    hash: KexHash::Sha512,
};

/// Hex to bytes at compile time, so the primes stay comparable with the RFC text and a bad
/// digit or length is a build error rather than a runtime one.
#[allow(clippy::indexing_slicing, clippy::panic)]
const fn decode_hex<const N: usize>(hex: &str) -> [u8; N] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("bad hex digit in a DH prime"),
        }
    }
    let h = hex.as_bytes();
    assert!(h.len() == 2 * N, "DH prime has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (digit(h[2 * i]) << 4) | digit(h[2 * i + 1]);
        i += 1;
    }
    out
}

pub(super) fn start_group14(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    Box::new(DhExchange::new(&GROUP14, rng))
}

pub(super) fn start_group16(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    Box::new(DhExchange::new(&GROUP16, rng))
}

/// Our exponent x (as bytes, wiped on drop) and e = 2^x mod p as an mpint.
struct DhExchange {
    group: &'static Group,
    x: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl DhExchange {
    fn new(group: &'static Group, rng: &mut dyn SecureRandom) -> Self {
        let mut x = Zeroizing::new(vec![0u8; EXPONENT_BYTES]);
        rng.fill(&mut x);
        // Full length, and so never 0 or 1.
        if let Some(top) = x.first_mut() {
            *top |= 0x80;
        }
        let p = BigUint::from_bytes_be(group.prime);
        let e = BigUint::from(2u32).modpow(&BigUint::from_bytes_be(&x), &p);
        let public = mpint(&e.to_bytes_be()).to_vec();
        DhExchange { group, x, public }
    }
}

impl KeyExchange for DhExchange {
    fn hash(&self) -> KexHash {
        self.group.hash
    }

    fn public_encoded(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        let name = self.group.name;
        if peer_public.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(KexError(format!("DH {name} public value is negative")));
        }
        let p = BigUint::from_bytes_be(self.group.prime);
        let f = BigUint::from_bytes_be(peer_public);
        // 1 < f < p-1 (RFC 4253 §8): 0, 1 and p-1 confine K to {0, 1, p-1}.
        let one = BigUint::from(1u32);
        if f <= one || f >= &p - &one {
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
        let k = f.modpow(&BigUint::from_bytes_be(&self.x), &p);
        let magnitude = Zeroizing::new(k.to_bytes_be());
        Ok(mpint(&magnitude))
    }
}
