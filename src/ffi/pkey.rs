//! `ssh_pkey`: private and public keys, and known_hosts checks.

use std::ffi::{c_char, c_int};
use std::path::Path;

use super::boundary::{
    borrow, ffi, free_handle, opt_str_arg, str_arg, to_c_string, to_code, to_handle, try_arg,
    Castable, Opaque,
};
use super::result::*;
use crate::hostkeys::{self, HostKeyStatus};
use crate::keys::{PrivateKey, PublicKey};

/// A key: a private key loaded from a file, or a public key such as a server's host key.
///
/// Thread safety: immutable once made; safe to share between threads.
pub struct ssh_pkey {
    _private: [u8; 0],
    _marker: Opaque,
}

/// What an `ssh_pkey` holds.
pub(crate) struct Pkey {
    pub public: PublicKey,
    pub private: Option<PrivateKey>,
}

impl Castable for ssh_pkey {
    type RustType = Pkey;
}

/// Wraps a public key as a new handle.
pub(crate) fn public_key_handle(public: PublicKey) -> *mut ssh_pkey {
    to_handle::<ssh_pkey>(Pkey {
        public,
        private: None,
    })
}

/// Loads a private key from an OpenSSH-format file (`ssh-keygen`'s default: Ed25519, ECDSA
/// or RSA), decrypting it with `passphrase` when it is encrypted. `passphrase` may be NULL.
/// Returns NULL on failure: `sekura_last_result()` then gives `SSH_ERR_PASSWORD_REQUIRED`,
/// `SSH_ERR_BAD_PASSPHRASE`, `SSH_ERR_KEY_FORMAT` or `SSH_ERR_IO`.
///
/// Returns a new handle; free it with `ssh_pkey_free`.
///
/// # Safety
/// `path` and `passphrase` must be NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_from_file(
    path: *const c_char,
    passphrase: *const c_char,
) -> *mut ssh_pkey {
    ffi! {
        let null = std::ptr::null_mut();
        // SAFETY: C strings per the contract above.
        let path = try_arg!(unsafe { str_arg(path, "path") }, null);
        // SAFETY: as above.
        let passphrase = try_arg!(unsafe { opt_str_arg(passphrase, "passphrase") }, null);
        let key = try_arg!(PrivateKey::from_file(Path::new(path), passphrase.map(str::as_bytes)), null);
        to_handle::<ssh_pkey>(Pkey { public: key.public_key(), private: Some(key) })
    }
}

fn key_string(key: *const ssh_pkey, f: impl FnOnce(&PublicKey) -> String) -> *mut c_char {
    // SAFETY: key is NULL or a live ssh_pkey per the callers' contracts.
    match unsafe { borrow::<ssh_pkey>(key, "key") } {
        Ok(k) => to_c_string(&f(&k.public)),
        Err(e) => {
            super::boundary::fail_with(&e);
            std::ptr::null_mut()
        }
    }
}

/// The key type name, e.g. "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa". NULL if `key`
/// is NULL.
///
/// Returns a new string; free it with `sekura_string_free`.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_type(key: *const ssh_pkey) -> *mut c_char {
    ffi! { key_string(key, |k| k.key_type().to_owned()) }
}

/// The SHA-256 fingerprint as `ssh-keygen -l` prints it: "SHA256:" and unpadded base64.
///
/// Returns a new string; free it with `sekura_string_free`.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_fingerprint(key: *const ssh_pkey) -> *mut c_char {
    ffi! { key_string(key, PublicKey::fingerprint_sha256) }
}

/// The public key blob in base64, as in known_hosts and .pub files.
///
/// Returns a new string; free it with `sekura_string_free`.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_get_base64(key: *const ssh_pkey) -> *mut c_char {
    ffi! { key_string(key, PublicKey::base64) }
}

/// Frees a key. NULL is ignored.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_free(key: *mut ssh_pkey) {
    // SAFETY: forwarded contract.
    ffi! { unsafe { free_handle(key) } }
}

/// Checks `key` for `host` and `port` against an OpenSSH known_hosts file (plain and hashed
/// entries, `[host]:port`, patterns, @revoked). Returns `SSH_KNOWNHOSTS_MATCH`,
/// `SSH_KNOWNHOSTS_NOT_FOUND` (also when the file does not exist),
/// `SSH_KNOWNHOSTS_MISMATCH` (the last error names the line), `SSH_KNOWNHOSTS_REVOKED`,
/// or a negative `ssh_result`.
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
    ffi! {
        // SAFETY: per the contract above.
        let (path, host, key) = match unsafe { (str_arg(path, "path"), str_arg(host, "host"), borrow::<ssh_pkey>(key, "key")) } {
            (Ok(p), Ok(h), Ok(k)) => (p, h, k),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return super::boundary::fail_with(&e),
        };
        match hostkeys::check_known_hosts(Path::new(path), host, port, &key.public) {
            Ok(HostKeyStatus::Match) => SSH_KNOWNHOSTS_MATCH,
            Ok(HostKeyStatus::NotFound) => {
                super::boundary::fail(SSH_ERR_HOSTKEY_REJECTED, &format!("no {} key for {host} in {path}", key.public.key_type()));
                SSH_KNOWNHOSTS_NOT_FOUND
            }
            Ok(HostKeyStatus::Mismatch { line }) => {
                super::boundary::fail(SSH_ERR_HOSTKEY_REJECTED, &format!("host key for {host}:{port} does not match {path} line {line}"));
                SSH_KNOWNHOSTS_MISMATCH
            }
            Ok(HostKeyStatus::Revoked { line }) => {
                super::boundary::fail(SSH_ERR_HOSTKEY_REJECTED, &format!("host key for {host}:{port} is revoked ({path} line {line})"));
                SSH_KNOWNHOSTS_REVOKED
            }
            Err(e) => super::boundary::fail_with(&e),
        }
    }
}

/// Appends a plain known_hosts line for `host` and `port` with `key`, creating the file with
/// mode 0600 if needed (what `StrictHostKeyChecking=accept-new` does).
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
    ffi! {
        // SAFETY: per the contract above.
        let (path, host, key) = match unsafe { (str_arg(path, "path"), str_arg(host, "host"), borrow::<ssh_pkey>(key, "key")) } {
            (Ok(p), Ok(h), Ok(k)) => (p, h, k),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return super::boundary::fail_with(&e),
        };
        to_code(hostkeys::add_known_host(Path::new(path), host, port, &key.public))
    }
}
