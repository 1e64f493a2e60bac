//! The C boundary kit serves a C library other than Sekura's own API (as a libssh-compatible
//! one in this workspace would be): its own opaque handle types, owned and shared, and the
//! argument checks, used from outside the crate.

use std::ffi::CString;
use std::sync::Arc;

use sekura::boundary::{
    borrow, free_handle, share, str_arg, to_handle, to_shared_handle, Boxed, Castable, Opaque,
    Shared,
};
use sekura::ErrorKind;

/// A foreign library's session handle, owned by its one pointer.
struct ForeignSession {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ForeignSession {
    type Ownership = Boxed;
    type RustType = String;
}

/// A foreign library's key handle, one reference of a shared value.
struct ForeignKey {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ForeignKey {
    type Ownership = Shared;
    type RustType = Vec<u8>;
}

#[test]
fn a_second_library_makes_borrows_and_frees_its_own_handles() {
    let session = to_handle::<ForeignSession>("host".to_owned());
    // SAFETY: a live handle made just above, freed once below.
    unsafe {
        assert_eq!(
            borrow::<ForeignSession>(session, "session").unwrap(),
            "host"
        );
        free_handle(session);
    }
    // SAFETY: NULL is allowed and reported.
    let e = unsafe { borrow::<ForeignSession>(std::ptr::null(), "session") }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message().contains("session is NULL"), "{e}");

    let value = Arc::new(vec![1u8, 2, 3]);
    let key = to_shared_handle::<ForeignKey>(Arc::clone(&value));
    // SAFETY: a live shared handle; each count taken is given back once.
    unsafe {
        let again = share::<ForeignKey>(key, "key").unwrap();
        assert!(Arc::ptr_eq(&again, &value));
        assert_eq!(Arc::strong_count(&value), 3);
        drop(again);
        free_handle(key);
    }
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn its_argument_checks_name_the_argument() {
    let name = CString::new("alice").unwrap();
    // SAFETY: a NUL-terminated string that outlives the borrow.
    assert_eq!(unsafe { str_arg(name.as_ptr(), "user") }.unwrap(), "alice");
    let bad = CString::new(vec![0xff, 0xfe]).unwrap();
    // SAFETY: as above.
    let e = unsafe { str_arg(bad.as_ptr(), "user") }.unwrap_err();
    assert!(e.message().contains("user is not valid UTF-8"), "{e}");
}
