mod support;

use sekura::keys::PrivateKey;
use sekura::proto::ExitStatus;
use sekura::transport::Transport;
use std::time::Duration;
use support::Sshd;

#[test]
fn exec_echo_with_ed25519() {
    let sshd = Sshd::start();
    let t = Transport::connect("127.0.0.1", sshd.port, Some(Duration::from_secs(10))).unwrap();
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
