//! The sans-IO protocol core: one SSH connection as a state machine. Bytes in, bytes out,
//! commands as methods; no sockets, threads, clocks or sleeps (randomness is passed in).

pub mod channel;
mod config;
mod connection;
mod kex;
mod kex_server;
pub mod kexinit;
pub mod msg;
mod packet;
pub mod server;
pub mod userauth;
mod version;

pub use channel::{
    Awaited, ChannelId, ChannelLimits, ChannelState, ExitStatus, StderrMode, Stream,
    DEFAULT_BUFFER_LIMIT,
};
pub use config::ConnectionConfig;
pub use connection::{Connection, Event, PublicKeySigning, DEFAULT_REKEY_BYTES};
pub use kexinit::{AlgorithmKind, Negotiated, Preferences};
pub use packet::{NewSealingKey, Opened, PacketReader, Sealer, MAX_PACKET_LEN};
pub use userauth::{AuthStatus, InfoRequest};
