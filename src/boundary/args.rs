//! Argument checks: C strings, byte buffers and output parameters taken from raw pointers,
//! NULL and invalid UTF-8 reported as invalid-argument errors naming the argument, for `?`.

use std::ffi::{c_char, CStr};

use crate::Error;

/// Reads a NUL-terminated UTF-8 argument; NULL or invalid UTF-8 is an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string.
pub unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> crate::Result<&'a str> {
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
pub unsafe fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> crate::Result<Option<&'a str>> {
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
pub unsafe fn slice_arg<'a>(ptr: *const u8, len: usize, name: &str) -> crate::Result<&'a [u8]> {
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
pub unsafe fn slice_mut_arg<'a>(
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
pub unsafe fn out_arg<'a, T>(
    ptr: *mut T,
    name: &str,
) -> crate::Result<&'a mut std::mem::MaybeUninit<T>> {
    // SAFETY: the caller guarantees ptr is NULL or valid for writes.
    unsafe { ptr.cast::<std::mem::MaybeUninit<T>>().as_mut() }
        .ok_or_else(|| Error::invalid_arg(format!("{name} is NULL")))
}
