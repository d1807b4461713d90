//! Seeded randomness. splitmix64 (the generator of `java.util.SplittableRandom`)
//! because the reference workload W is defined on it, so negotium and the peer
//! draw the same numbers from the same seed; it is also fast and needs no crate.

/// splitmix64 generator; `Clone` so a party can fork a stream for a sub-task.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits, as the workload defines it.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (n > 0); Lemire's multiply-shift, bias below 2^-64·n.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `0..n` for spaces larger than u64 (ANAC 2014 has 10^50 outcomes).
    pub fn below_u128(&mut self, n: u128) -> u128 {
        if n <= u64::MAX as u128 {
            return self.below(n as u64) as u128;
        }
        let wide = ((self.next_u64() as u128) << 64) | self.next_u64() as u128;
        wide % n
    }

    /// An independent stream for a sub-component (party `k` of a session, say):
    /// mixing keeps streams of neighbouring seeds apart.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut g = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = g.next_u64();
        SplitMix64::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java_splittable_random() {
        // java.util.SplittableRandom(0).nextLong() == 0xE220A8397B1DCDAF
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn floats_in_unit_interval_and_below_is_bounded() {
        let mut g = SplitMix64::new(7);
        for _ in 0..10_000 {
            let x = g.next_f64();
            assert!((0.0..1.0).contains(&x));
            assert!(g.below(13) < 13);
            assert!(g.below_u128(10u128.pow(30)) < 10u128.pow(30));
        }
    }
}
