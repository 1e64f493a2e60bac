//! Drives a [`Connection`](crate::proto::Connection) over a byte stream (a socket, pipes, a
//! child process): Paramiko's Transport. Blocking calls wait for the background threads'
//! progress, each with a timeout.

mod channel;
mod io;
mod readiness;
mod server;
mod server_dispatch;
pub mod server_handler;
mod session;
mod stream;
mod upkeep;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use channel::Channel;
pub use server::{SubsystemHandler, DEFAULT_LOGIN_GRACE, DEFAULT_MAX_AUTH_TRIES};
pub use server_handler::{
    AuthResult, DirectTcpip, InteractiveQuery, InteractiveResult, OpenResult, PtyRequest,
    ServerHandler, WindowChange, X11Request,
};
pub use stream::ByteStream;
pub use upkeep::DISCONNECT_BY_APPLICATION;

use crate::agent::Agent;
use crate::crypto::rng::OsRandom;
use crate::keys::{Certificate, PrivateKey, PublicKey};
use crate::proto::{msg, AlgorithmKind, AuthStatus, Connection, InfoRequest, Preferences};
use crate::{Error, ErrorKind, Result};
use io::{Driver, Shared};

/// How long blocking transport calls wait unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One SSH connection, client or server side.
///
/// Thread safety: all methods take `&self` and may be called from several threads.
pub struct Transport {
    /// The stream, until the transport starts.
    stream: Mutex<Option<ByteStream>>,
    preferences: Mutex<Preferences>,
    driver: Mutex<Option<Driver>>,
    timeout: Mutex<Option<Duration>>,
    closed: AtomicBool,
    /// The peer's address, when the transport runs over a socket that has one.
    peer: Option<SocketAddr>,
    /// Settings made before the transport started, applied to the connection at start.
    pending_settings: Mutex<Vec<Setting>>,
    /// Logger name and hexdump switch, for when the transport starts.
    log_name: Mutex<String>,
    hexdump: AtomicBool,
    /// Host keys, moduli and limits for a server, until it starts.
    server_settings: Mutex<server::ServerSettings>,
    subsystems: server_dispatch::Subsystems,
}

/// A connection setting waiting for the connection to exist.
type Setting = Box<dyn Fn(&mut Connection) + Send>;

/// The outcome of one authentication attempt that the server refused.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthDenied {
    /// Methods that can continue.
    pub methods: Vec<String>,
    /// The attempt succeeded but more authentication is required.
    pub partial: bool,
}

impl Transport {
    /// Connects to `host:port` over TCP; `timeout` bounds the connect and becomes the
    /// default for later blocking calls.
    pub fn connect(host: &str, port: u16, timeout: Option<Duration>) -> Result<Transport> {
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            let attempt = match timeout {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(socket) => {
                    let t = Transport::new(socket);
                    *t.timeout.lock() = timeout.or(Some(DEFAULT_TIMEOUT));
                    return Ok(t);
                }
                Err(e) => last = Some(e),
            }
        }
        let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        Err(Error::new(
            ErrorKind::Io,
            format!("connect to {host} port {port} failed: {why}"),
        ))
    }

    /// Wraps a connected TCP socket.
    pub fn new(socket: TcpStream) -> Transport {
        Transport::over(ByteStream::tcp(socket))
    }

    /// Runs over any byte stream: a Unix socket, a socketpair, pipes, a child process.
    pub fn over(stream: ByteStream) -> Transport {
        let peer = stream.peer_addr();
        Transport {
            stream: Mutex::new(Some(stream)),
            preferences: Mutex::new(Preferences::default()),
            driver: Mutex::new(None),
            timeout: Mutex::new(Some(DEFAULT_TIMEOUT)),
            closed: AtomicBool::new(false),
            peer,
            pending_settings: Mutex::new(Vec::new()),
            log_name: Mutex::new("sekura.transport".to_owned()),
            hexdump: AtomicBool::new(false),
            server_settings: Mutex::new(server::ServerSettings::default()),
            subsystems: Arc::default(),
        }
    }

    /// Sets how long blocking calls (handshake, authentication, channel open) wait;
    /// `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        *self.timeout.lock() = timeout;
    }

    fn timeout(&self) -> Option<Duration> {
        *self.timeout.lock()
    }

    /// Sets the ordered algorithm list for `kind`; takes effect at the next key exchange (a
    /// client's re-exchange too; a started server refuses).
    pub fn set_preferred(&self, kind: AlgorithmKind, names: &str) -> Result<()> {
        let mut preferences = self.preferences.lock();
        let mut updated = preferences.clone();
        updated.set(kind, names)?;
        let running = self.driver.lock().as_ref().map(|d| Arc::clone(&d.shared));
        if let Some(shared) = running {
            shared.with(|c| c.set_preferences(updated.clone()))?;
        }
        *preferences = updated;
        Ok(())
    }

    /// The ordered algorithm list for `kind`.
    pub fn preferred(&self, kind: AlgorithmKind) -> Vec<&'static str> {
        self.preferences.lock().get(kind).to_vec()
    }

    fn shared(&self) -> Result<Arc<Shared>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the transport is closed"));
        }
        self.driver
            .lock()
            .as_ref()
            .map(|d| Arc::clone(&d.shared))
            .ok_or_else(|| Error::new(ErrorKind::State, "the transport has not been started"))
    }

    /// Runs the version exchange and first key exchange as a client, verifying the server's
    /// signature. The host key is then available from [`Transport::remote_server_key`]; the
    /// caller decides whether it trusts it before authenticating.
    pub fn start_client(&self) -> Result<()> {
        let stream = self
            .stream
            .lock()
            .take()
            .ok_or_else(|| Error::new(ErrorKind::State, "the transport was already started"))?;
        let mut conn = Connection::client(self.preferences.lock().clone(), Box::new(OsRandom));
        for setting in self.pending_settings.lock().drain(..) {
            setting(&mut conn);
        }
        let driver = Driver::start(
            conn,
            stream,
            self.log_name.lock().clone(),
            self.hexdump.load(Ordering::Relaxed),
            None,
        )?;
        let shared = Arc::clone(&driver.shared);
        *self.driver.lock() = Some(driver);
        shared.wait(self.timeout(), "the key exchange", |c| {
            c.is_established().then_some(Ok(()))
        })
    }

    /// Names this transport's log messages (default "sekura.transport").
    pub fn set_log_name(&self, name: &str) {
        name.clone_into(&mut self.log_name.lock());
        if let Ok(shared) = self.shared() {
            name.clone_into(&mut shared.log_name.lock());
        }
    }

    /// Logs every packet as a hexdump at the Trace level when `on` (authentication data is
    /// never shown).
    pub fn set_hexdump(&self, on: bool) {
        self.hexdump.store(on, Ordering::Relaxed);
        if let Ok(shared) = self.shared() {
            shared.hexdump.store(on, Ordering::Relaxed);
        }
    }

    /// The peer's address (Paramiko's getpeername), if the transport has one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The server's host key, verified against the key exchange signature.
    pub fn remote_server_key(&self) -> Result<PublicKey> {
        let shared = self.shared()?;
        let conn = shared.state.lock();
        conn.host_key()
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::State, "no key exchange has completed"))
    }

    /// True while the connection is up.
    pub fn is_active(&self) -> bool {
        self.shared()
            .is_ok_and(|s| s.state.lock().error().is_none())
    }

    /// True once authentication succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.shared().is_ok_and(|s| {
            let c = s.state.lock();
            c.error().is_none() && c.is_authenticated()
        })
    }

    /// After a refusal: the methods that can continue, and whether it was a partial success.
    pub fn auth_denied(&self) -> Option<AuthDenied> {
        let shared = self.shared().ok()?;
        let conn = shared.state.lock();
        match conn.auth_status() {
            AuthStatus::Failed { methods, partial } => Some(AuthDenied {
                methods: methods.clone(),
                partial: *partial,
            }),
            _ => None,
        }
    }

    /// The server's userauth banner, if it sent one.
    pub fn banner(&self) -> Option<String> {
        self.shared().ok()?.state.lock().banner().map(str::to_owned)
    }

    fn authenticate(&self, send: impl FnOnce(&mut Connection) -> Result<()>) -> Result<()> {
        let shared = self.shared()?;
        self.await_service(&shared)?;
        shared.with(send)?;
        self.await_auth_result(&shared, |_| None)
    }

    /// Waits for the server's verdict; `on_info` answers keyboard-interactive rounds.
    fn await_auth_result(
        &self,
        shared: &Shared,
        mut on_info: impl FnMut(&InfoRequest) -> Option<Vec<String>>,
    ) -> Result<()> {
        loop {
            let status = shared.wait(self.timeout(), "the authentication result", |c| {
                match c.auth_status() {
                    AuthStatus::Pending(_) => None,
                    s => Some(Ok(s.clone())),
                }
            })?;
            match status {
                AuthStatus::Success => return Ok(()),
                AuthStatus::Failed { methods, partial } => {
                    let verdict = if partial {
                        "partial success; more authentication required"
                    } else {
                        "permission denied"
                    };
                    return Err(Error::new(
                        ErrorKind::AuthDenied,
                        format!(
                            "authentication failed ({verdict}); methods that can continue: {}",
                            methods.join(",")
                        ),
                    ));
                }
                AuthStatus::InfoRequest(req) => {
                    let Some(answers) = on_info(&req) else {
                        return Err(Error::new(
                            ErrorKind::AuthDenied,
                            "keyboard-interactive authentication abandoned",
                        ));
                    };
                    shared.with(|c| c.auth_info_response(&answers))?;
                }
                AuthStatus::AwaitingService | AuthStatus::Ready | AuthStatus::Pending(_) => {
                    return Err(Error::new(ErrorKind::Internal, "authentication state lost"))
                }
            }
        }
    }

    /// "none" authentication: succeeds only on servers that need none; otherwise the
    /// refusal lists the methods to try.
    pub fn auth_none(&self, user: &str) -> Result<()> {
        self.authenticate(|c| c.auth_none(user))
    }

    /// Password authentication.
    pub fn auth_password(&self, user: &str, password: &str) -> Result<()> {
        self.authenticate(|c| c.auth_password(user, password))
    }

    /// Public key authentication with a private key.
    pub fn auth_publickey(&self, user: &str, key: &PrivateKey) -> Result<()> {
        self.authenticate(|c| c.auth_publickey(user, key))
    }

    /// Public key authentication where the private key lives elsewhere (an ssh-agent, a
    /// token): `sign(algorithm, data)` returns the SSH signature blob. It runs on the calling
    /// thread without any lock held, so it may do I/O.
    pub fn auth_publickey_with(
        &self,
        user: &str,
        key: &PublicKey,
        sign: impl FnOnce(&str, &[u8]) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let shared = self.shared()?;
        self.await_service(&shared)?;
        let signing = shared.with(|c| c.publickey_to_sign(user, key))?;
        let signature = sign(signing.algorithm, &signing.data)?;
        shared.with(|c| {
            c.auth_publickey_signed(user, signing.algorithm, key.as_blob(), &signature)
        })?;
        self.await_auth_result(&shared, |_| None)
    }

    /// Public key authentication with an OpenSSH user certificate for `key`: the request
    /// names the certificate's algorithm and carries the certificate; `key` signs.
    pub fn auth_publickey_certificate(
        &self,
        user: &str,
        key: &PrivateKey,
        cert: &Certificate,
    ) -> Result<()> {
        if cert.public_key() != &key.public_key() {
            return Err(Error::invalid_arg("the certificate is not for this key"));
        }
        let shared = self.shared()?;
        self.await_service(&shared)?;
        let (cert_algorithm, data, signature_algorithm) = shared.with(|c| {
            let wanted = c.signature_algorithm(cert.public_key());
            let pairs = cert.signature_algorithms(true);
            let (cert_alg, sig_alg) = pairs
                .iter()
                .find(|(_, sig)| *sig == wanted)
                .or(pairs.first())
                .copied()
                .ok_or_else(|| Error::invalid_arg("certificate of an unsupported type"))?;
            let session_id = c
                .session_id()
                .ok_or_else(|| Error::new(ErrorKind::State, "no session yet"))?;
            let data = crate::proto::userauth::publickey_signed_data(
                session_id,
                user,
                cert_alg,
                cert.as_blob(),
            );
            Ok::<_, Error>((cert_alg, data, sig_alg))
        })?;
        let signature = key.sign(signature_algorithm, &data)?;
        shared
            .with(|c| c.auth_publickey_signed(user, cert_algorithm, cert.as_blob(), &signature))?;
        self.await_auth_result(&shared, |_| None)
    }

    /// Public key authentication with the identities of an ssh-agent, tried in the agent's
    /// order until one is accepted. The agent signs; no private key passes through here.
    pub fn auth_agent(&self, user: &str, agent: &Agent) -> Result<()> {
        let identities = agent.identities()?;
        if identities.is_empty() {
            return Err(Error::new(
                ErrorKind::AuthDenied,
                "the ssh-agent holds no usable identities",
            ));
        }
        let mut last = None;
        for identity in &identities {
            let result = self.auth_publickey_with(user, &identity.public, |algorithm, data| {
                agent.sign_with_public_key(&identity.public, data, algorithm)
            });
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AuthDenied => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| Error::new(ErrorKind::AuthDenied, "no agent identity was accepted")))
    }

    fn await_service(&self, shared: &Shared) -> Result<()> {
        shared.wait(self.timeout(), "the server to accept authentication", |c| {
            (*c.auth_status() != AuthStatus::AwaitingService).then_some(Ok(()))
        })
    }

    /// Keyboard-interactive authentication; `answer` is called for each round of prompts on
    /// the calling thread and returns one answer per prompt, or `None` to give up.
    pub fn auth_interactive(
        &self,
        user: &str,
        answer: impl FnMut(&InfoRequest) -> Option<Vec<String>>,
    ) -> Result<()> {
        let shared = self.shared()?;
        self.await_service(&shared)?;
        shared.with(|c| c.auth_keyboard_interactive(user))?;
        self.await_auth_result(&shared, answer)
    }

    /// Opens a session channel (for exec, shell or a subsystem).
    pub fn open_session(&self) -> Result<Channel> {
        Channel::open(self.shared()?, self.timeout(), "session", &[])
    }

    /// Opens a "direct-tcpip" channel: the server connects to `destination` (host, port) on
    /// behalf of `origin` (Paramiko's open_channel("direct-tcpip", ...)).
    pub fn open_direct_tcpip(
        &self,
        destination: (&str, u32),
        origin: (&str, u32),
    ) -> Result<Channel> {
        let mut extra = crate::wire::Writer::new();
        extra
            .string(destination.0)
            .u32(destination.1)
            .string(origin.0)
            .u32(origin.1);
        Channel::open(
            self.shared()?,
            self.timeout(),
            "direct-tcpip",
            extra.as_bytes(),
        )
    }

    /// Sends DISCONNECT and closes the stream. Channels become closed.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let driver = self.driver.lock().take();
        if let Some(mut d) = driver {
            d.shared
                .with(|c| c.disconnect(msg::reason::BY_APPLICATION, "closed by application"));
            d.stop(Duration::from_secs(1));
        }
        self.stream.lock().take();
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.close();
    }
}
