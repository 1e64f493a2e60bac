//! Test helpers shared by the key and known_hosts tests: temporary directories and the real
//! `ssh-keygen` and `openssl`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sekura-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `ssh-keygen` with `args`, panicking with its stderr if it fails; returns stdout.
pub(crate) fn ssh_keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen must be installed (Debian package openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `openssl` with `args`, panicking with its stderr if it fails; returns stdout.
pub(crate) fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Generates a key with `ssh-keygen -q -t TYPE [-b BITS] -N PASSPHRASE -f PATH` plus `extra`.
pub(crate) fn generate(
    path: &Path,
    key_type: &str,
    bits: Option<u32>,
    passphrase: &str,
    extra: &[&str],
) {
    let bits = bits.map(|b| b.to_string());
    let mut args = vec!["-q", "-t", key_type, "-N", passphrase, "-C", "sekura-test"];
    if let Some(b) = &bits {
        args.extend(["-b", b]);
    }
    args.extend_from_slice(extra);
    args.extend(["-f", path.to_str().unwrap()]);
    ssh_keygen(&args);
}

/// The SHA256 fingerprint `ssh-keygen -l -f PATH` prints.
pub(crate) fn fingerprint(path: &Path) -> String {
    fingerprint_with(path, "sha256")
}

/// The fingerprint `ssh-keygen -l -E HASH -f PATH` prints.
pub(crate) fn fingerprint_with(path: &Path, hash: &str) -> String {
    let out = ssh_keygen(&["-l", "-E", hash, "-f", path.to_str().unwrap()]);
    out.split_whitespace().nth(1).unwrap().to_string()
}

/// The bits `ssh-keygen -l -f PATH` prints.
pub(crate) fn keygen_bits(path: &Path) -> usize {
    let out = ssh_keygen(&["-l", "-f", path.to_str().unwrap()]);
    out.split_whitespace().next().unwrap().parse().unwrap()
}
