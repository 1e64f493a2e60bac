//! Public keys: SSH blobs and `.pub` lines in, blobs, fingerprints and verified signatures out.

use std::fmt;

use base64ct::{Base64, Base64Unpadded, Encoding};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use ssh_key::public::{EcdsaPublicKey, KeyData};

use super::signature as sig;
use super::{printable, signature_algorithm, KeyType, SIGNATURE_ALGORITHMS};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Reader, Writer};

/// Smallest RSA modulus accepted, in bits (OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE).
pub(crate) const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted, in bits (OpenSSH's SSH_RSA_MAXIMUM_MODULUS_SIZE).
pub(crate) const RSA_MAX_BITS: usize = 16384;

/// A public key (host key or user key).
///
/// Two keys are equal when their SSH blobs are: blobs are checked to be canonical when parsed,
/// so equal keys have equal blobs.
#[derive(Clone)]
pub struct PublicKey {
    blob: Vec<u8>,
    material: PublicMaterial,
}

/// The key material, one variant per [`KeyType`].
#[derive(Clone)]
pub(crate) enum PublicMaterial {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::PublicKey),
}

impl PublicMaterial {
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            PublicMaterial::Ed25519(_) => KeyType::Ed25519,
            PublicMaterial::EcdsaP256(_) => KeyType::EcdsaP256,
            PublicMaterial::Rsa(_) => KeyType::Rsa,
        }
    }

    /// The SSH blob (RFC 4253 §6.6, RFC 5656 §3.1).
    fn to_blob(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(self.key_type().name());
        match self {
            PublicMaterial::Ed25519(k) => {
                w.string(k.as_bytes());
            }
            PublicMaterial::EcdsaP256(k) => {
                w.string("nistp256")
                    .string(k.to_sec1_point(false).as_bytes());
            }
            PublicMaterial::Rsa(k) => {
                w.mpint_unsigned(&k.e().to_be_bytes());
                w.mpint_unsigned(&k.n().to_be_bytes());
            }
        }
        w.into_bytes()
    }

    /// Converts `ssh-key`'s parsed key data, checking the key is usable.
    fn from_key_data(data: &KeyData) -> Result<Self> {
        match data {
            KeyData::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(&k.0)
                .map(PublicMaterial::Ed25519)
                .map_err(|_| Error::key_format("invalid ssh-ed25519 public key")),
            KeyData::Ecdsa(EcdsaPublicKey::NistP256(point)) => {
                // OpenSSH accepts only uncompressed points.
                if point.as_bytes().first() != Some(&4) {
                    return Err(Error::key_format(
                        "ecdsa-sha2-nistp256 public key is not an uncompressed point",
                    ));
                }
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point.as_bytes())
                    .map(PublicMaterial::EcdsaP256)
                    .map_err(|_| Error::key_format("invalid ecdsa-sha2-nistp256 public key"))
            }
            KeyData::Rsa(k) => {
                let (Some(e), Some(n)) = (k.e().as_positive_bytes(), k.n().as_positive_bytes())
                else {
                    return Err(Error::key_format("invalid ssh-rsa public key"));
                };
                rsa_public_key(n, e).map(PublicMaterial::Rsa)
            }
            other => Err(Error::key_format(format!(
                "unsupported key type {}",
                printable(other.algorithm().as_str())
            ))),
        }
    }
}

/// An RSA public key from its big-endian modulus and exponent, within OpenSSH's size limits.
pub(crate) fn rsa_public_key(n: &[u8], e: &[u8]) -> Result<rsa::PublicKey> {
    let n = rsa::BoxedUint::from_be_slice_vartime(n);
    let e = rsa::BoxedUint::from_be_slice_vartime(e);
    let bits = n.bit_width_vartime();
    rsa::PublicKey::new_with_size_limits(n, e, RSA_MIN_BITS..=RSA_MAX_BITS).map_err(|err| match err
    {
        rsa::Error::ModulusTooSmall => Error::key_format(format!(
            "ssh-rsa key of {bits} bits is too small (the minimum is {RSA_MIN_BITS})"
        )),
        rsa::Error::ModulusTooLarge => Error::key_format(format!(
            "ssh-rsa key of {bits} bits is too large (the maximum is {RSA_MAX_BITS})"
        )),
        other => Error::key_format(format!("invalid ssh-rsa public key: {other}")),
    })
}

impl PublicKey {
    /// Wraps checked key material, computing its blob.
    pub(crate) fn from_material(material: PublicMaterial) -> Self {
        PublicKey {
            blob: material.to_blob(),
            material,
        }
    }

    /// Parses an SSH wire blob (RFC 4253 §6.6). An unsupported type fails with
    /// [`ErrorKind::KeyFormat`] naming the type; so do malformed or non-canonical blobs and
    /// RSA keys outside 1024 to 16384 bits.
    pub fn from_blob(blob: &[u8]) -> Result<Self> {
        let name = Reader::new(blob)
            .utf8("key type")
            .map_err(|_| Error::key_format("malformed public key blob: no key type"))?;
        if KeyType::from_name(name).is_none() {
            return Err(Error::key_format(format!(
                "unsupported key type {}",
                printable(name)
            )));
        }
        let parsed = ssh_key::PublicKey::from_bytes(blob)
            .map_err(|e| Error::key_format(format!("malformed {name} public key: {e}")))?;
        let key = PublicKey::from_material(PublicMaterial::from_key_data(parsed.key_data())?);
        if key.blob != blob {
            return Err(Error::key_format(format!(
                "non-canonical encoding of {name} public key"
            )));
        }
        Ok(key)
    }

    /// Parses a `type base64 [comment]` line as in `.pub` files (surrounding whitespace and
    /// the comment are ignored).
    pub fn from_openssh(line: &str) -> Result<Self> {
        let mut fields = line.split_whitespace();
        let (Some(type_name), Some(base64)) = (fields.next(), fields.next()) else {
            return Err(Error::key_format(
                "public key line is not 'type base64 [comment]'",
            ));
        };
        if KeyType::from_name(type_name).is_none() {
            return Err(Error::key_format(format!(
                "unsupported key type {}",
                printable(type_name)
            )));
        }
        let parsed = ssh_key::PublicKey::from_openssh(&format!("{type_name} {base64}"))
            .map_err(|e| Error::key_format(format!("malformed {type_name} public key: {e}")))?;
        let blob = parsed
            .to_bytes()
            .map_err(|e| Error::key_format(format!("malformed {type_name} public key: {e}")))?;
        PublicKey::from_blob(&blob)
    }

    /// The SSH wire blob.
    pub fn to_blob(&self) -> Vec<u8> {
        self.blob.clone()
    }

    /// The SSH wire blob, borrowed.
    pub fn as_blob(&self) -> &[u8] {
        &self.blob
    }

    /// Key type name: "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa".
    pub fn key_type(&self) -> &'static str {
        self.material.key_type().name()
    }

    /// SHA256 fingerprint exactly as `ssh-keygen -l` prints it: "SHA256:" + unpadded base64.
    pub fn fingerprint_sha256(&self) -> String {
        format!(
            "SHA256:{}",
            Base64Unpadded::encode_string(&Sha256::digest(&self.blob))
        )
    }

    /// Base64 of the blob, as in known_hosts and `.pub` files.
    pub fn base64(&self) -> String {
        Base64::encode_string(&self.blob)
    }

    /// The `type base64` line of a `.pub` file or known_hosts entry, without comment.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type(), self.base64())
    }

    /// Size of the key in bits, as `ssh-keygen -l` prints it.
    pub fn bits(&self) -> usize {
        match &self.material {
            PublicMaterial::Ed25519(_) | PublicMaterial::EcdsaP256(_) => 256,
            PublicMaterial::Rsa(k) => k.n().bit_width_vartime() as usize,
        }
    }

    /// Signature algorithms this key can verify or make, preferred first: ed25519 ->
    /// ["ssh-ed25519"], ecdsa p256 -> ["ecdsa-sha2-nistp256"], rsa -> ["rsa-sha2-512",
    /// "rsa-sha2-256"], plus "ssh-rsa" (SHA-1, legacy) only if `include_legacy`.
    pub fn signature_algorithms(&self, include_legacy: bool) -> Vec<&'static str> {
        let key_type = self.material.key_type();
        SIGNATURE_ALGORITHMS
            .iter()
            .filter(|a| a.key_type == key_type && (include_legacy || !a.legacy))
            .map(|a| a.name)
            .collect()
    }

    /// Verifies `signature_blob` (`string algorithm, string signature`) over `data` with
    /// `algorithm`. The name inside the blob must equal `algorithm`. Any failure is
    /// [`ErrorKind::HostKeyRejected`] with a message saying what was wrong.
    pub fn verify(&self, algorithm: &str, data: &[u8], signature_blob: &[u8]) -> Result<()> {
        let rejected = |why: &str| {
            Error::new(
                ErrorKind::HostKeyRejected,
                format!(
                    "{} key {}: {why}",
                    self.key_type(),
                    self.fingerprint_sha256()
                ),
            )
        };
        let Some(alg) = signature_algorithm(self.material.key_type(), algorithm) else {
            return Err(rejected(&format!(
                "signature algorithm {} cannot be used with this key",
                printable(algorithm)
            )));
        };
        let (name, inner) =
            sig::decode_blob(signature_blob).map_err(|e| rejected(&format!("signature {e}")))?;
        if name != alg.name {
            return Err(rejected(&format!(
                "signature is {} but {} was expected",
                printable(name),
                alg.name
            )));
        }
        let bad = || rejected(&format!("{} signature is invalid", alg.name));
        match &self.material {
            PublicMaterial::Ed25519(k) => {
                let s = ed25519_dalek::Signature::from_slice(inner).map_err(|_| bad())?;
                k.verify_strict(data, &s).map_err(|_| bad())
            }
            PublicMaterial::EcdsaP256(k) => {
                let (r, s) = sig::decode_ecdsa(inner, 32).map_err(|_| bad())?;
                let r: [u8; 32] = r.try_into().map_err(|_| bad())?;
                let s: [u8; 32] = s.try_into().map_err(|_| bad())?;
                let s = p256::ecdsa::Signature::from_scalars(r, s).map_err(|_| bad())?;
                let prehash = sig::digest(alg.digest, data);
                k.verify_prehash(&prehash, &s).map_err(|_| bad())
            }
            PublicMaterial::Rsa(k) => {
                // Like OpenSSH, accept a signature shorter than the modulus (leading zeros
                // dropped by some signers).
                let padded = sig::left_pad(inner, k.size()).ok_or_else(bad)?;
                let scheme = sig::pkcs1v15(alg.digest).ok_or_else(bad)?;
                k.verify(scheme, &sig::digest(alg.digest, data), &padded)
                    .map_err(|_| bad())
            }
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({} {})",
            self.key_type(),
            self.fingerprint_sha256()
        )
    }
}

impl fmt::Display for PublicKey {
    /// The `type base64` form, as in `.pub` files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_openssh())
    }
}
