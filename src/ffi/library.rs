//! Functions of the library as a whole: version, result strings, the last error.

use std::ffi::{c_char, c_int, CString};

use super::boundary::{guard, with_last_error};
use super::result::describe;

/// The library version, "MAJOR.MINOR.PATCH".
///
/// Borrowed: a static string, valid for the life of the program.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn sekura_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// A short English description of an `ssh_result` code; "unknown result" for unknown codes.
///
/// Borrowed: a static string, valid for the life of the program.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn sekura_result_str(result: c_int) -> *const c_char {
    describe(result).as_ptr()
}

/// The message of the calling thread's last failed Sekura call ("" if none failed), specific
/// enough to act on, e.g. "connect to 127.0.0.1 port 2222 failed: Connection refused".
///
/// Borrowed: the string is valid until the next Sekura call on this thread.
/// Thread safety: any thread; each thread has its own last error.
#[no_mangle]
pub extern "C" fn sekura_last_error() -> *const c_char {
    guard(|| Ok(with_last_error(|_, message| message.as_ptr())))
}

/// The `ssh_result` code of the calling thread's last failed Sekura call, `SSH_OK` if none;
/// useful after a constructor returned NULL.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; each thread has its own last result.
#[no_mangle]
pub extern "C" fn sekura_last_result() -> c_int {
    guard(|| Ok(with_last_error(|code, _| code)))
}

/// Frees a string returned by Sekura.
///
/// Takes ownership of `s`; NULL is ignored.
/// Thread safety: any thread, once no other thread uses the string.
///
/// # Safety
/// `s` must be NULL or a string allocated by Sekura and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sekura_string_free(s: *mut c_char) {
    guard(|| {
        if !s.is_null() {
            // SAFETY: the caller guarantees s came from CString::into_raw in Sekura.
            drop(unsafe { CString::from_raw(s) });
        }
        Ok(())
    })
}

/// Frees a byte buffer returned by Sekura, given with its length.
///
/// Takes ownership of `ptr`; NULL is ignored.
/// Thread safety: any thread, once no other thread uses the buffer.
///
/// # Safety
/// `ptr` must be NULL or a buffer allocated by Sekura of exactly `len` bytes, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sekura_bytes_free(ptr: *mut u8, len: usize) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { super::boundary::free_c_bytes(ptr, len) };
        Ok(())
    })
}
