//! Sekura: a memory-safe SSH-2 library with a C ABI.
//!
//! Layers, bottom up (see DESIGN.md): [`wire`], [`crypto`] and [`keys`] are encodings and
//! algorithms; [`proto`] is one connection as a sans-IO state machine; [`transport`] drives it
//! over a socket with a background thread; `ffi` is the C API.

pub mod agent;
pub mod boundary;
pub mod crypto;
pub mod error;
#[cfg(feature = "capi")]
pub mod ffi;
pub mod hostkeys;
pub mod keys;
pub mod log;
pub mod proto;
pub mod transport;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
