//! The threaded driver (Paramiko's model): a thin loop over the caller-driven driver's
//! halves. One thread waits for input and runs the [`ReadSide`]; one waits for queued output
//! and runs the [`WriteSide`]. A large send never waits behind a receive, and the reader
//! never waits for the stream to drain (two peers each blocked writing to the other cannot
//! happen here). A server starts a thread for its decisions while some are owed (it ends
//! when none is left), so that a slow handler holds back only what depends on its answer,
//! never the reader.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::{
    until_next_timer, wait_while, ReadSide, ReadStep, WriteSide, READ_BACKLOG_LIMIT,
};
use super::server_dispatch::{DecidedBy, ServerDecisions};
use super::shared_connection::SharedConnection;
use super::stream::Wait;
use crate::Result;

/// How long the writer waits for a full stream before checking whether it should stop.
const WRITE_WAIT_SLICE: Duration = Duration::from_millis(100);

/// The two running I/O threads of one transport. They hold the connection until they
/// end, so nothing waits for them: stopping never blocks.
pub(super) struct Threads {
    pub shared: Arc<SharedConnection>,
}

impl Threads {
    /// Starts the threads; a server connection's decisions go to `server`, on a thread of
    /// their own.
    pub fn start(
        shared: Arc<SharedConnection>,
        server: Option<ServerDecisions>,
    ) -> Result<Threads> {
        {
            let shared = Arc::clone(&shared);
            let server = server.map(Arc::new);
            std::thread::Builder::new()
                .name("sekura-read".into())
                .spawn(move || {
                    let decided = server
                        .as_ref()
                        .map_or(DecidedBy::Nobody, DecidedBy::DecisionThread);
                    read_loop(&shared, decided)
                })?;
        }
        {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sekura-write".into())
                .spawn(move || write_loop(&shared))?;
        }
        shared.writer_wake.notify_one();
        Ok(Threads { shared })
    }

    /// Tells the threads to stop, without waiting for them: the reader ends at once (after
    /// the server decision it may be running), the writer once what is queued has gone out
    /// or `linger` has passed. The stream closes when both have let go of it.
    pub fn stop(&self, linger: Duration) {
        self.shared.shutdown(linger);
    }
}

fn read_loop(shared: &Arc<SharedConnection>, decided: DecidedBy<'_>) {
    let mut reader = ReadSide::new();
    // While the peer leaves more than READ_BACKLOG_LIMIT of our output unread, read
    // nothing more.
    while wait_while(shared, |conn| conn.outbound_backlog() > READ_BACKLOG_LIMIT) {
        match shared.io.wait_readable(next_wakeup(shared)) {
            Ok(Wait::Readable) => {}
            Ok(Wait::Woken) => continue,
            Ok(Wait::TimedOut) => {
                let failed = shared.with(|conn| conn.handle_timeout(Instant::now()).is_err());
                shared.wake_all();
                if failed {
                    break;
                }
                continue;
            }
            Err(e) => {
                shared
                    .with(|conn| conn.handle_stream_error(&format_args!("waiting for input: {e}")));
                break;
            }
        }
        if let ReadStep::Ended = reader.step(shared, decided) {
            break;
        }
    }
    shared.wake_all();
    shared.writer_wake.notify_all();
}

/// How long the reader may block before the connection's next timer: forever when none is
/// set, so an idle connection does no periodic work. Timers configured but not yet running
/// start now; an application thread that changes them nudges the reader.
fn next_wakeup(shared: &SharedConnection) -> Option<Duration> {
    until_next_timer(shared).map(|d| d.max(Duration::from_millis(1)))
}

fn write_loop(shared: &SharedConnection) {
    let mut writer = WriteSide::default();
    let failure = loop {
        match writer.flush(shared) {
            Ok(true) => {
                let mut conn = shared.state.lock();
                while conn.outbound_backlog() == 0 {
                    if conn.error().is_some() || shared.stopped.load(Ordering::Acquire) {
                        // Nothing left to say: the DISCONNECT, if any, went out.
                        shared.wake_all();
                        return;
                    }
                    shared.writer_wake.wait(&mut conn);
                }
            }
            Ok(false) => {
                if shared.linger.lock().is_some_and(|d| Instant::now() >= d) {
                    break "the peer stopped reading while the transport closed".to_owned();
                }
                if let Err(e) = shared.io.wait_writable(WRITE_WAIT_SLICE) {
                    break format!("waiting to write: {e}");
                }
            }
            Err(e) => break format!("writing: {e}"),
        }
    };
    shared.with(|conn| conn.handle_stream_error(&failure));
    shared.wake_all();
}
