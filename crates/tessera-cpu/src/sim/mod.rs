//! The CPU simulator: samples from a batch of SCMs, environments in parallel, and the
//! exact parent-set posterior of each environment's target.

mod closed_loop;
mod posterior;

pub use closed_loop::CpuClosedLoop;
pub use posterior::CpuPosterior;

use rayon::prelude::*;

use crate::dispatch::Kernel;
use tessera_tensor::error::Result;
use tessera_tensor::sim::{
    Interventions, MAX_SIM_VARS, ScmBatch, SimBackend, check_samples, validate_sample,
};

/// Environments with fewer samples than this run on the calling thread.
const PARALLEL_MIN_VALUES: usize = 1 << 14;

/// The CPU implementation of [`SimBackend`]: f32 arithmetic, one environment per task.
#[derive(Debug, Clone)]
pub struct CpuSim {
    scm: ScmBatch,
}

impl CpuSim {
    /// A sampler for `scm`.
    pub fn new(scm: &ScmBatch) -> Result<Self> {
        Ok(Self { scm: scm.clone() })
    }
}

/// Rows whose normals are drawn together: enough independent Philox blocks for the
/// loops below to fill SIMD registers.
const CHUNK_ROWS: usize = 64;

/// Philox4x32-10 on `c.len()` independent counters at once, in place, structure of
/// arrays so that the round loop vectorises (the twin of `rng::philox4x32_10`).
#[inline(always)]
fn philox_lanes(c: [&mut [u32]; 4], key: [u32; 2]) {
    let [c0, c1, c2, c3] = c;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [
                k[0].wrapping_add(0x9E37_79B9),
                k[1].wrapping_add(0xBB67_AE85),
            ];
        }
        for (((a, b), c), d) in c0
            .iter_mut()
            .zip(c1.iter_mut())
            .zip(c2.iter_mut())
            .zip(c3.iter_mut())
        {
            let p0 = u64::from(0xD251_1F53u32) * u64::from(*a);
            let p1 = u64::from(0xCD9E_8D57u32) * u64::from(*c);
            let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
            let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
            let next = [hi1 ^ *b ^ k[0], lo1, hi0 ^ *d ^ k[1], lo0];
            (*a, *b, *c, *d) = (next[0], next[1], next[2], next[3]);
        }
    }
}

/// `ln x` for `x` in [2^-24, 1]: exponent and mantissa split, the mantissa reduced
/// to [sqrt(1/2), sqrt(2)), then `2 atanh t` to t^9 (error below 1e-8 relative).
#[inline(always)]
fn ln_unit(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = (bits >> 23) as i32 - 127;
    let m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let (m, e) = if big { (m * 0.5, e + 1) } else { (m, e) };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series =
        t * (2.0 + t2 * (2.0 / 3.0 + t2 * (2.0 / 5.0 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0)))));
    e as f32 * std::f32::consts::LN_2 + series
}

/// `(cos theta, sin theta)` for theta in [-pi, pi]: Taylor series of the half angle
/// (to y^13 and y^14, truncation below 1e-9), then the double-angle formulas.
#[inline(always)]
fn cos_sin(theta: f32) -> (f32, f32) {
    let y = 0.5 * theta;
    let y2 = y * y;
    let s = y
        * (1.0
            + y2 * (-1.0 / 6.0
                + y2 * (1.0 / 120.0
                    + y2 * (-1.0 / 5040.0
                        + y2 * (1.0 / 362_880.0
                            + y2 * (-1.0 / 39_916_800.0 + y2 * (1.0 / 6_227_020_800.0)))))));
    let c = 1.0
        + y2 * (-0.5
            + y2 * (1.0 / 24.0
                + y2 * (-1.0 / 720.0
                    + y2 * (1.0 / 40_320.0
                        + y2 * (-1.0 / 3_628_800.0
                            + y2 * (1.0 / 479_001_600.0 + y2 * (-1.0 / 87_178_291_200.0)))))));
    (c * c - s * s, 2.0 * s * c)
}

/// The normals of `words` (Philox blocks, structure of arrays) into `z`, four per
/// block as `rng::normals4` orders them, with the polynomial `ln`, `cos` and `sin`
/// above (the results agree with `normals4` to about 1e-6 relative).
#[inline(always)]
fn box_muller_lanes(words: [&[u32]; 4], z: &mut [f32]) {
    for (k, out) in z.chunks_exact_mut(4).enumerate() {
        for (pair, (a, b)) in [(words[0][k], words[1][k]), (words[2][k], words[3][k])]
            .into_iter()
            .enumerate()
        {
            let (u1, u2) = tessera_tensor::rng::box_muller_units(a, b);
            let radius = (-2.0 * ln_unit(u1)).sqrt();
            let (c, s) = cos_sin(std::f32::consts::PI * (2.0 * u2 - 1.0));
            out[2 * pair] = radius * c;
            out[2 * pair + 1] = radius * s;
        }
    }
}

/// Scratch for one environment's draws: Philox lanes and their normals, allocated once
/// per task and reused across environments.
struct Draws {
    lanes: [Vec<u32>; 4],
    z: Vec<f32>,
}

impl Draws {
    /// Scratch for `rows` rows of `d` variables (at most a chunk of rows at a time).
    fn new(rows: usize, d: usize) -> Self {
        let len = CHUNK_ROWS.min(rows) * d.div_ceil(4);
        Self {
            lanes: std::array::from_fn(|_| vec![0u32; len]),
            z: vec![0.0; len * 4],
        }
    }
}

/// The samples of one environment, `[rows, d]`, into `out`: normals for a chunk of
/// rows at a time, then each row's `d` sequential steps.
#[inline(always)]
fn sample_env(
    (scm, env, draw, interventions, out, draws): (
        &ScmBatch,
        usize,
        u32,
        &Interventions<'_>,
        &mut [f32],
        &mut Draws,
    ),
) {
    let d = scm.n_vars();
    let rows = out.len() / d;
    let blocks = d.div_ceil(4);
    let key = scm.noise_key();
    let order = &scm.order()[env * d..][..d];
    let weights = &scm.weights()[env * d * d..][..d * d];
    let (bias, noise) = (&scm.bias()[env * d..][..d], &scm.noise()[env * d..][..d]);
    for (chunk, rows_out) in out.chunks_mut(CHUNK_ROWS * d).enumerate() {
        let first = chunk * CHUNK_ROWS;
        let n = rows_out.len() / d * blocks;
        for k in 0..n {
            let (r, b) = (first + k / blocks, k % blocks);
            let counter = [b as u32, r as u32, env as u32, draw];
            for (lane, c) in draws.lanes.iter_mut().zip(counter) {
                lane[k] = c;
            }
        }
        let [l0, l1, l2, l3] = &mut draws.lanes;
        philox_lanes(
            [&mut l0[..n], &mut l1[..n], &mut l2[..n], &mut l3[..n]],
            key,
        );
        box_muller_lanes(
            [&l0[..n], &l1[..n], &l2[..n], &l3[..n]],
            &mut draws.z[..4 * n],
        );
        // Values by topological position, so each step's dot product reads contiguous
        // memory; scattered to variable order at the end of the row.
        let mut by_position = [0.0f32; MAX_SIM_VARS];
        for (i_row, row) in rows_out.chunks_exact_mut(d).enumerate() {
            let r = first + i_row;
            let z = &draws.z[i_row * blocks * 4..][..blocks * 4];
            for i in 0..d {
                let iv = interventions.at(env, r, rows, d, order[i] as usize);
                by_position[i] = if iv.kind == 1 {
                    iv.value
                } else {
                    let parents: f32 = weights[i * d..][..i]
                        .iter()
                        .zip(&by_position[..i])
                        .map(|(&w, &x)| w * x)
                        .sum();
                    let shift = if iv.kind == 2 { iv.value } else { 0.0 };
                    bias[i] + parents + noise[i] * z[i] + shift
                };
            }
            for (&v, &x) in order.iter().zip(&by_position[..d]) {
                row[v as usize] = x;
            }
        }
    }
}

impl SimBackend for CpuSim {
    fn scm(&self) -> &ScmBatch {
        &self.scm
    }

    fn sample(
        &mut self,
        draw: u32,
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<Vec<f32>> {
        validate_sample(&self.scm, rows, interventions)?;
        let _span =
            tracing::debug_span!("cpu_sim_sample", batch = self.scm.batch(), rows).entered();
        let per_env = rows * self.scm.n_vars();
        let mut out = vec![0.0f32; self.scm.batch() * per_env];
        let (scm, arch) = (&self.scm, crate::dispatch::arch());
        if out.len() >= PARALLEL_MIN_VALUES && scm.batch() > 1 {
            out.par_chunks_mut(per_env).enumerate().for_each_init(
                || Draws::new(rows, scm.n_vars()),
                |draws, (env, o)| {
                    arch.dispatch(Kernel(
                        sample_env,
                        (scm, env, draw, interventions, o, draws),
                    ));
                },
            );
        } else {
            let mut draws = Draws::new(rows, scm.n_vars());
            for (env, o) in out.chunks_mut(per_env).enumerate() {
                arch.dispatch(Kernel(
                    sample_env,
                    (scm, env, draw, interventions, o, &mut draws),
                ));
            }
        }
        check_samples(&out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_box_muller_agrees_with_normals4() {
        let key = [7, 9];
        let counters: Vec<[u32; 4]> = (0..4096).map(|i| [i, i * 3, 11, 5]).collect();
        let mut lanes: [Vec<u32>; 4] =
            std::array::from_fn(|j| counters.iter().map(|c| c[j]).collect());
        let [l0, l1, l2, l3] = &mut lanes;
        philox_lanes([l0, l1, l2, l3], key);
        let mut z = vec![0.0; 4 * counters.len()];
        box_muller_lanes([&lanes[0], &lanes[1], &lanes[2], &lanes[3]], &mut z);
        for (c, got) in counters.iter().zip(z.chunks_exact(4)) {
            let want = tessera_tensor::rng::normals4_f64(*c, key);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 2e-6 * w.abs().max(1.0),
                    "{g} vs {w}"
                );
            }
        }
    }
}
