//! The connection protocol's channels (RFC 4254 §5-6): open, windows, data, EOF, close,
//! requests and their replies. Each channel buffers what arrived up to its window; the window
//! is re-opened only as the application reads, so a slow reader slows the sender.
//!
//! - `streams`: a session's two output streams, their buffers and who waits on them;
//! - `state`: one channel, its windows, its waits and the messages it sends;
//! - `table`: the channels of a connection, opened by either side, and the dispatch of
//!   incoming channel messages;
//! - `messages`: the bodies of incoming data and requests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod messages;
mod state;
mod streams;
mod table;
#[cfg(test)]
mod tests;

pub(in crate::proto) use messages::id_of;
pub use state::Channel;
pub use streams::{Awaited, RecvBuffer, StderrMode, Stream};
pub use table::Channels;

/// Our channel number.
pub type ChannelId = u32;

/// The window we grant a channel unless configured otherwise: what the peer may send
/// before we have read it.
pub const WINDOW_SIZE: u32 = 2 * 1024 * 1024;
/// Largest data packet we accept unless configured otherwise.
pub const MAX_PACKET: u32 = 32 * 1024;

/// What a channel lets its peer send: the window granted, re-opened as the application
/// reads, and the largest data packet accepted. Fixed per channel when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimits {
    pub window: u32,
    pub max_packet: u32,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            window: WINDOW_SIZE,
            max_packet: MAX_PACKET,
        }
    }
}

/// The largest channel data packet we may ask for: the data, its message header, padding
/// and MAC must fit in the largest packet we read (`MAX_PACKET_LEN`, 256 KiB).
pub const LARGEST_MAX_PACKET: u32 = 128 * 1024;

impl ChannelLimits {
    /// Limits within what SSH allows: a data packet of 1 KiB to [`LARGEST_MAX_PACKET`] (we
    /// never ask less than 1 KiB), a window of at least one packet.
    pub fn new(window: u32, max_packet: u32) -> ChannelLimits {
        let max_packet = max_packet.clamp(1024, LARGEST_MAX_PACKET);
        ChannelLimits {
            window: window.max(max_packet),
            max_packet,
        }
    }
}
/// Largest data packet we send, whatever the peer allows.
const MAX_SEND_PACKET: u32 = 32 * 1024;
/// How far a stream nobody reads may grow past the window while the application waits for
/// another stream or the exit status, unless the application sets its own limit.
pub const DEFAULT_BUFFER_LIMIT: usize = 64 * 1024 * 1024;

/// Lifecycle of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// CHANNEL_OPEN sent, no answer yet.
    Opening,
    /// Open and usable.
    Open,
    /// The peer refused to open it.
    OpenFailed { reason: u32, description: String },
    /// Both sides sent CHANNEL_CLOSE (or the connection ended).
    Closed,
}

/// How a remote command ended (RFC 4254 §6.10): a code or a signal, never a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit-status.
    Code(u32),
    /// exit-signal: signal name without "SIG", whether core was dumped, error message.
    Signal {
        name: String,
        core_dumped: bool,
        message: String,
    },
}

impl std::fmt::Display for ExitStatus {
    /// "exit status 3", or "killed by signal TERM (core dumped) message".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit status {code}"),
            ExitStatus::Signal {
                name,
                core_dumped,
                message,
            } => {
                write!(f, "killed by signal {name}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                if !message.is_empty() {
                    write!(f, " {message}")?;
                }
                Ok(())
            }
        }
    }
}
