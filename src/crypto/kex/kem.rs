//! The post-quantum KEM halves of the hybrid methods, behind one small trait: ML-KEM-768
//! (FIPS 203, the ml-kem crate) and Streamlined NTRU Prime 761 (the sntrup761 crate).
//!
//! Every random input is drawn from the caller's [`SecureRandom`] (ML-KEM's d, z and m of
//! FIPS 203; a 32-byte seed for sntrup761's ChaCha20-based generator), so known-answer tests
//! can fix them.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ml_kem::array::Array;
use ml_kem::{Decapsulate, Encapsulate, KeyExport, MlKem768};
use zeroize::{Zeroize, Zeroizing};

use super::KexError;
use crate::crypto::rng::{RandCoreAdapter, SecureRandom};

/// Bytes of every KEM shared secret used here.
pub(super) const SHARED_LEN: usize = 32;

/// A key encapsulation mechanism as the hybrids use it. Lengths are checked by the caller
/// before any of these is called, and again here.
pub(super) trait Kem {
    /// For error messages.
    const NAME: &'static str;
    /// Bytes of an encoded public (encapsulation) key.
    const PUBLIC_LEN: usize;
    /// Bytes of a ciphertext.
    const CIPHERTEXT_LEN: usize;
    /// The private key, wiped on drop by its crate.
    type DecapsulationKey: Send;

    /// A new key pair: the private key and the encoded public key.
    fn generate(rng: &mut dyn SecureRandom) -> (Self::DecapsulationKey, Vec<u8>);

    /// Encapsulates a fresh secret to `public`: (ciphertext, shared secret).
    fn encapsulate(
        rng: &mut dyn SecureRandom,
        public: &[u8],
    ) -> Result<(Vec<u8>, Zeroizing<[u8; SHARED_LEN]>), KexError>;

    /// Recovers the shared secret from `ciphertext`. Both KEMs reject implicitly: a forged
    /// ciphertext gives an unrelated secret, and the exchange hash signature then fails.
    fn decapsulate(
        key: &Self::DecapsulationKey,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<[u8; SHARED_LEN]>, KexError>;
}

fn wrong_length(what: &str, got: usize, want: usize) -> KexError {
    KexError(format!("{what} is {got} bytes, must be {want}"))
}

/// ML-KEM-768.
pub(super) struct MlKem;

impl Kem for MlKem {
    const NAME: &'static str = "ML-KEM-768";
    const PUBLIC_LEN: usize = 1184;
    const CIPHERTEXT_LEN: usize = 1088;
    type DecapsulationKey = ml_kem::DecapsulationKey<MlKem768>;

    fn generate(rng: &mut dyn SecureRandom) -> (Self::DecapsulationKey, Vec<u8>) {
        // FIPS 203 ML-KEM.KeyGen: d then z, 32 bytes each; the crate's seed is d || z.
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill(&mut *seed);
        let mut array = Array::from(*seed);
        let key = Self::DecapsulationKey::from_seed(array);
        array.0.zeroize();
        let public = key.encapsulation_key().to_bytes().to_vec();
        (key, public)
    }

    fn encapsulate(
        rng: &mut dyn SecureRandom,
        public: &[u8],
    ) -> Result<(Vec<u8>, Zeroizing<[u8; SHARED_LEN]>), KexError> {
        let bytes = Array::try_from(public)
            .map_err(|_| wrong_length("ML-KEM-768 public key", public.len(), Self::PUBLIC_LEN))?;
        // FIPS 203 §7.2's encapsulation key check (coefficients reduced modulo q).
        let key = ml_kem::EncapsulationKey::<MlKem768>::new(&bytes)
            .map_err(|_| KexError("ML-KEM-768 public key fails the FIPS 203 check".into()))?;
        let (ciphertext, mut shared) = key.encapsulate_with_rng(&mut RandCoreAdapter(rng));
        let secret = copy_secret(&shared);
        shared.0.zeroize();
        Ok((ciphertext.to_vec(), secret))
    }

    fn decapsulate(
        key: &Self::DecapsulationKey,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<[u8; SHARED_LEN]>, KexError> {
        let mut shared = key.decapsulate_slice(ciphertext).map_err(|_| {
            wrong_length(
                "ML-KEM-768 ciphertext",
                ciphertext.len(),
                Self::CIPHERTEXT_LEN,
            )
        })?;
        let secret = copy_secret(&shared);
        shared.0.zeroize();
        Ok(secret)
    }
}

/// sntrup761.
pub(super) struct Sntrup;

impl Kem for Sntrup {
    const NAME: &'static str = "sntrup761";
    const PUBLIC_LEN: usize = sntrup761::PUBLIC_KEY_SIZE;
    const CIPHERTEXT_LEN: usize = sntrup761::CIPHERTEXT_SIZE;
    type DecapsulationKey = sntrup761::DecapsulationKey;

    fn generate(rng: &mut dyn SecureRandom) -> (Self::DecapsulationKey, Vec<u8>) {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut *seed);
        let (public, key) = sntrup761::generate_key_from_seed(*seed);
        (key, public.as_ref().to_vec())
    }

    fn encapsulate(
        rng: &mut dyn SecureRandom,
        public: &[u8],
    ) -> Result<(Vec<u8>, Zeroizing<[u8; SHARED_LEN]>), KexError> {
        let key = sntrup761::EncapsulationKey::try_from(public)
            .map_err(|_| wrong_length("sntrup761 public key", public.len(), Self::PUBLIC_LEN))?;
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut *seed);
        let (ciphertext, shared) = key.encapsulate_deterministic(*seed);
        Ok((ciphertext.as_ref().to_vec(), copy_secret(shared.as_ref())))
    }

    fn decapsulate(
        key: &Self::DecapsulationKey,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<[u8; SHARED_LEN]>, KexError> {
        let ciphertext = sntrup761::Ciphertext::try_from(ciphertext).map_err(|_| {
            wrong_length(
                "sntrup761 ciphertext",
                ciphertext.len(),
                Self::CIPHERTEXT_LEN,
            )
        })?;
        Ok(copy_secret(key.decapsulate(&ciphertext).as_ref()))
    }
}

/// Copies a 32-byte secret out of a crate type that wipes itself on drop.
fn copy_secret(bytes: &[u8]) -> Zeroizing<[u8; SHARED_LEN]> {
    let mut out = Zeroizing::new([0u8; SHARED_LEN]);
    out.iter_mut().zip(bytes).for_each(|(o, b)| *o = *b);
    out
}
