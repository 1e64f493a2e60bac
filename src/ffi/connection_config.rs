//! `ssh_connection_config`: algorithms, key renewal, keepalive and channel sizes, built once
//! and shared by every transport it is given to: a client's whole configuration, and the
//! part of a server's that `ssh_server_config` does not hold.

use std::ffi::{c_char, c_int};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::boundary::{borrow, free_handle, guard, str_arg, to_handle, Boxed, Castable, Opaque};
use super::transport::ssh_transport;
use super::transport_long_lived::algorithm_kind;
use crate::proto::{ChannelLimits, ConnectionConfig, DEFAULT_REKEY_BYTES};

/// A connection configuration. Changes made after it was given to a transport do not
/// reach that transport: it keeps the configuration as it was then.
///
/// Thread safety: safe to use from several threads at once.
pub struct ssh_connection_config {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_connection_config {
    type Ownership = Boxed;
    type RustType = Mutex<Arc<ConnectionConfig>>;
}

/// Runs `f` on the configuration behind `cfg`, copying it first if a transport holds it.
fn with_config(
    cfg: *const ssh_connection_config,
    f: impl FnOnce(&mut ConnectionConfig) -> crate::Result<()>,
) -> crate::Result<()> {
    // SAFETY: cfg is NULL or a live handle per every caller's contract.
    let shared = unsafe { borrow::<ssh_connection_config>(cfg, "config") }?;
    f(Arc::make_mut(&mut shared.lock()))
}

/// Sets `kind`'s (`SSH_ALG_*`) ordered algorithm list from comma-separated wire names.
pub(super) fn set_preferred(
    c: &mut ConnectionConfig,
    kind: c_int,
    names: &str,
) -> crate::Result<()> {
    c.preferences.set(algorithm_kind(kind)?, names)
}

/// Sets the window and largest data packet of each channel.
pub(super) fn set_channel_limits(c: &mut ConnectionConfig, window: u32, max_packet: u32) {
    c.channel_limits = ChannelLimits::new(window, max_packet);
}

/// A configuration with the default algorithms, keys renewed after 1 GiB, no keepalive,
/// 2 MiB channel windows and 32 KiB packets.
///
/// Returns a new handle; free it with `ssh_connection_config_free`.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn ssh_connection_config_new() -> *mut ssh_connection_config {
    guard(|| Ok(to_handle::<ssh_connection_config>(Mutex::default())))
}

/// Sets the ordered algorithm list of `kind` (`SSH_ALG_*`) from a comma-separated list of
/// wire names, as `ssh_transport_set_preferred` does for one transport.
///
/// Borrowed: nothing is kept of `names`.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_connection_config`; `names` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_connection_config_set_preferred(
    cfg: *mut ssh_connection_config,
    kind: c_int,
    names: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let names = unsafe { str_arg(names, "names") }?;
        with_config(cfg, |c| set_preferred(c, kind, names))
    })
}

/// Renews keys after `bytes` of traffic in both directions (0: the default, 1 GiB; always
/// capped by the cipher's safe limit) and after `seconds` (0: no time limit), as
/// `ssh_transport_set_rekey_limits` does for one transport.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_connection_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_connection_config_set_rekey_limits(
    cfg: *mut ssh_connection_config,
    bytes: u64,
    seconds: u32,
) -> c_int {
    guard(|| {
        with_config(cfg, |c| {
            c.rekey_bytes = if bytes == 0 {
                DEFAULT_REKEY_BYTES
            } else {
                bytes
            };
            c.rekey_interval = (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)));
            Ok(())
        })
    })
}

/// Sends keepalive@openssh.com after `seconds` without traffic from the peer and ends the
/// connection after `max_missed` unanswered ones, as `ssh_transport_set_keepalive` does for
/// one transport. 0 seconds turns it off.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_connection_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_connection_config_set_keepalive(
    cfg: *mut ssh_connection_config,
    seconds: u32,
    max_missed: u32,
) -> c_int {
    guard(|| {
        with_config(cfg, |c| {
            let interval = Duration::from_secs(u64::from(seconds));
            c.keepalive = (seconds > 0).then(|| (interval, max_missed.max(1)));
            Ok(())
        })
    })
}

/// Sets the window granted to each channel and the largest data packet accepted on it, as
/// `ssh_transport_set_channel_limits` does for one transport.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_connection_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_connection_config_set_channel_limits(
    cfg: *mut ssh_connection_config,
    window: u32,
    max_packet: u32,
) -> c_int {
    guard(|| {
        with_config(cfg, |c| {
            set_channel_limits(c, window, max_packet);
            Ok(())
        })
    })
}

/// Gives a transport `cfg` (in place of its algorithms, key renewal, keepalive and channel
/// sizes so far), shared rather than copied. Call before the transport starts; a later
/// `ssh_transport_set_*` call changes this transport's copy only.
///
/// Borrowed: the transport keeps a share of the configuration as it is now; `cfg` may be
/// freed or changed afterwards without affecting it.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `cfg` NULL or a live `ssh_connection_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_connection_config(
    t: *mut ssh_transport,
    cfg: *const ssh_connection_config,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let cfg = unsafe { borrow::<ssh_connection_config>(cfg, "config") }?;
        let shared = Arc::clone(&cfg.lock());
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_connection_config(shared)
    })
}

/// Frees the configuration; transports given it keep their share. NULL is ignored.
///
/// Frees the handle.
/// Thread safety: not while another thread uses the handle.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_connection_config`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_connection_config_free(cfg: *mut ssh_connection_config) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(cfg) };
        Ok(())
    })
}
