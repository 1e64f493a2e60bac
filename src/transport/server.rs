//! The server side of a transport: host keys, the handshake as a server, the decisions of a
//! [`ServerHandler`], accepted channels and subsystem handlers (Paramiko's start_server,
//! accept, add_server_key, set_subsystem_handler).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::server_handler::ServerHandler;
use super::{Channel, Transport};
use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, ErrorKind, Result};

/// Serves one subsystem channel (Paramiko's SubsystemHandler): called on a thread of its own
/// with the channel and the subsystem name; the channel is closed when it returns.
pub type SubsystemHandler = Arc<dyn Fn(Channel, &str) + Send + Sync>;

/// Authentication attempts allowed per connection unless set otherwise (OpenSSH's MaxAuthTries).
pub const DEFAULT_MAX_AUTH_TRIES: u32 = 6;
/// How long a client may take to authenticate unless set otherwise (OpenSSH's LoginGraceTime).
pub const DEFAULT_LOGIN_GRACE: Duration = Duration::from_secs(120);

fn not_yet() -> Error {
    Error::new(ErrorKind::Internal, "server mode is being built")
}

impl Transport {
    /// Adds a host key; several types may be added, and the client's preference picks one.
    pub fn add_server_key(&self, _key: PrivateKey) -> Result<()> {
        Err(not_yet())
    }

    /// The host key the key exchange used (server side).
    pub fn server_key(&self) -> Result<PublicKey> {
        Err(not_yet())
    }

    /// Loads Diffie-Hellman groups for group exchange from a file in /etc/ssh/moduli format;
    /// returns how many usable groups it held. Without one, the built-in groups 14, 16 and 18
    /// serve group exchange.
    pub fn load_server_moduli(&self, _path: &Path) -> Result<usize> {
        Err(not_yet())
    }

    /// Runs `handler` on its own thread for every accepted "subsystem" request named `name`.
    pub fn set_subsystem_handler(&self, _name: &str, _handler: SubsystemHandler) {}

    /// Failed authentication attempts allowed before the connection is cut, and how long an
    /// unauthenticated client may stay connected (`None`: forever).
    pub fn set_auth_limits(&self, _max_tries: u32, _login_grace: Option<Duration>) {}

    /// Runs the version exchange and first key exchange as a server; `handler` then decides
    /// on authentication and channels as the client asks.
    pub fn start_server(&self, _handler: Arc<dyn ServerHandler>) -> Result<()> {
        Err(not_yet())
    }

    /// The next channel the client opened and the handler accepted; waits up to `timeout`
    /// (`None`: forever). Fails with Timeout, or Closed once the connection ended.
    pub fn accept(&self, _timeout: Option<Duration>) -> Result<Channel> {
        Err(not_yet())
    }
}
