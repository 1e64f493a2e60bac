//! The post-quantum hybrids: mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex, OpenSSH
//! 9.9) and sntrup761x25519-sha512 with its older name @openssh.com
//! (draft-josefsson-ntruprime-ssh, OpenSSH 8.5), as OpenSSH's kexmlkem768x25519.c and
//! kexsntrup761x25519.c do them:
//!
//! - the client sends string(C_PK || C_X25519);
//! - the server encapsulates to C_PK, and replies string(CIPHERTEXT || S_X25519);
//! - K = HASH(kem_secret || x25519_secret), with the raw 32-byte X25519 output (an all-zero one
//!   refused), and K goes into the exchange hash and key derivation as an SSH *string*.
//!
//! Every length is checked exactly before anything is parsed.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::marker::PhantomData;

use zeroize::Zeroizing;

use super::curve25519::{X25519Key, X25519_LEN};
use super::kem::{Kem, MlKem, Sntrup};
use super::{KexError, KexReply, KeyExchange};
use crate::crypto::rng::SecureRandom;
use crate::crypto::KexHash;

/// The client's side: our KEM private key, our X25519 key, and string(C_PK || C_X25519).
struct HybridExchange<K: Kem> {
    hash: KexHash,
    kem_key: K::DecapsulationKey,
    x25519: X25519Key,
    public: Vec<u8>,
    kem: PhantomData<fn() -> K>,
}

pub(super) fn start_mlkem768(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start::<MlKem>(KexHash::Sha256, rng)
}

pub(super) fn start_sntrup761(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start::<Sntrup>(KexHash::Sha512, rng)
}

pub(super) fn respond_mlkem768(
    rng: &mut dyn SecureRandom,
    client_public: &[u8],
) -> Result<KexReply, KexError> {
    respond::<MlKem>(KexHash::Sha256, rng, client_public)
}

pub(super) fn respond_sntrup761(
    rng: &mut dyn SecureRandom,
    client_public: &[u8],
) -> Result<KexReply, KexError> {
    respond::<Sntrup>(KexHash::Sha512, rng, client_public)
}

fn start<K: Kem + 'static>(hash: KexHash, rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange>
where
    K::DecapsulationKey: 'static,
{
    let (kem_key, kem_public) = K::generate(rng);
    let x25519 = X25519Key::generate(rng);
    let public = encode(&[&kem_public, x25519.public()]);
    Box::new(HybridExchange::<K> {
        hash,
        kem_key,
        x25519,
        public,
        kem: PhantomData,
    })
}

/// The server's side in one step: split the client's value, encapsulate, add X25519.
fn respond<K: Kem>(
    hash: KexHash,
    rng: &mut dyn SecureRandom,
    client_public: &[u8],
) -> Result<KexReply, KexError> {
    let (kem_public, x25519_public) = split_exact(
        client_public,
        K::PUBLIC_LEN,
        &format!("{} hybrid client value", K::NAME),
    )?;
    let (ciphertext, kem_secret) = K::encapsulate(rng, kem_public)?;
    let ours = X25519Key::generate(rng);
    let reply = encode(&[&ciphertext, ours.public()]);
    let x25519_secret = ours.agree(x25519_public)?;
    Ok((reply, shared_secret(hash, &*kem_secret, &*x25519_secret)))
}

impl<K: Kem> KeyExchange for HybridExchange<K> {
    fn hash(&self) -> KexHash {
        self.hash
    }

    fn public_encoded(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        let (ciphertext, x25519_public) = split_exact(
            peer_public,
            K::CIPHERTEXT_LEN,
            &format!("{} hybrid server reply", K::NAME),
        )?;
        let kem_secret = K::decapsulate(&self.kem_key, ciphertext)?;
        let x25519_secret = self.x25519.agree(x25519_public)?;
        Ok(shared_secret(self.hash, &*kem_secret, &*x25519_secret))
    }
}

/// Splits `value` into its first `kem_len` bytes and a 32-byte X25519 value, refusing any
/// other total length.
fn split_exact<'a>(
    value: &'a [u8],
    kem_len: usize,
    what: &str,
) -> Result<(&'a [u8], &'a [u8]), KexError> {
    let want = kem_len + X25519_LEN;
    if value.len() != want {
        return Err(KexError(format!(
            "{what} is {} bytes, must be {want}",
            value.len()
        )));
    }
    value
        .split_at_checked(kem_len)
        .ok_or_else(|| KexError(format!("{what} is too short")))
}

/// string(a || b), built at its final size.
fn encode(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    parts.iter().for_each(|p| out.extend_from_slice(p));
    out
}

/// K = string(HASH(kem_secret || x25519_secret)), in one buffer allocated at its final size.
fn shared_secret(hash: KexHash, kem_secret: &[u8], x25519_secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let digest = Zeroizing::new(hash.digest(&[kem_secret, x25519_secret]));
    let mut out = Zeroizing::new(Vec::with_capacity(4 + digest.len()));
    out.extend_from_slice(&(digest.len() as u32).to_be_bytes());
    out.extend_from_slice(&digest);
    out
}
