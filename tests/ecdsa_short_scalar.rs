//! ECDSA P-256 keys that `ssh-keygen` writes with a 31-byte scalar (an mpint drops leading
//! zero bytes: about one key in 256) load and sign like any other.

use std::path::Path;
use std::process::Command;

use base64ct::{Base64, Encoding};
use sekura::keys::PrivateKey;

/// The SSH string at `*at` in `blob`, moving `*at` past it.
fn read_string<'a>(blob: &'a [u8], at: &mut usize) -> &'a [u8] {
    let n = u32::from_be_bytes(blob[*at..*at + 4].try_into().unwrap()) as usize;
    *at += 4 + n;
    &blob[*at - n..*at]
}

/// The length of the private scalar in an unencrypted P-256 `openssh-key-v1` file.
fn scalar_len(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).expect("read key");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let blob = Base64::decode_vec(&body).expect("base64");
    let mut at = 15; // "openssh-key-v1\0"
    for _ in 0..3 {
        read_string(&blob, &mut at); // cipher, kdf, kdf options
    }
    at += 4; // key count
    read_string(&blob, &mut at); // public key
    let private = read_string(&blob, &mut at);
    let mut at = 8; // check integers
    for _ in 0..3 {
        read_string(private, &mut at); // key type, curve, point
    }
    read_string(private, &mut at).len()
}

#[test]
fn a_short_p256_scalar_from_ssh_keygen_loads() {
    let dir = std::env::temp_dir().join(format!("sekura-short-scalar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key");
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries <= 5000, "no short scalar in 5000 keys");
        let _ = std::fs::remove_file(&path);
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
            .arg(&path)
            .status()
            .expect("run ssh-keygen");
        assert!(made.success());
        if scalar_len(&path) < 32 {
            break;
        }
    }
    let key = PrivateKey::from_file(&path, None).expect("a short scalar loads");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    assert_eq!(
        key.public_key().to_openssh().split(' ').nth(1),
        public.split(' ').nth(1),
        "the key is the one ssh-keygen wrote"
    );
    let signature = key.sign("ecdsa-sha2-nistp256", b"data").expect("sign");
    key.public_key()
        .verify("ecdsa-sha2-nistp256", b"data", &signature)
        .expect("the signature verifies");
    std::fs::remove_dir_all(&dir).unwrap();
}
