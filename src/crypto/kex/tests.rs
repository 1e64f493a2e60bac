//! Key exchange tests: both ends agree, published known answers, hostile peer values refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use num_bigint::BigUint;

use super::*;
use crate::crypto::hex;
use crate::crypto::rng::tests::FixedRandom;
use crate::crypto::rng::OsRandom;

/// Splits a wire-encoded field into its contents, checking the length prefix.
pub(super) fn contents(field: &[u8]) -> &[u8] {
    let (len, rest) = field.split_at(4);
    assert_eq!(
        u32::from_be_bytes(len.try_into().unwrap()) as usize,
        rest.len()
    );
    rest
}

pub(super) fn method(name: &str) -> &'static KexMethod {
    find(name).unwrap()
}

#[test]
fn table_order_and_lookup() {
    let names: Vec<_> = KEX_METHODS.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "mlkem768x25519-sha256",
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group14-sha256",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group1-sha1",
            "diffie-hellman-group-exchange-sha1",
        ]
    );
    let legacy: Vec<_> = KEX_METHODS
        .iter()
        .filter(|m| m.legacy)
        .map(|m| m.name)
        .collect();
    assert_eq!(
        legacy,
        [
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group1-sha1",
            "diffie-hellman-group-exchange-sha1"
        ]
    );
    // Legacy methods come last, so default preference never reaches them first.
    let first_legacy = KEX_METHODS.iter().position(|m| m.legacy).unwrap();
    assert!(KEX_METHODS[first_legacy..].iter().all(|m| m.legacy));
    let gex: Vec<_> = KEX_METHODS
        .iter()
        .filter(|m| m.kind == KexKind::GroupExchange)
        .map(|m| m.name)
        .collect();
    assert_eq!(
        gex,
        [
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group-exchange-sha1"
        ]
    );
    assert!(find("diffie-hellman-group15-sha512").is_none());
    assert!(find("ecdh-sha2-nistp256").is_some());
}

/// The hash each method names (RFC 5656 §6.2.1 for the curves: 256 → SHA-256, 384 → SHA-384,
/// 521 → SHA-512).
fn expected_hash(name: &str) -> KexHash {
    if name.contains("sha1") {
        KexHash::Sha1
    } else if name.contains("sha512") || name.ends_with("nistp521") {
        KexHash::Sha512
    } else if name.ends_with("nistp384") {
        KexHash::Sha384
    } else {
        KexHash::Sha256
    }
}

/// Client start, server respond, client agree: both ends hold the same K, for every
/// ephemeral method (group exchange has its own test in tests_gex.rs).
#[test]
fn client_and_server_agree_for_every_method() {
    for m in KEX_METHODS {
        assert_eq!(m.hash(), expected_hash(m.name), "{}", m.name);
        if m.kind == KexKind::GroupExchange {
            continue;
        }
        let client = m.start(&mut OsRandom);
        assert_eq!(client.hash(), m.hash(), "{}", m.name);
        let c_pub = contents(client.public_encoded()).to_vec();
        let (s_pub, k_server) = m.respond(&mut OsRandom, &c_pub).unwrap();
        assert_ne!(client.public_encoded(), s_pub.as_slice(), "{}", m.name);
        let k_client = client.agree(contents(&s_pub)).unwrap();
        assert_eq!(*k_client, *k_server, "{}", m.name);
        let k = contents(&k_client);
        if m.name.contains("mlkem") || m.name.contains("sntrup") {
            // The hybrids' K is a string holding a digest.
            assert_eq!(k.len(), m.hash().output_len(), "{}", m.name);
        } else {
            // K is a positive, minimally encoded mpint.
            assert!(k[0] != 0 || k[1] & 0x80 != 0, "{}: K not minimal", m.name);
            assert!(k[0] & 0x80 == 0, "{}: K negative", m.name);
        }
    }
}

/// Two clients (the old symmetric test): each agrees with the other's public value.
#[test]
fn two_dh_style_ends_agree() {
    for m in KEX_METHODS.iter().filter(|m| {
        m.kind == KexKind::Ephemeral && !m.name.contains("mlkem") && !m.name.contains("sntrup")
    }) {
        let a = m.start(&mut OsRandom);
        let b = m.start(&mut OsRandom);
        let a_pub = contents(a.public_encoded()).to_vec();
        let b_pub = contents(b.public_encoded()).to_vec();
        assert_eq!(
            *a.agree(&b_pub).unwrap(),
            *b.agree(&a_pub).unwrap(),
            "{}",
            m.name
        );
    }
}

#[test]
fn respond_refuses_bad_client_values() {
    for m in KEX_METHODS.iter().filter(|m| m.kind == KexKind::Ephemeral) {
        for bad in [vec![], vec![0u8; 32], vec![1u8; 2000]] {
            assert!(
                m.respond(&mut OsRandom, &bad).is_err(),
                "{}: {} bytes accepted",
                m.name,
                bad.len()
            );
        }
    }
}

/// RFC 7748 §6.1 (Alice and Bob), through the SSH encodings of RFC 8731.
#[test]
fn x25519_known_answer() {
    let alice_secret = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let alice_public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    for name in ["curve25519-sha256", "curve25519-sha256@libssh.org"] {
        let alice = method(name).start(&mut FixedRandom(alice_secret.clone()));
        assert_eq!(alice.public_encoded(), string(&alice_public));
        assert_eq!(*alice.agree(&bob_public).unwrap(), *mpint(&shared));
    }
}

#[test]
fn x25519_refuses_bad_peer_values() {
    let m = method("curve25519-sha256");
    for bad in [vec![0u8; 32], vec![0u8; 31], vec![9u8; 33], vec![]] {
        assert!(
            m.start(&mut OsRandom).agree(&bad).is_err(),
            "{bad:?} accepted"
        );
    }
    // Other low-order points (u = 1, and the order-8 point from RFC 7748's errata list).
    let mut one = [0u8; 32];
    one[0] = 1;
    let order8 = hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
    for bad in [one.to_vec(), order8] {
        let err = m.start(&mut OsRandom).agree(&bad).unwrap_err();
        assert!(err.to_string().contains("low-order"), "{err}");
    }
}

#[test]
fn dh_primes_are_the_rfcs() {
    use dh_primes::{GROUP1, GROUP14, GROUP16, GROUP18};
    for (group, bits) in [
        (&GROUP1, 1024),
        (&GROUP14, 2048),
        (&GROUP16, 4096),
        (&GROUP18, 8192),
    ] {
        let p = BigUint::from_bytes_be(group.prime);
        assert_eq!(p.bits(), bits);
        // Every prime starts with 64 one bits then the digits of pi, and ends with 64 one bits.
        assert_eq!(&group.prime[..16], hex("FFFFFFFFFFFFFFFF C90FDAA22168C234"));
        assert_eq!(&group.prime[group.prime.len() - 8..], [0xff; 8]);
        // A single copied digit wrong would fail these Fermat checks on p and on q = (p-1)/2
        // (RFC 3526's are safe primes). 8192 bits take a second in a debug build.
        let one = BigUint::from(1u32);
        let two = BigUint::from(2u32);
        assert_eq!(two.modpow(&(&p - &one), &p), one, "{bits}");
        let q = (&p - &one) >> 1;
        assert_eq!(two.modpow(&(&q - &one), &q), one, "{bits}");
    }
    assert_eq!(&GROUP1.prime[116..], hex("ECE65381 FFFFFFFFFFFFFFFF"));
    assert_eq!(&GROUP14.prime[244..], hex("8AACAA68 FFFFFFFFFFFFFFFF"));
    assert_eq!(&GROUP18.prime[1012..], hex("98EDD3DF FFFFFFFFFFFFFFFF"));
    // Each larger group extends the digits of pi of the smaller ones.
    assert_eq!(&GROUP1.prime[..116], &GROUP14.prime[..116]);
    assert_eq!(&GROUP16.prime[..256 - 12], &GROUP14.prime[..256 - 12]);
    assert_eq!(&GROUP18.prime[..512 - 12], &GROUP16.prime[..512 - 12]);
}

/// An all-zero draw gives x = 2^511 (the top bit is forced). Digests of e = 2^x mod p
/// computed independently (Python's pow).
#[test]
fn dh_public_value_known_answer() {
    let cases = [
        (
            "diffie-hellman-group14-sha256",
            260,
            "20567ef797c09d42b80e514606f588d3e806a5b5fe0e043ee09302cb6d79ad1a",
        ),
        (
            "diffie-hellman-group16-sha512",
            516,
            "0b815fa38dc80685231c93457025aa44e747a00e54a8afa7bb3f98851ded88af",
        ),
        (
            "diffie-hellman-group1-sha1",
            133,
            "4e121349eda8cb8d687f47aa5efbe29c8ec684626d4da3be5e981cccd245cce1",
        ),
        (
            "diffie-hellman-group18-sha512",
            1029,
            "aa74b27b2dc847b9a8597dde049c18e9193ab49960c2b11551c7ae9c102d5272",
        ),
    ];
    for (name, len, digest) in cases {
        let kex = method(name).start(&mut FixedRandom(vec![0; 64]));
        assert_eq!(kex.public_encoded().len(), len, "{name}");
        assert_eq!(
            KexHash::Sha256.digest(&[kex.public_encoded()]),
            hex(digest),
            "{name}"
        );
    }
}

#[test]
fn dh_refuses_bad_peer_values() {
    for (name, group) in [
        ("diffie-hellman-group1-sha1", &dh_primes::GROUP1),
        ("diffie-hellman-group14-sha1", &dh_primes::GROUP14),
        ("diffie-hellman-group14-sha256", &dh_primes::GROUP14),
        ("diffie-hellman-group16-sha512", &dh_primes::GROUP16),
        ("diffie-hellman-group18-sha512", &dh_primes::GROUP18),
    ] {
        let p = BigUint::from_bytes_be(group.prime);
        let mpint_contents = |v: &BigUint| [&[0u8][..], &v.to_bytes_be()].concat();
        let bad = [
            vec![],
            vec![0],
            vec![1],
            vec![0, 0, 1],
            vec![2],
            vec![0x80, 1],
            mpint_contents(&(&p - 1u32)),
            mpint_contents(&p),
            mpint_contents(&(&p + 1u32)),
            group.prime.to_vec(),
        ];
        for value in bad {
            let result = method(name).start(&mut OsRandom).agree(&value);
            assert!(
                result.is_err(),
                "{name}: {:02x?} accepted",
                &value[..value.len().min(8)]
            );
        }
        let fine = mpint_contents(&(&p - 2u32));
        assert!(method(name).start(&mut OsRandom).agree(&fine).is_ok());
    }
}

#[test]
fn mpint_and_string_encodings() {
    assert_eq!(*mpint(&[]), [0, 0, 0, 0]);
    assert_eq!(*mpint(&[0, 0]), [0, 0, 0, 0]);
    assert_eq!(*mpint(&[0, 0x7f]), [0, 0, 0, 1, 0x7f]);
    assert_eq!(*mpint(&[0x80]), [0, 0, 0, 2, 0, 0x80]);
    assert_eq!(*mpint(&[0, 0, 0x80, 1]), [0, 0, 0, 3, 0, 0x80, 1]);
    assert_eq!(string(b"ab"), [0, 0, 0, 2, b'a', b'b']);
}

#[test]
fn kex_error_displays_its_reason() {
    let err = method("curve25519-sha256")
        .start(&mut OsRandom)
        .agree(&[1, 2])
        .unwrap_err();
    assert!(err.to_string().contains("must be 32"), "{err}");
}
