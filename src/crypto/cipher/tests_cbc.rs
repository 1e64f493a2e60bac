//! CBC specifics (the shared round-trip and bit-flip tests in tests.rs cover every CBC suite
//! too): NIST SP 800-38A known answers, the length in the first block, the chain running on
//! across packets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::crypto::hex;
use crate::crypto::mac;

/// NIST SP 800-38A F.2.1, F.2.3, F.2.5 (CBC-AES128/192/256.Encrypt), all four blocks.
const NIST_PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                          30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const NIST_IV: &str = "000102030405060708090a0b0c0d0e0f";
const NIST_CASES: [(&str, &str, &str); 3] = [
    (
        "aes128-cbc",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
         73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
    ),
    (
        "aes192-cbc",
        "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
        "4f021db243bc633d7178183a9fa071e8 b4d9ada9ad7dedf4e5e738763f69145a
         571b242012fb7ae07fa9baac3df102e0 08b0e27988598881d920a9e64f5615cd",
    ),
    (
        "aes256-cbc",
        "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
         39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
    ),
];

#[test]
fn cbc_rows_are_legacy_with_their_sizes() {
    assert!(find("blowfish-cbc").is_none());
    let legacy: Vec<_> = CIPHERS
        .iter()
        .filter(|c| c.legacy)
        .map(|c| c.name)
        .collect();
    assert_eq!(
        legacy,
        ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"]
    );
    for (name, key, iv, block) in [
        ("aes128-cbc", 16, 16, 16),
        ("aes192-cbc", 24, 16, 16),
        ("aes256-cbc", 32, 16, 16),
        ("3des-cbc", 24, 8, 8),
    ] {
        let c = find(name).unwrap();
        assert_eq!(
            (c.key_len, c.iv_len, c.block_size, c.aead),
            (key, iv, block, false)
        );
    }
}

/// Without etm the whole packet is encrypted, so a 64-byte "packet" is four plain CBC blocks.
#[test]
fn aes_cbc_known_answers_without_etm() {
    let m = mac::find("hmac-sha2-256").unwrap();
    for (name, key, cipher_text) in NIST_CASES {
        let c = find(name).unwrap();
        let mut s = c.sealing_key(&hex(key), &hex(NIST_IV), Some((m, &[0u8; 32])));
        let mut data = hex(NIST_PLAIN);
        let mut tag = [0u8; 32];
        s.seal(0, &mut data, &mut tag);
        assert_eq!(data, hex(cipher_text), "{name}");
    }
}

/// With etm the length stays in clear and the body is plain CBC; the receiver checks the tag,
/// then decrypts.
#[test]
fn aes_cbc_known_answers_with_etm() {
    let m = mac::find("hmac-sha2-256-etm@openssh.com").unwrap();
    for (name, key, cipher_text) in NIST_CASES {
        let c = find(name).unwrap();
        let mac_key = [9u8; 32];
        let mut s = c.sealing_key(&hex(key), &hex(NIST_IV), Some((m, &mac_key)));
        let mut o = c.opening_key(&hex(key), &hex(NIST_IV), Some((m, &mac_key)));
        let plain = [&64u32.to_be_bytes()[..], &hex(NIST_PLAIN)].concat();
        let mut packet = plain.clone();
        let mut tag = [0u8; 32];
        s.seal(3, &mut packet, &mut tag);
        assert_eq!(
            &packet[..4],
            &plain[..4],
            "{name}: length must stay in clear"
        );
        assert_eq!(&packet[4..], hex(cipher_text), "{name}");
        assert_eq!(o.packet_length(3, &mut packet[..4]), 64);
        o.open(3, &mut packet, &tag).unwrap();
        assert_eq!(packet, plain, "{name}");
    }
}

/// 3DES-EDE3-CBC, expected value from OpenSSL (through Python's `cryptography`).
#[test]
fn tdes_cbc_known_answer() {
    let c = find("3des-cbc").unwrap();
    let m = mac::find("hmac-sha1").unwrap();
    let key = hex("0123456789abcdef 23456789abcdef01 456789abcdef0123");
    let iv = hex("f69f2445df4f9b17");
    let mut s = c.sealing_key(&key, &iv, Some((m, &[0u8; 20])));
    let mut data = hex(NIST_PLAIN)[..32].to_vec();
    let mut tag = [0u8; 20];
    s.seal(0, &mut data, &mut tag);
    assert_eq!(
        data,
        hex("2079c3d53aa763e193b79e2569ab5262 516570481f25b50f73c0bda85c8e0da7")
    );
}

/// A packet that says so in its length field and padding, as the core frames it.
fn packet(block: usize, payload: &[u8]) -> Vec<u8> {
    let mut padding = block - (5 + payload.len()) % block;
    if padding < 4 {
        padding += block;
    }
    let mut p = ((1 + payload.len() + padding) as u32)
        .to_be_bytes()
        .to_vec();
    p.push(padding as u8);
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0xa5, padding));
    p
}

/// The receiver learns the length from the first block alone, and the rest of the packet
/// decrypts on from that block's chain state; the chain continues into the next packet (no
/// IV reset), so two identical packets encrypt differently.
#[test]
fn length_in_first_block_and_chain_across_packets() {
    for name in ["aes128-cbc", "3des-cbc"] {
        let c = find(name).unwrap();
        let m = mac::find("hmac-sha2-512").unwrap();
        let (key, iv, mac_key) = (vec![1u8; c.key_len], vec![2u8; c.iv_len], [3u8; 64]);
        let mut s = c.sealing_key(&key, &iv, Some((m, &mac_key)));
        let mut o = c.opening_key(&key, &iv, Some((m, &mac_key)));
        let plain = packet(c.block_size, b"the same payload, twice over");
        let mut wires = Vec::new();
        for seq in 0..2 {
            let mut wire = plain.clone();
            let mut tag = vec![0u8; 64];
            s.seal(seq, &mut wire, &mut tag);
            wires.push(wire.clone());
            let declared = o.packet_length(seq, &mut wire[..c.block_size]);
            assert_eq!(declared as usize, plain.len() - 4, "{name}");
            // The prefix is now plaintext; the rest still ciphertext.
            assert_eq!(&wire[..c.block_size], &plain[..c.block_size]);
            assert_ne!(&wire[c.block_size..], &plain[c.block_size..]);
            o.open(seq, &mut wire, &tag).unwrap();
            assert_eq!(wire, plain, "{name}");
        }
        assert_ne!(wires[0], wires[1], "{name}: chain reset between packets");
    }
}

/// A failed MAC-then-encrypt open leaves nothing readable behind.
#[test]
fn failed_open_wipes_the_packet() {
    let c = find("aes256-cbc").unwrap();
    let m = mac::find("hmac-sha2-256").unwrap();
    let (key, iv, mac_key) = ([4u8; 32], [5u8; 16], [6u8; 32]);
    let mut s = c.sealing_key(&key, &iv, Some((m, &mac_key)));
    let mut o = c.opening_key(&key, &iv, Some((m, &mac_key)));
    let mut wire = packet(16, &[0x42; 40]);
    let mut tag = [0u8; 32];
    s.seal(1, &mut wire, &mut tag);
    tag[0] ^= 1;
    o.packet_length(1, &mut wire[..16]);
    assert!(o.open(1, &mut wire, &tag).is_err());
    assert!(wire.iter().all(|&b| b == 0));
}
