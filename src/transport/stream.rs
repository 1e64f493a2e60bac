//! The byte streams a transport runs over: TCP and Unix sockets, a pair of descriptors
//! (pipes, a socketpair, another program's stdin and stdout) and a child process started
//! through `/bin/sh -c` (ProxyCommand). The descriptors are non-blocking; whoever drives the
//! connection (its threads, or the application's event loop) waits in poll(2) with the
//! connection's next timer as the timeout, never in socket options, so keepalive, rekey and
//! login deadlines work on every kind. A wake-up pipe ends the reader thread's wait when the
//! transport stops or an application thread changes a timer.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::driver::Wanted;
use crate::{Error, ErrorKind, Result};

/// A connected, bidirectional byte stream, not yet driven.
pub struct ByteStream {
    read: OwnedFd,
    /// None when `read` is a socket, written as well.
    write: Option<OwnedFd>,
    peer: Option<SocketAddr>,
    tcp: bool,
    child: Option<Child>,
}

impl ByteStream {
    /// A connected TCP socket (Nagle's algorithm off: SSH packets are small and urgent).
    pub fn tcp(socket: TcpStream) -> ByteStream {
        let _ = socket.set_nodelay(true);
        let peer = socket.peer_addr().ok();
        ByteStream {
            read: OwnedFd::from(socket),
            write: None,
            peer,
            tcp: true,
            child: None,
        }
    }

    /// A connected Unix socket.
    pub fn unix(socket: UnixStream) -> ByteStream {
        ByteStream::socket(OwnedFd::from(socket))
    }

    /// A connected stream socket of any family (TCP, Unix, a socketpair's end).
    pub fn socket(fd: OwnedFd) -> ByteStream {
        if is_tcp(fd.as_raw_fd()) {
            ByteStream::tcp(TcpStream::from(fd))
        } else {
            ByteStream {
                read: fd,
                write: None,
                peer: None,
                tcp: false,
                child: None,
            }
        }
    }

    /// A descriptor to read from and another to write to (two pipes, another program's
    /// stdout and stdin).
    pub fn pipes(read: OwnedFd, write: OwnedFd) -> ByteStream {
        ByteStream {
            read,
            write: Some(write),
            peer: None,
            tcp: false,
            child: None,
        }
    }

    /// Runs `command` through `/bin/sh -c` and talks SSH over its stdin and stdout; its
    /// stderr is the application's. The child is killed and reaped with the transport.
    pub fn command(command: &str) -> Result<ByteStream> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot run {command:?}: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::new(
                ErrorKind::Internal,
                "the child's pipes are missing",
            ));
        };
        let mut stream = ByteStream::pipes(OwnedFd::from(stdout), OwnedFd::from(stdin));
        stream.child = Some(child);
        Ok(stream)
    }

    /// The peer's address, for a TCP socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The descriptor read from and the one written to (the same for a socket).
    pub fn fds(&self) -> (RawFd, RawFd) {
        let write = self.write.as_ref().unwrap_or(&self.read);
        (self.read.as_raw_fd(), write.as_raw_fd())
    }

    /// Makes the descriptors non-blocking (which other holders of the same open files
    /// share) and, for a reader thread to be woken, adds the wake-up pipe (a caller-driven
    /// connection needs none: its loop is the application's).
    pub(super) fn into_io(self, wake_pipe: bool) -> Result<StreamIo> {
        set_nonblocking(self.read.as_raw_fd())?;
        if let Some(write) = &self.write {
            set_nonblocking(write.as_raw_fd())?;
        }
        let wake = if wake_pipe { Some(pipe()?) } else { None };
        Ok(StreamIo {
            read: self.read,
            write: self.write,
            tcp: self.tcp,
            wake,
            child: self.child,
        })
    }
}

/// What a wait for input found.
pub(super) enum Wait {
    /// The stream has input (or an error or EOF to report).
    Readable,
    /// The timeout passed first.
    TimedOut,
    /// [`StreamIo::wake`] was called.
    Woken,
}

/// What one non-blocking read found.
pub(super) enum Received {
    /// Bytes were read.
    Data(usize),
    /// Nothing is there now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

/// A stream being driven: non-blocking descriptors, a wake-up pipe, and the child process
/// that owns the pipes (ProxyCommand).
pub(super) struct StreamIo {
    read: OwnedFd,
    write: Option<OwnedFd>,
    tcp: bool,
    /// The wake-up pipe's read and write ends, for a reader thread.
    wake: Option<(OwnedFd, OwnedFd)>,
    child: Option<Child>,
}

impl StreamIo {
    /// The descriptors to poll: the one read from and the one written to (the same for a
    /// socket).
    pub fn fds(&self) -> (RawFd, RawFd) {
        (self.read.as_raw_fd(), self.write_fd())
    }

    /// Waits up to `timeout` (forever if `None`) for input or a wake-up.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<Wait> {
        let mut fds = [
            pollfd(self.read.as_raw_fd(), libc::POLLIN),
            // poll(2) skips a negative descriptor.
            pollfd(
                self.wake.as_ref().map_or(-1, |w| w.0.as_raw_fd()),
                libc::POLLIN,
            ),
        ];
        if !poll(&mut fds, timeout)? {
            return Ok(Wait::TimedOut);
        }
        if fds.get(1).is_some_and(|f| f.revents != 0) {
            self.drain_wakes();
            return Ok(Wait::Woken);
        }
        Ok(Wait::Readable)
    }

    /// Waits up to `timeout` (forever if `None`) for what a caller-driven connection wants,
    /// or a wake-up: another thread queued output or changed a timer.
    pub fn wait_for(&self, wanted: Wanted, timeout: Option<Duration>) -> io::Result<()> {
        let events = |on: bool, event| if on { event } else { 0 };
        let mut fds = [
            pollfd(self.read.as_raw_fd(), events(wanted.read, libc::POLLIN)),
            pollfd(self.write_fd(), events(wanted.write, libc::POLLOUT)),
            pollfd(
                self.wake.as_ref().map_or(-1, |w| w.0.as_raw_fd()),
                libc::POLLIN,
            ),
        ];
        poll(&mut fds, timeout)?;
        if fds.get(2).is_some_and(|f| f.revents != 0) {
            self.drain_wakes();
        }
        Ok(())
    }

    /// Reads what the stream holds now into `buf`, without waiting.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Received> {
        if self.tcp {
            ack_promptly(self.read.as_raw_fd());
        }
        // SAFETY: `buf` is writable for its length; the descriptor is ours.
        let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 if !buf.is_empty() => Ok(Received::Eof),
            n if n > 0 => Ok(Received::Data(n.unsigned_abs())),
            0 => Ok(Received::WouldBlock),
            _ => {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {
                        Ok(Received::WouldBlock)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    fn write_fd(&self) -> RawFd {
        self.write.as_ref().unwrap_or(&self.read).as_raw_fd()
    }

    /// Writes what the stream takes now of `data`, without waiting; 0 when it is full.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `data` is readable for its length; the descriptor is ours.
            let n = unsafe { libc::write(self.write_fd(), data.as_ptr().cast(), data.len()) };
            if n >= 0 {
                return Ok(n.unsigned_abs());
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        }
    }

    /// Waits up to `timeout` for the stream to take more output.
    pub fn wait_writable(&self, timeout: Duration) -> io::Result<()> {
        let mut fds = [pollfd(self.write_fd(), libc::POLLOUT)];
        poll(&mut fds, Some(timeout)).map(drop)
    }

    /// Ends the reader's current (or next) wait with [`Wait::Woken`].
    pub fn wake(&self) {
        let Some((_, write)) = &self.wake else {
            return;
        };
        let byte = [1u8];
        // SAFETY: one byte from a live buffer into our non-blocking pipe; a full pipe
        // already wakes the reader.
        unsafe { libc::write(write.as_raw_fd(), byte.as_ptr().cast(), 1) };
    }

    fn drain_wakes(&self) {
        let Some((read, _)) = &self.wake else {
            return;
        };
        let mut bytes = [0u8; 64];
        // SAFETY: reads into a live buffer of its length from our non-blocking pipe.
        while unsafe { libc::read(read.as_raw_fd(), bytes.as_mut_ptr().cast(), 64) } > 0 {}
    }
}

impl Drop for StreamIo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// poll(2); false when the timeout passed. EINTR counts as a timeout: callers loop.
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<bool> {
    let ms = timeout.map_or(-1, |t| {
        libc::c_int::try_from(t.as_millis().max(1)).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: `fds` is a valid array of its length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    match n {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Io,
            format!(
                "cannot make the stream non-blocking: {}",
                io::Error::last_os_error()
            ),
        ))
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(Error::new(
            ErrorKind::Io,
            format!("cannot make a pipe: {}", io::Error::last_os_error()),
        ));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// True for a TCP socket (an INET or INET6 stream socket).
fn is_tcp(fd: RawFd) -> bool {
    // SAFETY: getsockname into a zeroed storage of the size passed.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len) == 0
            && matches!(i32::from(addr.ss_family), libc::AF_INET | libc::AF_INET6)
    }
}

/// Asks the kernel to acknowledge what arrives without delay. A peer whose small packets
/// wait for our ACK (Nagle's algorithm, as OpenSSH's ssh during the handshake) would
/// otherwise stall for the delayed-ACK timer, about 40 ms, at each round trip. Linux resets
/// the flag on its own, so it is set before every read.
#[cfg(target_os = "linux")]
fn ack_promptly(fd: RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn ack_promptly(_fd: RawFd) {}
