//! The `ssh_pkey` C functions called as Rust functions: every argument NULL, and the round
//! trips a C program makes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::undocumented_unsafe_blocks
)]

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use crate::ffi::*;
use crate::keys::testutil::{generate, ssh_keygen, TempDir};

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Takes a string returned by Sekura, freeing it; panics on NULL with the last error.
fn take(p: *mut c_char) -> String {
    assert!(!p.is_null(), "NULL string: {}", last_error());
    let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    unsafe { sekura_string_free(p) };
    s
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(sekura_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts a NULL result with `code` as the last result.
fn null_with<T>(p: *mut T, code: i32) {
    assert!(p.is_null());
    assert_eq!(sekura_last_result(), code, "{}", last_error());
}

struct Key(*mut ssh_pkey);

impl Key {
    fn new(p: *mut ssh_pkey) -> Key {
        assert!(!p.is_null(), "NULL key: {}", last_error());
        Key(p)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        unsafe { ssh_pkey_free(self.0) };
    }
}

#[test]
fn null_arguments_are_invalid_not_crashes() {
    let inv = SSH_ERR_INVALID_ARG;
    let key = Key::new(unsafe { ssh_pkey_generate(c"ed25519".as_ptr(), 0) });
    let k = key.0;
    let mut sig = null_mut();
    let mut len = 0usize;
    let mut n = 0u64;
    let mut count = 0usize;
    let mut name = null_mut();
    let mut value = null_mut();
    let mut out_key = null_mut();
    unsafe {
        null_with(ssh_pkey_from_file(null(), null()), inv);
        null_with(ssh_pkey_from_memory(null(), 0, null()), inv);
        null_with(ssh_pkey_from_memory(null(), 10, null()), inv);
        null_with(ssh_pkey_from_public_string(null()), inv);
        null_with(ssh_pkey_from_public_file(null()), inv);
        null_with(ssh_pkey_cert_from_file(null()), inv);
        null_with(ssh_pkey_from_blob(null(), 5), inv);
        null_with(ssh_pkey_generate(null(), 0), inv);
        null_with(ssh_pkey_with_certificate(null(), null()), inv);
        null_with(ssh_pkey_with_certificate(k, null()), inv);
        for f in [
            ssh_pkey_get_type,
            ssh_pkey_get_fingerprint,
            ssh_pkey_get_fingerprint_md5,
            ssh_pkey_get_base64,
            ssh_pkey_get_public_string,
            ssh_pkey_get_comment,
            ssh_pkey_cert_get_key_id,
        ] {
            null_with(f(null()), inv);
        }
        null_with(ssh_pkey_get_signature_algorithms(null(), true), inv);
        null_with(ssh_pkey_cert_get_principal(null(), 0), inv);
        assert_eq!(ssh_pkey_get_bits(null()), inv);
        assert!(!ssh_pkey_equal(null(), k));
        assert!(!ssh_pkey_equal(k, null()));
        assert!(!ssh_pkey_has_private(null()));
        assert!(!ssh_pkey_is_certificate(null()));
        assert_eq!(
            ssh_pkey_write_private(null(), c"/tmp/x".as_ptr(), null(), 0),
            inv
        );
        assert_eq!(ssh_pkey_write_private(k, null(), null(), 0), inv);
        assert_eq!(ssh_pkey_write_public(null(), c"/tmp/x".as_ptr()), inv);
        assert_eq!(ssh_pkey_write_public(k, null()), inv);
        assert_eq!(ssh_pkey_export_private(k, null(), 0, null_mut()), inv);
        assert_eq!(ssh_pkey_export_private(null(), null(), 0, &mut name), inv);
        assert_eq!(ssh_pkey_get_blob(null(), &mut sig, &mut len), inv);
        assert_eq!(ssh_pkey_get_blob(k, null_mut(), &mut len), inv);
        assert_eq!(ssh_pkey_get_blob(k, &mut sig, null_mut()), inv);
        let alg = c"ssh-ed25519".as_ptr();
        assert_eq!(
            ssh_pkey_sign(null(), alg, null(), 0, &mut sig, &mut len),
            inv
        );
        assert_eq!(ssh_pkey_sign(k, null(), null(), 0, &mut sig, &mut len), inv);
        assert_eq!(ssh_pkey_sign(k, alg, null(), 3, &mut sig, &mut len), inv);
        assert_eq!(ssh_pkey_sign(k, alg, null(), 0, null_mut(), &mut len), inv);
        assert_eq!(ssh_pkey_sign(k, alg, null(), 0, &mut sig, null_mut()), inv);
        assert_eq!(ssh_pkey_verify(null(), alg, null(), 0, null(), 0), inv);
        assert_eq!(ssh_pkey_verify(k, null(), null(), 0, null(), 0), inv);
        assert_eq!(ssh_pkey_verify(k, alg, null(), 1, null(), 0), inv);
        assert_eq!(ssh_pkey_verify(k, alg, null(), 0, null(), 1), inv);
        assert_eq!(ssh_pkey_cert_get_type(null()), inv);
        assert_eq!(ssh_pkey_cert_get_serial(null(), &mut n), inv);
        assert_eq!(ssh_pkey_cert_get_serial(k, null_mut()), inv);
        assert_eq!(ssh_pkey_cert_get_validity(k, null_mut(), &mut n), inv);
        assert_eq!(ssh_pkey_cert_get_principal_count(null(), &mut count), inv);
        assert_eq!(ssh_pkey_cert_get_option_count(null(), 0, &mut count), inv);
        assert_eq!(
            ssh_pkey_cert_get_option(null(), 0, 0, &mut name, &mut value),
            inv
        );
        assert_eq!(
            ssh_pkey_cert_get_option(k, 0, 0, null_mut(), &mut value),
            inv
        );
        assert_eq!(ssh_pkey_cert_get_ca_key(null(), &mut out_key), inv);
        assert_eq!(ssh_pkey_cert_get_ca_key(k, null_mut()), inv);
        // A plain key is not a certificate.
        assert_eq!(ssh_pkey_cert_get_type(k), inv);
        assert!(last_error().contains("not a certificate"));
        null_with(ssh_pkey_cert_get_key_id(k), inv);
        assert_eq!(ssh_pkey_cert_get_serial(k, &mut n), inv);
        ssh_pkey_free(null_mut());
        sekura_bytes_free(null_mut(), 0);
    }
    // Outputs are untouched on failure.
    assert!(sig.is_null() && name.is_null() && out_key.is_null());
    assert_eq!((len, n, count), (0, 0, 0));
}

#[test]
fn generate_write_load_sign_verify() {
    let dir = TempDir::new("ffi-pkey");
    for (ty, bits, name, expected_bits) in [
        ("ed25519", 0, "ssh-ed25519", 256),
        ("ecdsa", 0, "ecdsa-sha2-nistp256", 256),
        ("ecdsa", 384, "ecdsa-sha2-nistp384", 384),
        ("ecdsa-sha2-nistp521", 0, "ecdsa-sha2-nistp521", 521),
        ("rsa", 0, "ssh-rsa", 2048),
        ("dsa", 1024, "ssh-dss", 1024),
    ] {
        let key = Key::new(unsafe { ssh_pkey_generate(c(ty).as_ptr(), bits) });
        let k = key.0;
        unsafe {
            assert_eq!(take(ssh_pkey_get_type(k)), name);
            assert_eq!(ssh_pkey_get_bits(k), expected_bits);
            assert!(ssh_pkey_has_private(k));
            assert!(!ssh_pkey_is_certificate(k));
            assert!(take(ssh_pkey_get_fingerprint(k)).starts_with("SHA256:"));
            let md5 = take(ssh_pkey_get_fingerprint_md5(k));
            assert!(md5.starts_with("MD5:") && md5.len() == 4 + 47, "{md5}");
            assert_eq!(take(ssh_pkey_get_comment(k)), "");

            // Sign and verify with every algorithm, legacy included.
            let algs = take(ssh_pkey_get_signature_algorithms(k, true));
            for alg in algs.split(',') {
                let alg = c(alg);
                let (mut sig, mut len) = (null_mut(), 0usize);
                let data = b"to be signed";
                assert_eq!(
                    ssh_pkey_sign(
                        k,
                        alg.as_ptr(),
                        data.as_ptr(),
                        data.len(),
                        &mut sig,
                        &mut len
                    ),
                    SSH_OK,
                    "{}",
                    last_error()
                );
                assert_eq!(
                    ssh_pkey_verify(k, alg.as_ptr(), data.as_ptr(), data.len(), sig, len),
                    SSH_OK
                );
                assert_eq!(
                    ssh_pkey_verify(k, alg.as_ptr(), data.as_ptr(), 3, sig, len),
                    SSH_ERR_HOSTKEY_REJECTED
                );
                sekura_bytes_free(sig, len);
            }
            let (mut sig, mut len) = (null_mut(), 0usize);
            assert_eq!(
                ssh_pkey_sign(k, c"nope".as_ptr(), null(), 0, &mut sig, &mut len),
                SSH_ERR_INVALID_ARG
            );

            // The public forms round-trip.
            let line = take(ssh_pkey_get_public_string(k));
            let from_line = Key::new(ssh_pkey_from_public_string(c(&line).as_ptr()));
            assert!(ssh_pkey_equal(k, from_line.0));
            assert!(!ssh_pkey_has_private(from_line.0));
            assert_eq!(
                ssh_pkey_sign(from_line.0, c(name).as_ptr(), null(), 0, &mut sig, &mut len),
                SSH_ERR_INVALID_ARG
            );
            let (mut blob, mut blob_len) = (null_mut(), 0usize);
            assert_eq!(ssh_pkey_get_blob(k, &mut blob, &mut blob_len), SSH_OK);
            let from_blob = Key::new(ssh_pkey_from_blob(blob, blob_len));
            sekura_bytes_free(blob, blob_len);
            assert!(ssh_pkey_equal(k, from_blob.0));
            let pub_path = c(dir.join(&format!("{ty}{bits}.pub")).to_str().unwrap());
            assert_eq!(ssh_pkey_write_public(k, pub_path.as_ptr()), SSH_OK);
            let from_file = Key::new(ssh_pkey_from_public_file(pub_path.as_ptr()));
            assert!(ssh_pkey_equal(k, from_file.0));

            // The private key through every format, with and without passphrase.
            for format in [
                SSH_PKEY_FORMAT_OPENSSH,
                SSH_PKEY_FORMAT_PEM,
                SSH_PKEY_FORMAT_PKCS8,
            ] {
                for pass in [None, Some(c"sekrit words")] {
                    let pass_ptr = pass.map_or(null(), |p| p.as_ptr());
                    let path = c(dir
                        .join(&format!("{ty}{bits}-{format}-{}", pass.is_some()))
                        .to_str()
                        .unwrap());
                    let r = ssh_pkey_write_private(k, path.as_ptr(), pass_ptr, format);
                    if ty == "ed25519" && format == SSH_PKEY_FORMAT_PEM {
                        assert_eq!(r, SSH_ERR_INVALID_ARG);
                        continue;
                    }
                    assert_eq!(r, SSH_OK, "{}", last_error());
                    let loaded = Key::new(ssh_pkey_from_file(path.as_ptr(), pass_ptr));
                    assert!(ssh_pkey_equal(k, loaded.0));
                    assert!(ssh_pkey_has_private(loaded.0));
                    let mut text = null_mut();
                    assert_eq!(
                        ssh_pkey_export_private(k, pass_ptr, format, &mut text),
                        SSH_OK
                    );
                    let text = take(text);
                    let from_memory =
                        Key::new(ssh_pkey_from_memory(text.as_ptr(), text.len(), pass_ptr));
                    assert!(ssh_pkey_equal(k, from_memory.0));
                    if pass.is_some() {
                        null_with(
                            ssh_pkey_from_memory(text.as_ptr(), text.len(), null()),
                            SSH_ERR_PASSWORD_REQUIRED,
                        );
                        null_with(
                            ssh_pkey_from_memory(text.as_ptr(), text.len(), c"wrong".as_ptr()),
                            SSH_ERR_BAD_PASSPHRASE,
                        );
                    }
                }
            }
            assert_eq!(
                ssh_pkey_write_private(k, pub_path.as_ptr(), null(), 7),
                SSH_ERR_INVALID_ARG
            );
            assert_eq!(
                ssh_pkey_write_private(from_line.0, pub_path.as_ptr(), null(), 0),
                SSH_ERR_INVALID_ARG
            );
        }
    }
    unsafe {
        for (ty, bits) in [
            ("ecdsa", 300),
            ("rsa", 1024),
            ("rsa", -1),
            ("dsa", 2048),
            ("x448", 0),
        ] {
            null_with(ssh_pkey_generate(c(ty).as_ptr(), bits), SSH_ERR_INVALID_ARG);
        }
        null_with(
            ssh_pkey_from_memory(b"junk".as_ptr(), 4, null()),
            SSH_ERR_KEY_FORMAT,
        );
        null_with(
            ssh_pkey_from_public_string(c"ssh-ed25519 AAAA".as_ptr()),
            SSH_ERR_KEY_FORMAT,
        );
        null_with(
            ssh_pkey_from_blob(b"\0\0\0\x01x".as_ptr(), 5),
            SSH_ERR_KEY_FORMAT,
        );
        null_with(
            ssh_pkey_from_public_file(c"/nonexistent/k.pub".as_ptr()),
            SSH_ERR_IO,
        );
    }
}

#[test]
fn certificates() {
    let dir = TempDir::new("ffi-cert");
    let ca = dir.join("ca");
    let user = dir.join("user");
    let other = dir.join("other");
    generate(&ca, "ed25519", None, "", &[]);
    generate(&user, "rsa", Some(2048), "", &[]);
    generate(&other, "ed25519", None, "", &[]);
    ssh_keygen(&[
        "-q",
        "-s",
        ca.to_str().unwrap(),
        "-I",
        "key id",
        "-n",
        "alice,bob",
        "-z",
        "7",
        "-O",
        "force-command=uptime",
        user.with_extension("pub").to_str().unwrap(),
    ]);
    let cert_path = c(dir.join("user-cert.pub").to_str().unwrap());
    unsafe {
        let cert = Key::new(ssh_pkey_cert_from_file(cert_path.as_ptr()));
        let cp = cert.0;
        assert!(ssh_pkey_is_certificate(cp));
        assert!(!ssh_pkey_has_private(cp));
        assert_eq!(take(ssh_pkey_get_type(cp)), "ssh-rsa-cert-v01@openssh.com");
        assert_eq!(ssh_pkey_cert_get_type(cp), SSH_PKEY_CERT_USER);
        assert_eq!(take(ssh_pkey_cert_get_key_id(cp)), "key id");
        let mut serial = 0;
        assert_eq!(ssh_pkey_cert_get_serial(cp, &mut serial), SSH_OK);
        assert_eq!(serial, 7);
        let (mut after, mut before) = (1, 1);
        assert_eq!(
            ssh_pkey_cert_get_validity(cp, &mut after, &mut before),
            SSH_OK
        );
        assert_eq!((after, before), (0, u64::MAX));
        let mut count = 0;
        assert_eq!(ssh_pkey_cert_get_principal_count(cp, &mut count), SSH_OK);
        assert_eq!(count, 2);
        assert_eq!(take(ssh_pkey_cert_get_principal(cp, 1)), "bob");
        null_with(ssh_pkey_cert_get_principal(cp, 2), SSH_ERR_INVALID_ARG);
        assert_eq!(
            ssh_pkey_cert_get_option_count(cp, SSH_PKEY_CERT_CRITICAL_OPTIONS, &mut count),
            SSH_OK
        );
        assert_eq!(count, 1);
        let (mut name, mut value) = (null_mut(), null_mut());
        assert_eq!(
            ssh_pkey_cert_get_option(cp, SSH_PKEY_CERT_CRITICAL_OPTIONS, 0, &mut name, &mut value),
            SSH_OK
        );
        assert_eq!(
            (take(name), take(value)),
            ("force-command".to_owned(), "uptime".to_owned())
        );
        assert_eq!(
            ssh_pkey_cert_get_option_count(cp, SSH_PKEY_CERT_EXTENSIONS, &mut count),
            SSH_OK
        );
        assert_eq!(count, 5);
        assert_eq!(
            ssh_pkey_cert_get_option_count(cp, 9, &mut count),
            SSH_ERR_INVALID_ARG
        );
        let mut ca_key = null_mut();
        assert_eq!(ssh_pkey_cert_get_ca_key(cp, &mut ca_key), SSH_OK);
        let ca_key = Key::new(ca_key);
        let ca_file = Key::new(ssh_pkey_from_public_file(
            c(ca.with_extension("pub").to_str().unwrap()).as_ptr(),
        ));
        assert!(ssh_pkey_equal(ca_key.0, ca_file.0));

        // The certificate line and blob round-trip as certificates.
        let line = take(ssh_pkey_get_public_string(cp));
        assert!(line.starts_with("ssh-rsa-cert-v01@openssh.com "));
        let again = Key::new(ssh_pkey_from_public_string(c(&line).as_ptr()));
        assert!(ssh_pkey_is_certificate(again.0));
        let (mut blob, mut len) = (null_mut(), 0usize);
        assert_eq!(ssh_pkey_get_blob(cp, &mut blob, &mut len), SSH_OK);
        let from_blob = Key::new(ssh_pkey_from_blob(blob, len));
        sekura_bytes_free(blob, len);
        assert!(ssh_pkey_is_certificate(from_blob.0));
        assert_eq!(
            take(ssh_pkey_get_signature_algorithms(cp, false)),
            "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com"
        );

        // Pair it with its private key; the wrong key is refused.
        let private = Key::new(ssh_pkey_from_file(
            c(user.to_str().unwrap()).as_ptr(),
            null(),
        ));
        assert!(ssh_pkey_equal(private.0, cp));
        let paired = Key::new(ssh_pkey_with_certificate(private.0, cp));
        assert!(ssh_pkey_has_private(paired.0) && ssh_pkey_is_certificate(paired.0));
        let (mut sig, mut sig_len) = (null_mut(), 0usize);
        assert_eq!(
            ssh_pkey_sign(
                paired.0,
                c"rsa-sha2-256".as_ptr(),
                b"x".as_ptr(),
                1,
                &mut sig,
                &mut sig_len
            ),
            SSH_OK
        );
        assert_eq!(
            ssh_pkey_verify(
                cp,
                c"rsa-sha2-256-cert-v01@openssh.com".as_ptr(),
                b"x".as_ptr(),
                1,
                sig,
                sig_len
            ),
            SSH_OK
        );
        assert_eq!(
            ssh_pkey_verify(cp, c"rsa-sha2-256".as_ptr(), b"x".as_ptr(), 1, sig, sig_len),
            SSH_OK
        );
        assert_eq!(
            ssh_pkey_verify(
                cp,
                c"rsa-sha2-512-cert-v01@openssh.com".as_ptr(),
                b"x".as_ptr(),
                1,
                sig,
                sig_len
            ),
            SSH_ERR_HOSTKEY_REJECTED
        );
        sekura_bytes_free(sig, sig_len);
        let wrong = Key::new(ssh_pkey_from_file(
            c(other.to_str().unwrap()).as_ptr(),
            null(),
        ));
        null_with(ssh_pkey_with_certificate(wrong.0, cp), SSH_ERR_INVALID_ARG);
        null_with(
            ssh_pkey_with_certificate(private.0, private.0),
            SSH_ERR_INVALID_ARG,
        );
        null_with(ssh_pkey_with_certificate(cp, cp), SSH_ERR_INVALID_ARG);

        // A plain key file is not a certificate file.
        let plain = c(user.with_extension("pub").to_str().unwrap());
        null_with(ssh_pkey_cert_from_file(plain.as_ptr()), SSH_ERR_KEY_FORMAT);
    }
}
