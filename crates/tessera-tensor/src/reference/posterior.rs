//! The f64 reference of the exact parent-set posterior: dense Gram matrices and a
//! general Cholesky per set, written for clarity.

use crate::error::Result;
use crate::sim::posterior::{
    PosteriorBackend, PosteriorConfig, PosteriorSummary, augmented_row, evidence_constant,
    parent_sets, summarize, target_intervention, validate_rows,
};
use crate::sim::{Interventions, MAX_PARENTS, NO_PARENT};

/// The reference posterior.
#[derive(Debug, Clone)]
pub struct ReferencePosterior {
    config: PosteriorConfig,
    /// `[B, (d+1), (d+1)]` sums of `a a'` over the augmented rows.
    gram: Vec<f64>,
    sets: Vec<Vec<usize>>,
}

impl ReferencePosterior {
    /// An empty posterior (no rows yet).
    pub fn new(config: &PosteriorConfig) -> Result<Self> {
        config.validate()?;
        let d1 = config.n_vars + 1;
        Ok(Self {
            gram: vec![0.0; config.batch() * d1 * d1],
            sets: parent_sets(config.n_vars - 1, config.max_parents),
            config: config.clone(),
        })
    }

    fn log_ml(&self, env: usize, set: &[usize]) -> f64 {
        let c = &self.config;
        let d1 = c.n_vars + 1;
        let g = &self.gram[env * d1 * d1..][..d1 * d1];
        let target = c.targets[env] as usize;
        let y = 1 + target;
        // Columns of Z in the Gram matrix: the intercept, then each parent.
        let cols: Vec<usize> = std::iter::once(0)
            .chain(
                set.iter()
                    .map(|&s| 1 + crate::sim::posterior::candidate_variable(s, target) as usize),
            )
            .collect();
        let p = cols.len();
        let mut l = vec![0.0f64; p * p];
        for i in 0..p {
            for j in 0..=i {
                let mut v = g[cols[i] * d1 + cols[j]] + if i == j { c.lambda } else { 0.0 };
                for k in 0..j {
                    v -= l[i * p + k] * l[j * p + k];
                }
                l[i * p + j] = if i == j { v.sqrt() } else { v / l[j * p + j] };
            }
        }
        let mut v = vec![0.0f64; p];
        for i in 0..p {
            let mut s = g[cols[i] * d1 + y];
            for k in 0..i {
                s -= l[i * p + k] * v[k];
            }
            v[i] = s / l[i * p + i];
        }
        let n = g[0];
        let bn = c.b0 + 0.5 * (g[y * d1 + y] - v.iter().map(|x| x * x).sum::<f64>());
        let an = c.a0 + n / 2.0;
        evidence_constant(c, n) + p as f64 / 2.0 * c.lambda.ln()
            - (0..p).map(|i| l[i * p + i].ln()).sum::<f64>()
            - an * bn.ln()
    }
}

impl PosteriorBackend for ReferencePosterior {
    fn config(&self) -> &PosteriorConfig {
        &self.config
    }

    fn add_rows(
        &mut self,
        samples: &[f32],
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<()> {
        validate_rows(&self.config, samples, rows, interventions)?;
        let d = self.config.n_vars;
        let d1 = d + 1;
        let mut a = vec![0.0f64; d1];
        for env in 0..self.config.batch() {
            let target = self.config.targets[env] as usize;
            for r in 0..rows {
                let iv = target_intervention(interventions, env, r, rows, d, target);
                if !augmented_row(&samples[(env * rows + r) * d..][..d], target, iv, &mut a) {
                    continue;
                }
                let g = &mut self.gram[env * d1 * d1..][..d1 * d1];
                for i in 0..d1 {
                    for j in 0..d1 {
                        g[i * d1 + j] += a[i] * a[j];
                    }
                }
            }
        }
        Ok(())
    }

    fn posterior(&mut self) -> Result<PosteriorSummary> {
        let (b, d) = (self.config.batch(), self.config.n_vars);
        let mut summary = PosteriorSummary {
            marginals: vec![0.0; b * d],
            entropy_bits: vec![0.0; b],
            map_sets: vec![[NO_PARENT; MAX_PARENTS]; b],
            rows: vec![0; b],
        };
        for env in 0..b {
            let scores = self.log_marginal_likelihoods(env)?;
            let target = self.config.targets[env] as usize;
            let (h, map) = summarize(
                &self.config,
                target,
                &self.sets,
                &scores,
                &mut summary.marginals[env * d..][..d],
            );
            summary.entropy_bits[env] = h;
            summary.map_sets[env] = map;
            summary.rows[env] = self.gram[env * (d + 1) * (d + 1)] as u64;
        }
        Ok(summary)
    }

    fn log_marginal_likelihoods(&mut self, env: usize) -> Result<Vec<f64>> {
        self.config.check_env(env)?;
        Ok(self.sets.iter().map(|s| self.log_ml(env, s)).collect())
    }
}
