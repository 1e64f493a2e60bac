//! What every connection is configured with, in either role: the algorithms it offers,
//! when it renews keys, its keepalives and its channels' sizes. Built once (by the C API,
//! later by ssh_config) and shared by `Arc` among the connections made from it: a client's
//! whole configuration, and the part of a server's that is not about host keys and
//! authentication ([`super::server::ServerConfig`]).

use std::time::Duration;

use super::{ChannelLimits, Preferences, DEFAULT_REKEY_BYTES};

/// A connection's settings, shared by the connections made from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The algorithms offered, in order.
    pub preferences: Preferences,
    /// Traffic in both directions after which keys are renewed (capped by the cipher's safe
    /// limit, at least 64 KiB).
    pub rekey_bytes: u64,
    /// Time after which keys are renewed whatever the traffic.
    pub rekey_interval: Option<Duration>,
    /// A keepalive after this much silence from the peer, and how many unanswered ones
    /// end the connection (OpenSSH's ServerAliveInterval and ServerAliveCountMax).
    pub keepalive: Option<(Duration, u32)>,
    /// The window and largest packet of each channel.
    pub channel_limits: ChannelLimits,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            preferences: Preferences::default(),
            rekey_bytes: DEFAULT_REKEY_BYTES,
            rekey_interval: None,
            keepalive: None,
            channel_limits: ChannelLimits::default(),
        }
    }
}
