//! The caller-driven driver against real peers, driven from the test's thread as an event
//! loop would (no library thread): the handshake with several algorithm sets, commands,
//! 16 MiB each way across re-keys, keepalive against a stopped server, forwarding, Dropbear,
//! and a hostile server. The threaded transport runs the same read and write halves, so
//! the rest of the suite covers them too.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use sekura::proto::{AlgorithmKind, ExitStatus};
use sekura::transport::{ByteStream, Channel, Transport};
use sekura::ErrorKind;
use sha2::{Digest, Sha256};
use support::client::{user_key, Server};
use support::driven::{connect, drive, idle, step};
use support::transfer::{hex, XorShift};
use support::{Dropbear, FakePeer, Sshd};

/// Connects to `server`, checks its ed25519 host key and logs in with the ed25519 user key.
fn login(server: &impl Server, configure: impl FnOnce(&Transport)) -> Transport {
    let t = connect(server.port());
    t.set_preferred(AlgorithmKind::HostKey, "ssh-ed25519")
        .expect("host key preference");
    configure(&t);
    drive(&t, || t.start_client()).expect("key exchange");
    let host_key = t.remote_server_key().expect("host key");
    assert_eq!(
        host_key.fingerprint_sha256(),
        server.host_key_fingerprint("ed25519")
    );
    let key = user_key(server, "ed25519");
    drive(&t, || t.auth_publickey(server.user(), &key)).expect("publickey auth");
    assert!(t.is_authenticated());
    t
}

fn read_to_end(t: &Transport, ch: &Channel) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match drive(t, || ch.recv(&mut buf)).expect("recv") {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Runs `command`; returns its stdout and exit status.
fn run(t: &Transport, command: &str) -> (Vec<u8>, ExitStatus) {
    let ch = drive(t, || t.open_session()).expect("open session");
    drive(t, || ch.exec(command)).expect("exec");
    let out = read_to_end(t, &ch);
    let status = drive(t, || ch.recv_exit_status()).expect("exit status");
    (out, status)
}

#[test]
fn logs_in_and_runs_commands_with_each_kind_of_algorithm() {
    let sshd = Sshd::start();
    let sets = [
        ("curve25519-sha256", "chacha20-poly1305@openssh.com", None),
        ("ecdh-sha2-nistp256", "aes128-gcm@openssh.com", None),
        (
            "diffie-hellman-group14-sha256",
            "aes256-ctr",
            Some("hmac-sha2-256-etm@openssh.com"),
        ),
    ];
    for (kex, cipher, mac) in sets {
        let t = login(&sshd, |t| {
            t.set_preferred(AlgorithmKind::Kex, kex).expect("kex");
            t.set_preferred(AlgorithmKind::Cipher, cipher)
                .expect("cipher");
            if let Some(mac) = mac {
                t.set_preferred(AlgorithmKind::Mac, mac).expect("mac");
            }
        });
        let negotiated = t.negotiated().expect("negotiated");
        assert_eq!((negotiated.kex, negotiated.cipher_c2s), (kex, cipher));
        for i in 0..3 {
            let (out, status) = run(&t, &format!("echo driven {i}; exit {i}"));
            assert_eq!(out, format!("driven {i}\n").as_bytes());
            assert_eq!(status, ExitStatus::Code(i));
        }
    }
}

#[test]
fn sixteen_mib_each_way_across_rekeys() {
    const TOTAL: usize = 16 << 20;
    let sshd = Sshd::start();
    let t = login(&sshd, |_| {});
    t.set_rekey_limits(1 << 20, None).expect("rekey limit");
    let before = t.key_exchange_count();

    let ch = drive(&t, || t.open_session()).expect("open session");
    drive(&t, || ch.exec("sha256sum")).expect("exec");
    let mut rng = XorShift(7);
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < TOTAL {
        rng.fill(&mut block);
        hash.update(&block);
        let mut rest = &block[..];
        while !rest.is_empty() {
            let n = drive(&t, || ch.send(rest)).expect("send");
            rest = &rest[n..];
        }
        sent += block.len();
    }
    drive(&t, || ch.send_eof()).expect("eof");
    let out = String::from_utf8(read_to_end(&t, &ch)).expect("UTF-8");
    assert_eq!(out, format!("{}  -\n", hex(&hash.finalize())));

    let (out, status) = run(&t, &format!("head -c {TOTAL} /dev/zero"));
    assert_eq!(status, ExitStatus::Code(0));
    assert_eq!(out.len(), TOTAL);
    assert!(out.iter().all(|b| *b == 0));
    let rekeys = t.key_exchange_count() - before;
    assert!(rekeys >= 16, "only {rekeys} key re-exchanges for 32 MiB");
}

#[test]
fn keepalive_detects_a_stopped_server() {
    let sshd = Sshd::start();
    let t = login(&sshd, |_| {});
    let ch = drive(&t, || t.open_session()).expect("open session");
    drive(&t, || ch.exec("sleep 60")).expect("exec");
    t.set_keepalive(Duration::from_secs(1), 2)
        .expect("keepalive");
    // No call waits: only the timer can notice.
    assert!(t
        .next_timeout()
        .is_some_and(|d| d <= Duration::from_secs(1)));
    let stopped = support::descendants(sshd.pid());
    assert!(!stopped.is_empty(), "no connection process of sshd found");
    support::signal(&stopped, "STOP");
    let start = Instant::now();
    let error = loop {
        if let Err(e) = step(&t, None) {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never noticed");
    };
    support::signal(&stopped, "CONT");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.message().contains("keepalive"), "{error}");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert!(!t.is_active());
}

#[test]
fn an_idle_connection_wants_only_input_and_has_no_timer() {
    let sshd = Sshd::start();
    let t = login(&sshd, |_| {});
    idle(&t, Duration::from_millis(300)).expect("idle");
    let wanted = t.wanted();
    assert!(wanted.read && !wanted.write, "{wanted:?}");
    assert_eq!(t.next_timeout(), None);
    let (out, _) = run(&t, "echo still here");
    assert_eq!(out, b"still here\n");
}

#[test]
fn a_remote_forward_reached_through_a_direct_channel() {
    let sshd = Sshd::start();
    let t = login(&sshd, |_| {});
    let port = drive(&t, || t.request_port_forward("127.0.0.1", 0)).expect("tcpip-forward");
    let out = drive(&t, || {
        t.open_direct_tcpip(("127.0.0.1", port), ("127.0.0.1", 4242))
    })
    .expect("direct-tcpip");
    let inbound = drive(&t, || t.accept(None)).expect("the forwarded channel");
    drive(&t, || out.send(b"around")).expect("send");
    drive(&t, || out.send_eof()).expect("eof");
    assert_eq!(read_to_end(&t, &inbound), b"around");
    drive(&t, || t.cancel_port_forward("127.0.0.1", port)).expect("cancel");
}

#[test]
fn logs_in_to_dropbear() {
    let dropbear = Dropbear::start();
    let t = login(&dropbear, |_| {});
    let (out, status) = run(&t, "echo from dropbear; exit 4");
    assert_eq!(out, b"from dropbear\n");
    assert_eq!(status, ExitStatus::Code(4));
}

#[test]
fn a_hostile_server_ends_in_a_specific_error() {
    let peer = FakePeer::start(|mut stream| {
        let mut hostile = b"SSH-2.0-hostile\r\n".to_vec();
        // A packet claiming 4 GiB.
        hostile.extend_from_slice(&[0xff; 64]);
        let _ = stream.write_all(&hostile);
        std::thread::sleep(Duration::from_secs(2));
    });
    let t = Transport::caller_driven(ByteStream::tcp(peer.connect()));
    let start = Instant::now();
    let error = drive(&t, || t.start_client()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    assert!(error.message().contains("length"), "{error}");
    assert!(start.elapsed() < Duration::from_secs(2));
}
