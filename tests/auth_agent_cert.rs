//! Authentication with an ssh-agent's keys and with an OpenSSH user certificate, against a
//! real sshd.

mod support;

use std::process::Command;
use std::time::Duration;

use sekura::agent::Agent;
use sekura::keys::{Certificate, PrivateKey};
use sekura::transport::Transport;
use sekura::ErrorKind;
use support::agent::SshAgent;
use support::{Sshd, SshdOptions};

fn connect(sshd: &Sshd) -> Transport {
    let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
    t.start_client().unwrap();
    t
}

#[test]
fn agent_keys_authenticate_after_an_unauthorized_one() {
    let sshd = Sshd::start();
    let dir = support::fresh_dir("agent-auth");
    let agent_process = SshAgent::start(&dir);
    agent_process.add(&sshd.unauthorized_key());
    agent_process.add(&sshd.user_key("rsa"));
    let agent = Agent::connect_path(&agent_process.socket).unwrap();
    let t = connect(&sshd);
    t.auth_agent(&sshd.user, &agent).unwrap();
    assert!(t.is_authenticated());
    sshd.wait_for_log("Accepted publickey", Duration::from_secs(5));
}

#[test]
fn agent_without_authorized_keys_is_denied() {
    let sshd = Sshd::start();
    let dir = support::fresh_dir("agent-deny");
    let agent_process = SshAgent::start(&dir);
    agent_process.add(&sshd.unauthorized_key());
    let agent = Agent::connect_path(&agent_process.socket).unwrap();
    let t = connect(&sshd);
    let e = t.auth_agent(&sshd.user, &agent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthDenied, "{e}");
}

#[test]
fn user_certificate_authenticates() {
    let dir = support::fresh_dir("cert-auth");
    let ca = dir.join("ca");
    let keygen = |args: &[&str]| {
        let status = Command::new("ssh-keygen").args(args).status().unwrap();
        assert!(status.success(), "ssh-keygen {args:?}");
    };
    keygen(&["-q", "-t", "ed25519", "-N", "", "-f", ca.to_str().unwrap()]);
    let user_key = dir.join("id_cert");
    keygen(&[
        "-q",
        "-t",
        "ecdsa",
        "-N",
        "",
        "-f",
        user_key.to_str().unwrap(),
    ]);
    let user = support::current_user();
    let pubkey = format!("{}.pub", user_key.display());
    keygen(&[
        "-q",
        "-s",
        ca.to_str().unwrap(),
        "-I",
        "sekura-test",
        "-n",
        &user,
        "-V",
        "+1h",
        &pubkey,
    ]);
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec![format!("TrustedUserCAKeys {}.pub", ca.display())],
        ..Default::default()
    });
    let key = PrivateKey::from_file(&user_key, None).unwrap();
    let cert = Certificate::from_file(&dir.join("id_cert-cert.pub")).unwrap();
    let t = connect(&sshd);
    t.auth_publickey_certificate(&sshd.user, &key, &cert)
        .unwrap();
    assert!(t.is_authenticated());
    sshd.wait_for_log(
        "Accepted certificate ID \"sekura-test\"",
        Duration::from_secs(5),
    );

    let other = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    let e = connect(&sshd)
        .auth_publickey_certificate(&sshd.user, &other, &cert)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
}
