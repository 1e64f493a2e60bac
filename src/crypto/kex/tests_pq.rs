//! Hybrid post-quantum methods: sizes, the combination K = HASH(kem || x25519) as a string,
//! an independent known answer for mlkem768x25519-sha256, and hostile values refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::tests::{contents, method};
use super::*;
use crate::crypto::hex;
use crate::crypto::rng::tests::FixedRandom;
use crate::crypto::rng::OsRandom;

const MLKEM: &str = "mlkem768x25519-sha256";
const SNTRUP: [&str; 2] = [
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];

/// (method, KEM public key bytes, KEM ciphertext bytes, digest bytes)
fn hybrids() -> [(&'static str, usize, usize, usize); 3] {
    [
        (MLKEM, 1184, 1088, 32),
        (SNTRUP[0], 1158, 1039, 64),
        (SNTRUP[1], 1158, 1039, 64),
    ]
}

#[test]
fn wire_sizes_are_exact() {
    for (name, pk, ct, digest) in hybrids() {
        let m = method(name);
        let client = m.start(&mut OsRandom);
        assert_eq!(client.public_encoded().len(), 4 + pk + 32, "{name}");
        let c_pub = contents(client.public_encoded()).to_vec();
        let (reply, k) = m.respond(&mut OsRandom, &c_pub).unwrap();
        assert_eq!(reply.len(), 4 + ct + 32, "{name}");
        // K is string(digest), not an mpint: the length prefix counts the whole digest even
        // when its first byte has the top bit set or is zero.
        assert_eq!(k.len(), 4 + digest, "{name}");
        assert_eq!(&k[..4], (digest as u32).to_be_bytes(), "{name}");
        assert_eq!(*client.agree(contents(&reply)).unwrap(), *k, "{name}");
    }
}

/// Independent known answer: the expected values were computed with kyber-py (a pure-Python
/// FIPS 203 implementation) and Python's `cryptography` X25519, from the same random bytes:
/// client d = 00..1f, z = 20..3f, X25519 scalar 40..5f; server m = 64..83, scalar 84..a3.
#[test]
fn mlkem768x25519_known_answer() {
    let client_random: Vec<u8> = (0u8..96).collect();
    let server_random: Vec<u8> = (0..64).map(|i| 100u8.wrapping_add(i)).collect();
    let m = method(MLKEM);
    let client = m.start(&mut FixedRandom(client_random));
    assert_eq!(
        KexHash::Sha256.digest(&[contents(client.public_encoded())]),
        hex("d99e4496af749b54ee4a2d270c8057450624ecc5dc0866295ffc504a26134ad4")
    );
    let c_pub = contents(client.public_encoded()).to_vec();
    let (reply, k_server) = m.respond(&mut FixedRandom(server_random), &c_pub).unwrap();
    assert_eq!(
        KexHash::Sha256.digest(&[contents(&reply)]),
        hex("2240e20308b2e81883acc7eb5272c308ef835825165a249c4215995569409b98")
    );
    let want = string(&hex(
        "1f9ea874c06db1e96662862b01d8ad44f933c5c24b39b21e30b34b4a25fa4cb8",
    ));
    assert_eq!(*k_server, want);
    assert_eq!(*client.agree(contents(&reply)).unwrap(), want);
}

/// For sntrup761 (no second implementation at hand; OpenSSH's is checked by the interop
/// tests), rebuild K from the parts with the crates directly: SHA-512 over the KEM secret then
/// the raw X25519 secret, as a string.
#[test]
fn sntrup761x25519_combines_as_openssh() {
    use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};
    let client_random: Vec<u8> = (0u8..64).collect();
    let server_random: Vec<u8> = (0..64).map(|i| 200u8.wrapping_add(i)).collect();
    let client = method(SNTRUP[0]).start(&mut FixedRandom(client_random.clone()));
    let c_pub = contents(client.public_encoded()).to_vec();
    let (reply, k) = method(SNTRUP[0])
        .respond(&mut FixedRandom(server_random.clone()), &c_pub)
        .unwrap();
    let body = contents(&reply);

    let (ek, dk) = sntrup761::generate_key_from_seed(client_random[..32].try_into().unwrap());
    assert_eq!(&c_pub[..1158], ek.as_ref());
    let ciphertext = sntrup761::Ciphertext::try_from(&body[..1039]).unwrap();
    let kem_secret = dk.decapsulate(&ciphertext);
    let (_, sent) = ek.encapsulate_deterministic(server_random[..32].try_into().unwrap());
    assert!(kem_secret == sent);

    let client_x: [u8; 32] = client_random[32..].try_into().unwrap();
    let server_x: [u8; 32] = server_random[32..].try_into().unwrap();
    let server_public = x25519(server_x, X25519_BASEPOINT_BYTES);
    assert_eq!(&body[1039..], server_public);
    let x_secret = x25519(client_x, server_public);
    let digest = KexHash::Sha512.digest(&[kem_secret.as_ref(), &x_secret]);
    assert_eq!(*k, string(&digest));
    assert_eq!(*client.agree(body).unwrap(), string(&digest));
}

#[test]
fn wrong_lengths_are_refused() {
    for (name, pk, ct, _) in hybrids() {
        let m = method(name);
        let good = contents(m.start(&mut OsRandom).public_encoded()).to_vec();
        for len in [0, 32, pk, pk + 31, pk + 33, good.len() + 1000] {
            let mut value = good.clone();
            value.resize(len, 7);
            let err = m.respond(&mut OsRandom, &value).unwrap_err();
            assert!(err.to_string().contains("bytes"), "{name}: {err}");
        }
        for len in [0, 32, ct, ct + 31, ct + 33, ct + 64] {
            let client = m.start(&mut OsRandom);
            let c_pub = contents(client.public_encoded()).to_vec();
            let (reply, _) = m.respond(&mut OsRandom, &c_pub).unwrap();
            let mut value = contents(&reply).to_vec();
            value.resize(len, 7);
            assert!(client.agree(&value).is_err(), "{name}: reply of {len}");
        }
    }
}

#[test]
fn low_order_x25519_halves_are_refused() {
    for (name, pk, ct, _) in hybrids() {
        let m = method(name);
        let client = m.start(&mut OsRandom);
        let mut c_pub = contents(client.public_encoded()).to_vec();
        let (reply, _) = m.respond(&mut OsRandom, &c_pub).unwrap();
        c_pub[pk..].fill(0);
        let err = m.respond(&mut OsRandom, &c_pub).unwrap_err();
        assert!(err.to_string().contains("low-order"), "{name}: {err}");
        let mut s_pub = contents(&reply).to_vec();
        s_pub[ct..].fill(0);
        let err = client.agree(&s_pub).unwrap_err();
        assert!(err.to_string().contains("low-order"), "{name}: {err}");
    }
}

/// FIPS 203 §7.2: an encapsulation key whose coefficients are not reduced modulo q is refused.
#[test]
fn mlkem_public_key_check() {
    let m = method(MLKEM);
    let mut c_pub = contents(m.start(&mut OsRandom).public_encoded()).to_vec();
    c_pub[..384].fill(0xff);
    let err = m.respond(&mut OsRandom, &c_pub).unwrap_err();
    assert!(err.to_string().contains("FIPS 203"), "{err}");
}

/// Both KEMs reject implicitly: a corrupted ciphertext decapsulates to an unrelated secret,
/// so the two ends disagree (and the host key signature check fails in the protocol).
#[test]
fn corrupted_ciphertext_gives_a_different_k() {
    for (name, _, _, _) in hybrids() {
        let m = method(name);
        let client = m.start(&mut OsRandom);
        let c_pub = contents(client.public_encoded()).to_vec();
        let (reply, k_server) = m.respond(&mut OsRandom, &c_pub).unwrap();
        let mut bad = contents(&reply).to_vec();
        bad[10] ^= 1;
        let k_client = client.agree(&bad).unwrap();
        assert_ne!(*k_client, *k_server, "{name}");
    }
}
