//! Seedable random numbers that are the same on every platform and backend.
//!
//! - [`Rng`], SplitMix64: a tiny sequential generator for seeded initialisation and
//!   shuffling on the host.
//! - [`philox4x32_10`]: the counter-based Philox4x32-10 of Salmon et al. (Random123),
//!   32-bit integer operations only, with a WGSL twin in `shaders/sim/philox.wgsl`: a
//!   random block is a pure function of (counter, key), so the CPU and the GPU draw the
//!   same bits whatever the batch split, and [`normals4`] turns a block into four
//!   standard normals by Box-Muller.
//! - [`noise_unit`], a keyed hash for per-element noise (SARPROP).

/// The SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform index in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: four random 32-bit words from a 128-bit counter and a
/// 64-bit key (Random123's `philox4x32_R(10, ctr, key)`; its known-answer vectors are
/// the tests).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        }
        let p0 = u64::from(PHILOX_M0) * u64::from(c[0]);
        let p1 = u64::from(PHILOX_M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// [`philox4x32_10`] of `c[0].len()` counters at once, in place, as structure of
/// arrays (`c[w][i]` is word `w` of counter `i`), so that the round loop vectorises
/// (inlined, so it compiles for the caller's instruction set). The slices must have one
/// length.
#[inline(always)]
pub fn philox4x32_10_lanes(c: [&mut [u32]; 4], key: [u32; 2]) {
    let [c0, c1, c2, c3] = c;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        }
        for (((a, b), c), d) in c0
            .iter_mut()
            .zip(c1.iter_mut())
            .zip(c2.iter_mut())
            .zip(c3.iter_mut())
        {
            let p0 = u64::from(PHILOX_M0) * u64::from(*a);
            let p1 = u64::from(PHILOX_M1) * u64::from(*c);
            let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
            let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
            (*a, *b, *c, *d) = (hi1 ^ *b ^ k[0], lo1, hi0 ^ *d ^ k[1], lo0);
        }
    }
}

/// The Box-Muller inputs of two random words: `u1` in (0, 1] (never 0, so its log is
/// finite) and `u2` in [0, 1), each with 24 random bits (exact in f32).
pub fn box_muller_units(a: u32, b: u32) -> (f32, f32) {
    const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
    (((a >> 8) + 1) as f32 * SCALE, (b >> 8) as f32 * SCALE)
}

/// Four standard normals from one Philox block, in f32: Box-Muller on words (0, 1)
/// and (2, 3), `r = sqrt(-2 ln u1)`, `theta = pi (2 u2 - 1)` (in [-pi, pi), where WGSL
/// specifies `cos` and `sin`), cosine branch first. The WGSL twin computes the same
/// formula; GPU `log`, `cos` and `sin` differ from the CPU's in the last bits, so
/// normals agree to a tolerance, the integers exactly.
pub fn normals4(counter: [u32; 4], key: [u32; 2]) -> [f32; 4] {
    let w = philox4x32_10(counter, key);
    let mut out = [0.0; 4];
    for (pair, words) in out.chunks_exact_mut(2).zip(w.chunks_exact(2)) {
        let (u1, u2) = box_muller_units(words[0], words[1]);
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f32::consts::PI * (2.0 * u2 - 1.0);
        pair[0] = radius * angle.cos();
        pair[1] = radius * angle.sin();
    }
    out
}

/// [`normals4`] in f64 from the same integers: the reference's draw.
pub fn normals4_f64(counter: [u32; 4], key: [u32; 2]) -> [f64; 4] {
    let w = philox4x32_10(counter, key);
    let mut out = [0.0; 4];
    for (pair, words) in out.chunks_exact_mut(2).zip(w.chunks_exact(2)) {
        let (u1, u2) = box_muller_units(words[0], words[1]);
        let radius = (-2.0 * f64::from(u1).ln()).sqrt();
        let angle = std::f64::consts::PI * (2.0 * f64::from(u2) - 1.0);
        pair[0] = radius * angle.cos();
        pair[1] = radius * angle.sin();
    }
    out
}

/// A uniform number in [0, 1) from a key and an index, with no state: the noise of
/// element `index` in a kernel that runs one thread per element (SARPROP's step
/// noise). Chris Wellons' `lowbias32` mixer, twice; 32-bit integer operations only,
/// so the WGSL twin (`noise_unit` in `shaders/nn/optimizer.wgsl`) gives the same bits.
pub fn noise_unit(key: u32, index: u32) -> f32 {
    (lowbias32(lowbias32(key) ^ index) >> 8) as f32 / (1u32 << 24) as f32
}

fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's `kat_vectors` for philox4x32 with 10 rounds.
    #[test]
    fn philox_matches_the_published_known_answers() {
        for (counter, key, want) in [
            (
                [0; 4],
                [0; 2],
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ] {
            assert_eq!(philox4x32_10(counter, key), want);
        }
    }

    #[test]
    fn philox_normals_have_unit_moments() {
        let n = 1 << 15;
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for i in 0..n {
            for z in normals4([i, 0, 3, 9], [1, 2]) {
                sum += f64::from(z);
                sq += f64::from(z) * f64::from(z);
            }
        }
        let count = f64::from(4 * n);
        let (mean, var) = (sum / count, sq / count - (sum / count).powi(2));
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let f32s = normals4([5, 6, 7, 8], [9, 10]);
        let f64s = normals4_f64([5, 6, 7, 8], [9, 10]);
        for (a, b) in f32s.iter().zip(f64s) {
            assert!((f64::from(*a) - b).abs() < 1e-5 * b.abs().max(1.0));
        }
    }

    #[test]
    fn noise_is_uniform_and_keyed() {
        let n = 1 << 16;
        let mean = (0..n).map(|i| noise_unit(7, i) as f64).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&noise_unit(7, i))));
        let same = (0..1000)
            .filter(|&i| noise_unit(7, i) == noise_unit(8, i))
            .count();
        assert!(same < 5, "{same} equal draws under different keys");
    }
}
