//! OpenSSL's legacy PEM encryption (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: CIPHER,IV`): the key
//! is EVP_BytesToKey with MD5 and one round over the passphrase and the first 8 bytes of the
//! IV; the DER is encrypted in CBC mode with PKCS#7 padding. Weak (one MD5 round), but what
//! `ssh-keygen -m PEM` and `openssl genrsa -aes256` still write.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockCipherDecrypt, BlockModeDecrypt, BlockModeEncrypt};
use aes::cipher::{KeyInit, KeyIvInit};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::printable;
use crate::crypto::rng::SecureRandom;
use crate::error::{Error, ErrorKind, Result};

/// The DEK-Info ciphers, all in CBC mode: name, key length, block (and IV) length.
#[derive(Clone, Copy)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

impl Cipher {
    fn from_name(name: &str) -> Option<Cipher> {
        Some(match name.to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Cipher::Aes128,
            "AES-192-CBC" => Cipher::Aes192,
            "AES-256-CBC" => Cipher::Aes256,
            "DES-EDE3-CBC" => Cipher::DesEde3,
            "DES-CBC" => Cipher::Des,
            _ => return None,
        })
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 => 16,
            Cipher::Aes192 | Cipher::DesEde3 => 24,
            Cipher::Aes256 => 32,
            Cipher::Des => 8,
        }
    }

    fn block_len(self) -> usize {
        match self {
            Cipher::DesEde3 | Cipher::Des => 8,
            _ => 16,
        }
    }
}

/// OpenSSL's EVP_BytesToKey(MD5, count 1): D_i = MD5(D_{i-1} || passphrase || salt).
fn bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut previous = Zeroizing::new(Vec::new());
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&previous[..]);
        h.update(passphrase);
        h.update(salt);
        *previous = h.finalize().to_vec();
        out.extend_from_slice(&previous);
    }
    out.truncate(len);
    out
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Decrypts in place with `C` in CBC mode; the plaintext length, or None on bad padding.
fn cbc_decrypt<C: BlockCipherDecrypt + KeyInit>(
    key: &[u8],
    iv: &[u8],
    buf: &mut [u8],
) -> Option<usize> {
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    dec.decrypt_padded::<Pkcs7>(buf).ok().map(<[u8]>::len)
}

/// Decrypts the body of a `Proc-Type: 4,ENCRYPTED` block described by `dek_info`.
pub(crate) fn decrypt(
    dek_info: &str,
    body: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>> {
    let (name, iv_hex) = dek_info.split_once(',').unwrap_or((dek_info, ""));
    let cipher = Cipher::from_name(name.trim()).ok_or_else(|| {
        Error::key_format(format!(
            "encrypted PEM key uses unsupported cipher \"{}\" (AES-128/192/256-CBC, \
             DES-EDE3-CBC and DES-CBC are supported)",
            printable(name.trim())
        ))
    })?;
    let iv = decode_hex(iv_hex.trim())
        .filter(|iv| iv.len() == cipher.block_len())
        .ok_or_else(|| Error::key_format("encrypted PEM key has a malformed DEK-Info IV"))?;
    if body.is_empty() || body.len() % cipher.block_len() != 0 {
        return Err(Error::key_format(
            "encrypted PEM key is not a whole number of cipher blocks",
        ));
    }
    let Some(passphrase) = passphrase else {
        return Err(Error::new(
            ErrorKind::PasswordRequired,
            "private key is encrypted: a passphrase is required",
        ));
    };
    let key = bytes_to_key(
        passphrase,
        iv.get(..8).unwrap_or_default(),
        cipher.key_len(),
    );
    let mut buf = Zeroizing::new(body.to_vec());
    let len = match cipher {
        Cipher::Aes128 => cbc_decrypt::<aes::Aes128>(&key, &iv, &mut buf),
        Cipher::Aes192 => cbc_decrypt::<aes::Aes192>(&key, &iv, &mut buf),
        Cipher::Aes256 => cbc_decrypt::<aes::Aes256>(&key, &iv, &mut buf),
        Cipher::DesEde3 => cbc_decrypt::<des::TdesEde3>(&key, &iv, &mut buf),
        Cipher::Des => cbc_decrypt::<des::Des>(&key, &iv, &mut buf),
    }
    .ok_or_else(|| Error::new(ErrorKind::BadPassphrase, "wrong passphrase for private key"))?;
    buf.truncate(len);
    Ok(buf)
}

/// Encrypts `der` with AES-128-CBC as ssh-keygen -m PEM does; returns the DEK-Info value and
/// the ciphertext.
pub(crate) fn encrypt(
    der: &[u8],
    passphrase: &[u8],
    rng: &mut dyn SecureRandom,
) -> Result<(String, Vec<u8>)> {
    let mut iv = [0u8; 16];
    rng.fill(&mut iv);
    let key = bytes_to_key(passphrase, &iv[..8], 16);
    let enc = cbc::Encryptor::<aes::Aes128>::new_from_slices(&key, &iv)
        .map_err(|_| Error::new(ErrorKind::Internal, "AES-128-CBC key setup failed"))?;
    let mut buf = Zeroizing::new(der.to_vec());
    buf.resize(der.len() + 16, 0);
    let len = enc
        .encrypt_padded::<Pkcs7>(&mut buf, der.len())
        .map_err(|_| Error::new(ErrorKind::Internal, "AES-128-CBC padding failed"))?
        .len();
    let hex: String = iv.iter().map(|b| format!("{b:02X}")).collect();
    Ok((
        format!("AES-128-CBC,{hex}"),
        buf.get(..len).unwrap_or_default().to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn bytes_to_key_matches_openssl() {
        // `openssl enc -aes-256-cbc -md md5 -P -k pass -S 0102030405060708`: key then IV.
        let out = bytes_to_key(b"pass", &[1, 2, 3, 4, 5, 6, 7, 8], 48);
        let hex: String = out.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            hex,
            "86A00079BEB5DCA79870668BB0C56A7EB158E10AC9A1EC44CD2FD6CCF7796367\
             717E513CB7804E1856CD14DACE7097CF"
        );
    }

    #[test]
    fn round_trip_and_failures() {
        let mut rng = crate::crypto::rng::OsRandom;
        let (dek, ct) = encrypt(b"some DER bytes", b"secret", &mut rng).unwrap();
        let pt = decrypt(&dek, &ct, Some(b"secret")).unwrap();
        assert_eq!(&pt[..], b"some DER bytes");
        let kind = |r: Result<Zeroizing<Vec<u8>>>| r.unwrap_err().kind();
        assert_eq!(kind(decrypt(&dek, &ct, None)), ErrorKind::PasswordRequired);
        assert_eq!(
            kind(decrypt("AES-128-CBC,00", &ct, Some(b"x"))),
            ErrorKind::KeyFormat
        );
        assert_eq!(
            kind(decrypt("RC4,00", &ct, Some(b"x"))),
            ErrorKind::KeyFormat
        );
        assert_eq!(
            kind(decrypt(&dek, &ct[..5], Some(b"x"))),
            ErrorKind::KeyFormat
        );
        assert_eq!(kind(decrypt(&dek, &[], Some(b"x"))), ErrorKind::KeyFormat);
    }
}
