//! A threaded server's slow decision holds back only what depends on it: while its handler
//! takes its time over a direct-tcpip open, a session that is already running moves data
//! both ways at full speed, for our client and for OpenSSH's `ssh -L`. (Before, the reader
//! thread ran the handler and read nothing else meanwhile, so every channel froze once its
//! window was spent.)

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKey, PrivateKeyFormat, PublicKey};
use sekura::proto::{ChannelId, ExitStatus};
use sekura::transport::{
    AuthResult, ByteStream, DirectTcpip, OpenResult, ServerHandler, Transport,
};
use sekura::ErrorKind;
use sha2::{Digest, Sha256};
use support::transfer::XorShift;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The tests count this process's decision threads, so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const USER: &str = "decider";
const PASSWORD: &str = "takes-its-time";

/// A gate the handler waits at: open once the test says so.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    waiting: bool,
    open: bool,
}

impl Gate {
    /// Called by the handler: says it is waiting, then waits until opened (at most
    /// [`TIMEOUT`], so that a failing test ends).
    fn pass(&self) {
        let mut state = self.state.lock();
        state.waiting = true;
        self.changed.notify_all();
        let _ = self
            .changed
            .wait_while_for(&mut state, |s| !s.open, TIMEOUT);
        state.waiting = false;
    }

    fn wait_until_someone_waits(&self) {
        let mut state = self.state.lock();
        let timed_out = self
            .changed
            .wait_while_for(&mut state, |s| !s.waiting, TIMEOUT)
            .timed_out();
        assert!(!timed_out, "the handler was never asked");
    }

    fn is_holding_someone(&self) -> bool {
        self.state.lock().waiting
    }

    fn open(&self) {
        self.state.lock().open = true;
        self.changed.notify_all();
    }
}

struct SlowForwards {
    gate: Arc<Gate>,
    user_key: PublicKey,
}

impl ServerHandler for SlowForwards {
    fn allowed_auths(&self, _user: &str) -> String {
        "publickey,password".to_owned()
    }

    fn check_auth_publickey(&self, user: &str, key: &PublicKey, _signed: bool) -> AuthResult {
        match user == USER && *key == self.user_key {
            true => AuthResult::Success,
            false => AuthResult::Failed,
        }
    }

    fn check_auth_password(&self, user: &str, password: &str) -> AuthResult {
        match (user, password) {
            (USER, PASSWORD) => AuthResult::Success,
            _ => AuthResult::Failed,
        }
    }

    fn check_channel_request(&self, kind: &str, _channel: ChannelId) -> OpenResult {
        match kind {
            "session" => OpenResult::Succeeded,
            _ => OpenResult::AdministrativelyProhibited,
        }
    }

    fn check_channel_exec_request(&self, _channel: ChannelId, command: &[u8]) -> bool {
        command == b"cat"
    }

    /// Takes as long as the test wants, then refuses.
    fn check_channel_direct_tcpip_request(
        &self,
        _channel: ChannelId,
        _request: &DirectTcpip,
    ) -> OpenResult {
        self.gate.pass();
        OpenResult::AdministrativelyProhibited
    }
}

/// This process's threads named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter(|task| {
            let comm = task.as_ref().map(|t| t.path().join("comm")).ok();
            comm.and_then(|c| std::fs::read_to_string(c).ok())
                .is_some_and(|c| c.trim() == name)
        })
        .count()
}

/// A server on a free loopback port whose handler holds direct-tcpip opens at `gate`.
struct SlowServer {
    port: u16,
    host_key: PublicKey,
    user_key: PrivateKey,
    gate: Arc<Gate>,
    /// Says when the session channel was accepted.
    session_open: mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

fn generate() -> PrivateKey {
    PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).expect("generate a key")
}

impl SlowServer {
    fn start() -> SlowServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (host_key, user_key, gate) = (generate(), generate(), Arc::new(Gate::default()));
        let handler = SlowForwards {
            gate: Arc::clone(&gate),
            user_key: user_key.public_key(),
        };
        let (opened, session_open) = mpsc::channel();
        let public_host_key = host_key.public_key();
        let thread = std::thread::spawn(move || serve_one(&listener, host_key, handler, &opened));
        SlowServer {
            port,
            host_key: public_host_key,
            user_key,
            gate,
            session_open,
            thread,
        }
    }
}

/// Serves one connection on a threaded server transport: its session channel echoes what
/// it receives (the "cat" it was asked to run), then reports exit status 0.
fn serve_one(
    listener: &TcpListener,
    host_key: PrivateKey,
    handler: SlowForwards,
    opened: &mpsc::Sender<()>,
) {
    {
        let (socket, _) = listener.accept().expect("accept");
        let t = Transport::over(ByteStream::tcp(socket));
        t.set_timeout(Some(TIMEOUT));
        t.add_server_key(host_key).expect("add host key");
        t.start_server(Arc::new(handler)).expect("start server");
        let session = t.accept(Some(TIMEOUT)).expect("the session channel");
        opened.send(()).expect("the test waits");
        session.set_timeout(Some(TIMEOUT));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = session.recv(&mut buf).expect("server recv");
            if n == 0 {
                break;
            }
            session.sendall(&buf[..n]).expect("server send");
        }
        session.send_eof().expect("server eof");
        session.send_exit_status(0).expect("exit status");
        session.close().expect("server close");
        // The transport stays up until the client has closed it.
        let _ = t.accept(Some(TIMEOUT));
    }
}

#[test]
fn a_slow_channel_open_decision_leaves_a_running_session_at_full_speed() {
    let _alone = ONE_AT_A_TIME.lock();
    let server = SlowServer::start();
    let gate = &server.gate;
    let socket = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let client = Arc::new(support::driven::transport(ByteStream::tcp(socket), TIMEOUT));
    client.start_client().expect("key exchange");
    client.auth_password(USER, PASSWORD).expect("password");
    let session = client.open_session().expect("session");
    session.set_timeout(Some(TIMEOUT));
    session.exec("cat").expect("exec cat");

    // A forward the handler takes its time over.
    let forward = {
        let client = Arc::clone(&client);
        std::thread::spawn(move || client.open_direct_tcpip(("10.0.0.1", 80), ("127.0.0.1", 4000)))
    };
    gate.wait_until_someone_waits();

    // 8 MiB through cat: four windows each way, so the server's reader must keep taking
    // data and window adjustments while the decision is owed.
    let mut data = vec![0u8; 8 * 1024 * 1024];
    XorShift(7).fill(&mut data);
    let mut echoed = Sha256::new();
    let mut received = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            session.sendall(&data).expect("client send");
            session.send_eof().expect("client eof");
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = session
                .recv(&mut buf)
                .expect("echo while the decision is owed");
            if n == 0 {
                break;
            }
            echoed.update(&buf[..n]);
            received += n;
        }
    });
    assert_eq!(received, data.len());
    assert_eq!(
        echoed.finalize(),
        Sha256::digest(&data),
        "the echo is whole"
    );
    assert!(
        gate.is_holding_someone(),
        "the transfer finished while the decision was still being made"
    );
    assert_eq!(threads_named("sekura-decide"), 1, "one decision thread");

    gate.open();
    let Err(refused) = forward.join().expect("forward thread") else {
        panic!("the handler refused the forward, yet it opened");
    };
    assert_eq!(refused.kind(), ErrorKind::Refused, "{refused}");
    // With nothing left to decide the decision thread ends: idle connections hold none.
    let quiet = std::time::Instant::now() + TIMEOUT;
    while threads_named("sekura-decide") > 0 {
        assert!(
            std::time::Instant::now() < quiet,
            "the decision thread stayed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        session.recv_exit_status().expect("exit status"),
        ExitStatus::Code(0)
    );
    client.close();
    server.thread.join().expect("server thread");
}

#[test]
fn openssh_keeps_its_session_going_while_a_forward_is_being_decided() {
    let _alone = ONE_AT_A_TIME.lock();
    let server = SlowServer::start();
    let dir = support::fresh_dir("decisions");
    let key_file = dir.join("id_ed25519");
    server
        .user_key
        .write_file(&key_file, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write the user key");
    let known_hosts = dir.join("known_hosts");
    let line = format!(
        "[127.0.0.1]:{} {}\n",
        server.port,
        server.host_key.to_openssh()
    );
    support::write_file(&known_hosts, line.as_bytes(), 0o644);
    let forward_port = support::free_port();
    let mut ssh = support::ssh_command(server.port, USER, &known_hosts);
    ssh.arg("-i")
        .arg(&key_file)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
        ])
        .arg(format!("127.0.0.1:{forward_port}:10.0.0.1:80"))
        .args(["127.0.0.1", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ssh.spawn().expect("spawn ssh");
    let mut stdin = child.stdin.take().expect("ssh stdin");
    let mut stdout = child.stdout.take().expect("ssh stdout");

    // ssh listens for -L before it opens the session; a connection makes it ask the server.
    server
        .session_open
        .recv_timeout(TIMEOUT)
        .expect("ssh opened its session");
    let mut forwarded = TcpStream::connect(("127.0.0.1", forward_port)).expect("connect to -L");
    server.gate.wait_until_someone_waits();

    let mut data = vec![0u8; 8 * 1024 * 1024];
    XorShift(11).fill(&mut data);
    let mut echoed = Vec::with_capacity(data.len());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            stdin.write_all(&data).expect("write to ssh");
            drop(stdin);
        });
        stdout.read_to_end(&mut echoed).expect("read from ssh");
    });
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "the echo through ssh is whole");
    assert!(
        server.gate.is_holding_someone(),
        "the transfer finished while the decision was still being made"
    );
    assert_eq!(threads_named("sekura-decide"), 1, "one decision thread");

    server.gate.open();
    // Refused: ssh closes the forwarded connection.
    forwarded
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    assert!(
        matches!(forwarded.read(&mut byte), Ok(0) | Err(_)),
        "ssh closes a refused forward"
    );
    let status = child.wait().expect("wait for ssh");
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    assert!(status.success(), "ssh: {status}; stderr:\n{stderr}");
    assert!(stderr.contains("administratively prohibited"), "{stderr}");
    server.thread.join().expect("server thread");
}
