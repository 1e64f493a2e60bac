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

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sekura::keys::PrivateKey;
use sekura::proto::{AlgorithmKind, ExitStatus};
use sekura::ErrorKind;
use support::client::{
    assert_keepalive_detects_a_stopped_server, assert_runs, auth_ed25519, connect, exec, login,
    read_to_end, run, user_key, TIMEOUT,
};
use support::combos::{check_all, try_combo, Combo};
use support::logs::LogRecords;
use support::transfer::{cat_round_trip, hex, recv_sha256};
use support::{signal, Dropbear, DropbearOptions};

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

// ----- algorithms -----

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
    // Three at a time: Dropbear drops connections beyond five unauthenticated ones per
    // address (MAX_UNAUTH_PER_IP).
    check_all(&combos, 3, |combo| {
        let server = if second.host_keys().contains(&combo.host_key_kind) {
            &second
        } else {
            &main
        };
        try_combo(server, &key, combo)
    });
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
    let server = Dropbear::start();
    let dir = support::fresh_dir("dropbear-generated-keys");
    let mut failures = vec![];
    for (key_type, key) in support::client::generated_user_keys(&dir) {
        support::client::authorize(&server.authorized_keys(), &key.public_key());
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
    auth_ed25519(&t, &server);
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
    auth_ed25519(&t, &server);
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
    auth_ed25519(&t, &server);

    const TOTAL: usize = 64 << 20;
    let line = "the quick brown fox jumps over the lazy dog";
    let ch = exec(
        &t,
        &format!("yes '{line}' | head -c {TOTAL} | sha256sum >&2; yes '{line}' | head -c {TOTAL}"),
    )
    .unwrap();
    let mut renewed = false;
    let (got, hash) = recv_sha256(&ch, |got| {
        if !renewed && got > TOTAL / 2 {
            t.renegotiate_keys().unwrap();
            renewed = true;
        }
    });
    let theirs = String::from_utf8(read_to_end(&ch, true).unwrap()).unwrap();
    let ours = hex(&hash);
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

    std::thread::scope(|s| {
        s.spawn(|| support::driven::let_run(&quiet, Duration::from_secs(5)));
        support::driven::let_run(&chatty, Duration::from_secs(5));
    });
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
    assert_keepalive_detects_a_stopped_server(&t, server.pid(), "exec sleep 15");
}
