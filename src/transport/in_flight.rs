//! Calls that a caller-driven transport could not finish at once. Such a call sends its
//! message, returns [`ErrorKind::Again`], and remembers what it waits for; the application
//! repeats the same call after processing the stream, and the repeat resumes the wait
//! instead of sending again (libssh's non-blocking convention).

use crate::proto::ChannelId;
use crate::{Error, ErrorKind, Result};

/// The transport-wide call under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InFlight {
    /// The version and first key exchange.
    Handshake,
    /// An authentication request is out; `agent_identity` is the ssh-agent identity it
    /// offered, if an agent's.
    Auth { agent_identity: Option<usize> },
    /// A channel open is out.
    Open(ChannelId),
    /// A key re-exchange started after `before` exchanges.
    Rekey { before: u64 },
    /// A global request waits for reply `id`.
    Global(u64),
}

impl InFlight {
    fn describe(self) -> &'static str {
        match self {
            InFlight::Handshake => "the key exchange",
            InFlight::Auth { .. } => "an authentication",
            InFlight::Open(_) => "a channel open",
            InFlight::Rekey { .. } => "a key re-exchange",
            InFlight::Global(_) => "a global request",
        }
    }
}

/// The slot of one transport.
#[derive(Default)]
pub(super) struct InFlightSlot(parking_lot::Mutex<Option<InFlight>>);

impl InFlightSlot {
    /// The call this one resumes, when the last call was `same` and would have blocked;
    /// a different call under way is a state error.
    pub fn resume(&self, same: impl Fn(InFlight) -> bool) -> Result<Option<InFlight>> {
        match *self.0.lock() {
            None => Ok(None),
            Some(op) if same(op) => Ok(Some(op)),
            Some(op) => Err(Error::new(
                ErrorKind::State,
                format!(
                    "{} is still in progress: repeat that call until it completes",
                    op.describe()
                ),
            )),
        }
    }

    /// Records `op` as under way if `result` says it would block, and as finished
    /// otherwise.
    pub fn settle<R>(&self, op: InFlight, result: Result<R>) -> Result<R> {
        let blocked = matches!(&result, Err(e) if e.kind() == ErrorKind::Again);
        *self.0.lock() = blocked.then_some(op);
        result
    }
}
