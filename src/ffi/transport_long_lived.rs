//! `ssh_transport` calls for long-lived connections: algorithm lists, key renewal,
//! keepalive, global requests, IGNORE, banner, user name, peer address, disconnect.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use super::boundary::{borrow, guard, opt_str_arg, out_arg, slice_arg, str_arg, to_c_string};
use super::result::*;
use super::transport::ssh_transport;
use crate::proto::AlgorithmKind;
use crate::transport::Transport;
use crate::{Error, ErrorKind};

pub(super) fn algorithm_kind(kind: c_int) -> crate::Result<AlgorithmKind> {
    match kind {
        SSH_ALG_KEX => Ok(AlgorithmKind::Kex),
        SSH_ALG_HOSTKEY => Ok(AlgorithmKind::HostKey),
        SSH_ALG_CIPHER => Ok(AlgorithmKind::Cipher),
        SSH_ALG_MAC => Ok(AlgorithmKind::Mac),
        SSH_ALG_COMPRESSION => Ok(AlgorithmKind::Compression),
        other => Err(Error::invalid_arg(format!(
            "unknown algorithm kind {other}"
        ))),
    }
}

/// The ordered algorithm list of `kind` (`SSH_ALG_*`) as a comma-separated string: what
/// this transport offers, most preferred first (Paramiko's SecurityOptions).
///
/// On success `*out_names` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `out_names` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_preferred(
    t: *const ssh_transport,
    kind: c_int,
    out_names: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_names, "out_names") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        out.write(to_c_string(&t.preferred(algorithm_kind(kind)?).join(",")));
        Ok(())
    })
}

/// Every algorithm Sekura implements for `kind`, legacy ones included, as a comma-separated
/// list (what `ssh_transport_set_preferred` accepts).
///
/// On success `*out_names` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `out_names` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_supported(
    kind: c_int,
    out_names: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_names, "out_names") }?;
        let kind = algorithm_kind(kind)?;
        out.write(to_c_string(&kind.supported_names().join(",")));
        Ok(())
    })
}

/// Offers compression (zlib@openssh.com, then zlib) when `enabled`, or only "none". Takes
/// effect at the next key exchange, as `ssh_transport_set_preferred` does.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_use_compression(
    t: *mut ssh_transport,
    enabled: bool,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.use_compression(enabled)
    })
}

/// Forces a key re-exchange and returns once the new keys are in use.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; a call made while an exchange is under way returns when that one
/// completes.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_renegotiate_keys(t: *mut ssh_transport) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.renegotiate_keys()
    })
}

/// Renews keys after `bytes` of traffic in both directions (0: the default, 1 GiB; always
/// capped by the cipher's safe limit) and after `seconds` (0: no time limit).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; a running transport applies them at once.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_rekey_limits(
    t: *mut ssh_transport,
    bytes: u64,
    seconds: u32,
) -> c_int {
    guard(|| {
        let bytes = if bytes == 0 {
            crate::proto::DEFAULT_REKEY_BYTES
        } else {
            bytes
        };
        let interval = (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)));
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_rekey_limits(bytes, interval)
    })
}

/// Sends keepalive@openssh.com after `seconds` without traffic from the server; after
/// `max_missed` unanswered keepalives the connection fails with `SSH_ERR_TIMEOUT`
/// (OpenSSH's ServerAliveInterval and ServerAliveCountMax). 0 seconds turns it off.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; a running transport applies it at once.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_keepalive(
    t: *mut ssh_transport,
    seconds: u32,
    max_missed: u32,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_keepalive(Duration::from_secs(u64::from(seconds)), max_missed)
    })
}

/// Sets the window granted to each channel opened from now on (by either side) and the
/// largest data packet accepted on it, in bytes (packet clamped to 1-128 KiB, window to at
/// least one packet). Defaults: a 2 MiB window, 32 KiB packets.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; channels already open keep their limits.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_channel_limits(
    t: *mut ssh_transport,
    window: u32,
    max_packet: u32,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_channel_limits(window, max_packet)
    })
}

/// Sends an IGNORE message carrying `len` random bytes (cover traffic; no answer comes).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_send_ignore(t: *mut ssh_transport, len: usize) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.send_ignore(len)
    })
}

/// Sends the global request `name` with request-specific `data`. With `want_reply` waits
/// for the answer: `SSH_OK` with the reply's data in `*out_reply` (may be empty), or
/// `SSH_ERR_REFUSED`. Without it returns at once and leaves the outputs untouched.
/// `out_reply` and `out_reply_len` may be NULL when the reply data is not wanted.
///
/// On success with a reply, `*out_reply` is a new buffer; free it with `sekura_bytes_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `name` NUL-terminated; `data` readable for
/// `len` bytes; the out pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_global_request(
    t: *mut ssh_transport,
    name: *const c_char,
    data: *const u8,
    len: usize,
    want_reply: bool,
    out_reply: *mut *mut u8,
    out_reply_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: as above.
        let data = unsafe { slice_arg(data, len, "data") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        if let Some(reply) = t.global_request(name, data, want_reply)? {
            if !out_reply.is_null() && !out_reply_len.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe {
                    *out_reply_len = reply.len();
                    *out_reply = super::boundary::to_c_bytes(&reply);
                }
            }
        }
        Ok(())
    })
}

/// Writes the string `get` finds into `*out`; none is `SSH_ERR_STATE`, "no `what`".
fn string_out(
    t: *const ssh_transport,
    out: *mut *mut c_char,
    what: &str,
    get: impl FnOnce(&Transport) -> Option<String>,
) -> crate::Result<()> {
    // SAFETY: out is NULL or writable per the callers' contracts.
    let out = unsafe { out_arg(out, "out") }?;
    // SAFETY: t is NULL or a live handle per the callers' contracts.
    let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
    let s = get(t).ok_or_else(|| Error::new(ErrorKind::State, format!("no {what}")))?;
    out.write(to_c_string(&s));
    Ok(())
}

/// The banner the server sent during authentication. `SSH_ERR_STATE` if it sent none.
///
/// On success `*out_banner` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `out_banner` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_banner(
    t: *const ssh_transport,
    out_banner: *mut *mut c_char,
) -> c_int {
    guard(|| string_out(t, out_banner, "banner", Transport::banner))
}

/// The user name of the last authentication attempt.
///
/// On success `*out_username` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `out_username` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_username(
    t: *const ssh_transport,
    out_username: *mut *mut c_char,
) -> c_int {
    guard(|| string_out(t, out_username, "user name", Transport::username))
}

/// The server's address and port (Paramiko's getpeername): `*out_host` as text ("127.0.0.1",
/// "::1") and `*out_port`. `out_port` may be NULL.
///
/// On success `*out_host` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; the out pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_getpeername(
    t: *const ssh_transport,
    out_host: *mut *mut c_char,
    out_port: *mut u16,
) -> c_int {
    guard(|| {
        string_out(t, out_host, "peer address", |t| {
            let addr = t.peer_addr()?;
            if !out_port.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { *out_port = addr.port() };
            }
            Some(addr.ip().to_string())
        })
    })
}

/// Sends DISCONNECT with `reason` (RFC 4250 reason code, e.g. 11 "by application") and
/// `description` (may be NULL), then closes the connection.
///
/// Borrowed: `description` is only used during the call.
/// Thread safety: any thread; calls blocked on the transport or its channels in other threads
/// then return.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `description` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_disconnect(
    t: *mut ssh_transport,
    reason: u32,
    description: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let description = unsafe { opt_str_arg(description, "description") }?.unwrap_or("");
        if reason == 0 {
            return Err(Error::invalid_arg(
                "reason code 0 is not a disconnect reason",
            ));
        }
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.disconnect(reason, description);
        Ok(())
    })
}
