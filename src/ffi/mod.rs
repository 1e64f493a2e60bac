//! The C API: converts arguments, calls the Rust API, converts results. Nothing else.
//! One file per handle family; the shared kit is in `boundary`.
#![allow(non_camel_case_types)]

mod agent;
pub(crate) mod boundary;
mod channel;
mod hostkeys;
mod library;
mod log;
mod pkey;
pub mod result;
mod transport;
mod transport_upkeep;

pub use agent::*;
pub use channel::*;
pub use hostkeys::*;
pub use library::*;
pub use log::*;
pub use pkey::*;
pub use result::*;
pub use transport::*;
pub use transport_upkeep::*;
