//! Strings and byte buffers handed to C, and their release.

use std::ffi::{c_char, CString};

/// A string allocated for C, freed with `sekura_string_free`.
pub fn to_c_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// A byte buffer allocated for C, freed with `sekura_bytes_free(ptr, len)`.
pub fn to_c_bytes(bytes: &[u8]) -> *mut u8 {
    Box::into_raw(bytes.to_vec().into_boxed_slice()).cast()
}

/// Frees a buffer made by [`to_c_bytes`].
///
/// # Safety
/// `ptr` must be NULL or come from [`to_c_bytes`] with exactly `len` bytes, not yet freed.
pub unsafe fn free_c_bytes(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        // SAFETY: per the contract, ptr and len describe a boxed slice made by to_c_bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}
