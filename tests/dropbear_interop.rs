//! Sekura's client against a real Dropbear server (a private one per test, see
//! tests/support/dropbear.rs): a second SSH implementation besides OpenSSH, with its own key
//! exchange, window and keepalive code.
//!
//! Dropbear 2022.83 (Debian 12's dropbear-bin) speaks, of what Sekura has: kex
//! curve25519-sha256 (and @libssh.org), ecdh-sha2-nistp256/384/521,
//! diffie-hellman-group14-sha256 and the legacy group14-sha1; host keys ssh-ed25519,
//! ecdsa-sha2-nistp256/384/521, rsa-sha2-256 and the legacy ssh-rsa and ssh-dss; ciphers
//! chacha20-poly1305@openssh.com, aes128-ctr, aes256-ctr; MACs hmac-sha2-256 and the legacy
//! hmac-sha1; compression zlib@openssh.com (delayed; not plain zlib). It lacks group16,
//! group18, group1, group exchange, GCM, CBC, 3DES, hmac-sha2-512, the ETM MACs and
//! rsa-sha2-512, and a test checks that it still does, so that these lists are revisited when
//! it changes.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sekura::keys::PrivateKey;
use sekura::proto::{AlgorithmKind, ExitStatus};
use sekura::transport::{Channel, Transport};
use sekura::ErrorKind;
use sha2::{Digest, Sha256};
use support::{Dropbear, DropbearOptions};

/// Connect, handshake, authentication and channel timeouts: only there so that a bug fails a
/// test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Key exchanges both sides have; the legacy group14-sha1 is enabled by naming it.
const KEXES: [&str; 7] = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group14-sha1",
];

/// Host key algorithm, the harness's host key kind, and the key type it signs with.
const HOST_KEYS: [(&str, &str, &str); 7] = [
    ("ssh-ed25519", "ed25519", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256", "ecdsa256", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp384", "ecdsa384", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp521", "ecdsa521", "ecdsa-sha2-nistp521"),
    ("rsa-sha2-256", "rsa", "ssh-rsa"),
    ("ssh-rsa", "rsa", "ssh-rsa"),
    ("ssh-dss", "dss", "ssh-dss"),
];

/// Cipher and MAC pairs (the AEAD cipher once, its MAC not negotiated).
const CIPHER_MACS: [(&str, Option<&str>); 5] = [
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-ctr", Some("hmac-sha2-256")),
    ("aes128-ctr", Some("hmac-sha1")),
    ("aes256-ctr", Some("hmac-sha2-256")),
    ("aes256-ctr", Some("hmac-sha1")),
];

/// Compression both sides have (Dropbear's server offers zlib@openssh.com, not plain zlib).
const COMPRESSIONS: [&str; 2] = ["none", "zlib@openssh.com"];

/// Every algorithm of `kind` that the lists above say Dropbear and Sekura share.
fn shared(kind: AlgorithmKind) -> Vec<&'static str> {
    match kind {
        AlgorithmKind::Kex => KEXES.to_vec(),
        AlgorithmKind::HostKey => HOST_KEYS.iter().map(|(a, _, _)| *a).collect(),
        AlgorithmKind::Cipher => CIPHER_MACS.iter().map(|(c, _)| *c).collect(),
        AlgorithmKind::Mac => CIPHER_MACS.iter().filter_map(|(_, m)| *m).collect(),
        AlgorithmKind::Compression => COMPRESSIONS.to_vec(),
    }
}

fn connect(server: &Dropbear) -> Transport {
    Transport::connect("127.0.0.1", server.port, Some(TIMEOUT)).expect("connect to dropbear")
}

fn user_key(server: &Dropbear, kind: &str) -> PrivateKey {
    PrivateKey::from_file(&server.user_key(kind), None)
        .unwrap_or_else(|e| panic!("load the {kind} user key: {e}"))
}

/// Connects, runs the key exchange and authenticates with the ed25519 user key.
fn login(server: &Dropbear) -> Transport {
    let t = connect(server);
    t.start_client().expect("key exchange");
    t.auth_publickey(&server.user, &user_key(server, "ed25519"))
        .expect("publickey auth");
    t
}

/// Opens a session with a channel timeout and runs `command`.
fn exec(t: &Transport, command: &str) -> sekura::Result<Channel> {
    let ch = t.open_session()?;
    ch.set_timeout(Some(TIMEOUT));
    ch.exec(command)?;
    Ok(ch)
}

fn read_to_end(ch: &Channel, stderr: bool) -> sekura::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = if stderr {
            ch.recv_stderr(&mut buf)?
        } else {
            ch.recv(&mut buf)?
        };
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Runs `command` on a new session: (stdout, stderr, exit status).
fn run(t: &Transport, command: &str) -> sekura::Result<(String, String, ExitStatus)> {
    let ch = exec(t, command)?;
    let stdout = read_to_end(&ch, false)?;
    let stderr = read_to_end(&ch, true)?;
    let status = ch.recv_exit_status()?;
    Ok((
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
        status,
    ))
}

fn assert_runs(t: &Transport, command: &str, expected: &str) {
    let (stdout, stderr, status) =
        run(t, command).unwrap_or_else(|e| panic!("running {command:?}: {:?}: {e}", e.kind()));
    assert_eq!(
        stdout, expected,
        "stdout of {command:?} (stderr {stderr:?})"
    );
    assert_eq!(status, ExitStatus::Code(0), "exit status of {command:?}");
}

/// The Info-level log messages of every transport in this process, by log name: one sink for
/// the whole process (the sink is global), installed by the first test that asks.
struct LogRecords(Arc<Records>);

/// (log name, message) pairs.
type Records = Mutex<Vec<(String, String)>>;

impl LogRecords {
    fn start() -> LogRecords {
        use sekura::log::{self, Level};
        static RECORDS: std::sync::OnceLock<Arc<Records>> = std::sync::OnceLock::new();
        let records = RECORDS.get_or_init(|| {
            let records: Arc<Records> = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&records);
            log::set_sink(
                Level::Info,
                Some(Arc::new(move |_, name: &str, message: &str| {
                    if name.starts_with("dropbear.") {
                        sink.lock()
                            .unwrap()
                            .push((name.to_owned(), message.to_owned()));
                    }
                })),
            );
            records
        });
        LogRecords(Arc::clone(records))
    }

    /// The messages logged under `name` so far.
    fn messages(&self, name: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

// ----- algorithms -----

#[derive(Clone, Debug)]
struct Combo {
    kex: &'static str,
    host_key: &'static str,
    host_key_kind: &'static str,
    host_key_type: &'static str,
    cipher: &'static str,
    mac: Option<&'static str>,
}

impl Combo {
    fn id(&self) -> String {
        format!(
            "{} {} {} {}",
            self.kex,
            self.host_key,
            self.cipher,
            self.mac.unwrap_or("(aead)")
        )
    }
}

/// One connection with everything forced to `combo`; an error names the step that failed.
fn try_combo(server: &Dropbear, key: &PrivateKey, combo: &Combo) -> Result<(), String> {
    let step = |what: &'static str| move |e: sekura::Error| format!("{what}: {:?}: {e}", e.kind());
    let t = Transport::connect("127.0.0.1", server.port, Some(TIMEOUT)).map_err(step("connect"))?;
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
            "host key fingerprint {} instead of dropbearkey's {expected}",
            host_key.fingerprint_sha256()
        ));
    }
    t.auth_publickey(&server.user, key)
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

/// Every kex × host key algorithm × cipher/MAC pair both sides have, forced one at a time on
/// our side, negotiates with Dropbear, verifies the host key against `dropbearkey`'s
/// fingerprint, authenticates and runs a command. Dropbear loads at most four host keys, so
/// the nistp521 and DSA ones are on a second server. All failures are reported together.
#[test]
fn every_shared_algorithm_combination_negotiates_and_runs_a_command() {
    let main = Dropbear::start();
    let second = Dropbear::start_with(DropbearOptions {
        host_keys: vec!["ecdsa521", "dss"],
        ..Default::default()
    });
    let key = user_key(&main, "ed25519");
    let mut combos = Vec::new();
    for kex in KEXES {
        for (host_key, host_key_kind, host_key_type) in HOST_KEYS {
            for (cipher, mac) in CIPHER_MACS {
                combos.push(Combo {
                    kex,
                    host_key,
                    host_key_kind,
                    host_key_type,
                    cipher,
                    mac,
                });
            }
        }
    }
    assert_eq!(combos.len(), 7 * 7 * 5);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    // Three at a time: Dropbear drops connections beyond five unauthenticated ones per
    // address (MAX_UNAUTH_PER_IP).
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(combo) = combos.get(i) else { break };
                let server = if second.host_keys().contains(&combo.host_key_kind) {
                    &second
                } else {
                    &main
                };
                if let Err(why) = try_combo(server, &key, combo) {
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

/// With our default preferences the first algorithms both sides have are chosen: ssh-ed25519
/// when the server has it, else the one host key it has.
#[test]
fn default_preferences_pick_the_best_shared_host_key() {
    let main = Dropbear::start();
    let p521 = Dropbear::start_with(DropbearOptions {
        host_keys: vec!["ecdsa521", "rsa"],
        ..Default::default()
    });
    for (server, kind, key_type) in [
        (&main, "ed25519", "ssh-ed25519"),
        (&p521, "ecdsa521", "ecdsa-sha2-nistp521"),
    ] {
        let t = connect(server);
        t.start_client().unwrap();
        let key = t.remote_server_key().unwrap();
        assert_eq!(key.key_type(), key_type);
        assert_eq!(key.fingerprint_sha256(), server.host_key_fingerprint(kind));
        assert_eq!(
            key.to_openssh(),
            public_line_without_comment(&server.host_key_public(kind))
        );
    }
}

fn public_line_without_comment(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every other algorithm Sekura implements, forced alone, fails the key exchange with
/// Dropbear with a protocol error naming it, without hanging: the shared lists above are
/// complete. If Dropbear gains one, this fails and the lists grow.
#[test]
fn algorithms_outside_the_shared_lists_fail_the_negotiation() {
    let server = Dropbear::start();
    let mut tried = 0;
    for kind in [
        AlgorithmKind::Kex,
        AlgorithmKind::HostKey,
        AlgorithmKind::Cipher,
        AlgorithmKind::Mac,
        AlgorithmKind::Compression,
    ] {
        let shared = shared(kind);
        for name in kind.supported_names() {
            if shared.contains(&name) {
                continue;
            }
            tried += 1;
            let t = connect(&server);
            t.set_preferred(kind, name)
                .unwrap_or_else(|e| panic!("set_preferred({kind:?}, {name}): {e}"));
            if kind == AlgorithmKind::Mac {
                // With an AEAD cipher no MAC is negotiated.
                t.set_preferred(AlgorithmKind::Cipher, "aes128-ctr")
                    .unwrap();
            }
            let e = t
                .start_client()
                .expect_err(&format!("{name} negotiated with dropbear"));
            assert_eq!(e.kind(), ErrorKind::Protocol, "{name}: {e}");
            assert!(
                e.message().contains("no matching") && e.message().contains(name),
                "{name}: {e}"
            );
        }
    }
    println!("{tried} algorithms Dropbear lacks");
    assert!(
        tried >= 10,
        "only {tried} algorithms outside the shared lists"
    );
}

// ----- authentication -----

/// Publickey authentication with each user key kind; Dropbear logs each success with the
/// key's fingerprint, which must be the one we compute. The RSA key signs with rsa-sha2-256:
/// Dropbear's server-sig-algs has no rsa-sha2-512.
#[test]
fn publickey_auth_with_each_user_key() {
    let server = Dropbear::start();
    for (kind, algorithm) in [
        ("ed25519", "ssh-ed25519"),
        ("ecdsa256", "ecdsa-sha2-nistp256"),
        ("ecdsa384", "ecdsa-sha2-nistp384"),
        ("ecdsa521", "ecdsa-sha2-nistp521"),
        ("rsa", "rsa-sha2-256"),
    ] {
        let key = user_key(&server, kind);
        let t = connect(&server);
        t.start_client().unwrap();
        t.auth_publickey(&server.user, &key)
            .unwrap_or_else(|e| panic!("publickey auth with the {kind} key: {:?}: {e}", e.kind()));
        assert!(t.is_authenticated());
        assert_runs(&t, &format!("echo {kind}"), &format!("{kind}\n"));
        let fingerprint = key.public_key().fingerprint_sha256();
        server.wait_for_log(
            &format!("Pubkey auth succeeded for '{}'", server.user),
            TIMEOUT,
        );
        let log = server.wait_for_log(&fingerprint, TIMEOUT);
        assert!(
            log.lines()
                .any(|l| l.contains("Pubkey auth succeeded") && l.contains(&fingerprint)),
            "no success line with the {kind} key {fingerprint}:\n{log}"
        );

        // The signature algorithm the client picks for this key against Dropbear.
        let t = connect(&server);
        t.start_client().unwrap();
        let chosen = Mutex::new(String::new());
        t.auth_publickey_with(&server.user, &key.public_key(), |alg, data| {
            *chosen.lock().unwrap() = alg.to_owned();
            key.sign(alg, data)
        })
        .unwrap_or_else(|e| panic!("publickey auth with a signing callback, {kind}: {e}"));
        assert_eq!(*chosen.lock().unwrap(), algorithm, "{kind}");
    }
}

/// Keys Sekura generates (written with a passphrase, read back) log in to Dropbear once
/// listed in `authorized_keys`: Ed25519, ECDSA on the three curves, RSA and DSA (ssh-dss,
/// which Debian's Dropbear still accepts and lists in server-sig-algs).
#[test]
fn keys_generated_by_sekura_authenticate() {
    use sekura::crypto::rng::OsRandom;
    use sekura::keys::{KeyType, PrivateKeyFormat};
    let server = Dropbear::start();
    let dir = support::fresh_dir("dropbear-generated-keys");
    let mut failures = vec![];
    for (key_type, bits) in [
        (KeyType::Ed25519, None),
        (KeyType::EcdsaP256, None),
        (KeyType::EcdsaP384, None),
        (KeyType::EcdsaP521, None),
        (KeyType::Rsa, Some(2048)),
        (KeyType::Dsa, None),
    ] {
        let generated = PrivateKey::generate(key_type, bits, &mut OsRandom).unwrap();
        let path = dir.join(format!("id_{}", key_type.name()));
        generated
            .write_file(
                &path,
                PrivateKeyFormat::OpenSsh,
                Some(b"generated pass"),
                &mut OsRandom,
            )
            .unwrap();
        let key = PrivateKey::from_file(&path, Some(b"generated pass")).unwrap();
        let line = format!("{}\n", key.public_key().to_openssh());
        let mut authorized = std::fs::OpenOptions::new()
            .append(true)
            .open(server.authorized_keys())
            .unwrap();
        std::io::Write::write_all(&mut authorized, line.as_bytes()).unwrap();
        let t = connect(&server);
        t.start_client().unwrap();
        match t.auth_publickey(&server.user, &key) {
            Ok(()) => assert_runs(&t, "echo ok", "ok\n"),
            Err(e) => failures.push(format!("{}: {:?}: {e}", key_type.name(), e.kind())),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{failures:#?}\n{}", server.log());
}

/// An unauthorized key and a wrong password are refused with the methods that can continue
/// (publickey and password); then the password logs in on the same transport.
#[test]
fn refusals_then_password_auth() {
    let server = Dropbear::start();
    let t = connect(&server);
    t.start_client().unwrap();
    let unauthorized = PrivateKey::from_file(&server.unauthorized_key(), None).unwrap();
    for (what, result) in [
        (
            "unauthorized key",
            t.auth_publickey(&server.user, &unauthorized),
        ),
        (
            "wrong password",
            t.auth_password(&server.user, "not the password"),
        ),
    ] {
        let e = result.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::AuthDenied, "{what}: {e}");
        let denied = t.auth_denied().expect("auth_denied after a refusal");
        assert!(!denied.partial, "{what}: {denied:?}");
        for method in ["publickey", "password"] {
            assert!(
                denied.methods.iter().any(|m| m == method),
                "{what}: {:?} lacks {method}",
                denied.methods
            );
        }
        assert!(!t.is_authenticated(), "{what}");
    }
    // Dropbear's server has no keyboard-interactive: refused at once, without prompts.
    let mut prompts = 0;
    let e = t
        .auth_interactive(&server.user, |_| {
            prompts += 1;
            None
        })
        .expect_err("keyboard-interactive against dropbear");
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{e}");
    assert_eq!(prompts, 0);
    server.wait_for_log("Bad password attempt", TIMEOUT);
    t.auth_password(&server.user, &server.password)
        .unwrap_or_else(|e| panic!("password auth: {:?}: {e}", e.kind()));
    assert!(t.is_authenticated());
    assert_runs(&t, "id -un", &format!("{}\n", server.user));
    server.wait_for_log(
        &format!("Password auth succeeded for '{}'", server.user),
        TIMEOUT,
    );
}

// ----- sessions -----

/// stdout and stderr apart, exit codes, a signal, on sessions of one transport.
#[test]
fn exec_stdout_stderr_exit_status_and_signal() {
    let server = Dropbear::start();
    let t = login(&server);
    let (stdout, stderr, status) = run(&t, "echo out; echo err >&2; echo out2").unwrap();
    assert_eq!(stdout, "out\nout2\n");
    assert_eq!(stderr, "err\n");
    assert_eq!(status, ExitStatus::Code(0));
    for code in [1u32, 42, 255] {
        let (stdout, _, status) = run(&t, &format!("echo {code}; exit {code}")).unwrap();
        assert_eq!(stdout, format!("{code}\n"));
        assert_eq!(status, ExitStatus::Code(code), "exit {code}");
    }
    let (_, _, status) = run(&t, "kill -TERM $$").unwrap();
    match status {
        ExitStatus::Signal { name, .. } => assert_eq!(name, "TERM"),
        other => panic!("expected signal TERM, got {other:?}"),
    }
}

/// With `dropbear -T 2` the second wrong password makes Dropbear hang up. It sends no
/// DISCONNECT (OpenSSH's client only sees the connection closed), so the caller gets a
/// Closed error, and the transport is dead.
#[test]
fn server_hanging_up_after_too_many_tries_is_reported() {
    let server = Dropbear::start_with(DropbearOptions {
        extra_args: vec!["-T".into(), "2".into()],
        ..Default::default()
    });
    let t = connect(&server);
    t.start_client().unwrap();
    let first = t.auth_password(&server.user, "wrong").unwrap_err();
    assert_eq!(first.kind(), ErrorKind::AuthDenied, "{first}");
    let e = t.auth_password(&server.user, "wrong again").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    assert!(e.message().contains("closed by the server"), "{e}");
    assert!(!t.is_active());
    server.wait_for_log("Max auth tries reached", TIMEOUT);
}

/// Eight sessions on one transport, each running `cat` on 8 MiB at the same time: channel
/// numbers, windows and EOFs kept apart.
#[test]
fn concurrent_sessions_on_one_transport() {
    let server = Dropbear::start();
    let t = Arc::new(login(&server));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || cat_round_trip(&t, 8 << 20, |_| {}))
        })
        .collect();
    for worker in workers {
        worker.join().expect("a session failed");
    }
    assert_runs(&t, "echo done", "done\n");
}

/// A server banner (`dropbear -b`) is delivered before authentication.
#[test]
fn banner_is_delivered() {
    let dir = support::fresh_dir("dropbear-banner");
    let banner = dir.join("banner.txt");
    std::fs::write(&banner, "Dropbear test banner.\n").unwrap();
    let server = Dropbear::start_with(DropbearOptions {
        extra_args: vec!["-b".into(), banner.display().to_string()],
        ..Default::default()
    });
    let t = login(&server);
    assert_eq!(t.banner().as_deref(), Some("Dropbear test banner.\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes `total` pseudo-random bytes to `ch` in 64 KiB blocks, then EOF; returns their
/// SHA-256.
fn send_pattern(ch: &Channel, total: usize) -> Vec<u8> {
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let mut sent = 0;
    while sent < total {
        for chunk in block.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = block.len().min(total - sent);
        hash.update(&block[..n]);
        ch.sendall(&block[..n]).expect("sendall to cat");
        sent += n;
    }
    ch.send_eof().expect("send_eof");
    hash.finalize().to_vec()
}

/// Sends `total` bytes through `cat` while `during` runs on this thread, given the count of
/// bytes back so far; checks the bytes and SHA-256 that come back and the exit status.
/// Returns the elapsed time.
fn cat_round_trip(t: &Transport, total: usize, during: impl FnOnce(&AtomicUsize)) -> Duration {
    let started = Instant::now();
    let ch = Arc::new(exec(t, "cat").unwrap());
    ch.set_timeout(Some(Duration::from_secs(120)));
    let writer = {
        let ch = Arc::clone(&ch);
        std::thread::spawn(move || send_pattern(&ch, total))
    };
    let progress = Arc::new(AtomicUsize::new(0));
    let reader = {
        let ch = Arc::clone(&ch);
        let progress = Arc::clone(&progress);
        std::thread::spawn(move || {
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            loop {
                let n = ch.recv(&mut buf).expect("recv from cat");
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                got += n;
                progress.store(got, Ordering::SeqCst);
            }
            (got, hash.finalize().to_vec())
        })
    };
    during(&progress);
    let sent = writer.join().expect("writer thread");
    let (got, received) = reader.join().expect("reader thread");
    assert_eq!(got, total, "bytes back from cat");
    assert!(
        received == sent,
        "SHA-256 of the data back from cat differs"
    );
    assert_eq!(ch.recv_exit_status().unwrap(), ExitStatus::Code(0));
    started.elapsed()
}

/// 64 MiB of pseudo-random data through `cat` and back with Dropbear's default receive
/// window (24 KiB: many window adjustments), while we force ten key re-exchanges spread over
/// the transfer, each started before the last byte came back.
#[test]
fn cat_round_trip_64_mib_with_forced_rekeys() {
    const TOTAL: usize = 64 << 20;
    let server = Dropbear::start();
    let t = login(&server);
    let elapsed = cat_round_trip(&t, TOTAL, |progress| {
        for k in 1..=10 {
            let deadline = Instant::now() + TIMEOUT;
            let mut back = progress.load(Ordering::SeqCst);
            while back < k * TOTAL / 12 {
                assert!(Instant::now() < deadline, "stuck at {back} bytes back");
                std::thread::sleep(Duration::from_millis(1));
                back = progress.load(Ordering::SeqCst);
            }
            assert!(
                back < TOTAL,
                "re-exchange {k} would start after the transfer"
            );
            t.renegotiate_keys()
                .expect("renegotiate_keys during the transfer");
        }
    });
    println!("64 MiB each way with 10 forced re-exchanges in {elapsed:.1?}");
    assert_eq!(t.key_exchange_count(), 11);
}

/// Our byte limit renews keys about every MiB while 16 MiB go each way, through Dropbear's
/// side of the re-exchange in the middle of channel data.
#[test]
fn byte_limit_renews_keys_during_a_transfer() {
    let server = Dropbear::start_with(DropbearOptions {
        extra_args: vec!["-W".into(), "1048576".into()],
        ..Default::default()
    });
    let t = connect(&server);
    t.set_rekey_limits(1 << 20, None).unwrap();
    t.start_client().unwrap();
    t.auth_publickey(&server.user, &user_key(&server, "ed25519"))
        .unwrap();
    let elapsed = cat_round_trip(&t, 16 << 20, |_| {});
    let exchanges = t.key_exchange_count();
    println!("16 MiB each way, 1 MiB rekey limit: {exchanges} exchanges in {elapsed:.1?}");
    assert!(exchanges >= 20, "only {exchanges} key exchanges");
}

/// Dropbear renews keys on its own after 1 GiB in both directions together (its
/// KEX_REKEY_DATA). With our own limit out of the way (64 GiB), 576 MiB each way through `cat`
/// crosses Dropbear's once: the second key exchange can only be the server's, and it happens
/// in the middle of channel data in both directions.
#[test]
fn dropbear_renews_keys_after_a_gigabyte() {
    let server = Dropbear::start_with(DropbearOptions {
        extra_args: vec!["-W".into(), "4194304".into()],
        ..Default::default()
    });
    let t = connect(&server);
    t.set_log_name("dropbear.server-rekey");
    let log = LogRecords::start();
    t.set_rekey_limits(64 << 30, None).unwrap();
    t.start_client().unwrap();
    t.auth_publickey(&server.user, &user_key(&server, "ed25519"))
        .unwrap();
    let elapsed = cat_round_trip(&t, 576 << 20, |_| {});
    println!("576 MiB each way, one re-exchange started by Dropbear, in {elapsed:.1?}");
    assert_eq!(t.key_exchange_count(), 2);
    let records = log.messages("dropbear.server-rekey");
    assert!(
        !records.iter().any(|m| m.starts_with("renewing keys")),
        "the client started a re-exchange: {records:#?}"
    );
}

/// zlib@openssh.com (the only compression Dropbear offers besides none) on a compressible
/// 64 MiB stream, with a key re-exchange in the middle that restarts both zlib streams;
/// compressible data also goes the other way through `cat`.
#[test]
fn compression_zlib_openssh_com() {
    let server = Dropbear::start();
    let t = connect(&server);
    t.set_log_name("dropbear.compression");
    let log = LogRecords::start();
    t.use_compression(true).unwrap();
    t.start_client().unwrap();
    t.auth_publickey(&server.user, &user_key(&server, "ed25519"))
        .unwrap();

    const TOTAL: usize = 64 << 20;
    let line = "the quick brown fox jumps over the lazy dog";
    let ch = exec(
        &t,
        &format!("yes '{line}' | head -c {TOTAL} | sha256sum >&2; yes '{line}' | head -c {TOTAL}"),
    )
    .unwrap();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 65536];
    let mut got = 0usize;
    let mut renewed = false;
    loop {
        let n = ch.recv(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        got += n;
        if !renewed && got > TOTAL / 2 {
            t.renegotiate_keys().unwrap();
            renewed = true;
        }
    }
    let theirs = String::from_utf8(read_to_end(&ch, true).unwrap()).unwrap();
    let ours: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, TOTAL);
    assert!(theirs.starts_with(&ours), "{theirs} vs {ours}");
    assert!(renewed);
    assert_eq!(ch.recv_exit_status().unwrap(), ExitStatus::Code(0));

    // And upwards: text through cat.
    let ch = Arc::new(exec(&t, "cat").unwrap());
    let text = line.repeat(1 << 16);
    let writer = {
        let ch = Arc::clone(&ch);
        let text = text.clone();
        std::thread::spawn(move || {
            for _ in 0..8 {
                ch.sendall(text.as_bytes()).unwrap();
            }
            ch.send_eof().unwrap();
        })
    };
    let back = read_to_end(&ch, false).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), text.len() * 8);
    assert!(back.chunks(text.len()).all(|c| c == text.as_bytes()));

    let records = log.messages("dropbear.compression");
    let done: Vec<&String> = records
        .iter()
        .filter(|m| m.starts_with("key exchange done"))
        .collect();
    assert_eq!(done.len(), 2, "{records:#?}");
    for m in done {
        assert!(
            m.ends_with("compression zlib@openssh.com/zlib@openssh.com"),
            "{m}"
        );
    }
}

// ----- keepalive -----

/// With `dropbear -K 1` the server sends keepalive@openssh.com requests every second and
/// hangs up ("Keepalive timeout") after three seconds without a packet from the client. Our
/// client answers them, so a quiet connection survives five idle seconds; our own keepalives
/// (every second) get Dropbear's REQUEST_FAILURE, which counts as an answer. The control: an
/// OpenSSH client stopped with SIGSTOP is hung up on by the same server.
#[test]
fn keepalives_both_ways_keep_an_idle_connection() {
    let server = Dropbear::start_with(DropbearOptions {
        extra_args: vec!["-K".into(), "1".into()],
        ..Default::default()
    });
    let quiet = login(&server);
    let chatty = login(&server);
    chatty.set_keepalive(Duration::from_secs(1), 2).unwrap();

    let ssh_stderr = server.dir.join("ssh.stderr");
    let mut stopped_client = server
        .ssh_command()
        .arg("-i")
        .arg(server.user_key("ed25519"))
        .args(["-o", "BatchMode=yes", "-N", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&ssh_stderr).unwrap())
        .spawn()
        .expect("spawn ssh");
    let deadline = Instant::now() + TIMEOUT;
    while server.log().matches("Pubkey auth succeeded").count() < 3 {
        assert!(
            Instant::now() < deadline,
            "ssh did not log in: {}\n{}",
            std::fs::read_to_string(&ssh_stderr).unwrap_or_default(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&[stopped_client.id()], "STOP");

    std::thread::sleep(Duration::from_secs(5));
    for t in [&quiet, &chatty] {
        assert!(t.is_active());
        assert_runs(t, "echo alive", "alive\n");
    }
    let log = server.wait_for_log("Keepalive timeout", TIMEOUT);
    signal(&[stopped_client.id()], "CONT");
    let _ = stopped_client.kill();
    let _ = stopped_client.wait();
    assert_eq!(
        log.matches("Keepalive timeout").count(),
        1,
        "only the stopped OpenSSH client times out:\n{log}"
    );
}

/// Our keepalive notices a Dropbear that stopped answering (its connection process stopped
/// with SIGSTOP) and fails the transport with a timeout.
#[test]
fn keepalive_detects_a_stopped_server() {
    let server = Dropbear::start();
    let t = login(&server);
    let ch = exec(&t, "exec sleep 15").unwrap();
    t.set_keepalive(Duration::from_secs(1), 2).unwrap();
    let stopped = descendants(server.pid());
    assert!(!stopped.is_empty(), "no dropbear connection process found");
    signal(&stopped, "STOP");
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let result = ch.recv(&mut buf);
    let elapsed = start.elapsed();
    signal(&stopped, "CONT");
    assert!(!t.is_active(), "the transport must be dead");
    let err = match result {
        Err(e) => e,
        Ok(_) => t.global_request("x", &[], false).unwrap_err(),
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("keepalive"), "{err}");
    assert!(
        elapsed < Duration::from_secs(6),
        "took {elapsed:?} for 1 s × 2 keepalives"
    );
}

/// Every descendant of `parent` (from /proc).
fn descendants(parent: u32) -> Vec<u32> {
    let mut found = vec![];
    let mut frontier = vec![parent];
    while let Some(parent) = frontier.pop() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let ppid: u32 = after_comm.split(' ').nth(1).unwrap().parse().unwrap();
            if ppid == parent {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }
}
