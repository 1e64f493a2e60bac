//! Sekura's client against hostile peers: scripted fake servers (garbage, wrong versions,
//! stalls, hostile lengths, invalid key exchange values), a man in the middle in front of a
//! real OpenSSH `sshd` (a swapped host key, flipped ciphertext bits, Terrapin-style inserted
//! and dropped packets), and the sans-IO protocol core fed every message number directly.
//! Each case must end in a specific error within the timeout: no panic, no hang.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sekura::crypto::rng::OsRandom;
use sekura::keys::PrivateKey;
use sekura::proto::{AlgorithmKind, AuthStatus, Connection, ConnectionConfig};
use sekura::transport::{ByteStream, Transport};
use sekura::{Error, ErrorKind};
use support::relay::plaintext_packet;
use support::{Direction, FakePeer, Frame, Relay, Sshd};

/// What the connection queued to send, moved out through `poll_transmit`.
fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _count = conn.poll_transmit(&mut bytes);
    bytes
}

/// The client's timeout in every test here.
const TIMEOUT: Duration = Duration::from_secs(5);

// ----- helpers -----

/// What the client got: the first error of connect + key exchange (+ more, see `login`), and
/// how long it took.
struct Outcome {
    error: Option<Error>,
    elapsed: Duration,
}

impl Outcome {
    /// The error, asserting its kind and that its message contains each of `words`
    /// (case-insensitively).
    fn expect(&self, what: &str, kind: ErrorKind, words: &[&str]) -> &Error {
        let e = self
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: the client succeeded; expected {kind:?}"));
        assert_eq!(
            e.kind(),
            kind,
            "{what}: error kind {:?} ({:?}) after {:.1?}; expected {kind:?}",
            e.kind(),
            e.message(),
            self.elapsed
        );
        let message = e.message().to_lowercase();
        for word in words {
            assert!(
                message.contains(&word.to_lowercase()),
                "{what}: the message {:?} does not mention {word:?}",
                e.message()
            );
        }
        e
    }

    /// As [`Outcome::expect`], and the error came before the client's timeout could fire.
    fn expect_quick(&self, what: &str, kind: ErrorKind, words: &[&str]) -> &Error {
        let e = self.expect(what, kind, words);
        assert!(
            self.elapsed < TIMEOUT,
            "{what}: took {:.1?}, the client timeout is {TIMEOUT:?}",
            self.elapsed
        );
        e
    }
}

/// Connects to `peer` on the suite's driver with [`TIMEOUT`], applies `configure`, and runs
/// the key exchange.
fn handshake(peer: &FakePeer, configure: impl FnOnce(&Transport)) -> Outcome {
    let started = Instant::now();
    let t = support::driven::transport(ByteStream::tcp(peer.connect()), TIMEOUT);
    configure(&t);
    let error = t.start_client().err();
    Outcome {
        error,
        elapsed: started.elapsed(),
    }
}

/// Connects to `port` (a relay in front of `sshd`), runs the key exchange, logs in with the
/// ed25519 user key and runs a command, stopping at the first error.
fn login(sshd: &Sshd, port: u16, configure: impl FnOnce(&Transport)) -> Outcome {
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).expect("user key");
    let started = Instant::now();
    let error = (|| {
        let t = support::driven::connect_on_driver(port, TIMEOUT);
        configure(&t);
        t.start_client()?;
        t.auth_publickey(&sshd.user, &key)?;
        let ch = t.open_session()?;
        ch.set_timeout(Some(TIMEOUT));
        ch.exec("echo through-the-relay")?;
        let mut buf = [0u8; 64];
        while ch.recv(&mut buf)? > 0 {}
        ch.recv_exit_status().map(|_| ())
    })()
    .err();
    Outcome {
        error,
        elapsed: started.elapsed(),
    }
}

/// A fake server that writes `bytes` and then keeps the connection open, reading (and
/// discarding) what the client sends until the client goes away.
fn peer_writing(bytes: Vec<u8>) -> FakePeer {
    FakePeer::start(move |mut stream| {
        let _ = stream.write_all(&bytes);
        drain(&mut stream);
    })
}

/// Reads until EOF, an error or the stream's read timeout.
fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

/// SSH wire encoding, written here rather than taken from the crate under test.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A server KEXINIT payload offering exactly these lists.
fn kexinit(kex: &str, host_key: &str, cipher: &str, mac: &str, compression: &str) -> Vec<u8> {
    let mut p = vec![20u8];
    p.extend_from_slice(&[0x5a; 16]);
    for list in [
        kex,
        host_key,
        cipher,
        cipher,
        mac,
        mac,
        compression,
        compression,
        "",
        "",
    ] {
        string(&mut p, list.as_bytes());
    }
    p.push(0); // first_kex_packet_follows
    p.extend_from_slice(&[0; 4]);
    p
}

/// A normal server KEXINIT with strict kex for `kex`.
fn strict_kexinit(kex: &str) -> Vec<u8> {
    kexinit(
        &format!("{kex},kex-strict-s-v00@openssh.com"),
        "ssh-ed25519",
        "aes128-ctr",
        "hmac-sha2-256",
        "none",
    )
}

/// The RFC 8032 test 1 Ed25519 public key as an SSH blob: a valid key of nobody here.
fn some_ed25519_blob() -> Vec<u8> {
    let key = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];
    let mut blob = Vec::new();
    string(&mut blob, b"ssh-ed25519");
    string(&mut blob, &key);
    blob
}

/// A KEX_ECDH_REPLY (or KEXDH_REPLY) with `server_public` as Q_S (or f, an mpint, which is
/// encoded like a string), a valid host key and a signature of the right shape but no value.
fn kex_reply(server_public: &[u8]) -> Vec<u8> {
    let mut p = vec![31u8];
    string(&mut p, &some_ed25519_blob());
    string(&mut p, server_public);
    let mut sig = Vec::new();
    string(&mut sig, b"ssh-ed25519");
    string(&mut sig, &[0x11; 64]);
    string(&mut p, &sig);
    p
}

const VERSION: &[u8] = b"SSH-2.0-EvilPeer_1.0\r\n";

/// A deterministic pseudo-random byte source (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }
}

// ----- version exchange -----

/// Random bytes, no identification line (a peer speaking another protocol).
///
/// FAILS AT PRESENT: a bug in src/proto/version.rs, not in the test. `VersionReader::parse`
/// accepts any bytes in lines before the identification, so 4 KiB of binary garbage (about
/// 16 short "lines", under the 1024-line and 8192-byte limits) leaves the client waiting for
/// more until its timeout: ErrorKind::Timeout "timed out waiting for the key exchange"
/// instead of a version exchange error. OpenSSH (kex.c, kex_exchange_identification) fails
/// at once on a NUL byte, or a CR not followed by LF, in any banner line: "banner line
/// contains invalid characters".
#[test]
fn garbage_instead_of_a_version_line() {
    let garbage = XorShift(0x6a72_6261_6765_0001).bytes(4096);
    assert!(!garbage.windows(4).any(|w| w == b"SSH-"));
    assert!(garbage.contains(&0), "the garbage should contain NUL bytes");
    let peer = peer_writing(garbage);
    handshake(&peer, |_| {}).expect_quick(
        "garbage peer",
        ErrorKind::Protocol,
        &["version exchange"],
    );
}

/// A lot of garbage: enough that the pre-identification line limits must trip.
#[test]
fn a_megabyte_of_garbage_instead_of_a_version_line() {
    let mut garbage = XorShift(0x6a72_6261_6765_0002).bytes(1 << 20);
    for w in 0..garbage.len() - 3 {
        if &garbage[w..w + 4] == b"SSH-" {
            garbage[w] = b'X';
        }
    }
    let peer = peer_writing(garbage);
    handshake(&peer, |_| {}).expect_quick(
        "megabyte garbage peer",
        ErrorKind::Protocol,
        &["version exchange"],
    );
}

#[test]
fn ssh1_version_is_refused() {
    let peer = peer_writing(b"SSH-1.5-old\r\n".to_vec());
    handshake(&peer, |_| {}).expect_quick(
        "SSH-1.5 peer",
        ErrorKind::Protocol,
        &["version exchange", "SSH-2"],
    );
}

#[test]
fn too_many_lines_before_the_version() {
    let mut bytes = Vec::new();
    for i in 0..2000 {
        bytes.extend_from_slice(format!("hello line {i}\r\n").as_bytes());
    }
    bytes.extend_from_slice(VERSION);
    let peer = peer_writing(bytes);
    handshake(&peer, |_| {}).expect_quick(
        "2000 lines before the version",
        ErrorKind::Protocol,
        &["too many lines"],
    );
}

#[test]
fn a_few_lines_before_the_version_are_tolerated() {
    // The peer stops after its version line: reaching the key exchange timeout (not a
    // version error) shows that the lines were accepted.
    let peer = peer_writing(b"Welcome\r\nto the server\n\r\nSSH-2.0-Banner_1\r\n".to_vec());
    let outcome = handshake(&peer, |_| {});
    outcome.expect("lines before the version", ErrorKind::Timeout, &[]);
}

#[test]
fn overlong_lines_are_refused() {
    let mut version = b"SSH-2.0-".to_vec();
    version.extend(std::iter::repeat_n(b'a', 300));
    version.extend_from_slice(b"\r\n");
    let peer = peer_writing(version);
    handshake(&peer, |_| {}).expect_quick(
        "300-byte version line",
        ErrorKind::Protocol,
        &["version exchange", "long"],
    );
    // A pre-identification line with no end.
    let peer = peer_writing(vec![b'x'; 64 * 1024]);
    handshake(&peer, |_| {}).expect_quick(
        "endless line before the version",
        ErrorKind::Protocol,
        &["version exchange", "long"],
    );
}

// ----- stalls and closes -----

/// A version line, then silence with the socket open: the client's timeout ends it.
#[test]
fn peer_stops_after_its_version_line() {
    let peer = peer_writing(VERSION.to_vec());
    let outcome = handshake(&peer, |_| {});
    outcome.expect("silent peer", ErrorKind::Timeout, &["key exchange"]);
    assert!(
        outcome.elapsed >= TIMEOUT - Duration::from_millis(100) && outcome.elapsed < TIMEOUT * 2,
        "timed out after {:.1?} with a timeout of {TIMEOUT:?}",
        outcome.elapsed
    );
}

/// A version line and a KEXINIT, then silence: stopped mid-handshake.
#[test]
fn peer_stops_after_its_kexinit() {
    let mut bytes = VERSION.to_vec();
    bytes.extend(plaintext_packet(&strict_kexinit("curve25519-sha256")));
    let peer = peer_writing(bytes);
    let outcome = handshake(&peer, |_| {});
    outcome.expect("peer silent after KEXINIT", ErrorKind::Timeout, &[]);
    assert!(outcome.elapsed < TIMEOUT * 2, "{:.1?}", outcome.elapsed);
}

/// A version line, then the connection closes.
#[test]
fn peer_closes_after_its_version_line() {
    let peer = FakePeer::start(|mut stream| {
        stream.write_all(VERSION).unwrap();
        // Wait for the client's version line so that the close is not a reset.
        support::peer::read_until(&mut stream, b"\r\n");
    });
    let outcome = handshake(&peer, |_| {});
    let e = outcome.error.as_ref().expect("the client succeeded");
    assert!(
        matches!(e.kind(), ErrorKind::Closed | ErrorKind::Eof),
        "closed peer: {:?}: {e}",
        e.kind()
    );
    assert!(
        e.message().contains("closed"),
        "closed peer: unspecific message {:?}",
        e.message()
    );
    assert!(outcome.elapsed < TIMEOUT, "{:.1?}", outcome.elapsed);
}

// ----- hostile packets -----

#[test]
fn packet_length_0xffffffff_is_refused() {
    let mut bytes = VERSION.to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    let peer = peer_writing(bytes);
    handshake(&peer, |_| {}).expect_quick(
        "packet length 0xFFFFFFFF",
        ErrorKind::Protocol,
        &["packet length", "4294967295", "limit"],
    );
}

#[test]
fn packet_length_just_over_the_limit_is_refused() {
    let mut bytes = VERSION.to_vec();
    bytes.extend_from_slice(&(256 * 1024 + 8u32).to_be_bytes());
    bytes.extend_from_slice(&[4, 0, 0, 0]);
    let peer = peer_writing(bytes);
    handshake(&peer, |_| {}).expect_quick(
        "packet length 256 KiB + 8",
        ErrorKind::Protocol,
        &["packet length", "limit"],
    );
}

#[test]
fn no_common_algorithm_is_named() {
    for (kexinit, kind) in [
        (
            kexinit(
                "diffie-hellman-group1-sha1",
                "ssh-ed25519",
                "aes128-ctr",
                "hmac-sha2-256",
                "none",
            ),
            "key exchange",
        ),
        (
            kexinit(
                "curve25519-sha256",
                "ssh-dss",
                "aes128-ctr",
                "hmac-sha2-256",
                "none",
            ),
            "host key",
        ),
        (
            kexinit(
                "curve25519-sha256",
                "ssh-ed25519",
                "3des-cbc",
                "hmac-sha2-256",
                "none",
            ),
            "cipher",
        ),
        (
            kexinit(
                "curve25519-sha256",
                "ssh-ed25519",
                "aes128-ctr",
                "hmac-md5",
                "none",
            ),
            "MAC",
        ),
        (
            kexinit(
                "curve25519-sha256",
                "ssh-ed25519",
                "aes128-ctr",
                "hmac-sha2-256",
                "zlib",
            ),
            "compression",
        ),
    ] {
        let mut bytes = VERSION.to_vec();
        bytes.extend(plaintext_packet(&kexinit));
        let peer = peer_writing(bytes);
        handshake(&peer, |_| {}).expect_quick(
            &format!("no common {kind}"),
            ErrorKind::Protocol,
            &["no matching", kind],
        );
    }
}

/// Server key exchange values that would make the shared secret predictable are refused
/// before the signature is looked at (the signature here is garbage, so skipping the check
/// would show as HostKeyRejected instead).
#[test]
fn invalid_server_kex_values_are_refused() {
    let group14_prime = hex(concat!(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
        "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    ));
    let mpint = |magnitude: &[u8]| {
        let mut m: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
        if m.first().is_some_and(|&b| b & 0x80 != 0) {
            m.insert(0, 0);
        }
        m
    };
    let mut p_minus_1 = group14_prime.clone();
    *p_minus_1.last_mut().unwrap() -= 1;
    let mut not_on_curve = vec![4u8];
    not_on_curve.extend([0u8; 31].iter().chain(&[1]));
    not_on_curve.extend([0u8; 31].iter().chain(&[1]));
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("curve25519-sha256", "X25519 zero point", vec![0; 32]),
        ("curve25519-sha256", "X25519 short value", vec![9; 31]),
        (
            "curve25519-sha256@libssh.org",
            "X25519 order-8 point",
            hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ),
        (
            "ecdh-sha2-nistp256",
            "P-256 point not on the curve",
            not_on_curve,
        ),
        ("ecdh-sha2-nistp256", "P-256 identity", vec![0]),
        ("diffie-hellman-group14-sha256", "DH f = 0", mpint(&[0])),
        ("diffie-hellman-group14-sha256", "DH f = 1", mpint(&[1])),
        (
            "diffie-hellman-group14-sha256",
            "DH f = p-1",
            mpint(&p_minus_1),
        ),
        (
            "diffie-hellman-group14-sha256",
            "DH f = p",
            mpint(&group14_prime),
        ),
        (
            "diffie-hellman-group16-sha512",
            "DH f negative",
            vec![0x80, 1],
        ),
    ];
    for (kex, what, value) in cases {
        let mut bytes = VERSION.to_vec();
        bytes.extend(plaintext_packet(&strict_kexinit(kex)));
        bytes.extend(plaintext_packet(&kex_reply(&value)));
        let peer = peer_writing(bytes);
        let outcome = handshake(&peer, |t| {
            t.set_preferred(AlgorithmKind::Kex, kex).unwrap();
        });
        outcome.expect_quick(
            &format!("{kex}: {what}"),
            ErrorKind::Protocol,
            &["key exchange"],
        );
    }
}

/// A well-formed reply whose signature does not verify: HostKeyRejected, naming the signature.
#[test]
fn bad_signature_from_a_fake_server_is_rejected() {
    let server_public = XorShift(0x7365_7276_6572_0001).bytes(32);
    let mut bytes = VERSION.to_vec();
    bytes.extend(plaintext_packet(&strict_kexinit("curve25519-sha256")));
    bytes.extend(plaintext_packet(&kex_reply(&server_public)));
    let peer = peer_writing(bytes);
    handshake(&peer, |_| {}).expect_quick(
        "garbage signature",
        ErrorKind::HostKeyRejected,
        &["signature"],
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ----- a man in the middle in front of a real sshd -----

/// Splits a KEX_ECDH_REPLY payload into K_S, Q_S and the signature.
fn parse_reply(payload: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut rest = &payload[1..];
    let mut next = || {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let s = rest[4..4 + len].to_vec();
        rest = &rest[4 + len..];
        s
    };
    let k_s = next();
    let q_s = next();
    let sig = next();
    (k_s, q_s, sig)
}

/// The relay puts another valid ed25519 key in the server's KEX_ECDH_REPLY and keeps the
/// signature, which the claimed key did not make.
#[test]
fn swapped_host_key_in_the_kex_reply_is_rejected() {
    let sshd = Sshd::start();
    let line = std::fs::read_to_string(format!("{}.pub", sshd.unauthorized_key().display()))
        .expect("read the unauthorized public key");
    let other_blob = {
        use base64ct::{Base64, Encoding};
        Base64::decode_vec(line.split_whitespace().nth(1).expect("key blob")).expect("base64")
    };
    let relay = {
        let other_blob = other_blob.clone();
        Relay::with_frames(sshd.port, move |dir, frame| {
            if dir == Direction::ServerToClient && frame.msg_type() == Some(31) {
                let (k_s, q_s, sig) = parse_reply(frame.payload().unwrap());
                assert!(k_s.starts_with(b"\0\0\0\x0bssh-ed25519"));
                assert_ne!(k_s, other_blob);
                let mut p = vec![31u8];
                string(&mut p, &other_blob);
                string(&mut p, &q_s);
                string(&mut p, &sig);
                return vec![Frame::Packet(plaintext_packet(&p))];
            }
            vec![frame]
        })
    };
    login(&sshd, relay.port, |t| {
        t.set_preferred(AlgorithmKind::HostKey, "ssh-ed25519")
            .unwrap();
    })
    .expect_quick(
        "swapped host key",
        ErrorKind::HostKeyRejected,
        &["signature"],
    );
    assert_eq!(relay.connections(), 1);
}

/// The relay flips one bit of the server's encrypted stream at `offset` bytes after its
/// NEWKEYS (offset 0 is the first byte of the first encrypted packet).
fn flip_relay(sshd: &Sshd, offset: usize, bit: u8) -> Relay {
    let mut seen = 0usize;
    Relay::with_frames(sshd.port, move |dir, frame| match (dir, frame) {
        (Direction::ServerToClient, Frame::Opaque(mut bytes)) => {
            if (seen..seen + bytes.len()).contains(&offset) {
                bytes[offset - seen] ^= 1 << bit;
            }
            seen += bytes.len();
            vec![Frame::Opaque(bytes)]
        }
        (_, frame) => vec![frame],
    })
}

/// One flipped bit in the server's first encrypted packet ends the connection with a
/// protocol error, for every kind of cipher and MAC. Positions: the payload (integrity check
/// fails), and the length field (refused as too long, or integrity check fails).
#[test]
fn flipped_ciphertext_bit_ends_the_connection() {
    let sshd = Sshd::start();
    let mut failures = Vec::new();
    for (cipher, mac) in [
        ("chacha20-poly1305@openssh.com", None),
        ("aes128-gcm@openssh.com", None),
        ("aes256-gcm@openssh.com", None),
        ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
        ("aes256-ctr", Some("hmac-sha2-512")),
        ("aes192-ctr", Some("hmac-sha2-256")),
    ] {
        for (offset, bit, place) in [
            (10, 0, "payload"),
            (21, 5, "payload"),
            (0, 7, "length, top bit"),
            (3, 4, "length, bit 4"),
        ] {
            let relay = flip_relay(&sshd, offset, bit);
            let outcome = login(&sshd, relay.port, |t| {
                t.set_preferred(AlgorithmKind::Cipher, cipher).unwrap();
                if let Some(mac) = mac {
                    t.set_preferred(AlgorithmKind::Mac, mac).unwrap();
                }
            });
            let what = format!(
                "{cipher} {} flip at byte {offset} bit {bit} ({place})",
                mac.unwrap_or("(aead)")
            );
            let verdict = match &outcome.error {
                None => Some("the connection worked".to_owned()),
                Some(e) if e.kind() != ErrorKind::Protocol => Some(format!("{:?}: {e}", e.kind())),
                Some(e)
                    if !e.message().contains("authentication failed")
                        && !e.message().contains("packet length") =>
                {
                    Some(format!("unspecific message: {e}"))
                }
                Some(_) if outcome.elapsed >= TIMEOUT => {
                    Some(format!("took {:.1?}", outcome.elapsed))
                }
                Some(_) => None,
            };
            if let Some(why) = verdict {
                failures.push(format!("{what}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A relay that slips the plaintext message `payload` in before the server's message of
/// type `before`.
fn insert_before(sshd: &Sshd, before: u8, payload: &'static [u8]) -> Relay {
    Relay::with_frames(sshd.port, move |dir, frame| {
        if dir == Direction::ServerToClient && frame.msg_type() == Some(before) {
            return vec![Frame::Packet(plaintext_packet(payload)), frame];
        }
        vec![frame]
    })
}

/// Terrapin (CVE-2023-48795): an IGNORE inserted before the server's NEWKEYS during the
/// initial (strict) key exchange ends the connection.
#[test]
fn terrapin_ignore_before_newkeys_is_refused() {
    let sshd = Sshd::start();
    let relay = insert_before(&sshd, 21, &[2, 0, 0, 0, 0]);
    login(&sshd, relay.port, |_| {}).expect_quick(
        "IGNORE inserted before NEWKEYS",
        ErrorKind::Protocol,
        &["strict key exchange"],
    );
}

/// An IGNORE inserted before the server's KEXINIT: under strict kex KEXINIT must be first.
#[test]
fn terrapin_ignore_before_kexinit_is_refused() {
    let sshd = Sshd::start();
    let relay = insert_before(&sshd, 20, &[2, 0, 0, 0, 0]);
    login(&sshd, relay.port, |_| {}).expect_quick(
        "IGNORE inserted before KEXINIT",
        ErrorKind::Protocol,
        &["strict key exchange"],
    );
}

/// Under strict kex, any unexpected message during the initial key exchange ends the
/// connection, including numbers nobody assigned (OpenSSH PROTOCOL §1.10: "terminate the
/// connection if any unexpected or out-of-sequence packet is received"). Sekura refuses every
/// non-kex message during any key exchange, so the message names the key exchange, not
/// strictness.
#[test]
fn terrapin_unknown_message_before_newkeys_is_refused() {
    let sshd = Sshd::start();
    let relay = insert_before(&sshd, 21, &[200, 0, 0, 0, 0]);
    login(&sshd, relay.port, |_| {}).expect_quick(
        "message 200 inserted before NEWKEYS",
        ErrorKind::Protocol,
        &["message 200", "key exchange"],
    );
}

/// The relay deletes the server's first encrypted packet (EXT_INFO, which carries
/// server-sig-algs). With aes128-gcm its length is in the clear, so the relay can cut it out
/// exactly; the next packet then fails its integrity check.
#[test]
fn dropped_ext_info_is_detected() {
    let sshd = Sshd::start();
    let mut pending: Option<Vec<u8>> = Some(Vec::new());
    let relay = Relay::with_frames(sshd.port, move |dir, frame| match (dir, frame) {
        (Direction::ServerToClient, Frame::Opaque(bytes)) => {
            let Some(mut buffered) = pending.take() else {
                return vec![Frame::Opaque(bytes)];
            };
            buffered.extend_from_slice(&bytes);
            if buffered.len() < 4 {
                pending = Some(buffered);
                return vec![];
            }
            let len = u32::from_be_bytes(buffered[..4].try_into().unwrap()) as usize;
            let total = 4 + len + 16;
            if buffered.len() < total {
                pending = Some(buffered);
                return vec![];
            }
            vec![Frame::Opaque(buffered[total..].to_vec())]
        }
        (_, frame) => vec![frame],
    });
    login(&sshd, relay.port, |t| {
        t.set_preferred(AlgorithmKind::Cipher, "aes128-gcm@openssh.com")
            .unwrap();
    })
    .expect_quick(
        "EXT_INFO dropped",
        ErrorKind::Protocol,
        &["authentication failed"],
    );
}

// ----- the sans-IO core, fed directly -----

fn new_client() -> Connection {
    let mut c = Connection::client(&ConnectionConfig::default(), Box::new(OsRandom));
    let hello = transmit(&mut c);
    assert!(hello.starts_with(b"SSH-2.0-"), "the client speaks first");
    c
}

/// Feeds `chunks` in order, stopping at the first error; panics are caught and reported.
fn feed(chunks: &[&[u8]]) -> Result<(Connection, sekura::Result<()>), String> {
    let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
    std::panic::catch_unwind(move || {
        let mut c = new_client();
        let mut result = Ok(());
        for chunk in &chunks {
            result = c.handle_bytes(chunk);
            if result.is_err() {
                break;
            }
        }
        (c, result)
    })
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// A payload of message `n` followed by zero bytes.
fn message(n: u8) -> Vec<u8> {
    let mut p = vec![n];
    p.extend_from_slice(&[0; 16]);
    p
}

/// Before any KEXINIT from the server, each message number either ends the connection with a
/// protocol error (a DISCONNECT ends it as closed) or changes nothing; none panics.
#[test]
fn proto_every_message_number_before_kexinit() {
    let mut failures = Vec::new();
    for n in 0..=255u8 {
        let packet = plaintext_packet(&message(n));
        match feed(&[b"SSH-2.0-x\r\n", &packet]) {
            Err(panic) => failures.push(format!("message {n}: panic: {panic}")),
            Ok((c, Ok(()))) => {
                if c.error().is_some() || c.is_established() || c.host_key().is_some() {
                    failures.push(format!("message {n}: accepted and changed the state"));
                }
                if *c.auth_status() == AuthStatus::Success {
                    failures.push(format!("message {n}: authenticated"));
                }
            }
            Ok((_, Err(e))) => {
                let expected = if n == 1 {
                    ErrorKind::Closed
                } else {
                    ErrorKind::Protocol
                };
                if e.kind() != expected {
                    failures.push(format!("message {n}: {:?}: {e}", e.kind()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// After the server's KEXINIT announced strict kex, every message other than the expected
/// reply ends the connection (the reply here is all zeros, so it fails to parse): numbers in
/// the transport, auth and connection ranges and unassigned numbers alike.
#[test]
fn proto_strict_kex_refuses_every_unexpected_message() {
    let kexinit = plaintext_packet(&strict_kexinit("curve25519-sha256"));
    let mut failures = Vec::new();
    for n in 0..=255u8 {
        let packet = plaintext_packet(&message(n));
        match feed(&[b"SSH-2.0-x\r\n", &kexinit, &packet]) {
            Err(panic) => failures.push(format!("message {n}: panic: {panic}")),
            Ok((c, Ok(()))) => failures.push(format!(
                "message {n}: accepted during the strict initial key exchange (error {:?})",
                c.error()
            )),
            Ok((_, Err(e))) => {
                let expected = if n == 1 {
                    ErrorKind::Closed
                } else {
                    ErrorKind::Protocol
                };
                if e.kind() != expected {
                    failures.push(format!("message {n}: {:?}: {e}", e.kind()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} message numbers not refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A message the client ignored before KEXINIT really changed nothing: a (non-strict) server
/// KEXINIT afterwards is answered with our key exchange message.
#[test]
fn proto_ignored_messages_leave_the_connection_usable() {
    let kexinit = plaintext_packet(&kexinit(
        "curve25519-sha256",
        "ssh-ed25519",
        "aes128-ctr",
        "hmac-sha2-256",
        "none",
    ));
    for n in [2u8, 3, 4, 0, 8, 19, 128, 200, 255] {
        let packet = plaintext_packet(&message(n));
        let (mut c, result) = feed(&[b"SSH-2.0-x\r\n", &packet]).expect("no panic");
        if result.is_err() {
            // Refusing is allowed too (and what strictness asks for), except for the three
            // messages valid at any time before strict kex is known.
            assert!(
                !(2..=4).contains(&n),
                "message {n} refused before KEXINIT: {result:?}"
            );
            continue;
        }
        let _discarded = transmit(&mut c);
        c.handle_bytes(&kexinit)
            .unwrap_or_else(|e| panic!("KEXINIT after ignored message {n}: {e}"));
        assert!(
            !transmit(&mut c).is_empty(),
            "no key exchange message after ignored message {n}"
        );
    }
}

/// USERAUTH_SUCCESS before the key exchange (the libssh CVE-2018-10933 shape, client side).
#[test]
fn proto_userauth_success_before_kex_is_refused() {
    for prefix in [
        vec![],
        plaintext_packet(&strict_kexinit("curve25519-sha256")),
    ] {
        let packet = plaintext_packet(&[52]);
        let (c, result) = feed(&[b"SSH-2.0-x\r\n", &prefix, &packet]).expect("no panic");
        let e = result.expect_err("USERAUTH_SUCCESS before kex accepted");
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(e.message().contains("52"), "{e}");
        assert_ne!(*c.auth_status(), AuthStatus::Success);
        assert!(c.error().is_some());
        // The error is sticky and a DISCONNECT is queued.
        let mut c = c;
        assert!(c.handle_bytes(&packet).is_err());
        assert!(!transmit(&mut c).is_empty(), "no DISCONNECT queued");
    }
}

/// Bytes split at every position give the same result as in one piece (no panic on partial
/// input), for a version line and a KEXINIT.
#[test]
fn proto_split_input_is_handled() {
    let mut bytes = b"SSH-2.0-split\r\n".to_vec();
    bytes.extend(plaintext_packet(&strict_kexinit("curve25519-sha256")));
    for split in 0..=bytes.len() {
        let (mut c, result) = feed(&[&bytes[..split], &bytes[split..]]).expect("no panic");
        result.unwrap_or_else(|e| panic!("split at {split}: {e}"));
        assert!(c.error().is_none());
        assert!(
            !transmit(&mut c).is_empty(),
            "split at {split}: no KEX_ECDH_INIT"
        );
    }
}

/// A KEXINIT with first_kex_packet_follows set, followed by the guessed packet and a reply.
fn guessing_server(kex_list: &str) -> Vec<u8> {
    let mut init = kexinit(
        kex_list,
        "ssh-ed25519",
        "aes128-ctr",
        "hmac-sha2-256",
        "none",
    );
    let flag = init.len() - 5;
    init[flag] = 1;
    let mut bytes = VERSION.to_vec();
    bytes.extend(plaintext_packet(&init));
    bytes.extend(plaintext_packet(&[30, 0, 0, 0, 4, 1, 2, 3, 4]));
    let server_public = XorShift(0x6775_6573_7300_0001).bytes(32);
    bytes.extend(plaintext_packet(&kex_reply(&server_public)));
    bytes
}

/// RFC 4253 §7: a wrong guess (the server's first kex is not the one agreed) means the
/// guessed packet is skipped, so the reply after it is processed (and its bad signature found).
#[test]
fn wrongly_guessed_kex_packet_is_ignored() {
    let peer = peer_writing(guessing_server("ecdh-sha2-nistp256,curve25519-sha256"));
    handshake(&peer, |t| {
        t.set_preferred(AlgorithmKind::Kex, "curve25519-sha256,ecdh-sha2-nistp256")
            .unwrap()
    })
    .expect_quick(
        "wrong guess skipped",
        ErrorKind::HostKeyRejected,
        &["signature"],
    );
}

/// A right guess is a real kex packet: a server may not send KEX_ECDH_INIT, so it is fatal.
#[test]
fn rightly_guessed_kex_packet_is_processed() {
    let peer = peer_writing(guessing_server("curve25519-sha256,ecdh-sha2-nistp256"));
    handshake(&peer, |t| {
        t.set_preferred(AlgorithmKind::Kex, "curve25519-sha256,ecdh-sha2-nistp256")
            .unwrap()
    })
    .expect_quick(
        "right guess processed",
        ErrorKind::Protocol,
        &["message 30"],
    );
}
