//! Channels opened by the other side, against OpenSSH: our client asks sshd to forward a
//! port and takes each connection to it as a channel; our server opens a forwarded-tcpip
//! channel that OpenSSH's `ssh -R` connects to its local destination.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use sekura::keys::{PrivateKey, PublicKey};
use sekura::transport::{AuthResult, Channel, ServerHandler, Transport};
use sekura::ErrorKind;
use support::client::login;
use support::program::{self, keygen, write_known_hosts};
use support::Sshd;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Reads `ch` until EOF.
fn read_channel(ch: &Channel) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match ch.recv(&mut buf).expect("channel read") {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn our_client_takes_the_connections_sshd_forwards_to_it() {
    let sshd = Sshd::start();
    let t = login(&sshd);
    let port = t
        .request_port_forward("127.0.0.1", 0)
        .expect("tcpip-forward");
    assert!(port > 0, "sshd chose port {port}");
    let port = u16::try_from(port).expect("a TCP port");

    for round in 0..3 {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forward");
        tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        tcp.write_all(format!("ping {round}").as_bytes())
            .expect("write");
        tcp.shutdown(Shutdown::Write).expect("shutdown");
        let ch = t.accept(Some(TIMEOUT)).expect("the forwarded channel");
        ch.set_timeout(Some(TIMEOUT));
        assert_eq!(read_channel(&ch), format!("ping {round}").as_bytes());
        ch.sendall(format!("pong {round}").as_bytes())
            .expect("send");
        ch.send_eof().expect("eof");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).expect("read the answer");
        assert_eq!(answer, format!("pong {round}"));
    }

    t.cancel_port_forward("127.0.0.1", u32::from(port))
        .expect("cancel-tcpip-forward");
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "sshd still listens after the cancel"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A port we never asked for cannot be cancelled.
    let refused = t.cancel_port_forward("127.0.0.1", 9).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Refused, "{refused}");
}

/// A server that lets one key in and accepts remote forwards, telling the test about each.
struct ForwardingServer {
    user_key: PublicKey,
    forwards: mpsc::Sender<(String, u32)>,
}

impl ServerHandler for ForwardingServer {
    fn allowed_auths(&self, _user: &str) -> String {
        "publickey".to_owned()
    }

    fn check_auth_publickey(&self, _user: &str, key: &PublicKey, _verified: bool) -> AuthResult {
        if *key == self.user_key {
            AuthResult::Success
        } else {
            AuthResult::Failed
        }
    }

    fn check_port_forward_request(&self, address: &str, port: u32) -> Option<u32> {
        let _ = self.forwards.send((address.to_owned(), port));
        Some(port)
    }
}

/// Echoes one connection's bytes back until its EOF.
fn echo_once(listener: TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the echo connection");
        let mut data = Vec::new();
        stream.read_to_end(&mut data).expect("read");
        stream.write_all(&data).expect("echo");
    })
}

fn load(path: &Path) -> PrivateKey {
    PrivateKey::from_file(path, None).expect("load a key made by ssh-keygen")
}

#[test]
fn openssh_ssh_r_connects_the_channel_our_server_opens() {
    let dir = support::fresh_dir("forwarded-tcpip");
    keygen(&dir.join("host_key"));
    keygen(&dir.join("user_key"));
    let echo = TcpListener::bind("127.0.0.1:0").expect("echo listener");
    let echo_port = echo.local_addr().expect("addr").port();
    let echoed = echo_once(echo);

    let listener = TcpListener::bind("127.0.0.1:0").expect("server listener");
    let port = listener.local_addr().expect("addr").port();
    write_known_hosts(&dir, port);
    let (forwards, forward_requests) = mpsc::channel();
    let handler = Arc::new(ForwardingServer {
        user_key: load(&dir.join("user_key")).public_key(),
        forwards,
    });
    let host_key = load(&dir.join("host_key"));
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept ssh");
        // Threads: the server takes ssh's forward request while the test makes no call.
        let t = Transport::new(socket);
        t.add_server_key(host_key).expect("host key");
        t.start_server(handler).expect("server handshake");
        t
    });

    let mut ssh = program::ssh_key(port, "someone", &dir);
    ssh.args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
        .arg(format!("127.0.0.1:7:127.0.0.1:{echo_port}"));
    let mut ssh = ssh.spawn().expect("spawn ssh -R");

    let t = server.join().expect("server thread");
    let (address, forwarded) = forward_requests
        .recv_timeout(TIMEOUT)
        .expect("ssh asked for the forward");
    assert_eq!((address.as_str(), forwarded), ("127.0.0.1", 7));

    let ch = t
        .open_forwarded_tcpip(("127.0.0.1", 7), ("127.0.0.1", 40000))
        .expect("ssh accepted the forwarded-tcpip channel");
    ch.set_timeout(Some(TIMEOUT));
    ch.sendall(b"hello over -R").expect("send");
    ch.send_eof().expect("eof");
    assert_eq!(read_channel(&ch), b"hello over -R");
    echoed.join().expect("echo thread");

    // A forward the client never asked for is refused by ssh.
    match t.open_forwarded_tcpip(("127.0.0.1", 8), ("127.0.0.1", 40001)) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Refused, "{e}"),
        Ok(_) => panic!("ssh accepted a channel for a forward it never requested"),
    }

    let _ = ssh.kill();
    let _ = ssh.wait();
}
