//! A small seeded generator for the search's own choices (architecture sampling), kept apart
//! from libtorch's process-wide generator so that its state can be saved and restored exactly.

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, passes BigCrush, and its state
/// is one number that a checkpoint stores as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    pub state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed ^ 0x5851_f42d_4c95_7f2d,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a uniform float in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Returns a uniform index in `0..n`. Panics when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "cannot draw from an empty range");
        // Multiply-shift: the bias is below 2^-64 * n, far under anything measurable here.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Draws an index from `probs`, which must be non-negative and sum to about 1. The last
    /// index with a positive probability absorbs rounding.
    pub fn categorical(&mut self, probs: &[f64]) -> usize {
        let u = self.next_f64() * probs.iter().sum::<f64>();
        let mut acc = 0.0;
        let mut last = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                last = i;
                acc += p;
                if u < acc {
                    return i;
                }
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_uniform_enough() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            let x = a.below(4);
            assert_eq!(x, b.below(4));
            counts[x] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "counts {counts:?}");
        }
    }

    #[test]
    fn categorical_follows_probabilities_and_skips_zeros() {
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[rng.categorical(&[0.25, 0.0, 0.75])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((7_000..8_000).contains(&counts[0]), "counts {counts:?}");
    }
}
