//! Compression: round trips over one long stream, compatibility with a plain zlib reader and
//! writer, hostile input refused, and the bomb limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};

use super::*;

/// Payloads like an SSH session's: tiny control messages, text, incompressible bytes, and
/// large channel data.
fn payloads() -> Vec<Vec<u8>> {
    let mut seed = 0x1234_5678u32;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect()
    };
    let text = |n: usize| -> Vec<u8> {
        b"SSH_MSG_CHANNEL_DATA the quick brown fox jumps over the lazy dog\n"
            .iter()
            .cycle()
            .take(n)
            .copied()
            .collect()
    };
    let mut out = vec![vec![94], vec![]];
    for n in [1usize, 5, 100, 1000, 32 * 1024, 64 * 1024] {
        out.push(text(n));
        out.push(noise(n));
    }
    out.push(vec![0; 200_000]);
    out.push(text(7));
    out
}

#[test]
fn table_order_and_lookup() {
    let names: Vec<_> = COMPRESSION.iter().map(|c| c.name).collect();
    assert_eq!(names, ["none", "zlib@openssh.com", "zlib"]);
    assert!(find("none").unwrap().identity);
    assert!(find("zlib@openssh.com").unwrap().delayed);
    let zlib = find("zlib").unwrap();
    assert!(!zlib.delayed && !zlib.identity);
    assert!(COMPRESSION.iter().all(|c| !c.legacy));
    assert!(find("zstd").is_none());
}

#[test]
fn round_trip_of_many_packets_on_one_stream() {
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let mut saved = 0usize;
    for (i, payload) in payloads().iter().chain(payloads().iter()).enumerate() {
        let mut wire = Vec::new();
        c.compress(payload, &mut wire);
        if i == 0 {
            assert_eq!(wire[0], 0x78, "zlib header first");
        }
        saved += payload.len().saturating_sub(wire.len());
        // Existing contents of the output buffer are kept; the payload is appended.
        let mut out = b"kept".to_vec();
        d.decompress(&wire, &mut out, 256 * 1024).unwrap();
        assert_eq!(&out[..4], b"kept");
        assert_eq!(&out[4..], payload.as_slice(), "packet {i}");
    }
    assert!(saved > 400_000, "compression hardly compressed ({saved})");
}

/// Our stream is ordinary zlib: a standard reader decodes the concatenation of every packet.
#[test]
fn a_plain_zlib_reader_decodes_our_stream() {
    let mut c = Compressor::new();
    let mut stream = Vec::new();
    let mut all = Vec::new();
    for payload in payloads() {
        c.compress(&payload, &mut stream);
        all.extend_from_slice(&payload);
    }
    let mut decoded = vec![0u8; all.len()];
    flate2::read::ZlibDecoder::new(stream.as_slice())
        .read_exact(&mut decoded)
        .unwrap();
    assert_eq!(decoded, all);
}

/// And the other way: a standard writer, flushing after each packet (zlib's sync flush, which
/// is what a peer's Z_PARTIAL_FLUSH or Z_SYNC_FLUSH leaves decodable), is read packet by packet.
#[test]
fn we_decode_a_plain_zlib_writer_packet_by_packet() {
    let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let mut d = Decompressor::new();
    for payload in payloads() {
        w.write_all(&payload).unwrap();
        w.flush().unwrap();
        let packet = std::mem::take(w.get_mut());
        let mut out = Vec::new();
        d.decompress(&packet, &mut out, 256 * 1024).unwrap();
        assert_eq!(out, payload);
    }
}

/// A packet of 1 MiB of zeros compresses to about 1 KiB; with a 256 KiB limit it is refused,
/// having cost at most the limit plus one chunk of output buffer.
#[test]
fn a_zip_bomb_is_refused_at_the_limit() {
    let limit = 256 * 1024;
    let mut c = Compressor::new();
    let mut bomb = Vec::new();
    c.compress(&vec![0u8; 1 << 20], &mut bomb);
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let mut d = Decompressor::new();
    let mut out = Vec::new();
    assert_eq!(
        d.decompress(&bomb, &mut out, limit),
        Err(CompressionError::TooLarge)
    );
    assert!(out.is_empty());
    assert!(out.capacity() <= limit + CHUNK + 1, "{}", out.capacity());
}

#[test]
fn the_limit_is_exact() {
    let payload = vec![7u8; 10_000];
    for (limit, ok) in [(10_000, true), (9_999, false), (0, false)] {
        let mut c = Compressor::new();
        let mut wire = Vec::new();
        c.compress(&payload, &mut wire);
        let mut out = Vec::new();
        let result = Decompressor::new().decompress(&wire, &mut out, limit);
        assert_eq!(result.is_ok(), ok, "limit {limit}");
    }
    // An empty payload inflates to nothing, within any limit.
    let mut c = Compressor::new();
    let mut wire = Vec::new();
    c.compress(&[], &mut wire);
    let mut out = Vec::new();
    Decompressor::new().decompress(&wire, &mut out, 0).unwrap();
    assert!(out.is_empty());
}

#[test]
fn corrupt_or_ended_streams_are_refused() {
    let mut c = Compressor::new();
    let mut wire = Vec::new();
    c.compress(b"hello, hello, hello", &mut wire);
    // Not zlib at all; a bad header; a flipped byte in the body.
    let mut bad_header = wire.clone();
    bad_header[0] ^= 0x10;
    let mut bad_body = wire.clone();
    bad_body[3] ^= 0xff;
    for bad in [vec![0xffu8; 64], bad_header, bad_body] {
        let mut out = Vec::new();
        let result = Decompressor::new().decompress(&bad, &mut out, 1 << 20);
        if let Ok(()) = result {
            assert_ne!(out, b"hello, hello, hello", "corruption went unnoticed");
        } else {
            assert_eq!(result, Err(CompressionError::Corrupt));
            assert!(out.is_empty());
        }
    }
    // A finished stream (SSH never finishes one).
    let finished =
        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default()).finish();
    let mut out = Vec::new();
    assert_eq!(
        Decompressor::new().decompress(&finished.unwrap(), &mut out, 1024),
        Err(CompressionError::Corrupt)
    );
    assert!(CompressionError::TooLarge.to_string().contains("limit"));
}
