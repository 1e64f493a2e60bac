//! Generating keys and writing them: every type in every format, read back by us, by the
//! real `ssh-keygen` and by `openssl`; files created 0600 atomically, never through a link.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::testutil::{fingerprint, fingerprint_with, openssl, ssh_keygen, TempDir};
use super::{KeyType, PrivateKey, PrivateKeyFormat, PublicKey};
use crate::crypto::rng::OsRandom;
use crate::error::ErrorKind;

const PASSPHRASE: &str = "write passphrase";

fn kind<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
    r.unwrap_err().kind()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The public key `ssh-keygen -y` reads from `path` (or `openssl pkey` for Ed25519 PKCS#8,
/// which this ssh-keygen cannot read).
fn public_read_by_others(path: &Path, key_type: KeyType, passphrase: Option<&str>) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    if key_type == KeyType::Ed25519
        && text.contains("PRIVATE KEY-----\n")
        && !text.contains("OPENSSH")
    {
        let pass = format!("pass:{}", passphrase.unwrap_or(""));
        let der_path = path.with_extension("der");
        openssl(&[
            "pkey",
            "-in",
            path.to_str().unwrap(),
            "-passin",
            &pass,
            "-pubout",
            "-outform",
            "DER",
            "-out",
            der_path.to_str().unwrap(),
        ]);
        let der = std::fs::read(&der_path).unwrap();
        return der[der.len() - 32..].to_vec();
    }
    let out = ssh_keygen(&[
        "-y",
        "-P",
        passphrase.unwrap_or(""),
        "-f",
        path.to_str().unwrap(),
    ]);
    PublicKey::from_openssh(&out).unwrap().to_blob()
}

/// Generates a key of `key_type` and checks it through every format and passphrase.
fn round_trip(key_type: KeyType, bits: Option<usize>) {
    let dir = TempDir::new(&format!("write-{}", key_type.name()));
    let key = PrivateKey::generate(key_type, bits, &mut OsRandom)
        .unwrap()
        .with_comment("sekura@test");
    let public = key.public_key();
    assert_eq!(public.kind(), key_type);
    if let Some(b) = bits.or(key_type.fixed_bits()) {
        assert_eq!(public.bits(), b);
    }
    for alg in public.signature_algorithms(true) {
        let sig = key.sign(alg, b"generated").unwrap();
        public.verify(alg, b"generated", &sig).unwrap();
    }

    let pub_path = dir.join("key.pub");
    public.write_file(&pub_path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&pub_path).unwrap(),
        format!("{}\n", public.to_pub_line())
    );
    assert_eq!(fingerprint(&pub_path), public.fingerprint_sha256());
    assert_eq!(fingerprint_with(&pub_path, "md5"), public.fingerprint_md5());
    assert_eq!(
        PublicKey::from_file(&pub_path).unwrap().comment(),
        "sekura@test"
    );

    for format in [
        PrivateKeyFormat::OpenSsh,
        PrivateKeyFormat::Pem,
        PrivateKeyFormat::Pkcs8,
    ] {
        for passphrase in [None, Some(PASSPHRASE)] {
            let path = dir.join(&format!("{format:?}-{}", passphrase.is_some()));
            let pass = passphrase.map(str::as_bytes);
            let written = key.write_file(&path, format, pass, &mut OsRandom);
            if key_type == KeyType::Ed25519 && format == PrivateKeyFormat::Pem {
                assert_eq!(written.unwrap_err().kind(), ErrorKind::InvalidArg);
                assert!(!path.exists());
                continue;
            }
            written.unwrap();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            let text = std::fs::read_to_string(&path).unwrap();
            match (format, passphrase.is_some()) {
                (PrivateKeyFormat::OpenSsh, true) => {
                    let parsed = ssh_key::PrivateKey::from_openssh(&text).unwrap();
                    assert_eq!(parsed.cipher(), ssh_key::Cipher::Aes256Ctr);
                    assert!(matches!(
                        parsed.kdf(),
                        ssh_key::Kdf::Bcrypt { rounds: 16, .. }
                    ));
                }
                (PrivateKeyFormat::Pem, true) => {
                    assert!(text.contains("DEK-Info: AES-128-CBC,"), "{text}")
                }
                (PrivateKeyFormat::Pkcs8, true) => {
                    assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"))
                }
                (PrivateKeyFormat::Pkcs8, false) => {
                    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"))
                }
                _ => {}
            }
            let loaded = PrivateKey::from_file(&path, pass).unwrap();
            assert_eq!(loaded.public_key(), public, "{}", path.display());
            if format == PrivateKeyFormat::OpenSsh {
                assert_eq!(loaded.comment(), "sekura@test");
            }
            if passphrase.is_some() {
                assert_eq!(
                    kind(PrivateKey::from_file(&path, None)),
                    ErrorKind::PasswordRequired
                );
                assert_eq!(
                    kind(PrivateKey::from_file(&path, Some(b"nope"))),
                    ErrorKind::BadPassphrase
                );
            }
            let theirs = public_read_by_others(&path, key_type, passphrase);
            if key_type == KeyType::Ed25519 && format == PrivateKeyFormat::Pkcs8 {
                assert!(public.as_blob().ends_with(&theirs));
            } else {
                assert_eq!(theirs, public.to_blob(), "{}", path.display());
            }
        }
    }
}

#[test]
fn generated_ed25519_round_trips() {
    round_trip(KeyType::Ed25519, None);
}

#[test]
fn generated_ecdsa_round_trips() {
    round_trip(KeyType::EcdsaP256, None);
    round_trip(KeyType::EcdsaP384, Some(384));
    round_trip(KeyType::EcdsaP521, None);
}

#[test]
fn generated_rsa_round_trips() {
    round_trip(KeyType::Rsa, None);
}

#[test]
fn generated_dsa_round_trips() {
    round_trip(KeyType::Dsa, Some(1024));
}

#[test]
fn rsa_4096_generation() {
    let key = PrivateKey::generate(KeyType::Rsa, Some(4096), &mut OsRandom).unwrap();
    assert_eq!(key.public_key().bits(), 4096);
    let sig = key.sign("rsa-sha2-512", b"m").unwrap();
    key.public_key().verify("rsa-sha2-512", b"m", &sig).unwrap();
}

#[test]
fn generation_arguments_are_checked() {
    let mut rng = OsRandom;
    for (key_type, bits) in [
        (KeyType::Rsa, 1024),
        (KeyType::Rsa, 8200),
        (KeyType::Rsa, 2049),
        (KeyType::Ed25519, 512),
        (KeyType::EcdsaP256, 384),
        (KeyType::Dsa, 2048),
    ] {
        let err = PrivateKey::generate(key_type, Some(bits), &mut rng).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidArg,
            "{key_type:?} {bits}: {err}"
        );
    }
    let key = PrivateKey::generate(KeyType::Ed25519, None, &mut rng).unwrap();
    let err = key
        .encode(PrivateKeyFormat::OpenSsh, Some(b""), &mut rng)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    // Two generated keys differ.
    let other = PrivateKey::generate(KeyType::Ed25519, None, &mut rng).unwrap();
    assert_ne!(key, other);
    assert_eq!(key, key.clone());
}

/// Sets the process umask for the life of the value (the tests of this module that create
/// files do not depend on it).
struct Umask(libc::mode_t);

impl Umask {
    fn set(mask: libc::mode_t) -> Umask {
        // SAFETY: umask(2) cannot fail and only changes the process's file creation mask.
        Umask(unsafe { libc::umask(mask) })
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        // SAFETY: as above; restores the previous mask.
        unsafe { libc::umask(self.0) };
    }
}

#[test]
fn private_key_files_are_0600_atomic_and_never_follow_links() {
    let dir = TempDir::new("write-files");
    let key = PrivateKey::ed25519_from_seed([9; 32]);
    let mut rng = OsRandom;
    {
        let _umask = Umask::set(0);
        // A fresh file, and one replacing a world-readable file.
        let fresh = dir.join("fresh");
        key.write_file(&fresh, PrivateKeyFormat::OpenSsh, None, &mut rng)
            .unwrap();
        assert_eq!(mode(&fresh), 0o600);
        let existing = dir.join("existing");
        std::fs::write(&existing, "old").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o666)).unwrap();
        key.write_file(&existing, PrivateKeyFormat::Pkcs8, None, &mut rng)
            .unwrap();
        assert_eq!(mode(&existing), 0o600);
        assert!(std::fs::read_to_string(&existing)
            .unwrap()
            .contains("BEGIN PRIVATE KEY"));
        let public = dir.join("fresh.pub");
        key.public_key().write_file(&public).unwrap();
        assert_eq!(mode(&public), 0o644);
    }

    // A planted symlink at the target is replaced, its target untouched.
    let victim = dir.join("victim");
    std::fs::write(&victim, "do not overwrite").unwrap();
    let link = dir.join("planted");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    key.write_file(&link, PrivateKeyFormat::OpenSsh, None, &mut rng)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "do not overwrite"
    );
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(PrivateKey::from_file(&link, None).unwrap(), key);

    // No temporary files are left behind, and failures name the path.
    let names: Vec<String> = std::fs::read_dir(dir.join(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    let missing = dir.join("no-such-dir/key");
    let err = key
        .write_file(&missing, PrivateKeyFormat::OpenSsh, None, &mut rng)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("no-such-dir"), "{err}");
    let err = key
        .write_file(&dir.join(""), PrivateKeyFormat::OpenSsh, None, &mut rng)
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Io | ErrorKind::InvalidArg),
        "{err}"
    );
}
