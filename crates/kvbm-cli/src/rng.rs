//! A small seeded pseudo-random generator (SplitMix64) for the workload
//! generator, so runs are reproducible without an extra dependency.

/// SplitMix64: 64-bit state, passes BigCrush, plenty for workload synthesis.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// An exponentially distributed value with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next_f64()).ln()
    }

    /// A geometric count ≥ 1 with the given mean (≥ 1).
    pub fn geometric(&mut self, mean: f64) -> u64 {
        let p = 1.0 / mean.max(1.0);
        let mut n = 1;
        while self.next_f64() >= p && n < 10_000 {
            n += 1;
        }
        n
    }

    /// Index `i` with probability proportional to `weights[i]`.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.next_f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// The SplitMix64 finaliser: a bijective 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn ranges_and_means() {
        let mut r = Rng::new(3);
        let mut sum = 0.0;
        for _ in 0..20_000 {
            let v = r.range(2, 5);
            assert!((2..=5).contains(&v));
            sum += r.exp(4.0);
        }
        let mean = sum / 20_000.0;
        assert!((mean - 4.0).abs() < 0.2, "mean {mean}");
        assert_eq!(r.weighted(&[0.0, 1.0, 0.0]), 1);
    }
}
