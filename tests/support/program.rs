//! A server program under test that runs as a process of its own (the C servers the Makefile
//! builds: tests/c/server_test.c, examples-c/sekura-sshd.c), with OpenSSH's `ssh` as its
//! client. The program's directory holds `host_key`, `user_key` (both ed25519, made by
//! [`keygen`]) and the `known_hosts` that [`write_known_hosts`] writes once the port is known.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::openssh::{run_with_timeout, ssh_command, TimedOutput};
use super::sshd::SSH_KEYGEN;

/// How long one `ssh` run may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// An unencrypted ed25519 key at `path` (and `path.pub`), by `ssh-keygen`.
pub fn keygen(path: &Path) {
    super::require_program(SSH_KEYGEN, "openssh-client");
    let out = Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("run {SSH_KEYGEN}: {e}"));
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

/// Writes `dir/known_hosts`, listing `dir/host_key.pub` for `[127.0.0.1]:port`.
pub fn write_known_hosts(dir: &Path, port: u16) {
    let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("read host_key.pub");
    let fields: Vec<&str> = host_pub.split_whitespace().collect();
    let line = format!("[127.0.0.1]:{port} {} {}\n", fields[0], fields[1]);
    std::fs::write(dir.join("known_hosts"), line).expect("write known_hosts");
}

/// OpenSSH's `ssh` to the program on `port` as `user`, checking its host key against
/// `dir/known_hosts`, with no identity yet; options may follow (ssh reads options after the
/// destination too), then the command.
pub fn ssh(port: u16, user: &str, dir: &Path) -> Command {
    let mut cmd = ssh_command(port, user, &dir.join("known_hosts"));
    cmd.arg("127.0.0.1");
    cmd
}

/// [`ssh`] with the key `dir/user_key` only, in batch mode.
pub fn ssh_key(port: u16, user: &str, dir: &Path) -> Command {
    let mut cmd = ssh(port, user, dir);
    cmd.arg("-i")
        .arg(dir.join("user_key"))
        .args(["-o", "BatchMode=yes"]);
    cmd
}

/// Runs `cmd` (an `ssh`) for at most [`TIMEOUT`]; fails the test if it timed out.
pub fn run_ssh(cmd: &mut Command) -> TimedOutput {
    let out = run_with_timeout(cmd, TIMEOUT);
    assert!(!out.timed_out, "ssh timed out; stderr:\n{}", out.stderr());
    out
}
