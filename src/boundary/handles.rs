//! Handle ownership as a type (rustls-ffi's `Castable` with an ownership kind): an opaque C
//! handle type names the Rust value behind it and whether the handle is a `Box` or one
//! reference of an `Arc`, so that borrowing, sharing and freeing are checked once, here.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::Error;

/// How a handle owns the value behind it (rustls-ffi's ownership kinds).
pub trait Ownership {
    /// Lets go of the handle's value at `ptr`.
    ///
    /// # Safety
    /// `ptr` must come from the matching constructor and be released once.
    unsafe fn release<T>(ptr: *mut T);
}

/// The handle is a `Box`: one owner, freed once ([`to_handle`]).
pub enum Boxed {}

/// The handle is one reference of an `Arc`: several handles and the library may hold the
/// same value, which lives until the last lets go ([`to_shared_handle`], [`share`]).
pub enum Shared {}

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
pub trait Castable {
    type Ownership: Ownership;
    type RustType;
}

/// Boxes `value` and returns it as the opaque handle type `C`.
pub fn to_handle<C: Castable<Ownership = Boxed>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Returns one reference to `value` as the opaque handle type `C`.
pub fn to_shared_handle<C: Castable<Ownership = Shared>>(value: Arc<C::RustType>) -> *mut C {
    Arc::into_raw(value).cast_mut().cast()
}

/// Another reference to a shared handle's value; NULL is an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `C` made by [`to_shared_handle`].
pub unsafe fn share<C: Castable<Ownership = Shared>>(
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
pub unsafe fn borrow<'a, C: Castable>(ptr: *const C, name: &str) -> crate::Result<&'a C::RustType> {
    // SAFETY: the caller guarantees ptr is NULL or a live handle made by to_handle::<C>.
    unsafe { ptr.cast::<C::RustType>().as_ref() }
        .ok_or_else(|| Error::invalid_arg(format!("{name} is NULL")))
}

/// Frees a handle made by [`to_handle`] or [`to_shared_handle`]; NULL is ignored.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `C` not yet freed.
pub unsafe fn free_handle<C: Castable>(ptr: *mut C) {
    if !ptr.is_null() {
        // SAFETY: the caller guarantees ptr came from C's constructor and is freed once.
        unsafe { C::Ownership::release(ptr.cast::<C::RustType>()) };
    }
}

/// Marker keeping handle structs zero-sized, unconstructible and `!Send` in Rust.
pub type Opaque = PhantomData<*mut u8>;
