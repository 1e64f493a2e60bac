//! A workaround for ssh-key 0.7.0-rc.12, which refuses an ECDSA P-256 private scalar shorter
//! than 32 bytes. An mpint drops leading zero bytes, so ssh-keygen writes such a scalar for
//! about one key in 256; OpenSSH loads it. For an unencrypted `openssh-key-v1` key the scalar
//! is re-encoded at the curve's full width (leading zeros, which the crate accepts) before
//! the crate parses it. An encrypted key's scalar is only visible after decryption, inside
//! the crate, so it is not covered.

use base64ct::{Base64, Encoding};

use crate::wire::{Reader, Writer};

const MAGIC: &[u8] = b"openssh-key-v1\0";
/// The scalar width of P-256, the only curve whose scalar the crate requires at full width.
const P256_SCALAR: usize = 32;

/// The key re-armored with its P-256 scalar padded to 32 bytes, or `None` when it needs no
/// change (or is not an unencrypted P-256 key the workaround understands: the crate then
/// parses it as it is and reports what is wrong).
pub(super) fn pad_p256_scalar(armored: &str) -> Option<String> {
    let body: String = armored
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let blob = Base64::decode_vec(&body).ok()?;
    let mut r = Reader::new(&blob);
    if r.bytes(MAGIC.len(), "magic").ok()? != MAGIC {
        return None;
    }
    let (cipher, kdf, kdf_options) = (
        r.string("cipher").ok()?,
        r.string("kdf").ok()?,
        r.string("kdf options").ok()?,
    );
    if cipher != b"none" || r.u32("key count").ok()? != 1 {
        return None;
    }
    let public = r.string("public key").ok()?;
    let private = r.string("private section").ok()?;
    r.finish("key file").ok()?;

    let mut p = Reader::new(private);
    let (check1, check2) = (p.u32("check").ok()?, p.u32("check").ok()?);
    let (algorithm, curve, point) = (
        p.string("key type").ok()?,
        p.string("curve").ok()?,
        p.string("point").ok()?,
    );
    if algorithm != b"ecdsa-sha2-nistp256" {
        return None;
    }
    let scalar = p.string("scalar").ok()?;
    if scalar.len() >= P256_SCALAR || scalar.first().is_some_and(|b| *b >= 0x80) {
        return None;
    }
    let comment = p.string("comment").ok()?;
    let mut padded = vec![0u8; P256_SCALAR - scalar.len()];
    padded.extend_from_slice(scalar);

    let mut section = Writer::new();
    section
        .u32(check1)
        .u32(check2)
        .string(algorithm)
        .string(curve)
        .string(point)
        .string(&padded)
        .string(comment);
    // Padding to the cipher's block size ("none": 8), bytes 1, 2, 3, ...
    let mut section = section.into_bytes();
    let mut pad = 1u8;
    while section.len() % 8 != 0 {
        section.push(pad);
        pad += 1;
    }
    let mut file = Writer::new();
    file.raw(MAGIC)
        .string(cipher)
        .string(kdf)
        .string(kdf_options)
        .u32(1)
        .string(public)
        .string(&section);
    let encoded = Base64::encode_string(file.as_bytes());
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line).ok()?);
        out.push('\n');
    }
    out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Some(out)
}
