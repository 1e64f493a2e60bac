//! Log records of the transports a test named, for tests that check what was logged.

use std::sync::{Arc, Mutex};

/// The Info-level log messages of every transport in this process that a test named, by log
/// name: one sink for the whole process (the sink is global), installed by the first test that
/// asks.
pub struct LogRecords(Arc<Records>);

/// (log name, message) pairs.
type Records = Mutex<Vec<(String, String)>>;

impl LogRecords {
    pub fn start() -> LogRecords {
        use sekura::log::{self, Level};
        static RECORDS: std::sync::OnceLock<Arc<Records>> = std::sync::OnceLock::new();
        let records = RECORDS.get_or_init(|| {
            let records: Arc<Records> = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&records);
            log::set_sink(
                Level::Info,
                Some(Arc::new(move |_, name: &str, message: &str| {
                    // The tests' own log names, not the library's defaults.
                    if !name.starts_with("sekura.") {
                        sink.lock()
                            .unwrap()
                            .push((name.to_owned(), message.to_owned()));
                    }
                })),
            );
            records
        });
        LogRecords(Arc::clone(records))
    }

    /// The messages logged under `name` so far.
    pub fn messages(&self, name: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
            .collect()
    }
}
