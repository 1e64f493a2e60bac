//! Hostile key files and blobs: truncated, corrupted, absurd lengths, wrong checkints, costly
//! key derivation settings. Every one must fail with `KeyFormat` (or a passphrase error),
//! quickly, without a panic or a large allocation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use pkcs8::der::{Decode, Encode};

use super::testutil::{generate, openssl, TempDir};
use super::{Certificate, PrivateKey, PublicKey};
use crate::error::ErrorKind;
use crate::wire::{Reader, Writer};

const PASSPHRASE: &str = "hostile pass";

fn unarmor(text: &str) -> Vec<u8> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && !l.is_empty())
        .collect();
    Base64::decode_vec(&b64).unwrap()
}

fn armor(label: &str, raw: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        Base64::encode_string(raw)
    )
}

fn expect_refused(text: &str, passphrase: Option<&str>, what: &str) {
    let started = Instant::now();
    let r = PrivateKey::from_bytes(text.as_bytes(), passphrase.map(str::as_bytes));
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat, "{what}: {err}");
    assert!(!err.message().is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{what} took {:?}",
        started.elapsed()
    );
}

/// Offsets of the fields of an `openssh-key-v1` key (PROTOCOL.key).
struct OpensshLayout {
    rounds: Option<usize>,
    nkeys: usize,
    public_len: usize,
    private_len: usize,
    checkints: usize,
}

fn layout(raw: &[u8]) -> OpensshLayout {
    let at = |r: &Reader| raw.len() - r.remaining().len();
    let mut r = Reader::new(raw);
    r.bytes(15, "magic").unwrap();
    r.string("cipher").unwrap();
    let kdf = r.utf8("kdf").unwrap().to_owned();
    let options_at = at(&r);
    r.string("kdf options").unwrap();
    let rounds = (kdf == "bcrypt").then(|| {
        let mut o = Reader::new(&raw[options_at + 4..]);
        o.string("salt").unwrap();
        options_at + 4 + (raw.len() - options_at - 4 - o.remaining().len())
    });
    let nkeys = at(&r);
    r.u32("nkeys").unwrap();
    let public_len = at(&r);
    r.string("public").unwrap();
    let private_len = at(&r);
    OpensshLayout {
        rounds,
        nkeys,
        public_len,
        private_len,
        checkints: private_len + 4,
    }
}

fn put_u32(raw: &mut [u8], at: usize, v: u32) {
    raw[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn openssh_absurd_fields_and_checkints() {
    let dir = TempDir::new("hostile-openssh");
    let plain_path = dir.join("plain");
    let enc_path = dir.join("enc");
    generate(&plain_path, "ed25519", None, "", &[]);
    generate(&enc_path, "ed25519", None, PASSPHRASE, &[]);
    let plain = unarmor(&std::fs::read_to_string(&plain_path).unwrap());
    let enc = unarmor(&std::fs::read_to_string(&enc_path).unwrap());
    let label = "OPENSSH PRIVATE KEY";

    // Wrong checkints (unencrypted: the file is corrupt).
    let l = layout(&plain);
    let mut bad = plain.clone();
    bad[l.checkints + 4] ^= 0x55;
    expect_refused(&armor(label, &bad), None, "checkint mismatch");

    // Absurd counts and lengths.
    for (at, what) in [
        (l.nkeys, "nkeys"),
        (l.public_len, "public key length"),
        (l.private_len, "private section length"),
    ] {
        for v in [0, 2, 0x7fff_ffff, 0xffff_ffff] {
            let mut bad = plain.clone();
            put_u32(&mut bad, at, v);
            expect_refused(&armor(label, &bad), None, &format!("{what} = {v:#x}"));
        }
    }

    // bcrypt rounds: refused above 10000 and at 0 before any work, with or without passphrase.
    let l = layout(&enc);
    let rounds = l.rounds.unwrap();
    assert_eq!(
        u32::from_be_bytes(enc[rounds..rounds + 4].try_into().unwrap()),
        16
    );
    for v in [0, 10_001, 0xffff_ffff] {
        let mut bad = enc.clone();
        put_u32(&mut bad, rounds, v);
        for pass in [None, Some(PASSPHRASE)] {
            expect_refused(&armor(label, &bad), pass, &format!("rounds {v}"));
        }
    }
    let mut many = enc.clone();
    put_u32(&mut many, rounds, 10_000);
    let err = PrivateKey::from_bytes(armor(label, &many).as_bytes(), None).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::PasswordRequired,
        "10000 rounds are allowed: {err}"
    );

    // Every truncation of a whole key.
    for len in 0..plain.len() {
        expect_refused(
            &armor(label, &plain[..len]),
            None,
            &format!("truncated to {len}"),
        );
    }
    for len in (0..enc.len()).step_by(7) {
        let r = PrivateKey::from_bytes(
            armor(label, &enc[..len]).as_bytes(),
            Some(PASSPHRASE.as_bytes()),
        );
        let kind = r.unwrap_err().kind();
        assert!(
            matches!(kind, ErrorKind::KeyFormat | ErrorKind::BadPassphrase),
            "cut at {len}: {kind:?}"
        );
    }
}

#[test]
fn pem_der_corruption_never_panics() {
    let dir = TempDir::new("hostile-pem");
    let mut files = Vec::new();
    for (key_type, bits, format) in [
        ("rsa", Some(1024), "PEM"),
        ("ecdsa", Some(384), "PEM"),
        ("dsa", Some(1024), "PEM"),
        ("ecdsa", Some(521), "PKCS8"),
        ("dsa", Some(1024), "PKCS8"),
    ] {
        let path = dir.join(&format!("{key_type}-{format}"));
        generate(&path, key_type, bits, "", &["-m", format]);
        files.push(std::fs::read_to_string(&path).unwrap());
    }
    let ed = dir.join("ed25519.p8");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        ed.to_str().unwrap(),
    ]);
    files.push(std::fs::read_to_string(&ed).unwrap());

    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    for text in &files {
        let label = text[11..].split("-----").next().unwrap().to_owned();
        let der = unarmor(text);
        PrivateKey::from_bytes(armor(&label, &der).as_bytes(), None).unwrap();
        for _ in 0..300 {
            let mut bad = der.clone();
            for _ in 0..1 + next() % 3 {
                let at = next() % bad.len();
                bad[at] ^= 1 << (next() % 8);
            }
            if let Err(e) = PrivateKey::from_bytes(armor(&label, &bad).as_bytes(), None) {
                assert_eq!(e.kind(), ErrorKind::KeyFormat, "{label}: {e}");
            }
        }
        for len in (0..der.len()).step_by(3) {
            expect_refused(
                &armor(&label, &der[..len]),
                None,
                &format!("{label} cut at {len}"),
            );
        }
        // A SEQUENCE claiming 4 GiB.
        let mut huge = vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(&der[2..]);
        expect_refused(&armor(&label, &huge), None, "huge DER length");
    }
    for garbage in [
        "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n",
        "-----BEGIN DSA PRIVATE KEY-----\n-----END DSA PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,zz\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: BF-CBC,0011223344556677\n\nAAAAAAAAAAA=\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 2,MIC-ONLY\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    ] {
        expect_refused(garbage, Some("x"), garbage);
    }
    let big = vec![b'A'; (1 << 20) + 1];
    assert_eq!(
        PrivateKey::from_bytes(&big, None).unwrap_err().kind(),
        ErrorKind::KeyFormat
    );
}

#[test]
fn costly_pkcs8_encryption_is_refused() {
    use pkcs8::pkcs5::pbes2::Kdf;
    use pkcs8::pkcs5::EncryptionScheme;
    let dir = TempDir::new("hostile-pkcs8");
    let plain = dir.join("plain");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        plain.to_str().unwrap(),
    ]);
    for (name, args) in [
        ("scrypt", vec!["-scrypt"]),
        ("pbkdf2", vec!["-v2", "aes256"]),
    ] {
        let path = dir.join(name);
        let mut cmd = vec![
            "pkcs8",
            "-topk8",
            "-in",
            plain.to_str().unwrap(),
            "-passout",
            "pass:pw",
            "-out",
            path.to_str().unwrap(),
        ];
        cmd.extend(args);
        openssl(&cmd);
        let der = unarmor(&std::fs::read_to_string(&path).unwrap());
        PrivateKey::from_file(&path, Some(b"pw")).unwrap();
        let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der).unwrap();
        let variants: [fn(&mut Kdf); 8] = [
            |k| {
                if let Kdf::Scrypt(s) = k {
                    s.cost_parameter = 0
                }
            },
            |k| {
                if let Kdf::Scrypt(s) = k {
                    s.cost_parameter = 3
                }
            },
            |k| {
                if let Kdf::Scrypt(s) = k {
                    s.cost_parameter = 1 << 40
                }
            },
            |k| {
                if let Kdf::Scrypt(s) = k {
                    s.block_size = u16::MAX
                }
            },
            |k| {
                if let Kdf::Scrypt(s) = k {
                    s.parallelization = u16::MAX
                }
            },
            |k| {
                if let Kdf::Scrypt(s) = k {
                    s.block_size = 0
                }
            },
            |k| {
                if let Kdf::Pbkdf2(p) = k {
                    p.iteration_count = u32::MAX
                }
            },
            |k| {
                if let Kdf::Pbkdf2(p) = k {
                    p.iteration_count = 0
                }
            },
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut bad = info.clone();
            let EncryptionScheme::Pbes2(params) = &mut bad.encryption_algorithm else {
                panic!("PBES2 expected");
            };
            let before = params.kdf.clone();
            change(&mut params.kdf);
            if params.kdf == before {
                continue;
            }
            let Ok(der) = bad.to_der() else { continue };
            let text = armor("ENCRYPTED PRIVATE KEY", &der);
            expect_refused(&text, Some("pw"), &format!("{name} variant {i}"));
        }
    }
}

#[test]
fn hostile_public_blobs() {
    let mut state = 0x0bad_cafe_dead_beefu64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // DSA keys with bad parameters.
    let p = [[0x80u8].as_slice(), &[0u8; 126], &[1]].concat(); // 1024 bits, odd
    let q = [[0x80u8].as_slice(), &[0u8; 18], &[1]].concat(); // 160 bits
    for (p, q, g, y, what) in [
        (&p[..], &q[..], &[0u8][..], &[2u8][..], "g = 0"),
        (&p[..], &q[..], &[1u8][..], &[2u8][..], "g = 1"),
        (&p[..], &q[..], &p[..], &[2u8][..], "g = p"),
        (&p[..], &q[..], &[2u8][..], &[1u8][..], "y = 1"),
        (
            &p[..],
            &q[..],
            &[2u8][..],
            &[3u8][..],
            "y not in the subgroup",
        ),
        (&p[1..], &q[..], &[2u8][..], &[3u8][..], "1016-bit p"),
        (&p[..], &p[..], &[2u8][..], &[3u8][..], "1024-bit q"),
        (
            &[0xffu8; 1024][..],
            &q[..],
            &[2u8][..],
            &[3u8][..],
            "8192-bit p",
        ),
    ] {
        let mut w = Writer::new();
        w.string("ssh-dss")
            .mpint_unsigned(p)
            .mpint_unsigned(q)
            .mpint_unsigned(g)
            .mpint_unsigned(y);
        let err = PublicKey::from_blob(w.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyFormat, "{what}");
    }
    // ECDSA: compressed points, points off the curve, wrong curve names.
    let p384 = super::PrivateKey::generate(
        super::KeyType::EcdsaP384,
        None,
        &mut crate::crypto::rng::OsRandom,
    )
    .unwrap()
    .public_key();
    let blob = p384.to_blob();
    let mut r = Reader::new(&blob);
    r.string("t").unwrap();
    r.string("c").unwrap();
    let point = r.string("q").unwrap().to_vec();
    for (curve, q, what) in [
        (
            "nistp384",
            [&[2u8][..], &point[1..49]].concat(),
            "compressed",
        ),
        (
            "nistp384",
            {
                let mut q = point.clone();
                q[60] ^= 1;
                q
            },
            "off the curve",
        ),
        ("nistp256", point.clone(), "wrong curve"),
        ("nistp384", vec![4u8], "empty point"),
    ] {
        let mut w = Writer::new();
        w.string("ecdsa-sha2-nistp384").string(curve).string(&q);
        assert_eq!(
            PublicKey::from_blob(w.as_bytes()).unwrap_err().kind(),
            ErrorKind::KeyFormat,
            "{what}"
        );
    }
    // Random blobs behind every type name never panic; neither do random signatures.
    let keys: Vec<PublicKey> = [
        super::KeyType::Dsa,
        super::KeyType::EcdsaP521,
        super::KeyType::Ed25519,
    ]
    .into_iter()
    .map(|t| {
        PrivateKey::generate(t, None, &mut crate::crypto::rng::OsRandom)
            .unwrap()
            .public_key()
    })
    .collect();
    for round in 0..3000 {
        let name = super::HOST_KEY_ALGORITHMS[round % 8].0;
        let len = (next() % 200) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut w = Writer::new();
        w.string(name).raw(&body);
        let _ = PublicKey::from_blob(w.as_bytes());
        let mut s = Writer::new();
        s.string(name).string(&body);
        for key in &keys {
            assert!(key.verify(name, b"data", s.as_bytes()).is_err());
        }
        let _ = Certificate::from_blob(&body);
    }
    // DSA signatures with r or s zero, or at least q.
    let key =
        PrivateKey::generate(super::KeyType::Dsa, None, &mut crate::crypto::rng::OsRandom).unwrap();
    let public = key.public_key();
    for inner in [[0u8; 40], [0xff; 40], {
        let mut x = [0u8; 40];
        x[19] = 1;
        x
    }] {
        let mut s = Writer::new();
        s.string("ssh-dss").string(inner);
        assert_eq!(
            public
                .verify("ssh-dss", b"d", s.as_bytes())
                .unwrap_err()
                .kind(),
            ErrorKind::HostKeyRejected
        );
    }
}

/// A wrong passphrase sometimes passes the CBC padding check (about one time in 256); the
/// verdict must still be a wrong passphrase, never a format error.
#[test]
fn many_wrong_passphrases_are_all_bad_passphrase() {
    let dir = TempDir::new("hostile-passphrases");
    let legacy = dir.join("legacy");
    let pkcs8 = dir.join("pkcs8");
    let openssh = dir.join("openssh");
    generate(&legacy, "ecdsa", Some(256), PASSPHRASE, &["-m", "PEM"]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes128",
        "-iter",
        "1",
        "-in",
        legacy.to_str().unwrap(),
        "-passin",
        &format!("pass:{PASSPHRASE}"),
        "-passout",
        &format!("pass:{PASSPHRASE}"),
        "-out",
        pkcs8.to_str().unwrap(),
    ]);
    generate(&openssh, "ed25519", None, PASSPHRASE, &["-a", "1"]);
    for (path, tries) in [(&legacy, 1500), (&pkcs8, 1500), (&openssh, 40)] {
        let text = std::fs::read(path).unwrap();
        PrivateKey::from_bytes(&text, Some(PASSPHRASE.as_bytes())).unwrap();
        for i in 0..tries {
            let wrong = format!("wrong {i}");
            let err = PrivateKey::from_bytes(&text, Some(wrong.as_bytes())).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::BadPassphrase,
                "{} with {wrong:?}: {err}",
                path.display()
            );
        }
    }
}
