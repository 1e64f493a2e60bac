//! The connection state that application handles and the driver share. Callers lock it
//! only for short, non-blocking work. In a threaded transport blocking calls wait on a
//! condition variable: a channel's own for channel calls, the connection's for the rest,
//! and the driver wakes only those whose part changed. A caller-driven transport's calls
//! return "would block" at once, unless it is blocking: then the waiting call drives the
//! stream itself (libssh's blocking mode), one thread at a time, the others waiting on
//! their condition variables for what its processing changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::driver::{would_block, CallerDriven, Processing};
use super::readiness::Readiness;
use super::stream::StreamIo;
use crate::log;
use crate::proto::{ChannelId, Connection};
use crate::{Error, ErrorKind, Result};

/// Who must hear of a change, besides the waiters of the channels it touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Changes {
    ChannelsOnly,
    /// The connection outside channels changed too.
    Connection,
    /// The connection ended: every waiter.
    Everything,
}

/// Queued outbound bytes past which senders wait for the writer.
pub(super) const SEND_QUEUE_LIMIT: usize = 1024 * 1024;

/// State shared by the handles and the two I/O threads.
pub(super) struct SharedConnection {
    pub state: Mutex<Connection>,
    /// Signalled when the connection outside any one channel changes, and when it ends.
    pub changed: Condvar,
    /// One per channel a call waits on, signalled for that channel's changes only.
    channel_wakers: Mutex<HashMap<ChannelId, Arc<Condvar>>>,
    /// Signalled when there is output for the writer thread.
    pub writer_wake: Condvar,
    /// A threaded server's decision thread is running; changed only under the state lock.
    pub deciding: AtomicBool,
    pub io: StreamIo,
    /// Set when the transport stops: the writer flushes what is queued until `linger`.
    pub stopped: AtomicBool,
    pub linger: Mutex<Option<Instant>>,
    /// No thread drives this connection: waits report "would block", or drive it.
    pub caller_driven: bool,
    /// A caller-driven connection's waiting calls drive the stream themselves.
    pub blocking: AtomicBool,
    /// The caller-driven driver, for calls that drive the stream.
    pub driver: OnceLock<Weak<CallerDriven>>,
    /// A waiting call is driving the stream; how many others wait for it.
    leading: AtomicBool,
    followers: AtomicUsize,
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
        let output = conn.outbound_backlog() > 0;
        self.emit_log(conn);
        if output && self.drives_calls() {
            self.send_output_now();
        }
        r
    }

    /// A blocking caller-driven call's output goes out before it returns or sleeps, and
    /// what the peer sent meanwhile is handled (as libssh's calls do), so that a caller that
    /// only sends still learns that the connection ended; the call driving the stream, if
    /// any, is woken to look again.
    fn send_output_now(&self) {
        if let Some(driver) = self.driver.get().and_then(Weak::upgrade) {
            // A failure is the connection's, which the caller's next call reports.
            let _ = driver.process();
            // The thread driving the stream may sleep in poll(2) for input this processing
            // took, or output it left: it looks again.
            if self.leading.load(Ordering::Acquire) {
                self.io.wake();
            }
        }
    }

    /// True when a call on this thread drives the stream rather than waiting for threads
    /// or returning "would block": a blocking caller-driven connection, outside its own
    /// processing (a server callback's calls never block).
    fn drives_calls(&self) -> bool {
        self.caller_driven && self.blocking.load(Ordering::Relaxed) && !Processing::here()
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

    /// Waits until `ready` returns `Some`, the connection fails, or `timeout` passes, waking
    /// for changes of the connection outside its channels. `ready` runs under the lock and
    /// may act on the connection.
    pub fn wait<R>(
        &self,
        timeout: Option<Duration>,
        what: &str,
        ready: impl FnMut(&mut Connection) -> Option<Result<R>>,
    ) -> Result<R> {
        self.wait_on(&self.changed, timeout, what, ready)
    }

    /// As [`Self::wait`], waking for changes of channel `id` (and the connection's end).
    pub fn wait_channel<R>(
        &self,
        id: ChannelId,
        timeout: Option<Duration>,
        what: &str,
        ready: impl FnMut(&mut Connection) -> Option<Result<R>>,
    ) -> Result<R> {
        let waker = self.waker(id);
        self.wait_on(&waker, timeout, what, ready)
    }

    fn waker(&self, id: ChannelId) -> Arc<Condvar> {
        Arc::clone(self.channel_wakers.lock().entry(id).or_default())
    }

    /// Drops channel `id`'s condition variable, once no handle can wait on it.
    pub fn forget_waker(&self, id: ChannelId) {
        self.channel_wakers.lock().remove(&id);
    }

    /// Takes what the connection reports changed into `changed` (channels) and returns
    /// whether the connection outside them changed too. Called under the lock; the waking
    /// comes after, once the change's log records are out ([`Self::wake`]).
    pub fn take_changes(&self, conn: &mut Connection, changed: &mut Vec<ChannelId>) -> Changes {
        changed.clear();
        let mut connection = false;
        while let Some(event) = conn.poll_event() {
            match event.channel() {
                // A channel's events come together: one wake-up each.
                Some(id) if changed.last() == Some(&id) => {}
                Some(id) => changed.push(id),
                None => connection = true,
            }
        }
        if conn.error().is_some() {
            Changes::Everything
        } else if connection {
            Changes::Connection
        } else {
            Changes::ChannelsOnly
        }
    }

    /// Wakes the waiters of `changed` channels and, as `changes` says, the connection's or
    /// everyone's.
    pub fn wake(&self, changes: Changes, changed: &[ChannelId]) {
        match changes {
            Changes::Everything => return self.wake_all(),
            Changes::Connection => {
                self.changed.notify_all();
            }
            Changes::ChannelsOnly => {}
        }
        if !changed.is_empty() {
            let wakers = self.channel_wakers.lock();
            for id in changed {
                if let Some(waker) = wakers.get(id) {
                    waker.notify_all();
                }
            }
        }
    }

    /// Wakes every waiter: the connection ended, the send queue drained, a decision was
    /// made.
    pub fn wake_all(&self) {
        self.changed.notify_all();
        for waker in self.channel_wakers.lock().values() {
            waker.notify_all();
        }
        self.wake_leader();
    }

    /// Wakes the waiters of channel `id`.
    pub fn wake_channel(&self, id: ChannelId) {
        if let Some(waker) = self.channel_wakers.lock().get(&id) {
            waker.notify_all();
        }
        self.wake_leader();
    }

    /// A change made outside processing (a close, a stop) reaches the call driving the
    /// stream, which may be waiting for just that in poll(2).
    fn wake_leader(&self) {
        if self.leading.load(Ordering::Acquire) && !Processing::here() {
            self.io.wake();
        }
    }

    /// True when calls may block: threads drive the connection, or it is a blocking
    /// caller-driven one.
    pub fn calls_block(&self) -> bool {
        !self.caller_driven || self.blocking.load(Ordering::Relaxed)
    }

    fn wait_on<R>(
        &self,
        condvar: &Condvar,
        timeout: Option<Duration>,
        what: &str,
        mut ready: impl FnMut(&mut Connection) -> Option<Result<R>>,
    ) -> Result<R> {
        let drives = self.drives_calls();
        // Non-blocking: a caller-driven connection that is not blocking, or a zero timeout
        // (a channel's non-blocking mode). Either way "would block", never "timed out".
        let returns_at_once = (self.caller_driven && !drives) || timeout == Some(Duration::ZERO);
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut conn = self.state.lock();
        self.prepare_log(&mut conn);
        // A follower sends what its `ready` queued once per wake-up.
        let mut output_sent = false;
        loop {
            // `ready` may consume data, so it runs exactly once per wake-up and its answer
            // is never dropped.
            if let Some(r) = ready(&mut conn) {
                self.wake_writer_if_needed(&conn);
                self.readiness.sync(&conn);
                let output = conn.outbound_backlog() > 0;
                self.emit_log(conn);
                if output && drives {
                    self.send_output_now();
                }
                return r;
            }
            if let Some(e) = conn.error() {
                return Err(e.clone());
            }
            // `ready` may have queued output (a window adjust) before this thread sleeps.
            self.wake_writer_if_needed(&conn);
            let now = Instant::now();
            match deadline {
                _ if returns_at_once => return Err(would_block(what)),
                Some(d) if now >= d => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("timed out waiting for {what}"),
                    ));
                }
                _ if drives && !self.leading.swap(true, Ordering::AcqRel) => {
                    let cap = deadline.map(|d| d.saturating_duration_since(now));
                    let driven = MutexGuard::unlocked(&mut conn, || self.drive_once(cap));
                    // Under the lock, so that a thread about to wait for the leader is
                    // either seen here or sees the role free.
                    self.leading.store(false, Ordering::Release);
                    if self.followers.load(Ordering::Acquire) > 0 {
                        self.wake_all();
                    }
                    driven?;
                }
                _ if drives && !output_sent && conn.outbound_backlog() > 0 => {
                    // Then `ready` runs again: what changed while unlocked is not missed.
                    MutexGuard::unlocked(&mut conn, || self.send_output_now());
                    output_sent = true;
                }
                _ => {
                    self.wait_for_change(condvar, &mut conn, deadline, drives);
                    output_sent = false;
                }
            }
        }
    }

    /// Sleeps on `condvar` until woken or `deadline`; a `follower` counts itself, so that the
    /// thread driving the stream wakes it when it lets the role go.
    fn wait_for_change(
        &self,
        condvar: &Condvar,
        conn: &mut MutexGuard<'_, Connection>,
        deadline: Option<Instant>,
        follower: bool,
    ) {
        if follower {
            self.followers.fetch_add(1, Ordering::AcqRel);
        }
        match deadline {
            None => condvar.wait(conn),
            Some(d) => {
                condvar.wait_until(conn, d);
            }
        }
        if follower {
            self.followers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// One round of the caller-driven loop on this thread: wait for the stream (at most
    /// `cap`), then process.
    fn drive_once(&self, cap: Option<Duration>) -> Result<()> {
        match self.driver.get().and_then(Weak::upgrade) {
            Some(driver) => match driver.wait_and_process(cap) {
                // The connection's own error is what the waiting call reports.
                Err(e) if e.kind() != ErrorKind::Io => Ok(()),
                other => other,
            },
            None => Err(Error::new(ErrorKind::Closed, "the transport is closed")),
        }
    }

    /// True when a wait with `timeout` may block: not in a caller-driven connection unless
    /// it is blocking, and not with a zero timeout.
    pub fn may_block(&self, timeout: Option<Duration>) -> bool {
        (!self.caller_driven || self.drives_calls()) && timeout != Some(Duration::ZERO)
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
            channel_wakers: Mutex::default(),
            writer_wake: Condvar::new(),
            deciding: AtomicBool::new(false),
            io,
            stopped: AtomicBool::new(false),
            linger: Mutex::new(None),
            caller_driven,
            blocking: AtomicBool::new(false),
            driver: OnceLock::new(),
            leading: AtomicBool::new(false),
            followers: AtomicUsize::new(0),
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
        // Under the lock: a thread that found the flag clear is then already waiting, and
        // the notifications below reach it.
        let conn = self.state.lock();
        self.stopped.store(true, Ordering::Release);
        drop(conn);
        self.io.wake();
        self.writer_wake.notify_all();
        self.wake_all();
    }
}
