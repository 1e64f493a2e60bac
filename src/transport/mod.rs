//! Drives a [`Connection`] over a byte stream (a socket, pipes, a child process):
//! Paramiko's Transport. Two drivers run the same read and write halves (`driver.rs`): two
//! background threads, for which blocking calls wait with a timeout, or the application's
//! own event loop ([`Transport::caller_driven`]), for which calls that would wait return
//! `Again` and are repeated after [`Transport::process`].

mod auth;
mod channel;
mod driver;
mod forwarding;
mod in_flight;
mod long_lived;
mod readiness;
mod server;
mod server_dispatch;
pub mod server_handler;
mod session;
mod shared_connection;
mod stream;
mod threads;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use crate::proto::server::{DEFAULT_LOGIN_GRACE, DEFAULT_MAX_AUTH_TRIES};
pub use channel::Channel;
pub use driver::Wanted;
pub use long_lived::DISCONNECT_BY_APPLICATION;
pub use server::{read_moduli_file, SubsystemHandler};
pub use server_handler::{
    AuthResult, DirectTcpip, InteractiveQuery, InteractiveResult, OpenResult, PtyRequest,
    ServerHandler, WindowChange, X11Request,
};
pub use stream::ByteStream;

use crate::crypto::rng::OsRandom;
use crate::keys::PublicKey;
use crate::proto::{msg, AlgorithmKind, Connection, ConnectionConfig};
use crate::{Error, ErrorKind, Result};
use driver::CallerDriven;
use in_flight::{InFlight, InFlightSlot};
use server_dispatch::ServerDecisions;
use shared_connection::SharedConnection;
use threads::Threads;

/// How long blocking transport calls wait unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One SSH connection, client or server side.
///
/// Thread safety: all methods take `&self` and may be called from several threads.
pub struct Transport {
    /// The stream, until the transport starts.
    stream: Mutex<Option<ByteStream>>,
    /// Algorithms, key renewal, keepalive and channel sizes, shared with other transports;
    /// a setting changed on this transport copies it first.
    config: Mutex<Arc<ConnectionConfig>>,
    running: Mutex<Option<Running>>,
    /// No threads: the application's loop calls [`Transport::process`].
    caller_driven: bool,
    /// A caller-driven transport's calls drive the stream until done instead of
    /// returning `Again`.
    blocking: AtomicBool,
    /// The call a caller-driven transport resumes when it is repeated.
    in_flight: InFlightSlot,
    timeout: Mutex<Option<Duration>>,
    closed: AtomicBool,
    /// The peer's address, when the transport runs over a socket that has one.
    peer: Option<SocketAddr>,
    /// Logger name and hexdump switch, for when the transport starts.
    log_name: Mutex<String>,
    hexdump: AtomicBool,
    /// Host keys, moduli, limits and algorithms for a server, shared with other transports.
    server_config: Mutex<Arc<crate::proto::server::ServerConfig>>,
    subsystems: server_dispatch::Subsystems,
}

/// How a started transport is driven.
enum Running {
    Threads(Threads),
    Caller(Arc<CallerDriven>),
}

impl Running {
    fn shared(&self) -> &Arc<SharedConnection> {
        match self {
            Running::Threads(t) => &t.shared,
            Running::Caller(c) => &c.shared,
        }
    }
}

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
        Transport::with_driver(stream, false)
    }

    /// Runs over `stream` with no threads: the application's event loop waits for
    /// [`Self::wanted`] on [`Self::fds`] up to [`Self::next_timeout`] and then calls
    /// [`Self::process`], which runs server decisions on its thread. Calls that would wait
    /// return [`ErrorKind::Again`] instead; repeating the same call after a `process`
    /// resumes it without sending again.
    pub fn caller_driven(stream: ByteStream) -> Transport {
        Transport::with_driver(stream, true)
    }

    fn with_driver(stream: ByteStream, caller_driven: bool) -> Transport {
        let peer = stream.peer_addr();
        Transport {
            stream: Mutex::new(Some(stream)),
            config: Mutex::default(),
            running: Mutex::new(None),
            caller_driven,
            blocking: AtomicBool::new(false),
            in_flight: InFlightSlot::default(),
            timeout: Mutex::new(Some(DEFAULT_TIMEOUT)),
            closed: AtomicBool::new(false),
            peer,
            log_name: Mutex::new("sekura.transport".to_owned()),
            hexdump: AtomicBool::new(false),
            server_config: Mutex::default(),
            subsystems: Arc::default(),
        }
    }

    /// Sets how long blocking calls (handshake, authentication, channel open) wait;
    /// `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        *self.timeout.lock() = timeout;
    }

    /// Makes a caller-driven transport's calls block (libssh's blocking mode): a call that
    /// would return `Again` instead waits in poll(2) on the calling thread and processes the
    /// stream until it is done or times out, with no thread of ours. Calls made inside
    /// [`Self::process`] (server callbacks) still return `Again`. Set it before the
    /// transport starts if several threads will call: the thread driving the stream is then
    /// woken through a pipe by the others. A threaded transport's calls always block: it
    /// refuses `false`.
    pub fn set_blocking(&self, on: bool) -> Result<()> {
        if !self.caller_driven {
            return match on {
                true => Ok(()),
                false => Err(Error::new(
                    ErrorKind::State,
                    "a threaded transport's calls always wait: create it caller-driven",
                )),
            };
        }
        self.blocking.store(on, Ordering::Relaxed);
        if let Some(running) = self.running.lock().as_ref() {
            running.shared().blocking.store(on, Ordering::Relaxed);
        }
        Ok(())
    }

    fn timeout(&self) -> Option<Duration> {
        *self.timeout.lock()
    }

    /// Sets the ordered algorithm list for `kind`; takes effect at the next key exchange (a
    /// client's re-exchange too; a started server refuses).
    pub fn set_preferred(&self, kind: AlgorithmKind, names: &str) -> Result<()> {
        let mut config = self.config.lock();
        let mut updated = config.preferences.clone();
        updated.set(kind, names)?;
        let running = self.running.lock().as_ref().map(|r| Arc::clone(r.shared()));
        if let Some(shared) = running {
            shared.with(|c| c.set_preferences(updated.clone()))?;
        }
        Arc::make_mut(&mut config).preferences = updated;
        Ok(())
    }

    /// The ordered algorithm list for `kind`.
    pub fn preferred(&self, kind: AlgorithmKind) -> Vec<&'static str> {
        self.config.lock().preferences.get(kind).to_vec()
    }

    /// Takes algorithms, key renewal, keepalive and channel sizes from `config`, shared
    /// with other transports rather than copied; a later setting on this transport copies
    /// it first. Set before the transport starts.
    pub fn set_connection_config(&self, config: Arc<ConnectionConfig>) -> Result<()> {
        if self.running.lock().is_some() {
            return Err(Error::new(
                ErrorKind::State,
                "the connection configuration is set before the transport starts",
            ));
        }
        *self.config.lock() = config;
        Ok(())
    }

    /// The configuration the transport starts (or started) with.
    fn connection_config(&self) -> Arc<ConnectionConfig> {
        Arc::clone(&self.config.lock())
    }

    fn shared(&self) -> Result<Arc<SharedConnection>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the transport is closed"));
        }
        self.running
            .lock()
            .as_ref()
            .map(|r| Arc::clone(r.shared()))
            .ok_or_else(|| Error::new(ErrorKind::State, "the transport has not been started"))
    }

    /// Runs the version exchange and first key exchange as a client, verifying the server's
    /// signature. The host key is then available from [`Transport::remote_server_key`]; the
    /// caller decides whether it trusts it before authenticating.
    pub fn start_client(&self) -> Result<()> {
        if self
            .in_flight
            .resume(|op| op == InFlight::Handshake)?
            .is_none()
        {
            let conn = Connection::client(&self.connection_config(), Box::new(OsRandom));
            self.begin(conn, None)?;
        }
        self.await_handshake()
    }

    /// Starts driving `conn` over the stream, with threads or for the caller's loop.
    fn begin(&self, conn: Connection, server: Option<ServerDecisions>) -> Result<()> {
        let stream = self
            .stream
            .lock()
            .take()
            .ok_or_else(|| Error::new(ErrorKind::State, "the transport was already started"))?;
        let shared = Arc::new(SharedConnection::new(
            conn,
            // A blocking call drives the stream while others wait: they wake it with
            // their output through the pipe.
            stream.into_io(!self.caller_driven || self.blocking.load(Ordering::Relaxed))?,
            self.log_name.lock().clone(),
            self.hexdump.load(Ordering::Relaxed),
            self.caller_driven,
        ));
        let running = if self.caller_driven {
            shared
                .blocking
                .store(self.blocking.load(Ordering::Relaxed), Ordering::Relaxed);
            let driver = Arc::new(CallerDriven::new(Arc::clone(&shared), server));
            let _ = shared.driver.set(Arc::downgrade(&driver));
            Running::Caller(driver)
        } else {
            Running::Threads(Threads::start(shared, server)?)
        };
        *self.running.lock() = Some(running);
        Ok(())
    }

    /// True while a caller-driven transport's start waits for the key exchange: repeating
    /// the start call goes on with it.
    pub fn is_starting(&self) -> bool {
        self.in_flight
            .resume(|o| o == InFlight::Handshake)
            .is_ok_and(|op| op.is_some())
    }

    fn await_handshake(&self) -> Result<()> {
        let shared = self.shared()?;
        let result = shared.wait(self.timeout(), "the key exchange", |c| {
            c.is_established().then_some(Ok(()))
        });
        self.in_flight.settle(InFlight::Handshake, result)
    }

    /// The descriptors a caller-driven transport's loop polls: the one it reads from and
    /// the one it writes to (the same for a socket).
    pub fn fds(&self) -> Option<(RawFd, RawFd)> {
        if let Some(stream) = self.stream.lock().as_ref() {
            return Some(stream.fds());
        }
        self.shared().ok().map(|s| s.io.fds())
    }

    /// What a caller-driven transport waits for on [`Self::fds`] before the next
    /// [`Self::process`]: nothing before it starts or once it has ended.
    pub fn wanted(&self) -> Wanted {
        match self.running.lock().as_ref() {
            Some(Running::Caller(driver)) => driver.wanted(),
            _ => Wanted::default(),
        }
    }

    /// How long a caller-driven transport's loop may wait before calling [`Self::process`]
    /// anyway: until its next timer (keepalive, rekey, login grace), `None` for none.
    pub fn next_timeout(&self) -> Option<Duration> {
        match self.running.lock().as_ref() {
            Some(Running::Caller(driver)) => driver.next_timeout(),
            _ => None,
        }
    }

    /// Does what a caller-driven transport's stream and timers have ready: reads and
    /// handles input (server decisions run here, on this thread), fires due timers and
    /// writes queued output as far as the stream takes it. Never waits. Fails once the
    /// connection has ended, with the reason; a threaded transport refuses with `State`.
    pub fn process(&self) -> Result<()> {
        match self.running.lock().as_ref() {
            Some(Running::Caller(driver)) => driver.process(),
            Some(Running::Threads(_)) => Err(Error::new(
                ErrorKind::State,
                "this transport runs its own threads: only a caller-driven transport is processed",
            )),
            None => Err(Error::new(
                ErrorKind::State,
                "the transport has not been started",
            )),
        }
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

    /// Opens a session channel (for exec, shell or a subsystem).
    pub fn open_session(&self) -> Result<Channel> {
        self.open_channel("session", &[])
    }

    /// Opens a channel of `kind` with the type-specific `extra` data and waits for the
    /// peer's answer (a caller-driven repeat resumes the open under way).
    fn open_channel(&self, kind: &str, extra: &[u8]) -> Result<Channel> {
        let shared = self.shared()?;
        let id = match self.in_flight.resume(|o| matches!(o, InFlight::Open(_)))? {
            Some(InFlight::Open(id)) => id,
            _ => Channel::begin_open(&shared, kind, extra)?,
        };
        let result = Channel::finish_open(shared, id, self.timeout(), kind);
        self.in_flight.settle(InFlight::Open(id), result)
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
        self.open_channel("direct-tcpip", extra.as_bytes())
    }

    /// Sends DISCONNECT and closes the stream; never waits. Channels become closed. A
    /// threaded transport's writer goes on flushing in the background for up to a second;
    /// a caller-driven one writes what the stream takes at once.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let running = self.running.lock().take();
        if let Some(running) = running {
            running
                .shared()
                .with(|c| c.disconnect(msg::reason::BY_APPLICATION, "closed by application"));
            match running {
                Running::Threads(threads) => threads.stop(Duration::from_secs(1)),
                Running::Caller(driver) => driver.finish(),
            }
        }
        self.stream.lock().take();
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.close();
    }
}
