mod support;

use sekura::keys::PrivateKey;
use sekura::proto::ExitStatus;
use std::time::Duration;
use support::Sshd;

#[test]
fn exec_echo_with_ed25519() {
    let sshd = Sshd::start();
    let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
    t.start_client().unwrap();
    let hk = t.remote_server_key().unwrap();
    println!("host key {} {}", hk.key_type(), hk.fingerprint_sha256());
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    let ch = t.open_session().unwrap();
    ch.exec("echo hello; echo err >&2; exit 42").unwrap();
    let mut buf = vec![0u8; 100];
    let n = ch.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello\n");
    let n = ch.recv_stderr(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"err\n");
    assert_eq!(ch.recv_exit_status().unwrap(), ExitStatus::Code(42));
}

#[test]
fn cat_round_trip_64m() {
    let sshd = Sshd::start();
    let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
    t.start_client().unwrap();
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    let total = 64usize << 20;
    let elapsed = support::transfer::cat_round_trip(&t, total, |_| {});
    println!("{} MB/s", total as f64 / 1e6 / elapsed.as_secs_f64());
}

/// sshd with `RekeyLimit 1M` starts a key re-exchange every megabyte; none may lose data.
#[test]
fn server_rekeys_every_megabyte() {
    let sshd = Sshd::start_with(support::SshdOptions {
        extra_config: vec!["RekeyLimit 1M".into()],
        ..Default::default()
    });
    let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
    t.start_client().unwrap();
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    let ch = t.open_session().unwrap();
    ch.exec("f=$(mktemp); head -c 64M /dev/urandom > $f; sha256sum $f >&2; cat $f; rm $f")
        .unwrap();
    let (_, hash) = support::transfer::recv_sha256(&ch, |_| {});
    let mut err = vec![0u8; 200];
    let n = ch.recv_stderr(&mut err).unwrap();
    let theirs = String::from_utf8_lossy(&err[..n]).to_string();
    let ours = support::transfer::hex(&hash);
    assert!(theirs.starts_with(&ours), "{theirs} vs {ours}");
}

/// Every key exchange method this OpenSSH offers, group exchange and post-quantum included.
#[test]
fn every_kex_method_openssh_offers() {
    let sshd = Sshd::start();
    let config = std::process::Command::new("/usr/sbin/sshd")
        .arg("-T")
        .arg("-f")
        .arg(sshd.config())
        .output()
        .unwrap();
    let config = String::from_utf8(config.stdout).unwrap();
    let offered = config
        .lines()
        .find_map(|l| l.strip_prefix("kexalgorithms "))
        .expect("sshd -T lists its kex algorithms")
        .replace(',', "\n");
    let mut failures = vec![];
    for kex in sekura::proto::AlgorithmKind::Kex.supported_names() {
        if !offered.lines().any(|l| l == kex) {
            continue;
        }
        let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(20));
        t.set_preferred(sekura::proto::AlgorithmKind::Kex, kex)
            .unwrap();
        if let Err(e) = t.start_client() {
            failures.push(format!("{kex}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
