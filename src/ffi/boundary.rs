//! Sekura's C API on the boundary kit ([`crate::boundary`]): the panic guard, the last-error
//! store, and the mapping of Rust errors to `ssh_result` codes.

use std::cell::RefCell;
use std::ffi::{c_int, CStr, CString};

use super::result::*;
pub(crate) use crate::boundary::*;
use crate::{Error, ErrorKind};

thread_local! {
    /// This thread's last failure: its code and message.
    static LAST_ERROR: RefCell<(c_int, CString)> = RefCell::new((SSH_OK, CString::default()));
}

/// The `ssh_result` code for an error kind.
pub(crate) fn code_of(kind: ErrorKind) -> c_int {
    match kind {
        ErrorKind::InvalidArg => SSH_ERR_INVALID_ARG,
        ErrorKind::Again => SSH_ERR_AGAIN,
        ErrorKind::Timeout => SSH_ERR_TIMEOUT,
        ErrorKind::Eof => SSH_ERR_EOF,
        ErrorKind::Closed => SSH_ERR_CLOSED,
        ErrorKind::AuthDenied => SSH_ERR_AUTH_DENIED,
        ErrorKind::HostKeyRejected => SSH_ERR_HOSTKEY_REJECTED,
        ErrorKind::Protocol => SSH_ERR_PROTOCOL,
        ErrorKind::Io => SSH_ERR_IO,
        ErrorKind::KeyFormat => SSH_ERR_KEY_FORMAT,
        ErrorKind::PasswordRequired => SSH_ERR_PASSWORD_REQUIRED,
        ErrorKind::BadPassphrase => SSH_ERR_BAD_PASSPHRASE,
        ErrorKind::State => SSH_ERR_STATE,
        ErrorKind::Refused => SSH_ERR_REFUSED,
        ErrorKind::BufferFull => SSH_ERR_BUFFER_FULL,
        _ => SSH_ERR_INTERNAL,
    }
}

/// Records a failure for `sekura_last_error` and returns its code.
pub(crate) fn fail(code: c_int, message: &str) -> c_int {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = (code, text));
    code
}

/// Records `e` and returns its code.
pub(crate) fn fail_with(e: &Error) -> c_int {
    fail(code_of(e.kind()), e.message())
}

/// Runs `f` with this thread's last message.
pub(crate) fn with_last_error<R>(f: impl FnOnce(c_int, &CStr) -> R) -> R {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        f(e.0, e.1.as_c_str())
    })
}

/// The return type of an `extern "C"` function, as far as failures go.
pub(crate) trait CReturn {
    /// What the function returns for a failure whose `code` is already the last error
    /// (`SSH_ERR_INTERNAL` after a panic).
    fn failed(code: c_int) -> Self;
}

impl CReturn for c_int {
    fn failed(code: c_int) -> Self {
        code
    }
}

impl CReturn for isize {
    fn failed(code: c_int) -> Self {
        code as isize
    }
}

impl CReturn for bool {
    fn failed(_: c_int) -> Self {
        false
    }
}

impl CReturn for () {
    fn failed(_: c_int) -> Self {}
}

impl<T> CReturn for *mut T {
    fn failed(_: c_int) -> Self {
        std::ptr::null_mut()
    }
}

impl<T> CReturn for *const T {
    fn failed(_: c_int) -> Self {
        std::ptr::null()
    }
}

/// How an `extern "C"` function returns its body's `crate::Result<T>`.
pub(crate) trait FromResult<T>: CReturn + Sized {
    /// What the function returns for the body's success value.
    fn from_ok(value: T) -> Self;

    /// The success value as [`FromResult::from_ok`] makes it; an error is recorded as the
    /// last error and its code returned as [`CReturn::failed`] makes it.
    fn from_result(r: crate::Result<T>) -> Self {
        match r {
            Ok(value) => Self::from_ok(value),
            Err(e) => Self::failed(fail_with(&e)),
        }
    }
}

/// `SSH_OK`.
impl FromResult<()> for c_int {
    fn from_ok((): ()) -> Self {
        SSH_OK
    }
}

/// A count, a status such as `SSH_KNOWNHOSTS_MISMATCH`, or a code the body recorded with
/// [`fail`]: returned as it is.
impl FromResult<c_int> for c_int {
    fn from_ok(value: c_int) -> Self {
        value
    }
}

/// A byte count for `ssize_t`, capped at its largest value.
impl FromResult<usize> for isize {
    fn from_ok(n: usize) -> Self {
        isize::try_from(n).unwrap_or(isize::MAX)
    }
}

impl FromResult<bool> for bool {
    fn from_ok(value: bool) -> Self {
        value
    }
}

impl FromResult<()> for () {
    fn from_ok((): ()) -> Self {}
}

impl<T> FromResult<*mut T> for *mut T {
    fn from_ok(value: *mut T) -> Self {
        value
    }
}

impl<T> FromResult<*const T> for *const T {
    fn from_ok(value: *const T) -> Self {
        value
    }
}

/// Runs an `extern "C"` function's body and converts its result with [`FromResult`], so that
/// every argument check is a `?`. A panic becomes [`CReturn::failed`] with
/// `SSH_ERR_INTERNAL`, its message the last error: it never unwinds into C.
pub(crate) fn guard<T, R: FromResult<T>>(body: impl FnOnce() -> crate::Result<T>) -> R {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| R::from_result(body())))
        .unwrap_or_else(|payload| R::failed(panicked(payload.as_ref())))
}

/// Records a caught panic as the last error and returns `SSH_ERR_INTERNAL`.
fn panicked(payload: &(dyn std::any::Any + Send)) -> c_int {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    fail(SSH_ERR_INTERNAL, &format!("internal error (panic): {what}"))
}
