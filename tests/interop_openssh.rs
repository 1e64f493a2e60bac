//! Sekura's client against a real OpenSSH `sshd` (a private one per test, see tests/support):
//! every supported algorithm combination, every authentication method, data transfer, stderr,
//! exit statuses and signals, host keys.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sekura::keys::PrivateKey;
use sekura::proto::{AlgorithmKind, ConnectionConfig, ExitStatus};
use sekura::transport::Transport;
use sekura::ErrorKind;
use support::client::{assert_runs, auth_ed25519, connect, login, run, user_key};
use support::combos::{check_all, try_combo, Combo};
use support::transfer::cat_round_trip;
use support::{Sshd, SshdOptions, ENCRYPTED_KEY_PASSPHRASE};

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

// ----- 1. the algorithm matrix -----

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
    check_all(&combos, 4, |combo| try_combo(&sshd, &key, combo));
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

/// 256 MiB of pseudo-random data through `cat` and back, hashed on both sides.
#[test]
fn cat_round_trip_256_mib() {
    const TOTAL: usize = 256 << 20;
    let sshd = Sshd::start();
    let t = login(&sshd);
    let elapsed = cat_round_trip(&t, TOTAL, |_| {});
    println!(
        "256 MiB round trip in {elapsed:.1?} ({:.0} MB/s each way)",
        TOTAL as f64 / 1e6 / elapsed.as_secs_f64()
    );
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

/// One connection configuration serves several clients: each starts with its algorithms,
/// and a transport's own change copies it instead of reaching the others.
#[test]
fn one_connection_config_serves_several_clients() {
    let sshd = Sshd::start();
    let mut config = ConnectionConfig::default();
    config
        .preferences
        .set(AlgorithmKind::Cipher, "aes256-ctr")
        .expect("cipher list");
    config.keepalive = Some((Duration::from_secs(30), 3));
    let config = Arc::new(config);
    let clients: Vec<Transport> = (0..3)
        .map(|_| {
            let t = connect(&sshd);
            t.set_connection_config(Arc::clone(&config))
                .expect("before start");
            t
        })
        .collect();
    clients[0]
        .set_preferred(AlgorithmKind::Cipher, "aes128-gcm@openssh.com")
        .expect("own cipher");
    assert_eq!(
        config.preferences.get(AlgorithmKind::Cipher),
        ["aes256-ctr"]
    );
    for (i, t) in clients.iter().enumerate() {
        t.start_client().expect("key exchange");
        auth_ed25519(t, &sshd);
        let expected = if i == 0 {
            "aes128-gcm@openssh.com"
        } else {
            "aes256-ctr"
        };
        assert_eq!(t.negotiated().expect("negotiated").cipher_c2s, expected);
        assert_runs(t, "echo shared", "shared\n");
    }
    let late = clients[1].set_connection_config(Arc::clone(&config));
    assert_eq!(late.map_err(|e| e.kind()), Err(ErrorKind::State));
}
