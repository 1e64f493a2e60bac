//! The server side of a transport: host keys, the handshake as a server, the decisions of a
//! [`ServerHandler`], accepted channels and subsystem handlers (Paramiko's start_server,
//! accept, add_server_key, set_subsystem_handler).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::in_flight::InFlight;
use super::server_dispatch::ServerDecisions;
use super::server_handler::ServerHandler;
use super::{Channel, Transport};
use crate::crypto::kex::parse_moduli;
use crate::crypto::rng::OsRandom;
use crate::keys::{PrivateKey, PublicKey};
use crate::proto::server::ServerConfig;
use crate::proto::Connection;
use crate::{Error, ErrorKind, Result};

/// Serves one subsystem channel (Paramiko's SubsystemHandler): called on a thread of its own
/// with the channel and the subsystem name; the channel is closed when it returns.
pub type SubsystemHandler = Arc<dyn Fn(Channel, &str) + Send + Sync>;

impl Transport {
    /// Adds a host key; several types may be added, and the client's preference picks one.
    /// A key of a type already added replaces it.
    pub fn add_server_key(&self, key: PrivateKey) -> Result<()> {
        Arc::make_mut(&mut self.server_config.lock()).add_host_key(key);
        Ok(())
    }

    /// Takes host keys, moduli and authentication limits from `config`, shared with the
    /// server's other transports rather than copied (algorithms and the rest come with
    /// [`Self::set_connection_config`]); later changes to this transport's settings copy it
    /// first. Set before [`Self::start_server`].
    pub fn set_server_config(&self, config: Arc<ServerConfig>) {
        *self.server_config.lock() = config;
    }

    /// The host key the key exchange used (server side).
    pub fn server_key(&self) -> Result<PublicKey> {
        self.remote_server_key()
    }

    /// Loads Diffie-Hellman groups for group exchange from a file in /etc/ssh/moduli format;
    /// returns how many usable groups it held. Without one, the built-in groups 14, 16 and 18
    /// serve group exchange.
    pub fn load_server_moduli(&self, path: &Path) -> Result<usize> {
        let moduli = read_moduli_file(path)?;
        let count = moduli.len();
        Arc::make_mut(&mut self.server_config.lock()).moduli = moduli;
        Ok(count)
    }

    /// Runs `handler` on its own thread for every accepted "subsystem" request named `name`.
    pub fn set_subsystem_handler(&self, name: &str, handler: SubsystemHandler) {
        self.subsystems.lock().insert(name.to_owned(), handler);
    }

    /// Failed authentication attempts allowed before the connection is cut, and how long an
    /// unauthenticated client may stay connected (`None`: forever). Set before
    /// [`Self::start_server`].
    pub fn set_auth_limits(&self, max_tries: u32, login_grace: Option<Duration>) {
        let mut config = self.server_config.lock();
        let config = Arc::make_mut(&mut config);
        config.max_auth_tries = max_tries.max(1);
        config.login_grace = login_grace;
    }

    /// Runs the version exchange and first key exchange as a server; `handler` then decides
    /// on authentication and channels as the client asks.
    pub fn start_server(&self, handler: Arc<dyn ServerHandler>) -> Result<()> {
        if self
            .in_flight
            .resume(|o| o == InFlight::Handshake)?
            .is_some()
        {
            return self.await_handshake();
        }
        let config = Arc::clone(&self.server_config.lock());
        if config.host_keys.is_empty() {
            return Err(Error::new(
                ErrorKind::State,
                "a server needs a host key: add one with add_server_key",
            ));
        }
        let grace = config.login_grace;
        let mut conn = Connection::server(config, &self.connection_config(), Box::new(OsRandom))?;
        conn.set_login_deadline(grace.map(|g| Instant::now() + g))?;
        conn.set_banner(handler.banner())?;
        let server = ServerDecisions {
            handler,
            subsystems: Arc::clone(&self.subsystems),
            timeout: self.timeout(),
        };
        self.begin(conn, Some(server))?;
        self.await_handshake()
    }

    /// The next channel the peer opened that was accepted: on a server, one the handler
    /// allowed; on a client, a connection to a port it forwards
    /// ([`Transport::request_port_forward`]). Waits up to `timeout` (`None`: forever).
    /// Fails with Timeout, or Closed once the connection ended.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Channel> {
        let shared = self.shared()?;
        let id = shared.wait(timeout, "a channel from the peer", |c| {
            c.take_accepted_channel().map(Ok)
        })?;
        Ok(Channel::adopt(shared, id, self.timeout()))
    }

    /// Server: the public key the client authenticated with, when publickey completed
    /// authentication.
    pub fn authenticated_key(&self) -> Option<PublicKey> {
        self.shared()
            .ok()?
            .state
            .lock()
            .authenticated_key()
            .cloned()
    }
}

/// Reads Diffie-Hellman groups for group exchange from a file in /etc/ssh/moduli format;
/// a file with no usable group is an error.
pub fn read_moduli_file(path: &Path) -> Result<Vec<crate::crypto::kex::Modulus>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read moduli file {}: {e}", path.display()),
        )
    })?;
    let moduli = parse_moduli(&text);
    if moduli.is_empty() {
        return Err(Error::new(
            ErrorKind::KeyFormat,
            format!("{} holds no usable Diffie-Hellman group", path.display()),
        ));
    }
    Ok(moduli)
}
