//! Cipher tests: table, round trips for every cipher × MAC, every single-bit corruption
//! refused, hostile lengths refused without panicking, and known answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::crypto::hex;
use crate::crypto::mac::{self, MACS};

/// Every negotiable combination: AEAD ciphers alone, the others with each MAC.
fn suites() -> Vec<(&'static CipherAlgorithm, Option<&'static MacAlgorithm>)> {
    let mut out = Vec::new();
    for c in CIPHERS {
        if c.aead {
            out.push((c, None));
        } else {
            out.extend(MACS.iter().map(|m| (c, Some(m))));
        }
    }
    out
}

fn label(c: &CipherAlgorithm, m: Option<&MacAlgorithm>) -> String {
    format!("{} + {}", c.name, m.map_or("-", |m| m.name))
}

/// Key material derived the same way for both ends of a test connection.
struct Material {
    key: Vec<u8>,
    iv: Vec<u8>,
    mac_key: Vec<u8>,
}

impl Material {
    fn new(c: &CipherAlgorithm, m: Option<&MacAlgorithm>) -> Self {
        let fill = |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        Material {
            key: fill(c.key_len, 0x5a),
            iv: fill(c.iv_len, 0xa5),
            mac_key: fill(m.map_or(0, |m| m.key_len), 0x3c),
        }
    }

    fn keys(
        &self,
        c: &CipherAlgorithm,
        m: Option<&'static MacAlgorithm>,
    ) -> (Box<dyn SealingKey>, Box<dyn OpeningKey>) {
        let mac = m.map(|m| (m, self.mac_key.as_slice()));
        (
            c.sealing_key(&self.key, &self.iv, mac),
            c.opening_key(&self.key, &self.iv, mac),
        )
    }
}

/// Frames `payload` as the protocol core would: minimum 4 bytes of padding, aligned as the
/// key asks.
fn frame(key: &dyn SealingKey, payload: &[u8]) -> Vec<u8> {
    let block = key.block_size();
    let covered = 1 + payload.len() + if key.length_excluded() { 0 } else { 4 };
    let mut padding = block - covered % block;
    if padding < 4 {
        padding += block;
    }
    let packet_length = 1 + payload.len() + padding;
    let mut p = Vec::with_capacity(4 + packet_length);
    p.extend_from_slice(&(packet_length as u32).to_be_bytes());
    p.push(padding as u8);
    p.extend_from_slice(payload);
    p.extend((0..padding).map(|i| i as u8 ^ 0x77));
    p
}

/// Seals one packet and returns the wire bytes (packet then tag).
fn seal(key: &mut dyn SealingKey, seq: u32, packet: &[u8]) -> Vec<u8> {
    let mut wire = packet.to_vec();
    let mut tag = vec![0u8; key.tag_len()];
    key.seal(seq, &mut wire, &mut tag);
    wire.extend_from_slice(&tag);
    wire
}

/// Receives one packet as the core would: learn the length from the prefix, then open.
fn receive(key: &mut dyn OpeningKey, seq: u32, wire: &[u8]) -> Result<Vec<u8>, IntegrityError> {
    let mut buf = wire.to_vec();
    let n = key.packet_length(seq, &mut buf[..key.length_prefix_len()]) as usize;
    let total = 4 + n;
    assert!(
        total + key.tag_len() == wire.len(),
        "length field decoded wrong"
    );
    let (packet, tag) = buf.split_at_mut(total);
    key.open(seq, packet, tag)?;
    Ok(packet.to_vec())
}

#[test]
fn table_order_lookup_and_sizes() {
    let names: Vec<_> = CIPHERS.iter().map(|c| c.name).collect();
    assert_eq!(
        names.join(" "),
        "chacha20-poly1305@openssh.com aes128-gcm@openssh.com aes256-gcm@openssh.com \
         aes128-ctr aes192-ctr aes256-ctr aes128-cbc aes192-cbc aes256-cbc 3des-cbc"
    );
    let chacha = find("chacha20-poly1305@openssh.com").unwrap();
    assert_eq!(
        (
            chacha.key_len,
            chacha.iv_len,
            chacha.block_size,
            chacha.aead
        ),
        (64, 0, 8, true)
    );
    let gcm = find("aes256-gcm@openssh.com").unwrap();
    assert_eq!(
        (gcm.key_len, gcm.iv_len, gcm.block_size, gcm.aead),
        (32, 12, 16, true)
    );
    let ctr = find("aes192-ctr").unwrap();
    assert_eq!(
        (ctr.key_len, ctr.iv_len, ctr.block_size, ctr.aead),
        (24, 16, 16, false)
    );
    for (c, m) in suites() {
        let (s, o) = Material::new(c, m).keys(c, m);
        assert_eq!(s.block_size(), c.block_size, "{}", label(c, m));
        assert_eq!(o.block_size(), c.block_size);
        let tag = if c.aead { 16 } else { m.unwrap().tag_len };
        assert_eq!((s.tag_len(), o.tag_len()), (tag, tag));
        let excluded = c.aead || m.unwrap().etm;
        assert_eq!(
            (s.length_excluded(), o.length_excluded()),
            (excluded, excluded)
        );
        let prefix = if excluded { 4 } else { c.block_size };
        assert_eq!(o.length_prefix_len(), prefix);
    }
}

#[test]
fn round_trip_every_suite_over_many_packets() {
    for (c, m) in suites() {
        let (mut s, mut o) = Material::new(c, m).keys(c, m);
        for (i, len) in [0usize, 1, 5, 15, 16, 17, 100, 1000, 32768]
            .into_iter()
            .enumerate()
        {
            let seq = 3 + i as u32;
            let payload: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            let packet = frame(&*s, &payload);
            let wire = seal(&mut *s, seq, &packet);
            assert_ne!(
                &wire[5..packet.len()],
                &packet[5..],
                "{} left plaintext",
                label(c, m)
            );
            let opened = receive(&mut *o, seq, &wire).unwrap_or_else(|_| {
                panic!("{}: packet {i} did not open", label(c, m));
            });
            assert_eq!(opened, packet, "{}", label(c, m));
        }
    }
}

#[test]
fn every_flipped_bit_is_refused() {
    for (c, m) in suites() {
        let material = Material::new(c, m);
        let (mut s, _) = material.keys(c, m);
        let packet = frame(&*s, b"hi");
        let wire = seal(&mut *s, 7, &packet);
        for bit in 0..wire.len() * 8 {
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (_, mut o) = material.keys(c, m);
            let result = open_as_received(&mut *o, 7, &bad, packet.len());
            assert!(
                result.is_err(),
                "{}: flipped bit {bit} accepted",
                label(c, m)
            );
        }
        // GCM ignores seq (its nonce is its own counter); the others bind it.
        if !c.name.contains("gcm") {
            let (_, mut o) = material.keys(c, m);
            let result = open_as_received(&mut *o, 8, &wire, packet.len());
            assert!(
                result.is_err(),
                "{}: wrong sequence number accepted",
                label(c, m)
            );
        }
        // A replay as the next packet is refused by every suite.
        let (_, mut o) = material.keys(c, m);
        assert!(open_as_received(&mut *o, 7, &wire, packet.len()).is_ok());
        let replay = open_as_received(&mut *o, 8, &wire, packet.len());
        assert!(replay.is_err(), "{}: replay accepted", label(c, m));
    }
}

/// Learns the (possibly corrupted) length as the core would, but opens the frame as received,
/// so that every corruption is put to open() itself.
fn open_as_received(
    key: &mut dyn OpeningKey,
    seq: u32,
    wire: &[u8],
    packet_len: usize,
) -> Result<(), IntegrityError> {
    let mut buf = wire.to_vec();
    let _ = key.packet_length(seq, &mut buf[..key.length_prefix_len()]);
    let (packet, tag) = buf.split_at_mut(packet_len);
    key.open(seq, packet, tag)
}

#[test]
fn hostile_sizes_are_refused_without_panicking() {
    let mut all: Vec<(Box<dyn OpeningKey>, String)> = suites()
        .into_iter()
        .map(|(c, m)| (Material::new(c, m).keys(c, m).1, label(c, m)))
        .collect();
    all.push((plaintext_opening_key(), "none".into()));
    for (o, name) in &mut all {
        for prefix_len in 0..o.length_prefix_len() {
            let mut prefix = vec![0xffu8; prefix_len];
            assert_eq!(o.packet_length(0, &mut prefix), 0, "{name}");
        }
        for len in 0..70usize {
            for tag_len in [0, 1, 15, 16, 20, 32, 64, 65] {
                let mut packet: Vec<u8> = (0..len).map(|i| i as u8).collect();
                if let Some(l) = packet.get_mut(..4) {
                    l.copy_from_slice(&(len as u32).wrapping_sub(4).to_be_bytes());
                }
                let tag = vec![0u8; tag_len];
                let opened = o.open(0, &mut packet, &tag).is_ok();
                // The null cipher rightly passes any well-formed frame through.
                assert!(!opened || name == "none", "{name}: {len}/{tag_len} opened");
            }
        }
    }
}

#[test]
fn plaintext_keys_pass_frames_through() {
    let mut s = plaintext_sealing_key();
    let mut o = plaintext_opening_key();
    assert_eq!(
        (s.block_size(), s.tag_len(), s.length_excluded()),
        (8, 0, false)
    );
    assert_eq!((o.length_prefix_len(), o.tag_len()), (4, 0));
    let packet = frame(&*s, b"SSH_MSG_KEXINIT");
    let wire = seal(&mut *s, 0, &packet);
    assert_eq!(wire, packet);
    assert_eq!(receive(&mut *o, 0, &wire).unwrap(), packet);
    // Misaligned or mis-sized frames are refused.
    let mut short = packet.clone();
    short.pop();
    assert!(o.open(0, &mut short, &[]).is_err());
    let mut lying = packet.clone();
    lying[3] ^= 8;
    assert!(o.open(0, &mut lying, &[]).is_err());
}

/// NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), blocks 1 and 2: without etm the whole packet is
/// encrypted, so a 32-byte "packet" is two plain CTR blocks.
#[test]
fn aes128_ctr_known_answer() {
    let c = find("aes128-ctr").unwrap();
    let m = mac::find("hmac-sha2-256").unwrap();
    let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
    let iv = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    let mut s = c.sealing_key(&key, &iv, Some((m, &[0u8; 32])));
    let mut data = hex("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51");
    let mut tag = [0u8; 32];
    s.seal(0, &mut data, &mut tag);
    assert_eq!(
        data,
        hex("874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff")
    );
}

/// libssh's torture_crypto.c vector for chacha20-poly1305@openssh.com (sequence number wider
/// than 32 bits, hence the internal entry points that take a u64).
#[test]
fn chacha20_poly1305_known_answer_from_libssh() {
    let key: Vec<u8> = (0u8..64).collect();
    let seq = 1234567890u64 * 98765431;
    let clear = hex(
        "b4fc5dc2498d2c294ac99ab01bf829ee856d8c04347c65f48997c57170419140
         1960e1f18f4d8c1751d6bc696ef22187186cefc4f4d9e61b94f7d8b2e924b9e7
         e619f5ec55809ac87d70a350f8031035499b5358d74cfc5f02d628eacc43ee5e
         2b8a7a66f700ee0918301b47a21669c46e443fbdec52cee541f2e0044f5a5558
         37ba458d1553f63191138c51ed0807db",
    );
    let expected = hex(
        "ac2e4c54f69775b43b8fb08eb00a8eb390210d7ab6d303f6bc6e3a3267e11365
         433b349dcb627e0a80b045870785498d235fac9c8ba8d50112fe52c699b4f2de
         127879ea1c5f45cdf7e4a066157fe3f4733be052ac2a0073d0d795a9b93ae050
         13f4dcfc2a64b5cf2988ef4c56103028bb59b82358ab01a2ab6bddee2043e1ec
         7ae1aa8b6019de3ad1d680497d5c81b896ad6232e52572e96396a1442591e1dc
         01c75ca9",
    );
    let mut packet = (clear.len() as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&clear);
    let plain = packet.clone();
    let k = chacha::new_key(&key, &[], None).unwrap();
    let mut tag = [0u8; 16];
    k.seal_at(seq, &mut packet, &mut tag);
    assert_eq!([packet.as_slice(), &tag].concat(), expected);
    k.open_at(seq, &mut packet, &tag).unwrap();
    assert_eq!(packet, plain);
    // libssh's own negative cases: corrupted length, data, tag.
    for at in [1, 100, expected.len() - 1] {
        let mut bad = expected.clone();
        bad[at] ^= 1;
        let (p, t) = bad.split_at_mut(4 + clear.len());
        assert!(k.open_at(seq, p, t).is_err(), "corruption at {at} accepted");
    }
}

/// The GCM nonce is the IV's 4-byte fixed field and 8-byte counter, the counter advancing by
/// one per packet and wrapping within its 64 bits; the AAD is the 4-byte length.
#[test]
fn gcm_nonce_and_aad_layout() {
    use aes_gcm::aead::array::Array;
    use aes_gcm::{AeadInOut, Aes128Gcm, KeyInit};

    let c = find("aes128-gcm@openssh.com").unwrap();
    let key = [0x42u8; 16];
    let iv = hex("01020304 fffffffffffffffe");
    let mut s = c.sealing_key(&key, &iv, None);
    let reference = Aes128Gcm::new_from_slice(&key).unwrap();
    let nonces = [
        "01020304fffffffffffffffe",
        "01020304ffffffffffffffff",
        "010203040000000000000000",
    ];
    for (i, nonce) in nonces.iter().enumerate() {
        let packet = frame(&*s, &[i as u8; 9]);
        let wire = seal(&mut *s, i as u32, &packet);
        let nonce: [u8; 12] = hex(nonce).try_into().unwrap();
        let mut body = packet[4..].to_vec();
        let tag = reference
            .encrypt_inout_detached(
                &Array::from(nonce),
                &packet[..4],
                body.as_mut_slice().into(),
            )
            .unwrap();
        assert_eq!(&wire[..4], &packet[..4], "length must stay in clear");
        assert_eq!(&wire[4..packet.len()], body.as_slice(), "packet {i}");
        assert_eq!(&wire[packet.len()..], tag.as_slice(), "packet {i}");
    }
}

#[test]
fn etm_leaves_length_in_clear_and_ctr_counter_runs_on() {
    let c = find("aes256-ctr").unwrap();
    let m = mac::find("hmac-sha2-512-etm@openssh.com").unwrap();
    let material = Material::new(c, Some(m));
    let (mut s, _) = material.keys(c, Some(m));
    let packet = frame(&*s, b"same payload");
    let first = seal(&mut *s, 0, &packet);
    let second = seal(&mut *s, 1, &packet);
    assert_eq!(&first[..4], &packet[..4]);
    // The keystream continues, so identical packets encrypt differently.
    assert_ne!(&first[4..packet.len()], &second[4..packet.len()]);
}

#[test]
#[should_panic(expected = "bad key material")]
fn short_key_is_a_caller_bug() {
    let c = find("aes256-ctr").unwrap();
    let m = mac::find("hmac-sha2-256").unwrap();
    let _ = c.sealing_key(&[0u8; 16], &[0u8; 16], Some((m, &[0u8; 32])));
}

#[test]
#[should_panic(expected = "bad key material")]
fn ctr_without_mac_is_a_caller_bug() {
    let _ = find("aes128-ctr")
        .unwrap()
        .opening_key(&[0u8; 16], &[0u8; 16], None);
}
