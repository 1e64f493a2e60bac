//! Sekura's client against Sekura's server in one process: every ServerHandler callback is
//! asked, its answers (denials included) reach the client, multi-factor logins, the limits
//! on failed attempts and on unauthenticated time, and key exchange methods OpenSSH 9.2 does
//! not speak (mlkem768x25519-sha256).

mod support;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sekura::keys::{KeyType, PrivateKey, PublicKey};
use sekura::proto::{AlgorithmKind, ChannelId, ExitStatus};
use sekura::transport::{
    AuthResult, ByteStream, Channel, DirectTcpip, InteractiveQuery, InteractiveResult, OpenResult,
    PtyRequest, ServerHandler, Transport, WindowChange, X11Request,
};
use sekura::ErrorKind;
use support::server::{generate, standard_host_keys};

const USER: &str = "bob";
const PASSWORD: &str = "hunter2";

/// A handler that records every question and answers from a fixed policy.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<String>>,
    key: Option<PublicKey>,
    /// Methods required in order; each but the last is a partial success.
    chain: Vec<&'static str>,
    done: Mutex<usize>,
}

impl Recorder {
    fn note(&self, s: String) {
        self.asked.lock().push(s);
    }

    fn step(&self, method: &str, ok: bool) -> AuthResult {
        if !ok {
            return AuthResult::Failed;
        }
        if self.chain.is_empty() {
            return AuthResult::Success;
        }
        let mut done = self.done.lock();
        if self.chain.get(*done) != Some(&method) {
            return AuthResult::Failed;
        }
        *done += 1;
        if *done == self.chain.len() {
            AuthResult::Success
        } else {
            AuthResult::PartiallySuccessful
        }
    }
}

impl ServerHandler for Recorder {
    fn allowed_auths(&self, _user: &str) -> String {
        match self.chain.get(*self.done.lock()) {
            Some(next) => (*next).to_owned(),
            None => "publickey,password,keyboard-interactive".to_owned(),
        }
    }

    fn check_auth_none(&self, user: &str) -> AuthResult {
        self.note(format!("none {user}"));
        AuthResult::Failed
    }

    fn check_auth_password(&self, user: &str, password: &str) -> AuthResult {
        self.note(format!("password {user}"));
        self.step("password", user == USER && password == PASSWORD)
    }

    fn check_auth_publickey(&self, user: &str, key: &PublicKey, verified: bool) -> AuthResult {
        self.note(format!("publickey {user} {verified}"));
        let known = self.key.as_ref() == Some(key);
        if verified {
            self.step("publickey", known)
        } else if known {
            AuthResult::Success
        } else {
            AuthResult::Failed
        }
    }

    fn check_auth_interactive(&self, user: &str, _submethods: &str) -> InteractiveResult {
        self.note(format!("interactive {user}"));
        InteractiveResult::Query(InteractiveQuery {
            name: "round 1".into(),
            instructions: "first".into(),
            prompts: vec![("Code: ".into(), true)],
        })
    }

    fn check_auth_interactive_response(
        &self,
        _user: &str,
        answers: &[String],
    ) -> InteractiveResult {
        self.note(format!("answers {answers:?}"));
        match answers {
            [code] if code == "123" => InteractiveResult::Query(InteractiveQuery {
                name: "round 2".into(),
                instructions: "second".into(),
                prompts: vec![("Password: ".into(), false), ("Again: ".into(), false)],
            }),
            [a, b] if a == PASSWORD && b == PASSWORD => {
                InteractiveResult::Done(self.step("keyboard-interactive", true))
            }
            _ => InteractiveResult::Done(AuthResult::Failed),
        }
    }

    fn check_channel_request(&self, kind: &str, _channel: ChannelId) -> OpenResult {
        self.note(format!("open {kind}"));
        OpenResult::Succeeded
    }

    fn check_channel_direct_tcpip_request(&self, _c: ChannelId, r: &DirectTcpip) -> OpenResult {
        self.note(format!(
            "direct-tcpip {}:{} from {}:{}",
            r.host, r.port, r.origin_host, r.origin_port
        ));
        OpenResult::ConnectFailed
    }

    fn check_channel_exec_request(&self, _channel: ChannelId, command: &[u8]) -> bool {
        self.note(format!("exec {}", String::from_utf8_lossy(command)));
        command != b"forbidden"
    }

    fn check_channel_shell_request(&self, _channel: ChannelId) -> bool {
        self.note("shell".into());
        false
    }

    fn check_channel_pty_request(&self, _channel: ChannelId, pty: &PtyRequest) -> bool {
        self.note(format!(
            "pty {} {}x{} {:?}",
            pty.term, pty.width_chars, pty.height_rows, pty.modes
        ));
        true
    }

    fn check_channel_subsystem_request(&self, _channel: ChannelId, name: &str) -> bool {
        self.note(format!("subsystem {name}"));
        false
    }

    fn check_channel_env_request(&self, _channel: ChannelId, name: &str, value: &[u8]) -> bool {
        self.note(format!("env {name}={}", String::from_utf8_lossy(value)));
        name == "LANG"
    }

    fn check_channel_window_change_request(&self, _c: ChannelId, size: &WindowChange) -> bool {
        self.note(format!(
            "window-change {}x{}",
            size.width_chars, size.height_rows
        ));
        true
    }

    fn check_channel_x11_request(&self, _channel: ChannelId, x11: &X11Request) -> bool {
        self.note(format!("x11 {} {}", x11.auth_protocol, x11.screen));
        false
    }

    fn check_channel_forward_agent_request(&self, _channel: ChannelId) -> bool {
        self.note("agent".into());
        true
    }

    fn check_port_forward_request(&self, address: &str, port: u32) -> Option<u32> {
        self.note(format!("forward {address}:{port}"));
        (address == "127.0.0.1").then_some(if port == 0 { 4242 } else { port })
    }

    fn cancel_port_forward_request(&self, address: &str, port: u32) {
        self.note(format!("cancel {address}:{port}"));
    }

    fn check_global_request(&self, name: &str, data: &[u8]) -> Option<Vec<u8>> {
        self.note(format!("global {name} {data:?}"));
        (name == "echo@sekura").then(|| data.to_vec())
    }

    fn banner(&self) -> Option<String> {
        Some("Authorized use only.\n".into())
    }
}

/// A server transport on one accepted connection, run on its own thread.
struct Served {
    client: Transport,
    server: Arc<Transport>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.client.close();
        self.server.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects our client to our server (started with `handler` after `setup`); the server's
/// accepted channels are handed to `session`.
fn serve(
    handler: Arc<dyn ServerHandler>,
    setup: impl FnOnce(&Transport),
    session: impl Fn(Channel) + Send + Sync + 'static,
) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client_socket = TcpStream::connect(addr).expect("connect");
    let (server_socket, _) = listener.accept().expect("accept");
    let server = Arc::new(support::driven::transport(
        ByteStream::tcp(server_socket),
        Duration::from_secs(60),
    ));
    for key in standard_host_keys() {
        server.add_server_key(key).expect("host key");
    }
    setup(&server);
    let thread = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            if server.start_server(handler).is_err() {
                return;
            }
            let session = Arc::new(session);
            while let Ok(channel) = server.accept(None) {
                let session = Arc::clone(&session);
                std::thread::spawn(move || session(channel));
            }
        })
    };
    let client =
        support::driven::transport(ByteStream::tcp(client_socket), Duration::from_secs(60));
    Served {
        client,
        server,
        thread: Some(thread),
    }
}

/// Answers exec on the server side: "hello" on stdout, "oops" on stderr, exit 3.
fn reply_and_exit(channel: Channel) {
    let mut buf = [0u8; 64];
    let _ = channel.sendall(b"hello");
    let _ = channel.sendall_stderr(b"oops");
    let _ = channel.recv(&mut buf);
    let _ = channel.send_exit_status(3);
    let _ = channel.send_eof();
    let _ = channel.close();
}

fn read_all(read: impl Fn(&mut [u8]) -> sekura::Result<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

#[test]
fn every_callback_is_asked_and_its_answer_reaches_the_client() {
    let user_key = generate(KeyType::Ed25519, None);
    let stranger = generate(KeyType::EcdsaP256, None);
    let recorder = Arc::new(Recorder {
        key: Some(user_key.public_key()),
        ..Recorder::default()
    });
    let served = serve(recorder.clone(), |_| {}, reply_and_exit);
    let t = &served.client;
    t.start_client().expect("handshake");
    assert_eq!(
        t.remote_server_key().expect("host key"),
        standard_host_keys()[0].public_key(),
        "Ed25519 is our first host key algorithm"
    );

    let e = t.auth_none(USER).expect_err("none is refused");
    assert_eq!(e.kind(), ErrorKind::AuthDenied);
    assert_eq!(t.banner().as_deref(), Some("Authorized use only.\n"));
    let denied = t.auth_denied().expect("methods");
    assert_eq!(
        denied.methods,
        ["publickey", "password", "keyboard-interactive"]
    );
    assert!(t.auth_password(USER, "wrong").is_err());
    assert!(t.auth_publickey(USER, &stranger).is_err());
    let mut rounds = Vec::new();
    t.auth_interactive(USER, |req| {
        rounds.push((req.name.clone(), req.prompts.clone()));
        Some(match req.prompts.len() {
            1 => vec!["123".to_owned()],
            _ => vec![PASSWORD.to_owned(), PASSWORD.to_owned()],
        })
    })
    .expect("two rounds of keyboard-interactive");
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0].1, [("Code: ".to_owned(), true)]);
    assert!(t.is_authenticated());
    assert!(served.server.is_authenticated());
    assert_eq!(served.server.authenticated_key(), None, "not a key login");

    let ch = t.open_session().expect("session");
    ch.set_environment_variable("LANG", "C")
        .expect("LANG accepted");
    let e = ch
        .set_environment_variable("SECRET", "x")
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Refused);
    ch.get_pty(&PtyRequest {
        term: "vt100".into(),
        width_chars: 80,
        height_rows: 24,
        modes: vec![53, 0, 0, 0, 1, 0],
        ..PtyRequest::default()
    })
    .expect("pty");
    ch.resize_pty(&WindowChange {
        width_chars: 100,
        height_rows: 30,
        ..WindowChange::default()
    })
    .expect("window change");
    assert!(ch
        .request_x11(&X11Request {
            auth_protocol: "MIT-MAGIC-COOKIE-1".into(),
            auth_cookie: "00ff".into(),
            ..X11Request::default()
        })
        .is_err());
    ch.request_forward_agent().expect("agent forwarding");
    assert!(ch.invoke_subsystem("nope").is_err());
    assert!(ch.invoke_shell().is_err());
    ch.exec("run").expect("exec");
    ch.send_eof().expect("eof");
    assert_eq!(read_all(|b| ch.recv(b)), b"hello");
    assert_eq!(read_all(|b| ch.recv_stderr(b)), b"oops");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(3));

    let Err(e) = t.open_direct_tcpip(("db.internal", 5432), ("127.0.0.1", 40000)) else {
        panic!("direct-tcpip must be refused");
    };
    assert!(e.message().contains("reason 2"), "{e}");
    let port = t
        .global_request("tcpip-forward", &wire(&["127.0.0.1"], 0), true)
        .expect("forward accepted")
        .expect("reply");
    assert_eq!(port, 4242u32.to_be_bytes());
    assert!(t
        .global_request("tcpip-forward", &wire(&["0.0.0.0"], 22), true)
        .is_err());
    t.global_request("cancel-tcpip-forward", &wire(&["127.0.0.1"], 4242), true)
        .expect("cancel");
    assert_eq!(
        t.global_request("echo@sekura", b"ping", true)
            .expect("custom request")
            .expect("reply"),
        b"ping"
    );
    assert!(t.global_request("unknown@sekura", b"", true).is_err());

    let asked = recorder.asked.lock().clone();
    let expected = [
        "none bob",
        "password bob",
        // Our client signs at once: the signature is verified, then the key refused.
        "publickey bob true",
        "interactive bob",
        "answers [\"123\"]",
        "open session",
        "env LANG=C",
        "env SECRET=x",
        "pty vt100 80x24 [53, 0, 0, 0, 1, 0]",
        "window-change 100x30",
        "x11 MIT-MAGIC-COOKIE-1 0",
        "agent",
        "subsystem nope",
        "shell",
        "exec run",
        "direct-tcpip db.internal:5432 from 127.0.0.1:40000",
        "forward 127.0.0.1:0",
        "forward 0.0.0.0:22",
        "cancel 127.0.0.1:4242",
        "global echo@sekura [112, 105, 110, 103]",
        "global unknown@sekura []",
    ];
    for e in expected {
        assert!(asked.iter().any(|a| a == e), "{e:?} not asked: {asked:?}");
    }
}

/// `strings` then a port, as tcpip-forward requests carry them.
fn wire(strings: &[&str], port: u32) -> Vec<u8> {
    let mut w = sekura::wire::Writer::new();
    for s in strings {
        w.string(s);
    }
    w.u32(port);
    w.into_bytes()
}

#[test]
fn multi_factor_publickey_then_password() {
    let user_key = generate(KeyType::Ed25519, None);
    let recorder = Arc::new(Recorder {
        key: Some(user_key.public_key()),
        chain: vec!["publickey", "password"],
        ..Recorder::default()
    });
    let served = serve(recorder.clone(), |_| {}, reply_and_exit);
    let t = &served.client;
    t.start_client().expect("handshake");
    assert!(t.auth_password(USER, PASSWORD).is_err(), "password first");
    let e = t
        .auth_publickey(USER, &user_key)
        .expect_err("more is needed");
    assert_eq!(e.kind(), ErrorKind::AuthDenied);
    let denied = t.auth_denied().expect("partial");
    assert!(denied.partial);
    assert_eq!(denied.methods, ["password"]);
    assert!(!t.is_authenticated());
    t.auth_password(USER, PASSWORD).expect("second factor");
    assert!(t.is_authenticated());
    assert_eq!(
        served.server.authenticated_key(),
        Some(user_key.public_key()),
        "the key of the first factor is the key the user proved"
    );
}

#[test]
fn publickey_login_records_the_key() {
    let user_key = generate(KeyType::EcdsaP384, None);
    let recorder = Arc::new(Recorder {
        key: Some(user_key.public_key()),
        ..Recorder::default()
    });
    let served = serve(recorder, |_| {}, reply_and_exit);
    served.client.start_client().expect("handshake");
    served
        .client
        .auth_publickey(USER, &user_key)
        .expect("publickey");
    assert_eq!(
        served.server.authenticated_key(),
        Some(user_key.public_key())
    );
    assert_eq!(served.server.username().as_deref(), Some(USER));
}

#[test]
fn too_many_failures_end_the_connection() {
    let served = serve(
        Arc::new(Recorder::default()),
        |t| t.set_auth_limits(3, None),
        reply_and_exit,
    );
    let t = &served.client;
    t.start_client().expect("handshake");
    assert!(t.auth_password(USER, "a").is_err());
    assert!(t.auth_password(USER, "b").is_err());
    let e = t.auth_password(USER, "c").expect_err("third failure");
    assert!(
        e.message().contains("too many authentication failures"),
        "{e}"
    );
    assert!(t.auth_password(USER, PASSWORD).is_err());
    assert!(!t.is_active());
}

#[test]
fn an_idle_unauthenticated_client_is_cut_off_after_the_grace_time() {
    let served = serve(
        Arc::new(Recorder::default()),
        |t| t.set_auth_limits(6, Some(Duration::from_millis(800))),
        reply_and_exit,
    );
    let t = &served.client;
    t.start_client().expect("handshake");
    let start = Instant::now();
    while t.is_active() && start.elapsed() < Duration::from_secs(10) {
        support::driven::let_run(t, Duration::from_millis(50));
    }
    assert!(!t.is_active(), "still connected after 10 s");
    assert!(start.elapsed() < Duration::from_secs(4));
    assert!(!served.server.is_active());
}

static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn subsystem_handler_runs_on_its_own_thread() {
    let user_key = generate(KeyType::Ed25519, None);
    let recorder = Arc::new(Recorder {
        key: Some(user_key.public_key()),
        ..Recorder::default()
    });
    let served = serve(
        recorder.clone(),
        |t| {
            t.set_subsystem_handler(
                "upper",
                Arc::new(|channel: Channel, name: &str| {
                    assert_eq!(name, "upper");
                    assert_eq!(
                        STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                        0,
                        "one handler thread"
                    );
                    let data = read_all(|b| channel.recv(b));
                    let _ = channel.sendall(&data.to_ascii_uppercase());
                    let _ = channel.send_exit_status(0);
                }),
            )
        },
        |accepted| {
            // Dropping the last handle would close the channel: keep it until the client
            // is done.
            while !accepted.eof_received() {
                std::thread::sleep(Duration::from_millis(10));
            }
        },
    );
    let t = &served.client;
    t.start_client().expect("handshake");
    t.auth_publickey(USER, &user_key).expect("login");
    let ch = t.open_session().expect("session");
    ch.invoke_subsystem("upper").expect("registered subsystem");
    assert!(
        ch.invoke_subsystem("upper").is_err(),
        "a session runs one subsystem, once"
    );
    assert!(ch.exec("true").is_err(), "nor an exec after it");
    ch.sendall(b"shout").expect("send");
    ch.send_eof().expect("eof");
    assert_eq!(read_all(|b| ch.recv(b)), b"SHOUT");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));
    assert!(
        !recorder
            .asked
            .lock()
            .iter()
            .any(|a| a.starts_with("subsystem")),
        "a registered subsystem does not ask the callback"
    );
}

/// Every key exchange method and host key type between our own ends, mlkem768x25519 (which
/// OpenSSH 9.2 lacks) and group exchange from /etc/ssh/moduli included, with compression
/// and a rekey started by the server.
#[test]
fn every_kex_and_host_key_between_our_client_and_server() {
    let user_key = generate(KeyType::Ed25519, None);
    let mut host_keys = standard_host_keys();
    host_keys.push(generate(KeyType::Dsa, None));
    for kex in AlgorithmKind::Kex.supported_names() {
        for host_key in ["ssh-ed25519", "rsa-sha2-256"] {
            run_one(&user_key, &host_keys, kex, host_key);
        }
    }
    for host_key in AlgorithmKind::HostKey.supported_names() {
        run_one(&user_key, &host_keys, "curve25519-sha256", host_key);
    }
}

fn run_one(user_key: &PrivateKey, host_keys: &[PrivateKey], kex: &str, host_key: &str) {
    let recorder = Arc::new(Recorder {
        key: Some(user_key.public_key()),
        ..Recorder::default()
    });
    let keys = host_keys.to_vec();
    let served = serve(
        recorder,
        move |t| {
            for k in keys {
                t.add_server_key(k).expect("host key");
            }
            t.set_preferred(AlgorithmKind::Kex, kex).expect("kex");
            t.set_preferred(AlgorithmKind::HostKey, host_key)
                .expect("host key algorithm");
            t.use_compression(true).expect("compression");
            t.load_server_moduli(std::path::Path::new("/etc/ssh/moduli"))
                .expect("/etc/ssh/moduli (openssh-server)");
        },
        reply_and_exit,
    );
    let t = &served.client;
    t.set_preferred(AlgorithmKind::Kex, kex).expect("kex");
    t.set_preferred(AlgorithmKind::HostKey, host_key)
        .expect("host key algorithm");
    t.use_compression(true).expect("compression");
    t.start_client()
        .unwrap_or_else(|e| panic!("{kex} with {host_key}: {e}"));
    t.auth_publickey(USER, user_key).expect("login");
    // The server renews the keys while the client runs a command (a caller-driven
    // client moves only inside its calls).
    let rekey = {
        let server = Arc::clone(&served.server);
        std::thread::spawn(move || server.renegotiate_keys())
    };
    while served.server.key_exchange_count() < 2 && !rekey.is_finished() {
        support::driven::let_run(t, Duration::from_millis(10));
    }
    rekey.join().expect("rekey thread").expect("server rekey");
    let ch = t.open_session().expect("session");
    ch.exec("run").expect("exec");
    ch.send_eof().expect("eof");
    assert_eq!(read_all(|b| ch.recv(b)), b"hello", "{kex} {host_key}");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(3));
    assert_eq!(t.key_exchange_count(), 2);
}

/// Sends its whole answer from inside check_channel_exec_request, before the library has
/// queued the reply to the exec request: the client must still see the reply first.
struct Eager {
    key: PublicKey,
    accepted: Mutex<Vec<Channel>>,
}

impl ServerHandler for Eager {
    fn check_auth_publickey(&self, _user: &str, key: &PublicKey, _verified: bool) -> AuthResult {
        if *key == self.key {
            AuthResult::Success
        } else {
            AuthResult::Failed
        }
    }

    fn check_channel_request(&self, _kind: &str, _channel: ChannelId) -> OpenResult {
        OpenResult::Succeeded
    }

    fn check_channel_exec_request(&self, channel: ChannelId, _command: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let accepted = self.accepted.lock();
            if let Some(ch) = accepted.iter().find(|c| c.id() == channel) {
                ch.sendall(b"early").expect("send");
                ch.send_exit_status(0).expect("exit status");
                ch.send_eof().expect("eof");
                ch.close().expect("close");
                return true;
            }
            drop(accepted);
            assert!(Instant::now() < deadline, "channel never accepted");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn the_reply_to_a_request_precedes_what_the_server_sends_after_deciding() {
    let user_key = generate(KeyType::Ed25519, None);
    let eager = Arc::new(Eager {
        key: user_key.public_key(),
        accepted: Mutex::new(Vec::new()),
    });
    let holder = Arc::clone(&eager);
    let served = serve(
        eager,
        |_| {},
        move |channel| {
            holder.accepted.lock().push(channel);
        },
    );
    let t = &served.client;
    t.start_client().expect("handshake");
    t.auth_publickey(USER, &user_key).expect("login");
    for _ in 0..20 {
        let ch = t.open_session().expect("session");
        ch.exec("go")
            .expect("the exec reply arrives before the channel closes");
        assert_eq!(read_all(|b| ch.recv(b)), b"early");
        assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));
    }
}

#[test]
fn a_busy_unauthenticated_client_is_still_cut_off_at_the_grace_time() {
    let served = serve(
        Arc::new(Recorder::default()),
        |t| t.set_auth_limits(6, Some(Duration::from_millis(800))),
        reply_and_exit,
    );
    let t = &served.client;
    t.start_client().expect("handshake");
    let start = Instant::now();
    // IGNOREs back to back: the server's reads never time out.
    while t.send_ignore(0).is_ok() && start.elapsed() < Duration::from_secs(10) {}
    assert!(start.elapsed() < Duration::from_secs(4), "still connected");
    assert!(!served.server.is_active());
}

#[test]
fn a_channel_closed_before_it_is_accepted_reads_as_closed() {
    let user_key = generate(KeyType::Ed25519, None);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client_socket = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server_socket, _) = listener.accept().expect("accept");
    // Threads: the server must take the channel and its close while nobody calls it.
    let server = Arc::new(Transport::new(server_socket));
    server
        .add_server_key(standard_host_keys()[0].clone())
        .expect("host key");
    let handler = Arc::new(Recorder {
        key: Some(user_key.public_key()),
        ..Recorder::default()
    });
    let starting = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.start_server(handler))
    };
    let client =
        support::driven::transport(ByteStream::tcp(client_socket), Duration::from_secs(60));
    client.start_client().expect("handshake");
    starting.join().expect("thread").expect("server handshake");
    client.auth_publickey(USER, &user_key).expect("login");
    let ch = client.open_session().expect("session");
    ch.exec("run").expect("exec");
    ch.close().expect("close");
    drop(ch);
    std::thread::sleep(Duration::from_millis(300));

    let accepted = server
        .accept(Some(Duration::from_secs(5)))
        .expect("the closed channel is still handed over");
    accepted.set_timeout(Some(Duration::from_secs(5)));
    let start = Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(accepted.recv(&mut buf).expect("EOF"), 0);
    assert!(accepted.recv_exit_status().is_err());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "reads must not wait"
    );
    drop(accepted);
    client.close();
    server.close();
}

/// A handler that refuses everything: enough for a handshake.
struct RefuseAll;

impl ServerHandler for RefuseAll {}

/// One `ServerConfig` serves many connections without being copied: each transport and
/// each connection holds a share of the same host keys.
#[test]
fn one_server_config_is_shared_by_every_connection() {
    use sekura::proto::server::ServerConfig;
    let mut config = ServerConfig::default();
    config.add_host_key(generate(KeyType::Ed25519, None));
    let config = Arc::new(config);
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let server = support::driven::transport(ByteStream::unix(ours), Duration::from_secs(60));
        server.set_server_config(Arc::clone(&config));
        let client = support::driven::transport(ByteStream::unix(theirs), Duration::from_secs(60));
        let started = std::thread::spawn(move || {
            server
                .start_server(Arc::new(RefuseAll))
                .expect("server handshake");
            server
        });
        client.start_client().expect("client handshake");
        let server = started.join().expect("server thread");
        assert_eq!(
            client.remote_server_key().expect("host key"),
            config.host_keys[0].public_key()
        );
        pairs.push((client, server));
    }
    // Ours, and for each connection its transport's and its protocol state's.
    assert_eq!(Arc::strong_count(&config), 1 + 2 * pairs.len());
}
