//! `ssh_channel` buffering: where standard error goes, how far an unread stream may grow
//! while a call waits for something else, and whether a send would block.

use std::ffi::c_int;

use super::boundary::{borrow, guard};
use super::channel::ssh_channel;
use crate::proto::StderrMode;
use crate::transport::Channel;

/// `ssh_channel_set_stderr_mode`: standard error is its own stream (the default).
pub const SSH_STDERR_SEPARATE: c_int = 0;
/// `ssh_channel_set_stderr_mode`: standard error is merged into standard output, in arrival
/// order (Paramiko's set_combine_stderr).
pub const SSH_STDERR_MERGE: c_int = 1;
/// `ssh_channel_set_stderr_mode`: standard error is discarded on arrival.
pub const SSH_STDERR_DISCARD: c_int = 2;

/// Sets where standard error arriving from now on goes: `SSH_STDERR_SEPARATE`,
/// `SSH_STDERR_MERGE` or `SSH_STDERR_DISCARD`. Set it before starting the command so that
/// nothing arrives under the old mode.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_set_stderr_mode(c: *mut ssh_channel, mode: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        let mode = match mode {
            SSH_STDERR_SEPARATE => StderrMode::Separate,
            SSH_STDERR_MERGE => StderrMode::Merge,
            SSH_STDERR_DISCARD => StderrMode::Discard,
            other => {
                return Err(crate::Error::invalid_arg(format!(
                    "unknown stderr mode {other}"
                )))
            }
        };
        c.set_stderr_mode(mode)
    })
}

/// Sets how many bytes an unread stream may hold past the SSH window while a call waits for
/// the other stream or the exit status (64 MiB unless set; 0 keeps both within the
/// window). So `ssh_channel_recv_exit_status` never deadlocks on output nobody read: past
/// the limit it fails at once with `SSH_ERR_BUFFER_FULL`, naming the stream to read.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_set_buffer_limit(c: *mut ssh_channel, bytes: usize) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") }?;
        c.set_buffer_limit(bytes)
    })
}

/// True when `ssh_channel_send` would take some data without waiting: the channel is open,
/// the peer's window has room and the send queue is below its limit. False for NULL.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a live `ssh_channel`.
#[no_mangle]
pub unsafe extern "C" fn ssh_channel_send_ready(c: *const ssh_channel) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let c = unsafe { borrow::<ssh_channel>(c, "channel") };
        // NULL answers false without being a failure: the last error stays as it was.
        Ok(c.is_ok_and(Channel::send_ready))
    })
}
