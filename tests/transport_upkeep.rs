//! A long-lived connection against a real OpenSSH sshd: key renewal (ours and the server's)
//! in the middle of transfers, keepalive against a stopped server, global requests, IGNORE,
//! the banner, and disconnect reasons in both directions.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sekura::keys::PrivateKey;
use sekura::proto::ExitStatus;
use sekura::transport::{Channel, Transport};
use sekura::ErrorKind;
use sha2::{Digest, Sha256};
use support::{Sshd, SshdOptions};

fn login(sshd: &Sshd) -> Transport {
    let t = Transport::connect("127.0.0.1", sshd.port, Some(Duration::from_secs(10))).unwrap();
    t.start_client().unwrap();
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    t
}

/// Sends `total` pseudo-random bytes through `cat` while `during` runs, and checks that what
/// comes back is what went out.
fn round_trip(t: &Transport, total: usize, during: impl FnOnce()) {
    let ch = Arc::new(t.open_session().unwrap());
    ch.exec("cat").unwrap();
    let writer = {
        let ch = Arc::clone(&ch);
        std::thread::spawn(move || send_pattern(&ch, total))
    };
    let reader = {
        let ch = Arc::clone(&ch);
        std::thread::spawn(move || {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 65536];
            let mut got = 0;
            loop {
                let n = ch.recv(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                got += n;
            }
            (got, h.finalize().to_vec())
        })
    };
    during();
    let sent = writer.join().unwrap();
    let (got, received) = reader.join().unwrap();
    assert_eq!(got, total, "bytes back");
    assert_eq!(received, sent, "data changed in transit");
    assert_eq!(ch.recv_exit_status().unwrap(), ExitStatus::Code(0));
}

fn send_pattern(ch: &Channel, total: usize) -> Vec<u8> {
    let mut h = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut x = 0x2545_f491_u32;
    let mut sent = 0;
    while sent < total {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let n = block.len().min(total - sent);
        h.update(&block[..n]);
        ch.sendall(&block[..n]).unwrap();
        sent += n;
    }
    ch.send_eof().unwrap();
    h.finalize().to_vec()
}

#[test]
fn forced_rekeys_in_a_loop_during_a_transfer_lose_nothing() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    round_trip(&t, 64 << 20, || {
        for _ in 0..20 {
            t.renegotiate_keys().unwrap();
        }
    });
    assert_eq!(t.key_exchange_count(), 21);
}

#[test]
fn byte_limit_renews_keys_on_our_side() {
    let sshd = Sshd::start();
    let t = Transport::connect("127.0.0.1", sshd.port, Some(Duration::from_secs(10))).unwrap();
    t.set_rekey_limits(1 << 20, None).unwrap();
    t.start_client().unwrap();
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    round_trip(&t, 32 << 20, || {});
    // 64 MiB crossed the connection (32 each way): about one exchange per MiB.
    let exchanges = t.key_exchange_count();
    assert!(exchanges >= 40, "only {exchanges} key exchanges");
}

/// 1 GiB each way through `cat` (streamed and hashed, never held in memory) with the server
/// renewing keys after every MiB (`RekeyLimit 1M`): over a thousand exchanges started by the
/// server in the middle of channel data, and not a byte lost or changed.
#[test]
fn server_rekey_limit_one_megabyte_both_directions() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["RekeyLimit 1M".into()],
        ..Default::default()
    });
    let t = login(&sshd);
    let started = Instant::now();
    round_trip(&t, 1 << 30, || {});
    let exchanges = t.key_exchange_count();
    println!(
        "1 GiB each way under RekeyLimit 1M: {exchanges} key exchanges in {:.1?}",
        started.elapsed()
    );
    assert!(exchanges >= 1000, "only {exchanges} key exchanges");
}

#[test]
fn keepalive_detects_a_stopped_server() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = t.open_session().unwrap();
    ch.exec("sleep 60").unwrap();
    t.set_keepalive(Duration::from_secs(1), 2).unwrap();
    let stopped = session_processes(sshd.pid());
    assert!(!stopped.is_empty(), "no sshd session process found");
    signal(&stopped, "STOP");
    let start = Instant::now();
    let mut buf = [0u8; 16];
    ch.set_timeout(Some(Duration::from_secs(20)));
    let result = ch.recv(&mut buf);
    let elapsed = start.elapsed();
    signal(&stopped, "CONT");
    assert!(!t.is_active(), "the transport must be dead");
    let err = sekura_error(&t, result);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("keepalive"), "{err}");
    assert!(
        elapsed < Duration::from_secs(6),
        "took {elapsed:?} for 1 s × 2 keepalives"
    );
}

/// The connection's error, whether the read reported it or returned EOF.
fn sekura_error(t: &Transport, read: sekura::Result<usize>) -> sekura::Error {
    match read {
        Err(e) => e,
        Ok(_) => t.global_request("x", &[], false).unwrap_err(),
    }
}

/// The sshd processes serving sessions: every descendant of the listener.
fn session_processes(listener: u32) -> Vec<u32> {
    let mut found = vec![];
    let mut frontier = vec![listener];
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

fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }
}

#[test]
fn global_requests_with_and_without_reply() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let mut body = Vec::new();
    body.extend_from_slice(&9u32.to_be_bytes());
    body.extend_from_slice(b"127.0.0.1");
    body.extend_from_slice(&0u32.to_be_bytes());
    let reply = t
        .global_request("tcpip-forward", &body, true)
        .unwrap()
        .expect("a reply was asked for");
    assert_eq!(reply.len(), 4, "tcpip-forward to port 0 answers the port");
    let port = u32::from_be_bytes(reply[..4].try_into().unwrap());
    assert!(port > 0 && port < 65536);
    let refused = t
        .global_request("no-such-request@sekura", &[], true)
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Refused, "{refused}");
    assert_eq!(
        t.global_request("no-such-request@sekura", &[], false)
            .unwrap(),
        None
    );
    t.send_ignore(100).unwrap();
    let ch = t.open_session().unwrap();
    ch.exec("echo still alive").unwrap();
    let mut buf = [0u8; 32];
    let n = ch.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still alive\n");
}

#[test]
fn banner_username_and_peer_address() {
    let dir = support::fresh_dir("banner");
    let banner = dir.join("banner.txt");
    std::fs::write(&banner, "Authorized use only.\n").unwrap();
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec![format!("Banner {}", banner.display())],
        ..Default::default()
    });
    let t = login(&sshd);
    assert_eq!(t.banner().as_deref(), Some("Authorized use only.\n"));
    assert_eq!(t.username().as_deref(), Some(sshd.user.as_str()));
    assert_eq!(t.peer_addr().unwrap(), sshd.addr());
}

#[test]
fn our_disconnect_reason_reaches_the_server() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    t.disconnect(11, "maintenance window");
    sshd.wait_for_log("maintenance window", Duration::from_secs(5));
}

#[test]
fn server_disconnect_reason_is_reported() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["MaxAuthTries 1".into()],
        ..Default::default()
    });
    let t = Transport::connect("127.0.0.1", sshd.port, Some(Duration::from_secs(10))).unwrap();
    t.start_client().unwrap();
    let _ = t.auth_password(&sshd.user, "wrong");
    let e = t.auth_password(&sshd.user, "wrong again").unwrap_err();
    assert!(
        e.message().contains("Too many authentication failures"),
        "{e}"
    );
}

/// zlib@openssh.com on a compressible 256 MiB stream (text through `cat`), with key renewals
/// in the middle that restart the zlib streams on both sides.
#[test]
fn compression_on_a_compressible_stream() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["Compression yes".into()],
        ..Default::default()
    });
    let t = Transport::connect("127.0.0.1", sshd.port, Some(Duration::from_secs(10))).unwrap();
    t.use_compression(true).unwrap();
    t.start_client().unwrap();
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    let ch = t.open_session().unwrap();
    ch.exec("yes 'the quick brown fox jumps over the lazy dog' | head -c 268435456 | sha256sum >&2; yes 'the quick brown fox jumps over the lazy dog' | head -c 268435456").unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 65536];
    let mut got = 0usize;
    let mut renewed = false;
    loop {
        let n = ch.recv(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n;
        if !renewed && got > 100 << 20 {
            t.renegotiate_keys().unwrap();
            renewed = true;
        }
    }
    let mut err = vec![0u8; 128];
    let n = ch.recv_stderr(&mut err).unwrap();
    let theirs = String::from_utf8_lossy(&err[..n]).to_string();
    let ours: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, 256 << 20);
    assert!(theirs.starts_with(&ours), "{theirs} vs {ours}");
    assert!(renewed);
}
