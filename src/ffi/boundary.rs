//! The boundary kit: the panic guard, argument checks, handle ownership, the last-error
//! store, and the mapping of Rust errors to `ssh_result` codes.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::sync::Arc;

use super::result::*;
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

/// How a handle owns the value behind it (rustls-ffi's ownership kinds).
pub(crate) trait Ownership {
    /// Lets go of the handle's value at `ptr`.
    ///
    /// # Safety
    /// `ptr` must come from the matching constructor and be released once.
    unsafe fn release<T>(ptr: *mut T);
}

/// The handle is a `Box`: one owner, freed once ([`to_handle`]).
pub(crate) enum Boxed {}

/// The handle is one reference of an `Arc`: several handles and the library may hold the
/// same value, which lives until the last lets go ([`to_shared_handle`], [`share`]).
pub(crate) enum Shared {}

impl Ownership for Boxed {
    unsafe fn release<T>(ptr: *mut T) {
        // SAFETY: per the trait's contract, ptr came from Box::into_raw.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

impl Ownership for Shared {
    unsafe fn release<T>(ptr: *mut T) {
        // SAFETY: per the trait's contract, ptr came from Arc::into_raw and holds one count.
        drop(unsafe { Arc::from_raw(ptr.cast_const()) });
    }
}

/// Ties an opaque C handle type to the Rust value behind it and to how the handle owns it.
pub(crate) trait Castable {
    type Ownership: Ownership;
    type RustType;
}

/// Boxes `value` and returns it as the opaque handle type `C`.
pub(crate) fn to_handle<C: Castable<Ownership = Boxed>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Returns one reference to `value` as the opaque handle type `C`.
pub(crate) fn to_shared_handle<C: Castable<Ownership = Shared>>(value: Arc<C::RustType>) -> *mut C {
    Arc::into_raw(value).cast_mut().cast()
}

/// Another reference to a shared handle's value; NULL is an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `C` made by [`to_shared_handle`].
pub(crate) unsafe fn share<C: Castable<Ownership = Shared>>(
    ptr: *const C,
    name: &str,
) -> crate::Result<Arc<C::RustType>> {
    if ptr.is_null() {
        return Err(Error::invalid_arg(format!("{name} is NULL")));
    }
    let value = ptr.cast::<C::RustType>();
    // SAFETY: a live handle holds one count of an Arc made by to_shared_handle; the new
    // count is the one the returned Arc gives back.
    unsafe {
        Arc::increment_strong_count(value);
        Ok(Arc::from_raw(value))
    }
}

/// Borrows the value behind a handle; NULL is an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `C` made by [`to_handle`].
pub(crate) unsafe fn borrow<'a, C: Castable>(
    ptr: *const C,
    name: &str,
) -> crate::Result<&'a C::RustType> {
    // SAFETY: the caller guarantees ptr is NULL or a live handle made by to_handle::<C>.
    unsafe { ptr.cast::<C::RustType>().as_ref() }
        .ok_or_else(|| Error::invalid_arg(format!("{name} is NULL")))
}

/// Frees a handle made by [`to_handle`] or [`to_shared_handle`]; NULL is ignored.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `C` not yet freed.
pub(crate) unsafe fn free_handle<C: Castable>(ptr: *mut C) {
    if !ptr.is_null() {
        // SAFETY: the caller guarantees ptr came from C's constructor and is freed once.
        unsafe { C::Ownership::release(ptr.cast::<C::RustType>()) };
    }
}

/// Reads a NUL-terminated UTF-8 argument; NULL or invalid UTF-8 is an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> crate::Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid_arg(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::invalid_arg(format!("{name} is not valid UTF-8")))
}

/// Like [`str_arg`] but NULL means `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    name: &str,
) -> crate::Result<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(ptr, name) }.map(Some)
    }
}

/// Builds a byte slice from pointer and length; NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` must be valid for `len` bytes when non-NULL.
pub(crate) unsafe fn slice_arg<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> crate::Result<&'a [u8]> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::invalid_arg(format!("{name} is NULL")))
        };
    }
    // SAFETY: the caller guarantees ptr is valid for len bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Builds a mutable byte slice from pointer and length.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes when non-NULL.
pub(crate) unsafe fn slice_mut_arg<'a>(
    ptr: *mut u8,
    len: usize,
    name: &str,
) -> crate::Result<&'a mut [u8]> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(Error::invalid_arg(format!("{name} is NULL")))
        };
    }
    // SAFETY: the caller guarantees ptr is valid for len bytes of writes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Writes an output parameter; NULL is an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or valid for a write of `T`.
pub(crate) unsafe fn out_arg<'a, T>(
    ptr: *mut T,
    name: &str,
) -> crate::Result<&'a mut std::mem::MaybeUninit<T>> {
    // SAFETY: the caller guarantees ptr is NULL or valid for writes.
    unsafe { ptr.cast::<std::mem::MaybeUninit<T>>().as_mut() }
        .ok_or_else(|| Error::invalid_arg(format!("{name} is NULL")))
}

/// A string allocated for C, freed with `sekura_string_free`.
pub(crate) fn to_c_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// A byte buffer allocated for C, freed with `sekura_bytes_free(ptr, len)`.
pub(crate) fn to_c_bytes(bytes: &[u8]) -> *mut u8 {
    Box::into_raw(bytes.to_vec().into_boxed_slice()).cast()
}

/// Frees a buffer made by [`to_c_bytes`].
///
/// # Safety
/// `ptr` must be NULL or come from [`to_c_bytes`] with exactly `len` bytes, not yet freed.
pub(crate) unsafe fn free_c_bytes(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        // SAFETY: per the contract, ptr and len describe a boxed slice made by to_c_bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

/// Marker keeping handle structs zero-sized, unconstructible and `!Send` in Rust.
pub(crate) type Opaque = PhantomData<*mut u8>;
