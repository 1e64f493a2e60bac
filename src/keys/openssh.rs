//! The `openssh-key-v1` format (PROTOCOL.key), read and written through `ssh-key`.

use ssh_key::{Kdf, LineEnding};
use zeroize::Zeroizing;

use super::{convert, PrivateKey};
use crate::crypto::rng::{RandCoreAdapter, SecureRandom};
use crate::error::{Error, ErrorKind, Result};

/// Most bcrypt-pbkdf rounds accepted when decrypting. ssh-keygen uses 16 (`-a` raises it);
/// each round costs about a millisecond, so a hostile file cannot make loading take more than
/// seconds.
pub(crate) const MAX_BCRYPT_ROUNDS: u32 = 10_000;

/// Longest bcrypt-pbkdf salt accepted (ssh-keygen writes 16 bytes).
const MAX_SALT_LEN: usize = 1024;

/// Loads an armored `openssh-key-v1` key, decrypting it if needed.
pub(crate) fn decode(armored: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey> {
    let padded = super::short_scalar::pad_p256_scalar(armored);
    let parsed = ssh_key::PrivateKey::from_openssh(padded.as_deref().unwrap_or(armored))
        .map_err(|e| Error::key_format(format!("malformed OpenSSH private key: {e}")))?;
    let parsed = if parsed.is_encrypted() {
        check_kdf(parsed.kdf())?;
        let Some(passphrase) = passphrase else {
            return Err(Error::new(
                ErrorKind::PasswordRequired,
                "private key is encrypted: a passphrase is required",
            ));
        };
        parsed.decrypt(passphrase).map_err(|e| match e {
            ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
                Error::key_format(format!("cannot decrypt private key: {e}"))
            }
            _ => Error::new(ErrorKind::BadPassphrase, "wrong passphrase for private key"),
        })?
    } else {
        parsed
    };
    // The file's public key must be the one the private key derives (OpenSSH checks too).
    let stated = parsed.public_key().to_bytes().unwrap_or_default();
    let key = PrivateKey::from_keypair(parsed.key_data(), Some(&stated))?;
    Ok(key.with_comment(parsed.comment().as_str_lossy()))
}

/// Refuses key derivation settings that are malformed or would take unreasonably long.
fn check_kdf(kdf: &Kdf) -> Result<()> {
    match kdf {
        Kdf::Bcrypt { salt, rounds } => {
            if *rounds == 0 || *rounds > MAX_BCRYPT_ROUNDS {
                return Err(Error::key_format(format!(
                    "encrypted private key asks for {rounds} bcrypt-pbkdf rounds (accepted: 1 \
                     to {MAX_BCRYPT_ROUNDS})"
                )));
            }
            if salt.is_empty() || salt.len() > MAX_SALT_LEN {
                return Err(Error::key_format(format!(
                    "encrypted private key has a {}-byte bcrypt-pbkdf salt",
                    salt.len()
                )));
            }
            Ok(())
        }
        _ => Err(Error::key_format(
            "encrypted private key has no supported key derivation function",
        )),
    }
}

/// Encodes `key` as an armored `openssh-key-v1` file, encrypted with bcrypt-pbkdf (16
/// rounds) and aes256-ctr when `passphrase` is given, as ssh-keygen does.
pub(crate) fn encode(
    key: &PrivateKey,
    passphrase: Option<&[u8]>,
    rng: &mut dyn SecureRandom,
) -> Result<Zeroizing<String>> {
    let failed = |e: ssh_key::Error| Error::key_format(format!("cannot encode private key: {e}"));
    let data = convert::keypair_data(key.material())?;
    let mut out = ssh_key::PrivateKey::new(data, key.comment()).map_err(failed)?;
    if let Some(passphrase) = passphrase {
        out = out
            .encrypt(&mut RandCoreAdapter(rng), passphrase)
            .map_err(failed)?;
    }
    out.to_openssh(LineEnding::LF).map_err(failed)
}
