//! The client against a fake agent on a Unix socket, scripted per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::unix::net::UnixListener;
use std::thread::JoinHandle;

use super::protocol::*;
use super::*;
use crate::keys::testutil::TempDir;
use crate::keys::PrivateKey;
use crate::wire::{Reader, Writer};

/// Reads one framed request from the client; None at EOF.
fn read_request(stream: &mut UnixStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// What the fake agent does with a request.
enum Reply {
    /// Writes these bytes and waits for the next request.
    Send(Vec<u8>),
    /// Writes these bytes and closes the connection.
    SendAndClose(Vec<u8>),
    /// Closes the connection.
    Close,
}

/// A fake agent at `<dir>/agent.sock` that answers each request of each connection with
/// `answer(request)`. Its thread serves until the process ends.
fn fake_agent(
    dir: &TempDir,
    answer: impl Fn(&[u8]) -> Reply + Send + 'static,
) -> (PathBuf, JoinHandle<()>) {
    let path = dir.join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            while let Some(request) = read_request(&mut stream) {
                let (bytes, close) = match answer(&request) {
                    Reply::Send(bytes) => (bytes, false),
                    Reply::SendAndClose(bytes) => (bytes, true),
                    Reply::Close => (Vec::new(), true),
                };
                if stream.write_all(&bytes).is_err() || close {
                    break;
                }
            }
        }
    });
    (path, handle)
}

fn keys() -> Vec<PrivateKey> {
    vec![
        PrivateKey::ed25519_from_seed([7; 32]),
        PrivateKey::ed25519_from_seed([8; 32]),
    ]
}

/// A well-behaved agent holding `keys()`; signs honestly.
fn honest(request: &[u8]) -> Reply {
    let keys = keys();
    match request.first() {
        Some(&SSH_AGENTC_REQUEST_IDENTITIES) => {
            let mut w = Writer::new();
            w.u8(SSH_AGENT_IDENTITIES_ANSWER).u32(keys.len() as u32 + 1);
            for (i, k) in keys.iter().enumerate() {
                w.string(k.public_key().as_blob())
                    .string(format!("key {i}"));
            }
            // A key type Sekura does not use: left out of the list.
            w.string(b"\x00\x00\x00\x07ssh-dss").string("dss");
            Reply::Send(frame(&w.into_bytes()).unwrap())
        }
        Some(&SSH_AGENTC_SIGN_REQUEST) => {
            let mut r = Reader::new(&request[1..]);
            let blob = r.string("blob").unwrap();
            let data = r.string("data").unwrap();
            let _flags = r.u32("flags").unwrap();
            let Some(key) = keys.iter().find(|k| k.public_key().as_blob() == blob) else {
                return Reply::Send(frame(&[SSH_AGENT_FAILURE]).unwrap());
            };
            let signature = key.sign("ssh-ed25519", data).unwrap();
            let mut w = Writer::new();
            w.u8(SSH_AGENT_SIGN_RESPONSE).string(signature);
            Reply::Send(frame(&w.into_bytes()).unwrap())
        }
        _ => Reply::Send(frame(&[SSH_AGENT_FAILURE]).unwrap()),
    }
}

#[test]
fn agent_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Agent>();
    check::<AgentKey>();
}

#[test]
fn lists_and_signs() {
    let dir = TempDir::new("agent-honest");
    let (path, _server) = fake_agent(&dir, honest);
    let agent = Agent::connect_path(&path).unwrap();
    assert_eq!(agent.path(), path);
    let ids = agent.identities().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].public, keys()[0].public_key());
    assert_eq!(ids[1].comment, "key 1");
    for id in &ids {
        let sig = agent.sign(id, b"data to sign", "ssh-ed25519").unwrap();
        id.public
            .verify("ssh-ed25519", b"data to sign", &sig)
            .unwrap();
    }
    // Keys the agent does not hold: refused.
    let stranger = PrivateKey::ed25519_from_seed([9; 32]).public_key();
    let err = agent
        .sign_with_public_key(&stranger, b"x", "ssh-ed25519")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(
        err.message().contains(&stranger.fingerprint_sha256()),
        "{err}"
    );
    // An algorithm the key cannot make: refused before asking.
    let err = agent.sign(&ids[0], b"x", "rsa-sha2-256").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    // The connection is still good after a refusal.
    assert_eq!(agent.identities().unwrap().len(), 2);

    // From several threads at once.
    let agent = std::sync::Arc::new(agent);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let agent = agent.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(agent.identities().unwrap().len(), 2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn bad_signatures_are_caught() {
    let dir = TempDir::new("agent-liar");
    // Signs with the wrong key, or names another algorithm.
    let (path, _server) = fake_agent(&dir, |request| {
        if request.first() == Some(&SSH_AGENTC_SIGN_REQUEST) {
            let wrong = PrivateKey::ed25519_from_seed([1; 32])
                .sign("ssh-ed25519", b"something else")
                .unwrap();
            let mut w = Writer::new();
            w.u8(SSH_AGENT_SIGN_RESPONSE).string(wrong);
            return Reply::Send(frame(&w.into_bytes()).unwrap());
        }
        honest(request)
    });
    let agent = Agent::connect_path(&path).unwrap();
    let key = &agent.identities().unwrap()[0];
    let err = agent.sign(key, b"data", "ssh-ed25519").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(err.message().contains("bad ssh-ed25519 signature"), "{err}");
}

#[test]
fn hostile_agents_fail_cleanly() {
    type Script = fn(&[u8]) -> Reply;
    let cases: [(&str, Script, ErrorKind); 8] = [
        (
            "huge frame",
            |_| Reply::Send(vec![0xff, 0xff, 0xff, 0xff]),
            ErrorKind::Protocol,
        ),
        (
            "frame over the cap",
            |_| Reply::Send(vec![0, 4, 0, 1]),
            ErrorKind::Protocol,
        ),
        (
            "empty frame",
            |_| Reply::Send(vec![0, 0, 0, 0]),
            ErrorKind::Protocol,
        ),
        (
            "2^31 identities",
            |_| {
                let mut w = Writer::new();
                w.u8(SSH_AGENT_IDENTITIES_ANSWER).u32(1 << 31);
                Reply::Send(frame(&w.into_bytes()).unwrap())
            },
            ErrorKind::Protocol,
        ),
        (
            "u32::MAX identities",
            |_| Reply::Send(frame(&[12, 0xff, 0xff, 0xff, 0xff]).unwrap()),
            ErrorKind::Protocol,
        ),
        ("closes", |_| Reply::Close, ErrorKind::Io),
        (
            "short body then close",
            |_| Reply::SendAndClose(vec![0, 0, 0, 100, 12]),
            ErrorKind::Io,
        ),
        (
            "failure",
            |_| Reply::Send(frame(&[SSH_AGENT_FAILURE]).unwrap()),
            ErrorKind::Refused,
        ),
    ];
    for (i, (what, script, kind)) in cases.into_iter().enumerate() {
        let sub = TempDir::new(&format!("agent-hostile-{i}"));
        let (path, _server) = fake_agent(&sub, script);
        let agent = Agent::connect_path(&path).unwrap();
        let err = agent.identities().unwrap_err();
        assert_eq!(err.kind(), kind, "{what}: {err}");
        // The next request reconnects and fails the same way, without hanging.
        let err = agent.identities().unwrap_err();
        assert_eq!(err.kind(), kind, "{what} (again): {err}");
    }
}

#[test]
fn hung_agent_times_out() {
    let dir = TempDir::new("agent-hung");
    let (path, _server) = fake_agent(&dir, |_| {
        std::thread::sleep(Duration::from_secs(3));
        Reply::Close
    });
    let agent = Agent::connect_path(&path).unwrap();
    agent.set_timeout(Duration::from_millis(200));
    let start = Instant::now();
    let err = agent.identities().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("did not answer"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));

    // A trickling agent: one byte at a time, slower than the deadline allows in total.
    let dir = TempDir::new("agent-trickle");
    let path = dir.join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = read_request(&mut stream);
            for b in [0u8, 0, 0, 100].into_iter().chain(std::iter::repeat(12)) {
                if stream.write_all(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let agent = Agent::connect_path(&path).unwrap();
    agent.set_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = agent.identities().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn unavailable_agent() {
    let err = Agent::connect_auth_sock(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(
        err.message(),
        "ssh-agent unavailable: SSH_AUTH_SOCK is not set"
    );
    let err = Agent::connect_auth_sock(Some("".into())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    let dir = TempDir::new("agent-missing");
    let missing = dir.join("no-agent.sock");
    let err = Agent::connect_auth_sock(Some(missing.clone().into())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.message()
            .starts_with("ssh-agent unavailable: cannot connect to"),
        "{err}"
    );
    assert!(err.message().contains("no-agent.sock"), "{err}");
    // A regular file, and an over-long path.
    std::fs::write(&missing, b"").unwrap();
    assert_eq!(
        Agent::connect_path(&missing).unwrap_err().kind(),
        ErrorKind::Io
    );
    let long = dir.join(&"x".repeat(200));
    assert_eq!(
        Agent::connect_path(&long).unwrap_err().kind(),
        ErrorKind::Io
    );

    // An agent that went away after connecting: a clear I/O error, then again on retry.
    let gone = TempDir::new("agent-gone");
    let (path, _server) = fake_agent(&gone, |_| Reply::Close);
    let agent = Agent::connect_path(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(agent.identities().unwrap_err().kind(), ErrorKind::Io);
    let err = agent.identities().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("ssh-agent unavailable"), "{err}");
}

#[test]
fn oversized_request_is_refused_locally() {
    let dir = TempDir::new("agent-big");
    let (path, _server) = fake_agent(&dir, honest);
    let agent = Agent::connect_path(&path).unwrap();
    let key = keys()[0].public_key();
    let err = agent
        .sign_with_public_key(&key, &vec![0; MAX_FRAME], "ssh-ed25519")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    // The connection was not touched.
    assert_eq!(agent.identities().unwrap().len(), 2);
}
