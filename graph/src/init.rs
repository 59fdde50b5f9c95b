//! Seeded initializers with Keras's names and defaults.
//!
//! Every parameter draws from its own stream, seeded by the model seed and the parameter's
//! name, so adding a layer never changes the initial values of the others.

use crate::tensor::Tensor;

/// A small, fast, seedable generator (SplitMix64). Deterministic on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// A generator for one named stream of a seed (FNV-1a of the name mixed with the seed).
    pub fn for_name(seed: u64, name: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// The generator's whole state, for checkpoints: [`Rng::from_state`] continues the stream.
    pub fn state(&self) -> u64 {
        self.0
    }

    /// A generator continuing from a [`Rng::state`].
    pub fn from_state(state: u64) -> Self {
        Rng(state)
    }
}

/// How a parameter's initial values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Initializer {
    /// All zeros (Keras's default bias).
    Zeros,
    /// All ones (BatchNormalization's gamma and moving variance).
    Ones,
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))` (Keras's default kernel).
    GlorotUniform,
    /// Normal with standard deviation `sqrt(2 / fan_in)`.
    HeNormal,
    /// Uniform in `[lo, hi)`.
    Uniform(f32, f32),
}

impl Initializer {
    /// Fan-in and fan-out of a kernel shape as Keras computes them: for a conv kernel
    /// `(kh, kw, in, out)` the receptive field times `in` and times `out`.
    pub fn fans(shape: &[usize]) -> (f64, f64) {
        match shape.len() {
            0 => (1.0, 1.0),
            1 => (shape[0] as f64, shape[0] as f64),
            2 => (shape[0] as f64, shape[1] as f64),
            r => {
                let field: usize = shape[..r - 2].iter().product();
                ((field * shape[r - 2]) as f64, (field * shape[r - 1]) as f64)
            }
        }
    }

    /// Draws a tensor of `shape` from the stream `rng`.
    pub fn sample(self, shape: &[usize], rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape.to_vec());
        let (fan_in, fan_out) = Self::fans(shape);
        match self {
            Initializer::Zeros => {}
            Initializer::Ones => t.data.fill(1.0),
            Initializer::GlorotUniform => {
                let limit = (6.0 / (fan_in + fan_out)).sqrt();
                t.data
                    .iter_mut()
                    .for_each(|v| *v = rng.uniform_in(-limit, limit) as f32);
            }
            Initializer::HeNormal => {
                let std = (2.0 / fan_in).sqrt();
                t.data.iter_mut().for_each(|v| *v = (rng.normal() * std) as f32);
            }
            Initializer::Uniform(lo, hi) => {
                t.data
                    .iter_mut()
                    .for_each(|v| *v = rng.uniform_in(lo as f64, hi as f64) as f32);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_limits_follow_keras_fans() {
        assert_eq!(Initializer::fans(&[3, 3, 3, 32]), (27.0, 288.0));
        let t = Initializer::GlorotUniform.sample(&[3, 3, 3, 32], &mut Rng::new(1));
        let limit = (6.0f64 / (27.0 + 288.0)).sqrt() as f32;
        assert!(t.data.iter().all(|v| v.abs() <= limit));
        let mean: f32 = t.data.iter().sum::<f32>() / t.numel() as f32;
        assert!(mean.abs() < 0.02, "mean {mean}");
        let max = t.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.9 * limit);
    }

    #[test]
    fn streams_are_seeded_and_distinct() {
        let a = Rng::for_name(7, "conv2d/kernel").next_u64();
        assert_eq!(a, Rng::for_name(7, "conv2d/kernel").next_u64());
        assert_ne!(a, Rng::for_name(8, "conv2d/kernel").next_u64());
        assert_ne!(a, Rng::for_name(7, "conv2d_1/kernel").next_u64());
    }
}
