//! The server side of group exchange: OpenSSH's moduli file (`/etc/ssh/moduli`, see
//! moduli(5)) and the choice of a group for a client's (min, preferred, max) request.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use num_bigint::BigUint;

use super::dh::{DhGroup, GEX_MAX_BITS, GEX_MIN_BITS};
use crate::crypto::rng::SecureRandom;

/// moduli(5) type 2: a safe prime, p = 2q + 1 with q prime.
const TYPE_SAFE: u32 = 2;
/// moduli(5) tests bit 0x01: found composite.
const TESTS_COMPOSITE: u32 = 0x01;
/// The largest size OpenSSH reads (64 Ki bits).
const MAX_FILE_BITS: u32 = 64 * 1024;

/// One usable line of a moduli file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modulus {
    /// Bits of the prime: the file's size field plus one (the field counts bits - 1).
    pub bits: u32,
    group: DhGroup,
}

impl Modulus {
    /// The group this line describes.
    pub fn group(&self) -> &DhGroup {
        &self.group
    }
}

/// Parses moduli(5) text: `timestamp type tests trials size generator modulus`, the last two
/// in hex. Skips comments, blank lines and every line OpenSSH would refuse: not a safe prime,
/// untested or marked composite, no trials, a size that does not match the modulus, an even
/// modulus, a generator outside 1 < g < p-1.
pub fn parse_moduli(text: &str) -> Vec<Modulus> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Modulus> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [timestamp, kind, tests, trials, size, generator, modulus] = fields.as_slice() else {
        return None;
    };
    let number = |s: &str| s.parse::<u32>().ok();
    timestamp.parse::<u64>().ok()?;
    let tests = number(tests)?;
    if number(kind)? != TYPE_SAFE
        || tests & TESTS_COMPOSITE != 0
        || tests & !TESTS_COMPOSITE == 0
        || number(trials)? == 0
    {
        return None;
    }
    let bits = number(size)?.checked_add(1)?;
    if bits > MAX_FILE_BITS {
        return None;
    }
    let p = BigUint::parse_bytes(modulus.as_bytes(), 16)?;
    let g = BigUint::parse_bytes(generator.as_bytes(), 16)?;
    let one = BigUint::from(1u32);
    if p.bits() != u64::from(bits) || !p.bit(0) || g <= one || g >= &p - &one {
        return None;
    }
    Some(Modulus {
        bits,
        group: DhGroup::trusted(p, g),
    })
}

/// The size OpenSSH's choose_dh would pick: an exact match for `preferred`, else the smallest
/// size above it, else the largest below; only sizes within [min, max] after clamping both to
/// 2048..=8192 bits (never a group below SECURITY.md's floor, whatever the client asks).
fn best_size(moduli: &[Modulus], min: u32, preferred: u32, max: u32) -> Option<u32> {
    let min = min.max(GEX_MIN_BITS);
    let max = max.min(GEX_MAX_BITS);
    if min > max {
        return None;
    }
    let want = preferred.clamp(min, max);
    moduli
        .iter()
        .map(|m| m.bits)
        .filter(|bits| (min..=max).contains(bits))
        .reduce(|best, size| {
            let closer_above = size > want && size < best;
            let larger_below = best < want && size > best;
            if best != want && (size == want || closer_above || larger_below) {
                size
            } else {
                best
            }
        })
}

/// Picks a group for a client's KEX_DH_GEX_REQUEST: the first modulus of the best size (see
/// [`choose_group_random`] to pick among equals as OpenSSH does). None when nothing fits: the
/// server may then fall back to [`DhGroup::group14`] or friends if they are within range.
pub fn choose_group(moduli: &[Modulus], min: u32, preferred: u32, max: u32) -> Option<DhGroup> {
    let size = best_size(moduli, min, preferred, max)?;
    moduli
        .iter()
        .find(|m| m.bits == size)
        .map(|m| m.group.clone())
}

/// [`choose_group`], picking uniformly among the moduli of the best size.
pub fn choose_group_random(
    moduli: &[Modulus],
    min: u32,
    preferred: u32,
    max: u32,
    rng: &mut dyn SecureRandom,
) -> Option<DhGroup> {
    let size = best_size(moduli, min, preferred, max)?;
    let count = moduli.iter().filter(|m| m.bits == size).count();
    let mut draw = [0u8; 8];
    rng.fill(&mut draw);
    // The modulo bias over at most a few hundred lines is negligible, and public anyway.
    let which = usize::try_from(u64::from_le_bytes(draw) % count.max(1) as u64).unwrap_or(0);
    moduli
        .iter()
        .filter(|m| m.bits == size)
        .nth(which)
        .map(|m| m.group.clone())
}
