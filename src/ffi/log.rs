//! Logging from C: one callback for the library, per-transport names and hexdumps.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use super::boundary::{borrow, guard, str_arg};
use super::transport::ssh_transport;
use crate::log::{self, Level};

/// Log level: the connection failed.
pub const SEKURA_LOG_ERROR: c_int = 1;
/// Log level: something is wrong but the connection goes on.
pub const SEKURA_LOG_WARN: c_int = 2;
/// Log level: key exchange and authentication results, channels.
pub const SEKURA_LOG_INFO: c_int = 3;
/// Log level: every message sent and received.
pub const SEKURA_LOG_DEBUG: c_int = 4;
/// Log level: packet hexdumps, for transports with `ssh_transport_set_hexdump` on.
pub const SEKURA_LOG_TRACE: c_int = 5;

/// Receives log messages: `level` is a `SEKURA_LOG_*` value, `logger` the transport's log
/// name ("sekura.transport" unless set), `message` one line (hexdumps span several). Called
/// on whichever thread produced the message (often a transport's background thread), never
/// under a Sekura lock; it must not block for long. It may call any Sekura function.
pub type sekura_log_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: c_int,
        logger: *const c_char,
        message: *const c_char,
    ),
>;

/// The C callback and its userdata, made callable from any thread.
struct CallbackSink {
    callback: unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *const c_char),
    userdata: *mut c_void,
}

// SAFETY: the caller of sekura_set_log_callback promises that the callback and its userdata
// may be used from any thread (documented there).
unsafe impl Send for CallbackSink {}
// SAFETY: as above.
unsafe impl Sync for CallbackSink {}

impl CallbackSink {
    fn deliver(&self, level: Level, logger: &str, message: &str) {
        let c = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let (logger, message) = (c(logger), c(message));
        // SAFETY: valid NUL-terminated strings for the duration of the call; the callback's
        // contract is documented on sekura_log_callback.
        unsafe {
            (self.callback)(
                self.userdata,
                level as c_int,
                logger.as_ptr(),
                message.as_ptr(),
            )
        };
    }
}

/// Sends log messages up to `level` (`SEKURA_LOG_*`) to `callback` with `userdata`; a NULL
/// callback or a level of 0 stops logging. Applies to every transport, including running
/// ones. `callback` and `userdata` must be usable from any thread.
///
/// Borrowed: `callback` and `userdata` are kept until a later call replaces them, and may
/// still be called by a message already under way on another thread when that call returns.
/// Thread safety: any thread; `callback` runs on whichever thread logs, on several at once.
#[no_mangle]
pub extern "C" fn sekura_set_log_callback(
    level: c_int,
    callback: sekura_log_callback,
    userdata: *mut c_void,
) {
    guard(|| {
        match (Level::from_int(level), callback) {
            (Some(level), Some(callback)) => {
                let sink = CallbackSink { callback, userdata };
                log::set_sink(level, Some(Arc::new(move |l, n, m| sink.deliver(l, n, m))));
            }
            _ => log::set_sink(Level::Error, None),
        }
        Ok(())
    })
}

/// Names this transport's log messages (the `logger` argument of the callback), e.g.
/// "backup.host1". The default is "sekura.transport".
///
/// Borrowed: `name` is copied.
/// Thread safety: any thread; a running transport uses the new name from then on.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `name` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_log_name(
    t: *mut ssh_transport,
    name: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        // SAFETY: as above.
        let name = unsafe { str_arg(name, "name") }?;
        t.set_log_name(name);
        Ok(())
    })
}

/// Turns packet hexdumps at `SEKURA_LOG_TRACE` on or off for this transport. Passwords and
/// keyboard-interactive answers are never shown.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; a running transport applies it from then on.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_hexdump(t: *mut ssh_transport, on: bool) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_hexdump(on);
        Ok(())
    })
}
