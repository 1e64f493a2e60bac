//! A threaded server's slow decision holds back only what depends on it: while its handler
//! takes its time over a direct-tcpip open, a session that is already running moves data
//! both ways at full speed. (Before, the reader thread ran the handler and read nothing
//! else meanwhile, so every channel froze once its window was spent.)

mod support;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKey};
use sekura::proto::{ChannelId, ExitStatus};
use sekura::transport::{
    AuthResult, ByteStream, DirectTcpip, OpenResult, ServerHandler, Transport,
};
use sekura::ErrorKind;
use sha2::{Digest, Sha256};
use support::transfer::XorShift;

const TIMEOUT: Duration = Duration::from_secs(30);
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
}

impl ServerHandler for SlowForwards {
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

/// Serves one connection on a threaded server transport: its session channel echoes what
/// it receives (the "cat" it was asked to run), then reports exit status 0.
fn serve_one(listener: TcpListener, gate: Arc<Gate>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        let t = Transport::over(ByteStream::tcp(socket));
        t.set_timeout(Some(TIMEOUT));
        let key = PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).expect("host key");
        t.add_server_key(key).expect("add host key");
        t.start_server(Arc::new(SlowForwards { gate }))
            .expect("start server");
        let session = t.accept(Some(TIMEOUT)).expect("the session channel");
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
    })
}

#[test]
fn a_slow_channel_open_decision_leaves_a_running_session_at_full_speed() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let gate = Arc::new(Gate::default());
    let server = serve_one(listener, Arc::clone(&gate));

    let socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
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
    server.join().expect("server thread");
}
