//! Packet MACs (RFC 4253 §6.4, RFC 6668, OpenSSH's `-etm@openssh.com` variants).
//!
//! This is the bulk data path: each [`Mac`] keeps an HMAC state already keyed (inner and outer
//! pads absorbed) and clones it per packet, which costs a few dozen bytes of copying instead
//! of two extra compression-function calls.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use hmac::digest::block_api::EagerHash;
use hmac::{Hmac, KeyInit, Mac as _};
use subtle::ConstantTimeEq;

use super::IntegrityError;

/// One MAC algorithm as negotiated by name.
pub struct MacAlgorithm {
    /// Wire name.
    pub name: &'static str,
    /// Bytes of key material the key derivation must produce.
    pub key_len: usize,
    /// Bytes of tag after each packet.
    pub tag_len: usize,
    /// Encrypt-then-MAC: the tag covers the ciphertext and the length stays in clear.
    pub etm: bool,
    /// Off unless the application enables legacy algorithms.
    pub legacy: bool,
    new: fn(&[u8]) -> Box<dyn Mac>,
}

impl std::fmt::Debug for MacAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacAlgorithm")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every supported MAC, in default preference order (modern first, legacy last).
pub static MACS: &[MacAlgorithm] = &[
    MacAlgorithm {
        name: "hmac-sha2-256-etm@openssh.com",
        key_len: 32,
        tag_len: 32,
        etm: true,
        legacy: false,
        new: new_hmac::<sha2::Sha256>,
    },
    MacAlgorithm {
        name: "hmac-sha2-512-etm@openssh.com",
        key_len: 64,
        tag_len: 64,
        etm: true,
        legacy: false,
        new: new_hmac::<sha2::Sha512>,
    },
    MacAlgorithm {
        name: "hmac-sha2-256",
        key_len: 32,
        tag_len: 32,
        etm: false,
        legacy: false,
        new: new_hmac::<sha2::Sha256>,
    },
    MacAlgorithm {
        name: "hmac-sha2-512",
        key_len: 64,
        tag_len: 64,
        etm: false,
        legacy: false,
        new: new_hmac::<sha2::Sha512>,
    },
    MacAlgorithm {
        name: "hmac-sha1",
        key_len: 20,
        tag_len: 20,
        etm: false,
        legacy: true,
        new: new_hmac::<sha1::Sha1>,
    },
    MacAlgorithm {
        name: "hmac-sha1-etm@openssh.com",
        key_len: 20,
        tag_len: 20,
        etm: true,
        legacy: true,
        new: new_hmac::<sha1::Sha1>,
    },
];

/// Looks a MAC up by its wire name.
pub fn find(name: &str) -> Option<&'static MacAlgorithm> {
    MACS.iter().find(|m| m.name == name)
}

impl MacAlgorithm {
    /// Keys a new MAC with the first `key_len` bytes of `key`.
    ///
    /// # Panics
    /// If `key` is shorter than `key_len`: the key derivation sizes it from this table, so a
    /// short key is a bug in the caller, and a MAC keyed with less would be silently weak.
    pub fn new_mac(&self, key: &[u8]) -> Box<dyn Mac> {
        match self.try_new_mac(key) {
            Some(mac) => mac,
            #[allow(clippy::panic)]
            None => panic!(
                "{}: key of {} bytes, need {}",
                self.name,
                key.len(),
                self.key_len
            ),
        }
    }

    /// [`Self::new_mac`] that reports a short key instead of panicking.
    pub(crate) fn try_new_mac(&self, key: &[u8]) -> Option<Box<dyn Mac>> {
        key.get(..self.key_len).map(self.new)
    }
}

/// A keyed packet MAC for one direction.
pub trait Mac: Send {
    /// Tag over uint32 seq || data, written into out (len tag_len).
    fn compute(&mut self, seq: u32, data: &[u8], out: &mut [u8]);
    /// Constant-time verification (subtle).
    fn verify(&mut self, seq: u32, data: &[u8], tag: &[u8]) -> Result<(), IntegrityError>;
}

/// HMAC with its key already absorbed; `Hmac` zeroizes its pads on drop (hmac's `zeroize`).
struct KeyedHmac<D: EagerHash> {
    keyed: Hmac<D>,
}

fn new_hmac<D>(key: &[u8]) -> Box<dyn Mac>
where
    D: EagerHash + Send + 'static,
    Hmac<D>: Send,
{
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
    #[allow(clippy::expect_used)]
    let keyed = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    Box::new(KeyedHmac { keyed })
}

impl<D: EagerHash> KeyedHmac<D> {
    fn tag(&self, seq: u32, data: &[u8]) -> hmac::digest::Output<Hmac<D>> {
        let mut h = self.keyed.clone();
        h.update(&seq.to_be_bytes());
        h.update(data);
        h.finalize().into_bytes()
    }
}

impl<D> Mac for KeyedHmac<D>
where
    D: EagerHash,
    Hmac<D>: Send,
{
    fn compute(&mut self, seq: u32, data: &[u8], out: &mut [u8]) {
        let tag = self.tag(seq, data);
        debug_assert_eq!(
            out.len(),
            tag.len(),
            "MAC output buffer has the wrong length"
        );
        out.iter_mut().zip(tag.iter()).for_each(|(o, t)| *o = *t);
    }

    fn verify(&mut self, seq: u32, data: &[u8], tag: &[u8]) -> Result<(), IntegrityError> {
        // `ct_eq` on slices of different lengths is false (the length itself is public).
        if bool::from(self.tag(seq, data).as_slice().ct_eq(tag)) {
            Ok(())
        } else {
            Err(IntegrityError)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::crypto::hex;

    /// RFC 4231 / RFC 2202 test case 2 (key "Jefe"). Our MAC always prefixes uint32 seq, so
    /// the first four message bytes ("what") travel as the sequence number.
    #[test]
    fn hmac_known_answers() {
        let msg = b"what do ya want for nothing?";
        let seq = u32::from_be_bytes(*b"what");
        let cases = [
            (
                "hmac-sha2-256",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                "hmac-sha2-512",
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
            ("hmac-sha1", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        ];
        for (name, want) in cases {
            let alg = find(name).unwrap();
            let mut mac = (alg.new)(b"Jefe");
            let mut out = vec![0u8; alg.tag_len];
            mac.compute(seq, &msg[4..], &mut out);
            assert_eq!(out, hex(want), "{name}");
            assert!(mac.verify(seq, &msg[4..], &out).is_ok());
        }
    }

    #[test]
    fn table_order_and_lookup() {
        let names: Vec<_> = MACS.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "hmac-sha2-256-etm@openssh.com",
                "hmac-sha2-512-etm@openssh.com",
                "hmac-sha2-256",
                "hmac-sha2-512",
                "hmac-sha1",
                "hmac-sha1-etm@openssh.com"
            ]
        );
        assert!(find("hmac-md5").is_none());
        assert!(find("hmac-sha1").unwrap().legacy);
        assert!(!find("hmac-sha2-256").unwrap().legacy);
    }

    #[test]
    fn verify_rejects_wrong_seq_data_tag_and_length() {
        for alg in MACS {
            let key = vec![7u8; alg.key_len];
            let mut mac = alg.new_mac(&key);
            let mut tag = vec![0u8; alg.tag_len];
            mac.compute(5, b"payload", &mut tag);
            assert!(mac.verify(5, b"payload", &tag).is_ok(), "{}", alg.name);
            assert!(mac.verify(6, b"payload", &tag).is_err());
            assert!(mac.verify(5, b"paylaod", &tag).is_err());
            assert!(mac.verify(5, b"payload", &tag[..alg.tag_len - 1]).is_err());
            assert!(mac.verify(5, b"payload", &[]).is_err());
            tag[0] ^= 1;
            assert!(mac.verify(5, b"payload", &tag).is_err());
        }
    }

    #[test]
    fn key_longer_than_needed_uses_prefix() {
        let alg = find("hmac-sha2-256").unwrap();
        let (mut a, mut b) = (vec![0u8; 32], vec![0u8; 32]);
        alg.new_mac(&[9u8; 32]).compute(1, b"x", &mut a);
        alg.new_mac(&[9u8; 40]).compute(1, b"x", &mut b);
        assert_eq!(a, b);
        assert!(alg.try_new_mac(&[9u8; 31]).is_none());
    }
}
