//! Private keys: OpenSSH (`openssh-key-v1`, plain or bcrypt-pbkdf encrypted) and unencrypted PEM
//! (PKCS#1 RSA, SEC1 EC, PKCS#8) files in, SSH signatures out.

use std::fmt;
use std::path::Path;

use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use ssh_key::private::{EcdsaKeypair, KeypairData};
use zeroize::Zeroizing;

use super::public::{PublicKey, PublicMaterial};
use super::signature as sig;
use super::{printable, signature_algorithm, KeyType};
use crate::error::{Error, ErrorKind, Result};

/// A private key for user authentication (and later host keys). The key material is zeroized
/// when the value is dropped: each variant's type clears itself on drop.
pub struct PrivateKey {
    material: PrivateMaterial,
    public: PublicKey,
}

/// The key material, one variant per [`KeyType`].
enum PrivateMaterial {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
}

impl PrivateMaterial {
    fn public(&self) -> Result<PublicMaterial> {
        Ok(match self {
            PrivateMaterial::Ed25519(k) => PublicMaterial::Ed25519(k.verifying_key()),
            PrivateMaterial::EcdsaP256(k) => PublicMaterial::EcdsaP256(*k.verifying_key()),
            PrivateMaterial::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                let public =
                    super::public::rsa_public_key(&k.n().to_be_bytes(), &k.e().to_be_bytes())?;
                PublicMaterial::Rsa(public)
            }
        })
    }

    /// Converts `ssh-key`'s decrypted keypair.
    fn from_keypair(data: &KeypairData) -> Result<Self> {
        match data {
            KeypairData::Ed25519(k) => Ok(PrivateMaterial::Ed25519(
                ed25519_dalek::SigningKey::from(&k.private),
            )),
            KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private, .. }) => {
                p256::ecdsa::SigningKey::from_slice(private.as_slice())
                    .map(PrivateMaterial::EcdsaP256)
                    .map_err(|_| Error::key_format("invalid ecdsa-sha2-nistp256 private key"))
            }
            KeypairData::Rsa(k) => rsa::PrivateKey::try_from(k)
                .map(|k| PrivateMaterial::Rsa(Box::new(k)))
                .map_err(|e| Error::key_format(format!("invalid ssh-rsa private key: {e}"))),
            other => {
                let name = other.algorithm().map(|a| a.as_str().to_string());
                Err(Error::key_format(format!(
                    "unsupported key type {}",
                    printable(name.as_deref().unwrap_or("(unknown)"))
                )))
            }
        }
    }
}

impl PrivateKey {
    /// Pairs material with its public key.
    fn from_material(material: PrivateMaterial) -> Result<Self> {
        let public = PublicKey::from_material(material.public()?);
        Ok(PrivateKey { material, public })
    }

    /// Loads a private key file's contents: OpenSSH format ("BEGIN OPENSSH PRIVATE KEY"),
    /// unencrypted or encrypted with any cipher `ssh-key` supports (aes256-ctr,
    /// aes256-gcm@openssh.com, chacha20-poly1305@openssh.com, ...), or unencrypted PEM:
    /// PKCS#1 RSA, SEC1 EC (P-256) and PKCS#8 (RSA, P-256).
    ///
    /// Errors: [`ErrorKind::PasswordRequired`] for an encrypted key and no passphrase,
    /// [`ErrorKind::BadPassphrase`] for a wrong one, [`ErrorKind::KeyFormat`] otherwise.
    pub fn from_bytes(data: &[u8], passphrase: Option<&[u8]>) -> Result<Self> {
        let text = std::str::from_utf8(data)
            .map_err(|_| Error::key_format("not a private key file (not text)"))?;
        if text.starts_with("PuTTY-User-Key-File-") {
            return Err(Error::key_format(
                "PuTTY private keys are not supported; convert with puttygen -O private-openssh",
            ));
        }
        let Some(start) = text.find("-----BEGIN ") else {
            return Err(Error::key_format("not a private key file (no BEGIN line)"));
        };
        let pem = text.get(start..).unwrap_or_default();
        let label = pem
            .get("-----BEGIN ".len()..)
            .and_then(|rest| rest.split_once("-----"))
            .map(|(label, _)| label)
            .unwrap_or_default();
        match label {
            "OPENSSH PRIVATE KEY" => from_openssh(pem, passphrase),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => from_pem(label, pem),
            "ENCRYPTED PRIVATE KEY" => Err(Error::key_format(
                "encrypted PKCS#8 keys are not supported; convert with ssh-keygen -p -f FILE",
            )),
            "DSA PRIVATE KEY" => Err(Error::key_format("unsupported key type ssh-dss")),
            other => Err(Error::key_format(format!(
                "unsupported private key format \"{}\"",
                printable(other)
            ))),
        }
    }

    /// Loads a private key file; see [`PrivateKey::from_bytes`]. I/O errors are
    /// [`ErrorKind::Io`] with the path in the message.
    pub fn from_file(path: &Path, passphrase: Option<&[u8]>) -> Result<Self> {
        let data = std::fs::read(path).map(Zeroizing::new).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot read key file {}: {e}", path.display()),
            )
        })?;
        PrivateKey::from_bytes(&data, passphrase)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// Signs `data`, returning the SSH signature blob (`string algorithm, string signature`).
    /// `algorithm` must be one of `public_key().signature_algorithms(true)`; RSA uses PKCS#1
    /// v1.5 with the algorithm's hash, ECDSA encodes `mpint r, mpint s`.
    pub fn sign(&self, algorithm: &str, data: &[u8]) -> Result<Vec<u8>> {
        let key_type = self.public.key_type();
        let alg = KeyType::from_name(key_type)
            .and_then(|t| signature_algorithm(t, algorithm))
            .ok_or_else(|| {
                Error::invalid_arg(format!(
                    "signature algorithm {} cannot be used with a {key_type} key",
                    printable(algorithm)
                ))
            })?;
        let inner = match &self.material {
            PrivateMaterial::Ed25519(k) => k.sign(data).to_bytes().to_vec(),
            PrivateMaterial::EcdsaP256(k) => {
                let prehash = sig::digest(alg.digest, data);
                let s: p256::ecdsa::Signature = k.sign_prehash(&prehash).map_err(|e| {
                    Error::new(ErrorKind::Internal, format!("ECDSA signing failed: {e}"))
                })?;
                let (r, s) = s.split_bytes();
                sig::encode_ecdsa(&r, &s)
            }
            PrivateMaterial::Rsa(k) => {
                let scheme = sig::pkcs1v15(alg.digest).ok_or_else(|| {
                    Error::new(ErrorKind::Internal, "RSA algorithm without a hash")
                })?;
                k.sign(scheme, &sig::digest(alg.digest, data))
                    .map_err(|e| {
                        Error::new(ErrorKind::Internal, format!("RSA signing failed: {e}"))
                    })?
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
            material: PrivateMaterial::Ed25519(signing),
            public,
        }
    }
}

/// Loads an `openssh-key-v1` key, decrypting it if needed.
fn from_openssh(pem: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey> {
    let parsed = ssh_key::PrivateKey::from_openssh(pem)
        .map_err(|e| Error::key_format(format!("malformed OpenSSH private key: {e}")))?;
    let parsed = if parsed.is_encrypted() {
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
    let key = PrivateKey::from_material(PrivateMaterial::from_keypair(parsed.key_data())?)?;
    // The file's public key must be the one the private key derives (OpenSSH checks too).
    let stated = parsed.public_key().to_bytes().unwrap_or_default();
    if key.public.as_blob() != stated.as_slice() {
        return Err(Error::key_format(
            "private key does not match its public key",
        ));
    }
    Ok(key)
}

/// Loads an unencrypted PEM key: PKCS#1 RSA, SEC1 EC or PKCS#8.
fn from_pem(label: &str, pem: &str) -> Result<PrivateKey> {
    use p256::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::key_format(
            "encrypted PEM keys are not supported; convert with ssh-keygen -p -f FILE",
        ));
    }
    let material = match label {
        "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_pem(pem)
            .map(|k| PrivateMaterial::Rsa(Box::new(k)))
            .map_err(|e| Error::key_format(format!("malformed PKCS#1 RSA private key: {e}")))?,
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(pem)
            .map(|k| PrivateMaterial::EcdsaP256(k.into()))
            .map_err(|_| {
                Error::key_format(
                    "malformed or unsupported EC private key (only P-256 is supported)",
                )
            })?,
        _ => {
            if let Ok(k) = rsa::PrivateKey::from_pkcs8_pem(pem) {
                PrivateMaterial::Rsa(Box::new(k))
            } else if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
                PrivateMaterial::EcdsaP256(k.into())
            } else {
                return Err(Error::key_format(
                    "malformed or unsupported PKCS#8 private key (RSA and P-256 are supported)",
                ));
            }
        }
    };
    PrivateKey::from_material(material)
}

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
