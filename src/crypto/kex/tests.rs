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
fn contents(field: &[u8]) -> &[u8] {
    let (len, rest) = field.split_at(4);
    assert_eq!(
        u32::from_be_bytes(len.try_into().unwrap()) as usize,
        rest.len()
    );
    rest
}

fn method(name: &str) -> &'static KexMethod {
    find(name).unwrap()
}

#[test]
fn table_order_and_lookup() {
    let names: Vec<_> = KEX_METHODS.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group14-sha256"
        ]
    );
    assert!(find("diffie-hellman-group1-sha1").is_none());
    assert!(KEX_METHODS.iter().all(|m| !m.legacy));
}

#[test]
fn both_ends_agree_for_every_method() {
    for m in KEX_METHODS {
        let client = m.start(&mut OsRandom);
        let server = m.start(&mut OsRandom);
        let want_hash = if m.name.ends_with("sha512") {
            KexHash::Sha512
        } else {
            KexHash::Sha256
        };
        assert_eq!(client.hash(), want_hash, "{}", m.name);
        assert_ne!(client.public_encoded(), server.public_encoded());
        let c_pub = contents(client.public_encoded()).to_vec();
        let s_pub = contents(server.public_encoded()).to_vec();
        let k_client = client.agree(&s_pub).unwrap();
        let k_server = server.agree(&c_pub).unwrap();
        assert_eq!(*k_client, *k_server, "{}", m.name);
        // K is a positive, minimally encoded mpint.
        let k = contents(&k_client);
        assert!(k[0] != 0 || k[1] & 0x80 != 0, "{}: K not minimal", m.name);
        assert!(k[0] & 0x80 == 0, "{}: K negative", m.name);
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

/// RFC 5903 §8.1: the 256-bit random ECP group. K is the mpint of the shared x-coordinate.
#[test]
fn ecdh_nistp256_known_answer() {
    let i = hex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
    let gi = hex(
        "04 DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180
            5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
    );
    let gr = hex(
        "04 D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
            56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
    );
    let girx = hex("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE");
    let ours = method("ecdh-sha2-nistp256").start(&mut FixedRandom(i));
    assert_eq!(ours.public_encoded(), string(&gi));
    let k = ours.agree(&gr).unwrap();
    // The x-coordinate has its top bit set, so the mpint gains a zero byte.
    assert_eq!(*k, [&[0, 0, 0, 33, 0][..], &girx].concat());
}

#[test]
fn ecdh_refuses_bad_peer_values() {
    let m = method("ecdh-sha2-nistp256");
    let good = contents(m.start(&mut OsRandom).public_encoded()).to_vec();
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    let mut compressed = good[..33].to_vec();
    compressed[0] = 2 | (good[64] & 1);
    let mut hybrid = good.clone();
    hybrid[0] = 6;
    for bad in [
        vec![],
        vec![0],
        vec![4; 65],
        off_curve,
        compressed,
        hybrid,
        good[..64].to_vec(),
    ] {
        let result = m.start(&mut OsRandom).agree(&bad);
        assert!(result.is_err(), "{bad:02x?} accepted");
    }
    assert!(m.start(&mut OsRandom).agree(&good).is_ok());
}

#[test]
fn dh_primes_are_rfc3526() {
    for (group, bits) in [(&dh::GROUP14, 2048), (&dh::GROUP16, 4096)] {
        let p = BigUint::from_bytes_be(group.prime);
        assert_eq!(p.bits(), bits);
        // Both primes start with 64 one bits then the digits of pi, and end with 64 one bits.
        assert_eq!(&group.prime[..16], hex("FFFFFFFFFFFFFFFF C90FDAA22168C234"));
        assert_eq!(&group.prime[group.prime.len() - 8..], [0xff; 8]);
        // A single copied digit wrong would fail these Fermat checks on p and on q = (p-1)/2.
        let one = BigUint::from(1u32);
        let two = BigUint::from(2u32);
        assert_eq!(two.modpow(&(&p - &one), &p), one);
        let q = (&p - &one) >> 1;
        assert_eq!(two.modpow(&(&q - &one), &q), one);
    }
    assert_eq!(&dh::GROUP14.prime[244..], hex("8AACAA68 FFFFFFFFFFFFFFFF"));
    assert_eq!(
        &dh::GROUP16.prime[..256 - 12],
        &dh::GROUP14.prime[..256 - 12]
    );
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
        ("diffie-hellman-group14-sha256", &dh::GROUP14),
        ("diffie-hellman-group16-sha512", &dh::GROUP16),
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
