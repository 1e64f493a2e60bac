//! OpenSSH's own client, run as a reference peer, and a bounded way to run any program.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// OpenSSH's client.
pub const SSH: &str = "/usr/bin/ssh";

/// A `ssh` command for `user@127.0.0.1 -p port` that reads no user or system configuration
/// (`-F none`, no agent, no default identities, no global known_hosts), checks the host key
/// strictly against `known_hosts` only, never writes it, and gives up connecting after 10 s.
///
/// Add `-i <key>` (and `-o BatchMode=yes` for key-only tests), or [`use_askpass`] for a
/// password, then the remote command. `ssh` keeps the first value given for an option, so
/// the options set here cannot be overridden by adding them again. Run it with [`run_with_timeout`].
pub fn ssh_command(port: u16, user: &str, known_hosts: &Path) -> Command {
    super::require_program(SSH, "openssh-client");
    let mut cmd = Command::new(SSH);
    cmd.arg("-F")
        .arg("none")
        .arg("-p")
        .arg(port.to_string())
        .arg("-l")
        .arg(user)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "-o",
            "ConnectTimeout=10",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    cmd
}

/// The `ssh` options that make a password the only method tried, once.
pub const PASSWORD_ONLY: [&str; 6] = [
    "-o",
    "PreferredAuthentications=password",
    "-o",
    "PubkeyAuthentication=no",
    "-o",
    "NumberOfPasswordPrompts=1",
];

/// Makes `cmd` (an OpenSSH `ssh`, `sftp` or `scp`) answer password prompts with `password`
/// through `SSH_ASKPASS` (`SSH_ASKPASS_REQUIRE=force`, OpenSSH 8.4 and later): writes a small
/// script into `dir`. Do not also pass `BatchMode=yes`, which disables passwords.
pub fn use_askpass(cmd: &mut Command, dir: &Path, password: &str) {
    let script = dir.join("askpass.sh");
    let quoted = password.replace('\'', r"'\''");
    let body = format!("#!/bin/sh\nprintf '%s\\n' '{quoted}'\n");
    super::write_file(&script, body.as_bytes(), 0o700);
    cmd.env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0");
}

/// Runs `cmd` with stdout and stderr captured, killing it if it has not finished within
/// `timeout` (then the status is the kill's, and `timed_out` is true).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> TimedOutput {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // A grandchild holding the pipes open would block these; the peers used here do not.
    let output = Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    };
    TimedOutput { output, timed_out }
}

/// What [`run_with_timeout`] saw.
#[derive(Debug)]
pub struct TimedOutput {
    pub output: Output,
    pub timed_out: bool,
}

impl TimedOutput {
    pub fn status(&self) -> ExitStatus {
        self.output.status
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Whether it finished by itself with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.output.status.success()
    }

    /// Panics with both streams unless it finished by itself with status 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.success(),
            "{what}: status {:?}{}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            if self.timed_out {
                " (killed: timed out)"
            } else {
                ""
            },
            self.stdout(),
            self.stderr()
        );
    }
}
