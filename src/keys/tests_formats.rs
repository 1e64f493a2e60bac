//! Loading every private key format the real `ssh-keygen` and `openssl` write, plain and
//! encrypted, and the public key formats (.pub, authorized_keys, RFC 4716).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use super::testutil::{
    fingerprint, fingerprint_with, generate, keygen_bits, openssl, ssh_keygen, TempDir,
};
use super::{KeyType, PrivateKey, PublicKey};
use crate::error::ErrorKind;

const PASSPHRASE: &str = "correct horse";

fn kind<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
    r.unwrap_err().kind()
}

/// The public key `ssh-keygen -y` derives from a private key file.
fn keygen_public(path: &Path, passphrase: &str) -> PublicKey {
    let out = ssh_keygen(&["-y", "-P", passphrase, "-f", path.to_str().unwrap()]);
    PublicKey::from_openssh(&out).unwrap()
}

/// Loads `path`, checks the passphrase errors when it is encrypted, signs and verifies.
fn load(path: &Path, passphrase: Option<&str>) -> PrivateKey {
    let key = PrivateKey::from_file(path, passphrase.map(str::as_bytes))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if passphrase.is_some() {
        let err = PrivateKey::from_file(path, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PasswordRequired, "{err}");
        let err = PrivateKey::from_file(path, Some(b"wrong passphrase")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadPassphrase, "{err}");
    }
    let public = key.public_key();
    for alg in public.signature_algorithms(true) {
        let sig = key.sign(alg, b"data").unwrap();
        public.verify(alg, b"data", &sig).unwrap();
    }
    key
}

#[test]
fn every_type_and_format_ssh_keygen_writes() {
    let dir = TempDir::new("formats-keygen");
    let types = [
        ("ed25519", None),
        ("ecdsa", Some(256)),
        ("ecdsa", Some(384)),
        ("ecdsa", Some(521)),
        ("rsa", Some(2048)),
        ("dsa", Some(1024)),
    ];
    for (key_type, bits) in types {
        for format in ["RFC4716", "PEM", "PKCS8"] {
            for passphrase in ["", PASSPHRASE] {
                let name = format!(
                    "{key_type}{}-{format}-{}",
                    bits.unwrap_or(0),
                    passphrase.len()
                );
                let path = dir.join(&name);
                generate(&path, key_type, bits, passphrase, &["-m", format]);
                let key = load(&path, (!passphrase.is_empty()).then_some(passphrase));
                let public = key.public_key();
                assert_eq!(public.fingerprint_sha256(), fingerprint(&path), "{name}");
                assert_eq!(
                    public.fingerprint_md5(),
                    fingerprint_with(&path, "md5"),
                    "{name}"
                );
                assert_eq!(public.bits(), keygen_bits(&path), "{name}");
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("OPENSSH PRIVATE KEY") {
                    assert_eq!(key.comment(), "sekura-test", "{name}");
                }
                let pub_line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
                let from_line = PublicKey::from_openssh(&pub_line).unwrap();
                assert_eq!(from_line, public);
                assert_eq!(from_line.comment(), "sekura-test");
                assert_eq!(
                    PublicKey::from_file(&path.with_extension("pub")).unwrap(),
                    public
                );
            }
        }
    }
}

#[test]
fn rfc4716_public_keys_from_ssh_keygen_e() {
    let dir = TempDir::new("formats-rfc4716");
    for (key_type, bits) in [("ed25519", None), ("ecdsa", Some(384)), ("rsa", Some(1024))] {
        let path = dir.join(key_type);
        generate(&path, key_type, bits, "", &[]);
        let pub_path = path.with_extension("pub");
        let exported = ssh_keygen(&["-e", "-m", "RFC4716", "-f", pub_path.to_str().unwrap()]);
        assert!(
            exported.starts_with("---- BEGIN SSH2 PUBLIC KEY ----"),
            "{exported}"
        );
        let key = PublicKey::from_text(&exported).unwrap();
        assert_eq!(key, PublicKey::from_file(&pub_path).unwrap());
        assert!(
            key.comment().contains("converted by"),
            "{:?}",
            key.comment()
        );
        let exported_path = dir.join(&format!("{key_type}.rfc4716"));
        std::fs::write(&exported_path, &exported).unwrap();
        assert_eq!(PublicKey::from_file(&exported_path).unwrap(), key);
    }
    // Continued header lines and a quoted comment.
    let key = PrivateKey::ed25519_from_seed([3; 32]).public_key();
    let b64 = key.base64();
    let text = format!(
        "---- BEGIN SSH2 PUBLIC KEY ----\nSubject: a very long \\\nsubject\nComment: \"my \
         key\"\n{}\n{}\n---- END SSH2 PUBLIC KEY ----\n",
        &b64[..40],
        &b64[40..]
    );
    let parsed = PublicKey::from_text(&text).unwrap();
    assert_eq!(parsed, key);
    assert_eq!(parsed.comment(), "my key");
    assert_eq!(
        kind(PublicKey::from_text(
            "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n"
        )),
        ErrorKind::KeyFormat
    );
}

#[test]
fn authorized_keys_lines_with_options() {
    let key = PrivateKey::ed25519_from_seed([4; 32]).public_key();
    let b64 = key.base64();
    for (line, options) in [
        (format!("ssh-ed25519 {b64}"), None),
        (format!("ssh-ed25519 {b64} alice@laptop"), None),
        (
            format!("no-pty ssh-ed25519 {b64} alice@laptop"),
            Some("no-pty"),
        ),
        (
            format!("from=\"10.0.0.?,*.example.com\",no-pty ssh-ed25519 {b64} alice@laptop"),
            Some("from=\"10.0.0.?,*.example.com\",no-pty"),
        ),
        (
            format!("command=\"echo \\\"hi there\\\"\",restrict  ssh-ed25519 {b64} alice@laptop"),
            Some("command=\"echo \\\"hi there\\\"\",restrict"),
        ),
    ] {
        let (opts, parsed) = PublicKey::from_authorized_keys_line(&line).unwrap();
        assert_eq!(parsed, key, "{line}");
        assert_eq!(opts.as_deref(), options, "{line}");
        if line.contains("alice") {
            assert_eq!(parsed.comment(), "alice@laptop");
        }
        assert_eq!(PublicKey::from_openssh(&line).unwrap(), key);
    }
    // A comment with spaces is kept whole.
    let parsed = PublicKey::from_openssh(&format!("ssh-ed25519 {b64}  my  work key ")).unwrap();
    assert_eq!(parsed.comment(), "my  work key");
    assert_eq!(
        parsed.to_pub_line(),
        format!("ssh-ed25519 {b64} my  work key")
    );
    for bad in [
        format!("command=\"unterminated ssh-ed25519 {b64}"),
        "no-pty".to_string(),
        "no-pty ssh-ed25519".to_string(),
        format!("no-pty ssh-rsa {b64}"),
    ] {
        assert_eq!(
            kind(PublicKey::from_openssh(&bad)),
            ErrorKind::KeyFormat,
            "{bad}"
        );
    }
}

/// One key made by `openssl`: the command, the passphrase it was encrypted with, the
/// header expected in the file.
struct OpensslKey {
    name: &'static str,
    args: Vec<String>,
    passphrase: Option<&'static str>,
    expect: &'static str,
}

#[test]
fn keys_made_by_openssl_load() {
    let dir = TempDir::new("formats-openssl");
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let pass = "pass:secret-words";
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let keys = vec![
        OpensslKey {
            name: "genpkey-rsa",
            args: s(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &p("genpkey-rsa"),
            ]),
            passphrase: None,
            expect: "BEGIN PRIVATE KEY",
        },
        OpensslKey {
            name: "genpkey-rsa-aes256",
            args: s(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-aes256",
                "-pass",
                pass,
                "-out",
                &p("genpkey-rsa-aes256"),
            ]),
            passphrase: Some("secret-words"),
            expect: "BEGIN ENCRYPTED PRIVATE KEY",
        },
        OpensslKey {
            name: "genrsa-aes256-traditional",
            args: s(&[
                "genrsa",
                "-traditional",
                "-aes256",
                "-passout",
                pass,
                "-out",
                &p("genrsa-aes256-traditional"),
                "2048",
            ]),
            passphrase: Some("secret-words"),
            expect: "DEK-Info: AES-256-CBC",
        },
        OpensslKey {
            name: "genrsa-aes256",
            args: s(&[
                "genrsa",
                "-aes256",
                "-passout",
                pass,
                "-out",
                &p("genrsa-aes256"),
                "2048",
            ]),
            passphrase: Some("secret-words"),
            expect: "BEGIN ENCRYPTED PRIVATE KEY",
        },
        OpensslKey {
            name: "rsa-aes192-traditional",
            args: s(&[
                "rsa",
                "-traditional",
                "-in",
                &p("genpkey-rsa"),
                "-aes192",
                "-passout",
                pass,
                "-out",
                &p("rsa-aes192-traditional"),
            ]),
            passphrase: Some("secret-words"),
            expect: "DEK-Info: AES-192-CBC",
        },
        OpensslKey {
            name: "rsa-des-traditional",
            args: s(&[
                "rsa",
                "-provider",
                "legacy",
                "-provider",
                "default",
                "-traditional",
                "-in",
                &p("genpkey-rsa"),
                "-des",
                "-passout",
                pass,
                "-out",
                &p("rsa-des-traditional"),
            ]),
            passphrase: Some("secret-words"),
            expect: "DEK-Info: DES-CBC",
        },
        OpensslKey {
            name: "ecparam-p384",
            args: s(&[
                "ecparam",
                "-name",
                "secp384r1",
                "-genkey",
                "-out",
                &p("ecparam-p384"),
            ]),
            passphrase: None,
            expect: "BEGIN EC PARAMETERS",
        },
        OpensslKey {
            name: "ec-p384-aes128",
            args: s(&[
                "ec",
                "-in",
                &p("ecparam-p384"),
                "-aes128",
                "-passout",
                pass,
                "-out",
                &p("ec-p384-aes128"),
            ]),
            passphrase: Some("secret-words"),
            expect: "DEK-Info: AES-128-CBC",
        },
        OpensslKey {
            name: "genpkey-p256",
            args: s(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &p("genpkey-p256"),
            ]),
            passphrase: None,
            expect: "BEGIN PRIVATE KEY",
        },
        OpensslKey {
            name: "genpkey-p521-aes256",
            args: s(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-521",
                "-aes256",
                "-pass",
                pass,
                "-out",
                &p("genpkey-p521-aes256"),
            ]),
            passphrase: Some("secret-words"),
            expect: "BEGIN ENCRYPTED PRIVATE KEY",
        },
        OpensslKey {
            name: "ecparam-p521-sec1",
            args: s(&[
                "ecparam",
                "-name",
                "secp521r1",
                "-genkey",
                "-noout",
                "-out",
                &p("ecparam-p521-sec1"),
            ]),
            passphrase: None,
            expect: "BEGIN EC PRIVATE KEY",
        },
        OpensslKey {
            name: "dsaparam",
            args: s(&[
                "genpkey",
                "-genparam",
                "-algorithm",
                "DSA",
                "-pkeyopt",
                "dsa_paramgen_bits:1024",
                "-pkeyopt",
                "dsa_paramgen_q_bits:160",
                "-out",
                &p("dsaparam"),
            ]),
            passphrase: None,
            expect: "",
        },
        OpensslKey {
            name: "gendsa-des3",
            args: s(&[
                "gendsa",
                "-des3",
                "-passout",
                pass,
                "-out",
                &p("gendsa-des3"),
                &p("dsaparam"),
            ]),
            passphrase: Some("secret-words"),
            expect: "BEGIN ENCRYPTED PRIVATE KEY",
        },
        OpensslKey {
            name: "dsa-des3-traditional",
            args: s(&[
                "dsa",
                "-in",
                &p("gendsa-des3"),
                "-passin",
                pass,
                "-des3",
                "-passout",
                pass,
                "-out",
                &p("dsa-des3-traditional"),
            ]),
            passphrase: Some("secret-words"),
            expect: "DEK-Info: DES-EDE3-CBC",
        },
        OpensslKey {
            name: "dsa-plain-traditional",
            args: s(&[
                "dsa",
                "-in",
                &p("gendsa-des3"),
                "-passin",
                pass,
                "-out",
                &p("dsa-plain-traditional"),
            ]),
            passphrase: None,
            expect: "BEGIN DSA PRIVATE KEY",
        },
        OpensslKey {
            name: "pkcs8-scrypt",
            args: s(&[
                "pkcs8",
                "-topk8",
                "-scrypt",
                "-in",
                &p("ecparam-p384"),
                "-passout",
                pass,
                "-out",
                &p("pkcs8-scrypt"),
            ]),
            passphrase: Some("secret-words"),
            expect: "BEGIN ENCRYPTED PRIVATE KEY",
        },
        OpensslKey {
            name: "pkcs8-des3-sha1",
            args: s(&[
                "pkcs8",
                "-topk8",
                "-v2",
                "des3",
                "-v2prf",
                "hmacWithSHA1",
                "-in",
                &p("genpkey-p256"),
                "-passout",
                pass,
                "-out",
                &p("pkcs8-des3-sha1"),
            ]),
            passphrase: Some("secret-words"),
            expect: "BEGIN ENCRYPTED PRIVATE KEY",
        },
    ];
    for k in &keys {
        let args: Vec<&str> = k.args.iter().map(String::as_str).collect();
        openssl(&args);
        let path = dir.join(k.name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(k.expect), "{}: {text}", k.name);
        if k.name == "dsaparam" {
            assert_eq!(
                kind(PrivateKey::from_file(&path, None)),
                ErrorKind::KeyFormat
            );
            continue;
        }
        let key = load(&path, k.passphrase);
        // This ssh-keygen's OpenSSL has DES-CBC only in its legacy provider.
        let expected = if k.name == "rsa-des-traditional" {
            keygen_public(&dir.join("genpkey-rsa"), "")
        } else {
            keygen_public(&path, k.passphrase.unwrap_or(""))
        };
        assert_eq!(key.public_key(), expected, "{}", k.name);
    }

    // Ed25519 in PKCS#8 (RFC 8410), which this ssh-keygen cannot read: compare with openssl.
    for (name, extra) in [
        ("ed25519", vec![]),
        ("ed25519-enc", vec!["-aes256", "-pass", pass]),
    ] {
        let path = p(name);
        let mut args = vec!["genpkey", "-algorithm", "ed25519", "-out", &path];
        args.extend(extra.iter());
        openssl(&args);
        let passphrase = (name == "ed25519-enc").then_some("secret-words");
        let key = load(Path::new(&path), passphrase);
        let der_path = p(&format!("{name}.pub.der"));
        let mut args = vec![
            "pkey", "-in", &path, "-pubout", "-outform", "DER", "-out", &der_path,
        ];
        if passphrase.is_some() {
            args.extend(["-passin", pass]);
        }
        openssl(&args);
        let der = std::fs::read(&der_path).unwrap();
        assert_eq!(key.public_key().kind(), KeyType::Ed25519);
        assert!(key.public_key().as_blob().ends_with(&der[der.len() - 32..]));
    }

    // OpenSSL's default 1024-bit DSA has a 224-bit q, which ssh-dss cannot carry: refused as
    // a format error once decrypted, not as a wrong passphrase.
    openssl(&["dsaparam", "-out", &p("dsaparam224"), "1024"]);
    openssl(&[
        "gendsa",
        "-des3",
        "-passout",
        pass,
        "-out",
        &p("dsa224"),
        &p("dsaparam224"),
    ]);
    let err = PrivateKey::from_file(Path::new(&p("dsa224")), Some(b"secret-words")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat, "{err}");
    assert!(err.message().contains("224-bit q"), "{err}");

    // PBES1 (PKCS#5 v1.5) is refused with a message saying how to convert.
    let path = p("pkcs8-pbes1");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v1",
        "PBE-SHA1-3DES",
        "-in",
        &p("genpkey-p256"),
        "-passout",
        pass,
        "-out",
        &path,
    ]);
    let err = PrivateKey::from_file(Path::new(&path), Some(b"secret-words")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFormat);
    assert!(err.message().contains("PBES1"), "{err}");
}

#[test]
fn crlf_and_surrounding_text_are_accepted() {
    let dir = TempDir::new("formats-crlf");
    for (key_type, format) in [("ed25519", "RFC4716"), ("ecdsa", "PEM"), ("ecdsa", "PKCS8")] {
        let path = dir.join(&format!("{key_type}-{format}"));
        generate(&path, key_type, None, "", &["-m", format]);
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = PrivateKey::from_file(&path, None).unwrap().public_key();
        let crlf = text.replace('\n', "\r\n");
        let key = PrivateKey::from_bytes(crlf.as_bytes(), None).unwrap();
        assert_eq!(key.public_key(), expected, "{key_type} {format} with CRLF");
        let wrapped = format!("Bag Attributes\n    localKeyID: 01\n{text}trailing words\n");
        let key = PrivateKey::from_bytes(wrapped.as_bytes(), None).unwrap();
        assert_eq!(
            key.public_key(),
            expected,
            "{key_type} {format} with text around"
        );
    }
}
