//! The CPU simulator: samples from a batch of SCMs, environments in parallel, and the
//! exact parent-set posterior of each environment's target.

mod closed_loop;
mod posterior;

pub use closed_loop::CpuClosedLoop;
pub use posterior::CpuPosterior;

use rayon::prelude::*;

use crate::dispatch::{SimdLevel, direct_kernel};
use pulp::Arch;
use tessera_tensor::error::Result;
use tessera_tensor::rng::philox4x32_10_lanes;
use tessera_tensor::sim::{Interventions, ScmBatch, SimBackend, check_samples, validate_sample};

/// Environments with fewer samples than this run on the calling thread.
const PARALLEL_MIN_VALUES: usize = 1 << 14;

/// The CPU implementation of [`SimBackend`]: f32 arithmetic, one environment per task.
#[derive(Debug, Clone)]
pub struct CpuSim {
    scm: ScmBatch,
    arch: Arch,
}

impl CpuSim {
    /// A sampler for `scm` at the widest SIMD level in use ([`SimdLevel::in_use`]).
    pub fn new(scm: &ScmBatch) -> Result<Self> {
        Self::with_level(scm, SimdLevel::in_use())
    }

    /// A sampler for `scm` pinned to `level`; an error if this CPU lacks it.
    pub fn with_level(scm: &ScmBatch, level: SimdLevel) -> Result<Self> {
        Ok(Self {
            scm: scm.clone(),
            arch: level.check_available()?.arch(),
        })
    }
}

/// Rows whose normals are drawn together: enough independent Philox blocks for the
/// loops below to fill SIMD registers.
const CHUNK_ROWS: usize = 64;

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

/// The two normals of each pair of words `(a[k], b[k])` into `(zc[k], zs[k])`: the
/// cosine and sine branches of Box-Muller as `rng::normals4` computes them, with the
/// polynomial `ln`, `cos` and `sin` above (agreeing with `normals4` to about 1e-6
/// relative). Planes in, planes out, so the loop vectorises.
#[inline(always)]
fn box_muller_planes(a: &[u32], b: &[u32], zc: &mut [f32], zs: &mut [f32]) {
    for (((&a, &b), c), s) in a.iter().zip(b).zip(zc.iter_mut()).zip(zs.iter_mut()) {
        let (u1, u2) = tessera_tensor::rng::box_muller_units(a, b);
        let radius = (-2.0 * crate::math::ln(u1)).sqrt();
        let (cos, sin) = cos_sin(std::f32::consts::PI * (2.0 * u2 - 1.0));
        *c = radius * cos;
        *s = radius * sin;
    }
}

/// Scratch for one environment's draws, allocated once per task and reused across
/// environments. For a chunk of `R` rows, lane `b R + r` holds the Philox block `b` of
/// row `r`; `z[c][b R + r]` is then the normal of topological position `4 b + c` in row
/// `r`, and `x[v R + r]` the value of variable `v`: every plane is contiguous over the
/// rows, so each position's update is one vector loop over the chunk (into `acc`).
struct Draws {
    lanes: [Vec<u32>; 4],
    z: [Vec<f32>; 4],
    x: Vec<f32>,
    acc: Vec<f32>,
}

impl Draws {
    /// Scratch for `rows` rows of `d` variables (at most a chunk of rows at a time).
    fn new(rows: usize, d: usize) -> Self {
        let chunk = CHUNK_ROWS.min(rows);
        let len = chunk * d.div_ceil(4);
        Self {
            lanes: std::array::from_fn(|_| vec![0u32; len]),
            z: std::array::from_fn(|_| vec![0.0; len]),
            x: vec![0.0; chunk * d],
            acc: vec![0.0; chunk],
        }
    }
}

/// The samples of one environment, `[rows, d]`, into `out`, a chunk of rows at a
/// time: the chunk's normals, then each topological position for every row of the
/// chunk at once (parents with a zero weight skipped), then the chunk transposed to
/// rows. Returns whether every value is finite.
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
) -> bool {
    let d = scm.n_vars();
    let rows = out.len() / d;
    let blocks = d.div_ceil(4);
    let key = scm.noise_key();
    let order = &scm.order()[env * d..][..d];
    let weights = &scm.weights()[env * d * d..][..d * d];
    let (bias, noise) = (&scm.bias()[env * d..][..d], &scm.noise()[env * d..][..d]);
    let mut finite = true;
    for (chunk, rows_out) in out.chunks_mut(CHUNK_ROWS * d).enumerate() {
        let first = chunk * CHUNK_ROWS;
        let chunk_rows = rows_out.len() / d;
        let n = chunk_rows * blocks;
        let [l0, l1, l2, l3] = &mut draws.lanes;
        // Counters [block, row, env, draw], block-major.
        for (b, (blocks0, rows1)) in l0[..n]
            .chunks_exact_mut(chunk_rows)
            .zip(l1[..n].chunks_exact_mut(chunk_rows))
            .enumerate()
        {
            blocks0.fill(b as u32);
            for (r, row) in rows1.iter_mut().enumerate() {
                *row = (first + r) as u32;
            }
        }
        l2[..n].fill(env as u32);
        l3[..n].fill(draw);
        philox4x32_10_lanes(
            [&mut l0[..n], &mut l1[..n], &mut l2[..n], &mut l3[..n]],
            key,
        );
        let [z0, z1, z2, z3] = &mut draws.z;
        box_muller_planes(&l0[..n], &l1[..n], &mut z0[..n], &mut z1[..n]);
        box_muller_planes(&l2[..n], &l3[..n], &mut z2[..n], &mut z3[..n]);
        let x = &mut draws.x[..d * chunk_rows];
        let acc = &mut draws.acc[..chunk_rows];
        for i in 0..d {
            let z = &draws.z[i % 4][(i / 4) * chunk_rows..][..chunk_rows];
            // The parents in position order, as the reference sums them.
            acc.fill(0.0);
            for (j, &w) in weights[i * d..][..i].iter().enumerate() {
                if w != 0.0 {
                    let xj = &x[order[j] as usize * chunk_rows..][..chunk_rows];
                    for (a, &v) in acc.iter_mut().zip(xj) {
                        *a += w * v;
                    }
                }
            }
            let var = order[i] as usize;
            let xi = &mut x[var * chunk_rows..][..chunk_rows];
            let (b, s) = (bias[i], noise[i]);
            for ((out, &a), &zr) in xi.iter_mut().zip(acc.iter()).zip(z) {
                *out = b + a + s * zr;
            }
            match interventions {
                Interventions::None => {}
                Interventions::PerEnv(_) => {
                    apply_intervention(interventions.at(env, 0, rows, d, var), xi)
                }
                Interventions::PerRow(_) => {
                    for (r, out) in xi.iter_mut().enumerate() {
                        let iv = interventions.at(env, first + r, rows, d, var);
                        apply_intervention(iv, std::slice::from_mut(out));
                    }
                }
            }
        }
        finite &= x.iter().fold(true, |ok, v| ok & v.is_finite());
        crate::transpose::planes_to_rows(x, chunk_rows, d, rows_out);
    }
    finite
}

direct_kernel!(
    /// [`sample_env`] under SIMD dispatch.
    SampleEnv((&ScmBatch, usize, u32, &Interventions<'_>, &mut [f32], &mut Draws)) -> bool => sample_env
);

/// `do` sets the values, a shift adds to them, observation leaves them.
#[inline(always)]
fn apply_intervention(iv: tessera_tensor::sim::Intervention, xs: &mut [f32]) {
    match iv.kind {
        1 => xs.fill(iv.value),
        2 => xs.iter_mut().for_each(|x| *x += iv.value),
        _ => {}
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
        let (scm, arch) = (&self.scm, self.arch);
        let finite = if out.len() >= PARALLEL_MIN_VALUES && scm.batch() > 1 {
            out.par_chunks_mut(per_env)
                .enumerate()
                .map_init(
                    || Draws::new(rows, scm.n_vars()),
                    |draws, (env, o)| {
                        arch.dispatch(SampleEnv((scm, env, draw, interventions, o, draws)))
                    },
                )
                .reduce(|| true, |a, b| a & b)
        } else {
            let mut draws = Draws::new(rows, scm.n_vars());
            out.chunks_mut(per_env)
                .enumerate()
                .fold(true, |ok, (env, o)| {
                    ok & arch.dispatch(SampleEnv((scm, env, draw, interventions, o, &mut draws)))
                })
        };
        if !finite {
            // Only to name the value: the kernel already knows one is not finite.
            check_samples(&out)?;
        }
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
        philox4x32_10_lanes([l0, l1, l2, l3], key);
        let mut z: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; counters.len()]);
        let [z0, z1, z2, z3] = &mut z;
        box_muller_planes(&lanes[0], &lanes[1], z0, z1);
        box_muller_planes(&lanes[2], &lanes[3], z2, z3);
        for (k, c) in counters.iter().enumerate() {
            let want = tessera_tensor::rng::normals4_f64(*c, key);
            for (g, w) in z.iter().map(|plane| plane[k]).zip(want) {
                assert!(
                    (f64::from(g) - w).abs() <= 2e-6 * w.abs().max(1.0),
                    "{g} vs {w}"
                );
            }
        }
    }
}
