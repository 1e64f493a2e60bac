//! A scripted peer for bad-input tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a [`FakePeer`] waits for its one connection, and the read and write timeout of the
/// stream given to its script, so that a test whose client never comes or never answers
/// fails instead of hanging.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// A scripted endpoint on 127.0.0.1: accepts one connection and runs a closure with it (write
/// garbage, write a version line and stop, read what the client sends, close). The closure's
/// result comes back from [`FakePeer::join`]; a panic in it (a failed assertion about what the
/// client sent) fails the test at `join` or drop.
///
/// The peer serves the test's own client only ([`FakePeer::connect`]): a stray connection to
/// its port (anything on the machine may connect to a loopback port) is turned away instead
/// of taking the script, which would leave the test's client reset in the backlog.
///
/// ```ignore
/// let peer = FakePeer::start(|mut s| { s.write_all(b"SSH-2.0-evil\r\n\xff\xff\xff\xff").unwrap(); });
/// let stream = peer.connect();
/// // run the client under test on `stream`, expect an error
/// peer.join();
/// ```
pub struct FakePeer<T: Send + 'static = ()> {
    /// The port on 127.0.0.1.
    pub port: u16,
    thread: Option<JoinHandle<T>>,
    /// Tells the thread the address of the test's client; `None` for a peer that serves
    /// whichever client comes first.
    client: Option<Sender<SocketAddr>>,
}

impl<T: Send + 'static> FakePeer<T> {
    /// Listens on a free port and returns at once; the closure runs on a thread once the
    /// test's client has connected with [`FakePeer::connect`]. The stream has
    /// [`PEER_TIMEOUT`] read and write timeouts. If no client comes within [`PEER_TIMEOUT`],
    /// the thread panics.
    pub fn start(script: impl FnOnce(TcpStream) -> T + Send + 'static) -> FakePeer<T> {
        let (client, registered) = mpsc::channel();
        let mut peer = FakePeer::spawn(Some(registered), script);
        peer.client = Some(client);
        peer
    }

    /// Like [`FakePeer::start`], for a program the test runs (OpenSSH's `ssh`), whose address
    /// the test cannot know: the script takes the first client that connects.
    pub fn start_for_program(script: impl FnOnce(TcpStream) -> T + Send + 'static) -> FakePeer<T> {
        FakePeer::spawn(None, script)
    }

    fn spawn(
        registered: Option<Receiver<SocketAddr>>,
        script: impl FnOnce(TcpStream) -> T + Send + 'static,
    ) -> FakePeer<T> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake peer");
        let port = listener.local_addr().expect("local_addr").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let thread = std::thread::Builder::new()
            .name(format!("fake-peer-{port}"))
            .spawn(move || {
                let client = registered.map(|registered| {
                    registered
                        .recv_timeout(PEER_TIMEOUT)
                        .expect("fake peer: the test never connected with FakePeer::connect")
                });
                let stream = accept_from(&listener, client, PEER_TIMEOUT);
                drop(listener);
                script(stream)
            })
            .expect("spawn fake peer thread");
        FakePeer {
            port,
            thread: Some(thread),
            client: None,
        }
    }

    /// 127.0.0.1 and the port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Connects the test's client to the peer, which then runs its script on this
    /// connection.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr())
            .unwrap_or_else(|e| panic!("connect to the fake peer on {}: {e}", self.addr()));
        let client = self
            .client
            .as_ref()
            .expect("FakePeer::connect on a peer started for a program");
        let local = stream.local_addr().expect("local_addr");
        client.send(local).expect("fake peer thread alive");
        stream
    }

    /// Waits for the script to end and returns its result; a panic in the script is
    /// re-raised here.
    pub fn join(mut self) -> T {
        self.client = None;
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T: Send + 'static> Drop for FakePeer<T> {
    fn drop(&mut self) {
        // A thread still waiting to learn its client stops waiting.
        self.client = None;
        if let Some(thread) = self.thread.take() {
            // The script ends on its own: its stream has timeouts, and the accept a deadline.
            let result = thread.join();
            if let Err(panic) = result {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(panic);
                }
                // The test failed too; the peer's own failure may be why.
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                eprintln!("the fake peer failed as well: {why}");
            }
        }
    }
}

/// Accepts one connection from `client` (any client if `None`) on a non-blocking listener
/// within `timeout`, turning others away, and makes it blocking with read and write
/// timeouts.
fn accept_from(listener: &TcpListener, client: Option<SocketAddr>, timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, from)) if client.is_none_or(|client| client == from) => {
                stream.set_nonblocking(false).expect("blocking stream");
                stream
                    .set_read_timeout(Some(timeout))
                    .expect("read timeout");
                stream
                    .set_write_timeout(Some(timeout))
                    .expect("write timeout");
                stream.set_nodelay(true).expect("nodelay");
                return stream;
            }
            Ok((_, from)) => eprintln!("fake peer: turned away {from}, not the test's client"),
            // A client that gave up before it was accepted, or a signal: wait for the next.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                if Instant::now() >= deadline {
                    panic!("fake peer: no client connected within {timeout:?}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("fake peer: accept failed: {e}"),
        }
    }
}

/// Reads from `stream` until `needle` has been seen (returns everything read so far), EOF or
/// an error (returns `None`). For scripts that wait for the client's version line or a
/// message.
pub fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if seen.windows(needle.len().max(1)).any(|w| w == needle) {
            return Some(seen);
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}
