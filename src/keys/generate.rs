//! New keys of every kind, with randomness from the caller's [`SecureRandom`].

use p256::elliptic_curve::Generate as _;
use zeroize::Zeroizing;

use super::private::PrivateMaterial;
use super::{KeyType, PrivateKey};
use crate::crypto::rng::{RandCoreAdapter, SecureRandom};
use crate::error::{Error, Result};

/// Smallest RSA key generated, in bits.
pub(crate) const RSA_MIN_GENERATE_BITS: usize = 2048;
/// Largest RSA key generated, in bits.
pub(crate) const RSA_MAX_GENERATE_BITS: usize = 8192;
/// RSA key size when none is given, in bits.
pub(crate) const RSA_DEFAULT_BITS: usize = 2048;

/// See [`PrivateKey::generate`].
pub(crate) fn generate(
    key_type: KeyType,
    bits: Option<usize>,
    rng: &mut dyn SecureRandom,
) -> Result<PrivateKey> {
    if let (Some(fixed), Some(asked)) = (key_type.fixed_bits(), bits) {
        if fixed != asked {
            return Err(Error::invalid_arg(format!(
                "{} keys have {fixed} bits, not {asked}",
                key_type.name()
            )));
        }
    }
    let material = match key_type {
        KeyType::Ed25519 => {
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill(&mut seed[..]);
            return Ok(PrivateKey::ed25519_from_seed(*seed));
        }
        KeyType::EcdsaP256 => PrivateMaterial::EcdsaP256(p256::ecdsa::SigningKey::from(
            p256::SecretKey::generate_from_rng(&mut RandCoreAdapter(rng)),
        )),
        KeyType::EcdsaP384 => PrivateMaterial::EcdsaP384(p384::ecdsa::SigningKey::from(
            p384::SecretKey::generate_from_rng(&mut RandCoreAdapter(rng)),
        )),
        KeyType::EcdsaP521 => PrivateMaterial::EcdsaP521(p521::ecdsa::SigningKey::from(
            &p521::SecretKey::generate_from_rng(&mut RandCoreAdapter(rng)),
        )),
        KeyType::Rsa => {
            let bits = bits.unwrap_or(RSA_DEFAULT_BITS);
            if !(RSA_MIN_GENERATE_BITS..=RSA_MAX_GENERATE_BITS).contains(&bits) || bits % 8 != 0 {
                return Err(Error::invalid_arg(format!(
                    "RSA keys are generated with {} to {} bits, a multiple of 8 (asked: {bits})",
                    RSA_MIN_GENERATE_BITS, RSA_MAX_GENERATE_BITS
                )));
            }
            let key = rsa::PrivateKey::new(&mut RandCoreAdapter(rng), bits)
                .map_err(|e| Error::invalid_arg(format!("RSA key generation failed: {e}")))?;
            PrivateMaterial::Rsa(Box::new(key))
        }
        KeyType::Dsa => {
            #[allow(deprecated)] // 1024-bit DSA is weak; it is the only size ssh-dss has.
            let size = dsa::KeySize::DSA_1024_160;
            let mut adapter = RandCoreAdapter(rng);
            let Ok(components) =
                dsa::Components::try_generate_from_rng_with_key_size(&mut adapter, size);
            let Ok(key) =
                dsa::SigningKey::try_generate_from_rng_with_components(&mut adapter, components);
            PrivateMaterial::Dsa(Box::new(key))
        }
    };
    PrivateKey::from_material(material)
}
