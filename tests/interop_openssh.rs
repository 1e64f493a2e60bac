//! Sekura's client against a real OpenSSH `sshd` (a private one per test, see tests/support):
//! every supported algorithm combination, every authentication method, data transfer, stderr,
//! exit statuses and signals, host keys.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sekura::keys::PrivateKey;
use sekura::proto::{AlgorithmKind, ExitStatus};
use sekura::transport::{Channel, Transport};
use sekura::ErrorKind;
use support::{Sshd, SshdOptions, ENCRYPTED_KEY_PASSPHRASE};

/// Connect, handshake, authentication and channel timeouts: generous, only there so that a bug
/// fails a test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(30);

const KEXES: [&str; 5] = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
];

/// Host key algorithm, the harness's host key kind, and the key type it signs with.
const HOST_KEYS: [(&str, &str, &str); 4] = [
    ("ssh-ed25519", "ed25519", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256", "ecdsa", "ecdsa-sha2-nistp256"),
    ("rsa-sha2-512", "rsa", "ssh-rsa"),
    ("rsa-sha2-256", "rsa", "ssh-rsa"),
];

/// AEAD ciphers: the MAC is not negotiated for them.
const AEAD_CIPHERS: [&str; 3] = [
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];

const CTR_CIPHERS: [&str; 3] = ["aes128-ctr", "aes192-ctr", "aes256-ctr"];

const MACS: [&str; 4] = [
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
];

/// A connected, not yet started transport to `sshd`.
fn connect(sshd: &Sshd) -> Transport {
    Transport::connect("127.0.0.1", sshd.port, Some(TIMEOUT)).expect("connect to the private sshd")
}

/// Connects, runs the key exchange and authenticates with the ed25519 user key.
fn login(sshd: &Sshd) -> Transport {
    let t = connect(sshd);
    t.start_client().expect("key exchange");
    let key = user_key(sshd, "ed25519");
    t.auth_publickey(&sshd.user, &key).expect("publickey auth");
    t
}

fn user_key(sshd: &Sshd, kind: &str) -> PrivateKey {
    let passphrase = (kind == "ed25519-enc").then_some(ENCRYPTED_KEY_PASSPHRASE.as_bytes());
    PrivateKey::from_file(&sshd.user_key(kind), passphrase)
        .unwrap_or_else(|e| panic!("load the {kind} user key: {e}"))
}

/// Opens a session with a channel timeout and runs `command`.
fn exec(t: &Transport, command: &str) -> sekura::Result<Channel> {
    let ch = t.open_session()?;
    ch.set_timeout(Some(TIMEOUT));
    ch.exec(command)?;
    Ok(ch)
}

/// Reads stdout (or stderr) until EOF.
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

/// Asserts that `command` prints `expected` and exits 0.
fn assert_runs(t: &Transport, command: &str, expected: &str) {
    let (stdout, stderr, status) =
        run(t, command).unwrap_or_else(|e| panic!("running {command:?}: {:?}: {e}", e.kind()));
    assert_eq!(
        stdout, expected,
        "stdout of {command:?} (stderr {stderr:?})"
    );
    assert_eq!(status, ExitStatus::Code(0), "exit status of {command:?}");
}

// ----- 1. the algorithm matrix -----

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

fn all_combos() -> Vec<Combo> {
    let mut combos = Vec::new();
    for kex in KEXES {
        for (host_key, host_key_kind, host_key_type) in HOST_KEYS {
            let combo = |cipher, mac| Combo {
                kex,
                host_key,
                host_key_kind,
                host_key_type,
                cipher,
                mac,
            };
            for cipher in AEAD_CIPHERS {
                combos.push(combo(cipher, None));
            }
            for cipher in CTR_CIPHERS {
                for mac in MACS {
                    combos.push(combo(cipher, Some(mac)));
                }
            }
        }
    }
    combos
}

/// One connection with everything forced to `combo`; an error names the step that failed.
fn try_combo(sshd: &Sshd, key: &PrivateKey, combo: &Combo) -> Result<(), String> {
    let step = |what: &'static str| move |e: sekura::Error| format!("{what}: {:?}: {e}", e.kind());
    let t = Transport::connect("127.0.0.1", sshd.port, Some(TIMEOUT)).map_err(step("connect"))?;
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
    let expected = sshd.host_key_fingerprint(combo.host_key_kind);
    if host_key.fingerprint_sha256() != expected {
        return Err(format!(
            "host key fingerprint {} instead of {expected}",
            host_key.fingerprint_sha256()
        ));
    }
    t.auth_publickey(&sshd.user, key)
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

/// Every kex × host key algorithm × cipher × MAC (AEAD ciphers once each), forced one at a
/// time on our side, negotiates with OpenSSH, authenticates and runs a command. All failures
/// are reported together.
#[test]
fn every_algorithm_combination_negotiates_and_runs_a_command() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["MaxStartups 100".into(), "MaxSessions 100".into()],
        ..SshdOptions::default()
    });
    let key = user_key(&sshd, "ed25519");
    let combos = all_combos();
    assert_eq!(combos.len(), 5 * 4 * (3 + 3 * 4));
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(combo) = combos.get(i) else { break };
                if let Err(why) = try_combo(&sshd, &key, combo) {
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

// ----- 4. host keys -----

/// Each host key algorithm, alone in our list, yields the server's key of that type with the
/// fingerprint OpenSSH computes; with no preference the default is ssh-ed25519.
#[test]
fn each_host_key_algorithm_yields_the_matching_key() {
    let sshd = Sshd::start();
    for (algorithm, kind, key_type) in HOST_KEYS {
        let t = connect(&sshd);
        t.set_preferred(AlgorithmKind::HostKey, algorithm).unwrap();
        t.start_client()
            .unwrap_or_else(|e| panic!("key exchange with {algorithm}: {e}"));
        let key = t.remote_server_key().unwrap();
        assert_eq!(key.key_type(), key_type, "key type for {algorithm}");
        assert_eq!(
            key.fingerprint_sha256(),
            sshd.host_key_fingerprint(kind),
            "fingerprint for {algorithm}"
        );
    }
    let t = connect(&sshd);
    t.start_client().unwrap();
    let key = t.remote_server_key().unwrap();
    assert_eq!(key.key_type(), "ssh-ed25519");
    assert_eq!(
        key.fingerprint_sha256(),
        sshd.host_key_fingerprint("ed25519")
    );
}

// ----- 2. authentication -----

/// Publickey authentication with each user key kind, the encrypted one with its passphrase.
#[test]
fn publickey_auth_with_each_user_key() {
    let sshd = Sshd::start();
    for kind in ["ed25519", "ecdsa", "rsa", "ed25519-enc"] {
        let key = user_key(&sshd, kind);
        let t = connect(&sshd);
        t.start_client().unwrap();
        t.auth_publickey(&sshd.user, &key)
            .unwrap_or_else(|e| panic!("publickey auth with the {kind} key: {:?}: {e}", e.kind()));
        assert!(t.is_authenticated());
        assert_runs(&t, &format!("echo {kind}"), &format!("{kind}\n"));
    }
    let log = sshd.wait_for_log("Accepted publickey", Duration::from_secs(10));
    for key_type in ["ED25519", "ECDSA", "RSA"] {
        assert!(
            log.contains(&format!("Accepted publickey for {} ", sshd.user))
                && log.contains(&format!("ssh2: {key_type} SHA256:")),
            "sshd log has no publickey login with an {key_type} key:\n{log}"
        );
    }
}

/// With a server that accepts only rsa-sha2-512 signatures (while server-sig-algs still lists
/// every algorithm), the RSA key logs in: the client chose rsa-sha2-512, not -256 or ssh-rsa.
#[test]
fn rsa_key_signs_with_rsa_sha2_512_when_offered() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["PubkeyAcceptedAlgorithms rsa-sha2-512".into()],
        ..SshdOptions::default()
    });
    let t = connect(&sshd);
    t.start_client().unwrap();
    t.auth_publickey(&sshd.user, &user_key(&sshd, "rsa"))
        .unwrap_or_else(|e| {
            panic!(
                "RSA publickey auth against a server accepting only rsa-sha2-512: {:?}: {e}",
                e.kind()
            )
        });
    assert_runs(&t, "echo rsa512", "rsa512\n");
}

/// The encrypted key needs its passphrase: none gives PasswordRequired, a wrong one
/// BadPassphrase.
#[test]
fn encrypted_key_needs_the_right_passphrase() {
    let sshd = Sshd::start();
    let path = sshd.user_key("ed25519-enc");
    let e = PrivateKey::from_file(&path, None).expect_err("encrypted key without a passphrase");
    assert_eq!(e.kind(), ErrorKind::PasswordRequired, "{e}");
    let e = PrivateKey::from_file(&path, Some(b"not the passphrase"))
        .expect_err("encrypted key with a wrong passphrase");
    assert_eq!(e.kind(), ErrorKind::BadPassphrase, "{e}");
    let key = PrivateKey::from_file(&path, Some(ENCRYPTED_KEY_PASSPHRASE.as_bytes())).unwrap();
    let plain_pub = std::fs::read_to_string(sshd.user_key_pub("ed25519-enc")).unwrap();
    let blob = plain_pub.split_whitespace().nth(1).unwrap();
    assert_eq!(key.public_key().base64(), blob);
}

/// Password authentication for the password user.
#[test]
fn password_auth() {
    let sshd = Sshd::start_with(SshdOptions {
        password: Some("Sekura-interop-pw-7".into()),
        ..SshdOptions::default()
    });
    let (user, password) = sshd.password_user();
    let t = connect(&sshd);
    t.start_client().unwrap();
    t.auth_password(&user, &password)
        .unwrap_or_else(|e| panic!("password auth: {:?}: {e}", e.kind()));
    assert!(t.is_authenticated());
    assert_runs(&t, "id -un", &format!("{user}\n"));
}

fn assert_denied(t: &Transport, result: sekura::Result<()>, what: &str, methods: &[&str]) {
    let e = result.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{what}: {e}");
    assert!(!t.is_authenticated(), "{what}");
    let denied = t
        .auth_denied()
        .unwrap_or_else(|| panic!("{what}: auth_denied() is None after a refusal"));
    assert!(!denied.partial, "{what}: {denied:?}");
    for method in methods {
        assert!(
            denied.methods.iter().any(|m| m == method),
            "{what}: methods that can continue {:?} lack {method}",
            denied.methods
        );
        assert!(
            e.message().contains(method),
            "{what}: message {:?} does not name {method}",
            e.message()
        );
    }
}

/// none, a wrong password, an unauthorized key and keyboard-interactive (not offered by an
/// sshd without PAM) are each refused with the methods that can continue; then a correct
/// login on the same transport still works.
#[test]
fn refusals_list_the_methods_and_a_later_correct_auth_works() {
    let sshd = Sshd::start_with(SshdOptions {
        password: Some("Sekura-interop-pw-8".into()),
        ..SshdOptions::default()
    });
    let (user, password) = sshd.password_user();
    let t = connect(&sshd);
    t.start_client().unwrap();
    let methods = ["publickey", "password"];

    assert_denied(&t, t.auth_none(&user), "auth none", &methods);
    let denied = t.auth_denied().unwrap();
    let kbd_offered = denied.methods.iter().any(|m| m == "keyboard-interactive");
    println!("methods offered after none: {:?}", denied.methods);

    assert_denied(
        &t,
        t.auth_password(&user, "wrong password"),
        "wrong password",
        &methods,
    );
    let unauthorized = PrivateKey::from_file(&sshd.unauthorized_key(), None).unwrap();
    assert_denied(
        &t,
        t.auth_publickey(&user, &unauthorized),
        "unauthorized key",
        &methods,
    );

    let mut prompts = 0;
    let interactive = t.auth_interactive(&user, |req| {
        prompts += 1;
        Some(req.prompts.iter().map(|_| password.clone()).collect())
    });
    match interactive {
        // Only with an sshd that has a keyboard-interactive device (PAM, BSD auth).
        Ok(()) => assert!(
            prompts > 0,
            "keyboard-interactive succeeded without prompts"
        ),
        // OpenSSH without PAM lists keyboard-interactive (KbdInteractiveAuthentication
        // defaults to yes) but has no device to ask with: it refuses at once, no prompts.
        Err(e) => {
            assert_denied(
                &t,
                Err(e),
                &format!("keyboard-interactive (offered: {kbd_offered})"),
                &methods,
            );
            assert_eq!(prompts, 0, "prompts answered, yet refused");
            // A correct login still works after the refusals.
            t.auth_password(&user, &password)
                .unwrap_or_else(|e| panic!("password auth after refusals: {:?}: {e}", e.kind()));
        }
    }
    assert!(t.is_authenticated());
    assert_runs(&t, "echo after-refusals", "after-refusals\n");
}

/// After an unauthorized key, the authorized one logs in on the same transport.
#[test]
fn unauthorized_key_then_authorized_key() {
    let sshd = Sshd::start();
    let t = connect(&sshd);
    t.start_client().unwrap();
    let unauthorized = PrivateKey::from_file(&sshd.unauthorized_key(), None).unwrap();
    assert_denied(
        &t,
        t.auth_publickey(&sshd.user, &unauthorized),
        "unauthorized key",
        &["publickey", "password"],
    );
    t.auth_publickey(&sshd.user, &user_key(&sshd, "ecdsa"))
        .unwrap_or_else(|e| panic!("authorized key after a refusal: {:?}: {e}", e.kind()));
    assert_runs(&t, "echo ok", "ok\n");
}

// ----- 3. data, stderr, exit statuses, signals -----

/// xorshift64*: fast pseudo-random test data.
struct XorShift(u64);

impl XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// 256 MiB of pseudo-random data through `cat` and back, hashed on both sides.
#[test]
fn cat_round_trip_256_mib() {
    use sha2::{Digest, Sha256};
    const TOTAL: usize = 256 << 20;
    let sshd = Sshd::start();
    let t = login(&sshd);
    let ch = Arc::new(exec(&t, "cat").unwrap());
    let started = Instant::now();
    let writer = {
        let ch = Arc::clone(&ch);
        std::thread::spawn(move || {
            let mut rng = XorShift(0x5EC0_5A5E_C0DE_2024);
            let mut hash = Sha256::new();
            let mut block = vec![0u8; 256 * 1024];
            let mut sent = 0;
            while sent < TOTAL {
                rng.fill(&mut block);
                hash.update(&block);
                ch.sendall(&block).expect("sendall to cat");
                sent += block.len();
            }
            ch.send_eof().expect("send_eof");
            hash.finalize()
        })
    };
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0usize;
    loop {
        let n = ch.recv(&mut buf).expect("recv from cat");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        received += n;
    }
    let sent_hash = writer.join().expect("writer thread");
    let elapsed = started.elapsed();
    println!(
        "256 MiB round trip in {elapsed:.1?} ({:.0} MB/s each way)",
        TOTAL as f64 / 1e6 / elapsed.as_secs_f64()
    );
    assert_eq!(received, TOTAL, "bytes back from cat");
    assert!(
        hash.finalize() == sent_hash,
        "SHA-256 of the data back from cat differs"
    );
    assert_eq!(ch.recv_exit_status().unwrap(), ExitStatus::Code(0));
}

/// stderr arrives on recv_stderr only, stdout on recv only.
#[test]
fn stderr_is_separate_from_stdout() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let (stdout, stderr, status) = run(&t, "echo out; echo err >&2; echo out2").unwrap();
    assert_eq!(stdout, "out\nout2\n");
    assert_eq!(stderr, "err\n");
    assert_eq!(status, ExitStatus::Code(0));
    let (stdout, stderr, status) = run(&t, "echo only-err >&2").unwrap();
    assert_eq!(stdout, "");
    assert_eq!(stderr, "only-err\n");
    assert_eq!(status, ExitStatus::Code(0));
}

/// Exit statuses 0, 1 and 42, each on its own session of one transport.
#[test]
fn exit_statuses() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    for code in [0u32, 1, 42] {
        let (stdout, _, status) = run(&t, &format!("echo {code}; exit {code}")).unwrap();
        assert_eq!(stdout, format!("{code}\n"));
        assert_eq!(status, ExitStatus::Code(code), "exit {code}");
    }
    let (_, _, status) = run(&t, "false").unwrap();
    assert_eq!(status, ExitStatus::Code(1), "false");
}

/// A command killed by a signal reports the signal, not an exit code.
#[test]
fn killed_command_reports_the_signal() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    for (command, signal) in [
        ("kill -TERM $$", "TERM"),
        ("exec sh -c 'kill -TERM $$'", "TERM"),
        ("kill -KILL $$", "KILL"),
    ] {
        let (_, _, status) = run(&t, command).unwrap();
        match status {
            ExitStatus::Signal { name, .. } => assert_eq!(name, signal, "{command}"),
            other => panic!("{command}: expected signal {signal}, got {other:?}"),
        }
    }
}
