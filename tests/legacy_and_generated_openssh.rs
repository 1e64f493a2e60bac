//! Against a real OpenSSH sshd: every legacy cipher, MAC and host key algorithm it can still
//! be configured to speak, and every key type Sekura generates (written to a file with a
//! passphrase and read back) as a user key.

mod support;

use std::time::Duration;

use sekura::keys::PrivateKey;
use sekura::proto::AlgorithmKind;
use sekura::transport::Transport;
use support::{Sshd, SshdOptions};

fn openssh_supports(query: &str) -> Vec<String> {
    let out = std::process::Command::new("ssh")
        .args(["-Q", query])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Ours ∩ what this OpenSSH implements, for `kind`.
fn shared(kind: AlgorithmKind, query: &str) -> Vec<&'static str> {
    let theirs = openssh_supports(query);
    kind.supported_names()
        .into_iter()
        .filter(|n| theirs.iter().any(|t| t == n))
        .collect()
}

fn run_echo(t: &Transport, sshd: &Sshd, key: &PrivateKey, what: &str) -> Result<(), String> {
    t.start_client().map_err(|e| format!("{what}: kex: {e}"))?;
    t.auth_publickey(&sshd.user, key)
        .map_err(|e| format!("{what}: auth: {e}"))?;
    let ch = t.open_session().map_err(|e| format!("{what}: {e}"))?;
    ch.exec("echo ok").map_err(|e| format!("{what}: {e}"))?;
    let mut buf = [0u8; 8];
    let n = ch.recv(&mut buf).map_err(|e| format!("{what}: {e}"))?;
    if &buf[..n] != b"ok\n" {
        return Err(format!("{what}: got {:?}", &buf[..n]));
    }
    Ok(())
}

#[test]
fn every_cipher_and_mac_openssh_can_speak() {
    let ciphers = shared(AlgorithmKind::Cipher, "cipher");
    let macs = shared(AlgorithmKind::Mac, "mac");
    assert!(ciphers.contains(&"aes128-cbc") && macs.contains(&"hmac-sha1"));
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec![
            format!("Ciphers {}", ciphers.join(",")),
            format!("MACs {}", macs.join(",")),
            "MaxStartups 100".into(),
        ],
        ..Default::default()
    });
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    let mut failures = vec![];
    for cipher in &ciphers {
        let aead = sekura::crypto::cipher::find(cipher).unwrap().aead;
        let mac_list: Vec<&str> = if aead { vec![macs[0]] } else { macs.clone() };
        for mac in mac_list {
            let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
            t.set_preferred(AlgorithmKind::Cipher, cipher).unwrap();
            t.set_preferred(AlgorithmKind::Mac, mac).unwrap();
            if let Err(e) = run_echo(&t, &sshd, &key, &format!("{cipher} + {mac}")) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn legacy_ssh_rsa_host_key_signature() {
    let sshd = Sshd::start();
    let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
    t.set_preferred(AlgorithmKind::HostKey, "ssh-rsa").unwrap();
    t.start_client().unwrap();
    let key = t.remote_server_key().unwrap();
    assert_eq!(key.key_type(), "ssh-rsa");
    assert_eq!(key.fingerprint_sha256(), sshd.host_key_fingerprint("rsa"));
}

#[test]
fn every_generated_key_type_authenticates() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec![
            "PubkeyAcceptedAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
             ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-dss"
                .into(),
        ],
        ..Default::default()
    });
    let dir = support::fresh_dir("generated-keys");
    let mut failures = vec![];
    for (key_type, key) in support::client::generated_user_keys(&dir) {
        support::client::authorize(&sshd.authorized_keys(), &key.public_key());
        let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
        if let Err(e) = run_echo(&t, &sshd, &key, key_type.name()) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
