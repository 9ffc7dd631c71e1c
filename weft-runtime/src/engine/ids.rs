//! Generated workflow ids: time-ordered and unique, whatever engine made them.
//!
//! A start without an id gets `<type>-<ulid>`: a ULID (26 characters of Crockford base32 over
//! 128 bits: 48 bits of milliseconds since the Unix epoch from the engine's clock, then 80
//! bits that are random for the first id of a millisecond and counted up from there). So ids of
//! one type sort by when they were made, two engines (or two stores merged later) do not make
//! the same one, and nothing in an id names the engine that made it: an id no longer encodes
//! the owner epoch, which partitions (issue 16) would make meaningless. Written here rather
//! than taken from a crate: it is forty lines, needs no randomness beyond a seed (taken from
//! the standard library's per-process random hasher keys), and follows the engine's virtual
//! clock in tests.

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The random part's mask: 80 bits.
const RANDOM_MASK: u128 = (1 << 80) - 1;

/// Makes ULIDs, monotonic within the process.
#[derive(Debug)]
pub(crate) struct Ulids {
    /// The last ULID made, as a number; the next is greater.
    last: Mutex<u128>,
    /// The state of the generator of random parts (splitmix64).
    seed: Mutex<u64>,
}

impl Default for Ulids {
    fn default() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5745_4654);
        Ulids {
            last: Mutex::new(0),
            seed: Mutex::new(hasher.finish()),
        }
    }
}

impl Ulids {
    /// The next ULID at `now_ms`: greater than every one made before by this generator, even
    /// when the clock stands still or goes back.
    pub fn next(&self, now_ms: u64) -> String {
        let fresh = (u128::from(now_ms & ((1 << 48) - 1)) << 80) | (self.random() & RANDOM_MASK);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        // Within a millisecond already used (or a clock that went back): count up from the last
        // one, so order and uniqueness hold; a random part that runs out spills into the time.
        let next = if fresh > *last {
            fresh
        } else {
            last.wrapping_add(1)
        };
        *last = next;
        encode(next)
    }

    fn random(&self) -> u128 {
        let mut seed = self.seed.lock().unwrap_or_else(|p| p.into_inner());
        let mut draw = || {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (u128::from(draw()) << 64) | u128::from(draw())
    }
}

/// 26 characters of Crockford base32, most significant first (the first carries 3 bits).
fn encode(mut value: u128) -> String {
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    // Every byte is from the ASCII alphabet.
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_stay_ordered_within_a_millisecond_or_a_clock_going_back() {
        let ulids = Ulids::default();
        let mut made = Vec::new();
        for now in [5, 5, 5, 4, 9, 9, 1_893_456_000_000, 1_893_456_000_000] {
            made.push(ulids.next(now));
        }
        assert!(made.iter().all(|id| id.len() == 26));
        assert!(made.windows(2).all(|w| w[0] < w[1]), "{made:?}");
        // The time is the first ten characters.
        assert_eq!(&made[0][..10], "0000000005");
        assert_eq!(&made[6][..10], &encode(1_893_456_000_000u128 << 80)[..10]);
    }

    #[test]
    fn two_generators_do_not_make_the_same_ids() {
        let (a, b) = (Ulids::default(), Ulids::default());
        let from_a: std::collections::HashSet<_> = (0..1000).map(|_| a.next(7)).collect();
        assert_eq!(from_a.len(), 1000);
        assert!((0..1000).all(|_| !from_a.contains(&b.next(7))));
    }

    #[test]
    fn the_encoding_is_crockford_base32_of_128_bits() {
        assert_eq!(encode(0), "00000000000000000000000000");
        assert_eq!(encode(u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(encode(32), "00000000000000000000000010");
    }
}
