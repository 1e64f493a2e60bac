//! ecdh-sha2-nistp256, -nistp384 and -nistp521 (RFC 5656 §4, hashes SHA-256/384/512 by
//! §6.2.1): public values are uncompressed SEC1 points in SSH strings, and K is the mpint of the
//! shared point's x-coordinate. Written once over elliptic-curve's generic types.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use p256::elliptic_curve::ecdh::EphemeralSecret;
use p256::elliptic_curve::point::PointCompression;
use p256::elliptic_curve::sec1::{FromSec1Point, ModulusSize, ToSec1Point};
use p256::elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytesSize, Generate, PublicKey};
use zeroize::Zeroizing;

use super::{mpint, string, KexError, KeyExchange};
use crate::crypto::rng::{RandCoreAdapter, SecureRandom};
use crate::crypto::KexHash;

/// SEC1's tag for an uncompressed point (RFC 5656 §3.1 requires this form on the wire).
const UNCOMPRESSED: u8 = 0x04;

/// Our ephemeral scalar (zeroized on drop by elliptic-curve) and encoded public point.
struct EcdhExchange<C: CurveArithmetic> {
    curve: &'static str,
    hash: KexHash,
    secret: EphemeralSecret<C>,
    public: Vec<u8>,
}

pub(super) fn start_nistp256(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start::<p256::NistP256>("nistp256", KexHash::Sha256, rng)
}

pub(super) fn start_nistp384(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start::<p384::NistP384>("nistp384", KexHash::Sha384, rng)
}

pub(super) fn start_nistp521(rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange> {
    start::<p521::NistP521>("nistp521", KexHash::Sha512, rng)
}

fn start<C>(curve: &'static str, hash: KexHash, rng: &mut dyn SecureRandom) -> Box<dyn KeyExchange>
where
    C: CurveArithmetic + PointCompression,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let secret = EphemeralSecret::<C>::generate_from_rng(&mut RandCoreAdapter(rng));
    let point = secret.public_key().as_affine().to_sec1_point(false);
    let public = string(point.as_bytes());
    Box::new(EcdhExchange {
        curve,
        hash,
        secret,
        public,
    })
}

impl<C> KeyExchange for EcdhExchange<C>
where
    C: CurveArithmetic + PointCompression,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    fn hash(&self) -> KexHash {
        self.hash
    }

    fn public_encoded(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, KexError> {
        // Same length as ours: 0x04 || x || y.
        let want = self.public.len() - 4;
        if peer_public.len() != want || peer_public.first() != Some(&UNCOMPRESSED) {
            return Err(KexError(format!(
                "{} public value is not an uncompressed point ({} bytes, need {want} starting 04)",
                self.curve,
                peer_public.len()
            )));
        }
        // Decoding checks the point is on the curve and not the identity.
        let peer = PublicKey::<C>::from_sec1_bytes(peer_public).map_err(|_| {
            KexError(format!(
                "{} public value is not a point on the curve",
                self.curve
            ))
        })?;
        let shared = self.secret.diffie_hellman(&peer);
        Ok(mpint(shared.raw_secret_bytes()))
    }
}
