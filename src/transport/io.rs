//! The I/O driver: one thread reads, decrypts and dispatches; one thread writes what the
//! connection has queued. Callers only lock the connection state for short, non-blocking
//! work, so a large send never waits behind a receive and the reader never waits for the
//! stream to drain (two peers each blocked writing to the other cannot happen here).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::readiness::Readiness;
use super::server_dispatch::ServerSide;
use super::stream::{ByteStream, Input, StreamIo};
use crate::log;
use crate::proto::Connection;
use crate::{Error, ErrorKind, Result};

/// Read size of the receive thread once traffic is heavy.
const READ_CHUNK: usize = 256 * 1024;
/// The read buffer an idle connection holds; it doubles while reads fill it.
const INITIAL_READ_BUFFER: usize = 16 * 1024;
/// How often a reader stuck behind unread output checks the connection's timers.
const BACKLOG_WAKEUP: Duration = Duration::from_secs(1);
/// Queued outbound bytes past which senders wait for the writer.
pub(super) const SEND_QUEUE_LIMIT: usize = 1024 * 1024;
/// Unsent bytes past which the reader stops reading: a peer that sends requests but does
/// not read our answers (OpenSSH CVE-2025-26466) then only fills its own socket buffers.
const READ_BACKLOG_LIMIT: usize = 4 * SEND_QUEUE_LIMIT;

/// State shared by the handles and the two I/O threads.
pub(super) struct Shared {
    pub state: Mutex<Connection>,
    /// Signalled whenever the connection state changes (input processed, output drained).
    pub changed: Condvar,
    /// Signalled when there is output for the writer thread.
    pub writer_wake: Condvar,
    io: StreamIo,
    /// Set when the transport stops: the writer flushes what is queued until `linger`.
    stopped: AtomicBool,
    linger: Mutex<Option<Instant>>,
    /// The logger name of this transport's messages, and whether packets are hexdumped.
    pub log_name: Mutex<String>,
    pub hexdump: AtomicBool,
    /// The channels' pollable descriptors.
    pub readiness: Readiness,
}

impl Shared {
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

/// The running I/O threads of one transport.
pub(super) struct Driver {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Driver {
    /// Starts the threads for `conn` over `stream`; a server connection's decisions go to
    /// `server`.
    pub fn start(
        conn: Connection,
        stream: ByteStream,
        log_name: String,
        hexdump: bool,
        server: Option<ServerSide>,
    ) -> Result<Driver> {
        let shared = Arc::new(Shared {
            state: Mutex::new(conn),
            changed: Condvar::new(),
            writer_wake: Condvar::new(),
            io: stream.into_io()?,
            stopped: AtomicBool::new(false),
            linger: Mutex::new(None),
            log_name: Mutex::new(log_name),
            hexdump: AtomicBool::new(hexdump),
            readiness: Readiness::default(),
        });
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sekura-read".into())
                .spawn(move || read_loop(&shared, server.as_ref()))?
        };
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sekura-write".into())
                .spawn(move || write_loop(&shared))?
        };
        shared.writer_wake.notify_one();
        Ok(Driver {
            shared,
            threads: vec![reader, writer],
        })
    }

    /// Stops the threads: the writer flushes what is queued, bounded by `linger`, and no
    /// callback runs once this returns.
    pub fn stop(&mut self, linger: Duration) {
        self.shared.shutdown(linger);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(200));
    }
}

/// Reads into one buffer and decrypts there: a packet's tail left incomplete by one read is
/// moved to the front and completed by the next. A server's connection stops at each
/// decision it needs; the handler answers, then the rest of the buffer is processed before
/// anything more is read.
fn read_loop(shared: &Arc<Shared>, server: Option<&ServerSide>) {
    let largest = READ_CHUNK + crate::proto::MAX_PACKET_LEN + 64;
    let mut buf = vec![0u8; INITIAL_READ_BUFFER];
    let mut filled = 0;
    let mut decided = false;
    loop {
        if !decided {
            if !wait_for_backlog(shared) {
                break;
            }
            if filled == buf.len() {
                // A packet longer than the buffer: make room for it.
                buf.resize((buf.len() * 2).min(largest), 0);
            }
            let space = buf.get_mut(filled..).unwrap_or_default();
            let room = space.len();
            let n = match shared.io.read(space, next_wakeup(shared)) {
                Ok(Input::Data(0)) => continue,
                Ok(Input::Data(n)) => {
                    if n == room && buf.len() < largest {
                        // Heavy traffic: read more per call.
                        buf.resize((buf.len() * 2).min(largest), 0);
                    }
                    n
                }
                Ok(Input::Woken) => {
                    if shared.stopped.load(Ordering::Acquire) {
                        break;
                    }
                    continue;
                }
                Ok(Input::TimedOut) => {
                    let failed = shared.with(|conn| conn.handle_timeout(Instant::now()).is_err());
                    shared.changed.notify_all();
                    if failed {
                        break;
                    }
                    continue;
                }
                Ok(Input::Eof) | Err(_) => {
                    shared.with(Connection::handle_eof);
                    break;
                }
            };
            filled += n;
        }
        let (result, event) = shared.with(|conn| {
            let r = conn.handle_bytes_in_place(buf.get_mut(..filled).unwrap_or_default());
            // A peer that never lets a read time out still meets its deadlines.
            let now = Instant::now();
            if conn.poll_timeout().is_some_and(|due| now >= due) {
                let _ = conn.handle_timeout(now);
            }
            (r, conn.take_server_event())
        });
        shared.changed.notify_all();
        match result {
            Ok(consumed) => {
                buf.copy_within(consumed..filled, 0);
                filled -= consumed;
            }
            Err(_) => break,
        }
        decided = match (event, server) {
            (Some(event), Some(server)) => {
                server.decide(shared, event);
                shared.changed.notify_all();
                true
            }
            _ => false,
        };
    }
    shared.changed.notify_all();
    shared.writer_wake.notify_all();
}

/// Waits while the peer leaves more than [`READ_BACKLOG_LIMIT`] of our output unread,
/// keeping the timers running (a client stuck this way still meets the login grace time);
/// false once the connection has failed.
fn wait_for_backlog(shared: &Shared) -> bool {
    let mut conn = shared.state.lock();
    while conn.outbound_backlog() > READ_BACKLOG_LIMIT
        && conn.error().is_none()
        && !shared.stopped.load(Ordering::Acquire)
    {
        shared.writer_wake.notify_one();
        shared.changed.wait_for(&mut conn, BACKLOG_WAKEUP);
        let _ = conn.handle_timeout(Instant::now());
    }
    conn.error().is_none() && !shared.stopped.load(Ordering::Acquire)
}

/// How long the reader may block before the connection's next timer: forever when none is
/// set, so an idle connection does no periodic work. Timers configured but not yet running
/// (a keepalive or rekey interval just set, or re-armed after a key exchange) start now;
/// an application thread that changes them nudges the reader.
fn next_wakeup(shared: &Shared) -> Option<Duration> {
    let now = Instant::now();
    let (unarmed, deadline) = {
        let conn = shared.state.lock();
        (conn.timers_unarmed(), conn.poll_timeout())
    };
    let deadline = if unarmed {
        shared.with(|conn| {
            let _ = conn.handle_timeout(now);
            conn.poll_timeout()
        })
    } else {
        deadline
    };
    deadline.map(|d| {
        d.saturating_duration_since(now)
            .max(Duration::from_millis(1))
    })
}

fn write_loop(shared: &Shared) {
    loop {
        let chunk = {
            let mut conn = shared.state.lock();
            loop {
                let bytes = conn.take_transmit();
                if !bytes.is_empty() {
                    break bytes;
                }
                if conn.error().is_some() || shared.stopped.load(Ordering::Acquire) {
                    // Nothing left to say: the DISCONNECT, if any, went out.
                    shared.changed.notify_all();
                    return;
                }
                shared.writer_wake.wait(&mut conn);
            }
        };
        let result = shared.io.write_all(&chunk, || *shared.linger.lock());
        shared.changed.notify_all();
        if result.is_err() {
            shared.with(Connection::handle_eof);
            shared.changed.notify_all();
            return;
        }
    }
}
