//! `ssh_pkey` functions that use a key: write it, describe it, sign and verify.

use std::ffi::{c_char, c_int};
use std::path::Path;

use super::super::boundary::{
    guard, opt_str_arg, out_arg, slice_arg, str_arg, to_c_bytes, to_c_string,
};
use super::{key_arg, key_string, ssh_pkey, Pkey};
use super::{SSH_PKEY_FORMAT_OPENSSH, SSH_PKEY_FORMAT_PEM, SSH_PKEY_FORMAT_PKCS8};
use crate::crypto::rng::OsRandom;
use crate::keys::{PrivateKey, PrivateKeyFormat};
use crate::Error;

/// The private key of a handle, or an invalid-argument error.
pub(super) fn private_of(key: &Pkey) -> crate::Result<&PrivateKey> {
    key.private
        .as_ref()
        .ok_or_else(|| Error::invalid_arg("key has no private part"))
}

/// The format named by an `SSH_PKEY_FORMAT_*` constant.
fn format_arg(format: c_int) -> crate::Result<PrivateKeyFormat> {
    match format {
        SSH_PKEY_FORMAT_OPENSSH => Ok(PrivateKeyFormat::OpenSsh),
        SSH_PKEY_FORMAT_PEM => Ok(PrivateKeyFormat::Pem),
        SSH_PKEY_FORMAT_PKCS8 => Ok(PrivateKeyFormat::Pkcs8),
        other => Err(Error::invalid_arg(format!("unknown key format {other}"))),
    }
}

/// Writes the private key to `path` in `format` (`SSH_PKEY_FORMAT_OPENSSH`,
/// `SSH_PKEY_FORMAT_PEM` or `SSH_PKEY_FORMAT_PKCS8`), encrypted with `passphrase` unless it
/// is NULL. The file is created with mode 0600 from its first byte and replaced atomically
/// (a temporary file in the same directory, then rename; a symlink at `path` is replaced,
/// never followed). Fails with `SSH_ERR_INVALID_ARG` for a key without private part, an
/// unknown format, an empty passphrase or Ed25519 in PEM; `SSH_ERR_IO` if the file cannot
/// be written.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `path` NULL or a NUL-terminated string;
/// `passphrase` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_write_private(
    key: *const ssh_pkey,
    path: *const c_char,
    passphrase: *const c_char,
    format: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let path = Path::new(unsafe { str_arg(path, "path") }?);
        // SAFETY: as above.
        let passphrase = unsafe { opt_str_arg(passphrase, "passphrase") }?;
        let format = format_arg(format)?;
        let private = private_of(key)?;
        private.write_file(path, format, passphrase.map(str::as_bytes), &mut OsRandom)
    })
}

/// The private key file's contents in `format` (as `ssh_pkey_write_private` writes them),
/// encrypted with `passphrase` unless it is NULL.
///
/// On success `*out_text` is a new string holding the secret key; free it with
/// `sekura_string_free` (it is not wiped from memory then: prefer `ssh_pkey_write_private`).
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `passphrase` NULL or a NUL-terminated string;
/// `out_text` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_export_private(
    key: *const ssh_pkey,
    passphrase: *const c_char,
    format: c_int,
    out_text: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let passphrase = unsafe { opt_str_arg(passphrase, "passphrase") }?;
        // SAFETY: as above.
        let out = unsafe { out_arg(out_text, "out_text") }?;
        let format = format_arg(format)?;
        let private = private_of(key)?;
        let text = private.encode(format, passphrase.map(str::as_bytes), &mut OsRandom)?;
        out.write(to_c_string(&text));
        Ok(())
    })
}

/// Writes the public key (or the certificate) as one `.pub` line, `type base64 comment`, to
/// `path`, atomically, mode 0644.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_write_public(key: *const ssh_pkey, path: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let path = Path::new(unsafe { str_arg(path, "path") }?);
        match &key.certificate {
            Some(cert) => cert.write_file(path),
            None => key.public.write_file(path),
        }
    })
}

/// The key type name, e.g. "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "ssh-dss"; for
/// a certificate its type, e.g. "ssh-ed25519-cert-v01@openssh.com". NULL if `key` is NULL.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_type(key: *const ssh_pkey) -> *mut c_char {
    guard(|| {
        key_string(key, |k| {
            Ok(match &k.certificate {
                Some(cert) => cert.algorithm().to_owned(),
                None => k.public.key_type().to_owned(),
            })
        })
    })
}

/// The SHA-256 fingerprint as `ssh-keygen -l` prints it: "SHA256:" and unpadded base64 (of
/// the plain key, also for a certificate).
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_fingerprint(key: *const ssh_pkey) -> *mut c_char {
    guard(|| key_string(key, |k| Ok(k.public.fingerprint_sha256())))
}

/// The MD5 fingerprint as `ssh-keygen -l -E md5` prints it: "MD5:" and colon-separated hex
/// (Paramiko's `get_fingerprint`), of the plain key.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_fingerprint_md5(key: *const ssh_pkey) -> *mut c_char {
    guard(|| key_string(key, |k| Ok(k.public.fingerprint_md5())))
}

/// The blob in base64 (the certificate's for a certificate), as in known_hosts and `.pub`
/// files.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_base64(key: *const ssh_pkey) -> *mut c_char {
    guard(|| {
        key_string(key, |k| {
            Ok(match &k.certificate {
                Some(cert) => cert.base64(),
                None => k.public.base64(),
            })
        })
    })
}

/// The `.pub` line: `type base64 comment` (no comment if it is empty), the certificate's
/// line for a certificate.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_public_string(key: *const ssh_pkey) -> *mut c_char {
    guard(|| {
        key_string(key, |k| {
            Ok(match &k.certificate {
                Some(cert) => cert.to_pub_line(),
                None => k.public.to_pub_line(),
            })
        })
    })
}

/// The key's comment (from its `.pub` line or OpenSSH private key file); "" if none.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_comment(key: *const ssh_pkey) -> *mut c_char {
    guard(|| {
        key_string(key, |k| {
            Ok(match &k.certificate {
                Some(cert) if !cert.comment().is_empty() => cert.comment().to_owned(),
                _ => k.public.comment().to_owned(),
            })
        })
    })
}

/// The signature algorithms the key can make or verify, comma-separated, preferred first
/// ("rsa-sha2-512,rsa-sha2-256" for RSA; legacy ssh-rsa and ssh-dss only if
/// `include_legacy`). For a certificate, the certificate algorithm names.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_signature_algorithms(
    key: *const ssh_pkey,
    include_legacy: bool,
) -> *mut c_char {
    guard(|| {
        key_string(key, |k| {
            Ok(match &k.certificate {
                Some(cert) => cert
                    .signature_algorithms(include_legacy)
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(","),
                None => k.public.signature_algorithms(include_legacy).join(","),
            })
        })
    })
}

/// The SSH wire blob of the key (of the certificate for a certificate).
///
/// On success `*out_blob` is a new buffer of `*out_len` bytes; free it with
/// `sekura_bytes_free(blob, len)`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `out_blob` and `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_blob(
    key: *const ssh_pkey,
    out_blob: *mut *mut u8,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let out_blob = unsafe { out_arg(out_blob, "out_blob") }?;
        // SAFETY: as above.
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let blob = match &key.certificate {
            Some(cert) => cert.as_blob(),
            None => key.public.as_blob(),
        };
        out_blob.write(to_c_bytes(blob));
        out_len.write(blob.len());
        Ok(())
    })
}

/// The key size in bits as `ssh-keygen -l` prints it (RSA: the modulus; 256 for Ed25519),
/// or a negative `ssh_result`.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_bits(key: *const ssh_pkey) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        Ok(c_int::try_from(key.public.bits()).unwrap_or(c_int::MAX))
    })
}

/// Whether two handles hold the same public key (private parts, comments and certificates
/// aside, as Paramiko compares keys). False if either is NULL.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `a` and `b` must be NULL or live `ssh_pkey`s.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_equal(a: *const ssh_pkey, b: *const ssh_pkey) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let a = unsafe { key_arg(a, "a") }?;
        // SAFETY: as above.
        let b = unsafe { key_arg(b, "b") }?;
        Ok(a.public == b.public)
    })
}

/// Whether the handle holds a private key (can sign). False if `key` is NULL.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_has_private(key: *const ssh_pkey) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        Ok(key.private.is_some())
    })
}

/// Signs `data` with the private key and `algorithm` (one of
/// `ssh_pkey_get_signature_algorithms(key, true)` of the plain key, e.g. "rsa-sha2-256"),
/// producing an SSH signature blob (`string algorithm, string signature`). Fails with
/// `SSH_ERR_INVALID_ARG` if the key has no private part or cannot make `algorithm`.
///
/// On success `*out_sig` is a new buffer of `*out_sig_len` bytes; free it with
/// `sekura_bytes_free(sig, sig_len)`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `algorithm` NULL or a NUL-terminated string;
/// `data` valid for `data_len` bytes (NULL only with 0); `out_sig` and `out_sig_len` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_sign(
    key: *const ssh_pkey,
    algorithm: *const c_char,
    data: *const u8,
    data_len: usize,
    out_sig: *mut *mut u8,
    out_sig_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let algorithm = unsafe { str_arg(algorithm, "algorithm") }?;
        // SAFETY: as above.
        let data = unsafe { slice_arg(data, data_len, "data") }?;
        // SAFETY: as above.
        let out_sig = unsafe { out_arg(out_sig, "out_sig") }?;
        // SAFETY: as above.
        let out_len = unsafe { out_arg(out_sig_len, "out_sig_len") }?;
        let signature = private_of(key)?.sign(algorithm, data)?;
        out_sig.write(to_c_bytes(&signature));
        out_len.write(signature.len());
        Ok(())
    })
}

/// Verifies an SSH signature blob over `data` made with `algorithm` (for a certificate, a
/// plain or certificate algorithm name). Returns `SSH_OK`, or `SSH_ERR_HOSTKEY_REJECTED`
/// when the signature does not verify (the last error says why).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `algorithm` NULL or a NUL-terminated string;
/// `data` valid for `data_len` bytes and `sig` for `sig_len` bytes (NULL only with 0).
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_verify(
    key: *const ssh_pkey,
    algorithm: *const c_char,
    data: *const u8,
    data_len: usize,
    sig: *const u8,
    sig_len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let algorithm = unsafe { str_arg(algorithm, "algorithm") }?;
        // SAFETY: as above.
        let data = unsafe { slice_arg(data, data_len, "data") }?;
        // SAFETY: as above.
        let sig = unsafe { slice_arg(sig, sig_len, "sig") }?;
        match &key.certificate {
            Some(cert) if !key.public.signature_algorithms(true).contains(&algorithm) => {
                cert.verify(algorithm, data, sig)
            }
            _ => key.public.verify(algorithm, data, sig),
        }
    })
}
