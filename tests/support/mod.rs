//! Shared harness for Sekura's integration tests.
//!
//! Every test file that needs it says `mod support;` and compiles its own copy, so the module
//! allows dead code: each test uses only a part of it.
//!
//! - [`Sshd`]: a private OpenSSH `sshd` on a free loopback port, with its own host keys, user
//!   keys, `known_hosts` and log, stopped and removed on drop ([`sshd`]).
//! - [`Dropbear`]: a private Dropbear server on a free loopback port, with its own host keys
//!   and a test account whose home holds the authorized user keys ([`dropbear`]).
//! - [`openssh`]: commands for OpenSSH's own `ssh` client (no user configuration, no agent,
//!   strict host key checking) and `SSH_ASKPASS` for passwords.
//! - [`FakePeer`]: a scripted endpoint that accepts one connection and runs a closure on it, for
//!   bad-input tests ([`peer`]).
//! - [`server::TestServer`]: a Sekura server in the test process, running exec requests
//!   through `/bin/sh`, for real clients to talk to.
//! - [`process`]: what the private servers share: waiting for one to start or to log a line,
//!   stopping it, its forked connection processes, signals.
//! - [`program`]: a server program run as a process of its own (the C servers), with
//!   OpenSSH's `ssh` as its client.
//! - [`Relay`]: a man-in-the-middle between a client and a server that can alter the traffic,
//!   as raw chunks or as plaintext packets up to NEWKEYS ([`relay`]).
//! - [`client`]: Sekura's client logged in to an [`Sshd`] or a [`Dropbear`], running commands;
//!   [`transfer`]: data through `cat` and back, hashed; [`combos`]: algorithm combinations
//!   forced one at a time, checked in parallel.
//! - [`driven`]: caller-driven transports run from the test's thread, as an event loop would.
//!
//! Peers are never skipped: a missing program fails the test naming the Debian package to
//! install ([`require_program`]).

#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod client;
pub mod combos;
pub mod driven;
pub mod dropbear;
pub mod logs;
pub mod openssh;
pub mod peer;
pub mod process;
pub mod program;
pub mod relay;
pub mod server;
pub mod sshd;
pub mod transfer;

pub use dropbear::{Dropbear, DropbearOptions};
pub use openssh::{run_with_timeout, ssh_command};
pub use peer::FakePeer;
pub use process::{descendants, read_lossy, signal};
pub use relay::{Direction, Frame, Relay};
pub use sshd::{Sshd, SshdOptions, ENCRYPTED_KEY_PASSPHRASE, PASSWORD_USER};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A port on 127.0.0.1 that was free a moment ago: bound to port 0, read, released.
///
/// Another process may take it before the caller binds it; callers that start a server on it
/// retry with a new port when the bind fails ([`Sshd::start_with`] does).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Panics naming the Debian package to install when `program` (an absolute path) is missing.
pub fn require_program(program: &str, debian_package: &str) {
    if !Path::new(program).exists() {
        panic!(
            "{program} is missing: install it (Debian: apt-get install {debian_package}); \
             Sekura's tests never skip a peer"
        );
    }
}

/// Creates a fresh, empty directory `<temp>/sekura-<what>-<pid>-<n>` with mode 0755 (peers
/// running as another user must be able to read the public files in it).
pub fn fresh_dir(what: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sekura-{what}-{}-{n}", std::process::id()));
    if dir.exists() {
        // Left over from an earlier process with the same pid.
        std::fs::remove_dir_all(&dir).expect("remove stale test dir");
    }
    std::fs::create_dir_all(&dir).expect("create test dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod test dir");
    dir
}

/// Writes `contents` to `path` with `mode`, from the first byte (no window with wider rights).
pub fn write_file(path: &Path, contents: &[u8], mode: u32) {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    // The mode given to open is masked by the umask; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    file.write_all(contents)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The name of the user running the tests (`id -un`).
pub fn current_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("run id -un");
    assert!(out.status.success(), "id -un failed");
    String::from_utf8(out.stdout)
        .expect("user name is UTF-8")
        .trim()
        .to_owned()
}

/// Whether the tests run as root (`id -u` is 0).
pub fn is_root() -> bool {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
