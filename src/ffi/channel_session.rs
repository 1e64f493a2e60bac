//! `ssh_channel` session requests (RFC 4254 §6): the client's (pty, shell, subsystem,
//! environment, window size, X11, agent forwarding) and the server's (standard error, exit
//! status, exit signal), the channel's number that server callbacks refer to, and its
//! pollable descriptor.

use std::ffi::{c_char, c_int};

use libc::ssize_t;

use super::boundary::{borrow, guard, opt_str_arg, out_arg, slice_arg, str_arg};
use super::channel::ssh_channel;
use crate::transport::{PtyRequest, WindowChange, X11Request};

/// The channel's number: the `channel_id` the server callbacks received for it.
///
/// Borrowed: writes only `*out_id`.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `out_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_get_id(c: *const ssh_channel, out_id: *mut u32) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_id, "out_id") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        out.write(c.id());
        Ok(())
    })
}

/// A descriptor for select, poll or epoll, level-triggered: readable while the channel has
/// something new to report (data waiting, an EOF no read has returned yet, an exit status
/// or a close not yet seen, or a dead connection). Once a read has returned 0 it stays quiet
/// until the exit status or the close arrives; `ssh_channel_exit_status_ready` and
/// `ssh_channel_recv_exit_status` mark those seen. Whether a send would block is
/// `ssh_channel_send_ready`.
///
/// Borrowed: the descriptor belongs to the channel, stays the same for its life and closes
/// with `ssh_channel_free`; never close it yourself. Writes only `*out_fd`.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `out_fd` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_fileno(c: *const ssh_channel, out_fd: *mut c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_fd, "out_fd") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        out.write(c.fileno()?);
        Ok(())
    })
}

/// Server side: sends what the window allows of `buf` as standard error, like
/// `ssh_channel_send`; returns the count or a negative `ssh_result`.
///
/// Borrowed: `buf` is copied.
/// Thread safety: any thread; concurrent sends interleave in no set order.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `buf` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_send_stderr(
    c: *mut ssh_channel,
    buf: *const u8,
    len: usize,
) -> ssize_t {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        // SAFETY: as above.
        let buf = unsafe { slice_arg(buf, len, "buf") }?;
        c.send_stderr(buf)
    })
}

/// Server side: sends all of `buf` as standard error, waiting for window space as needed.
///
/// Borrowed: `buf` is copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `buf` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_sendall_stderr(
    c: *mut ssh_channel,
    buf: *const u8,
    len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let buf = unsafe { slice_arg(buf, len, "buf") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.sendall_stderr(buf)
    })
}

/// Server side: reports the command's exit code to the client. Send it before closing the
/// channel.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_send_exit_status(c: *mut ssh_channel, status: u32) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.send_exit_status(status)
    })
}

/// Server side: reports that the command was killed by `signal`, named without "SIG"
/// ("TERM", "KILL"), with whether it dumped core and an optional message (NULL: none).
///
/// Borrowed: the strings are copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `signal` NUL-terminated; `message` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_send_exit_signal(
    c: *mut ssh_channel,
    signal: *const c_char,
    core_dumped: bool,
    message: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let signal = unsafe { str_arg(signal, "signal") }?;
        // SAFETY: as above.
        let message = unsafe { opt_str_arg(message, "message") }?.unwrap_or_default();
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.send_exit_signal(signal, core_dumped, message)
    })
}

/// Client side: asks for a pseudo-terminal of type `term` ("xterm-256color") and size, with
/// encoded terminal modes (RFC 4254 §8; NULL and 0 for none). `SSH_ERR_REFUSED` if the
/// server declines. Call before `ssh_channel_invoke_shell` or `ssh_channel_exec`.
///
/// Borrowed: the arguments are copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `term` NUL-terminated; `modes` readable for
/// `modes_len` bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ssh_channel_request_pty(
    c: *mut ssh_channel,
    term: *const c_char,
    width_chars: u32,
    height_rows: u32,
    width_pixels: u32,
    height_pixels: u32,
    modes: *const u8,
    modes_len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let term = unsafe { str_arg(term, "term") }?;
        // SAFETY: as above.
        let modes = unsafe { slice_arg(modes, modes_len, "modes") }?;
        let pty = PtyRequest {
            term: term.to_owned(),
            width_chars,
            height_rows,
            width_pixels,
            height_pixels,
            modes: modes.to_vec(),
        };
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.get_pty(&pty)
    })
}

/// Client side: starts the user's login shell. `SSH_ERR_REFUSED` if the server declines.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_invoke_shell(c: *mut ssh_channel) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.invoke_shell()
    })
}

/// Client side: starts subsystem `name` ("sftp"). `SSH_ERR_REFUSED` if the server declines.
///
/// Borrowed: `name` is copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `name` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_invoke_subsystem(
    c: *mut ssh_channel,
    name: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.invoke_subsystem(name)
    })
}

/// Client side: sets environment variable `name` to `value` for the command or shell to
/// come (OpenSSH's SendEnv). `SSH_ERR_REFUSED` if the server declines, as servers do for
/// most names.
///
/// Borrowed: the strings are copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `name` and `value` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_set_env(
    c: *mut ssh_channel,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: as above.
        let value = unsafe { str_arg(value, "value") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.set_environment_variable(name, value)
    })
}

/// Client side: tells the server the terminal's new size. Sent without waiting for an
/// answer (window-change has none).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_resize_pty(
    c: *mut ssh_channel,
    width_chars: u32,
    height_rows: u32,
    width_pixels: u32,
    height_pixels: u32,
) -> c_int {
    guard(|| {
        let size = WindowChange {
            width_chars,
            height_rows,
            width_pixels,
            height_pixels,
        };
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.resize_pty(&size)
    })
}

/// Client side: asks for X11 forwarding with an authentication protocol
/// ("MIT-MAGIC-COOKIE-1") and a hexadecimal cookie for `screen`. `SSH_ERR_REFUSED` if the
/// server declines.
///
/// Borrowed: the strings are copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `auth_protocol` and `auth_cookie`
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_request_x11(
    c: *mut ssh_channel,
    single_connection: bool,
    auth_protocol: *const c_char,
    auth_cookie: *const c_char,
    screen: u32,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let protocol = unsafe { str_arg(auth_protocol, "auth_protocol") }?;
        // SAFETY: as above.
        let cookie = unsafe { str_arg(auth_cookie, "auth_cookie") }?;
        let x11 = X11Request {
            single_connection,
            auth_protocol: protocol.to_owned(),
            auth_cookie: cookie.to_owned(),
            screen,
        };
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.request_x11(&x11)
    })
}

/// Client side: asks for ssh-agent forwarding. `SSH_ERR_REFUSED` if the server declines.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_request_forward_agent(c: *mut ssh_channel) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.request_forward_agent()
    })
}
