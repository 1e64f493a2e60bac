//! Port forwarding: a client's direct-tcpip channels and remote forwards, a server's
//! forwarded-tcpip channels.

use std::ffi::{c_char, c_int};

use super::boundary::{borrow, guard, out_arg, str_arg, to_handle};
use super::channel::ssh_channel;
use super::transport::ssh_transport;
use crate::transport::{Channel, Transport};

/// Opens a "direct-tcpip" channel: the server connects to `host`:`port` for us, on behalf
/// of `origin_host`:`origin_port` (ssh -L). Returns NULL on failure (`SSH_ERR_REFUSED` when
/// the server declines; `SSH_ERR_AGAIN` on a caller-driven transport until it answers:
/// repeat the call).
///
/// Returns a new handle; free it with `ssh_channel_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; the strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_open_direct_tcpip(
    t: *mut ssh_transport,
    host: *const c_char,
    port: u32,
    origin_host: *const c_char,
    origin_port: u32,
) -> *mut ssh_channel {
    let to = (host, "host", port);
    let from = (origin_host, origin_port);
    // SAFETY: forwarded contract.
    guard(|| unsafe { open_tcpip(t, to, from, Transport::open_direct_tcpip) })
}

/// Client: asks the server to listen on `address`:`port` (port 0: one it chooses) and
/// forward each connection there (ssh -R); each arrives as a channel from
/// `ssh_transport_accept`. Writes the port the server listens on into `*out_port`.
/// `SSH_ERR_REFUSED` when the server declines.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `address` NUL-terminated; `out_port` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_request_port_forward(
    t: *mut ssh_transport,
    address: *const c_char,
    port: u32,
    out_port: *mut u32,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_port, "out_port") }?;
        // SAFETY: per the contract above.
        let address = unsafe { str_arg(address, "address") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        out.write(t.request_port_forward(address, port)?);
        Ok(())
    })
}

/// Client: stops the forward of `address`:`port`; its connections are refused from now on.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `address` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_cancel_port_forward(
    t: *mut ssh_transport,
    address: *const c_char,
    port: u32,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let address = unsafe { str_arg(address, "address") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.cancel_port_forward(address, port)
    })
}

/// Server: opens a "forwarded-tcpip" channel to the client for a connection that reached
/// `address`:`port` (a forward the client asked for in `check_port_forward_request`) from
/// `origin_host`:`origin_port`. Returns NULL on failure (`SSH_ERR_REFUSED` when the client
/// declines).
///
/// Returns a new handle; free it with `ssh_channel_free`.
/// Thread safety: any thread, but not inside a callback of the same transport.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; the strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_open_forwarded_tcpip(
    t: *mut ssh_transport,
    address: *const c_char,
    port: u32,
    origin_host: *const c_char,
    origin_port: u32,
) -> *mut ssh_channel {
    let to = (address, "address", port);
    let from = (origin_host, origin_port);
    // SAFETY: forwarded contract.
    guard(|| unsafe { open_tcpip(t, to, from, Transport::open_forwarded_tcpip) })
}

/// A Rust endpoint pair: (host, port).
type Endpoint<'a> = (&'a str, u32);

/// Opens a TCP/IP channel with `open` to `to` (a C string, its argument's name, a port)
/// from `from` (`origin_host`, a port).
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; the strings NULL or NUL-terminated.
unsafe fn open_tcpip(
    t: *mut ssh_transport,
    to: (*const c_char, &str, u32),
    from: (*const c_char, u32),
    open: impl FnOnce(&Transport, Endpoint<'_>, Endpoint<'_>) -> crate::Result<Channel>,
) -> crate::Result<*mut ssh_channel> {
    // SAFETY: per the contract above.
    let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
    // SAFETY: per the contract above.
    let host = unsafe { str_arg(to.0, to.1) }?;
    // SAFETY: per the contract above.
    let origin = unsafe { str_arg(from.0, "origin_host") }?;
    let channel = open(t, (host, to.2), (origin, from.1))?;
    Ok(to_handle::<ssh_channel>(channel))
}
