//! Conversions between `ssh-key`'s parsed key types and Sekura's key material, and the DSA
//! constructors that pin down OpenSSH's one DSA size (1024-bit p, 160-bit q).

use rsa::BoxedUint;
use ssh_key::private::{DsaKeypair, EcdsaKeypair, Ed25519Keypair, KeypairData, RsaKeypair};
use ssh_key::public::{EcdsaPublicKey, KeyData};

use super::private::PrivateMaterial;
use super::public::{rsa_public_key, PublicMaterial};
use super::signature::strip_zeros;
use super::{printable, KeyType};
use crate::error::{Error, Result};

/// Bits of an ssh-dss key's prime p (OpenSSH's SSH_DSA_BITS).
pub(crate) const DSA_P_BITS: u32 = 1024;
/// Bits of an ssh-dss key's subgroup order q.
pub(crate) const DSA_Q_BITS: u32 = 160;

/// Bit length of an unsigned big-endian magnitude.
fn bit_len(magnitude: &[u8]) -> u32 {
    let m = strip_zeros(magnitude);
    match m.first() {
        None => 0,
        Some(&top) => {
            let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
            len.saturating_mul(8).saturating_sub(top.leading_zeros())
        }
    }
}

/// An unsigned magnitude as a `BoxedUint` of exactly `bits` precision, or None if longer.
fn uint(magnitude: &[u8], bits: u32) -> Option<BoxedUint> {
    let m = strip_zeros(magnitude);
    if bit_len(m) > bits {
        return None;
    }
    BoxedUint::from_be_slice(m, bits).ok()
}

/// An ssh-dss public key from its big-endian p, q, g and y. Only 1024-bit p with 160-bit q
/// is accepted (what OpenSSH generates and accepts); g and y are checked to be in the group.
pub(crate) fn dsa_public_key(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Result<dsa::VerifyingKey> {
    check_dsa_size(p, q)?;
    let invalid = || Error::key_format("invalid ssh-dss public key");
    let (Some(p), Some(q), Some(g), Some(y)) = (
        uint(p, DSA_P_BITS),
        uint(q, DSA_Q_BITS),
        uint(g, DSA_P_BITS),
        uint(y, DSA_P_BITS),
    ) else {
        return Err(invalid());
    };
    let components = dsa::Components::from_components(p, q, g).map_err(|_| invalid())?;
    dsa::VerifyingKey::from_components(components, y).map_err(|_| invalid())
}

/// Refuses DSA domain parameters other than ssh-dss's 1024-bit p with 160-bit q.
pub(crate) fn check_dsa_size(p: &[u8], q: &[u8]) -> Result<()> {
    let (p_bits, q_bits) = (bit_len(p), bit_len(q));
    if p_bits != DSA_P_BITS || q_bits != DSA_Q_BITS {
        return Err(Error::key_format(format!(
            "ssh-dss key with {p_bits}-bit p and {q_bits}-bit q is not supported (only \
             {DSA_P_BITS}-bit p with {DSA_Q_BITS}-bit q)"
        )));
    }
    Ok(())
}

/// An ssh-dss private key from its public half and x.
pub(crate) fn dsa_signing_key(public: dsa::VerifyingKey, x: &[u8]) -> Result<dsa::SigningKey> {
    let x = uint(x, DSA_Q_BITS).ok_or_else(|| Error::key_format("invalid ssh-dss private key"))?;
    dsa::SigningKey::from_components(public, x)
        .map_err(|_| Error::key_format("invalid ssh-dss private key"))
}

/// An ssh-dss signature from its 20-byte r and s; None if either is zero.
pub(crate) fn dsa_signature(r: &[u8], s: &[u8]) -> Option<dsa::Signature> {
    dsa::Signature::from_components(uint(r, DSA_Q_BITS)?, uint(s, DSA_Q_BITS)?)
}

/// The big-endian magnitude of an `ssh-key` mpint, refusing negative values.
fn positive<'a>(m: &'a ssh_key::Mpint, what: &str) -> Result<&'a [u8]> {
    m.as_positive_bytes()
        .ok_or_else(|| Error::key_format(format!("invalid {what}: negative number")))
}

/// Converts `ssh-key`'s parsed public key data, checking the key is usable.
pub(crate) fn public_material(data: &KeyData) -> Result<PublicMaterial> {
    /// OpenSSH accepts only uncompressed points.
    fn point(bytes: &[u8], name: &str) -> Result<()> {
        if bytes.first() == Some(&4) {
            Ok(())
        } else {
            Err(Error::key_format(format!(
                "{name} public key is not an uncompressed point"
            )))
        }
    }
    match data {
        KeyData::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(&k.0)
            .map(PublicMaterial::Ed25519)
            .map_err(|_| Error::key_format("invalid ssh-ed25519 public key")),
        KeyData::Ecdsa(EcdsaPublicKey::NistP256(p)) => {
            point(p.as_bytes(), "ecdsa-sha2-nistp256")?;
            p256::ecdsa::VerifyingKey::from_sec1_bytes(p.as_bytes())
                .map(PublicMaterial::EcdsaP256)
                .map_err(|_| Error::key_format("invalid ecdsa-sha2-nistp256 public key"))
        }
        KeyData::Ecdsa(EcdsaPublicKey::NistP384(p)) => {
            point(p.as_bytes(), "ecdsa-sha2-nistp384")?;
            p384::ecdsa::VerifyingKey::from_sec1_bytes(p.as_bytes())
                .map(PublicMaterial::EcdsaP384)
                .map_err(|_| Error::key_format("invalid ecdsa-sha2-nistp384 public key"))
        }
        KeyData::Ecdsa(EcdsaPublicKey::NistP521(p)) => {
            point(p.as_bytes(), "ecdsa-sha2-nistp521")?;
            p521::ecdsa::VerifyingKey::from_sec1_bytes(p.as_bytes())
                .map(PublicMaterial::EcdsaP521)
                .map_err(|_| Error::key_format("invalid ecdsa-sha2-nistp521 public key"))
        }
        KeyData::Rsa(k) => {
            let e = positive(k.e(), "ssh-rsa public key")?;
            let n = positive(k.n(), "ssh-rsa public key")?;
            rsa_public_key(n, e).map(PublicMaterial::Rsa)
        }
        KeyData::Dsa(k) => {
            let what = "ssh-dss public key";
            dsa_public_key(
                positive(k.p(), what)?,
                positive(k.q(), what)?,
                positive(k.g(), what)?,
                positive(k.y(), what)?,
            )
            .map(|k| PublicMaterial::Dsa(Box::new(k)))
        }
        other => Err(Error::key_format(format!(
            "unsupported key type {}",
            printable(other.algorithm().as_str())
        ))),
    }
}

/// Converts `ssh-key`'s decrypted keypair.
pub(crate) fn private_material(data: &KeypairData) -> Result<PrivateMaterial> {
    let invalid = |t: KeyType| Error::key_format(format!("invalid {} private key", t.name()));
    match data {
        KeypairData::Ed25519(k) => Ok(PrivateMaterial::Ed25519(ed25519_dalek::SigningKey::from(
            &k.private,
        ))),
        KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private, .. }) => {
            p256::ecdsa::SigningKey::from_slice(private.as_slice())
                .map(PrivateMaterial::EcdsaP256)
                .map_err(|_| invalid(KeyType::EcdsaP256))
        }
        KeypairData::Ecdsa(EcdsaKeypair::NistP384 { private, .. }) => {
            p384::ecdsa::SigningKey::from_slice(private.as_slice())
                .map(PrivateMaterial::EcdsaP384)
                .map_err(|_| invalid(KeyType::EcdsaP384))
        }
        KeypairData::Ecdsa(EcdsaKeypair::NistP521 { private, .. }) => {
            p521::ecdsa::SigningKey::from_slice(private.as_slice())
                .map(PrivateMaterial::EcdsaP521)
                .map_err(|_| invalid(KeyType::EcdsaP521))
        }
        KeypairData::Rsa(k) => rsa::PrivateKey::try_from(k)
            .map(|k| PrivateMaterial::Rsa(Box::new(k)))
            .map_err(|e| Error::key_format(format!("invalid ssh-rsa private key: {e}"))),
        KeypairData::Dsa(k) => {
            let PublicMaterial::Dsa(public) = public_material(&KeyData::Dsa(k.public().clone()))?
            else {
                return Err(invalid(KeyType::Dsa));
            };
            let x = positive(k.private().as_mpint(), "ssh-dss private key")?;
            dsa_signing_key(*public, x).map(|k| PrivateMaterial::Dsa(Box::new(k)))
        }
        other => {
            let name = other.algorithm().map(|a| a.as_str().to_string());
            Err(Error::key_format(format!(
                "unsupported key type {}",
                printable(name.as_deref().unwrap_or("(unknown)"))
            )))
        }
    }
}

/// `ssh-key`'s keypair for our material, for writing OpenSSH files.
pub(crate) fn keypair_data(material: &PrivateMaterial) -> Result<KeypairData> {
    let failed = |e: ssh_key::Error| Error::key_format(format!("cannot encode private key: {e}"));
    Ok(match material {
        PrivateMaterial::Ed25519(k) => KeypairData::Ed25519(Ed25519Keypair::from(k)),
        PrivateMaterial::EcdsaP256(k) => {
            let secret = p256::SecretKey::from(k);
            KeypairData::Ecdsa(EcdsaKeypair::NistP256 {
                public: secret.public_key().into(),
                private: secret.into(),
            })
        }
        PrivateMaterial::EcdsaP384(k) => {
            let secret = p384::SecretKey::from(k);
            KeypairData::Ecdsa(EcdsaKeypair::NistP384 {
                public: secret.public_key().into(),
                private: secret.into(),
            })
        }
        PrivateMaterial::EcdsaP521(k) => {
            let secret = p521::SecretKey::from(k);
            KeypairData::Ecdsa(EcdsaKeypair::NistP521 {
                public: secret.public_key().into(),
                private: secret.into(),
            })
        }
        PrivateMaterial::Rsa(k) => KeypairData::Rsa(RsaKeypair::try_from(&**k).map_err(failed)?),
        PrivateMaterial::Dsa(k) => KeypairData::Dsa(DsaKeypair::from(&**k)),
    })
}
