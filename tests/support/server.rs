//! A Sekura server in the test process: listens on a free loopback port, one transport per
//! client, a [`ServerHandler`] that logs users in from a key list and a password, and runs
//! exec requests through `/bin/sh -c` with stdin, stdout, stderr and exit status wired to the
//! channel. What the handler was asked is recorded for the tests to check.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKey, PublicKey};
use sekura::proto::ChannelId;
use sekura::transport::{
    AuthResult, ByteStream, InteractiveQuery, InteractiveResult, OpenResult, PtyRequest,
    ServerHandler, Transport, WindowChange,
};

/// How long the server's blocking calls wait.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Who may log in, and how.
#[derive(Clone, Default)]
pub struct Policy {
    pub authorized_keys: Vec<PublicKey>,
    pub password: Option<(String, String)>,
    /// Environment variables the server accepts.
    pub env_allowed: Vec<String>,
    /// Methods required in this order, each a partial success until the last (multi-factor).
    pub chain: Vec<&'static str>,
    pub banner: Option<String>,
}

/// What one connection's handler was asked, in order.
pub type Journal = Arc<Mutex<Vec<String>>>;

/// A running test server; stopped on drop.
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub journal: Journal,
    pub host_keys: Vec<PrivateKey>,
    dir: PathBuf,
}

impl TestServer {
    /// Starts a server with an Ed25519, an ECDSA P-256 and an RSA host key.
    pub fn start(policy: Policy) -> TestServer {
        Self::start_with(policy, standard_host_keys(), |_| {})
    }

    /// Starts a server with `host_keys`; `setup` adjusts each transport before it starts.
    pub fn start_with(
        policy: Policy,
        host_keys: Vec<PrivateKey>,
        setup: impl Fn(&Transport) + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let journal: Journal = Arc::default();
        let keys = host_keys.clone();
        let thread = {
            let stop = Arc::clone(&stop);
            let journal = Arc::clone(&journal);
            let setup = Arc::new(setup);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((socket, _)) => {
                            socket.set_nonblocking(false).expect("blocking");
                            let handler =
                                Arc::new(TestHandler::new(policy.clone(), Arc::clone(&journal)));
                            let keys = keys.clone();
                            let setup = Arc::clone(&setup);
                            std::thread::spawn(move || {
                                let t = super::driven::transport(
                                    ByteStream::tcp(socket),
                                    SERVER_TIMEOUT,
                                );
                                for k in keys {
                                    t.add_server_key(k).expect("host key");
                                }
                                setup(&t);
                                serve(&t, handler);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TestServer {
            addr,
            stop,
            thread: Some(thread),
            journal,
            host_keys,
            dir: super::fresh_dir("server"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A known_hosts file listing every host key for [127.0.0.1]:port.
    pub fn known_hosts(&self) -> PathBuf {
        let path = self.dir.join("known_hosts");
        let lines: String = self
            .host_keys
            .iter()
            .map(|k| {
                format!(
                    "[127.0.0.1]:{} {}\n",
                    self.port(),
                    k.public_key().to_openssh()
                )
            })
            .collect();
        super::write_file(&path, lines.as_bytes(), 0o644);
        path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal's entries so far.
    pub fn asked(&self) -> Vec<String> {
        self.journal.lock().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Ed25519, ECDSA P-256/384/521 and RSA 2048 host keys, generated once per test process.
pub fn standard_host_keys() -> Vec<PrivateKey> {
    static KEYS: std::sync::OnceLock<Vec<PrivateKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        [
            (KeyType::Ed25519, None),
            (KeyType::EcdsaP256, None),
            (KeyType::EcdsaP384, None),
            (KeyType::EcdsaP521, None),
            (KeyType::Rsa, Some(2048)),
        ]
        .into_iter()
        .map(|(kind, bits)| generate(kind, bits))
        .collect()
    })
    .clone()
}

/// A new key of `kind`.
pub fn generate(kind: KeyType, bits: Option<usize>) -> PrivateKey {
    PrivateKey::generate(kind, bits, &mut OsRandom).expect("generate key")
}

/// Runs one connection: handshake, then a session thread per accepted channel.
fn serve(t: &Transport, handler: Arc<TestHandler>) {
    if t.start_server(handler.clone()).is_err() {
        return;
    }
    while let Ok(channel) = t.accept(None) {
        let handler = Arc::clone(&handler);
        std::thread::spawn(move || run_session(channel, &handler));
    }
}

/// What a session channel was asked to run.
#[derive(Clone, Debug)]
enum Mode {
    Exec(String),
    Shell,
}

struct TestHandler {
    policy: Policy,
    journal: Journal,
    /// Methods of the chain done so far.
    done: Mutex<usize>,
    modes: Mutex<HashMap<ChannelId, Mode>>,
    env: Mutex<HashMap<ChannelId, Vec<(String, String)>>>,
    mode_set: Condvar,
}

impl TestHandler {
    fn new(policy: Policy, journal: Journal) -> TestHandler {
        TestHandler {
            policy,
            journal,
            done: Mutex::new(0),
            modes: Mutex::default(),
            env: Mutex::default(),
            mode_set: Condvar::new(),
        }
    }

    fn note(&self, entry: String) {
        self.journal.lock().push(entry);
    }

    /// Success, or partial success while the chain has further methods.
    fn passed(&self, method: &str) -> AuthResult {
        if self.policy.chain.is_empty() {
            return AuthResult::Success;
        }
        let mut done = self.done.lock();
        if self.policy.chain.get(*done) != Some(&method) {
            return AuthResult::Failed;
        }
        *done += 1;
        if *done == self.policy.chain.len() {
            AuthResult::Success
        } else {
            AuthResult::PartiallySuccessful
        }
    }

    fn password_ok(&self, user: &str, password: &str) -> bool {
        self.policy
            .password
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == password)
    }

    fn set_mode(&self, channel: ChannelId, mode: Mode) {
        self.modes.lock().insert(channel, mode);
        self.mode_set.notify_all();
    }

    fn wait_mode(&self, channel: ChannelId) -> Option<Mode> {
        let mut modes = self.modes.lock();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = modes.get(&channel) {
                return Some(m.clone());
            }
            if self.mode_set.wait_until(&mut modes, deadline).timed_out() {
                return None;
            }
        }
    }
}

impl ServerHandler for TestHandler {
    fn allowed_auths(&self, _user: &str) -> String {
        let done = *self.done.lock();
        match self.policy.chain.get(done) {
            Some(next) => (*next).to_owned(),
            None => "publickey,password,keyboard-interactive".to_owned(),
        }
    }

    fn check_auth_password(&self, user: &str, password: &str) -> AuthResult {
        self.note(format!("password {user}"));
        if self.password_ok(user, password) {
            self.passed("password")
        } else {
            AuthResult::Failed
        }
    }

    fn check_auth_publickey(&self, user: &str, key: &PublicKey, verified: bool) -> AuthResult {
        self.note(format!("publickey {user} {} {verified}", key.key_type()));
        if !self.policy.authorized_keys.contains(key) {
            return AuthResult::Failed;
        }
        if verified {
            self.passed("publickey")
        } else {
            AuthResult::Success
        }
    }

    fn check_auth_interactive(&self, user: &str, _submethods: &str) -> InteractiveResult {
        self.note(format!("keyboard-interactive {user}"));
        InteractiveResult::Query(InteractiveQuery {
            name: "Sekura test".into(),
            instructions: "Answer the question.".into(),
            prompts: vec![("Password: ".into(), false)],
        })
    }

    fn check_auth_interactive_response(&self, user: &str, answers: &[String]) -> InteractiveResult {
        self.note(format!("keyboard-interactive answers {}", answers.len()));
        match answers {
            [password] if self.password_ok(user, password) => {
                InteractiveResult::Done(self.passed("keyboard-interactive"))
            }
            _ => InteractiveResult::Done(AuthResult::Failed),
        }
    }

    fn check_channel_request(&self, kind: &str, _channel: ChannelId) -> OpenResult {
        self.note(format!("open {kind}"));
        if kind == "session" {
            OpenResult::Succeeded
        } else {
            OpenResult::UnknownChannelType
        }
    }

    fn check_channel_exec_request(&self, channel: ChannelId, command: &[u8]) -> bool {
        let command = String::from_utf8_lossy(command).into_owned();
        self.note(format!("exec {command}"));
        self.set_mode(channel, Mode::Exec(command));
        true
    }

    fn check_channel_shell_request(&self, channel: ChannelId) -> bool {
        self.note("shell".into());
        self.set_mode(channel, Mode::Shell);
        true
    }

    fn check_channel_pty_request(&self, _channel: ChannelId, pty: &PtyRequest) -> bool {
        self.note(format!(
            "pty {} {}x{} modes {}",
            pty.term,
            pty.width_chars,
            pty.height_rows,
            pty.modes.len()
        ));
        true
    }

    fn check_channel_env_request(&self, channel: ChannelId, name: &str, value: &[u8]) -> bool {
        let allowed = self.policy.env_allowed.iter().any(|n| n == name);
        self.note(format!("env {name} {allowed}"));
        if allowed {
            let value = String::from_utf8_lossy(value).into_owned();
            self.env
                .lock()
                .entry(channel)
                .or_default()
                .push((name.to_owned(), value));
        }
        allowed
    }

    fn check_channel_window_change_request(
        &self,
        _channel: ChannelId,
        size: &WindowChange,
    ) -> bool {
        self.note(format!(
            "window-change {}x{}",
            size.width_chars, size.height_rows
        ));
        true
    }

    fn banner(&self) -> Option<String> {
        self.policy.banner.clone()
    }
}

/// Runs the session's command with its streams wired to the channel.
fn run_session(channel: sekura::transport::Channel, handler: &TestHandler) {
    let Some(mode) = handler.wait_mode(channel.id()) else {
        let _ = channel.close();
        return;
    };
    let command = match mode {
        Mode::Exec(command) => command,
        Mode::Shell => "exec /bin/sh".to_owned(),
    };
    let env = handler
        .env
        .lock()
        .get(&channel.id())
        .cloned()
        .unwrap_or_default();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn /bin/sh");
    let channel = Arc::new(channel);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let feeder = {
        let channel = Arc::clone(&channel);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = channel.recv(&mut buf) {
                if n == 0 || stdin.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
    };
    let errors = {
        let channel = Arc::clone(&channel);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 || channel.sendall_stderr(&buf[..n]).is_err() {
                    break;
                }
            }
        })
    };
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = stdout.read(&mut buf) {
        if n == 0 || channel.sendall(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = errors.join();
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => {
            let _ = channel.send_exit_status(code as u32);
        }
        (None, Some(sig)) => {
            let name = match sig {
                9 => "KILL",
                15 => "TERM",
                _ => "HUP",
            };
            let _ = channel.send_exit_signal(name, false, "");
        }
        (None, None) => {}
    }
    let _ = channel.send_eof();
    let _ = channel.close();
    drop(feeder);
}
