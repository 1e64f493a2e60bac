//! The connection state that application handles and the driver share. Callers lock it
//! only for short, non-blocking work; blocking calls wait on its condition variable in a
//! threaded transport, and return "would block" at once in a caller-driven one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::driver::would_block;
use super::readiness::Readiness;
use super::stream::StreamIo;
use crate::log;
use crate::proto::Connection;
use crate::{Error, ErrorKind, Result};

/// Queued outbound bytes past which senders wait for the writer.
pub(super) const SEND_QUEUE_LIMIT: usize = 1024 * 1024;

/// State shared by the handles and the two I/O threads.
pub(super) struct SharedConnection {
    pub state: Mutex<Connection>,
    /// Signalled whenever the connection state changes (input processed, output drained).
    pub changed: Condvar,
    /// Signalled when there is output for the writer thread.
    pub writer_wake: Condvar,
    pub io: StreamIo,
    /// Set when the transport stops: the writer flushes what is queued until `linger`.
    pub stopped: AtomicBool,
    pub linger: Mutex<Option<Instant>>,
    /// No thread drives this connection: waits never block, they report "would block".
    pub caller_driven: bool,
    /// The logger name of this transport's messages, and whether packets are hexdumped.
    pub log_name: Mutex<String>,
    pub hexdump: AtomicBool,
    /// The channels' pollable descriptors.
    pub readiness: Readiness,
}

impl SharedConnection {
    /// Runs `f` on the connection, then wakes the writer for whatever it queued.
    pub fn with<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        let mut conn = self.state.lock();
        self.prepare_log(&mut conn);
        let r = f(&mut conn);
        self.wake_writer_if_needed(&conn);
        self.readiness.sync(&conn);
        self.emit_log(conn);
        r
    }

    /// Lets the connection keep log records at the level someone listens to.
    fn prepare_log(&self, conn: &mut Connection) {
        conn.set_log(log::max_level(), self.hexdump.load(Ordering::Relaxed));
    }

    /// Releases the lock, then hands the connection's log records to the application's
    /// callback, which must never run under our lock.
    fn emit_log(&self, mut conn: MutexGuard<'_, Connection>) {
        let records = conn.take_log();
        drop(conn);
        if !records.is_empty() {
            let name = self.log_name.lock().clone();
            for r in records {
                log::emit(r.level, &name, &r.message);
            }
        }
    }

    /// Waits until `ready` returns `Some`, the connection fails, or `timeout` passes.
    /// `ready` runs under the lock and may act on the connection.
    pub fn wait<R>(
        &self,
        timeout: Option<Duration>,
        what: &str,
        mut ready: impl FnMut(&mut Connection) -> Option<Result<R>>,
    ) -> Result<R> {
        let timeout = if self.caller_driven {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut conn = self.state.lock();
        self.prepare_log(&mut conn);
        loop {
            // `ready` may consume data, so it runs exactly once per wake-up and its answer
            // is never dropped.
            if let Some(r) = ready(&mut conn) {
                self.wake_writer_if_needed(&conn);
                self.readiness.sync(&conn);
                self.emit_log(conn);
                return r;
            }
            if let Some(e) = conn.error() {
                return Err(e.clone());
            }
            // `ready` may have queued output (a window adjust) before this thread sleeps.
            self.wake_writer_if_needed(&conn);
            match deadline {
                None => self.changed.wait(&mut conn),
                Some(_) if self.caller_driven => return Err(would_block(what)),
                Some(d) if Instant::now() >= d => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("timed out waiting for {what}"),
                    ));
                }
                Some(d) => {
                    self.changed.wait_until(&mut conn, d);
                }
            }
        }
    }

    /// True when a wait with `timeout` may block: not in a caller-driven connection, and
    /// not with a zero timeout.
    pub fn may_block(&self, timeout: Option<Duration>) -> bool {
        !self.caller_driven && timeout != Some(Duration::ZERO)
    }

    /// Wraps `conn` over `io`.
    pub fn new(
        conn: Connection,
        io: StreamIo,
        log_name: String,
        hexdump: bool,
        caller_driven: bool,
    ) -> SharedConnection {
        SharedConnection {
            state: Mutex::new(conn),
            changed: Condvar::new(),
            writer_wake: Condvar::new(),
            io,
            stopped: AtomicBool::new(false),
            linger: Mutex::new(None),
            caller_driven,
            log_name: Mutex::new(log_name),
            hexdump: AtomicBool::new(hexdump),
            readiness: Readiness::default(),
        }
    }

    fn wake_writer_if_needed(&self, conn: &MutexGuard<'_, Connection>) {
        if conn.pending_transmit() > 0 {
            self.writer_wake.notify_one();
        }
    }

    /// Makes the reader re-read the connection's timers, after an application thread changed
    /// them.
    pub fn nudge_reader(&self) {
        self.io.wake();
    }

    /// Ends both threads: the reader at once, the writer once what is queued has gone out
    /// or `linger` has passed.
    pub fn shutdown(&self, linger: Duration) {
        *self.linger.lock() = Some(Instant::now() + linger);
        self.stopped.store(true, Ordering::Release);
        self.io.wake();
        self.writer_wake.notify_all();
        self.changed.notify_all();
    }
}
