//! Private keys: every file format OpenSSH and OpenSSL write in, SSH signatures out, and
//! files written back.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use zeroize::Zeroizing;

use super::public::{PublicKey, PublicMaterial};
use super::signature as sig;
use super::{convert, file, openssh, pem, printable, signature_algorithm, KeyType};
use crate::crypto::rng::SecureRandom;
use crate::error::{Error, ErrorKind, Result};

/// Largest key file read, in bytes: far above any real key (an OpenSSH RSA-16384 key is
/// about 13 KiB), small enough that a wrong path (a log, /dev/zero) fails fast.
pub(crate) const MAX_KEY_FILE: usize = 1 << 20;

/// A private key for user authentication and host keys. Cloning is cheap and shares the key
/// material, which is zeroized when the last clone is dropped: each variant's type clears
/// itself on drop.
#[derive(Clone)]
pub struct PrivateKey {
    /// Shared by every clone: copies of a key (a server's host keys in each connection's
    /// configuration, a C handle's key given to a transport) never copy the secret, and it
    /// is zeroized once, when the last clone goes.
    material: Arc<PrivateMaterial>,
    public: PublicKey,
}

/// The key material, one variant per [`KeyType`].
pub(crate) enum PrivateMaterial {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
    EcdsaP384(p384::ecdsa::SigningKey),
    EcdsaP521(p521::ecdsa::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
    Dsa(Box<dsa::SigningKey>),
}

impl PrivateMaterial {
    fn public(&self) -> Result<PublicMaterial> {
        Ok(match self {
            PrivateMaterial::Ed25519(k) => PublicMaterial::Ed25519(k.verifying_key()),
            PrivateMaterial::EcdsaP256(k) => PublicMaterial::EcdsaP256(*k.verifying_key()),
            PrivateMaterial::EcdsaP384(k) => PublicMaterial::EcdsaP384(*k.verifying_key()),
            PrivateMaterial::EcdsaP521(k) => PublicMaterial::EcdsaP521(*k.verifying_key()),
            PrivateMaterial::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                let public =
                    super::public::rsa_public_key(&k.n().to_be_bytes(), &k.e().to_be_bytes())?;
                PublicMaterial::Rsa(public)
            }
            PrivateMaterial::Dsa(k) => PublicMaterial::Dsa(Box::new(k.verifying_key().clone())),
        })
    }
}

/// The file formats a private key can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrivateKeyFormat {
    /// `openssh-key-v1` ("BEGIN OPENSSH PRIVATE KEY"), ssh-keygen's default; encrypted with
    /// bcrypt-pbkdf (16 rounds) and aes256-ctr when a passphrase is given. Every key type.
    OpenSsh,
    /// The traditional OpenSSL PEM formats, as `ssh-keygen -m PEM` writes them: PKCS#1 for
    /// RSA, SEC1 for ECDSA, OpenSSL's DSA format; encrypted with a passphrase as OpenSSL's
    /// `Proc-Type: 4,ENCRYPTED` with AES-128-CBC (weak: one MD5 round derives the key).
    /// Not for Ed25519, which has no such format.
    Pem,
    /// PKCS#8 ("BEGIN PRIVATE KEY"), as `ssh-keygen -m PKCS8` and `openssl genpkey` write it;
    /// encrypted with a passphrase as PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC). Every key
    /// type (Ed25519 as RFC 8410).
    Pkcs8,
}

impl PrivateKey {
    /// Pairs material with its public key.
    pub(crate) fn from_material(material: PrivateMaterial) -> Result<Self> {
        let public = PublicKey::from_material(material.public()?);
        Ok(PrivateKey {
            material: Arc::new(material),
            public,
        })
    }

    pub(crate) fn material(&self) -> &PrivateMaterial {
        &self.material
    }

    /// Loads a private key file's contents, in any format OpenSSH or OpenSSL writes:
    /// - OpenSSH ("BEGIN OPENSSH PRIVATE KEY"), plain or encrypted with bcrypt-pbkdf (at most
    ///   10000 rounds) and any cipher `ssh-key` supports (aes256-ctr, aes256-gcm@openssh.com,
    ///   chacha20-poly1305@openssh.com, ...);
    /// - PEM: PKCS#1 RSA, SEC1 EC (P-256, P-384, P-521), OpenSSL DSA, plain or with OpenSSL's
    ///   legacy encryption (`Proc-Type: 4,ENCRYPTED`, AES-128/192/256-CBC, DES-EDE3-CBC,
    ///   DES-CBC);
    /// - PKCS#8, plain or encrypted (PBES2 with PBKDF2 or scrypt; AES-CBC or DES-EDE3-CBC):
    ///   RSA, EC, DSA and Ed25519.
    ///
    /// Errors: [`ErrorKind::PasswordRequired`] for an encrypted key and no passphrase,
    /// [`ErrorKind::BadPassphrase`] for a wrong one, [`ErrorKind::KeyFormat`] otherwise.
    pub fn from_bytes(data: &[u8], passphrase: Option<&[u8]>) -> Result<Self> {
        if data.len() > MAX_KEY_FILE {
            return Err(Error::key_format(format!(
                "not a private key file (larger than {MAX_KEY_FILE} bytes)"
            )));
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| Error::key_format("not a private key file (not text)"))?;
        if text.starts_with("PuTTY-User-Key-File-") {
            return Err(Error::key_format(
                "PuTTY private keys are not supported; convert with puttygen -O private-openssh",
            ));
        }
        let Some((label, start)) = pem::find_private_key(text) else {
            return Err(match pem::first_label(text) {
                Some(other) => Error::key_format(format!(
                    "unsupported private key format \"{}\"",
                    printable(other)
                )),
                None => Error::key_format("not a private key file (no BEGIN line)"),
            });
        };
        let armored = pem::block(text, label, start)?;
        if label == "OPENSSH PRIVATE KEY" {
            openssh::decode(&armored, passphrase)
        } else {
            pem::decode(label, &armored, passphrase)
        }
    }

    /// Loads a private key file; see [`PrivateKey::from_bytes`]. I/O errors are
    /// [`ErrorKind::Io`] with the path in the message.
    pub fn from_file(path: &Path, passphrase: Option<&[u8]>) -> Result<Self> {
        let data = file::read_limited(path)?;
        PrivateKey::from_bytes(&data, passphrase)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// Encodes the key in `format`, encrypted when `passphrase` is given (`rng` supplies
    /// salts, IVs and check values).
    pub fn encode(
        &self,
        format: PrivateKeyFormat,
        passphrase: Option<&[u8]>,
        rng: &mut dyn SecureRandom,
    ) -> Result<Zeroizing<String>> {
        if passphrase.is_some_and(<[u8]>::is_empty) {
            return Err(Error::invalid_arg(
                "the passphrase is empty (pass none to write the key unencrypted)",
            ));
        }
        match format {
            PrivateKeyFormat::OpenSsh => openssh::encode(self, passphrase, rng),
            PrivateKeyFormat::Pem => pem::encode_traditional(self, passphrase, rng),
            PrivateKeyFormat::Pkcs8 => pem::encode_pkcs8(self, passphrase, rng),
        }
    }

    /// Writes the key to `path` in `format` (see [`PrivateKey::encode`]). The file is
    /// created with mode 0600 from its first byte and replaced atomically: a temporary file
    /// in the same directory (O_CREAT|O_EXCL, never through a symlink), written, synced and
    /// renamed over `path`.
    pub fn write_file(
        &self,
        path: &Path,
        format: PrivateKeyFormat,
        passphrase: Option<&[u8]>,
        rng: &mut dyn SecureRandom,
    ) -> Result<()> {
        let text = self.encode(format, passphrase, rng)?;
        file::write_atomic(path, text.as_bytes(), 0o600)
    }

    /// The public half, with the key's comment.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The comment stored with the key (OpenSSH format only; empty otherwise).
    pub fn comment(&self) -> &str {
        self.public.comment()
    }

    /// The same key with `comment`.
    pub fn with_comment(mut self, comment: &str) -> Self {
        self.public = self.public.with_comment(comment);
        self
    }

    /// Signs `data`, returning the SSH signature blob (`string algorithm, string signature`).
    /// `algorithm` must be one of `public_key().signature_algorithms(true)`; RSA uses PKCS#1
    /// v1.5 with the algorithm's hash, ECDSA encodes `mpint r, mpint s`, DSA `r || s`. ECDSA
    /// and DSA use deterministic nonces (RFC 6979).
    pub fn sign(&self, algorithm: &str, data: &[u8]) -> Result<Vec<u8>> {
        let key_type = self.public.kind();
        let alg = signature_algorithm(key_type, algorithm).ok_or_else(|| {
            Error::invalid_arg(format!(
                "signature algorithm {} cannot be used with a {} key",
                printable(algorithm),
                key_type.name()
            ))
        })?;
        let failed = |what: &str| Error::new(ErrorKind::Internal, format!("{what} signing failed"));
        let prehash = sig::digest(alg.digest, data);
        /// ECDSA over the prehash, encoded as `mpint r, mpint s`.
        macro_rules! sign_ecdsa {
            ($curve:ident, $key:expr) => {{
                let s: $curve::ecdsa::Signature =
                    $key.sign_prehash(&prehash).map_err(|_| failed("ECDSA"))?;
                let (r, s) = s.split_bytes();
                sig::encode_ecdsa(&r, &s)
            }};
        }
        let inner = match self.material.as_ref() {
            PrivateMaterial::Ed25519(k) => k.sign(data).to_bytes().to_vec(),
            PrivateMaterial::EcdsaP256(k) => sign_ecdsa!(p256, k),
            PrivateMaterial::EcdsaP384(k) => sign_ecdsa!(p384, k),
            PrivateMaterial::EcdsaP521(k) => sign_ecdsa!(p521, k),
            PrivateMaterial::Rsa(k) => {
                let scheme = sig::pkcs1v15(alg.digest).ok_or_else(|| failed("RSA"))?;
                k.sign(scheme, &prehash).map_err(|_| failed("RSA"))?
            }
            PrivateMaterial::Dsa(k) => {
                let s = k
                    .sign_prehashed_rfc6979::<sha1::Sha1>(&prehash)
                    .map_err(|_| failed("DSA"))?;
                sig::encode_dsa(&s.r().to_be_bytes(), &s.s().to_be_bytes())
                    .ok_or_else(|| failed("DSA"))?
            }
        };
        Ok(sig::encode_blob(alg.name, &inner))
    }

    /// A new Ed25519 key from 32 random bytes (the seed of RFC 8032).
    pub fn ed25519_from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = PublicKey::from_material(PublicMaterial::Ed25519(signing.verifying_key()));
        PrivateKey {
            material: Arc::new(PrivateMaterial::Ed25519(signing)),
            public,
        }
    }

    /// Generates a new key of `key_type` with randomness from `rng`. `bits` is the RSA
    /// modulus size (2048 to 8192, a multiple of 8; default 2048); for the other types it must
    /// be None or the type's size (256, 384 or 521 for ECDSA, 1024 for DSA, 256 for
    /// Ed25519). RSA generation takes seconds, DSA a fraction of one.
    pub fn generate(
        key_type: KeyType,
        bits: Option<usize>,
        rng: &mut dyn SecureRandom,
    ) -> Result<Self> {
        super::generate::generate(key_type, bits, rng)
    }

    /// Converts the material of `ssh-key`'s keypair, checking it against `stated`, the public
    /// key stored beside it (OpenSSH format) when there is one.
    pub(crate) fn from_keypair(
        data: &ssh_key::private::KeypairData,
        stated: Option<&[u8]>,
    ) -> Result<Self> {
        let key = PrivateKey::from_material(convert::private_material(data)?)?;
        if stated.is_some_and(|s| s != key.public.as_blob()) {
            return Err(Error::key_format(
                "private key does not match its public key",
            ));
        }
        Ok(key)
    }
}

impl PartialEq for PrivateKey {
    /// Keys are equal when their public halves are (as in Paramiko).
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({} {})",
            self.public.key_type(),
            self.public.fingerprint_sha256()
        )
    }
}

#[cfg(test)]
mod sharing_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::rng::OsRandom;

    #[test]
    fn clones_share_the_secret_rather_than_copy_it() {
        let key = PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).unwrap();
        let copy = key.clone();
        assert!(Arc::ptr_eq(&key.material, &copy.material));
        assert_eq!(Arc::strong_count(&key.material), 2);
        drop(copy);
        assert_eq!(Arc::strong_count(&key.material), 1);
    }
}
