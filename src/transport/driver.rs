//! The caller-driven driver: a connection plus its stream, stepped by whoever owns the loop.
//!
//! [`ReadSide`] and [`WriteSide`] are the only code that moves bytes between the stream and
//! the connection. An event loop runs both through [`CallerDriven::process`] when its poll
//! says the stream is ready; the threaded transport (`threads.rs`) runs each on a thread of
//! its own between blocking waits. So buffering, decisions and timers exist once.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::server_dispatch::{DecidedBy, ServerDecisions};
use super::shared_connection::{SharedConnection, SEND_QUEUE_LIMIT};
use super::stream::Received;
use crate::proto::{msg, ChannelId, Connection, PacketReader, Sealer, MAX_PACKET_LEN};
use crate::{Error, ErrorKind, Result};

/// The read buffer an idle connection holds; it doubles while reads fill it.
const INITIAL_READ_BUFFER: usize = 16 * 1024;
/// The largest read buffer: a large read plus the largest packet.
const LARGEST_READ_BUFFER: usize = 256 * 1024 + MAX_PACKET_LEN + 64;
/// Unsent bytes past which the connection stops reading: a peer that sends requests but
/// does not read our answers (OpenSSH CVE-2025-26466) then only fills its own buffers.
pub(super) const READ_BACKLOG_LIMIT: usize = 4 * SEND_QUEUE_LIMIT;
/// Bytes one [`CallerDriven::process`] reads at most, so that a peer flooding one
/// connection cannot starve the others of an event loop.
const READ_PER_PROCESS: usize = 1024 * 1024;

/// How often a threaded reader held back (unread output, input waiting for decisions)
/// checks the connection's timers.
const HELD_BACK_WAKEUP: Duration = Duration::from_secs(1);

/// Packets opened per batch at most: each batch is opened outside the lock and handled
/// under it once, and the batch's bookkeeping stays small whatever the peer sends.
const OPENED_PER_BATCH: usize = 64;

/// The receive half: one buffer, decrypted in place. A packet's tail left incomplete by one
/// read is moved to the front and completed by the next.
///
/// Once the peer's version line is read the half holds the connection's packet reader and
/// opens packets itself, outside the lock, so that a sender's encryption never waits for
/// this decryption; only handling the opened payloads takes the lock.
pub(super) struct ReadSide {
    buf: Vec<u8>,
    filled: usize,
    packets: Option<PacketReader>,
    /// Packets opened and not yet handled, in order, with where they lie in `buf`.
    opened: VecDeque<InBuffer>,
    /// Where the next packet to open starts.
    opened_to: usize,
    /// The channels the last input changed, kept to spare an allocation per read.
    changed: Vec<ChannelId>,
}

/// An opened packet in the read buffer.
struct InBuffer {
    payload: Range<usize>,
    seq: u32,
    /// The payload is the reader's inflated copy.
    inflated: bool,
}

/// What one [`ReadSide::step`] did.
pub(super) enum ReadStep {
    /// Read this many bytes and handled them.
    Read(usize),
    /// The stream had nothing.
    WouldBlock,
    /// The connection ended (the peer closed, or a packet failed).
    Ended,
}

impl ReadSide {
    pub fn new() -> ReadSide {
        ReadSide {
            buf: vec![0; INITIAL_READ_BUFFER],
            filled: 0,
            packets: None,
            opened: VecDeque::with_capacity(OPENED_PER_BATCH),
            opened_to: 0,
            changed: Vec::new(),
        }
    }

    /// Reads what the stream holds now and handles it, the decisions a server owes
    /// included.
    pub fn step(&mut self, shared: &Arc<SharedConnection>, decided: DecidedBy<'_>) -> ReadStep {
        if self.filled == self.buf.len() {
            // A packet longer than the buffer: make room for it.
            self.grow();
        }
        let space = self.buf.get_mut(self.filled..).unwrap_or_default();
        let room = space.len();
        match shared.io.try_read(space) {
            Ok(Received::Data(n)) => {
                if n == room {
                    // Heavy traffic: read more per call.
                    self.grow();
                }
                self.filled += n;
                let handled = match self.packets {
                    Some(_) => self.open_and_handle(shared, decided),
                    None => self.handle_in_place(shared, decided),
                };
                if handled {
                    ReadStep::Read(n)
                } else {
                    ReadStep::Ended
                }
            }
            Ok(Received::WouldBlock) => ReadStep::WouldBlock,
            Ok(Received::Eof) => {
                shared.with(Connection::handle_eof);
                shared.wake_all();
                ReadStep::Ended
            }
            Err(e) => {
                shared.with(|conn| conn.handle_stream_error(&format_args!("reading: {e}")));
                shared.wake_all();
                ReadStep::Ended
            }
        }
    }

    fn grow(&mut self) {
        let size = (self.buf.len() * 2).min(LARGEST_READ_BUFFER);
        self.buf.resize(size, 0);
    }

    /// Until the peer's version line is read, the connection reads the buffer itself; then
    /// this half takes its packet reader and opens what is left. False once the
    /// connection failed.
    fn handle_in_place(&mut self, shared: &Arc<SharedConnection>, decided: DecidedBy<'_>) -> bool {
        let (result, changes) = shared.with(|conn| {
            let r = conn.handle_bytes_in_place(self.buf.get_mut(..self.filled).unwrap_or_default());
            self.packets = conn.take_packet_reader();
            (r, shared.take_changes(conn, &mut self.changed))
        });
        shared.wake(changes, &self.changed);
        let Ok(consumed) = result else {
            return false;
        };
        self.buf.copy_within(consumed..self.filled, 0);
        self.filled -= consumed;
        self.decide(shared, decided);
        self.packets.is_none() || self.open_and_handle(shared, decided)
    }

    /// Opens the buffered packets in batches outside the lock and handles each batch under
    /// it, then has the decisions it raised made. What depends on a decision waits for it
    /// inside the connection; only when too much waits does handing stop until an answer
    /// releases it. False once the connection failed.
    fn open_and_handle(&mut self, shared: &Arc<SharedConnection>, decided: DecidedBy<'_>) -> bool {
        loop {
            if self.opened.is_empty() {
                if let (DecidedBy::DecisionThread(_), Some(reader)) = (decided, &mut self.packets) {
                    // An answer given since may have changed how the packets read after it
                    // are opened (compression starting with authentication).
                    shared.state.lock().update_packet_reader(reader);
                }
                match self.open_batch() {
                    Ok(0) => {
                        self.compact();
                        return true;
                    }
                    Ok(_) => {}
                    Err((e, integrity_failed)) => {
                        shared.with(|conn| conn.handle_unopenable(e, integrity_failed));
                        shared.wake_all();
                        return false;
                    }
                }
            }
            let (alive, stalled, changes) = shared.with(|conn| {
                let alive = self.hand_opened(conn);
                // A peer that never lets a read time out still meets its deadlines.
                run_due_timers(conn, Instant::now());
                let changes = shared.take_changes(conn, &mut self.changed);
                (alive, conn.input_stalled(), changes)
            });
            // After the change's log records went out, so that a woken caller finds them.
            shared.wake(changes, &self.changed);
            if !alive {
                return false;
            }
            self.decide(shared, decided);
            if stalled
                && matches!(decided, DecidedBy::DecisionThread(_))
                && !wait_while(shared, Connection::input_stalled)
            {
                return false;
            }
        }
    }

    /// Opens packets from where the last batch ended, up to [`OPENED_PER_BATCH`], and stops
    /// after any that may change how the next is opened (new keys, compression starting
    /// with authentication) until the connection has handled it. Returns how many.
    fn open_batch(&mut self) -> std::result::Result<usize, (Error, bool)> {
        let Some(reader) = self.packets.as_mut() else {
            return Ok(0);
        };
        while self.opened.len() < OPENED_PER_BATCH {
            let start = self.opened_to;
            let rest = self.buf.get_mut(start..self.filled).unwrap_or_default();
            let opened = match reader.decode(rest) {
                Ok(Some(opened)) => opened,
                Ok(None) => break,
                Err(e) => return Err((e, reader.integrity_failed)),
            };
            let payload = start + opened.payload_start..start + opened.payload_end;
            let number = match opened.inflated {
                true => reader.inflated.first(),
                false => self.buf.get(payload.start),
            };
            let changes_reader = opened.inflated
                || number.is_some_and(|n| {
                    matches!(
                        *n,
                        msg::NEWKEYS | msg::USERAUTH_REQUEST | msg::USERAUTH_SUCCESS
                    )
                });
            self.opened_to = start + opened.consumed;
            self.opened.push_back(InBuffer {
                payload,
                seq: opened.seq,
                inflated: opened.inflated,
            });
            if changes_reader {
                break;
            }
        }
        Ok(self.opened.len())
    }

    /// Hands the opened packets to the connection in order, until too much input waits for
    /// a server's decisions; false once the connection failed.
    fn hand_opened(&mut self, conn: &mut Connection) -> bool {
        let Some(reader) = self.packets.as_mut() else {
            return true;
        };
        while !conn.input_stalled() {
            let Some(packet) = self.opened.pop_front() else {
                break;
            };
            let payload = match packet.inflated {
                true => reader.inflated.as_slice(),
                false => self.buf.get(packet.payload).unwrap_or_default(),
            };
            if conn.handle_packet(payload, packet.seq).is_err() {
                return false;
            }
            conn.update_packet_reader(reader);
        }
        true
    }

    /// Has the decisions the connection owes made: here, one after another until none is
    /// left (an answer may release input that raises the next), or by the decision thread.
    /// An answer may have accepted a channel, authenticated the client, or started
    /// compression for the packets not yet opened.
    fn decide(&mut self, shared: &Arc<SharedConnection>, decided: DecidedBy<'_>) {
        match decided {
            DecidedBy::Nobody => {}
            DecidedBy::DecisionThread(server) => server.decide_on_a_thread(shared),
            DecidedBy::ThisThread(server) => {
                let mut decided_any = false;
                while let Some(event) = shared.with(Connection::take_server_event) {
                    server.decide(shared, event);
                    decided_any = true;
                }
                if decided_any {
                    if let Some(reader) = self.packets.as_mut() {
                        shared.with(|conn| conn.update_packet_reader(reader));
                    }
                    shared.wake_all();
                }
            }
        }
    }

    /// Moves an incomplete packet's bytes to the front of the buffer.
    fn compact(&mut self) {
        self.buf.copy_within(self.opened_to..self.filled, 0);
        self.filled -= self.opened_to;
        self.opened_to = 0;
    }
}

/// A threaded reader's wait while `held_back` (unread output, input waiting for the decision
/// thread): the timers keep running, so a client stuck this way still meets the login grace
/// time. False once the connection failed or the transport stopped.
pub(super) fn wait_while(
    shared: &SharedConnection,
    held_back: impl Fn(&Connection) -> bool,
) -> bool {
    let mut conn = shared.state.lock();
    while held_back(&conn) && conn.error().is_none() && !shared.stopped.load(Ordering::Acquire) {
        shared.writer_wake.notify_one();
        shared.changed.wait_for(&mut conn, HELD_BACK_WAKEUP);
        let _ = conn.handle_timeout(Instant::now());
    }
    conn.error().is_none() && !shared.stopped.load(Ordering::Acquire)
}

/// Runs the connection's timers that are due, and arms those configured but not yet
/// running (a keepalive or rekey interval just set, or re-armed after a key exchange).
pub(super) fn run_due_timers(conn: &mut Connection, now: Instant) {
    if conn.timers_unarmed() || conn.poll_timeout().is_some_and(|due| now >= due) {
        let _ = conn.handle_timeout(now);
    }
}

/// How long until the connection's next timer, `None` for none. Timers configured but not
/// yet running (a keepalive or rekey interval just set, or re-armed after a key exchange)
/// start now; only then is the connection handled rather than just read.
pub(super) fn until_next_timer(shared: &SharedConnection) -> Option<Duration> {
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
    deadline.map(|due| due.saturating_duration_since(now))
}

/// The send half: bytes taken from the connection and not yet written.
///
/// After the first bytes the half holds the connection's sealer and encrypts what it takes
/// outside the lock, so that the receive half's decryption and the application's sends
/// never wait for this encryption.
#[derive(Default)]
pub(super) struct WriteSide {
    out: Vec<u8>,
    written: usize,
    sealer: Option<Sealer>,
}

impl WriteSide {
    /// Writes queued output until all of it is out (true) or the stream is full (false).
    pub fn flush(&mut self, shared: &SharedConnection) -> std::io::Result<bool> {
        loop {
            if self.written == self.out.len() {
                self.written = 0;
                let (taken, sealed_here, was_full) = {
                    let mut conn = shared.state.lock();
                    let was_full = conn.pending_transmit() >= SEND_QUEUE_LIMIT;
                    if let (Some(sealer), Some(keys)) = (&mut self.sealer, conn.poll_sealing_key())
                    {
                        sealer.set_key(keys);
                    }
                    let taken = conn.poll_transmit(&mut self.out);
                    let sealed_here = self.sealer.is_none();
                    if sealed_here {
                        self.sealer = conn.take_sealer();
                    }
                    (taken, sealed_here, was_full)
                };
                if taken == 0 {
                    return Ok(true);
                }
                if !sealed_here {
                    if let Some(sealer) = &mut self.sealer {
                        sealer.seal_all(&mut self.out);
                    }
                }
                if was_full {
                    // Senders (and a reader held back by unsent output) may go on.
                    shared.wake_all();
                }
            }
            let rest = self.out.get(self.written..).unwrap_or_default();
            match shared.io.try_write(rest)? {
                0 => return Ok(false),
                n => self.written += n,
            }
        }
    }

    /// True while bytes taken from the connection wait for the stream.
    pub fn holds_output(&self) -> bool {
        self.written < self.out.len()
    }

    /// Drops the output not yet written (the stream failed); the sealer stays, so that
    /// nothing taken later could go out unsealed.
    fn discard(&mut self) {
        self.out.clear();
        self.written = 0;
    }
}

/// What a caller-driven connection waits for on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wanted {
    /// Call [`crate::transport::Transport::process`] when the read descriptor is readable.
    pub read: bool,
    /// Call it when the write descriptor is writable.
    pub write: bool,
}

/// A connection driven by the caller's loop: no threads; decisions and callbacks run inside
/// [`Self::process`], on the caller's thread.
pub(super) struct CallerDriven {
    pub shared: Arc<SharedConnection>,
    sides: Mutex<(ReadSide, WriteSide)>,
    server: Option<ServerDecisions>,
    /// Set when a process call stopped reading at its limit with input left.
    more_input: Mutex<bool>,
}

impl CallerDriven {
    pub fn new(shared: Arc<SharedConnection>, server: Option<ServerDecisions>) -> CallerDriven {
        CallerDriven {
            shared,
            sides: Mutex::new((ReadSide::new(), WriteSide::default())),
            server,
            more_input: Mutex::new(false),
        }
    }

    /// What to wait for before the next [`Self::process`]: nothing once the connection
    /// has ended and its last words are out.
    pub fn wanted(&self) -> Wanted {
        let sides = self.sides.lock();
        let conn = self.shared.state.lock();
        let output = sides.1.holds_output() || conn.outbound_backlog() > 0;
        Wanted {
            read: conn.error().is_none() && conn.outbound_backlog() <= READ_BACKLOG_LIMIT,
            write: output,
        }
    }

    /// How long the loop may wait before calling [`Self::process`] even if the stream is
    /// not ready: the next timer, zero when input was left unread, `None` for no timer.
    pub fn next_timeout(&self) -> Option<Duration> {
        if *self.more_input.lock() {
            return Some(Duration::ZERO);
        }
        until_next_timer(&self.shared)
    }

    /// Waits up to `cap` (and the next timer) for what the connection wants, then
    /// processes: one round of the loop a blocking call runs on its own thread.
    pub fn wait_and_process(&self, cap: Option<Duration>) -> Result<()> {
        let timeout = match (self.next_timeout(), cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.shared.io.wait_for(self.wanted(), timeout)?;
        // One read, so that the waiting call returns as soon as what it waits for came,
        // before the callbacks of what follows run on its thread.
        self.process_up_to(1)
    }

    /// Does what is ready now: runs due timers, reads and handles what the stream holds
    /// (deciding what a server owes on this thread), and writes what is queued until the
    /// stream is full. Fails with the connection's error once it has ended.
    pub fn process(&self) -> Result<()> {
        self.process_up_to(READ_PER_PROCESS)
    }

    /// [`Self::process`], stopping once `limit` bytes were read.
    fn process_up_to(&self, limit: usize) -> Result<()> {
        let _processing = Processing::begin();
        let shared = &self.shared;
        let mut sides = self.sides.lock();
        let (reader, writer) = &mut *sides;
        shared.with(|conn| run_due_timers(conn, Instant::now()));
        let mut read = 0;
        let mut more = false;
        while shared.state.lock().outbound_backlog() <= READ_BACKLOG_LIMIT {
            let decided = self
                .server
                .as_ref()
                .map_or(DecidedBy::Nobody, DecidedBy::ThisThread);
            match reader.step(shared, decided) {
                ReadStep::Read(n) => read += n,
                ReadStep::WouldBlock | ReadStep::Ended => break,
            }
            if read >= limit {
                more = true;
                break;
            }
            // Our answers go out while the peer is still sending.
            flush_or_end(shared, writer);
        }
        *self.more_input.lock() = more;
        flush_or_end(shared, writer);
        drop(sides);
        match shared.state.lock().error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Queues DISCONNECT's bytes out as far as the stream takes them now; never waits.
    pub fn finish(&self) {
        let mut sides = self.sides.lock();
        flush_or_end(&self.shared, &mut sides.1);
    }
}

thread_local! {
    /// This thread is inside [`CallerDriven::process`]: a server callback's call must not
    /// drive the stream again, so it returns "would block" instead.
    static PROCESSING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the thread as processing until dropped.
pub(super) struct Processing(bool);

impl Processing {
    fn begin() -> Processing {
        Processing(PROCESSING.replace(true))
    }

    /// True on a thread inside [`CallerDriven::process`].
    pub fn here() -> bool {
        PROCESSING.get()
    }
}

impl Drop for Processing {
    fn drop(&mut self) {
        PROCESSING.set(self.0);
    }
}

/// Flushes; a failed write ends the connection, and what it held is dropped.
fn flush_or_end(shared: &SharedConnection, writer: &mut WriteSide) {
    if let Err(e) = writer.flush(shared) {
        writer.discard();
        shared.with(|conn| conn.handle_stream_error(&format_args!("writing: {e}")));
    }
}

/// The error for a non-blocking call (a caller-driven transport, or a zero timeout) that
/// cannot finish without waiting.
pub(super) fn would_block(what: &str) -> Error {
    Error::new(
        ErrorKind::Again,
        format!("waiting for {what}: the call would block"),
    )
}
