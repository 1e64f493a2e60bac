//! The server role's vocabulary: what the connection asks the application and what it takes
//! back. The state machine itself is [`Connection::server`](super::Connection::server).

mod config;
mod types;

pub use config::{ServerConfig, DEFAULT_LOGIN_GRACE, DEFAULT_MAX_AUTH_TRIES};
pub use types::*;
