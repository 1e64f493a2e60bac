//! Algorithm combinations forced one at a time on Sekura's client against a real server,
//! checked in parallel with every failure reported together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sekura::keys::PrivateKey;
use sekura::proto::{AlgorithmKind, ExitStatus};
use sekura::transport::Transport;

use super::client::{run, Server, TIMEOUT};

/// One kex, host key algorithm, cipher and MAC to force.
#[derive(Clone, Debug)]
pub struct Combo {
    pub kex: &'static str,
    pub host_key: &'static str,
    /// The harness's host key kind that `host_key` signs with.
    pub host_key_kind: &'static str,
    /// The key type of that host key.
    pub host_key_type: &'static str,
    pub cipher: &'static str,
    /// None with an AEAD cipher (no MAC is negotiated).
    pub mac: Option<&'static str>,
}

impl Combo {
    pub fn id(&self) -> String {
        format!(
            "{} {} {} {}",
            self.kex,
            self.host_key,
            self.cipher,
            self.mac.unwrap_or("(aead)")
        )
    }
}

/// One connection with everything forced to `combo`: checks the host key's type and
/// fingerprint, authenticates with `key` and runs a command. An error names the step that
/// failed.
pub fn try_combo(server: &impl Server, key: &PrivateKey, combo: &Combo) -> Result<(), String> {
    let step = |what: &'static str| move |e: sekura::Error| format!("{what}: {:?}: {e}", e.kind());
    let t = super::driven::connect_on_driver(server.port(), TIMEOUT);
    t.set_preferred(AlgorithmKind::Kex, combo.kex)
        .map_err(step("set kex"))?;
    t.set_preferred(AlgorithmKind::HostKey, combo.host_key)
        .map_err(step("set host key"))?;
    t.set_preferred(AlgorithmKind::Cipher, combo.cipher)
        .map_err(step("set cipher"))?;
    if let Some(mac) = combo.mac {
        t.set_preferred(AlgorithmKind::Mac, mac)
            .map_err(step("set MAC"))?;
    }
    t.start_client().map_err(step("key exchange"))?;
    let host_key = t.remote_server_key().map_err(step("remote_server_key"))?;
    if host_key.key_type() != combo.host_key_type {
        return Err(format!(
            "host key type {} instead of {}",
            host_key.key_type(),
            combo.host_key_type
        ));
    }
    let expected = server.host_key_fingerprint(combo.host_key_kind);
    if host_key.fingerprint_sha256() != expected {
        return Err(format!(
            "host key fingerprint {} instead of the server's {expected}",
            host_key.fingerprint_sha256()
        ));
    }
    t.auth_publickey(server.user(), key)
        .map_err(step("publickey auth"))?;
    let id = combo.id();
    let (stdout, stderr, status) = run(&t, &format!("echo '{id}'")).map_err(step("exec"))?;
    if stdout != format!("{id}\n") {
        return Err(format!("stdout {stdout:?} (stderr {stderr:?})"));
    }
    if status != ExitStatus::Code(0) {
        return Err(format!("exit status {status:?}"));
    }
    Ok(())
}

/// Runs `check` on every combination, `threads` at a time, prints how many failed and
/// asserts that none did, listing every failure.
pub fn check_all(
    combos: &[Combo],
    threads: usize,
    check: impl Fn(&Combo) -> Result<(), String> + Sync,
) {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(combo) = combos.get(i) else { break };
                if let Err(why) = check(combo) {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {why}", combo.id()));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    println!(
        "{} combinations in {:.1?}, {} failed",
        combos.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} combinations failed:\n{}",
        failures.len(),
        combos.len(),
        failures.join("\n")
    );
}
