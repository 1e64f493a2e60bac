//! `ssh_server_config`: a server's host keys, moduli, limits and algorithms, built once and
//! shared by every transport it is given to (one copy of the keys for all connections).
//! The algorithms and channel sizes are its own connection configuration.

use std::ffi::{c_char, c_int};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::boundary::{borrow, free_handle, guard, str_arg, to_handle, Boxed, Castable, Opaque};
use super::connection_config::{set_channel_limits, set_preferred};
use super::pkey::{host_key_arg, ssh_pkey};
use super::transport::{duration_from_ms, ssh_transport};
use crate::proto::server::ServerConfig;
use crate::proto::ConnectionConfig;
use crate::transport::read_moduli_file;

/// A server configuration. Changes made after it was given to a transport do not reach
/// that transport: it keeps the configuration as it was then.
///
/// Thread safety: safe to use from several threads at once.
pub struct ssh_server_config {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_server_config {
    type Ownership = Boxed;
    type RustType = Mutex<ServerSetup>;
}

/// What a server transport is given: the server's own part and the connection part.
#[derive(Default)]
pub struct ServerSetup {
    server: Arc<ServerConfig>,
    connection: Arc<ConnectionConfig>,
}

/// Runs `f` on the setup behind `cfg`.
fn with_setup(
    cfg: *const ssh_server_config,
    f: impl FnOnce(&mut ServerSetup) -> crate::Result<()>,
) -> crate::Result<()> {
    // SAFETY: cfg is NULL or a live handle per every caller's contract.
    let shared = unsafe { borrow::<ssh_server_config>(cfg, "config") }?;
    f(&mut shared.lock())
}

/// Runs `f` on the server part behind `cfg`, copying it first if a transport holds it.
fn with_config(
    cfg: *const ssh_server_config,
    f: impl FnOnce(&mut ServerConfig) -> crate::Result<()>,
) -> crate::Result<()> {
    with_setup(cfg, |setup| f(Arc::make_mut(&mut setup.server)))
}

/// Runs `f` on the connection part behind `cfg`, copying it first if a transport holds it.
fn with_connection(
    cfg: *const ssh_server_config,
    f: impl FnOnce(&mut ConnectionConfig) -> crate::Result<()>,
) -> crate::Result<()> {
    with_setup(cfg, |setup| f(Arc::make_mut(&mut setup.connection)))
}

/// A server configuration with no host key, the default algorithms, the built-in
/// group-exchange groups, 6 authentication attempts and a 120 s login grace time.
///
/// Returns a new handle; free it with `ssh_server_config_free`.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn ssh_server_config_new() -> *mut ssh_server_config {
    guard(|| Ok(to_handle::<ssh_server_config>(Mutex::default())))
}

/// Adds a host key (with its private part); one of a type already added replaces it.
///
/// Borrowed: `key` stays the caller's.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_server_config`; `key` NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_config_add_host_key(
    cfg: *mut ssh_server_config,
    key: *const ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let private = unsafe { host_key_arg(key) }?;
        with_config(cfg, |c| {
            c.add_host_key(private.clone());
            Ok(())
        })
    })
}

/// Loads Diffie-Hellman groups for group exchange from a file in /etc/ssh/moduli format;
/// `*out_count` (if not NULL) is how many usable groups it held.
///
/// Borrowed: nothing is kept of `path`.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_server_config`; `path` NUL-terminated; `out_count`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_config_load_moduli(
    cfg: *mut ssh_server_config,
    path: *const c_char,
    out_count: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        with_config(cfg, |c| {
            c.moduli = read_moduli_file(Path::new(path))?;
            if !out_count.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { *out_count = c.moduli.len() };
            }
            Ok(())
        })
    })
}

/// Failed authentication attempts allowed before a connection is cut (at least 1), and
/// how long in ms a client may take to authenticate (-1: forever).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_server_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_config_set_auth_limits(
    cfg: *mut ssh_server_config,
    max_tries: u32,
    login_grace_ms: c_int,
) -> c_int {
    guard(|| {
        with_config(cfg, |c| {
            c.max_auth_tries = max_tries.max(1);
            c.login_grace = duration_from_ms(login_grace_ms);
            Ok(())
        })
    })
}

/// Sets the ordered algorithm list of `kind` (`SSH_ALG_*`) from a comma-separated list of
/// wire names, as `ssh_transport_set_preferred` does for one transport.
///
/// Borrowed: nothing is kept of `names`.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_server_config`; `names` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_config_set_preferred(
    cfg: *mut ssh_server_config,
    kind: c_int,
    names: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let names = unsafe { str_arg(names, "names") }?;
        with_connection(cfg, |c| set_preferred(c, kind, names))
    })
}

/// Sets the window granted to each channel and the largest data packet accepted on it, as
/// `ssh_transport_set_channel_limits` does for one transport.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_server_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_config_set_channel_limits(
    cfg: *mut ssh_server_config,
    window: u32,
    max_packet: u32,
) -> c_int {
    guard(|| {
        with_connection(cfg, |c| {
            set_channel_limits(c, window, max_packet);
            Ok(())
        })
    })
}

/// Gives a server transport `cfg` (its host keys, moduli, limits, algorithms and channel
/// sizes, in place of any set on the transport before, its connection configuration
/// included), shared rather than copied. Call before `ssh_transport_start_server`.
///
/// Borrowed: the transport keeps a share of the configuration as it is now; `cfg` may be
/// freed or changed afterwards without affecting it.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `cfg` NULL or a live `ssh_server_config`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_server_config(
    t: *mut ssh_transport,
    cfg: *const ssh_server_config,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let cfg = unsafe { borrow::<ssh_server_config>(cfg, "config") }?;
        let (server, connection) = {
            let setup = cfg.lock();
            (Arc::clone(&setup.server), Arc::clone(&setup.connection))
        };
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_connection_config(connection)?;
        t.set_server_config(server);
        Ok(())
    })
}

/// Frees the configuration; transports given it keep their share. NULL is ignored.
///
/// Frees the handle.
/// Thread safety: not while another thread uses the handle.
///
/// # Safety
/// `cfg` must be NULL or a live `ssh_server_config`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_config_free(cfg: *mut ssh_server_config) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(cfg) };
        Ok(())
    })
}
