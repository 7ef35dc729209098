//! The CPU simulator: samples from a batch of SCMs, environments in parallel, and the
//! exact parent-set posterior of each environment's target.

mod posterior;

pub use posterior::CpuPosterior;

use rayon::prelude::*;
use tessera_tensor::error::Result;
use tessera_tensor::rng::normals4;
use tessera_tensor::sim::{Interventions, ScmBatch, SimBackend, check_samples, validate_sample};

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

/// The samples of one environment, `[rows, d]`, into `out`.
fn sample_env(
    scm: &ScmBatch,
    env: usize,
    draw: u32,
    interventions: &Interventions<'_>,
    out: &mut [f32],
) {
    let d = scm.n_vars();
    let rows = out.len() / d;
    let key = scm.noise_key();
    let order = &scm.order()[env * d..][..d];
    let weights = &scm.weights()[env * d * d..][..d * d];
    let (bias, noise) = (&scm.bias()[env * d..][..d], &scm.noise()[env * d..][..d]);
    for (r, row) in out.chunks_exact_mut(d).enumerate() {
        let mut z = [0.0f32; 4];
        for i in 0..d {
            if i % 4 == 0 {
                z = normals4([(i / 4) as u32, r as u32, env as u32, draw], key);
            }
            let v = order[i] as usize;
            let iv = interventions.at(env, r, rows, d, v);
            row[v] = if iv.kind == 1 {
                iv.value
            } else {
                let parents: f32 = weights[i * d..][..i]
                    .iter()
                    .zip(order)
                    .map(|(&w, &u)| w * row[u as usize])
                    .sum();
                let shift = if iv.kind == 2 { iv.value } else { 0.0 };
                bias[i] + parents + noise[i] * z[i % 4] + shift
            };
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
        let scm = &self.scm;
        if out.len() >= PARALLEL_MIN_VALUES && scm.batch() > 1 {
            out.par_chunks_mut(per_env)
                .enumerate()
                .for_each(|(env, o)| sample_env(scm, env, draw, interventions, o));
        } else {
            out.chunks_mut(per_env)
                .enumerate()
                .for_each(|(env, o)| sample_env(scm, env, draw, interventions, o));
        }
        check_samples(&out)?;
        Ok(out)
    }
}
