//! The binary packet protocol (RFC 4253 §6): framing, padding, sequence numbers, and the
//! current sealing and opening keys. Encryption happens in place in the caller's buffers.
//!
//! Each direction's keys may leave the connection: a driver that takes the [`Sealer`] and
//! the [`PacketReader`] seals and opens packets outside its lock, so that sending and
//! receiving never wait for each other's cryptography. The connection then queues the key
//! changes for the driver to apply at the right packet.

mod reader;
mod writer;

pub use reader::{Opened, PacketReader, ReaderChange, ReaderSlot};
pub use writer::{NewSealingKey, PacketWriter, Sealer};

/// Largest packet_length accepted from a peer. RFC 4253 requires 35000; OpenSSH sends up to
/// 256 KiB. Anything above is refused before a byte of it is buffered.
pub const MAX_PACKET_LEN: usize = 256 * 1024;
