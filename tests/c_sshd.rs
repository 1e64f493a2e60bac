//! examples-c/sekura-sshd, the example server, with OpenSSH's `ssh` as its client: commands
//! with their output, input, exit status and signal; password and keyboard-interactive
//! logins from PasswordFile; the environment allowlist; only the current user; a log line
//! per login; several clients at once; a clean stop on SIGTERM; `sftp` and `scp` through
//! OpenSSH's sftp-server; every user and host key type and every algorithm both sides have,
//! each forced; a 256 MiB round trip; Paramiko's client. And, with our own client sending what OpenSSH's would not: pty-req,
//! env and a second exec refused once a session started, with no descriptor leaked; a
//! channel closed without a command frees its thread; a session that outlives its client is
//! hung up on, then killed; MaxUnauthenticated closes the oldest idle connection and
//! MaxConnections refuses beyond it; accept failures (EMFILE) back off instead of spinning.

mod support;

#[path = "c/make.rs"]
mod make;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sekura::keys::PrivateKey;
use sekura::proto::ExitStatus;
use sekura::transport::{Channel, PtyRequest, Transport};
use support::openssh::{use_askpass, PASSWORD_ONLY};
use support::program::{self, keygen, run_ssh as run, TIMEOUT};

const PASSWORD: &str = "sekura sshd password";

fn program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| make::build_program("c-sshd", "bin/sekura-sshd"))
}

/// sekura-sshd on a free loopback port, with its keys and files in `dir`.
struct SekuraSshd {
    child: Child,
    port: u16,
    dir: PathBuf,
    user: String,
}

impl SekuraSshd {
    fn start() -> SekuraSshd {
        SekuraSshd::start_with(&[], None)
    }

    /// With more `-o` options, and at most `max_files` open descriptors (`ulimit -n`).
    fn start_with(options: &[&str], max_files: Option<u32>) -> SekuraSshd {
        SekuraSshd::start_in(support::fresh_dir("c-sshd"), options, max_files)
    }

    /// Started in `dir`: every `host_key*` there is a host key and every `user_key*.pub` is
    /// authorized (`host_key` and `user_key`, ed25519, are made if missing); `known_hosts`
    /// lists all host keys.
    fn start_in(dir: PathBuf, options: &[&str], max_files: Option<u32>) -> SekuraSshd {
        let user = support::current_user();
        for name in ["host_key", "user_key"] {
            if !dir.join(name).exists() {
                keygen(&dir.join(name));
            }
        }
        let authorized: String = public_files(&dir, "user_key")
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read a user key"))
            .collect();
        std::fs::write(dir.join("authorized_keys"), authorized).expect("authorized_keys");
        std::fs::write(
            dir.join("passwords"),
            format!("nobody:x\n{user}:{PASSWORD}\n"),
        )
        .expect("write the password file");
        for _ in 0..5 {
            let port = support::free_port();
            let log = std::fs::File::create(dir.join("log")).expect("create the log");
            let mut command = match max_files {
                Some(n) => {
                    let mut sh = Command::new("/bin/sh");
                    sh.arg("-c")
                        .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                        .arg(program());
                    sh
                }
                None => Command::new(program()),
            };
            let child = command
                .args(["-p", &port.to_string()])
                .args(
                    host_keys(&dir)
                        .iter()
                        .flat_map(|k| [Path::new("-h"), k.as_path()]),
                )
                .arg("-o")
                .arg(format!(
                    "AuthorizedKeysFile={}",
                    dir.join("authorized_keys").display()
                ))
                .arg("-o")
                .arg(format!("PasswordFile={}", dir.join("passwords").display()))
                .args(options.iter().flat_map(|o| ["-o", o]))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sekura-sshd");
            let mut server = SekuraSshd {
                child,
                port,
                dir: dir.clone(),
                user: user.clone(),
            };
            if server.wait_for_log("Server listening", Duration::from_secs(10)) {
                let known: String = public_files(&dir, "host_key")
                    .iter()
                    .map(|p| {
                        let line = std::fs::read_to_string(p).expect("read a host key");
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        format!("[127.0.0.1]:{port} {} {}\n", fields[0], fields[1])
                    })
                    .collect();
                std::fs::write(dir.join("known_hosts"), known).expect("known_hosts");
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            assert!(
                server.log().contains("Address already in use"),
                "sekura-sshd did not start:\n{}",
                server.log()
            );
        }
        panic!("sekura-sshd found no free port in 5 tries");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Waits until the log has `needle`; false if the server exited or time ran out first.
    fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return self.log().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn ssh(&self) -> Command {
        program::ssh(self.port, &self.user, &self.dir)
    }

    fn ssh_key(&self) -> Command {
        program::ssh_key(self.port, &self.user, &self.dir)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Our own client, logged in with the user key.
    fn login(&self) -> Transport {
        let t = support::driven::connect_on_driver(self.port, Duration::from_secs(20));
        t.start_client().expect("handshake");
        let key = PrivateKey::from_file(&self.dir.join("user_key"), None).expect("user key");
        t.auth_publickey(&self.user, &key).expect("login");
        t
    }

    /// How many times the log has `needle`.
    fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }
}

/// Polls `done` every 20 ms until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many entries /proc/PID/`what` has (`fd`: open descriptors, `task`: threads).
fn proc_count(pid: u32, what: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/{what}"))
        .expect("read /proc")
        .count()
}

/// The fields of /proc/PID/stat after the command name (state is [0], ppid [1]).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The processes whose parent is `pid` (zombies too, until reaped).
fn children(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|name| stat_fields(name).is_some_and(|f| f.get(1) == Some(&parent)))
        .filter_map(|name| name.parse().ok())
        .collect()
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let f = stat_fields(&pid.to_string()).expect("stat");
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// Everything on the channel's standard output until EOF.
fn read_stdout(ch: &Channel) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match ch.recv(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

fn pty() -> PtyRequest {
    PtyRequest {
        term: "xterm".into(),
        width_chars: 80,
        height_rows: 24,
        ..PtyRequest::default()
    }
}

/// The private host keys in `dir`: `host_key`, then any `host_key_*`.
fn host_keys(dir: &Path) -> Vec<PathBuf> {
    public_files(dir, "host_key")
        .into_iter()
        .map(|p| p.with_extension(""))
        .collect()
}

/// The `.pub` files in `dir` whose names start with `prefix`, sorted.
fn public_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the server directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(".pub")
        })
        .collect();
    files.sort();
    files
}

impl Drop for SekuraSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn runs_commands_for_openssh() {
    let server = SekuraSshd::start();

    let out = run(server.ssh_key().arg("echo out; echo err >&2; exit 3"));
    assert_eq!(out.status().code(), Some(3), "stderr:\n{}", out.stderr());
    assert_eq!(out.stdout(), "out\n");
    assert_eq!(out.stderr(), "err\n");

    let out = run(server.ssh_key().arg("kill -TERM $$"));
    assert_eq!(out.status().code(), Some(255), "stderr:\n{}", out.stderr());

    let input = "line of input\n".repeat(20_000);
    let path = server.dir.join("stdin.txt");
    std::fs::write(&path, &input).expect("write stdin file");
    let mut cmd = server.ssh_key();
    cmd.arg("wc -l; pwd")
        .stdin(std::fs::File::open(&path).expect("open stdin file"));
    let out = run(&mut cmd);
    out.assert_success("ssh 'wc -l; pwd'");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(out.stdout(), format!("20000\n{home}\n"));

    let mut cmd = server.ssh_key();
    cmd.args(["-o", "SendEnv=LC_SEKURA", "-o", "SendEnv=SEKURA_SECRET"])
        .arg("echo \"[$LC_SEKURA] [$SEKURA_SECRET]\"")
        .env("LC_SEKURA", "allowed")
        .env("SEKURA_SECRET", "refused");
    let out = run(&mut cmd);
    out.assert_success("ssh with SendEnv");
    assert_eq!(out.stdout(), "[allowed] []\n");

    let log = server.log();
    assert!(
        log.contains(&format!(
            "Accepted publickey for {} from 127.0.0.1 port ",
            server.user
        )),
        "{log}"
    );
}

#[test]
fn password_logins_and_only_the_current_user() {
    let server = SekuraSshd::start();

    let mut cmd = server.ssh();
    cmd.args(PASSWORD_ONLY).arg("echo by password");
    use_askpass(&mut cmd, &server.dir, PASSWORD);
    let out = run(&mut cmd);
    out.assert_success("ssh with a password");
    assert_eq!(out.stdout(), "by password\n");

    let mut cmd = server.ssh();
    cmd.args([
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        "echo by prompt",
    ]);
    use_askpass(&mut cmd, &server.dir, PASSWORD);
    let out = run(&mut cmd);
    out.assert_success("ssh with keyboard-interactive");
    assert_eq!(out.stdout(), "by prompt\n");

    let mut cmd = server.ssh();
    cmd.args(PASSWORD_ONLY).arg("true");
    use_askpass(&mut cmd, &server.dir, "wrong");
    assert_eq!(run(&mut cmd).status().code(), Some(255));

    // Another user, even with the authorized key or a listed password.
    let out = run(program::ssh_key(server.port, "nobody", &server.dir).arg("true"));
    assert_eq!(out.status().code(), Some(255));
    assert!(
        out.stderr()
            .contains("Permission denied (publickey,password,keyboard-interactive)"),
        "{}",
        out.stderr()
    );

    let log = server.log();
    assert!(
        log.contains(&format!("Accepted password for {} from", server.user)),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Accepted keyboard-interactive for {} from",
            server.user
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("Failed password for {} from", server.user)),
        "{log}"
    );
}

#[test]
fn serves_clients_at_once_and_stops_on_sigterm() {
    let mut server = SekuraSshd::start();
    // Three sessions that each wait for the others' marker files.
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let script = format!(
                "touch {dir}/m{i}; for n in 1 2 3 4 5 6 7 8 9 10; do \
                 [ -e {dir}/m0 ] && [ -e {dir}/m1 ] && [ -e {dir}/m2 ] && exit 0; sleep 0.5; \
                 done; exit 1",
                dir = server.dir.display()
            );
            server
                .ssh_key()
                .arg(script)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ssh")
        })
        .collect();
    for mut child in children {
        let status = child.wait().expect("wait for ssh");
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        assert!(status.success(), "a concurrent session failed: {stderr}");
    }

    // Our own child, by its pid.
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(
        server.wait_for_log("terminating", TIMEOUT),
        "no stop message:\n{}",
        server.log()
    );
    let status = server.child.wait().expect("wait for sekura-sshd");
    assert!(status.success(), "sekura-sshd exited with {status:?}");
}

/// OpenSSH's `scp` or `sftp` (`program`) to the server with the user key, in batch mode.
fn file_client(server: &SekuraSshd, program: &str) -> Command {
    support::require_program(program, "openssh-client");
    let mut cmd = Command::new(program);
    cmd.args(["-F", "none", "-P", &server.port.to_string(), "-i"])
        .arg(server.dir.join("user_key"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            server.dir.join("known_hosts").display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
        ])
        .stdin(Stdio::null());
    cmd
}

#[test]
fn sftp_and_scp_transfer_files() {
    let server = SekuraSshd::start();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 999) as u8).collect();
    let original = server.dir.join("original.bin");
    std::fs::write(&original, &data).expect("write the original");
    let remote = server.dir.join("remote");
    std::fs::create_dir(&remote).expect("remote dir");

    let out = run(file_client(&server, "/usr/bin/scp")
        .arg(&original)
        .arg(format!(
            "{}@127.0.0.1:{}/by-scp.bin",
            server.user,
            remote.display()
        )));
    out.assert_success("scp upload");
    assert_eq!(
        std::fs::read(remote.join("by-scp.bin")).expect("uploaded"),
        data
    );

    let batch = server.dir.join("batch");
    let fetched = server.dir.join("fetched.bin");
    std::fs::write(
        &batch,
        format!(
            "put {} {}/by-sftp.bin\nls -l {}\nget {}/by-scp.bin {}\n",
            original.display(),
            remote.display(),
            remote.display(),
            remote.display(),
            fetched.display()
        ),
    )
    .expect("write the batch file");
    let out = run(file_client(&server, "/usr/bin/sftp")
        .arg("-b")
        .arg(&batch)
        .arg(format!("{}@127.0.0.1", server.user)));
    out.assert_success("sftp batch");
    assert!(out.stdout().contains("by-sftp.bin"), "{}", out.stdout());
    assert_eq!(
        std::fs::read(remote.join("by-sftp.bin")).expect("put"),
        data
    );
    assert_eq!(std::fs::read(&fetched).expect("get"), data);
}

/// One connection: a session on pipes that gets pty-req, env, exec and shell while its
/// command runs (all refused; before the fix the pty-req was accepted and the session then
/// closed the wrong descriptors), and a session on a pty.
fn late_requests(server: &SekuraSshd) {
    let t = server.login();
    let ch = t.open_session().expect("session");
    ch.exec("sleep 0.5; echo done").expect("exec");
    assert!(ch.get_pty(&pty()).is_err(), "pty-req after exec accepted");
    assert!(
        ch.set_environment_variable("LANG", "C").is_err(),
        "env after exec accepted"
    );
    assert!(ch.exec("echo again").is_err(), "second exec accepted");
    assert!(ch.invoke_shell().is_err(), "shell after exec accepted");
    assert_eq!(read_stdout(&ch), "done\n");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));

    let ch = t.open_session().expect("session");
    ch.get_pty(&pty()).expect("pty-req before exec");
    assert!(ch.get_pty(&pty()).is_err(), "second pty-req accepted");
    ch.exec("test -t 0 && echo on-a-tty").expect("exec");
    assert_eq!(read_stdout(&ch), "on-a-tty\r\n");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));
    t.close();
}

#[test]
fn late_session_requests_are_refused_and_leak_no_descriptor() {
    let server = SekuraSshd::start();
    let pid = server.pid();
    let closed = "Connection closed by";
    late_requests(&server); // the library's lazily made descriptors, if any
    assert!(wait_until(TIMEOUT, || server.log_count(closed) == 1));
    let baseline = proc_count(pid, "fd");
    for _ in 0..10 {
        late_requests(&server);
    }
    assert!(
        wait_until(TIMEOUT, || server.log_count(closed) == 11),
        "{}",
        server.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || proc_count(pid, "fd")
            <= baseline),
        "sekura-sshd had {baseline} descriptors, now {}",
        proc_count(pid, "fd")
    );
}

#[test]
fn channels_closed_without_a_command_free_their_threads_and_slots() {
    let server = SekuraSshd::start();
    let pid = server.pid();
    let t = server.login();
    let ch = t.open_session().expect("session");
    ch.exec("true").expect("exec");
    assert_eq!(ch.recv_exit_status().expect("status"), ExitStatus::Code(0));
    drop(ch);
    std::thread::sleep(Duration::from_millis(500));
    let baseline = proc_count(pid, "task");
    // 4 x 10 channels: more than the 32 a connection may have open at once.
    for round in 0..4 {
        let channels: Vec<Channel> = (0..10)
            .map(|_| t.open_session().expect("session"))
            .collect();
        assert!(proc_count(pid, "task") >= baseline);
        for ch in channels {
            ch.close().expect("close");
        }
        assert!(
            wait_until(Duration::from_secs(10), || proc_count(pid, "task")
                <= baseline),
            "round {round}: sekura-sshd had {baseline} threads, now {}",
            proc_count(pid, "task")
        );
    }
    let ch = t.open_session().expect("a channel after 40 closed ones");
    ch.exec("echo still-serving").expect("exec");
    assert_eq!(read_stdout(&ch), "still-serving\n");
}

#[test]
fn sessions_outliving_their_client_are_hung_up_then_killed() {
    let mut server = SekuraSshd::start();
    let pid = server.pid();
    let t = server.login();
    let baseline = proc_count(pid, "task");

    // The command closes its output and sleeps; the client closes the channel: SIGHUP.
    let ch = t.open_session().expect("session");
    ch.exec("exec sleep 1000 >&- 2>&-").expect("exec");
    assert!(wait_until(TIMEOUT, || children(pid).len() == 1));
    ch.close().expect("close");
    assert!(
        wait_until(Duration::from_secs(10), || children(pid).is_empty()),
        "the session's process outlived its closed channel: {:?}",
        children(pid)
    );

    // It ignores SIGHUP and the client disconnects: SIGKILL after the grace period.
    let ch = t.open_session().expect("session");
    ch.exec("trap '' HUP; exec sleep 1001 >&- 2>&-")
        .expect("exec");
    assert!(wait_until(TIMEOUT, || children(pid).len() == 1));
    t.close();
    assert!(
        wait_until(Duration::from_secs(15), || children(pid).is_empty()),
        "the session's process outlived its client: {:?}",
        children(pid)
    );
    assert!(
        server.wait_for_log("Connection closed by", Duration::from_secs(10)),
        "the connection was kept:\n{}",
        server.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || proc_count(pid, "task")
            < baseline),
        "threads left: {} (with the connection: {baseline})",
        proc_count(pid, "task")
    );
}

/// A TCP connection that reads sekura-sshd's version line and then says nothing.
fn idle_connection(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(
            s.read(&mut byte).expect("version line"),
            1,
            "no version line"
        );
        line.push(byte[0]);
    }
    assert!(line.starts_with(b"SSH-2.0-"), "{line:?}");
    s
}

/// Whether the server ended the connection within `timeout` (EOF or reset).
fn ended(s: &mut TcpStream, timeout: Duration) -> bool {
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn max_unauthenticated_closes_the_oldest_idle_connection() {
    let server = SekuraSshd::start_with(&["MaxUnauthenticated=2"], None);
    let mut first = idle_connection(server.port);
    let mut second = idle_connection(server.port);
    assert!(!ended(&mut first, Duration::from_millis(300)));
    let mut third = idle_connection(server.port);
    assert!(ended(&mut first, TIMEOUT), "the oldest was kept");
    assert!(!ended(&mut second, Duration::from_millis(300)));
    assert!(!ended(&mut third, Duration::from_millis(10)));
    assert!(
        server
            .log()
            .contains("closing the oldest, from 127.0.0.1 port"),
        "{}",
        server.log()
    );
    // A real client gets in while the idle ones wait, and stays in: logged in, it no longer
    // counts.
    let t = server.login();
    assert!(ended(&mut second, TIMEOUT), "the oldest was kept");
    let _fourth = idle_connection(server.port);
    let _fifth = idle_connection(server.port);
    assert!(ended(&mut third, TIMEOUT), "the oldest was kept");
    let ch = t.open_session().expect("session");
    ch.exec("echo in").expect("exec");
    assert_eq!(read_stdout(&ch), "in\n");
}

#[test]
fn max_connections_refuses_beyond_it() {
    let server = SekuraSshd::start_with(&["MaxConnections=3"], None);
    let mut held: Vec<Transport> = (0..3).map(|_| server.login()).collect();
    let mut refused = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut buf = [0u8; 64];
    refused.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    assert!(
        matches!(refused.read(&mut buf), Ok(0) | Err(_)),
        "no refusal"
    );
    assert!(
        server
            .log()
            .contains("Refusing connection from 127.0.0.1 port "),
        "{}",
        server.log()
    );
    held.pop().expect("one").close();
    assert!(wait_until(TIMEOUT, || server
        .log()
        .contains("Connection closed by")));
    let out = run(server.ssh_key().arg("echo room again"));
    out.assert_success("ssh after one left");
    assert_eq!(out.stdout(), "room again\n");
}

#[test]
fn accept_failures_back_off() {
    let server = SekuraSshd::start_with(&[], Some(20));
    let pid = server.pid();
    let idle = proc_count(pid, "fd");
    // More connections than descriptors: the rest wait in the listen queue, and accept
    // fails with EMFILE as long as they do.
    let mut waiting: Vec<TcpStream> = (0..24)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).expect("connect"))
        .collect();
    for s in &mut waiting {
        let _ = s.write_all(b"");
    }
    assert!(
        wait_until(TIMEOUT, || server
            .log()
            .contains("accept: Too many open files")),
        "{}",
        server.log()
    );
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 40,
        "sekura-sshd used {used} clock ticks of CPU in 2 s while accept failed"
    );
    drop(waiting);
    assert!(
        wait_until(TIMEOUT, || server.log_count("connection from 127.0.0.1")
            == 24),
        "{}",
        server.log()
    );
    assert!(
        wait_until(TIMEOUT, || proc_count(pid, "fd") <= idle),
        "descriptors: {} (idle: {idle})",
        proc_count(pid, "fd")
    );
    let out = run(server.ssh_key().arg("echo recovered"));
    out.assert_success(&format!("ssh after EMFILE; log:\n{}", server.log()));
    assert_eq!(out.stdout(), "recovered\n");
}

/// A key of `kind` and `bits` made by ssh-keygen at `path`.
fn keygen_kind(path: &Path, kind: &str, bits: &str) {
    let out = Command::new(support::sshd::SSH_KEYGEN)
        .args(["-q", "-N", "", "-t", kind, "-b", bits, "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen -t {kind}: {out:?}");
}

/// OpenSSH's ssh against sekura-sshd with every key type on both sides, every algorithm
/// both have (ssh -Q), and a 256 MiB round trip through `cat`.
#[test]
fn every_key_type_and_algorithm_and_a_large_round_trip() {
    use sekura::proto::AlgorithmKind;
    let dir = support::fresh_dir("c-sshd-all");
    for (kind, bits) in [
        ("ecdsa", "256"),
        ("ecdsa", "384"),
        ("ecdsa", "521"),
        ("rsa", "2048"),
    ] {
        keygen_kind(&dir.join(format!("host_key_{kind}{bits}")), kind, bits);
        keygen_kind(&dir.join(format!("user_key_{kind}{bits}")), kind, bits);
    }
    let server = SekuraSshd::start_in(dir.clone(), &[], None);
    for key in [
        "user_key",
        "user_key_ecdsa256",
        "user_key_ecdsa384",
        "user_key_ecdsa521",
        "user_key_rsa2048",
    ] {
        let out = run(server.ssh().arg("-i").arg(dir.join(key)).args([
            "-o",
            "BatchMode=yes",
            "echo $((6 * 7))",
        ]));
        out.assert_success(key);
        assert_eq!(out.stdout(), "42\n", "{key}");
    }
    for (query, option, kind) in [
        ("kex", "KexAlgorithms", AlgorithmKind::Kex),
        ("cipher", "Ciphers", AlgorithmKind::Cipher),
        ("mac", "MACs", AlgorithmKind::Mac),
        (
            "HostKeyAlgorithms",
            "HostKeyAlgorithms",
            AlgorithmKind::HostKey,
        ),
    ] {
        let out = Command::new("/usr/bin/ssh")
            .args(["-Q", query])
            .output()
            .expect("ssh -Q");
        // sekura-sshd runs with Sekura's defaults: the modern algorithms.
        let defaults = sekura::proto::Preferences::default();
        let ours = defaults.get(kind);
        let offered = String::from_utf8(out.stdout).expect("UTF-8");
        let common: Vec<&str> = offered.lines().filter(|n| ours.contains(n)).collect();
        assert!(common.len() >= 4, "ssh -Q {query}: only {common:?}");
        for name in common {
            let mut cmd = server.ssh_key();
            cmd.args(["-v", "-o", &format!("{option}={name}")]);
            if option == "MACs" {
                cmd.args(["-o", "Ciphers=aes128-ctr"]);
            }
            let out = run(cmd.arg("echo ok"));
            out.assert_success(&format!("{option}={name}"));
            assert_eq!(out.stdout(), "ok\n", "{option}={name}");
            let used = match option {
                "KexAlgorithms" => format!("kex: algorithm: {name}\r\n"),
                "HostKeyAlgorithms" => format!("kex: host key algorithm: {name}\r\n"),
                "Ciphers" => format!("kex: server->client cipher: {name} "),
                _ => format!(" MAC: {name} "),
            };
            assert!(out.stderr().contains(&used), "{option}={name} not in use");
        }
    }

    support::transfer::pipe_round_trip(
        server.ssh_key().arg("cat"),
        256 << 20,
        &dir.join("ssh.log"),
    );
}

/// Paramiko's client (pip) against sekura-sshd: connect, exec, output, exit status.
#[test]
fn paramiko_client_runs_a_command() {
    let server = SekuraSshd::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/paramiko_client.py");
    let out = support::run_with_timeout(
        Command::new("python3")
            .arg(script)
            .arg(server.port.to_string())
            .arg("exec")
            .arg(server.dir.join("user_key"))
            .arg("echo from-paramiko; echo oops >&2; exit 5")
            .arg(&server.user),
        TIMEOUT,
    );
    assert!(
        out.success(),
        "paramiko_client.py failed (python3 -m pip install paramiko if missing): {}{}",
        out.stdout(),
        out.stderr()
    );
    assert!(
        out.stdout().contains("STDOUT 'from-paramiko\\n'"),
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout().contains("STDERR 'oops\\n'"),
        "{}",
        out.stdout()
    );
    assert!(out.stdout().contains("STATUS 5"), "{}", out.stdout());
}

/// `ssh -tt`: a login shell on a pseudo-terminal, with the client's TERM, and its exit
/// status.
#[test]
fn ssh_tt_runs_a_shell_on_a_pty() {
    use std::io::Write;
    let server = SekuraSshd::start();
    let mut child = server
        .ssh_key()
        .arg("-tt")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ssh -tt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"tty; echo \"term=$TERM\"; exit 7\n")
        .expect("write to the shell");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("ssh status").is_none() {
        assert!(Instant::now() < deadline, "ssh -tt did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("ssh -tt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}");
    assert!(stdout.contains("/dev/pts/"), "{stdout}");
    assert!(stdout.contains("term=xterm-256color"), "{stdout}");
}
