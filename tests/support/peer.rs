//! A scripted peer for bad-input tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
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
/// ```ignore
/// let peer = FakePeer::start(|mut s| { s.write_all(b"SSH-2.0-evil\r\n\xff\xff\xff\xff").unwrap(); });
/// // connect the client under test to peer.port, expect an error
/// peer.join();
/// ```
pub struct FakePeer<T: Send + 'static = ()> {
    /// The port on 127.0.0.1.
    pub port: u16,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> FakePeer<T> {
    /// Listens on a free port and returns at once; the closure runs on a thread when a client
    /// connects. The stream has [`PEER_TIMEOUT`] read and write timeouts. If no client comes
    /// within [`PEER_TIMEOUT`], the thread panics.
    pub fn start(script: impl FnOnce(TcpStream) -> T + Send + 'static) -> FakePeer<T> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake peer");
        let port = listener.local_addr().expect("local_addr").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let thread = std::thread::Builder::new()
            .name(format!("fake-peer-{port}"))
            .spawn(move || {
                let stream = accept_one(&listener, PEER_TIMEOUT);
                drop(listener);
                script(stream)
            })
            .expect("spawn fake peer thread");
        FakePeer {
            port,
            thread: Some(thread),
        }
    }

    /// 127.0.0.1 and the port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for the script to end and returns its result; a panic in the script is
    /// re-raised here.
    pub fn join(mut self) -> T {
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T: Send + 'static> Drop for FakePeer<T> {
    fn drop(&mut self) {
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

/// Accepts one connection on a non-blocking listener within `timeout`, and makes it blocking
/// with read and write timeouts.
pub fn accept_one(listener: &TcpListener, timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
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
