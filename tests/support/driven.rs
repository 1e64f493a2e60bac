//! Caller-driven transports in a test: what an event loop does, on the test's own thread.
//! A call that returns `Again` is repeated after waiting in poll(2) for what the transport
//! wants (at most its next timeout) and processing.

use std::time::{Duration, Instant};

use sekura::transport::{ByteStream, Transport};
use sekura::{ErrorKind, Result};

/// How long one driven call may keep returning `Again`.
pub const TIMEOUT: Duration = Duration::from_secs(60);

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
