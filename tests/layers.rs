//! The layers keep their shape (DESIGN.md, Layers): the protocol core under src/proto does
//! no I/O, starts no thread, reads no clock and draws no randomness of its own; time and
//! randomness are passed in. Unit tests inside it may do as they like.

use std::fs;
use std::path::{Path, PathBuf};

/// What only a driver may touch, as it is spelled in code.
const FORBIDDEN: &[(&str, &str)] = &[
    ("std::net", "sockets"),
    ("TcpStream", "sockets"),
    ("UnixStream", "sockets"),
    ("std::fs", "files"),
    ("std::io::Read", "I/O"),
    ("std::io::Write", "I/O"),
    ("std::process", "processes"),
    ("std::thread", "threads"),
    ("sleep(", "sleeping"),
    ("Instant::now", "the clock"),
    ("SystemTime", "the clock"),
    ("libc::", "system calls"),
    ("OsRandom", "its own randomness"),
    ("Mutex", "locks"),
    ("Condvar", "locks"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/proto") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code outside unit tests: test files are skipped, and a file's
/// `#[cfg(test)]` module is its tail.
fn production_code(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.contains("tests") {
        return None;
    }
    let text = fs::read_to_string(path).expect("read a source file");
    let code = match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    };
    // Comments may name what the code must not do.
    Some(
        code.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn the_protocol_core_has_no_io_threads_or_clocks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 10, "src/proto has only {} files", files.len());
    let mut found = Vec::new();
    for path in &files {
        let Some(code) = production_code(path) else {
            continue;
        };
        for (pattern, what) in FORBIDDEN {
            if code.contains(pattern) {
                found.push(format!("{}: {pattern} ({what})", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the sans-IO core reaches for what only a driver may do:\n  {}",
        found.join("\n  ")
    );
}
