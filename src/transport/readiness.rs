//! Pollable descriptors for channels (the C API's `ssh_channel_fileno`): the read end of a
//! pipe that is readable while the channel has something new to report (data on stdout or
//! stderr, an EOF not yet returned, an exit status or a close not yet seen, or a dead
//! connection); what the application was already told does not keep it readable.
//! Level-triggered, so it works with select, poll and epoll alike. The pipe is made on first
//! use and kept in step after every change of the connection's state.

use std::collections::hash_map::{Entry, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use parking_lot::Mutex;

use crate::proto::{ChannelId, Connection};
use crate::{Error, ErrorKind, Result};

/// One channel's pipe, and whether a byte sits in it.
struct ReadinessPipe {
    read: OwnedFd,
    write: OwnedFd,
    raised: bool,
}

/// The pipes of a transport's channels.
#[derive(Default)]
pub(super) struct Readiness {
    signals: Mutex<HashMap<ChannelId, ReadinessPipe>>,
}

impl Readiness {
    /// The descriptor for channel `id`, made on first use.
    pub fn fd(&self, conn: &Connection, id: ChannelId) -> Result<RawFd> {
        let mut signals = self.signals.lock();
        let signal = match signals.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(ReadinessPipe::new()?),
        };
        signal.set(readable(conn, id));
        Ok(signal.read.as_raw_fd())
    }

    /// Brings every pipe in step with the connection.
    pub fn sync(&self, conn: &Connection) {
        let mut signals = self.signals.lock();
        for (id, signal) in signals.iter_mut() {
            signal.set(readable(conn, *id));
        }
    }

    /// Closes channel `id`'s pipe, when its handle goes.
    pub fn forget(&self, id: ChannelId) {
        self.signals.lock().remove(&id);
    }
}

/// True when channel `id` has something the application has not been told yet.
fn readable(conn: &Connection, id: ChannelId) -> bool {
    conn.error().is_some() || conn.channel(id).is_none_or(|c| c.has_news())
}

impl ReadinessPipe {
    fn new() -> Result<ReadinessPipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "cannot make a pipe for the channel: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(ReadinessPipe {
            read,
            write,
            raised: false,
        })
    }

    /// Puts one byte in the pipe when `readable`, takes it out when not.
    fn set(&mut self, readable: bool) {
        if readable == self.raised {
            return;
        }
        let mut byte = [1u8];
        // SAFETY: one byte from or into a live buffer, on descriptors this signal owns; both
        // are non-blocking.
        let done = unsafe {
            if readable {
                libc::write(self.write.as_raw_fd(), byte.as_ptr().cast(), 1)
            } else {
                libc::read(self.read.as_raw_fd(), byte.as_mut_ptr().cast(), 1)
            }
        };
        if done == 1 {
            self.raised = readable;
        }
    }
}
