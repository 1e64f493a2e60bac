//! `ssh_hostkeys`: OpenSSH known_hosts files in memory (Paramiko's HostKeys).

use std::ffi::{c_char, c_int};
use std::path::Path;

use parking_lot::Mutex;

use super::boundary::{
    borrow, fail, free_handle, guard, out_arg, str_arg, to_c_string, to_handle, Boxed, Castable,
    Opaque,
};
use super::pkey::{public_key_handle, ssh_pkey};
use super::result::*;
use crate::hostkeys::{self, HostKeyCheck, HostKeyStatus, HostKeys};
use crate::keys::PublicKey;
use crate::{Error, ErrorKind};

/// Known hosts loaded from OpenSSH known_hosts files: a user file that can be changed and
/// saved, and system files that are only consulted.
///
/// Thread safety: safe to use from several threads at once (calls take turns).
pub struct ssh_hostkeys {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_hostkeys {
    type Ownership = Boxed;
    type RustType = Mutex<HostKeys>;
}

/// A count as a non-negative `int`.
fn count_code(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// Creates an empty set of known hosts. Load files into it with `ssh_hostkeys_load` and
/// `ssh_hostkeys_load_system`.
///
/// Returns a new handle; free it with `ssh_hostkeys_free`.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn ssh_hostkeys_new() -> *mut ssh_hostkeys {
    guard(|| Ok(to_handle::<ssh_hostkeys>(Mutex::new(HostKeys::new()))))
}

/// Loads a user known_hosts file (such as `~/.ssh/known_hosts`; Paramiko's
/// `load_host_keys`): its entries can be removed, and `ssh_hostkeys_save` writes them back
/// with every other line (comments, blank lines, lines it cannot parse) exactly as read. A
/// file that does not exist loads nothing and is not an error. Loading several files adds
/// their lines in order. Returns `SSH_OK`, or `SSH_ERR_IO` (unreadable, or over 64 MiB).
///
/// Borrowed: `hk` and `path` are only used during the call.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_load(hk: *mut ssh_hostkeys, path: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        known.lock().load(Path::new(path))
    })
}

/// Loads a system known_hosts file (such as `/etc/ssh/ssh_known_hosts`; Paramiko's
/// `load_system_host_keys`): its entries are consulted by lookups and checks, but never
/// removed and never written by `ssh_hostkeys_save`. A missing file loads nothing. Returns
/// `SSH_OK` or `SSH_ERR_IO`.
///
/// Borrowed: `hk` and `path` are only used during the call.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_load_system(
    hk: *mut ssh_hostkeys,
    path: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        known.lock().load_system(Path::new(path))
    })
}

/// Checks the server key `key` for `host` on `port` (22 or 0: the bare name, as OpenSSH
/// lists it; other ports `[host]:port`) against every file loaded and every entry added.
/// Returns `SSH_KNOWNHOSTS_MATCH`; `SSH_KNOWNHOSTS_NOT_FOUND` (no entry for this host with a
/// key of this type); `SSH_KNOWNHOSTS_MISMATCH` (an entry has another key of this type:
/// possibly an attack; the last error names the file and line); `SSH_KNOWNHOSTS_REVOKED` (the
/// key is marked `@revoked` for this host; the last error names the line); or a negative
/// `ssh_result`. Only `SSH_KNOWNHOSTS_MATCH` means the key is trusted.
///
/// Borrowed: the arguments are only used during the call.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `host` NULL or a NUL-terminated string;
/// `key` NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_check(
    hk: *mut ssh_hostkeys,
    host: *const c_char,
    port: u16,
    key: *const ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        // SAFETY: per the contract above.
        let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        let check = known.lock().check_detailed(host, port, &key.public);
        let name = hostkeys::lookup_name(host, port);
        Ok(check_code(&check, &name, &key.public))
    })
}

/// The `SSH_KNOWNHOSTS_*` code of a check, recording the refusal for every verdict but a
/// match.
pub(super) fn check_code(check: &HostKeyCheck, name: &str, key: &PublicKey) -> c_int {
    if let Some(why) = check.refusal(name, key) {
        fail(SSH_ERR_HOSTKEY_REJECTED, &why);
    }
    match check.status {
        HostKeyStatus::Match => SSH_KNOWNHOSTS_MATCH,
        HostKeyStatus::NotFound => SSH_KNOWNHOSTS_NOT_FOUND,
        HostKeyStatus::Mismatch { .. } => SSH_KNOWNHOSTS_MISMATCH,
        HostKeyStatus::Revoked { .. } => SSH_KNOWNHOSTS_REVOKED,
    }
}

/// Adds `key` for `host` on `port` as a new user entry (written by the next
/// `ssh_hostkeys_save`), with the host name hashed (`|1|salt|hash`, a fresh random salt, as
/// OpenSSH's `HashKnownHosts yes`) when `hashed` is true, plain otherwise. A user entry of the
/// same key type for exactly this host is replaced (Paramiko's `add`); adding an entry that
/// is already there changes nothing. `host` must be a plain name or address (no spaces,
/// commas, wildcards, or leading `!@|#[`): otherwise `SSH_ERR_INVALID_ARG`.
///
/// Borrowed: the arguments are only used during the call; the key is copied.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `host` NULL or a NUL-terminated string;
/// `key` NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_add(
    hk: *mut ssh_hostkeys,
    host: *const c_char,
    port: u16,
    key: *const ssh_pkey,
    hashed: bool,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        // SAFETY: per the contract above.
        let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        known.lock().add(host, port, &key.public, hashed)
    })
}

/// Removes the user entries for `host` on `port` as `ssh-keygen -R` does: every line without
/// marker whose host field matches, plain or hashed, comma lists and matching wildcard
/// patterns included (the whole line goes). `@cert-authority` and `@revoked` lines stay, and
/// system files are never changed. Returns the number of lines removed (0 or more), or a
/// negative `ssh_result`.
///
/// Borrowed: the arguments are only used during the call.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `host` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_remove(
    hk: *mut ssh_hostkeys,
    host: *const c_char,
    port: u16,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        Ok(count_code(known.lock().remove(host, port)))
    })
}

/// Writes the user entries to `path`: the lines of the user files loaded, byte for byte as
/// read (an unchanged file is written back identical), minus removed entries, then the added
/// ones. System files' entries are never written. The file is replaced atomically (a
/// temporary file in the same directory, then a rename; a symbolic link is followed), keeps
/// its mode, and is created with mode 0600 if new. Returns `SSH_OK` or `SSH_ERR_IO`.
///
/// Borrowed: the arguments are only used during the call.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_save(hk: *mut ssh_hostkeys, path: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        known.lock().save(Path::new(path))
    })
}

/// The number of entries holding a key Sekura can use (plain, `@cert-authority` and
/// `@revoked`), from every file loaded and added since; or a negative `ssh_result`.
///
/// Borrowed: `hk` is only used during the call.
/// Thread safety: any thread; calls on one handle take turns.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_count(hk: *const ssh_hostkeys) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        Ok(count_code(known.lock().len()))
    })
}

/// Writes the `index`-th key (from 0) of `list` to `out_key`, or fails with `SSH_ERR_EOF`.
fn nth_key(
    list: &[PublicKey],
    index: usize,
    name: &str,
    what: &str,
    out_key: *mut *mut ssh_pkey,
) -> crate::Result<()> {
    // SAFETY: out_key is NULL or writable per the callers' contracts.
    let out = unsafe { out_arg(out_key, "out_key") }?;
    let key = list.get(index).ok_or_else(|| {
        let message = format!(
            "{name} has {} {what}; there is no index {index}",
            list.len()
        );
        Error::new(ErrorKind::Eof, message)
    })?;
    out.write(public_key_handle(key.clone()));
    Ok(())
}

/// The `index`-th key (from 0) known for `host` on `port` (Paramiko's `lookup`), in file
/// order, without repeats; keys marked `@revoked` for the host and `@cert-authority` keys are
/// left out. Iterate from index 0 until the call returns `SSH_ERR_EOF` (no key at this index,
/// `*out_key` untouched): `for (i = 0; ssh_hostkeys_lookup(hk, h, p, i, &k) == SSH_OK; i++)`.
/// A host may have several keys, of one type or several (`ssh_pkey_get_type`).
///
/// On success `*out_key` is a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread; calls take turns, but a change made on another thread between two
/// calls shifts the indexes.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `host` NULL or a NUL-terminated string;
/// `out_key` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_lookup(
    hk: *mut ssh_hostkeys,
    host: *const c_char,
    port: u16,
    index: usize,
    out_key: *mut *mut ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        let name = hostkeys::lookup_name(host, port);
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        let list = known.lock().lookup(host, port);
        nth_key(&list, index, &name, "known keys", out_key)
    })
}

/// The `index`-th certificate authority key (from 0) trusted for host certificates of
/// `host` on `port` (`@cert-authority` lines that match, minus keys `@revoked` for it);
/// `SSH_ERR_EOF` past the last one, as `ssh_hostkeys_lookup`.
///
/// On success `*out_key` is a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread; calls take turns, but a change made on another thread between two
/// calls shifts the indexes.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`; `host` NULL or a NUL-terminated string;
/// `out_key` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_lookup_ca(
    hk: *mut ssh_hostkeys,
    host: *const c_char,
    port: u16,
    index: usize,
    out_key: *mut *mut ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        let name = hostkeys::lookup_name(host, port);
        // SAFETY: as above.
        let known = unsafe { borrow::<ssh_hostkeys>(hk, "hostkeys") }?;
        let list = known.lock().cert_authorities_for(host, port);
        nth_key(&list, index, &name, "certificate authorities", out_key)
    })
}

/// OpenSSH's hashed form of a host name, `|1|salt|hash` (HMAC-SHA1 keyed with a fresh random
/// 20-byte salt), as `HashKnownHosts` writes it. `host` is hashed as given: pass
/// `[host]:port` for ports other than 22, as known_hosts lists them. Returns `SSH_OK`.
///
/// On success `*out` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `host` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_hash_host(
    host: *const c_char,
    out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out, "out") }?;
        out.write(to_c_string(&hostkeys::hash_host_random(host)));
        Ok(())
    })
}

/// Discards the known hosts; nothing is saved.
///
/// Frees the handle; NULL is ignored.
/// Thread safety: not while another thread uses the handle.
///
/// # Safety
/// `hk` must be NULL or a live `ssh_hostkeys`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_hostkeys_free(hk: *mut ssh_hostkeys) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(hk) };
        Ok(())
    })
}
