//! OpenSSH's `ssh-agent`, run privately for a test: `ssh-agent -D -a <dir>/agent.sock`,
//! stopped by its pid on drop, with keys added by `ssh-add`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SSH_AGENT: &str = "/usr/bin/ssh-agent";
pub const SSH_ADD: &str = "/usr/bin/ssh-add";

/// A running private ssh-agent.
pub struct SshAgent {
    child: Child,
    /// The agent's socket, for `SSH_AUTH_SOCK`.
    pub socket: PathBuf,
}

impl SshAgent {
    /// Starts an agent with its socket in `dir`, once the socket exists.
    pub fn start(dir: &Path) -> SshAgent {
        super::require_program(SSH_AGENT, "openssh-client");
        let socket = dir.join("agent.sock");
        let child = Command::new(SSH_AGENT)
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {SSH_AGENT}: {e}"));
        let mut agent = SshAgent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            if let Some(status) = agent.child.try_wait().expect("ssh-agent status") {
                panic!("ssh-agent exited with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "ssh-agent made no socket in 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    /// Runs `ssh-add` with `args` against this agent.
    pub fn ssh_add(&self, args: &[&str]) -> Output {
        super::require_program(SSH_ADD, "openssh-client");
        Command::new(SSH_ADD)
            .args(args)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {SSH_ADD}: {e}"))
    }

    /// Adds the private key at `key`; fails the test if `ssh-add` refuses it.
    pub fn add(&self, key: &Path) {
        let out = self.ssh_add(&[key.to_str().expect("UTF-8 key path")]);
        assert!(
            out.status.success(),
            "ssh-add {}: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
