//! Key tests against files and signatures made by the real `ssh-keygen`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::{Command, Stdio};

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha512};

use super::testutil::{fingerprint, generate, openssl, ssh_keygen, TempDir};
use super::{PrivateKey, PublicKey};
use crate::error::ErrorKind;
use crate::wire::{Reader, Writer};

const PASSPHRASE: &str = "correct horse";

fn kind<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
    r.unwrap_err().kind()
}

/// Replaces the algorithm name inside a signature blob.
fn rename_signature(blob: &[u8], name: &str) -> Vec<u8> {
    let mut r = Reader::new(blob);
    r.utf8("name").unwrap();
    let inner = r.string("sig").unwrap();
    let mut w = Writer::new();
    w.string(name).string(inner);
    w.into_bytes()
}

/// Everything the brief asks of one key type: loading plain and encrypted files, fingerprints,
/// sign and verify with every algorithm, and the failures.
fn check_key_type(key_type: &str, bits: Option<u32>, expected_algs: &[&str]) {
    let dir = TempDir::new(&format!("keys-{key_type}-{}", bits.unwrap_or(0)));
    let plain = dir.join("plain");
    let encrypted = dir.join("encrypted");
    generate(&plain, key_type, bits, "", &[]);
    generate(&encrypted, key_type, bits, PASSPHRASE, &[]);

    for path in [&plain, &encrypted] {
        let key = PrivateKey::from_file(path, Some(PASSPHRASE.as_bytes())).unwrap();
        let public = key.public_key();
        let pub_line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        assert_eq!(PublicKey::from_openssh(&pub_line).unwrap(), public);
        assert_eq!(public.fingerprint_sha256(), fingerprint(path));
        assert_eq!(PublicKey::from_blob(&public.to_blob()).unwrap(), public);
        assert_eq!(pub_line.split_whitespace().nth(1).unwrap(), public.base64());
        assert_eq!(public.signature_algorithms(true), expected_algs);
        let modern: Vec<&str> = expected_algs
            .iter()
            .copied()
            .filter(|a| *a != "ssh-rsa" && *a != "ssh-dss")
            .collect();
        assert_eq!(public.signature_algorithms(false), modern);
        if let Some(bits) = bits {
            assert_eq!(public.bits(), bits as usize);
        }

        let data = b"session identifier and userauth request";
        for alg in public.signature_algorithms(true) {
            let blob = key.sign(alg, data).unwrap();
            public.verify(alg, data, &blob).unwrap();
            // Deterministic: Ed25519, RFC 6979 for ECDSA and DSA, PKCS#1 v1.5 for RSA.
            assert_eq!(
                key.sign(alg, data).unwrap(),
                blob,
                "{alg} signatures are deterministic"
            );

            let rejected = |r: crate::Result<()>| assert_eq!(kind(r), ErrorKind::HostKeyRejected);
            rejected(public.verify(alg, b"session identifier and userauth requesT", &blob));
            rejected(public.verify(alg, data, &blob[..blob.len() - 1]));
            rejected(public.verify(alg, data, &blob[..10]));
            rejected(public.verify(alg, data, &[]));
            let mut flipped = blob.clone();
            *flipped.last_mut().unwrap() ^= 1;
            rejected(public.verify(alg, data, &flipped));
            // The name inside the blob must be the requested one.
            for other in super::HOST_KEY_ALGORITHMS.iter().map(|(name, _)| *name) {
                if other != alg {
                    rejected(public.verify(other, data, &blob));
                    rejected(public.verify(alg, data, &rename_signature(&blob, other)));
                }
            }
        }
        let foreign = if key_type == "dsa" {
            "ssh-ed25519"
        } else {
            "ssh-dss"
        };
        assert_eq!(kind(key.sign(foreign, data)), ErrorKind::InvalidArg);
    }

    // Encrypted: no passphrase, wrong passphrase.
    let err = PrivateKey::from_file(&encrypted, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordRequired, "{err}");
    let err = PrivateKey::from_file(&encrypted, Some(b"wrong")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadPassphrase, "{err}");
    assert!(err.message().contains("wrong passphrase"), "{err}");
    assert!(
        err.message().contains("encrypted"),
        "the path is in the message: {err}"
    );

    // Truncated files.
    for path in [&plain, &encrypted] {
        let bytes = std::fs::read(path).unwrap();
        for len in [bytes.len() / 2, bytes.len() - 40, 40, 0] {
            let r = PrivateKey::from_bytes(&bytes[..len], Some(PASSPHRASE.as_bytes()));
            assert_eq!(
                kind(r),
                ErrorKind::KeyFormat,
                "{} truncated to {len}",
                path.display()
            );
        }
    }

    // Truncated inside valid armor: the decoder sees a short binary key.
    for path in [&plain, &encrypted] {
        let raw = unarmor(&std::fs::read_to_string(path).unwrap());
        for len in [raw.len() - 1, raw.len() - 16, raw.len() / 2, 20] {
            let pem = armor_openssh(&raw[..len]);
            let r = PrivateKey::from_bytes(pem.as_bytes(), Some(PASSPHRASE.as_bytes()));
            assert_eq!(
                kind(r),
                ErrorKind::KeyFormat,
                "{} cut to {len} bytes",
                path.display()
            );
        }
    }

    interop_signatures(&dir, &plain);
}

/// Signatures made by `ssh-keygen -Y sign` verify with [`PublicKey::verify`], and ours verify
/// with `ssh-keygen -Y check-novalidate` (the SSHSIG format wraps the same signature blob).
fn interop_signatures(dir: &TempDir, key_path: &Path) {
    let key = PrivateKey::from_file(key_path, None).unwrap();
    let public = key.public_key();
    let message_path = dir.join("message");
    for round in 0..4 {
        // ECDSA: several rounds so that high-S signatures from OpenSSH turn up.
        let message = format!("message {round}");
        std::fs::write(&message_path, &message).unwrap();
        let _ = std::fs::remove_file(dir.join("message.sig"));
        ssh_keygen(&[
            "-Y",
            "sign",
            "-q",
            "-n",
            "file",
            "-f",
            key_path.to_str().unwrap(),
            message_path.to_str().unwrap(),
        ]);
        let (alg, signature_blob) = read_sshsig(&dir.join("message.sig"), &public);
        public
            .verify(
                &alg,
                &sshsig_signed_data(message.as_bytes()),
                &signature_blob,
            )
            .unwrap();
    }

    let message = b"signed by sekura";
    for alg in public.signature_algorithms(false) {
        let blob = key.sign(alg, &sshsig_signed_data(message)).unwrap();
        let sig_path = dir.join("ours.sig");
        std::fs::write(&sig_path, armor_sshsig(&public, &blob)).unwrap();
        let mut child = Command::new("ssh-keygen")
            .args([
                "-Y",
                "check-novalidate",
                "-n",
                "file",
                "-s",
                sig_path.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen refused our {alg} signature: {out:?}"
        );
    }
}

/// The data an SSHSIG signature covers (PROTOCOL.sshsig), namespace "file", SHA-512.
fn sshsig_signed_data(message: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"SSHSIG")
        .string("file")
        .string("")
        .string("sha512")
        .string(Sha512::digest(message));
    w.into_bytes()
}

/// Reads an armored SSHSIG file; returns the signature algorithm and blob.
fn read_sshsig(path: &Path, public: &PublicKey) -> (String, Vec<u8>) {
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let raw = Base64::decode_vec(&b64).unwrap();
    let mut r = Reader::new(&raw);
    assert_eq!(r.bytes(6, "magic").unwrap(), b"SSHSIG");
    assert_eq!(r.u32("version").unwrap(), 1);
    assert_eq!(r.string("key").unwrap(), public.as_blob());
    assert_eq!(r.utf8("namespace").unwrap(), "file");
    r.string("reserved").unwrap();
    assert_eq!(r.utf8("hash").unwrap(), "sha512");
    let blob = r.string("signature").unwrap().to_vec();
    let alg = Reader::new(&blob).utf8("alg").unwrap().to_string();
    (alg, blob)
}

/// Wraps our signature blob as an armored SSHSIG file.
fn armor_sshsig(public: &PublicKey, signature_blob: &[u8]) -> String {
    let mut w = Writer::new();
    w.raw(b"SSHSIG")
        .u32(1)
        .string(public.as_blob())
        .string("file")
        .string("")
        .string("sha512");
    w.string(signature_blob);
    let b64 = Base64::encode_string(w.as_bytes());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
        lines.join("\n")
    )
}

#[test]
fn ed25519_keys() {
    check_key_type("ed25519", None, &["ssh-ed25519"]);
}

#[test]
fn ecdsa_p256_keys() {
    check_key_type("ecdsa", Some(256), &["ecdsa-sha2-nistp256"]);
}

#[test]
fn ecdsa_p384_keys() {
    check_key_type("ecdsa", Some(384), &["ecdsa-sha2-nistp384"]);
}

#[test]
fn ecdsa_p521_keys() {
    check_key_type("ecdsa", Some(521), &["ecdsa-sha2-nistp521"]);
}

#[test]
fn dsa_keys() {
    check_key_type("dsa", Some(1024), &["ssh-dss"]);
}

#[test]
fn rsa_2048_keys() {
    check_key_type(
        "rsa",
        Some(2048),
        &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
    );
}

#[test]
fn rsa_3072_keys() {
    check_key_type(
        "rsa",
        Some(3072),
        &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
    );
}

#[test]
fn rsa_1024_is_accepted() {
    let dir = TempDir::new("keys-rsa1024");
    let path = dir.join("k");
    generate(&path, "rsa", Some(1024), "", &[]);
    let key = PrivateKey::from_file(&path, None).unwrap();
    assert_eq!(key.public_key().bits(), 1024);
    let blob = key.sign("rsa-sha2-256", b"x").unwrap();
    key.public_key()
        .verify("rsa-sha2-256", b"x", &blob)
        .unwrap();
}

#[test]
fn rsa_under_1024_bits_is_refused() {
    // An odd 1016-bit modulus (not a real key: only the size check is exercised).
    let mut n = vec![0xc5u8; 127];
    n[126] |= 1;
    let mut w = Writer::new();
    w.string("ssh-rsa")
        .mpint_unsigned(&[1, 0, 1])
        .mpint_unsigned(&n);
    let err = PublicKey::from_blob(w.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat);
    assert!(err.message().contains("too small"), "{err}");
}

#[test]
fn other_openssh_ciphers_decrypt() {
    let dir = TempDir::new("keys-ciphers");
    for cipher in [
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
    ] {
        let path = dir.join(&cipher.replace('@', "_"));
        generate(&path, "ed25519", None, PASSPHRASE, &["-Z", cipher]);
        let key = PrivateKey::from_file(&path, Some(PASSPHRASE.as_bytes())).unwrap();
        assert_eq!(key.public_key().fingerprint_sha256(), fingerprint(&path));
        assert_eq!(
            kind(PrivateKey::from_file(&path, Some(b"nope"))),
            ErrorKind::BadPassphrase
        );
        assert_eq!(
            kind(PrivateKey::from_file(&path, None)),
            ErrorKind::PasswordRequired
        );
    }
}

#[test]
fn pem_and_pkcs8_keys_load() {
    let dir = TempDir::new("keys-pem");
    for (format, key_type, bits) in [
        ("PEM", "rsa", 2048),
        ("PEM", "ecdsa", 256),
        ("PKCS8", "rsa", 2048),
        ("PKCS8", "ecdsa", 256),
    ] {
        let path = dir.join(&format!("{format}-{key_type}"));
        generate(&path, key_type, Some(bits), "", &["-m", format]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("OPENSSH"), "{format} file expected: {text}");
        let key = PrivateKey::from_file(&path, None).unwrap();
        let public = key.public_key();
        assert_eq!(public.fingerprint_sha256(), fingerprint(&path));
        for alg in public.signature_algorithms(true) {
            public
                .verify(alg, b"m", &key.sign(alg, b"m").unwrap())
                .unwrap();
        }
    }
    // Encrypted PEM (OpenSSL's legacy Proc-Type encryption, AES-128-CBC) loads.
    let path = dir.join("pem-encrypted");
    generate(&path, "rsa", Some(2048), PASSPHRASE, &["-m", "PEM"]);
    let key = PrivateKey::from_file(&path, Some(PASSPHRASE.as_bytes())).unwrap();
    assert_eq!(key.public_key().fingerprint_sha256(), fingerprint(&path));
}

#[test]
fn garbage_is_key_format_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let key = PrivateKey::ed25519_from_seed([7; 32]);
    let public = key.public_key();
    for round in 0..2000 {
        let len = (next() % 300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 && bytes.len() > 8 {
            // Plausible prefixes so that parsing gets past the first field.
            let prefix = Writer::new().string("ssh-ed25519").as_bytes().to_vec();
            bytes.splice(0..0, prefix);
        }
        assert_eq!(
            kind(PrivateKey::from_bytes(&bytes, None)),
            ErrorKind::KeyFormat
        );
        if let Ok(k) = PublicKey::from_blob(&bytes) {
            assert_eq!(k.to_blob(), bytes);
        }
        assert!(public.verify("ssh-ed25519", b"d", &bytes).is_err());
    }
    for round in 0..500 {
        let len = (next() % 400) as usize;
        let mut raw: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            raw.splice(0..0, b"openssh-key-v1\0".iter().copied());
        }
        let r = PrivateKey::from_bytes(armor_openssh(&raw).as_bytes(), Some(b"p"));
        assert_eq!(kind(r), ErrorKind::KeyFormat);
    }
    assert_eq!(
        kind(PrivateKey::from_bytes(b"", None)),
        ErrorKind::KeyFormat
    );
}

#[test]
fn corrupted_real_keys_never_panic() {
    let dir = TempDir::new("keys-corrupt");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    for (key_type, bits) in [
        ("ed25519", None),
        ("ecdsa", Some(256)),
        ("ecdsa", Some(521)),
        ("rsa", Some(1024)),
        ("dsa", Some(1024)),
    ] {
        let path = dir.join(&format!("{key_type}{}", bits.unwrap_or(0)));
        generate(&path, key_type, bits, "", &[]);
        let raw = unarmor(&std::fs::read_to_string(&path).unwrap());
        let mut accepted = 0;
        for _ in 0..300 {
            let mut bytes = raw.clone();
            let at = next() % bytes.len();
            bytes[at] ^= 1 << (next() % 8);
            match PrivateKey::from_bytes(armor_openssh(&bytes).as_bytes(), None) {
                Ok(_) => accepted += 1,
                Err(e) => assert_eq!(e.kind(), ErrorKind::KeyFormat, "{e}"),
            }
        }
        // Only flips in the comment can leave a key loadable.
        assert!(
            accepted < 60,
            "{key_type}: {accepted} corrupted keys accepted"
        );
    }
}

fn unarmor(text: &str) -> Vec<u8> {
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    Base64::decode_vec(&b64).unwrap()
}

fn armor_openssh(raw: &[u8]) -> String {
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        Base64::encode_string(raw)
    )
}

#[test]
fn from_file_io_error_names_the_path() {
    let err = PrivateKey::from_file(Path::new("/nonexistent/sekura/id_ed25519"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.message().contains("/nonexistent/sekura/id_ed25519"),
        "{err}"
    );
}

#[test]
fn unsupported_types_are_named() {
    // A security-key type (needs hardware to generate, so the blob is built here).
    let mut w = Writer::new();
    w.string("sk-ssh-ed25519@openssh.com")
        .string([7u8; 32])
        .string("ssh:");
    let blob = w.into_bytes();
    let line = format!(
        "sk-ssh-ed25519@openssh.com {} me@host",
        Base64::encode_string(&blob)
    );
    let err = PublicKey::from_openssh(&line).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat);
    assert!(
        err.message().contains("sk-ssh-ed25519@openssh.com"),
        "{err}"
    );
    let err = PublicKey::from_blob(&blob).unwrap_err();
    assert!(
        err.message().contains("sk-ssh-ed25519@openssh.com"),
        "{err}"
    );
    // A DSA key of another size than OpenSSH's 1024 bits.
    let dir = TempDir::new("keys-unsupported");
    let path = dir.join("dsa2048.pem");
    openssl(&[
        "dsaparam",
        "-genkey",
        "-noout",
        "-out",
        path.to_str().unwrap(),
        "2048",
    ]);
    let err = PrivateKey::from_file(&path, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat);
    assert!(err.message().contains("2048-bit p"), "{err}");
}

#[test]
fn blobs_must_be_canonical_and_complete() {
    let public = PrivateKey::ed25519_from_seed([1; 32]).public_key();
    let mut blob = public.to_blob();
    blob.push(0);
    assert_eq!(kind(PublicKey::from_blob(&blob)), ErrorKind::KeyFormat);
    blob.truncate(blob.len() - 2);
    assert_eq!(kind(PublicKey::from_blob(&blob)), ErrorKind::KeyFormat);
    assert_eq!(
        kind(PublicKey::from_openssh("ssh-ed25519")),
        ErrorKind::KeyFormat
    );
    assert_eq!(
        kind(PublicKey::from_openssh("ssh-ed25519 !!!!")),
        ErrorKind::KeyFormat
    );
    // The type named in the line must be the type in the blob.
    let line = format!("ssh-rsa {}", public.base64());
    assert_eq!(kind(PublicKey::from_openssh(&line)), ErrorKind::KeyFormat);
    // Whitespace and comments around the key are fine.
    let line = format!("  ssh-ed25519\t{}   a comment  \n", public.base64());
    assert_eq!(PublicKey::from_openssh(&line).unwrap(), public);
}

#[test]
fn ed25519_seed_matches_rfc8032_test_vector_1() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let seed: [u8; 32] = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        .try_into()
        .unwrap();
    let key = PrivateKey::ed25519_from_seed(seed);
    let mut expected_blob = Writer::new();
    expected_blob.string("ssh-ed25519").string(hex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    ));
    assert_eq!(key.public_key().as_blob(), expected_blob.as_bytes());
    let signature = hex(concat!(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    ));
    let mut expected_sig = Writer::new();
    expected_sig.string("ssh-ed25519").string(signature);
    assert_eq!(
        key.sign("ssh-ed25519", b"").unwrap(),
        expected_sig.as_bytes()
    );
    assert!(format!("{key:?}").starts_with("PrivateKey(ssh-ed25519 SHA256:"));
}

#[test]
fn keys_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PublicKey>();
    assert_send_sync::<PrivateKey>();
}

#[test]
fn host_key_algorithms_match_the_signature_table() {
    let table: Vec<(&str, bool)> = super::SIGNATURE_ALGORITHMS
        .iter()
        .map(|a| (a.name, a.legacy))
        .collect();
    assert_eq!(super::HOST_KEY_ALGORITHMS, table.as_slice());
    // Modern before legacy, as DESIGN.md's algorithm table lists them.
    let first_legacy = table.iter().position(|(_, legacy)| *legacy).unwrap();
    assert!(table[first_legacy..].iter().all(|(_, legacy)| *legacy));
    for (name, _) in super::HOST_KEY_ALGORITHMS {
        let alg = super::SIGNATURE_ALGORITHMS
            .iter()
            .find(|a| a.name == *name)
            .unwrap();
        assert_eq!(
            super::KeyType::from_certificate_name(
                alg.certificate
                    .replace("rsa-sha2-512", "ssh-rsa")
                    .replace("rsa-sha2-256", "ssh-rsa")
                    .as_str()
            ),
            Some(alg.key_type)
        );
    }
}
