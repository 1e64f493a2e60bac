//! Host and user keys made by `ssh-keygen`, once per test process.
//!
//! RSA-3072 generation takes about a second, so the keys are generated once, held in memory,
//! and written into each `sshd`'s directory. Host keys can be made fresh per server instead
//! ([`super::SshdOptions::fresh_host_keys`]).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// `ssh-keygen`.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// The passphrase of the `"ed25519-enc"` user key.
pub const ENCRYPTED_KEY_PASSPHRASE: &str = "sekura test passphrase";

/// Host key kinds, and the `ssh-keygen` arguments that make them.
pub const HOST_KEY_KINDS: [(&str, &[&str]); 3] = [
    ("ed25519", &["-t", "ed25519"]),
    ("ecdsa", &["-t", "ecdsa", "-b", "256"]),
    ("rsa", &["-t", "rsa", "-b", "3072"]),
];

/// User key kinds: all listed in `authorized_keys`.
pub const USER_KEY_KINDS: [&str; 4] = ["ed25519", "ecdsa", "rsa", "ed25519-enc"];

/// A private key file's bytes and its public line (`type base64 comment`).
#[derive(Clone)]
pub struct KeyPair {
    pub private: Vec<u8>,
    pub public: String,
}

/// Everything one `sshd` needs.
#[derive(Clone)]
pub struct KeySet {
    /// By [`HOST_KEY_KINDS`] kind.
    pub host: Vec<(&'static str, KeyPair)>,
    /// By [`USER_KEY_KINDS`] kind.
    pub user: Vec<(&'static str, KeyPair)>,
    /// Not authorized anywhere.
    pub unauthorized: KeyPair,
}

/// The process-wide keys, generated on first use.
pub fn shared() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut specs = host_specs();
        for (kind, args) in HOST_KEY_KINDS {
            specs.push(Spec {
                role: "user",
                kind,
                args,
                passphrase: "",
            });
        }
        specs.push(Spec {
            role: "user",
            kind: "ed25519-enc",
            args: &["-t", "ed25519"],
            passphrase: ENCRYPTED_KEY_PASSPHRASE,
        });
        specs.push(Spec {
            role: "unauthorized",
            kind: "ed25519",
            args: &["-t", "ed25519"],
            passphrase: "",
        });
        let mut made = generate(&specs);
        let unauthorized = made.pop().expect("unauthorized key").1;
        let user = made.split_off(HOST_KEY_KINDS.len());
        KeySet {
            host: made,
            user,
            unauthorized,
        }
    })
}

/// New host keys of every kind.
pub fn generate_host_keys() -> Vec<(&'static str, KeyPair)> {
    generate(&host_specs())
}

/// One key to make.
pub struct Spec {
    /// What the key is for, in its file name and comment (`sekura-test-<role>-<kind>`).
    pub role: &'static str,
    pub kind: &'static str,
    /// The `ssh-keygen` arguments that make it (`-t`, `-b`).
    pub args: &'static [&'static str],
    pub passphrase: &'static str,
}

fn host_specs() -> Vec<Spec> {
    HOST_KEY_KINDS
        .iter()
        .map(|&(kind, args)| Spec {
            role: "host",
            kind,
            args,
            passphrase: "",
        })
        .collect()
}

/// Runs one `ssh-keygen` per spec, all at once, in a scratch directory that is removed
/// afterwards; returns (kind, key) in the order of `specs`.
pub fn generate(specs: &[Spec]) -> Vec<(&'static str, KeyPair)> {
    super::super::require_program(SSH_KEYGEN, "openssh-client");
    let dir = super::super::fresh_dir("keygen");
    let children: Vec<(&Spec, std::path::PathBuf, Child)> = specs
        .iter()
        .map(|spec| {
            let file = dir.join(format!("{}-{}", spec.role, spec.kind));
            let child = Command::new(SSH_KEYGEN)
                .arg("-q")
                .args(spec.args)
                .arg("-N")
                .arg(spec.passphrase)
                .arg("-C")
                .arg(format!("sekura-test-{}-{}", spec.role, spec.kind))
                .arg("-f")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ssh-keygen");
            (spec, file, child)
        })
        .collect();
    let mut keys = Vec::new();
    for (spec, file, child) in children {
        let out = child.wait_with_output().expect("wait for ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen for {} key {} failed: {}",
            spec.role,
            spec.kind,
            String::from_utf8_lossy(&out.stderr)
        );
        keys.push((spec.kind, read_pair(&file)));
    }
    std::fs::remove_dir_all(&dir).expect("remove keygen dir");
    keys
}

fn read_pair(private: &Path) -> KeyPair {
    let mut public = private.as_os_str().to_owned();
    public.push(".pub");
    KeyPair {
        private: std::fs::read(private).expect("read private key"),
        public: std::fs::read_to_string(&public)
            .expect("read public key")
            .trim()
            .to_owned(),
    }
}

/// `SHA256:<base64>` of a public key file, as `ssh-keygen -l` prints it.
pub fn fingerprint(public_key_file: &Path) -> String {
    let out = Command::new(SSH_KEYGEN)
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public_key_file)
        .output()
        .expect("run ssh-keygen -l");
    assert!(
        out.status.success(),
        "ssh-keygen -l {}: {}",
        public_key_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("fingerprint is UTF-8");
    text.split_whitespace()
        .nth(1)
        .expect("ssh-keygen -l prints bits, fingerprint, comment")
        .to_owned()
}
