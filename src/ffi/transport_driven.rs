//! Caller-driven transports for event loops (libssh-style programs, epoll servers, language
//! runtimes): no library threads; the application polls, then calls
//! `ssh_transport_process`.

use std::ffi::c_int;
use std::os::fd::{BorrowedFd, RawFd};

use super::boundary::{borrow, guard, out_arg, to_handle};
use super::transport::{ssh_transport, TransportHandle};
use crate::transport::{ByteStream, Transport};
use crate::Error;

/// Wraps a connected stream socket (TCP, Unix, a socketpair's end) for the caller's event
/// loop: no library thread runs for it. The descriptor stays the caller's: the transport
/// works on its own duplicate, closed by `ssh_transport_free`, and makes the shared open
/// file non-blocking. Poll `fd` for `ssh_transport_wanted_events`, at most
/// `ssh_transport_next_timeout`, then call `ssh_transport_process`. Every call that would
/// wait (start, authentication, channel open, requests, reads, sends, exit status, accept)
/// returns `SSH_ERR_AGAIN` instead; repeat the same call after a later
/// `ssh_transport_process` to finish it. Server callbacks run inside
/// `ssh_transport_process`, on the loop's thread. Returns NULL if `fd` is negative or cannot
/// be duplicated.
///
/// Returns a new handle; free it with `ssh_transport_free`, which never waits.
/// Thread safety: any thread; the transport is then meant for the loop's thread.
#[no_mangle]
pub extern "C" fn ssh_transport_new_driven(fd: c_int) -> *mut ssh_transport {
    guard(|| {
        let fd: RawFd = fd;
        if fd < 0 {
            return Err(Error::invalid_arg("fd is negative"));
        }
        // SAFETY: the caller's descriptor is open for the duration of this call.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let own = borrowed.try_clone_to_owned().map_err(|e| {
            Error::new(
                crate::ErrorKind::Io,
                format!("cannot duplicate fd {fd}: {e}"),
            )
        })?;
        let transport = Transport::caller_driven(ByteStream::socket(own));
        Ok(to_handle::<ssh_transport>(TransportHandle::new(transport)))
    })
}

/// The poll(2) events (`POLLIN`, `POLLOUT`) a caller-driven transport waits for on its
/// descriptor before the next `ssh_transport_process`: 0 before it starts, or once it has
/// ended with nothing left to write. Returns the event bits, or a negative `ssh_result`.
///
/// Borrowed: nothing is kept.
/// Thread safety: the loop's thread, or any thread between its polls.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_wanted_events(t: *const ssh_transport) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        let wanted = t.wanted();
        let read = if wanted.read { libc::POLLIN } else { 0 };
        let write = if wanted.write { libc::POLLOUT } else { 0 };
        Ok(c_int::from(read | write))
    })
}

/// Writes into `*out_ms` how long the loop may wait before calling `ssh_transport_process`
/// even if the descriptor is not ready (the next keepalive, rekey or login deadline): -1
/// for no timer, 0 to process again at once.
///
/// Borrowed: nothing is kept.
/// Thread safety: the loop's thread, or any thread between its polls.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `out_ms` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_next_timeout(
    t: *const ssh_transport,
    out_ms: *mut c_int,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_ms, "out_ms") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        let ms = t.next_timeout().map_or(-1, |d| {
            // Round up, so that a loop woken by the timeout finds the timer due.
            let ms = d.as_micros().div_ceil(1000);
            c_int::try_from(ms).unwrap_or(c_int::MAX)
        });
        out.write(ms);
        Ok(())
    })
}

/// Does what the transport's descriptor and timers have ready, without waiting: reads and
/// handles input (server callbacks run here, on this thread), fires due timers and writes
/// queued output as far as the descriptor takes it. Returns `SSH_OK`, or the code of the
/// failure that ended the connection (`SSH_ERR_CLOSED` once the peer closed it); a
/// transport with its own threads refuses with `SSH_ERR_STATE`.
///
/// Borrowed: nothing is kept.
/// Thread safety: the loop's thread; one call at a time per transport.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_process(t: *mut ssh_transport) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.process()
    })
}
