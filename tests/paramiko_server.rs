//! Sekura's client against a second, independent SSH server: Paramiko's (Python), run from
//! tests/peers/paramiko_server.py. Covers keyboard-interactive authentication (RFC 4256) with
//! two rounds of prompts, its refusal and abandonment, and password authentication.
//!
//! Never skipped: without Paramiko the tests fail, saying `python3 -m pip install paramiko`.

mod support;

use sekura::proto::{ExitStatus, InfoRequest};
use sekura::transport::{AuthDenied, Transport};
use sekura::ErrorKind;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The methods Paramiko's server offers, in its order.
fn offered_methods() -> Vec<String> {
    vec!["keyboard-interactive".to_owned(), "password".to_owned()]
}

/// A running tests/peers/paramiko_server.py; killed on drop, its logs printed if the test
/// failed.
struct ParamikoServer {
    child: Child,
    port: u16,
    /// The host key's SHA256 fingerprint, as the server printed it.
    host_key_fingerprint: String,
    dir: PathBuf,
}

impl ParamikoServer {
    fn start() -> ParamikoServer {
        require_paramiko();
        let dir = support::fresh_dir("paramiko");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/paramiko_server.py");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--port")
            .arg("0")
            .arg("--log")
            .arg(dir.join("paramiko.log"))
            // The server exits when its stdin closes, so it cannot outlive this process.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));

        // Read "PORT <n>" and "HOSTKEY <fingerprint>" with a deadline (key generation takes
        // a moment); a thread does the blocking reads.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ParamikoServer {
            child,
            port: 0,
            host_key_fingerprint: String::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.port == 0 || server.host_key_fingerprint.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "paramiko_server.py did not announce its port and host key ({e}); \
                     stderr: {}",
                    server.read_log("stderr.log")
                ),
            };
            if let Some(port) = line.strip_prefix("PORT ") {
                server.port = port.trim().parse().expect("PORT line holds a port number");
            } else if let Some(fp) = line.strip_prefix("HOSTKEY ") {
                server.host_key_fingerprint = fp.trim().to_owned();
            } else {
                panic!("unexpected line from paramiko_server.py: {line:?}");
            }
        }
        server
    }

    /// A connected client transport that finished the key exchange and checked the host key.
    fn connect(&self) -> Transport {
        let t = support::driven::connect_on_driver(self.port, TIMEOUT);
        t.start_client().expect("key exchange with Paramiko");
        let key = t.remote_server_key().expect("host key");
        assert_eq!(key.fingerprint_sha256(), self.host_key_fingerprint);
        t
    }

    fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| format!("<{e}>"))
    }
}

impl Drop for ParamikoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- paramiko_server.py stderr ---\n{}\n--- Paramiko log ({}) ---\n{}",
                self.read_log("stderr.log"),
                self.dir.join("paramiko.log").display(),
                self.read_log("paramiko.log")
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Fails (never skips) when Python cannot import Paramiko.
fn require_paramiko() {
    let out = Command::new("python3")
        .args(["-c", "import paramiko"])
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 cannot import paramiko: install it with `python3 -m pip install paramiko` \
             (pip install paramiko); Sekura's tests never skip a peer.\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run python3 ({e}): install Python 3 and then `python3 -m pip install \
             paramiko` (pip install paramiko); Sekura's tests never skip a peer"
        ),
    }
}

/// The first round of prompts the server asks.
fn assert_round1(req: &InfoRequest) {
    assert_eq!(req.name, "sekura-test");
    assert_eq!(req.instruction, "answer both");
    assert_eq!(
        req.prompts,
        vec![
            ("Password: ".to_owned(), false),
            ("Code: ".to_owned(), true)
        ]
    );
}

/// The second round, asked only after the right first answers.
fn assert_round2(req: &InfoRequest) {
    assert_eq!(req.name, "sekura-test");
    assert_eq!(req.prompts, vec![("Again: ".to_owned(), false)]);
}

fn answers(a: &[&str]) -> Option<Vec<String>> {
    Some(a.iter().map(|s| (*s).to_owned()).collect())
}

/// Runs "hello" on a new session and checks Paramiko's canned answer.
fn exec_hello(t: &Transport) {
    let ch = t.open_session().expect("open session");
    ch.exec("hello").expect("exec");
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = ch.recv(&mut buf).expect("recv");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&out), "ran: hello\n");
    assert_eq!(
        ch.recv_exit_status().expect("exit status"),
        ExitStatus::Code(7)
    );
}

#[test]
fn keyboard_interactive_two_rounds_then_exec() {
    let server = ParamikoServer::start();
    let t = server.connect();
    let mut rounds = 0;
    t.auth_interactive("alice", |req| {
        rounds += 1;
        match rounds {
            1 => {
                assert_round1(req);
                answers(&["secret", "1234"])
            }
            2 => {
                assert_round2(req);
                answers(&["ok"])
            }
            n => panic!("unexpected round {n}: {req:?}"),
        }
    })
    .expect("keyboard-interactive authentication");
    assert_eq!(rounds, 2);
    assert!(t.is_authenticated());
    assert_eq!(t.auth_denied(), None);
    exec_hello(&t);
}

#[test]
fn keyboard_interactive_wrong_answers_are_denied() {
    let server = ParamikoServer::start();
    let t = server.connect();

    // Wrong in the first round: no second round, a refusal listing what can continue.
    let mut rounds = 0;
    let e = t
        .auth_interactive("alice", |req| {
            rounds += 1;
            assert_eq!(rounds, 1, "no second round after wrong answers");
            assert_round1(req);
            answers(&["secret", "0000"])
        })
        .expect_err("wrong answers must be refused");
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{e}");
    assert_eq!(
        t.auth_denied(),
        Some(AuthDenied {
            methods: offered_methods(),
            partial: false,
        })
    );
    assert!(!t.is_authenticated());

    // Right in the first round, wrong in the second: refused too, on the same connection.
    let mut rounds = 0;
    let e = t
        .auth_interactive("alice", |req| {
            rounds += 1;
            match rounds {
                1 => {
                    assert_round1(req);
                    answers(&["secret", "1234"])
                }
                2 => {
                    assert_round2(req);
                    answers(&["not ok"])
                }
                n => panic!("unexpected round {n}: {req:?}"),
            }
        })
        .expect_err("a wrong second answer must be refused");
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{e}");
    assert_eq!(rounds, 2);
    assert_eq!(
        t.auth_denied(),
        Some(AuthDenied {
            methods: offered_methods(),
            partial: false,
        })
    );

    // After the refusals the connection still authenticates with another method.
    t.auth_password("alice", "pw")
        .expect("password authentication after refusals");
    assert!(t.is_authenticated());
    exec_hello(&t);
}

#[test]
fn keyboard_interactive_abandoned_does_not_hang() {
    let server = ParamikoServer::start();
    let t = server.connect();
    let start = Instant::now();
    let mut rounds = 0;
    let e = t
        .auth_interactive("alice", |req| {
            rounds += 1;
            assert_round1(req);
            None
        })
        .expect_err("giving up must fail the authentication");
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{e}");
    assert!(e.message().contains("abandoned"), "{e}");
    assert_eq!(rounds, 1);
    assert!(
        start.elapsed() < TIMEOUT / 2,
        "giving up took {:?}",
        start.elapsed()
    );
    assert!(!t.is_authenticated());
    t.auth_password("alice", "pw")
        .expect("a new request after giving up abandons the old one (RFC 4252 section 5)");
    assert!(t.is_authenticated());
}

#[test]
fn password_authentication() {
    let server = ParamikoServer::start();

    let t = server.connect();
    let e = t
        .auth_password("alice", "wrong")
        .expect_err("a wrong password must be refused");
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{e}");
    assert_eq!(
        t.auth_denied(),
        Some(AuthDenied {
            methods: offered_methods(),
            partial: false,
        })
    );
    drop(t);

    let t = server.connect();
    t.auth_password("alice", "pw")
        .expect("password authentication");
    assert!(t.is_authenticated());
    exec_hello(&t);
}
