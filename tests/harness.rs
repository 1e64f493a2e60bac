//! Tests of the test harness itself (tests/support), against OpenSSH's own client, so that a
//! failure elsewhere can be trusted to be Sekura's.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;
use support::openssh::{run_with_timeout, use_askpass, PASSWORD_ONLY};
use support::relay::{plaintext_packet, Framer, MSG_NEWKEYS};
use support::{Direction, FakePeer, Frame, Relay, Sshd, SshdOptions};

const SSH_TIMEOUT: Duration = Duration::from_secs(30);

/// `ssh -i key -o BatchMode=yes` for this server, with `extra` options before the command.
fn ssh_with_key(sshd: &Sshd, key: &std::path::Path, extra: &[&str], command: &str) -> Command {
    let mut cmd = sshd.ssh_command();
    cmd.arg("-i")
        .arg(key)
        .args(["-o", "BatchMode=yes"])
        .args(extra)
        .arg("127.0.0.1")
        .arg(command);
    cmd
}

#[test]
fn openssh_logs_in_with_each_unencrypted_user_key() {
    let sshd = Sshd::start();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let out = run_with_timeout(
            &mut ssh_with_key(&sshd, &sshd.user_key(kind), &[], "echo ok"),
            SSH_TIMEOUT,
        );
        out.assert_success(&format!("ssh with the {kind} user key"));
        assert_eq!(out.stdout(), "ok\n");
    }
    let log = sshd.wait_for_log("Accepted publickey", Duration::from_secs(10));
    assert!(log.contains(&format!("Accepted publickey for {}", sshd.user)));
}

#[test]
fn unauthorized_key_is_refused() {
    let sshd = Sshd::start();
    let out = run_with_timeout(
        &mut ssh_with_key(&sshd, &sshd.unauthorized_key(), &[], "echo ok"),
        SSH_TIMEOUT,
    );
    assert!(!out.timed_out);
    assert_eq!(out.status().code(), Some(255), "{}", out.stderr());
    assert!(
        out.stderr().contains("Permission denied"),
        "{}",
        out.stderr()
    );
    assert_eq!(out.stdout(), "");
}

#[test]
fn every_host_key_is_served_and_listed_in_known_hosts() {
    let sshd = Sshd::start();
    for (kind, algorithm) in [
        ("ed25519", "ssh-ed25519"),
        ("ecdsa", "ecdsa-sha2-nistp256"),
        ("rsa", "rsa-sha2-512"),
        ("rsa", "rsa-sha2-256"),
    ] {
        let option = format!("HostKeyAlgorithms={algorithm}");
        let out = run_with_timeout(
            &mut ssh_with_key(&sshd, &sshd.user_key("ed25519"), &["-o", &option], "true"),
            SSH_TIMEOUT,
        );
        out.assert_success(&format!("ssh with host key algorithm {algorithm}"));
        let fingerprint = sshd.host_key_fingerprint(kind);
        assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
        assert_eq!(fingerprint.len(), "SHA256:".len() + 43, "{fingerprint}");
    }
}

#[test]
fn a_host_key_not_in_known_hosts_is_refused() {
    let sshd = Sshd::start();
    // known_hosts naming the right host with a key the server does not have.
    let other = std::fs::read_to_string(format!("{}.pub", sshd.unauthorized_key().display()))
        .expect("read unauthorized public key");
    let blob = other.split_whitespace().nth(1).expect("key blob");
    let wrong = sshd.dir.join("wrong_known_hosts");
    let line = format!("{} ssh-ed25519 {blob}\n", sshd.host_key_alias());
    std::fs::write(&wrong, line).expect("write known_hosts");
    let mut cmd = support::ssh_command(sshd.port, &sshd.user, &wrong);
    cmd.arg("-i")
        .arg(sshd.user_key("ed25519"))
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=INFO"])
        .args(["-o", "HostKeyAlgorithms=ssh-ed25519", "127.0.0.1", "true"]);
    let out = run_with_timeout(&mut cmd, SSH_TIMEOUT);
    assert_eq!(out.status().code(), Some(255), "{}", out.stderr());
    assert!(
        out.stderr().contains("Host key verification failed"),
        "{}",
        out.stderr()
    );
}

#[test]
fn encrypted_user_key_opens_only_with_its_passphrase() {
    let sshd = Sshd::start();
    let key = sshd.user_key("ed25519-enc");
    let public = std::fs::read_to_string(sshd.user_key_pub("ed25519-enc")).expect("read pub");
    let derive = |passphrase: &str| {
        Command::new(support::sshd::SSH_KEYGEN)
            .args(["-y", "-P", passphrase, "-f"])
            .arg(&key)
            .output()
            .expect("run ssh-keygen -y")
    };
    let good = derive(support::ENCRYPTED_KEY_PASSPHRASE);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let derived = String::from_utf8_lossy(&good.stdout).into_owned();
    let first_two = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(first_two(&derived), first_two(&public));
    assert!(!derive("wrong").status.success());
    assert!(!derive("").status.success());
    let authorized = std::fs::read_to_string(sshd.authorized_keys()).expect("authorized_keys");
    assert!(authorized.contains(&first_two(&public)));
    assert_eq!(authorized.lines().count(), 4);
}

#[test]
fn password_user_logs_in_with_the_password_only() {
    let password = "correct horse 'battery' $staple";
    let sshd = Sshd::start_with(SshdOptions {
        password: Some(password.to_owned()),
        ..SshdOptions::default()
    });
    let (user, pw) = sshd.password_user();
    assert_eq!(user, support::PASSWORD_USER);

    let login = |pw: &str| {
        let mut cmd = support::ssh_command(sshd.port, &user, &sshd.known_hosts());
        cmd.args(PASSWORD_ONLY).args(["127.0.0.1", "id -un; pwd"]);
        use_askpass(&mut cmd, &sshd.dir, pw);
        run_with_timeout(&mut cmd, SSH_TIMEOUT)
    };
    let out = login(&pw);
    out.assert_success("ssh with the password");
    let home = sshd.dir.join("home");
    assert_eq!(out.stdout(), format!("{user}\n{}\n", home.display()));
    sshd.wait_for_log(
        &format!("Accepted password for {user}"),
        Duration::from_secs(10),
    );

    let out = login("not the password");
    assert_eq!(out.status().code(), Some(255), "{}", out.stderr());
    assert!(
        out.stderr().contains("Permission denied"),
        "{}",
        out.stderr()
    );

    // The account's keys are the shared authorized_keys.
    let mut cmd = support::ssh_command(sshd.port, &user, &sshd.known_hosts());
    cmd.arg("-i")
        .arg(sshd.user_key("ecdsa"))
        .args(["-o", "BatchMode=yes", "127.0.0.1", "id -un"]);
    let out = run_with_timeout(&mut cmd, SSH_TIMEOUT);
    out.assert_success("ssh as the password user with a key");
    assert_eq!(out.stdout(), format!("{user}\n"));

    // The account exists only inside that sshd's mount namespace.
    let system = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    assert!(!system.contains(&format!("{user}:x:")));
}

#[test]
fn extra_config_overrides_the_defaults() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec![
            "KexAlgorithms curve25519-sha256".to_owned(),
            "Match User nobody".to_owned(),
            "    PasswordAuthentication no".to_owned(),
        ],
        ..SshdOptions::default()
    });
    let key = sshd.user_key("ed25519");
    let out = run_with_timeout(
        &mut ssh_with_key(
            &sshd,
            &key,
            &["-o", "KexAlgorithms=curve25519-sha256"],
            "true",
        ),
        SSH_TIMEOUT,
    );
    out.assert_success("ssh with the one kex left");
    let out = run_with_timeout(
        &mut ssh_with_key(
            &sshd,
            &key,
            &[
                "-o",
                "KexAlgorithms=ecdh-sha2-nistp256",
                "-o",
                "LogLevel=INFO",
            ],
            "true",
        ),
        SSH_TIMEOUT,
    );
    assert_eq!(out.status().code(), Some(255));
    assert!(
        out.stderr().contains("no matching key exchange method"),
        "{}",
        out.stderr()
    );
}

/// Each algorithm the server's configuration lists is one OpenSSH negotiates with it.
#[test]
fn every_configured_algorithm_negotiates() {
    let sshd = Sshd::start();
    let config = std::fs::read_to_string(sshd.config()).expect("read sshd_config");
    let list = |keyword: &str| -> Vec<String> {
        let line = config
            .lines()
            .find(|l| l.starts_with(&format!("{keyword} ")))
            .unwrap_or_else(|| panic!("no {keyword} in sshd_config"));
        line[keyword.len() + 1..]
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    let kex = list("KexAlgorithms");
    assert!(kex.contains(&"curve25519-sha256".to_owned()));
    assert!(kex.contains(&"diffie-hellman-group14-sha256".to_owned()));
    let mut cases = Vec::new();
    for k in &kex {
        cases.push(vec![format!("KexAlgorithms={k}")]);
    }
    for c in list("Ciphers") {
        cases.push(vec![format!("Ciphers={c}")]);
    }
    for m in list("MACs") {
        // A MAC is used only with a cipher that is not AEAD.
        cases.push(vec![format!("MACs={m}"), "Ciphers=aes128-ctr".to_owned()]);
    }
    let key = sshd.user_key("ed25519");
    for case in cases {
        let mut extra = Vec::new();
        for option in &case {
            extra.push("-o");
            extra.push(option.as_str());
        }
        let out = run_with_timeout(
            &mut ssh_with_key(&sshd, &key, &extra, "echo ok"),
            SSH_TIMEOUT,
        );
        out.assert_success(&format!("ssh with {case:?}"));
        assert_eq!(out.stdout(), "ok\n");
    }
}

#[test]
fn fake_peer_runs_its_script_and_returns_its_result() {
    let peer = FakePeer::start(|mut stream| {
        stream.write_all(b"SSH-2.0-FakePeer\r\n").unwrap();
        support::peer::read_until(&mut stream, b"\r\n").expect("a line from the client")
    });
    let mut client = peer.connect();
    client.write_all(b"SSH-2.0-Client\r\n").unwrap();
    let mut banner = [0u8; 18];
    client.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0-FakePeer\r\n");
    assert_eq!(peer.join(), b"SSH-2.0-Client\r\n");
}

#[test]
fn openssh_gives_up_on_a_garbage_peer() {
    let peer = FakePeer::start_for_program(|mut stream| {
        let _ = stream.write_all(b"SSH-2.0-evil\r\n\xff\xff\xff\xff\x00\x00\x00\x00");
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let known_hosts = std::env::temp_dir().join("sekura-harness-no-such-known-hosts");
    let mut cmd = support::ssh_command(peer.port, "nobody", &known_hosts);
    cmd.args(["-o", "BatchMode=yes", "127.0.0.1", "true"]);
    let out = run_with_timeout(&mut cmd, SSH_TIMEOUT);
    assert!(!out.timed_out);
    assert_eq!(out.status().code(), Some(255));
    peer.join();
}

#[test]
fn framer_splits_lines_packets_and_opaque_bytes() {
    let ignore = plaintext_packet(&[2, 0, 0, 0, 1, b'x']);
    assert_eq!(ignore.len() % 8, 0);
    let newkeys = plaintext_packet(&[MSG_NEWKEYS]);
    let mut stream = b"banner\r\nSSH-2.0-x\r\n".to_vec();
    stream.extend_from_slice(&ignore);
    stream.extend_from_slice(&newkeys);
    stream.extend_from_slice(b"\x00\x00\x00\x10encrypted");
    // Fed one byte at a time, it frames the same.
    let mut framer = Framer::new();
    let mut frames = Vec::new();
    for byte in &stream {
        frames.extend(framer.push(std::slice::from_ref(byte)));
    }
    frames.extend(framer.finish());
    let opaque: Vec<u8> = frames[4..]
        .iter()
        .flat_map(|f| f.bytes().to_vec())
        .collect();
    assert_eq!(frames[0], Frame::Line(b"banner\r\n".to_vec()));
    assert_eq!(frames[1], Frame::Line(b"SSH-2.0-x\r\n".to_vec()));
    assert_eq!(frames[2].msg_type(), Some(2));
    assert_eq!(frames[2].payload(), Some(&[2, 0, 0, 0, 1, b'x'][..]));
    assert_eq!(frames[3].msg_type(), Some(MSG_NEWKEYS));
    assert_eq!(opaque, b"\x00\x00\x00\x10encrypted");
    assert!(frames[4..].iter().all(|f| matches!(f, Frame::Opaque(_))));
}

/// `ssh` to the server through a relay, with the host key alias of the server.
fn ssh_through(relay: &Relay, sshd: &Sshd) -> support::openssh::TimedOutput {
    let mut cmd = support::ssh_command(relay.port, &sshd.user, &sshd.known_hosts());
    let alias = format!("HostKeyAlias={}", sshd.host_key_alias());
    cmd.arg("-i")
        .arg(sshd.user_key("ed25519"))
        .args(["-o", "BatchMode=yes", "-o", &alias, "-o", "LogLevel=INFO"])
        .args(["127.0.0.1", "echo ok"]);
    run_with_timeout(&mut cmd, SSH_TIMEOUT)
}

#[test]
fn relays_pass_traffic_through_unchanged() {
    let sshd = Sshd::start();
    let relay = Relay::start(sshd.port);
    let out = ssh_through(&relay, &sshd);
    out.assert_success("ssh through a transparent relay");
    assert_eq!(out.stdout(), "ok\n");

    let bytes = std::sync::Arc::new(std::sync::Mutex::new([0usize; 2]));
    let counted = bytes.clone();
    let relay = Relay::with_hook(sshd.port, move |direction, chunk| {
        counted.lock().unwrap()[direction as usize] += chunk.len();
    });
    ssh_through(&relay, &sshd).assert_success("ssh through a raw hook");
    assert_eq!(relay.connections(), 1);
    let bytes = *bytes.lock().unwrap();
    assert!(bytes[0] > 1000 && bytes[1] > 1000, "{bytes:?}");

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let relay = Relay::with_frames(sshd.port, move |direction, frame| {
        if let Some(t) = frame.msg_type() {
            log.lock().unwrap().push((direction, t));
        }
        vec![frame]
    });
    ssh_through(&relay, &sshd).assert_success("ssh through a frame hook");
    let seen = seen.lock().unwrap().clone();
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        let types: Vec<u8> = seen
            .iter()
            .filter(|(d, _)| *d == direction)
            .map(|(_, t)| *t)
            .collect();
        // KEXINIT, a kex message, ..., NEWKEYS last: nothing is framed after NEWKEYS.
        assert_eq!(types.first(), Some(&20), "{direction:?}: {types:?}");
        assert_eq!(types.last(), Some(&MSG_NEWKEYS), "{direction:?}: {types:?}");
    }
}

/// Terrapin's first step, an IGNORE inserted before NEWKEYS, is refused by OpenSSH's strict
/// key exchange: the relay can do what the security tests need.
#[test]
fn openssh_detects_a_packet_inserted_by_the_relay() {
    let sshd = Sshd::start();
    let relay = Relay::with_frames(sshd.port, |direction, frame| {
        if direction == Direction::ServerToClient && frame.msg_type() == Some(MSG_NEWKEYS) {
            vec![Frame::Packet(plaintext_packet(&[2, 0, 0, 0, 0])), frame]
        } else {
            vec![frame]
        }
    });
    let out = ssh_through(&relay, &sshd);
    assert!(!out.timed_out);
    assert_eq!(out.status().code(), Some(255), "{}", out.stderr());
    assert!(out.stderr().contains("strict KEX"), "{}", out.stderr());
    assert_eq!(out.stdout(), "");
}
