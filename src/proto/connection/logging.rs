//! What the connection tells the log: milestones at Info, every message at Debug, packet
//! hexdumps at Trace with the hexdump switch on. Records wait here for the transport.

use super::super::msg;
use super::Connection;
use crate::log::{hexdump, Level, Record};

/// Logging settings and the records not yet taken.
#[derive(Debug, Default)]
pub(super) struct LogBuffer {
    level: Option<Level>,
    hexdump: bool,
    records: Vec<Record>,
}

impl Connection {
    /// Keeps log records up to `level` (`None`: none), with packet hexdumps if `hexdump`.
    pub fn set_log(&mut self, level: Option<Level>, hexdump: bool) {
        self.log.level = level;
        self.log.hexdump = hexdump;
    }

    /// Takes the records kept since the last call.
    pub fn take_log(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.log.records)
    }

    /// Keeps a record at `level`; `message` is only built when someone listens.
    pub(super) fn log(&mut self, level: Level, message: impl FnOnce() -> String) {
        if self.log.level.is_some_and(|max| level <= max) {
            self.log.records.push(Record {
                level,
                message: message(),
            });
        }
    }

    /// True when packets are logged at all (Debug and above).
    pub(super) fn logs_packets(&self) -> bool {
        self.log.level.is_some_and(|max| max >= Level::Debug)
    }

    /// Records a packet: its name at Debug, its bytes at Trace (never for secrets).
    pub(super) fn log_packet(&mut self, direction: &str, payload: &[u8]) {
        if !self.logs_packets() {
            return;
        }
        let number = payload.first().copied().unwrap_or(0);
        let name = msg::name(number);
        self.log(Level::Debug, || {
            format!("{direction} {name} ({number}), {} bytes", payload.len())
        });
        if self.log.hexdump {
            self.log(Level::Trace, || {
                if msg::carries_secrets(number) {
                    format!("{direction} {name}: contents not shown (authentication data)")
                } else {
                    format!("{direction} {name}:{}", hexdump(payload))
                }
            });
        }
    }
}
