//! OpenSSH certificates made by the real `ssh-keygen -s`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};

use super::testutil::{generate, ssh_keygen, TempDir};
use super::{CertType, Certificate, KeyType, PrivateKey, PublicKey};
use crate::error::ErrorKind;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs `key_path`.pub with the CA at `ca_path`; returns the certificate's path.
fn sign(ca_path: &Path, key_path: &Path, extra: &[&str]) -> PathBuf {
    let pub_path = key_path.with_extension("pub");
    let mut args = vec!["-q", "-s", ca_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(pub_path.to_str().unwrap());
    ssh_keygen(&args);
    let name = format!(
        "{}-cert.pub",
        key_path.file_name().unwrap().to_str().unwrap()
    );
    key_path.with_file_name(name)
}

#[test]
fn user_certificates_from_ssh_keygen() {
    let dir = TempDir::new("cert-user");
    let ca = dir.join("ca");
    generate(&ca, "ed25519", None, "", &[]);
    let ca_public = PublicKey::from_file(&ca.with_extension("pub")).unwrap();
    for (key_type, bits, kind) in [
        ("ed25519", None, KeyType::Ed25519),
        ("ecdsa", Some(384), KeyType::EcdsaP384),
        ("rsa", Some(2048), KeyType::Rsa),
        ("dsa", Some(1024), KeyType::Dsa),
    ] {
        let user = dir.join(key_type);
        generate(&user, key_type, bits, "", &[]);
        let cert_path = sign(
            &ca,
            &user,
            &[
                "-I",
                "alice@corp",
                "-n",
                "alice,bob",
                "-V",
                "+1d",
                "-z",
                "42",
                "-O",
                "force-command=ls -l",
            ],
        );
        let cert = Certificate::from_file(&cert_path).unwrap();
        let private = PrivateKey::from_file(&user, None).unwrap();
        assert_eq!(cert.public_key(), &private.public_key());
        assert_eq!(cert.algorithm(), kind.certificate_name());
        assert_eq!(cert.cert_type(), CertType::User);
        assert_eq!(cert.key_id(), "alice@corp");
        assert_eq!(cert.serial(), 42);
        assert_eq!(cert.principals(), ["alice", "bob"]);
        assert_eq!(cert.ca_key(), &ca_public);
        assert_eq!(cert.ca_signature_algorithm(), "ssh-ed25519");
        assert!(cert.is_valid_at(now()));
        assert!(!cert.is_valid_at(now() + 2 * 86400));
        assert!(!cert.is_valid_at(now() - 3600));
        let day = cert.valid_before() - cert.valid_after();
        assert!((86400..86400 + 300).contains(&day), "{day}");
        assert_eq!(
            cert.critical_options(),
            [("force-command".to_owned(), "ls -l".to_owned())]
        );
        let extensions: Vec<&str> = cert.extensions().iter().map(|(k, _)| k.as_str()).collect();
        assert!(extensions.contains(&"permit-pty"), "{extensions:?}");
        assert!(cert.extensions().iter().all(|(_, v)| v.is_empty()));
        assert_eq!(cert.comment(), "sekura-test");

        // The line and blob round-trip; the blob is what USERAUTH_REQUEST carries.
        let line = std::fs::read_to_string(&cert_path).unwrap();
        assert_eq!(format!("{}\n", cert.to_pub_line()), line);
        assert_eq!(Certificate::from_blob(cert.as_blob()).unwrap(), cert);
        assert_eq!(line.split_whitespace().nth(1).unwrap(), cert.base64());

        // Authentication: sign with the private key and the base algorithm, verify under the
        // certificate algorithm name.
        let pairs = cert.signature_algorithms(true);
        assert_eq!(
            pairs.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            private.public_key().signature_algorithms(true)
        );
        for (cert_alg, sig_alg) in &pairs {
            let sig = private.sign(sig_alg, b"session").unwrap();
            cert.verify(cert_alg, b"session", &sig).unwrap();
            assert!(cert.verify(sig_alg, b"session", &sig).is_err());
        }
        if kind == KeyType::Rsa {
            assert_eq!(
                cert.signature_algorithms(false),
                [
                    ("rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-512"),
                    ("rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-256"),
                ]
            );
        }

        // A certificate is not a plain key, and the reverse.
        assert_eq!(
            PublicKey::from_openssh(&line).unwrap_err().kind(),
            ErrorKind::KeyFormat
        );
        let plain = std::fs::read_to_string(user.with_extension("pub")).unwrap();
        assert_eq!(
            Certificate::from_openssh(&plain).unwrap_err().kind(),
            ErrorKind::KeyFormat
        );
    }
}

#[test]
fn host_certificates_and_other_cas() {
    let dir = TempDir::new("cert-host");
    let host = dir.join("host");
    generate(&host, "ecdsa", Some(256), "", &[]);
    for (ca_type, bits, extra, expected_alg) in [
        ("rsa", Some(2048), vec![], "rsa-sha2-512"),
        (
            "rsa",
            Some(2048),
            vec!["-t", "rsa-sha2-256"],
            "rsa-sha2-256",
        ),
        ("ecdsa", Some(521), vec![], "ecdsa-sha2-nistp521"),
        ("dsa", Some(1024), vec![], "ssh-dss"),
    ] {
        let ca = dir.join(&format!("ca-{ca_type}-{}", extra.len()));
        generate(&ca, ca_type, bits, "", &[]);
        let mut args = vec![
            "-h",
            "-I",
            "host.example.com",
            "-n",
            "host.example.com,10.0.0.1",
        ];
        args.extend(extra.iter());
        let cert = Certificate::from_file(&sign(&ca, &host, &args)).unwrap();
        assert_eq!(cert.cert_type(), CertType::Host);
        assert_eq!(cert.ca_signature_algorithm(), expected_alg);
        assert_eq!(cert.principals(), ["host.example.com", "10.0.0.1"]);
        assert!(cert.extensions().is_empty());
        assert_eq!(cert.valid_after(), 0);
        assert_eq!(cert.valid_before(), u64::MAX);
        assert!(cert.is_valid_at(now()));
        assert_eq!(
            cert.ca_key(),
            &PublicKey::from_file(&ca.with_extension("pub")).unwrap()
        );
        assert!(format!("{cert:?}").contains("host.example.com"));
    }
}

#[test]
fn tampered_certificates_are_refused() {
    let dir = TempDir::new("cert-tamper");
    let ca = dir.join("ca");
    let user = dir.join("user");
    generate(&ca, "ed25519", None, "", &[]);
    generate(&user, "ed25519", None, "", &[]);
    let cert_path = sign(&ca, &user, &["-I", "mallory", "-n", "alice"]);
    let cert = Certificate::from_file(&cert_path).unwrap();
    let blob = cert.as_blob().to_vec();

    // Changing the key id (same length) breaks the CA signature.
    let at = blob.windows(7).position(|w| w == b"mallory").unwrap();
    let mut forged = blob.clone();
    forged[at..at + 7].copy_from_slice(b"root!!!");
    let err = Certificate::from_blob(&forged).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat);
    assert!(err.message().contains("CA signature"), "{err}");

    // Every single-bit flip and every truncation fails, without panicking.
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        assert!(
            Certificate::from_blob(&bad).is_err(),
            "flip at {i} accepted"
        );
        assert_eq!(
            Certificate::from_blob(&blob[..i]).unwrap_err().kind(),
            ErrorKind::KeyFormat
        );
    }
    let mut long = blob.clone();
    long.push(0);
    assert!(Certificate::from_blob(&long).is_err());

    // The line must name the certificate's own type.
    let line = format!(
        "ssh-rsa-cert-v01@openssh.com {}",
        Base64::encode_string(&blob)
    );
    assert_eq!(
        Certificate::from_openssh(&line).unwrap_err().kind(),
        ErrorKind::KeyFormat
    );
    assert_eq!(
        Certificate::from_openssh("").unwrap_err().kind(),
        ErrorKind::KeyFormat
    );
}
