//! Hostile clients against Sekura's server (SECURITY.md): USERAUTH_SUCCESS sent by a client
//! (libssh CVE-2018-10933), a channel opened before authentication, a packet length of
//! 2^31, more data than the window, and hundreds of connections that never authenticate.
//! Each costs its own connection only: a well-behaved client is served throughout, and the
//! server's memory stays bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKeyFormat};
use sekura::proto::ExitStatus;
use support::server::{generate, Policy, TestServer};

/// What the connection queued to send, moved out through `poll_transmit`.
fn transmit(conn: &mut sekura::proto::Connection) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _count = conn.poll_transmit(&mut bytes);
    bytes
}

const USER: &str = "alice";
const PASSWORD: &str = "opensesame";

fn server(grace: Option<Duration>) -> (TestServer, sekura::keys::PrivateKey) {
    let key = generate(KeyType::Ed25519, None);
    let policy = Policy {
        authorized_keys: vec![key.public_key()],
        password: Some((USER.into(), PASSWORD.into())),
        ..Policy::default()
    };
    let server = TestServer::start_with(policy, support::server::standard_host_keys(), move |t| {
        t.set_auth_limits(6, grace)
    });
    (server, key)
}

/// Runs tests/peers/paramiko_client.py; returns its stdout.
fn paramiko(port: u16, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/paramiko_client.py");
    let out = support::run_with_timeout(
        Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .args(args),
        Duration::from_secs(60),
    );
    assert!(
        out.success(),
        "paramiko_client.py {args:?} failed (python3 -m pip install paramiko if missing): {}{}",
        out.stdout(),
        out.stderr()
    );
    out.stdout()
}

/// A well-behaved client logs in and runs a command.
fn well_behaved(server: &TestServer, key: &sekura::keys::PrivateKey) {
    let t = support::driven::connect_on_driver(server.port(), Duration::from_secs(20));
    t.start_client().expect("handshake");
    t.auth_publickey(USER, key).expect("login");
    let ch = t.open_session().expect("session");
    ch.exec("echo still-serving").expect("exec");
    let mut buf = [0u8; 64];
    let n = ch.recv(&mut buf).expect("output");
    assert_eq!(&buf[..n], b"still-serving\n");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));
}

#[test]
fn paramiko_client_connects_and_runs_a_command() {
    let (server, key) = server(None);
    let path = server.dir().join("id_ed25519");
    key.write_file(&path, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write key");
    let out = paramiko(
        server.port(),
        &[
            "exec",
            path.to_str().expect("utf-8 path"),
            "echo paramiko; exit 7",
        ],
    );
    assert!(out.contains("STDOUT 'paramiko\\n'"), "{out}");
    assert!(out.contains("STATUS 7"), "{out}");
}

#[test]
fn userauth_success_from_a_client_ends_its_connection() {
    let (server, key) = server(None);
    let out = paramiko(server.port(), &["userauth-success"]);
    assert!(out.contains("CLOSED"), "{out}");
    assert!(
        server.asked().is_empty(),
        "no callback may run: {:?}",
        server.asked()
    );
    well_behaved(&server, &key);
}

#[test]
fn a_channel_opened_before_authentication_ends_the_connection() {
    let (server, key) = server(None);
    let out = paramiko(server.port(), &["open-before-auth"]);
    assert!(out.contains("CLOSED"), "{out}");
    assert!(!server.asked().iter().any(|a| a.starts_with("open")));
    well_behaved(&server, &key);
}

#[test]
fn data_beyond_the_window_ends_the_connection() {
    let (server, key) = server(None);
    let out = paramiko(server.port(), &["window-overflow", PASSWORD]);
    assert!(out.contains("CLOSED"), "{out}");
    well_behaved(&server, &key);
}

#[test]
fn a_packet_length_of_two_to_the_31_is_refused_without_allocating_it() {
    let (server, key) = server(None);
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"SSH-2.0-hostile\r\n").expect("version");
    s.write_all(&[0x80, 0, 0, 0, 4, 0, 0, 0])
        .expect("length 2^31");
    let mut seen = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        seen.starts_with(b"SSH-2.0-"),
        "the server identified itself"
    );
    well_behaved(&server, &key);
}

/// Held by the tests that measure memory, so that they never run at the same time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Resident memory of this process, in KiB (the server runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn hundreds_of_silent_connections_are_cut_off_and_others_still_served() {
    const SILENT: usize = 300;
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let (server, key) = server(Some(Duration::from_secs(3)));
    well_behaved(&server, &key);
    let before = rss_kib();
    let mut silent = Vec::new();
    for i in 0..SILENT {
        let mut s = TcpStream::connect(server.addr()).expect("connect");
        if i % 2 == 0 {
            // Half identify themselves and then say nothing more.
            s.write_all(b"SSH-2.0-silent\r\n").expect("version");
        }
        silent.push(s);
    }
    for _ in 0..3 {
        well_behaved(&server, &key);
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown = rss_kib().saturating_sub(before);
    eprintln!("{SILENT} silent connections: server grew by {grown} KiB");
    assert!(
        grown < 64 * 1024,
        "{SILENT} idle connections grew the server by {grown} KiB"
    );
    // After the grace time every silent connection is closed by the server.
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in &mut silent {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => panic!("a silent connection outlived the grace time: {e}"),
            }
        }
    }
    well_behaved(&server, &key);
}

/// Terrapin (CVE-2023-48795) against the server: an IGNORE slipped in before the client's
/// NEWKEYS would shift the sequence numbers unnoticed. With strict kex agreed, the server
/// refuses it and nobody logs in.
#[test]
fn an_inserted_ignore_during_the_initial_key_exchange_is_refused() {
    use support::{Direction, Frame, Relay};
    let (server, key) = server(None);
    let insert = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let relay = {
        let insert = insert.clone();
        Relay::with_frames(server.port(), move |dir, frame| {
            let newkeys = dir == Direction::ClientToServer && frame.msg_type() == Some(21);
            if newkeys && insert.load(std::sync::atomic::Ordering::SeqCst) {
                let ignore = support::relay::plaintext_packet(&[2, 0, 0, 0, 0]);
                return vec![Frame::Packet(ignore), frame];
            }
            vec![frame]
        })
    };
    let dir = support::fresh_dir("terrapin");
    let path = dir.join("id_ed25519");
    key.write_file(&path, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write key");
    let known_hosts = dir.join("known_hosts");
    let lines: String = server
        .host_keys
        .iter()
        .map(|k| {
            format!(
                "[127.0.0.1]:{} {}\n",
                relay.port,
                k.public_key().to_openssh()
            )
        })
        .collect();
    support::write_file(&known_hosts, lines.as_bytes(), 0o644);
    let login = || {
        support::run_with_timeout(
            support::ssh_command(relay.port, USER, &known_hosts)
                .arg("-i")
                .arg(&path)
                .args(["-o", "BatchMode=yes", "127.0.0.1", "echo in"]),
            Duration::from_secs(30),
        )
    };
    let untouched = login();
    untouched.assert_success("through the relay, untouched");
    assert_eq!(untouched.stdout(), "in\n");
    server.journal.lock().clear();

    insert.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = login();
    assert_eq!(out.status().code(), Some(255), "{}", out.stderr());
    assert!(
        out.stderr().contains("strict key exchange"),
        "the server names the violation: {}",
        out.stderr()
    );
    assert!(server.asked().is_empty(), "{:?}", server.asked());
    assert_eq!(relay.connections(), 2);
    well_behaved(&server, &key);
}

/// Runs `conn` over `socket` until `done` holds, writing what it queues and feeding it what
/// arrives.
fn drive(
    socket: &mut TcpStream,
    conn: &mut sekura::proto::Connection,
    done: impl Fn(&sekura::proto::Connection) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 64 * 1024];
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while !done(conn) {
        assert!(Instant::now() < deadline, "handshake stalled");
        socket.write_all(&transmit(conn)).expect("write");
        match socket.read(&mut buf) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => conn.handle_bytes(&buf[..n]).expect("handle"),
            Err(_) => {}
        }
    }
}

/// OpenSSH CVE-2025-26466 in spirit: an authenticated client sends requests that each need
/// an answer and never reads the answers. The server stops reading once a few MiB of
/// answers wait, so the flood costs it a bounded amount of memory, and others are served.
#[test]
fn a_client_that_never_reads_its_answers_cannot_grow_the_server() {
    use sekura::crypto::rng::OsRandom;
    use sekura::proto::{Connection, ConnectionConfig};
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let (server, key) = server(None);
    well_behaved(&server, &key);
    let before = rss_kib();
    let mut socket = TcpStream::connect(server.addr()).expect("connect");
    let mut conn = Connection::client(&ConnectionConfig::default(), Box::new(OsRandom));
    drive(&mut socket, &mut conn, Connection::is_established);
    drive(&mut socket, &mut conn, |c| {
        *c.auth_status() != sekura::proto::AuthStatus::AwaitingService
    });
    conn.auth_password(USER, PASSWORD).expect("password");
    drive(&mut socket, &mut conn, Connection::is_authenticated);

    socket.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut pending = Vec::new();
    let mut sent = 0usize;
    let mut last_progress = Instant::now();
    // Flood until the server stops taking requests for a whole second.
    while last_progress.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < deadline,
            "the server kept reading requests whose answers nobody takes ({sent} bytes)"
        );
        if pending.is_empty() {
            for _ in 0..1000 {
                conn.global_request("keepalive@openssh.com", true, &[])
                    .expect("request");
            }
            pending = transmit(&mut conn);
        }
        match socket.write(&pending) {
            Ok(n) => {
                pending.drain(..n);
                sent += n;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("the server cut the connection: {e}"),
        }
    }
    well_behaved(&server, &key);
    let grown = rss_kib().saturating_sub(before);
    eprintln!("sent {sent} bytes of requests; the process grew by {grown} KiB");
    assert!(
        grown < 64 * 1024,
        "a client that never reads grew the server by {grown} KiB"
    );
    drop(socket);
}
