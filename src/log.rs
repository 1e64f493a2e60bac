//! Library-wide logging: one callback set by the application, levels, per-transport names.
//! The protocol core does not call the callback itself (it does no I/O of any kind): it
//! keeps [`Record`]s that the transport hands over after each step.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// How important a message is. Numbers match the C constants `SEKURA_LOG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// The connection failed.
    Error = 1,
    /// Something is wrong but the connection goes on.
    Warn = 2,
    /// Milestones: key exchange results, authentication results, channels.
    Info = 3,
    /// Every message sent and received, by name.
    Debug = 4,
    /// Packet hexdumps (when the transport's hexdump switch is on). Secrets never appear:
    /// authentication requests are redacted, and keys are never in packets.
    Trace = 5,
}

impl Level {
    /// The level for a C `int`, clamped to the known range.
    pub fn from_int(level: i32) -> Option<Level> {
        Some(match level {
            i32::MIN..=0 => return None,
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => Level::Trace,
        })
    }
}

/// One message kept by the protocol core for the transport to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// The application's callback: level, logger name, message.
pub type Sink = Arc<dyn Fn(Level, &str, &str) + Send + Sync>;

static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends messages up to `level` to `sink`; `None` stops logging.
pub fn set_sink(level: Level, sink: Option<Sink>) {
    let max = if sink.is_some() { level as u8 } else { 0 };
    *SINK.write() = sink;
    MAX_LEVEL.store(max, Ordering::Release);
}

/// The most detailed level anyone listens to, or `None` when nobody does.
pub fn max_level() -> Option<Level> {
    Level::from_int(i32::from(MAX_LEVEL.load(Ordering::Acquire)))
}

/// True when a message at `level` would be delivered.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Acquire)
}

/// Delivers a message from logger `name`, if anyone listens at its level.
pub fn emit(level: Level, name: &str, message: &str) {
    if !enabled(level) {
        return;
    }
    let sink = SINK.read().clone();
    if let Some(sink) = sink {
        sink(level, name, message);
    }
}

/// Formats `bytes` as hexdump lines: offset, hex, printable ASCII.
pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "\n  {:04x}  {:<47}  {text}",
            i * 16,
            hex.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_shape() {
        let dump = hexdump(b"SSH-2.0-x\x00\x01abcdefghijk");
        assert!(dump.contains("0000  53 53 48 2d"), "{dump}");
        assert!(dump.contains("SSH-2.0-x..abcde"), "{dump}");
        assert!(dump.contains("0010  66 67 68 69 6a 6b"), "{dump}");
    }

    #[test]
    fn levels_from_c() {
        assert_eq!(Level::from_int(0), None);
        assert_eq!(Level::from_int(3), Some(Level::Info));
        assert_eq!(Level::from_int(99), Some(Level::Trace));
    }
}
