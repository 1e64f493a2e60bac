//! The C API: converts arguments, calls the Rust API, converts results. Nothing else.
//! One file per handle family; the shared kit is in `boundary`.
#![allow(non_camel_case_types)]

mod agent;
pub(crate) mod boundary;
mod callback_handler;
mod channel;
mod channel_buffering;
mod channel_session;
mod connection_config;
mod forwarding;
mod hostkeys;
mod library;
mod log;
mod pkey;
pub mod result;
mod server;
mod server_callbacks;
mod server_config;
mod transport;
mod transport_driven;
mod transport_long_lived;

pub use agent::*;
pub use channel::*;
pub use channel_buffering::*;
pub use channel_session::*;
pub use connection_config::*;
pub use forwarding::*;
pub use hostkeys::*;
pub use library::*;
pub use log::*;
pub use pkey::*;
pub use result::*;
pub use server::*;
pub use server_callbacks::*;
pub use server_config::*;
pub use transport::*;
pub use transport_driven::*;
pub use transport_long_lived::*;
