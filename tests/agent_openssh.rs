//! The ssh-agent client against OpenSSH's own `ssh-agent`, with keys added by `ssh-add`: list
//! (the same keys and fingerprints as `ssh-add -l`), sign with every algorithm of every key
//! and verify; an agent that is not there; hostile fake agents, with the largest allocation
//! measured. Also the C API, `ssh_agent_*`.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;

use sekura::agent::Agent;
use sekura::keys::PublicKey;
use sekura::ErrorKind;
use support::agent::SshAgent;

// ---- The largest allocation made by the current thread while tracking is on. ----

struct TrackingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if TRACKING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    (r, LARGEST.with(Cell::get))
}

// ---- A private ssh-agent. ----

/// A private agent with a directory of its own for the keys it is given.
struct PrivateAgent {
    agent: SshAgent,
    dir: PathBuf,
}

impl PrivateAgent {
    fn start() -> PrivateAgent {
        let dir = support::fresh_dir("agent");
        PrivateAgent {
            agent: SshAgent::start(&dir),
            dir,
        }
    }

    /// Generates a key with `ssh-keygen` and adds it with `ssh-add`; returns its private path.
    fn add_new_key(&self, name: &str, keygen_args: &[&str]) -> PathBuf {
        let path = self.dir.join(name);
        let out = Command::new(support::sshd::SSH_KEYGEN)
            .args(["-q", "-N", "", "-C", name])
            .args(keygen_args)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen {keygen_args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.agent.add(&path);
        path
    }

    fn ssh_add(&self, args: &[&str]) -> std::process::Output {
        self.agent.ssh_add(args)
    }

    /// `(fingerprint, comment)` of each key, as `ssh-add -l -E sha256` lists them.
    fn listed(&self) -> Vec<(String, String)> {
        let out = self.ssh_add(&["-l", "-E", "sha256"]);
        assert!(out.status.success(), "ssh-add -l: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields[1].to_owned(), fields[2].to_owned())
            })
            .collect()
    }
}

impl Drop for PrivateAgent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn public_key_of(private: &Path) -> Option<PublicKey> {
    let text = std::fs::read_to_string(private.with_extension("pub")).unwrap();
    PublicKey::from_openssh(&text).ok()
}

/// Key files made for the agent: ssh-keygen arguments by name.
const KEYS: [(&str, &[&str]); 5] = [
    ("id_ed25519", &["-t", "ed25519"]),
    ("id_ecdsa256", &["-t", "ecdsa", "-b", "256"]),
    ("id_ecdsa384", &["-t", "ecdsa", "-b", "384"]),
    ("id_ecdsa521", &["-t", "ecdsa", "-b", "521"]),
    ("id_rsa", &["-t", "rsa", "-b", "2048"]),
];

#[test]
fn lists_and_signs_with_the_real_agent() {
    let agent_process = PrivateAgent::start();
    let mut usable = Vec::new();
    for (name, args) in KEYS {
        let path = agent_process.add_new_key(name, args);
        if let Some(public) = public_key_of(&path) {
            usable.push((name, public));
        }
    }
    // Whatever key types the keys module supports, these three are among them.
    for name in ["id_ed25519", "id_ecdsa256", "id_rsa"] {
        assert!(usable.iter().any(|(n, _)| *n == name), "{name} not usable");
    }

    let agent = Agent::connect_path(&agent_process.agent.socket).unwrap();
    let identities = agent.identities().unwrap();
    // The same keys, in the same order, as ssh-add -l (less the types Sekura cannot use).
    let listed: Vec<(String, String)> = agent_process
        .listed()
        .into_iter()
        .filter(|(_, comment)| usable.iter().any(|(n, _)| n == comment))
        .collect();
    let ours: Vec<(String, String)> = identities
        .iter()
        .map(|k| (k.public.fingerprint_sha256(), k.comment.clone()))
        .collect();
    assert_eq!(ours, listed);
    assert_eq!(identities.len(), usable.len());

    let data = b"session id and userauth request, or anything";
    for key in &identities {
        let algorithms = key.public.signature_algorithms(true);
        assert!(!algorithms.is_empty());
        for algorithm in algorithms {
            let signature = agent
                .sign(key, data, algorithm)
                .unwrap_or_else(|e| panic!("{} {algorithm}: {e}", key.comment));
            key.public
                .verify(algorithm, data, &signature)
                .unwrap_or_else(|e| panic!("{} {algorithm}: {e}", key.comment));
            assert!(key
                .public
                .verify(algorithm, b"other data", &signature)
                .is_err());
        }
    }
    let rsa = identities.iter().find(|k| k.comment == "id_rsa").unwrap();
    for algorithm in ["rsa-sha2-256", "rsa-sha2-512"] {
        let signature = agent.sign(rsa, data, algorithm).unwrap();
        rsa.public.verify(algorithm, data, &signature).unwrap();
    }
    // An algorithm of another key type: refused before asking.
    let ed25519 = identities
        .iter()
        .find(|k| k.comment == "id_ed25519")
        .unwrap();
    let err = agent.sign(ed25519, data, "rsa-sha2-256").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);

    // A key the agent does not hold (removed with ssh-add -d): refused, clearly.
    let out =
        agent_process.ssh_add(&["-d", agent_process.dir.join("id_ed25519").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let err = agent.sign(ed25519, data, "ssh-ed25519").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.message().contains("refused to sign"), "{err}");
    assert_eq!(agent.identities().unwrap().len(), usable.len() - 1);

    // From several threads on one connection.
    let agent = std::sync::Arc::new(agent);
    let key = rsa.clone();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (agent, key) = (agent.clone(), key.clone());
            std::thread::spawn(move || {
                for j in 0..5 {
                    let data = format!("thread {i} round {j}");
                    let sig = agent.sign(&key, data.as_bytes(), "rsa-sha2-512").unwrap();
                    key.public
                        .verify("rsa-sha2-512", data.as_bytes(), &sig)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // The agent goes away: a clear I/O error, no hang, no panic.
    drop(agent_process);
    let err = agent.identities().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[test]
fn unavailable_agent_is_a_clear_error() {
    let dir = support::fresh_dir("agent-missing");
    let missing = dir.join("no-agent.sock");
    let err = Agent::connect_path(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().starts_with("ssh-agent unavailable"), "{err}");
    assert!(err.message().contains("no-agent.sock"), "{err}");

    // SSH_AUTH_SOCK unset, and set to a path where nobody listens: checked in a child process
    // of this test binary, so that this process's environment is never changed.
    for value in [None, Some(missing.as_os_str())] {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_connects_through_ssh_auth_sock",
            "--nocapture",
        ])
        .env("SEKURA_AGENT_TEST_CHILD", "1")
        .env_remove("SSH_AUTH_SOCK");
        if let Some(value) = value {
            cmd.env("SSH_AUTH_SOCK", value);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{value:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("child checked SSH_AUTH_SOCK"), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run by [`unavailable_agent_is_a_clear_error`] in a child process; does nothing otherwise.
#[test]
fn child_connects_through_ssh_auth_sock() {
    if std::env::var_os("SEKURA_AGENT_TEST_CHILD").is_none() {
        return;
    }
    let expected = match std::env::var_os("SSH_AUTH_SOCK") {
        None => "ssh-agent unavailable: SSH_AUTH_SOCK is not set".to_owned(),
        Some(path) => format!(
            "ssh-agent unavailable: cannot connect to {}",
            Path::new(&path).display()
        ),
    };
    let err = Agent::connect().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().starts_with(&expected), "{err}");
    // The C API says the same.
    // SAFETY: NULL is allowed; the last error is this thread's.
    unsafe {
        let agent = sekura::ffi::ssh_agent_connect(ptr::null());
        assert!(agent.is_null());
        assert_eq!(sekura::ffi::sekura_last_result(), sekura::ffi::SSH_ERR_IO);
        let message = CStr::from_ptr(sekura::ffi::sekura_last_error()).to_string_lossy();
        assert!(message.starts_with(&expected), "{message}");
    }
    println!("child checked SSH_AUTH_SOCK");
}

/// A fake agent answering every request with `reply`, on `<dir>/fake.sock`; a thread per
/// connection.
fn fake_agent(dir: &Path, reply: Vec<u8>) -> PathBuf {
    let path = dir.join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut header = [0u8; 4];
                while stream.read_exact(&mut header).is_ok() {
                    let mut body = vec![0u8; u32::from_be_bytes(header).min(1 << 20) as usize];
                    if stream.read_exact(&mut body).is_err() || stream.write_all(&reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    path
}

#[test]
fn hostile_agents_cause_no_huge_allocation() {
    let dir = support::fresh_dir("agent-hostile");
    let cases: [(&str, Vec<u8>, ErrorKind); 4] = [
        (
            "frame length 0xFFFFFFFF",
            vec![0xff; 4],
            ErrorKind::Protocol,
        ),
        (
            "2^31 identities",
            vec![0, 0, 0, 5, 12, 0x80, 0, 0, 0],
            ErrorKind::Protocol,
        ),
        (
            "2^32-1 identities with some bytes",
            [&[0, 0, 0, 21, 12, 0xff, 0xff, 0xff, 0xff][..], &[0; 16]].concat(),
            ErrorKind::Protocol,
        ),
        (
            "signature length 0xFFFFFFFF",
            vec![0, 0, 0, 5, 14, 0xff, 0xff, 0xff, 0xff],
            ErrorKind::Protocol,
        ),
    ];
    for (i, (what, reply, kind)) in cases.into_iter().enumerate() {
        let sub = dir.join(i.to_string());
        std::fs::create_dir(&sub).unwrap();
        let path = fake_agent(&sub, reply);
        let agent = Agent::connect_path(&path).unwrap();
        let ((), largest) = largest_allocation(|| {
            let err = if what.starts_with("signature") {
                let key = sekura::keys::PrivateKey::ed25519_from_seed([3; 32]).public_key();
                agent
                    .sign_with_public_key(&key, b"data", "ssh-ed25519")
                    .unwrap_err()
            } else {
                agent.identities().unwrap_err()
            };
            assert_eq!(err.kind(), kind, "{what}: {err}");
        });
        assert!(
            largest < 64 * 1024,
            "{what}: an allocation of {largest} bytes"
        );

        // Through the C API too.
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; the handle is freed below.
        unsafe {
            let agent = sekura::ffi::ssh_agent_connect(c_path.as_ptr());
            assert!(!agent.is_null());
            if !what.starts_with("signature") {
                let n = sekura::ffi::ssh_agent_count_identities(agent);
                assert_eq!(n, sekura::ffi::SSH_ERR_PROTOCOL, "{what}");
            }
            sekura::ffi::ssh_agent_free(agent);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The C API against the real agent.
#[test]
fn c_api_lists_and_signs() {
    use sekura::ffi::*;
    let agent_process = PrivateAgent::start();
    agent_process.add_new_key("id_ed25519", &["-t", "ed25519"]);
    agent_process.add_new_key("id_rsa", &["-t", "rsa", "-b", "2048"]);
    let listed = agent_process.listed();
    let socket = CString::new(agent_process.agent.socket.to_str().unwrap()).unwrap();
    let data = b"data to sign";

    // SAFETY: valid C strings, live handles, writable outputs; everything freed below.
    unsafe {
        let agent = ssh_agent_connect(socket.as_ptr());
        assert!(!agent.is_null());
        assert_eq!(ssh_agent_set_timeout(agent, 5000), SSH_OK);
        assert_eq!(ssh_agent_set_timeout(agent, 0), SSH_ERR_INVALID_ARG);
        assert_eq!(ssh_agent_count_identities(agent), 2);
        for (index, (fingerprint, comment)) in listed.iter().enumerate() {
            let mut key = ptr::null_mut();
            let mut c_comment = ptr::null_mut();
            assert_eq!(
                ssh_agent_get_identity(agent, index, &mut key, &mut c_comment),
                SSH_OK
            );
            assert_eq!(CStr::from_ptr(c_comment).to_str().unwrap(), comment);
            sekura_string_free(c_comment);
            let s = ssh_pkey_get_fingerprint(key);
            assert_eq!(CStr::from_ptr(s).to_str().unwrap(), fingerprint);
            sekura_string_free(s);
            let (t, b) = (ssh_pkey_get_type(key), ssh_pkey_get_base64(key));
            let public = PublicKey::from_openssh(&format!(
                "{} {}",
                CStr::from_ptr(t).to_str().unwrap(),
                CStr::from_ptr(b).to_str().unwrap()
            ))
            .unwrap();
            sekura_string_free(t);
            sekura_string_free(b);

            for algorithm in public.signature_algorithms(false) {
                let c_alg = CString::new(algorithm).unwrap();
                let (mut sig, mut len) = (ptr::null_mut(), 0usize);
                let rc = ssh_agent_sign(
                    agent,
                    key,
                    c_alg.as_ptr(),
                    data.as_ptr(),
                    data.len(),
                    &mut sig,
                    &mut len,
                );
                assert_eq!(rc, SSH_OK, "{algorithm}");
                let blob = std::slice::from_raw_parts(sig, len).to_vec();
                sekura_bytes_free(sig, len);
                public.verify(algorithm, data, &blob).unwrap();
            }
            // The comment is optional.
            let mut again = ptr::null_mut();
            assert_eq!(
                ssh_agent_get_identity(agent, index, &mut again, ptr::null_mut()),
                SSH_OK
            );
            ssh_pkey_free(again);
            ssh_pkey_free(key);
        }
        let mut key = ptr::null_mut();
        assert_eq!(
            ssh_agent_get_identity(agent, 2, &mut key, ptr::null_mut()),
            SSH_ERR_EOF
        );
        assert!(key.is_null(), "untouched");

        // Bad arguments.
        let (mut sig, mut len) = (ptr::null_mut(), 0usize);
        let alg = CString::new("ssh-ed25519").unwrap();
        assert_eq!(
            ssh_agent_sign(
                agent,
                ptr::null(),
                alg.as_ptr(),
                data.as_ptr(),
                1,
                &mut sig,
                &mut len
            ),
            SSH_ERR_INVALID_ARG
        );
        assert_eq!(
            ssh_agent_count_identities(ptr::null_mut()),
            SSH_ERR_INVALID_ARG
        );
        assert_eq!(
            ssh_agent_get_identity(agent, 0, ptr::null_mut(), ptr::null_mut()),
            SSH_ERR_INVALID_ARG
        );
        assert!(sig.is_null() && len == 0);
        ssh_agent_free(agent);
        ssh_agent_free(ptr::null_mut());

        let missing = CString::new(agent_process.dir.join("none.sock").to_str().unwrap()).unwrap();
        assert!(ssh_agent_connect(missing.as_ptr()).is_null());
        assert_eq!(sekura_last_result(), SSH_ERR_IO);
        let message = CStr::from_ptr(sekura_last_error()).to_string_lossy();
        assert!(message.contains("ssh-agent unavailable"), "{message}");
    }
}
