//! tests/c/server_test.c: a Sekura server written in C with `ssh_server_callbacks`. Its own
//! Sekura client checks every server callback and session function from inside; here
//! OpenSSH's `ssh` logs in to it with a key, a password, keyboard-interactive prompts and
//! two factors, runs commands, sends environment variables, uses a subsystem and is refused a
//! forwarding, and is refused with a key it does not know. The program's failed checks ("not ok" lines) fail the test.

mod support;

#[path = "c/make.rs"]
mod make;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::openssh::{use_askpass, PASSWORD_ONLY};
use support::program::{self, keygen, run_ssh as run, write_known_hosts, TIMEOUT};

const PASSWORD: &str = "open sesame";
const MODULI: &str = "/etc/ssh/moduli";

/// server_test, built once per test run by the Makefile.
fn program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| make::build_program("c-server", "tests/server_test"))
}

/// server_test, running: its port, its keys, and readers of its output.
struct ServerTest {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    dir: PathBuf,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

fn reader(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

impl ServerTest {
    fn start() -> ServerTest {
        support::require_program(MODULI, "openssh-server");
        let dir = support::fresh_dir("c-server");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("user_key"));
        keygen(&dir.join("other_key"));

        let mut child = Command::new(program())
            .arg(dir.join("host_key"))
            .arg(dir.join("user_key"))
            .arg(PASSWORD)
            .arg(MODULI)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server_test");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("read server_test's port");
        let port: u16 = first
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("server_test printed {first:?}, not its port"));

        write_known_hosts(&dir, port);

        ServerTest {
            stdin: child.stdin.take(),
            stderr: Some(reader(child.stderr.take().expect("piped stderr"))),
            stdout: Some(reader(stdout)),
            child,
            port,
            dir,
        }
    }

    /// OpenSSH's ssh as `user`, with no identity yet.
    fn ssh(&self, user: &str) -> Command {
        program::ssh(self.port, user, &self.dir)
    }

    /// ssh as `user` with the authorized key only.
    fn ssh_key(&self, user: &str) -> Command {
        program::ssh_key(self.port, user, &self.dir)
    }

    /// Closes server_test's stdin, waits for it to end, and fails on its failed checks.
    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .stdout
            .take()
            .map(|r| r.join().expect("stdout"))
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|r| r.join().expect("stderr"))
            .unwrap_or_default();
        let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("not ok")).collect();
        assert!(
            status.is_some_and(|s| s.success()) && failed.is_empty(),
            "server_test: {}\nfailed checks:\n{}\nstderr:\n{stderr}",
            status.map_or("timed out".to_owned(), |s| format!("{s:?}")),
            failed.join("\n")
        );
    }
}

impl Drop for ServerTest {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn assert_report(out: &support::openssh::TimedOutput, starts: &str) {
    out.assert_success("ssh report");
    assert!(
        out.stdout().starts_with(starts),
        "report lacks {starts:?}: {}",
        out.stdout()
    );
}

#[test]
fn openssh_logs_in_to_a_c_server() {
    let server = ServerTest::start();

    let out = run(server.ssh_key("alice").arg("hello"));
    assert_eq!(out.status().code(), Some(3), "stderr:\n{}", out.stderr());
    assert_eq!(out.stdout(), "hello stdout\n");
    assert!(
        out.stderr().contains("Welcome to server_test\n"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().ends_with("hello stderr\n"), "{}", out.stderr());

    let mut cmd = server.ssh("alice");
    cmd.args(PASSWORD_ONLY).arg("report");
    use_askpass(&mut cmd, &server.dir, PASSWORD);
    assert_report(&run(&mut cmd), "auth=password ");

    let mut cmd = server.ssh("alice");
    cmd.args([
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        "report",
    ]);
    use_askpass(&mut cmd, &server.dir, PASSWORD);
    assert_report(&run(&mut cmd), "auth=keyboard-interactive ");

    // The key is a partial success; the password prompt completes the login.
    let mut cmd = server.ssh("twofactor");
    cmd.arg("-i").arg(server.dir.join("user_key")).args([
        "-o",
        "PreferredAuthentications=publickey,keyboard-interactive",
        "report",
    ]);
    use_askpass(&mut cmd, &server.dir, PASSWORD);
    assert_report(&run(&mut cmd), "auth=publickey+keyboard-interactive ");

    server.finish();
}

#[test]
fn openssh_sessions_reach_the_callbacks() {
    let server = ServerTest::start();

    let mut cmd = server.ssh_key("alice");
    cmd.args([
        "-tt",
        "-o",
        "SendEnv=LC_SEKURA",
        "-o",
        "SendEnv=SEKURA_REFUSED",
    ])
    .arg("report")
    .env("LC_SEKURA", "from-ssh")
    .env("SEKURA_REFUSED", "no")
    .env("TERM", "xterm-sekura");
    let out = run(&mut cmd);
    out.assert_success("ssh -tt report");
    let report = out.stdout();
    assert!(report.contains("term=xterm-sekura "), "{report}");
    assert!(report.contains("env=LC_SEKURA=from-ssh "), "{report}");

    let input = "through stdin\n".repeat(5000);
    let path = server.dir.join("stdin.txt");
    std::fs::write(&path, &input).expect("write stdin file");
    let mut cmd = server.ssh_key("alice");
    cmd.arg("cat")
        .stdin(std::fs::File::open(&path).expect("open stdin file"));
    let out = run(&mut cmd);
    out.assert_success("ssh cat");
    assert!(out.stdout() == input, "cat changed the data");

    let mut cmd = server.ssh_key("alice");
    cmd.args(["-s", "upper"])
        .stdin(std::fs::File::open(&path).expect("open stdin file"));
    let out = run(&mut cmd);
    out.assert_success("ssh -s upper");
    assert_eq!(out.stdout(), input.to_uppercase());

    let out = run(server.ssh_key("alice").arg("signal"));
    assert_eq!(out.status().code(), Some(255), "stderr:\n{}", out.stderr());

    let out = run(server.ssh_key("alice").args(["-W", "example.invalid:9"]));
    assert_eq!(out.status().code(), Some(255), "stderr:\n{}", out.stderr());
    assert!(out.stderr().contains("open failed"), "{}", out.stderr());

    let mut cmd = server.ssh("alice");
    cmd.arg("-i")
        .arg(server.dir.join("other_key"))
        .args(["-o", "BatchMode=yes", "true"]);
    let out = run(&mut cmd);
    assert_eq!(out.status().code(), Some(255));
    assert!(
        out.stderr()
            .contains("Permission denied (publickey,password,keyboard-interactive)"),
        "{}",
        out.stderr()
    );

    server.finish();
}
