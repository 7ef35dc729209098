//! The CPU parent-set posterior: f64 Gram matrices updated by rank-1 updates, and
//! every set scored by extending the Cholesky factor of its prefix by one column
//! (a set of size s costs O(s^2) on top of its prefix's), environments in parallel.

use rayon::prelude::*;
use tessera_tensor::error::Result;
use tessera_tensor::sim::posterior::{
    PosteriorBackend, PosteriorConfig, PosteriorSummary, augmented_row, candidate_variable,
    evidence_constant, parent_sets, summarize, target_intervention, validate_rows,
};
use tessera_tensor::sim::{Interventions, MAX_PARENTS, NO_PARENT};

/// Largest Cholesky factor: the intercept and three parents.
const P_MAX: usize = MAX_PARENTS + 1;

/// The Cholesky factor of one set's `Z'Z + lambda I`, with what its score needs.
#[derive(Debug, Clone, Copy, Default)]
struct Factor {
    /// Lower triangle, row-major packed: row `i` starts at `i (i + 1) / 2`.
    l: [f64; P_MAX * (P_MAX + 1) / 2],
    /// `L^-1 Z'y`.
    v: [f64; P_MAX],
    /// Gram columns of the set's regressors (the intercept first).
    cols: [usize; P_MAX],
    p: usize,
    sum_ln_diag: f64,
    vtv: f64,
}

/// One environment's Gram matrix (upper triangle of `[(d+1), (d+1)]`) and target.
struct Env<'a> {
    g: &'a [f64],
    d1: usize,
    y: usize,
}

impl Env<'_> {
    fn at(&self, i: usize, j: usize) -> f64 {
        let (i, j) = if i <= j { (i, j) } else { (j, i) };
        self.g[i * self.d1 + j]
    }

    /// `prefix` extended by Gram column `col`. With `lambda > 0` the matrix is positive
    /// definite; the pivot is floored at the smallest positive f64 against rounding.
    fn extend(&self, prefix: &Factor, col: usize, lambda: f64) -> Factor {
        let mut f = *prefix;
        let p = prefix.p;
        let row = p * (p + 1) / 2;
        let mut norm = 0.0;
        for k in 0..p {
            let mut s = self.at(prefix.cols[k], col);
            let rk = k * (k + 1) / 2;
            for j in 0..k {
                s -= f.l[rk + j] * f.l[row + j];
            }
            let x = s / f.l[rk + k];
            f.l[row + k] = x;
            norm += x * x;
        }
        let diag = (self.at(col, col) + lambda - norm)
            .max(f64::MIN_POSITIVE)
            .sqrt();
        f.l[row + p] = diag;
        let mut s = self.at(col, self.y);
        for k in 0..p {
            s -= f.l[row + k] * f.v[k];
        }
        let v = s / diag;
        f.v[p] = v;
        f.cols[p] = col;
        f.p = p + 1;
        f.sum_ln_diag += diag.ln();
        f.vtv += v * v;
        f
    }
}

/// The CPU implementation of [`PosteriorBackend`], in f64.
#[derive(Debug, Clone)]
pub struct CpuPosterior {
    config: PosteriorConfig,
    /// `[B, (d+1), (d+1)]`; only the upper triangle is kept up to date.
    gram: Vec<f64>,
    sets: Vec<Vec<usize>>,
}

impl CpuPosterior {
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

    /// Every set's log marginal likelihood for `env`, in set order, into `out`.
    fn score_env(&self, env: usize, out: &mut Vec<f64>) {
        let c = &self.config;
        let d1 = c.n_vars + 1;
        let target = c.targets[env] as usize;
        let e = Env {
            g: &self.gram[env * d1 * d1..][..d1 * d1],
            d1,
            y: 1 + target,
        };
        let n = e.at(0, 0);
        let constant = evidence_constant(c, n);
        let an = c.a0 + n / 2.0;
        let yy = e.at(e.y, e.y);
        let score = |f: &Factor| {
            let bn = c.b0 + 0.5 * (yy - f.vtv).max(0.0);
            constant + f.p as f64 / 2.0 * c.lambda.ln() - f.sum_ln_diag - an * bn.ln()
        };
        let m = c.n_vars - 1;
        let col = |cand: usize| 1 + candidate_variable(cand, target) as usize;
        // The empty set: the intercept alone.
        let l00 = (n + c.lambda).sqrt();
        let v0 = e.at(0, e.y) / l00;
        let mut root = Factor {
            p: 1,
            sum_ln_diag: l00.ln(),
            vtv: v0 * v0,
            ..Factor::default()
        };
        root.l[0] = l00;
        root.v[0] = v0;
        out.clear();
        out.push(score(&root));
        if c.max_parents == 0 {
            return;
        }
        let singles: Vec<Factor> = (0..m).map(|a| e.extend(&root, col(a), c.lambda)).collect();
        out.extend(singles.iter().map(score));
        if c.max_parents == 1 {
            return;
        }
        let mut pairs = Vec::with_capacity(m * m.saturating_sub(1) / 2);
        for (a, single) in singles.iter().enumerate() {
            for b in a + 1..m {
                pairs.push(e.extend(single, col(b), c.lambda));
            }
        }
        out.extend(pairs.iter().map(score));
        if c.max_parents == 2 {
            return;
        }
        // Pairs are stored lexicographically: (a, b) sits at a m - a (a + 1) / 2 + b - a - 1.
        for a in 0..m {
            for b in a + 1..m {
                let pair = &pairs[a * m - a * (a + 1) / 2 + b - a - 1];
                for t in b + 1..m {
                    out.push(score(&e.extend(pair, col(t), c.lambda)));
                }
            }
        }
    }
}

impl PosteriorBackend for CpuPosterior {
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
        let _span =
            tracing::debug_span!("cpu_posterior_add_rows", batch = self.config.batch(), rows)
                .entered();
        let d = self.config.n_vars;
        let d1 = d + 1;
        let targets = &self.config.targets;
        self.gram
            .par_chunks_mut(d1 * d1)
            .enumerate()
            .with_min_len((1 << 14) / (d1 * d1 * rows).max(1) + 1)
            .for_each(|(env, g)| {
                let target = targets[env] as usize;
                let mut a = vec![0.0f64; d1];
                for r in 0..rows {
                    let iv = target_intervention(interventions, env, r, rows, d, target);
                    if !augmented_row(&samples[(env * rows + r) * d..][..d], target, iv, &mut a) {
                        continue;
                    }
                    for i in 0..d1 {
                        let ai = a[i];
                        for (gij, aj) in g[i * d1 + i..(i + 1) * d1].iter_mut().zip(&a[i..]) {
                            *gij += ai * aj;
                        }
                    }
                }
            });
        Ok(())
    }

    fn posterior(&mut self) -> Result<PosteriorSummary> {
        let _span = tracing::debug_span!("cpu_posterior", batch = self.config.batch()).entered();
        let (b, d) = (self.config.batch(), self.config.n_vars);
        let mut marginals = vec![0.0f32; b * d];
        let per_env: Vec<(f32, [u32; MAX_PARENTS], u64)> = marginals
            .par_chunks_mut(d)
            .enumerate()
            .map_init(Vec::new, |scores, (env, m)| {
                self.score_env(env, scores);
                let target = self.config.targets[env] as usize;
                let (h, map) = summarize(&self.config, target, &self.sets, scores, m);
                (h, map, self.gram[env * (d + 1) * (d + 1)] as u64)
            })
            .collect();
        let mut summary = PosteriorSummary {
            marginals,
            entropy_bits: Vec::with_capacity(b),
            map_sets: Vec::with_capacity(b),
            rows: Vec::with_capacity(b),
        };
        for (h, map, n) in per_env {
            summary.entropy_bits.push(h);
            summary.map_sets.push(map);
            summary.rows.push(n);
        }
        debug_assert!(summary.map_sets.iter().all(
            |s| s.len() == MAX_PARENTS && s.iter().all(|&v| v == NO_PARENT || (v as usize) < d)
        ));
        Ok(summary)
    }

    fn log_marginal_likelihoods(&mut self, env: usize) -> Result<Vec<f64>> {
        self.config.check_env(env)?;
        let mut out = Vec::new();
        self.score_env(env, &mut out);
        Ok(out)
    }
}
