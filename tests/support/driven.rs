//! Caller-driven transports in a test: what an event loop does, on the test's own thread.
//! A call that returns `Again` is repeated after waiting in poll(2) for what the transport
//! wants (at most its next timeout) and processing.
//!
//! The suite's own transports ([`transport`]) run on the driver that `SEKURA_TEST_DRIVER`
//! names: `threads` (the default) or `driven`, caller-driven and blocking, so that every
//! call drives the stream on the test's thread. `make test` runs the suites where the
//! driver matters once with each.

use std::time::{Duration, Instant};

use sekura::transport::{ByteStream, Transport};
use sekura::{ErrorKind, Result};

/// How long one driven call may keep returning `Again`.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The driver the suite's transports run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The transport's two threads.
    Threads,
    /// No threads: each blocking call drives the stream on its own thread.
    Driven,
}

/// The driver `SEKURA_TEST_DRIVER` names (`threads` or `driven`; unset is `threads`).
pub fn driver() -> Driver {
    match std::env::var("SEKURA_TEST_DRIVER").as_deref() {
        Err(_) | Ok("threads") => Driver::Threads,
        Ok("driven") => Driver::Driven,
        Ok(other) => panic!("SEKURA_TEST_DRIVER={other}: expected threads or driven"),
    }
}

/// A transport over `stream` on the suite's [`driver`], its blocking calls bounded by
/// `timeout`.
pub fn transport(stream: ByteStream, timeout: Duration) -> Transport {
    let t = match driver() {
        Driver::Threads => Transport::over(stream),
        Driver::Driven => {
            let t = Transport::caller_driven(stream);
            t.set_blocking(true)
                .expect("a caller-driven transport can block");
            t
        }
    };
    t.set_timeout(Some(timeout));
    t
}

/// A transport connected to `127.0.0.1:port` on the suite's [`driver`].
pub fn connect_on_driver(port: u16, timeout: Duration) -> Transport {
    let socket = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    transport(ByteStream::tcp(socket), timeout)
}

/// A caller-driven client transport connected to `127.0.0.1:port`.
pub fn connect(port: u16) -> Transport {
    let socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    Transport::caller_driven(ByteStream::tcp(socket))
}

/// Repeats `call` until it stops returning `Again`, driving `t` in between.
pub fn drive<R>(t: &Transport, mut call: impl FnMut() -> Result<R>) -> Result<R> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match call() {
            Err(e) if e.kind() == ErrorKind::Again => {}
            other => return other,
        }
        assert!(
            Instant::now() < deadline,
            "a call still would block after {TIMEOUT:?}"
        );
        step(t, Some(Duration::from_secs(1)))?;
    }
}

/// Waits in poll(2) for what `t` wants, at most its next timeout or `cap`, then processes.
pub fn step(t: &Transport, cap: Option<Duration>) -> Result<()> {
    let wanted = t.wanted();
    let (read, write) = t.fds().expect("a started transport has descriptors");
    let events = |on: bool, event: libc::c_short| if on { event } else { 0 };
    let mut fds = [
        libc::pollfd {
            fd: read,
            events: events(wanted.read, libc::POLLIN),
            revents: 0,
        },
        libc::pollfd {
            fd: write,
            events: events(wanted.write, libc::POLLOUT),
            revents: 0,
        },
    ];
    let timeout = match (t.next_timeout(), cap) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let ms = timeout.map_or(-1, |d| i32::try_from(d.as_millis()).unwrap_or(i32::MAX));
    // SAFETY: two valid pollfd entries.
    unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    t.process()
}

/// Drives `t` for `duration` with no call waiting (timers only).
pub fn idle(t: &Transport, duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        step(t, Some(end.saturating_duration_since(Instant::now())))?;
    }
    Ok(())
}

/// Lets `t` run for `duration` while the test makes no call on it: a threaded transport
/// runs on its own, a caller-driven one only while someone drives it, so here the test does.
pub fn let_run(t: &Transport, duration: Duration) {
    let end = Instant::now() + duration;
    if driver() == Driver::Driven && t.fds().is_some() {
        // Fails once the connection has ended; the rest of the time then just passes.
        let _ = idle(t, duration);
    }
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
}
