//! The C boundary kit: handle ownership, argument checks, and strings and buffers handed to
//! C. Sekura's own C API (`ffi`) is built on it, and so can another C library in this
//! workspace (a libssh-compatible one) that maps Sekura's errors to its own codes; what is
//! specific to Sekura's C API (its result codes, its last-error store, the panic guard that
//! records into it) stays in `ffi`.

mod args;
mod handles;
mod strings;

pub use args::{opt_str_arg, out_arg, slice_arg, slice_mut_arg, str_arg};
pub use handles::{
    borrow, free_handle, share, to_handle, to_shared_handle, Boxed, Castable, Opaque, Ownership,
    Shared,
};
pub use strings::{free_c_bytes, to_c_bytes, to_c_string};
