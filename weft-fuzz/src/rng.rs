//! A small seeded pseudo-random generator (SplitMix64): every input of a run follows from the
//! run's seed and the input's index alone, so any input can be rebuilt to replay it.

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of input `index` of the run seeded with `seed`.
    pub fn for_input(seed: u64, index: u64) -> Self {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `0` when `n` is `0`.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True once in `n` calls, on average.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n.max(1))
    }

    /// A random boolean.
    pub fn flip(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A length, mostly small, now and then a few thousand.
    pub fn length(&mut self) -> usize {
        if self.one_in(50) {
            self.below(4000)
        } else {
            self.below(12)
        }
    }

    /// An integer drawn mostly from edge values.
    pub fn int(&mut self) -> u64 {
        const EDGES: [u64; 10] = [
            0,
            1,
            250,
            251,
            u16::MAX as u64,
            u16::MAX as u64 + 1,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            i64::MAX as u64,
            u64::MAX,
        ];
        if self.flip() {
            EDGES[self.below(EDGES.len())]
        } else {
            self.next_u64() >> self.below(64)
        }
    }

    /// `length()` random bytes.
    pub fn bytes(&mut self) -> Vec<u8> {
        let len = self.length();
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A string of `length()` characters, now and then beyond ASCII.
    pub fn string(&mut self) -> String {
        let len = self.length();
        let wide = self.one_in(8);
        (0..len)
            .map(|_| {
                if wide {
                    char::from_u32(self.below(0x11_0000) as u32).unwrap_or('é')
                } else {
                    char::from(b' ' + self.below(95) as u8)
                }
            })
            .collect()
    }

    /// A few strings.
    pub fn strings(&mut self) -> Vec<String> {
        let n = self.below(4);
        (0..n).map(|_| self.string()).collect()
    }

    /// `Some` of `make`'s value, or `None`.
    pub fn option<T>(&mut self, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        self.flip().then(|| make(self))
    }
}
