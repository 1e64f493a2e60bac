//! examples-c/sekura-sshd, the example server, with OpenSSH's `ssh` as its client: commands
//! with their output, input, exit status and signal; password and keyboard-interactive
//! logins from PasswordFile; the environment allowlist; only the current user; a log line
//! per login; several clients at once; a clean stop on SIGTERM; `sftp` and `scp` through
//! OpenSSH's sftp-server.

mod support;

#[path = "c/make.rs"]
mod make;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::openssh::{use_askpass, PASSWORD_ONLY};
use support::program::{self, keygen, run_ssh as run, write_known_hosts, TIMEOUT};

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
        let dir = support::fresh_dir("c-sshd");
        let user = support::current_user();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("user_key"));
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).expect("copy");
        std::fs::write(
            dir.join("passwords"),
            format!("nobody:x\n{user}:{PASSWORD}\n"),
        )
        .expect("write the password file");
        for _ in 0..5 {
            let port = support::free_port();
            let log = std::fs::File::create(dir.join("log")).expect("create the log");
            let child = Command::new(program())
                .args(["-p", &port.to_string(), "-h"])
                .arg(dir.join("host_key"))
                .arg("-o")
                .arg(format!(
                    "AuthorizedKeysFile={}",
                    dir.join("authorized_keys").display()
                ))
                .arg("-o")
                .arg(format!("PasswordFile={}", dir.join("passwords").display()))
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
                write_known_hosts(&dir, port);
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
