//! A probable-prime test for the moduli a group-exchange server sends: trial division by the
//! small primes, then Miller-Rabin to base 2.
//!
//! This is a check against broken or mistyped groups, not against a server that sets out to
//! fool it (a composite can be built to pass any fixed set of bases, and a server choosing the
//! group knows the session keys anyway; the host key signature stops anyone else from
//! substituting one). One round because each is a full-size modular exponentiation: about
//! 5 ms for 2048 bits, 50 ms for 4096, 400 ms for 8192 with num-bigint.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use num_bigint::BigUint;

/// The odd primes below 1024, found at compile time by a sieve.
const SMALL_PRIMES: [u32; 171] = odd_primes_below_1024();

#[allow(clippy::indexing_slicing)]
const fn odd_primes_below_1024() -> [u32; 171] {
    let mut composite = [false; 1024];
    let mut out = [0u32; 171];
    let mut found = 0;
    let mut n = 3;
    while n < 1024 {
        if !composite[n] {
            out[found] = n as u32;
            found += 1;
            let mut m = n * n;
            while m < 1024 {
                composite[m] = true;
                m += n;
            }
        }
        n += 2;
    }
    assert!(found == 171, "wrong count of odd primes below 1024");
    out
}

/// `n` (big-endian, no sign) modulo a small `q`, without allocating.
fn remainder(n: &[u8], q: u32) -> u32 {
    n.iter().fold(0u32, |r, &b| ((r << 8) | u32::from(b)) % q)
}

/// True when `n` (big-endian bytes) is divisible by none of the odd primes below 1024, or is
/// one of them.
pub(super) fn survives_trial_division(n: &[u8]) -> bool {
    let value = BigUint::from_bytes_be(n);
    SMALL_PRIMES
        .iter()
        .all(|&q| remainder(n, q) != 0 || value == BigUint::from(q))
}

/// Miller-Rabin with base 2 for an odd `n` > 3: false means certainly composite.
pub(super) fn miller_rabin_base2(n: &BigUint) -> bool {
    let one = BigUint::from(1u32);
    let two = BigUint::from(2u32);
    if n <= &BigUint::from(3u32) || !n.bit(0) {
        return n == &two || n == &BigUint::from(3u32);
    }
    let n_minus_1 = n - &one;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let mut x = two.modpow(&d, n);
    if x == one || x == n_minus_1 {
        return true;
    }
    for _ in 1..s {
        x = x.modpow(&two, n);
        if x == n_minus_1 {
            return true;
        }
        if x == one {
            return false;
        }
    }
    false
}

/// Trial division, then Miller-Rabin to base 2.
pub(super) fn is_probable_prime(n_bytes: &[u8], n: &BigUint) -> bool {
    survives_trial_division(n_bytes) && miller_rabin_base2(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn prime(n: u64) -> bool {
        let b = BigUint::from(n);
        is_probable_prime(&b.to_bytes_be(), &b)
    }

    #[test]
    fn small_primes_table() {
        assert_eq!(SMALL_PRIMES[..5], [3, 5, 7, 11, 13]);
        assert_eq!(SMALL_PRIMES[170], 1021);
    }

    #[test]
    fn small_numbers_classified() {
        let primes = [2u64, 3, 5, 7, 1021, 1031, 65537, 2_147_483_647];
        for p in primes {
            assert!(prime(p), "{p}");
        }
        // Composites: products of small primes, of large ones, and strong pseudoprimes to
        // base 2 that trial division catches (2047 = 23 * 89, 3277 = 29 * 113).
        for c in [0u64, 1, 4, 9, 1023, 2047, 3277, 1_000_003 * 1_000_033] {
            assert!(!prime(c), "{c}");
        }
    }

    #[test]
    fn remainder_matches_bigint() {
        let n = BigUint::parse_bytes(b"123456789abcdef0123456789abcdef", 16).unwrap();
        for q in [3u32, 7, 1021] {
            let want = (&n % q).to_u32_digits().first().copied().unwrap_or(0);
            assert_eq!(remainder(&n.to_bytes_be(), q), want);
        }
    }
}
