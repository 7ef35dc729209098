//! The f64 reference of the simulator's sampling.

use crate::error::Result;
use crate::rng::normals4_f64;
use crate::sim::{Interventions, ScmBatch, SimBackend, check_samples, validate_sample};

/// Samples in f64 from the same Philox draws as every backend (returned as f32).
#[derive(Debug, Clone)]
pub struct ReferenceSim {
    scm: ScmBatch,
}

impl ReferenceSim {
    /// A reference sampler for `scm`.
    pub fn new(scm: &ScmBatch) -> Result<Self> {
        Ok(Self { scm: scm.clone() })
    }

    /// The samples in f64, `[B, rows, n_vars]`, variable order.
    pub fn sample_f64(
        &self,
        draw: u32,
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<Vec<f64>> {
        validate_sample(&self.scm, rows, interventions)?;
        let s = &self.scm;
        let (b, d) = (s.batch(), s.n_vars());
        let key = s.noise_key();
        let mut out = vec![0.0f64; b * rows * d];
        for env in 0..b {
            let order = &s.order()[env * d..][..d];
            for r in 0..rows {
                let row = &mut out[(env * rows + r) * d..][..d];
                let mut z = [0.0; 4];
                for i in 0..d {
                    if i % 4 == 0 {
                        z = normals4_f64([(i / 4) as u32, r as u32, env as u32, draw], key);
                    }
                    let v = order[i] as usize;
                    let iv = interventions.at(env, r, rows, d, v);
                    row[v] = if iv.kind == 1 {
                        f64::from(iv.value)
                    } else {
                        let w = &s.weights()[(env * d + i) * d..][..i];
                        let parents: f64 = w
                            .iter()
                            .zip(order)
                            .map(|(&w, &u)| f64::from(w) * row[u as usize])
                            .sum();
                        let shift = if iv.kind == 2 {
                            f64::from(iv.value)
                        } else {
                            0.0
                        };
                        f64::from(s.bias()[env * d + i])
                            + parents
                            + f64::from(s.noise()[env * d + i]) * z[i % 4]
                            + shift
                    };
                }
            }
        }
        Ok(out)
    }
}

impl SimBackend for ReferenceSim {
    fn scm(&self) -> &ScmBatch {
        &self.scm
    }

    fn sample(
        &mut self,
        draw: u32,
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<Vec<f32>> {
        let out: Vec<f32> = self
            .sample_f64(draw, rows, interventions)?
            .into_iter()
            .map(|v| v as f32)
            .collect();
        check_samples(&out)?;
        Ok(out)
    }
}
