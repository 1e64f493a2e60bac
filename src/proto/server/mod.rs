//! The server role's vocabulary: what the connection asks the application and what it takes
//! back. The state machine itself is [`Connection::server`](super::Connection::server).

mod types;

pub use types::*;
