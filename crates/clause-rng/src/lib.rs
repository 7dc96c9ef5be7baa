//! SplitMix64, the project's one seeded generator: dataset splits
//! (clause-data) and initial weights and dropout masks (clause-infer) draw
//! from it.
//!
//! It is small, well mixed, and stable across platforms and crate versions,
//! which a dependency's generator need not be: the same seed gives the same
//! split and the same training run everywhere. candle's CPU generator cannot
//! be seeded at all. Its whole state is one `u64`, which a checkpoint stores.

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 24 bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A uniform index below `n` (`n` > 0); the modulo bias is below 2^-40
    /// for any `n` used here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// Standard normal (Box–Muller).
    pub fn next_normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut rng = SplitMix64::new(5);
        let n = 100_000;
        let uniform: Vec<f32> = (0..n).map(|_| rng.next_f32()).collect();
        assert!(uniform.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = uniform.iter().sum::<f32>() / n as f32;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let normal: Vec<f32> = (0..n).map(|_| rng.next_normal()).collect();
        let mean = normal.iter().sum::<f32>() / n as f32;
        let var = normal.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
    }
}
