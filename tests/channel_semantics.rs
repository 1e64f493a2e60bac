//! What a channel promises its user, checked against a real OpenSSH `sshd`: waiting for the
//! exit status or one stream never deadlocks on output nobody read (and past the buffer
//! limit fails at once, naming the stream); standard error merged or discarded; a local
//! close wakes a blocked reader; a session that runs nothing, a second command and a
//! negative timeout are local errors; algorithm preferences set after the handshake apply at
//! the next key exchange.

mod support;

use std::time::{Duration, Instant};

use sekura::proto::{AlgorithmKind, ExitStatus, StderrMode};
use sekura::transport::{Channel, Transport};
use sekura::ErrorKind;
use support::client::{exec, login, login_threaded, read_to_end};
use support::Sshd;

/// Far more than the 2 MiB window, on each stream.
const STDOUT_BYTES: usize = 7_000_000;
const STDERR_BYTES: usize = 9_000_000;

/// A session with nothing started yet, whose calls wait at most a minute.
fn session(t: &Transport) -> Channel {
    let ch = t.open_session().expect("session");
    ch.set_timeout(Some(Duration::from_secs(60)));
    ch
}

fn zeros(count: usize, to_stderr: bool) -> String {
    let redirect = if to_stderr { " >&2" } else { "" };
    format!("head -c {count} /dev/zero{redirect}")
}

#[test]
fn the_exit_status_arrives_while_both_streams_are_unread() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let command = format!(
        "{}; {}; exit 3",
        zeros(STDOUT_BYTES, false),
        zeros(STDERR_BYTES, true)
    );
    let ch = exec(&t, &command).expect("exec");
    assert_eq!(
        ch.recv_exit_status().expect("exit status"),
        ExitStatus::Code(3)
    );
    assert_eq!(read_to_end(&ch, false).expect("stdout").len(), STDOUT_BYTES);
    assert_eq!(read_to_end(&ch, true).expect("stderr").len(), STDERR_BYTES);
}

#[test]
fn stdout_reads_to_eof_while_stderr_is_unread_and_the_other_way() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = exec(&t, &format!("{}; echo done", zeros(STDERR_BYTES, true))).expect("exec");
    assert_eq!(read_to_end(&ch, false).expect("stdout"), b"done\n");
    assert_eq!(read_to_end(&ch, true).expect("stderr").len(), STDERR_BYTES);

    let ch = exec(
        &t,
        &format!("{}; echo done >&2", zeros(STDOUT_BYTES, false)),
    )
    .expect("exec");
    assert_eq!(read_to_end(&ch, true).expect("stderr"), b"done\n");
    assert_eq!(read_to_end(&ch, false).expect("stdout").len(), STDOUT_BYTES);
    assert_eq!(
        ch.recv_exit_status().expect("exit status"),
        ExitStatus::Code(0)
    );
}

#[test]
fn past_the_buffer_limit_the_wait_fails_at_once_and_loses_nothing() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = session(&t);
    ch.set_buffer_limit(1024 * 1024).expect("limit");
    ch.exec(&format!("{}; exit 5", zeros(STDOUT_BYTES, false)))
        .expect("exec");
    let started = Instant::now();
    let e = ch
        .recv_exit_status()
        .expect_err("the limit is below the output");
    assert_eq!(e.kind(), ErrorKind::BufferFull, "{e}");
    assert!(e.message().contains("standard output"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the wait ran into its timeout instead of failing at once"
    );
    // Nothing was lost: reading on gets every byte, then the status.
    assert_eq!(read_to_end(&ch, false).expect("stdout").len(), STDOUT_BYTES);
    assert_eq!(
        ch.recv_exit_status().expect("exit status"),
        ExitStatus::Code(5)
    );

    // Limit 0: unread standard error fills the window, and a stdout reader is told so.
    let ch = session(&t);
    ch.set_buffer_limit(0).expect("limit");
    ch.exec(&format!("{}; echo late", zeros(STDERR_BYTES, true)))
        .expect("exec");
    let e = read_to_end(&ch, false).expect_err("stderr is never read");
    assert_eq!(e.kind(), ErrorKind::BufferFull, "{e}");
    assert!(e.message().contains("standard error"), "{e}");
    assert!(e.message().contains("discard"), "{e}");
}

#[test]
fn stderr_merged_into_stdout_or_discarded() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = session(&t);
    ch.set_stderr_mode(StderrMode::Merge).expect("merge");
    ch.exec("echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three")
        .expect("exec");
    assert_eq!(
        read_to_end(&ch, false).expect("stdout"),
        b"one\ntwo\nthree\n"
    );
    assert!(read_to_end(&ch, true).expect("stderr").is_empty());

    let ch = session(&t);
    ch.set_stderr_mode(StderrMode::Discard).expect("discard");
    ch.exec(&format!("{}; echo kept", zeros(STDERR_BYTES, true)))
        .expect("exec");
    assert_eq!(read_to_end(&ch, false).expect("stdout"), b"kept\n");
    assert!(read_to_end(&ch, true).expect("stderr").is_empty());
    assert_eq!(
        ch.recv_exit_status().expect("exit status"),
        ExitStatus::Code(0)
    );
}

#[test]
fn close_wakes_a_thread_blocked_in_recv() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = exec(&t, "sleep 30").expect("exec");
    ch.set_timeout(None);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut buf = [0u8; 64];
            let n = ch.recv(&mut buf);
            (n, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(300));
        let closed_at = Instant::now();
        ch.close().expect("close");
        let (n, woke_at) = reader.join().expect("reader");
        assert_eq!(n.expect("recv after close"), 0);
        assert!(
            woke_at.duration_since(closed_at) < Duration::from_secs(20),
            "recv woke only when the remote command ended"
        );
    });
    let e = ch
        .recv_exit_status()
        .expect_err("closed before the command ended");
    assert_eq!(e.kind(), ErrorKind::Eof, "{e}");
}

#[test]
fn misuse_is_a_local_error() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = t.open_session().expect("session");
    ch.set_timeout(None);
    let mut buf = [0u8; 16];
    let e = ch.recv(&mut buf).expect_err("nothing runs");
    assert_eq!(e.kind(), ErrorKind::State, "{e}");
    let e = ch.recv_exit_status().expect_err("nothing runs");
    assert_eq!(e.kind(), ErrorKind::State, "{e}");

    ch.exec("echo first").expect("exec");
    let e = ch.exec("echo second").expect_err("second exec");
    assert_eq!(e.kind(), ErrorKind::State, "{e}");
    let e = ch.invoke_shell().expect_err("shell after exec");
    assert_eq!(e.kind(), ErrorKind::State, "{e}");
    assert_eq!(read_to_end(&ch, false).expect("stdout"), b"first\n");
}

#[test]
fn preferences_set_after_the_handshake_apply_at_the_next_key_exchange() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    t.set_preferred(AlgorithmKind::Cipher, "aes256-ctr")
        .expect("set_preferred");
    t.set_preferred(AlgorithmKind::Mac, "hmac-sha2-512")
        .expect("set_preferred");
    t.renegotiate_keys().expect("rekey");
    let negotiated = t.negotiated().expect("negotiated");
    assert_eq!(negotiated.cipher_c2s, "aes256-ctr");
    assert_eq!(negotiated.cipher_s2c, "aes256-ctr");
    assert_eq!(negotiated.mac_c2s, Some("hmac-sha2-512"));
    let ch = exec(&t, "echo after").expect("exec");
    assert_eq!(read_to_end(&ch, false).expect("stdout"), b"after\n");
}

/// Voluntary context switches of thread `tid` of this process so far.
fn voluntary_switches(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .expect("read the thread's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches")
}

/// A thread blocked on one channel sleeps while another channel of the same connection
/// moves 32 MiB: only its own channel's events (here its close) wake it.
#[test]
fn a_waiter_wakes_only_for_its_own_channel() {
    let sshd = Sshd::start();
    let t = login_threaded(&sshd);
    let quiet = exec(&t, "sleep 60").expect("exec");
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).expect("send tid");
            read_to_end(&quiet, false).expect("read the quiet channel")
        });
        let tid = tid_rx.recv().expect("the waiter's tid");
        // Let it block in its read first.
        std::thread::sleep(Duration::from_millis(300));
        let before = voluntary_switches(tid);
        let busy = exec(&t, "head -c 33554432 /dev/zero").expect("exec");
        let moved = read_to_end(&busy, false).expect("read the busy channel");
        assert_eq!(moved.len(), 32 << 20);
        let woken = voluntary_switches(tid) - before;
        assert!(woken <= 3, "the quiet channel's waiter woke {woken} times");
        // Its own channel's close wakes it.
        quiet.close().expect("close");
        waiter.join().expect("waiter")
    });
    assert!(waiter.is_empty());
}

/// Small per-channel limits: a 64 KiB window and 4 KiB packets still move 8 MiB intact,
/// the window re-opened many times; limits set later apply to later channels.
#[test]
fn small_channel_limits_still_move_everything() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    t.set_channel_limits(64 * 1024, 4096).expect("limits");
    let ch = exec(&t, "head -c 8388608 /dev/zero").expect("exec");
    assert_eq!(read_to_end(&ch, false).expect("stdout").len(), 8 << 20);
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));
    // The largest packet asked for, whatever the caller says, still fits our packet limit
    // (256 KiB asked: a data packet that size would not).
    t.set_channel_limits(8 << 20, 256 * 1024).expect("limits");
    let ch = exec(&t, "head -c 8388608 /dev/zero").expect("exec");
    assert_eq!(read_to_end(&ch, false).expect("stdout").len(), 8 << 20);
}
