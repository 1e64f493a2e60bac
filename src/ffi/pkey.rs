//! `ssh_pkey`: private keys, public keys and OpenSSH certificates (Paramiko's PKey), and
//! known_hosts checks.
//!
//! A handle holds a public key, optionally its private key, and optionally an OpenSSH
//! certificate for that key. Functions that describe the key's identity on the wire (type
//! name, base64, blob, public string, public file) describe the certificate when there is
//! one; fingerprints, bits and comparisons always describe the plain key.

use std::ffi::{c_char, c_int};
use std::path::Path;
use std::sync::Arc;

use super::boundary::{
    borrow, free_handle, guard, opt_str_arg, share, slice_arg, str_arg, to_c_string,
    to_shared_handle, Castable, Opaque, Shared,
};
use crate::crypto::rng::OsRandom;
use crate::hostkeys;
use crate::keys::{Certificate, KeyType, PrivateKey, PublicKey};
use crate::Error;

/// `ssh_pkey_write_private` format: OpenSSH's own (`openssh-key-v1`), ssh-keygen's default;
/// encrypted with bcrypt-pbkdf and aes256-ctr when a passphrase is given. Every key type.
pub const SSH_PKEY_FORMAT_OPENSSH: c_int = 0;
/// `ssh_pkey_write_private` format: traditional PEM (PKCS#1 RSA, SEC1 EC, OpenSSL DSA), as
/// `ssh-keygen -m PEM`; encrypted with OpenSSL's legacy AES-128-CBC scheme when a passphrase
/// is given. Not for Ed25519.
pub const SSH_PKEY_FORMAT_PEM: c_int = 1;
/// `ssh_pkey_write_private` format: PKCS#8, as `ssh-keygen -m PKCS8` and `openssl genpkey`;
/// encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC) when a passphrase is given.
pub const SSH_PKEY_FORMAT_PKCS8: c_int = 2;

/// `ssh_pkey_cert_get_type`: a user certificate.
pub const SSH_PKEY_CERT_USER: c_int = 1;
/// `ssh_pkey_cert_get_type`: a host certificate.
pub const SSH_PKEY_CERT_HOST: c_int = 2;

/// `ssh_pkey_cert_get_option_count` and `ssh_pkey_cert_get_option`: critical options.
pub const SSH_PKEY_CERT_CRITICAL_OPTIONS: c_int = 0;
/// `ssh_pkey_cert_get_option_count` and `ssh_pkey_cert_get_option`: extensions.
pub const SSH_PKEY_CERT_EXTENSIONS: c_int = 1;

/// A key: a private key, a public key such as a server's host key, or an OpenSSH
/// certificate (with or without its private key). Each handle is a reference to a shared,
/// immutable key: `ssh_pkey_ref` makes another without copying the key.
///
/// Thread safety: immutable once made; safe to share between threads.
pub struct ssh_pkey {
    _private: [u8; 0],
    _marker: Opaque,
}

/// What an `ssh_pkey` holds.
pub struct Pkey {
    pub public: PublicKey,
    pub private: Option<PrivateKey>,
    pub certificate: Option<Certificate>,
}

impl Castable for ssh_pkey {
    type Ownership = Shared;
    type RustType = Pkey;
}

/// The private key behind a host key argument: NULL, or a key without its private part,
/// is an invalid argument.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
pub(crate) unsafe fn host_key_arg<'a>(key: *const ssh_pkey) -> crate::Result<&'a PrivateKey> {
    // SAFETY: forwarded contract.
    let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
    key.private
        .as_ref()
        .ok_or_else(|| crate::Error::invalid_arg("key has no private part: a host key must sign"))
}

/// Wraps a public key as a new handle.
pub(crate) fn public_key_handle(public: PublicKey) -> *mut ssh_pkey {
    to_shared_handle::<ssh_pkey>(Arc::new(Pkey {
        public,
        private: None,
        certificate: None,
    }))
}

fn private_key_handle(key: PrivateKey) -> *mut ssh_pkey {
    to_shared_handle::<ssh_pkey>(Arc::new(Pkey {
        public: key.public_key(),
        private: Some(key),
        certificate: None,
    }))
}

fn certificate_handle(cert: Certificate) -> *mut ssh_pkey {
    to_shared_handle::<ssh_pkey>(Arc::new(Pkey {
        public: cert.public_key().clone(),
        private: None,
        certificate: Some(cert),
    }))
}

mod cert;
mod info;
#[cfg(test)]
mod tests;

pub use cert::*;
pub use info::*;

/// Borrows a key handle.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
unsafe fn key_arg<'a>(key: *const ssh_pkey, name: &str) -> crate::Result<&'a Pkey> {
    // SAFETY: forwarded contract.
    unsafe { borrow::<ssh_pkey>(key, name) }
}

/// The certificate of a key handle, or an invalid-argument error.
fn cert_of(key: &Pkey) -> crate::Result<&Certificate> {
    key.certificate
        .as_ref()
        .ok_or_else(|| Error::invalid_arg("key is not a certificate"))
}

/// A string for C made from a borrowed key.
fn key_string(
    key: *const ssh_pkey,
    f: impl FnOnce(&Pkey) -> crate::Result<String>,
) -> crate::Result<*mut c_char> {
    // SAFETY: key is NULL or a live ssh_pkey per the callers' contracts.
    let key = unsafe { key_arg(key, "key") }?;
    Ok(to_c_string(&f(key)?))
}

/// Loads a private key file in any format OpenSSH or OpenSSL writes: OpenSSH
/// (`openssh-key-v1`, plain or encrypted with bcrypt-pbkdf), PEM (PKCS#1 RSA, SEC1 EC,
/// OpenSSL DSA; plain or with OpenSSL's `Proc-Type: 4,ENCRYPTED`) and PKCS#8 (plain or
/// PBES2-encrypted); Ed25519, ECDSA P-256/384/521, RSA and DSA keys. `passphrase` may be
/// NULL. Returns NULL on failure: `sekura_last_result()` then gives
/// `SSH_ERR_PASSWORD_REQUIRED`, `SSH_ERR_BAD_PASSPHRASE`, `SSH_ERR_KEY_FORMAT` or
/// `SSH_ERR_IO`.
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `path` and `passphrase` must be NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_from_file(
    path: *const c_char,
    passphrase: *const c_char,
) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: C strings per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let passphrase = unsafe { opt_str_arg(passphrase, "passphrase") }?;
        let key = PrivateKey::from_file(Path::new(path), passphrase.map(str::as_bytes))?;
        Ok(private_key_handle(key))
    })
}

/// Loads a private key from the `len` bytes of a key file's contents at `data`; formats
/// and errors as `ssh_pkey_from_file`. `passphrase` may be NULL.
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `data` must be valid for `len` bytes; `passphrase` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_from_memory(
    data: *const u8,
    len: usize,
    passphrase: *const c_char,
) -> *mut ssh_pkey {
    guard(|| {
        if data.is_null() {
            return Err(Error::invalid_arg("data is NULL"));
        }
        // SAFETY: per the contract above.
        let data = unsafe { slice_arg(data, len, "data") }?;
        // SAFETY: as above.
        let passphrase = unsafe { opt_str_arg(passphrase, "passphrase") }?;
        let key = PrivateKey::from_bytes(data, passphrase.map(str::as_bytes))?;
        Ok(private_key_handle(key))
    })
}

/// Parses public key text: a `.pub` line (`type base64 comment`), an authorized_keys line
/// (options before the type are ignored), an RFC 4716 block (`ssh-keygen -e`, PuTTYgen), or
/// a certificate line (`*-cert.pub`). The comment is kept. Returns NULL on failure
/// (`SSH_ERR_KEY_FORMAT`).
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `text` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_from_public_string(text: *const c_char) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let text = unsafe { str_arg(text, "text") }?;
        public_from_text(text)
    })
}

/// A handle for public key text: a certificate line or any form `PublicKey::from_text` takes.
fn public_from_text(text: &str) -> crate::Result<*mut ssh_pkey> {
    let first = text.split_whitespace().next().unwrap_or_default();
    if KeyType::from_certificate_name(first).is_some() {
        return Certificate::from_openssh(text.trim()).map(certificate_handle);
    }
    PublicKey::from_text(text).map(public_key_handle)
}

/// Loads a public key file: `.pub`, RFC 4716 or `*-cert.pub` (see
/// `ssh_pkey_from_public_string`). Returns NULL on failure (`SSH_ERR_IO`,
/// `SSH_ERR_KEY_FORMAT`).
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_from_public_file(path: *const c_char) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        public_file(path)
    })
}

fn public_file(path: &str) -> crate::Result<*mut ssh_pkey> {
    let data = std::fs::read(path)
        .map_err(|e| Error::new(crate::ErrorKind::Io, format!("cannot read {path}: {e}")))?;
    let text = String::from_utf8(data)
        .map_err(|_| Error::key_format(format!("{path}: not a public key file")))?;
    public_from_text(&text).map_err(|e| Error::new(e.kind(), format!("{path}: {}", e.message())))
}

/// Loads an OpenSSH certificate file (`*-cert.pub`), checking the CA's signature. Returns
/// NULL on failure (`SSH_ERR_IO`, `SSH_ERR_KEY_FORMAT`, also for a file holding a plain
/// key). Combine it with its private key with `ssh_pkey_with_certificate` to authenticate.
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_from_file(path: *const c_char) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        Certificate::from_file(Path::new(path)).map(certificate_handle)
    })
}

/// Parses an SSH wire blob (RFC 4253 §6.6): a public key, or an OpenSSH certificate.
/// Returns NULL on failure (`SSH_ERR_KEY_FORMAT`).
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `blob` must be valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_from_blob(blob: *const u8, len: usize) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let blob = unsafe { slice_arg(blob, len, "blob") }?;
        let name = crate::wire::Reader::new(blob)
            .utf8("key type")
            .unwrap_or_default();
        if KeyType::from_certificate_name(name).is_some() {
            Certificate::from_blob(blob).map(certificate_handle)
        } else {
            PublicKey::from_blob(blob).map(public_key_handle)
        }
    })
}

/// Generates a new private key. `type` is "ed25519", "ecdsa", "rsa" or "dsa" (or a key type
/// name such as "ssh-ed25519", "ecdsa-sha2-nistp384"); `bits` is 0 for the default or the
/// size: RSA 2048 to 8192 (default 2048), ECDSA 256, 384 or 521 (default 256), DSA 1024,
/// Ed25519 256. RSA takes seconds. Returns NULL on failure (`SSH_ERR_INVALID_ARG`).
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `type` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_generate(r#type: *const c_char, bits: c_int) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let name = unsafe { str_arg(r#type, "type") }?;
        let (key_type, bits) = generate_args(name, bits)?;
        Ok(private_key_handle(PrivateKey::generate(
            key_type,
            bits,
            &mut OsRandom,
        )?))
    })
}

/// The key type and size `ssh_pkey_generate` was asked for.
fn generate_args(name: &str, bits: c_int) -> crate::Result<(KeyType, Option<usize>)> {
    let bits = usize::try_from(bits)
        .map_err(|_| Error::invalid_arg(format!("bits is negative ({bits})")))?;
    let bits = (bits != 0).then_some(bits);
    let key_type = match (name, bits) {
        ("ecdsa", None | Some(256)) => KeyType::EcdsaP256,
        ("ecdsa", Some(384)) => KeyType::EcdsaP384,
        ("ecdsa", Some(521)) => KeyType::EcdsaP521,
        ("ecdsa", Some(other)) => {
            return Err(Error::invalid_arg(format!(
                "ECDSA keys have 256, 384 or 521 bits, not {other}"
            )))
        }
        ("ed25519", _) => KeyType::Ed25519,
        ("rsa", _) => KeyType::Rsa,
        ("dsa", _) => KeyType::Dsa,
        _ => KeyType::from_name(name).ok_or_else(|| {
            Error::invalid_arg(format!(
                "unknown key type \"{}\" (ed25519, ecdsa, rsa or dsa)",
                name.escape_debug()
            ))
        })?,
    };
    Ok((key_type, bits))
}

/// Another reference to the same key, not a copy (the key is immutable); each reference is
/// freed with `ssh_pkey_free`, and the key lives until the last is. NULL on a NULL `key`.
///
/// Returns a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_ref(key: *const ssh_pkey) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let shared = unsafe { share::<ssh_pkey>(key, "key") }?;
        Ok(to_shared_handle::<ssh_pkey>(shared))
    })
}

/// Discards a reference to a key: private, public or certificate.
///
/// Frees the handle; NULL is ignored.
/// Thread safety: not while another thread uses the handle.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_free(key: *mut ssh_pkey) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(key) };
        Ok(())
    })
}

/// Checks `key` for `host` and `port` against an OpenSSH known_hosts file (plain and hashed
/// entries, `[host]:port`, patterns, @revoked). Returns `SSH_KNOWNHOSTS_MATCH`,
/// `SSH_KNOWNHOSTS_NOT_FOUND` (also when the file does not exist),
/// `SSH_KNOWNHOSTS_MISMATCH` (the last error names the line), `SSH_KNOWNHOSTS_REVOKED`,
/// or a negative `ssh_result`.
///
/// Borrowed: the arguments are only used during the call.
/// Thread safety: any thread.
///
/// # Safety
/// `path` and `host` must be NUL-terminated strings; `key` a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_knownhosts_check(
    path: *const c_char,
    host: *const c_char,
    port: u16,
    key: *const ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let host = unsafe { str_arg(host, "host") }?;
        // SAFETY: as above.
        let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
        let status = hostkeys::check_known_hosts(Path::new(path), host, port, &key.public)?;
        let check = hostkeys::HostKeyCheck {
            status,
            file: Some(path.into()),
        };
        let name = hostkeys::lookup_name(host, port);
        Ok(super::hostkeys::check_code(&check, &name, &key.public))
    })
}

/// Appends a plain known_hosts line for `host` and `port` with `key`, creating the file with
/// mode 0600 if needed (what `StrictHostKeyChecking=accept-new` does).
///
/// Borrowed: the arguments are only used during the call.
/// Thread safety: any thread; the file is not locked, so add to one file from one thread at a
/// time.
///
/// # Safety
/// `path` and `host` must be NUL-terminated strings; `key` a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_knownhosts_add(
    path: *const c_char,
    host: *const c_char,
    port: u16,
    key: *const ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let host = unsafe { str_arg(host, "host") }?;
        // SAFETY: as above.
        let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
        hostkeys::add_known_host(Path::new(path), host, port, &key.public)
    })
}
