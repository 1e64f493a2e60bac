//! The SSH signature encoding (RFC 4253 §6.6, RFC 5656 §3.1.2, RFC 8332 §3): `string
//! algorithm, string signature`, and the inner encodings that differ per key kind.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::SigDigest;
use crate::wire::{Reader, WireResult, Writer};

/// Encodes a signature blob: `string algorithm, string signature`.
pub(crate) fn encode_blob(algorithm: &str, signature: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(algorithm).string(signature);
    w.into_bytes()
}

/// Splits a signature blob into its algorithm name and inner signature. Trailing bytes are
/// refused.
pub(crate) fn decode_blob(blob: &[u8]) -> WireResult<(&str, &[u8])> {
    let mut r = Reader::new(blob);
    let name = r.utf8("signature algorithm")?;
    let signature = r.string("signature")?;
    r.finish("signature blob")?;
    Ok((name, signature))
}

/// Encodes an ECDSA signature's inner blob: `mpint r, mpint s`.
pub(crate) fn encode_ecdsa(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.mpint_unsigned(r).mpint_unsigned(s);
    w.into_bytes()
}

/// Decodes an ECDSA signature's inner blob into `r` and `s`, each left-padded to
/// `scalar_len` bytes. Values longer than that are refused.
pub(crate) fn decode_ecdsa(inner: &[u8], scalar_len: usize) -> WireResult<(Vec<u8>, Vec<u8>)> {
    let mut rd = Reader::new(inner);
    let r = left_pad(rd.mpint_unsigned("ECDSA r")?, scalar_len);
    let s = left_pad(rd.mpint_unsigned("ECDSA s")?, scalar_len);
    rd.finish("ECDSA signature")?;
    match (r, s) {
        (Some(r), Some(s)) => Ok((r, s)),
        _ => Err(crate::wire::WireError {
            what: "ECDSA scalar",
        }),
    }
}

/// `value` left-padded with zeros to `len` bytes, or None if it is longer.
pub(crate) fn left_pad(value: &[u8], len: usize) -> Option<Vec<u8>> {
    let pad = len.checked_sub(value.len())?;
    let mut out = vec![0u8; pad];
    out.extend_from_slice(value);
    Some(out)
}

/// Hashes `data` as `digest` asks; empty for [`SigDigest::Intrinsic`].
pub(crate) fn digest(digest: SigDigest, data: &[u8]) -> Vec<u8> {
    match digest {
        SigDigest::Intrinsic => Vec::new(),
        SigDigest::Sha1 => Sha1::digest(data).to_vec(),
        SigDigest::Sha256 => Sha256::digest(data).to_vec(),
        SigDigest::Sha384 => Sha384::digest(data).to_vec(),
        SigDigest::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// Length of each of `r` and `s` in an ssh-dss signature (RFC 4253 §6.6: 160 bits each).
pub(crate) const DSA_SCALAR_LEN: usize = 20;

/// Encodes an ssh-dss signature's inner blob: `r` and `s`, each 20 bytes big-endian.
pub(crate) fn encode_dsa(r: &[u8], s: &[u8]) -> Option<Vec<u8>> {
    let mut out = left_pad(strip_zeros(r), DSA_SCALAR_LEN)?;
    out.extend(left_pad(strip_zeros(s), DSA_SCALAR_LEN)?);
    Some(out)
}

/// Splits an ssh-dss signature's inner blob into `r` and `s`; it must be exactly 40 bytes.
pub(crate) fn decode_dsa(inner: &[u8]) -> Option<(&[u8], &[u8])> {
    if inner.len() != 2 * DSA_SCALAR_LEN {
        return None;
    }
    Some(inner.split_at(DSA_SCALAR_LEN))
}

/// `value` without its leading zero bytes.
pub(crate) fn strip_zeros(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    value.get(start..).unwrap_or_default()
}

/// The PKCS#1 v1.5 signature scheme for `digest`, or None for an intrinsic one.
pub(crate) fn pkcs1v15(digest: SigDigest) -> Option<rsa::Pkcs1v15Sign> {
    match digest {
        SigDigest::Intrinsic => None,
        SigDigest::Sha1 => Some(rsa::Pkcs1v15Sign::new::<Sha1>()),
        SigDigest::Sha256 => Some(rsa::Pkcs1v15Sign::new::<Sha256>()),
        SigDigest::Sha384 => Some(rsa::Pkcs1v15Sign::new::<Sha384>()),
        SigDigest::Sha512 => Some(rsa::Pkcs1v15Sign::new::<Sha512>()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn blob_round_trip_and_trailing_data() {
        let blob = encode_blob("ssh-ed25519", &[1, 2, 3]);
        assert_eq!(
            decode_blob(&blob).unwrap(),
            ("ssh-ed25519", &[1u8, 2, 3][..])
        );
        let mut long = blob.clone();
        long.push(0);
        assert!(decode_blob(&long).is_err());
        assert!(decode_blob(&blob[..blob.len() - 1]).is_err());
    }

    #[test]
    fn ecdsa_scalars_padded_and_bounded() {
        let inner = encode_ecdsa(&[0x80, 1], &[0, 0, 5]);
        let (r, s) = decode_ecdsa(&inner, 4).unwrap();
        assert_eq!(r, [0, 0, 0x80, 1]);
        assert_eq!(s, [0, 0, 0, 5]);
        assert!(decode_ecdsa(&inner, 1).is_err());
        assert!(decode_ecdsa(&inner[..inner.len() - 1], 4).is_err());
    }

    #[test]
    fn dsa_scalars_fixed_width() {
        let inner = encode_dsa(&[0, 0, 7], &[9; 20]).unwrap();
        assert_eq!(inner.len(), 40);
        let (r, s) = decode_dsa(&inner).unwrap();
        assert_eq!(r[19], 7);
        assert_eq!(s, [9; 20]);
        assert!(encode_dsa(&[1; 21], &[1]).is_none());
        assert!(decode_dsa(&inner[1..]).is_none());
    }
}
