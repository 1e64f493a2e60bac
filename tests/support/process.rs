//! What the private servers ([`super::Sshd`], [`super::Dropbear`]) share: waiting for one to
//! listen or to log a line, stopping it and keeping its directory when a test fails, and the
//! connection processes it forks.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A file's contents, lossily decoded; empty if it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Says that the directory of a `what` (e.g. "sshd") is kept for inspection.
pub fn keep_dir(what: &str, dir: &Path) {
    eprintln!(
        "keeping the {what} directory for inspection: {}",
        dir.display()
    );
}

/// Waits until the just spawned `child` is `ready`, at most `timeout`: an error says that it
/// exited (with its status) or that it was not listening in time (it is then killed).
pub fn wait_until_listening(
    child: &mut Child,
    timeout: Duration,
    ready: impl Fn(&Child) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready(child) {
            return Ok(());
        }
        if let Some(status) = child.try_wait().expect("try_wait on the server") {
            return Err(format!("exited with {status}"));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("not listening after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the log of a `what` (e.g. "sshd"), read by `log`, contains `needle` and
/// returns it; panics with the log after `timeout`.
pub fn wait_for_log(
    what: &str,
    log: impl Fn() -> String,
    needle: &str,
    timeout: Duration,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = log();
        if log.contains(needle) {
            return log;
        }
        if Instant::now() >= deadline {
            panic!("{what} log has no {needle:?} after {timeout:?}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a private server by its own pid (connections already accepted are served by
/// processes of their own, which end when their clients disconnect). When the test is
/// panicking, prints the `log` and keeps `dir`; otherwise removes it.
pub fn stop_server(what: &str, child: &mut Child, dir: &Path, log: impl FnOnce() -> String) {
    let _ = child.kill();
    let _ = child.wait();
    if std::thread::panicking() {
        eprintln!("--- {what} log ({}):\n{}", dir.display(), log());
        keep_dir(what, dir);
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Every descendant of process `parent` (from /proc): the connection processes a server
/// forked.
pub fn descendants(parent: u32) -> Vec<u32> {
    let mut found = vec![];
    let mut frontier = vec![parent];
    while let Some(parent) = frontier.pop() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let ppid: u32 = after_comm.split(' ').nth(1).unwrap().parse().unwrap();
            if ppid == parent {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// Sends signal `sig` (a name without "SIG", e.g. "STOP") to each of `pids`.
pub fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }
}
