//! What every connection of one server shares besides its [`ConnectionConfig`]: host keys,
//! group-exchange moduli and authentication limits. Built once and handed to each
//! connection by `Arc`, so ten thousand connections hold one copy of the host keys.
//!
//! [`ConnectionConfig`]: crate::proto::ConnectionConfig

use std::time::Duration;

use crate::crypto::kex::Modulus;
use crate::keys::PrivateKey;

/// Authentication attempts allowed per connection unless set otherwise (OpenSSH's
/// MaxAuthTries).
pub const DEFAULT_MAX_AUTH_TRIES: u32 = 6;
/// How long a client may take to authenticate unless set otherwise (OpenSSH's
/// LoginGraceTime).
pub const DEFAULT_LOGIN_GRACE: Duration = Duration::from_secs(120);

/// A server's settings, shared by its connections.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// At most one key per type; the client's preference picks one. The host key
    /// algorithms offered are narrowed to those these keys can sign with.
    pub host_keys: Vec<PrivateKey>,
    /// Groups for Diffie-Hellman group exchange (empty: the built-in groups 14, 16, 18).
    pub moduli: Vec<Modulus>,
    /// Failed authentication attempts allowed before the connection is cut.
    pub max_auth_tries: u32,
    /// How long an unauthenticated client may stay connected (`None`: forever).
    pub login_grace: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host_keys: Vec::new(),
            moduli: Vec::new(),
            max_auth_tries: DEFAULT_MAX_AUTH_TRIES,
            login_grace: Some(DEFAULT_LOGIN_GRACE),
        }
    }
}

impl ServerConfig {
    /// Adds a host key; one of a type already present replaces it.
    pub fn add_host_key(&mut self, key: PrivateKey) {
        let kind = key.public_key().kind();
        self.host_keys.retain(|k| k.public_key().kind() != kind);
        self.host_keys.push(key);
    }
}
