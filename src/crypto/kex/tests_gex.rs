//! Group exchange (RFC 4419): validating the server's group, both ends agreeing in it, the
//! moduli file, and the choice of a group for a request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use num_bigint::BigUint;

use super::dh_primes::{GROUP1, GROUP14, GROUP16, GROUP18};
use super::tests::{contents, method};
use super::*;
use crate::crypto::rng::tests::FixedRandom;
use crate::crypto::rng::OsRandom;

fn hex_of(prime: &[u8]) -> String {
    prime.iter().map(|b| format!("{b:02X}")).collect()
}

/// A moduli(5) line for `prime` with generator `g`.
fn line(prime: &[u8], g: u32) -> String {
    let bits = BigUint::from_bytes_be(prime).bits();
    format!(
        "20240101000000 2 6 100 {} {g:X} {}",
        bits - 1,
        hex_of(prime)
    )
}

fn wire(v: &BigUint) -> Vec<u8> {
    // mpint contents: a leading zero when the top bit is set.
    let b = v.to_bytes_be();
    if b[0] & 0x80 != 0 {
        [&[0u8][..], &b].concat()
    } else {
        b
    }
}

#[test]
fn fixed_groups_pass_client_validation() {
    for (group, bits) in [
        (DhGroup::group14(), 2048),
        (DhGroup::group16(), 4096),
        (DhGroup::group18(), 8192),
    ] {
        assert_eq!(group.bits(), bits);
        let again = DhGroup::from_wire(contents(group.p_encoded()), contents(group.g_encoded()))
            .unwrap_or_else(|e| panic!("{bits}: {e}"));
        assert_eq!(again.p_encoded(), group.p_encoded());
        assert_eq!(group.g_encoded(), [0, 0, 0, 1, 2]);
        // p's top bit is set, so its mpint has a leading zero.
        assert_eq!(group.p_encoded().len(), 4 + 1 + bits as usize / 8);
        assert_eq!(group.p_encoded()[4], 0);
    }
}

#[test]
fn client_validation_refuses_bad_groups() {
    let p14 = BigUint::from_bytes_be(GROUP14.prime);
    let p1 = BigUint::from_bytes_be(GROUP1.prime);
    let g2 = [2u8];
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("1024 bits", wire(&p1), g2.to_vec()),
        ("empty p", vec![], g2.to_vec()),
        (
            "8193 bits",
            wire(&((BigUint::from(1u32) << 8192) + 1u32)),
            g2.to_vec(),
        ),
        ("negative p", GROUP14.prime.to_vec(), g2.to_vec()),
        ("even p", wire(&(&p14 - 1u32)), g2.to_vec()),
        ("g = 0", wire(&p14), vec![]),
        ("g = 1", wire(&p14), vec![1]),
        ("g = p-1", wire(&p14), wire(&(&p14 - 1u32))),
        ("g = p", wire(&p14), wire(&p14)),
        ("g negative", wire(&p14), vec![0x80]),
        // No small factor, so only Miller-Rabin can tell: a product of two 1024-bit primes.
        ("p = p1 * p1", wire(&(&p1 * &p1)), g2.to_vec()),
        ("p = 3 * big", wire(&(&p1 * &p1 * 3u32)), g2.to_vec()),
        ("p + 2", wire(&(&p14 + 2u32)), g2.to_vec()),
    ];
    for (what, p, g) in cases {
        assert!(DhGroup::from_wire(&p, &g).is_err(), "{what} accepted");
    }
    // The same values, correct, are accepted; a non-minimal leading zero is tolerated.
    assert!(DhGroup::from_wire(&wire(&p14), &[0, 2]).is_ok());
    assert!(DhGroup::from_wire(&wire(&p14), &[5]).is_ok());
}

#[test]
fn client_and_server_agree_in_a_received_group() {
    for prime in [GROUP14.prime, GROUP16.prime] {
        let server_side = DhGroup::group14();
        let group = DhGroup::from_wire(&wire(&BigUint::from_bytes_be(prime)), &[5]).unwrap();
        assert_ne!(group, server_side);
        for hash in [KexHash::Sha256, KexHash::Sha1] {
            let client = group.start(hash, &mut OsRandom);
            assert_eq!(client.hash(), hash);
            let e = contents(client.public_encoded()).to_vec();
            let (f, k_server) = group.respond(&mut OsRandom, &e).unwrap();
            let k_client = client.agree(contents(&f)).unwrap();
            assert_eq!(*k_client, *k_server);
        }
        // The server refuses the values a client must not send either.
        let p = BigUint::from_bytes_be(prime);
        for bad in [vec![], vec![1], wire(&(&p - 1u32)), wire(&p)] {
            assert!(group.respond(&mut OsRandom, &bad).is_err());
        }
    }
}

/// e = 5^(2^511) mod p for an all-zero draw, computed independently (Python's pow).
#[test]
fn group_exchange_public_value_known_answer() {
    let group = DhGroup::from_wire(&wire(&BigUint::from_bytes_be(GROUP14.prime)), &[5]).unwrap();
    let kex = group.start(KexHash::Sha256, &mut FixedRandom(vec![0; 64]));
    let p = BigUint::from_bytes_be(GROUP14.prime);
    let x = BigUint::from(1u32) << 511u32;
    let e = BigUint::from(5u32).modpow(&x, &p);
    assert_eq!(contents(kex.public_encoded()), wire(&e));
}

#[test]
fn gex_methods_need_their_own_flow() {
    for name in [
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group-exchange-sha1",
    ] {
        let m = method(name);
        assert_eq!(m.kind, KexKind::GroupExchange);
        let pending = m.start(&mut OsRandom);
        assert!(pending.public_encoded().is_empty());
        assert_eq!(pending.hash(), m.hash());
        assert!(pending.agree(&[1, 2, 3]).is_err());
        let err = m.respond(&mut OsRandom, &[5; 256]).unwrap_err();
        assert!(err.to_string().contains("group exchange"), "{err}");
    }
}

#[test]
fn moduli_file_parsing() {
    let good14 = line(GROUP14.prime, 2);
    let good16 = line(GROUP16.prime, 5);
    let good18 = line(GROUP18.prime, 2);
    let hex14 = hex_of(GROUP14.prime);
    let bad = [
        String::new(),
        "   ".into(),
        "# Time Type Tests Tries Size Generator Modulus".into(),
        "20240101000000 2 6 100 2047 2".into(),
        format!("20240101000000 2 6 100 2047 2 {hex14} extra"),
        format!("20240101000000 1 6 100 2047 2 {hex14}"),
        format!("20240101000000 2 7 100 2047 2 {hex14}"),
        format!("20240101000000 2 0 100 2047 2 {hex14}"),
        format!("20240101000000 2 6 0 2047 2 {hex14}"),
        format!("20240101000000 2 6 100 2048 2 {hex14}"),
        format!("20240101000000 2 6 100 2047 1 {hex14}"),
        format!(
            "20240101000000 2 6 100 2047 2 {}",
            &hex14[..hex14.len() - 1]
        ),
        format!(
            "20240101000000 2 6 100 2047 2 {}E",
            &hex14[..hex14.len() - 1]
        ),
        format!(
            "20240101000000 2 6 100 2047 2 {}G",
            &hex14[..hex14.len() - 1]
        ),
        format!("20240101000000 2 6 100 2047 Z {hex14}"),
        format!("yesterday 2 6 100 2047 2 {hex14}"),
        format!("20240101000000 2 6 100 -1 2 {hex14}"),
        format!("20240101000000 2 6 100 4294967295 2 {hex14}"),
    ];
    let text = [
        bad.join("\n"),
        good14.clone(),
        good16,
        format!("  {good18}  "),
    ]
    .join("\n");
    let moduli = parse_moduli(&text);
    let sizes: Vec<u32> = moduli.iter().map(|m| m.bits).collect();
    assert_eq!(sizes, [2048, 4096, 8192]);
    assert_eq!(moduli[0].group(), &DhGroup::group14());
    assert_eq!(moduli[1].group().g_encoded(), [0, 0, 0, 1, 5]);
    assert!(parse_moduli(&bad.join("\n")).is_empty());
    // Windows line endings and a trailing newline are fine.
    assert_eq!(parse_moduli(&format!("{good14}\r\n")).len(), 1);
}

#[test]
fn choosing_a_group_follows_openssh() {
    let text = [
        line(GROUP14.prime, 2),
        line(GROUP14.prime, 5),
        line(GROUP16.prime, 2),
        line(GROUP18.prime, 2),
    ]
    .join("\n");
    let moduli = parse_moduli(&text);
    let bits = |g: Option<DhGroup>| g.map(|g| g.bits());
    // Exact, else the smallest above, else the largest below; within [min, max].
    assert_eq!(bits(choose_group(&moduli, 2048, 4096, 8192)), Some(4096));
    assert_eq!(bits(choose_group(&moduli, 2048, 3072, 8192)), Some(4096));
    assert_eq!(bits(choose_group(&moduli, 2048, 6000, 8192)), Some(8192));
    assert_eq!(bits(choose_group(&moduli, 2048, 8192, 6000)), Some(4096));
    assert_eq!(bits(choose_group(&moduli, 2048, 2048, 3000)), Some(2048));
    assert_eq!(bits(choose_group(&moduli, 5000, 2048, 8192)), Some(8192));
    // The preferred size outside the range is clamped into it.
    assert_eq!(bits(choose_group(&moduli, 2048, 100_000, 5000)), Some(4096));
    // Never below 2048 bits or above 8192, whatever the request.
    assert_eq!(bits(choose_group(&moduli, 1024, 1024, 1024)), None);
    assert_eq!(bits(choose_group(&moduli, 1024, 1024, 2048)), Some(2048));
    assert_eq!(bits(choose_group(&moduli, 9000, 9000, 10_000)), None);
    assert_eq!(bits(choose_group(&moduli, 4097, 6000, 8191)), None);
    assert_eq!(bits(choose_group(&moduli, 8192, 4096, 2048)), None);
    assert_eq!(bits(choose_group(&[], 2048, 2048, 8192)), None);
    // Deterministic: the first of equals. Random: each of them, depending on the draw.
    let first = choose_group(&moduli, 2048, 2048, 2048).unwrap();
    assert_eq!(first.g_encoded(), [0, 0, 0, 1, 2]);
    let mut generators = std::collections::BTreeSet::new();
    for draw in 0u8..8 {
        let g = choose_group_random(&moduli, 2048, 2048, 2048, &mut FixedRandom(vec![draw; 8]));
        generators.insert(g.unwrap().g_encoded().to_vec());
    }
    assert_eq!(generators.len(), 2);
    assert!(choose_group_random(&moduli, 1, 1, 1, &mut OsRandom).is_none());
}
