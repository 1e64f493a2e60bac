//! Transports over byte streams other than a TCP socket, against OpenSSH's sshd in inetd
//! mode (`sshd -i` speaks SSH on its stdin and stdout): a socketpair, a pair of pipes, and
//! child processes started as a ProxyCommand is (sshd itself, and OpenSSH's `ssh -W` relaying
//! to a listening sshd). The I/O threads wait in poll with the connection's timers, not in
//! socket options, so the rekey interval and the keepalive fire on each kind.

mod support;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sekura::transport::{ByteStream, Transport};
use sekura::ErrorKind;
use support::client::{assert_runs, auth_ed25519, exec};
use support::transfer::cat_round_trip;
use support::Sshd;

const SSHD: &str = "/usr/sbin/sshd";
const TIMEOUT: Duration = Duration::from_secs(20);

/// `sshd -i` with the private server's configuration: one connection on stdin and stdout.
fn sshd_inetd(sshd: &Sshd) -> Command {
    support::require_program(SSHD, "openssh-server");
    let mut cmd = Command::new(SSHD);
    cmd.arg("-i")
        .arg("-f")
        .arg(sshd.config())
        .stderr(Stdio::null());
    cmd
}

/// Starts the handshake and logs in over `stream`.
fn login_over(sshd: &Sshd, stream: ByteStream) -> Transport {
    let t = support::driven::transport(stream, TIMEOUT);
    t.start_client().expect("key exchange");
    auth_ed25519(&t, sshd);
    t
}

/// Stops the child after its transport is gone; `sshd -i` ends when its stream closes.
fn reap(mut child: Child) {
    let status = child.wait().expect("wait for sshd -i");
    assert!(status.code().is_some(), "sshd -i died: {status}");
}

#[test]
fn over_a_socketpair_with_the_rekey_interval_firing() {
    let sshd = Sshd::start();
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let child = sshd_inetd(&sshd)
        .stdin(Stdio::from(OwnedFd::from(theirs.try_clone().expect("dup"))))
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .spawn()
        .expect("spawn sshd -i");
    let t = login_over(&sshd, ByteStream::unix(ours));
    assert_eq!(t.peer_addr(), None);
    t.set_rekey_limits(1 << 30, Some(Duration::from_secs(1)))
        .expect("rekey interval");
    let before = t.key_exchange_count();
    // Idle: only the timer can start these key exchanges, twice within a generous bound.
    let deadline = Instant::now() + TIMEOUT;
    while t.key_exchange_count() < before + 2 && Instant::now() < deadline {
        support::driven::let_run(&t, Duration::from_millis(100));
    }
    assert!(
        t.key_exchange_count() >= before + 2,
        "the rekey interval did not fire over a socketpair: {} exchanges, {before} before",
        t.key_exchange_count()
    );
    assert_runs(&t, "echo over-a-socketpair", "over-a-socketpair\n");
    cat_round_trip(&t, 8 << 20, |_| {});
    drop(t);
    reap(child);
}

#[test]
fn over_two_pipes_the_keepalive_detects_a_stopped_server() {
    let sshd = Sshd::start();
    let mut child = sshd_inetd(&sshd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sshd -i");
    let stdin = OwnedFd::from(child.stdin.take().expect("stdin"));
    let stdout = OwnedFd::from(child.stdout.take().expect("stdout"));
    let t = login_over(&sshd, ByteStream::pipes(stdout, stdin));
    assert_runs(&t, "echo over-pipes", "over-pipes\n");

    let ch = exec(&t, "sleep 30").expect("exec");
    t.set_keepalive(Duration::from_secs(1), 2)
        .expect("keepalive");
    let mut stopped = vec![child.id()];
    stopped.extend(support::descendants(child.id()));
    support::signal(&stopped, "STOP");
    let mut buf = [0u8; 16];
    let result = ch.recv(&mut buf);
    support::signal(&stopped, "CONT");
    let e = result.expect_err("the server is stopped");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("keepalive"), "{e}");
    assert!(!t.is_active());
    drop(ch);
    drop(t);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn through_proxy_commands() {
    let sshd = Sshd::start();
    let direct = format!("exec {SSHD} -i -f {} 2>/dev/null", sshd.config().display());
    let t = login_over(&sshd, ByteStream::command(&direct).expect("command"));
    assert_runs(&t, "echo via-sshd-i", "via-sshd-i\n");
    drop(t);

    // OpenSSH's own ProxyJump building block: `ssh -W` logs in to the server and relays a
    // TCP connection to it; our transport speaks SSH through that relay.
    let relay = sshd.ssh_command();
    let mut words: Vec<String> = std::iter::once(relay.get_program())
        .chain(relay.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy()))
        .collect();
    words.extend([
        "-i".into(),
        format!("'{}'", sshd.user_key("ed25519").display()),
        "-W".into(),
        format!("127.0.0.1:{}", sshd.addr().port()),
        "127.0.0.1".into(),
    ]);
    let t = login_over(
        &sshd,
        ByteStream::command(&words.join(" ")).expect("command"),
    );
    assert_runs(&t, "echo via-ssh-w", "via-ssh-w\n");
    cat_round_trip(&t, 4 << 20, |_| {});
}
