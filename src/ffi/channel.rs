//! `ssh_channel`: exec, data in both directions, EOF, exit status, close.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use libc::ssize_t;

use super::boundary::{
    borrow, fail, free_handle, guard, out_arg, slice_arg, slice_mut_arg, str_arg, to_c_string,
    Boxed, Castable, Opaque,
};
use super::result::*;
use crate::proto::ExitStatus;
use crate::transport::Channel;
use crate::ErrorKind;

/// A channel of a transport (Paramiko's Channel): a session running a command.
///
/// Thread safety: safe to use from several threads; typically one reads while another writes.
pub struct ssh_channel {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_channel {
    type Ownership = Boxed;
    type RustType = Channel;
}

/// Sets the timeout of this channel's blocking calls in ms: -1 blocks (the default), 0 makes
/// them non-blocking (`SSH_ERR_AGAIN` instead of waiting), n waits at most n ms
/// (`SSH_ERR_TIMEOUT`).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; it applies to waits that begin afterwards.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_settimeout(c: *mut ssh_channel, timeout_ms: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        let timeout = match timeout_ms {
            -1 => None,
            ms => Some(Duration::from_millis(u64::try_from(ms).map_err(|_| {
                crate::Error::invalid_arg(format!(
                    "timeout {ms} ms: use -1 (block), 0 (non-blocking) or a positive count"
                ))
            })?)),
        };
        c.set_timeout(timeout);
        Ok(())
    })
}

/// Runs `command` on the server; `SSH_ERR_REFUSED` if the server declines.
///
/// Borrowed: `command` is copied.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `command` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_exec(c: *mut ssh_channel, command: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let command = unsafe { str_arg(command, "command") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.exec(command)
    })
}

fn recv_into(c: *mut ssh_channel, buf: *mut u8, len: usize, stderr: bool) -> crate::Result<usize> {
    // SAFETY: c and buf per the callers' contracts.
    let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
    // SAFETY: as above.
    let buf = unsafe { slice_mut_arg(buf, len, "buf") }?;
    if stderr {
        c.recv_stderr(buf)
    } else {
        c.recv(buf)
    }
}

/// Reads the command's standard output into `buf`: returns the count, 0 at EOF, or a
/// negative `ssh_result`. Waits per `ssh_channel_settimeout`.
///
/// Borrowed: `buf` is only written during the call.
/// Thread safety: any thread; one thread may read while another writes.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `buf` writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_recv(
    c: *mut ssh_channel,
    buf: *mut u8,
    len: usize,
) -> ssize_t {
    guard(|| recv_into(c, buf, len, false))
}

/// Reads the command's standard error, like `ssh_channel_recv`.
///
/// Borrowed: `buf` is only written during the call.
/// Thread safety: any thread; one thread may read while another writes.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `buf` writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_recv_stderr(
    c: *mut ssh_channel,
    buf: *mut u8,
    len: usize,
) -> ssize_t {
    guard(|| recv_into(c, buf, len, true))
}

/// Sends what the channel window allows of `buf` now; returns the count (possibly less than
/// `len`) or a negative `ssh_result`. Waits per `ssh_channel_settimeout` for window space.
///
/// Borrowed: `buf` is copied.
/// Thread safety: any thread; concurrent sends interleave in no set order.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `buf` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_send(
    c: *mut ssh_channel,
    buf: *const u8,
    len: usize,
) -> ssize_t {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        // SAFETY: as above.
        let buf = unsafe { slice_arg(buf, len, "buf") }?;
        c.send(buf)
    })
}

/// Sends all of `buf`, waiting for window space as needed.
///
/// Borrowed: `buf` is copied.
/// Thread safety: any thread; another thread's sends may come between its pieces.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `buf` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_sendall(
    c: *mut ssh_channel,
    buf: *const u8,
    len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let buf = unsafe { slice_arg(buf, len, "buf") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.sendall(buf)
    })
}

/// Tells the server no more data follows (the command sees end of input).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_send_eof(c: *mut ssh_channel) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.send_eof()
    })
}

/// True once the command's end is known (exit status, signal, or close without either), so
/// that `ssh_channel_recv_exit_status` will not wait.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_exit_status_ready(c: *const ssh_channel) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") };
        // NULL answers false without being a failure: the last error stays as it was.
        Ok(c.is_ok_and(Channel::exit_status_ready))
    })
}

/// Waits (per `ssh_channel_settimeout`) for how the command ended. `SSH_OK` with its exit
/// code in `*out_status`; `SSH_ERR_EXIT_SIGNAL` if a signal killed it (see
/// `ssh_channel_get_exit_signal`); `SSH_ERR_NO_EXIT_STATUS` if the channel closed without
/// either. Never reports 0 by default.
///
/// Borrowed: writes only `*out_status`.
/// Thread safety: any thread; `ssh_channel_close` on another thread makes it return at once.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `out_status` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_recv_exit_status(
    c: *mut ssh_channel,
    out_status: *mut c_int,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        // SAFETY: as above.
        let out = unsafe { out_arg(out_status, "out_status") }?;
        // The two codes no error kind has are recorded here and returned as the value.
        match c.recv_exit_status() {
            Ok(ExitStatus::Code(code)) => {
                out.write(c_int::try_from(code).unwrap_or(c_int::MAX));
                Ok(SSH_OK)
            }
            Ok(exit @ ExitStatus::Signal { .. }) => {
                Ok(fail(SSH_ERR_EXIT_SIGNAL, &format!("remote command {exit}")))
            }
            Err(e) if e.kind() == ErrorKind::Eof => Ok(fail(SSH_ERR_NO_EXIT_STATUS, e.message())),
            Err(e) => Err(e),
        }
    })
}

/// The name of the signal that killed the command, without "SIG" ("TERM", "KILL"), after
/// `ssh_channel_recv_exit_status` returned `SSH_ERR_EXIT_SIGNAL`.
///
/// On success `*out_signal` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`; `out_signal` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_get_exit_signal(
    c: *const ssh_channel,
    out_signal: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_signal, "out_signal") }?;
        // SAFETY: as above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        match c.exit_status() {
            Some(ExitStatus::Signal { name, .. }) => {
                out.write(to_c_string(&name));
                Ok(())
            }
            _ => Err(crate::Error::new(
                ErrorKind::State,
                "the command was not killed by a signal (or has not ended)",
            )),
        }
    })
}

/// Closes the channel. Data already received stays readable.
///
/// Borrowed: nothing is kept; the handle stays valid until `ssh_channel_free`.
/// Thread safety: any thread; calls blocked on the channel in other threads return at once.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_close(c: *mut ssh_channel) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.close()
    })
}

/// Closes the channel if it is still open.
///
/// Frees the handle; NULL is ignored. Its descriptor (`ssh_channel_fileno`) closes with it.
/// Thread safety: not while another thread uses the handle.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_free(c: *mut ssh_channel) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(c) };
        Ok(())
    })
}
