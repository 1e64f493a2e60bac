//! An idle connection does no periodic work: with no timer set, its reader thread sleeps in
//! poll until the peer sends something (counted in the kernel's context switches of that
//! thread, not in time). One test in this binary, so that no other transport's threads run.

mod support;

use std::time::Duration;

use support::client::{assert_runs, login_threaded};
use support::Sshd;

/// (thread id, voluntary context switches) of this process's transport reader threads.
fn reader_switches() -> Vec<(String, u64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("read /proc/self/task") {
        let task = task.expect("task entry").path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim() != "sekura-read" {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches in /proc status");
        found.push((task.display().to_string(), switches));
    }
    found
}

#[test]
fn an_idle_connection_sleeps_until_the_peer_speaks() {
    let sshd = Sshd::start();
    let t = login_threaded(&sshd);
    assert_runs(&t, "echo awake", "awake\n");
    std::thread::sleep(Duration::from_millis(200));
    let before = reader_switches();
    assert_eq!(before.len(), 1, "one reader thread expected: {before:?}");
    std::thread::sleep(Duration::from_secs(4));
    let after = reader_switches();
    assert_eq!(before[0].0, after[0].0);
    let woke = after[0].1 - before[0].1;
    assert!(
        woke <= 1,
        "the idle reader woke {woke} times in 4 s with no timer set"
    );
    // Still alive and responsive after the quiet spell.
    assert_runs(&t, "echo still-here", "still-here\n");
}
