//! OpenSSH's `ssh` against Sekura's server: authentication with each key type, passwords and
//! keyboard-interactive through SSH_ASKPASS, every algorithm forced in turn, a large stdin
//! round trip, exit codes, stderr, environment variables.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKeyFormat, PublicKey};
use support::openssh::{run_with_timeout, use_askpass, PASSWORD_ONLY};
use support::server::{generate, Policy, TestServer};

const TIMEOUT: Duration = Duration::from_secs(60);
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// A user key of `kind` written in OpenSSH format into `dir`; returns its path and public key.
fn user_key(dir: &Path, kind: KeyType) -> (PathBuf, PublicKey) {
    let key = generate(kind, None);
    let path = dir.join(format!("id_{}", key.public_key().key_type()));
    key.write_file(&path, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write user key");
    (path, key.public_key())
}

fn ssh(server: &TestServer) -> Command {
    support::ssh_command(server.port(), USER, &server.known_hosts())
}

/// A server that accepts `key` for alice, and alice's password.
fn server_for(keys: &[PublicKey]) -> TestServer {
    TestServer::start(Policy {
        authorized_keys: keys.to_vec(),
        password: Some((USER.into(), PASSWORD.into())),
        env_allowed: vec!["LANG".into()],
        ..Policy::default()
    })
}

#[test]
fn publickey_exec_exit_code_and_stderr() {
    let dir = support::fresh_dir("server-keys");
    let (path, public) = user_key(&dir, KeyType::Ed25519);
    let server = server_for(&[public]);
    let out = run_with_timeout(
        ssh(&server)
            .arg("-vvv")
            .arg("-i")
            .arg(&path)
            .args(["-o", "BatchMode=yes", "127.0.0.1"])
            .arg("echo out; echo err >&2; exit 42"),
        TIMEOUT,
    );
    assert_eq!(out.status().code(), Some(42), "stderr: {}", out.stderr());
    assert_eq!(out.stdout(), "out\n");
    let log = out.stderr();
    assert!(
        log.contains("\nerr\r\n") || log.contains("\nerr\n"),
        "{log}"
    );
    assert!(log.contains("will use strict KEX ordering"), "{log}");
    assert!(
        log.contains("server-sig-algs=<ssh-ed25519,"),
        "ext-info: {log}"
    );
}

#[test]
fn every_user_key_type_authenticates() {
    let dir = support::fresh_dir("server-keys");
    let kinds = [
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::EcdsaP521,
        KeyType::Rsa,
    ];
    let keys: Vec<_> = kinds.iter().map(|k| user_key(&dir, *k)).collect();
    let publics: Vec<_> = keys.iter().map(|(_, p)| p.clone()).collect();
    let server = server_for(&publics);
    for (path, public) in &keys {
        let out = run_with_timeout(
            ssh(&server).arg("-i").arg(path).args([
                "-o",
                "BatchMode=yes",
                "127.0.0.1",
                "echo logged in",
            ]),
            TIMEOUT,
        );
        out.assert_success(public.key_type());
        assert_eq!(out.stdout(), "logged in\n", "{}", public.key_type());
    }
    let asked = server.asked();
    for (_, public) in &keys {
        let signed = format!("publickey {USER} {} true", public.key_type());
        assert!(asked.contains(&signed), "{signed} missing from {asked:?}");
    }
}

#[test]
fn an_unknown_key_is_refused() {
    let dir = support::fresh_dir("server-keys");
    let (_, authorized) = user_key(&dir, KeyType::Ed25519);
    let (stranger, _) = user_key(&dir, KeyType::EcdsaP256);
    let server = server_for(&[authorized]);
    let out = run_with_timeout(
        ssh(&server)
            .arg("-i")
            .arg(&stranger)
            .args(["-o", "BatchMode=yes", "127.0.0.1", "true"]),
        TIMEOUT,
    );
    assert_eq!(out.status().code(), Some(255));
    assert!(
        out.stderr().contains("Permission denied"),
        "{}",
        out.stderr()
    );
    assert!(
        !server.asked().iter().any(|a| a.ends_with(" true")),
        "no signature may be accepted: {:?}",
        server.asked()
    );
}

#[test]
fn password_and_keyboard_interactive_through_askpass() {
    let server = server_for(&[]);
    let dir = support::fresh_dir("askpass");
    let mut cmd = ssh(&server);
    cmd.args(PASSWORD_ONLY)
        .args(["127.0.0.1", "echo by password"]);
    use_askpass(&mut cmd, &dir, PASSWORD);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    out.assert_success("password login");
    assert_eq!(out.stdout(), "by password\n");

    let mut cmd = ssh(&server);
    cmd.args([
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "NumberOfPasswordPrompts=1",
        "127.0.0.1",
        "echo by keyboard",
    ]);
    use_askpass(&mut cmd, &dir, PASSWORD);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    out.assert_success("keyboard-interactive login");
    assert_eq!(out.stdout(), "by keyboard\n");

    let mut cmd = ssh(&server);
    cmd.args(PASSWORD_ONLY).args(["127.0.0.1", "true"]);
    use_askpass(&mut cmd, &dir, "wrong");
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_eq!(out.status().code(), Some(255), "a wrong password must fail");
    assert!(
        out.stderr().contains("Permission denied"),
        "{}",
        out.stderr()
    );
}

/// A server with every algorithm enabled, legacy ones and a DSA host key included.
fn everything_server(key: &PublicKey) -> TestServer {
    let mut host_keys = support::server::standard_host_keys();
    host_keys.push(generate(KeyType::Dsa, None));
    let policy = Policy {
        authorized_keys: vec![key.clone()],
        ..Policy::default()
    };
    TestServer::start_with(policy, host_keys, |t| {
        use sekura::proto::AlgorithmKind::*;
        for kind in [Kex, HostKey, Cipher, Mac] {
            t.set_preferred(kind, &kind.supported_names().join(","))
                .expect("enable every algorithm");
        }
    })
}

#[test]
fn every_algorithm_openssh_offers() {
    let dir = support::fresh_dir("server-keys");
    let (path, public) = user_key(&dir, KeyType::Ed25519);
    let server = everything_server(&public);
    // Every algorithm the installed OpenSSH client has (`ssh -Q`) that Sekura has too.
    use sekura::proto::AlgorithmKind;
    let mut cases: Vec<[String; 2]> = Vec::new();
    for (query, option, kind) in [
        ("kex", "KexAlgorithms", AlgorithmKind::Kex),
        ("cipher", "Ciphers", AlgorithmKind::Cipher),
        ("mac", "MACs", AlgorithmKind::Mac),
        (
            "HostKeyAlgorithms",
            "HostKeyAlgorithms",
            AlgorithmKind::HostKey,
        ),
    ] {
        let out = Command::new(support::openssh::SSH)
            .args(["-Q", query])
            .output()
            .expect("ssh -Q");
        let offered = String::from_utf8(out.stdout).expect("UTF-8");
        let ours = kind.supported_names();
        let common: Vec<&str> = offered.lines().filter(|n| ours.contains(n)).collect();
        assert!(
            common.len() >= 4,
            "ssh -Q {query} shares only {common:?} with Sekura"
        );
        cases.extend(common.iter().map(|n| [option.to_owned(), (*n).to_owned()]));
    }
    for [option, name] in &cases {
        let mut cmd = ssh(&server);
        cmd.arg("-v").arg("-i").arg(&path).args([
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("{option}={name}"),
        ]);
        if option == "MACs" {
            cmd.args(["-o", "Ciphers=aes128-ctr"]);
        }
        let out = run_with_timeout(cmd.args(["127.0.0.1", "echo $((6 * 7))"]), TIMEOUT);
        out.assert_success(&format!("{option}={name}"));
        assert_eq!(out.stdout(), "42\n", "{option}={name}");
        let used = match option.as_str() {
            "KexAlgorithms" => format!("kex: algorithm: {name}\r\n"),
            "HostKeyAlgorithms" => format!("kex: host key algorithm: {name}\r\n"),
            "Ciphers" => format!("kex: server->client cipher: {name} "),
            _ => format!(" MAC: {name} "),
        };
        assert!(
            out.stderr().contains(&used),
            "{option}={name} not in use: {}",
            out.stderr()
        );
    }
}

#[test]
fn a_large_stdin_round_trip_keeps_every_byte() {
    round_trip(256 << 20, &[]);
}

/// The client renews keys every 4 MiB (about 30 exchanges each way) and compresses.
#[test]
fn client_rekeys_and_compression_lose_nothing() {
    let log = round_trip(64 << 20, &["-v", "-C", "-o", "RekeyLimit=4M"]);
    assert!(
        log.contains("compression: zlib@openssh.com"),
        "compression not in use: {log}"
    );
    let rekeys = log.matches("SSH2_MSG_KEXINIT sent").count();
    assert!(rekeys > 10, "only {rekeys} key exchanges: {log}");
}

/// Sends `total` bytes through `cat` on the server and checks they come back intact;
/// returns ssh's stderr.
fn round_trip(total: usize, options: &[&str]) -> String {
    let dir = support::fresh_dir("server-keys");
    let (path, public) = user_key(&dir, KeyType::Ed25519);
    let server = TestServer::start_with(
        Policy {
            authorized_keys: vec![public],
            ..Policy::default()
        },
        support::server::standard_host_keys(),
        |t| t.use_compression(true).expect("compression"),
    );
    support::transfer::pipe_round_trip(
        ssh(&server).arg("-i").arg(&path).args(options).args([
            "-o",
            "BatchMode=yes",
            "127.0.0.1",
            "cat",
        ]),
        total,
        &dir.join("ssh.log"),
    );
    std::fs::read_to_string(dir.join("ssh.log")).expect("ssh log")
}

#[test]
fn send_env_is_accepted_or_refused_by_the_callback() {
    let dir = support::fresh_dir("server-keys");
    let (path, public) = user_key(&dir, KeyType::Ed25519);
    let server = server_for(&[public]);
    let out = run_with_timeout(
        ssh(&server)
            .arg("-i")
            .arg(&path)
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "SendEnv=LANG",
                "-o",
                "SendEnv=SEKURA_REFUSED",
                "127.0.0.1",
                "echo \"[$LANG][$SEKURA_REFUSED]\"",
            ])
            .env("LANG", "C.UTF-8")
            .env("SEKURA_REFUSED", "secret"),
        TIMEOUT,
    );
    out.assert_success("SendEnv");
    assert_eq!(out.stdout(), "[C.UTF-8][]\n");
    let asked = server.asked();
    assert!(asked.contains(&"env LANG true".to_owned()), "{asked:?}");
    assert!(
        asked.contains(&"env SEKURA_REFUSED false".to_owned()),
        "{asked:?}"
    );
}

#[test]
fn pty_request_and_shell_reach_the_callbacks() {
    let dir = support::fresh_dir("server-keys");
    let (path, public) = user_key(&dir, KeyType::Ed25519);
    let server = server_for(&[public]);
    use std::io::Write;
    use std::process::Stdio;
    let mut child = ssh(&server)
        .arg("-i")
        .arg(&path)
        .args(["-o", "BatchMode=yes", "-tt", "127.0.0.1"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ssh -tt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"echo from-the-shell; exit 5\n")
        .expect("write");
    let out = child.wait_with_output().expect("ssh -tt");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from-the-shell"));
    let asked = server.asked();
    assert!(
        asked.iter().any(|a| a.starts_with("pty xterm-256color ")),
        "{asked:?}"
    );
    assert!(asked.contains(&"shell".to_owned()), "{asked:?}");
}
