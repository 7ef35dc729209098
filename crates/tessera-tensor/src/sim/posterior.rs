//! The exact posterior over the target's parent set in a linear-Gaussian model: the
//! contract, its configuration and the sufficient statistics every backend keeps.

use super::contract::{Intervention, InterventionKind, Interventions};
use crate::acquisition::MAX_MAGNITUDE;
use crate::error::{Result, TesseraError};

use super::scm::{MAX_SIM_VARS, ScmBatch};

/// Largest parent-set size the posterior enumerates.
pub const MAX_PARENTS: usize = 3;

/// Value of an unused slot of [`PosteriorSummary::map_sets`].
pub const NO_PARENT: u32 = u32::MAX;

/// How the posterior scores parent sets.
#[derive(Debug, Clone, PartialEq)]
pub struct PosteriorConfig {
    /// Variables of each environment (1..=256).
    pub n_vars: usize,
    /// Each environment's target variable; the length is the batch size.
    pub targets: Vec<u32>,
    /// Largest parent set scored (0..=3, at most `n_vars - 1`).
    pub max_parents: usize,
    /// Prior precision of the regression weights: `beta | sigma^2 ~ N(0, sigma^2 / lambda I)`.
    pub lambda: f64,
    /// Shape of the noise variance's inverse-gamma prior.
    pub a0: f64,
    /// Scale of the noise variance's inverse-gamma prior.
    pub b0: f64,
    /// Log-prior penalty per parent, `-sparsity |S|` (0: uniform over the sets).
    pub sparsity: f64,
    /// Largest bytes of the statistics and per-set scores (16 GiB by default).
    pub memory_limit: u64,
}

impl PosteriorConfig {
    /// Parent sets of size at most `max_parents` for each environment's target, with
    /// `lambda = a0 = b0 = 1` and a uniform prior.
    pub fn new(n_vars: usize, targets: Vec<u32>, max_parents: usize) -> Self {
        Self {
            n_vars,
            targets,
            max_parents,
            lambda: 1.0,
            a0: 1.0,
            b0: 1.0,
            sparsity: 0.0,
            memory_limit: crate::acquisition::DEFAULT_MEMORY_LIMIT,
        }
    }

    /// The posterior of each environment's target in `scm`.
    pub fn for_scm(scm: &ScmBatch, max_parents: usize) -> Self {
        Self::new(scm.n_vars(), scm.targets().to_vec(), max_parents)
    }

    /// Environments.
    pub fn batch(&self) -> usize {
        self.targets.len()
    }

    /// Parent sets per environment: `sum_{s <= k} C(n_vars - 1, s)`.
    pub fn sets_per_env(&self) -> u64 {
        let m = self.n_vars.saturating_sub(1) as u64;
        let mut total = 0u64;
        let mut choose = 1u64;
        for s in 0..=self.max_parents as u64 {
            if s > m {
                break;
            }
            total += choose;
            choose = choose * (m - s) / (s + 1);
        }
        total
    }

    /// Bytes a backend keeps: the `[B, (d+1)^2]` f64 Gram matrices and one f64 score
    /// per set and environment.
    pub fn state_bytes(&self) -> Option<u64> {
        let d1 = self.n_vars as u64 + 1;
        let per_env = (d1 * d1).checked_add(self.sets_per_env())?.checked_mul(8)?;
        per_env.checked_mul(self.batch() as u64)
    }

    /// An error unless `env` is one of the batch's environments.
    pub fn check_env(&self, env: usize) -> Result<()> {
        if env < self.batch() {
            Ok(())
        } else {
            Err(TesseraError::IndexOutOfRange {
                what: "environment",
                index: env,
                bound: self.batch(),
            })
        }
    }

    /// Checks every field before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, value: String, expected: String| {
            Err(TesseraError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if !(1..=MAX_SIM_VARS).contains(&self.n_vars) {
            return invalid("n_vars", self.n_vars.to_string(), "1..=256".into());
        }
        if self.targets.is_empty() || u32::try_from(self.batch()).is_err() {
            return invalid(
                "targets",
                format!("{} environments", self.batch()),
                "1..2^32 environments".into(),
            );
        }
        if let Some(&t) = self.targets.iter().find(|&&t| t as usize >= self.n_vars) {
            return Err(TesseraError::IndexOutOfRange {
                what: "targets",
                index: t as usize,
                bound: self.n_vars,
            });
        }
        if self.max_parents > MAX_PARENTS
            || (self.max_parents > 0 && self.max_parents >= self.n_vars)
        {
            return invalid(
                "max_parents",
                self.max_parents.to_string(),
                format!("0..=3 and below n_vars = {}", self.n_vars),
            );
        }
        for (field, v, ok) in [
            ("lambda", self.lambda, self.lambda > 0.0),
            ("a0", self.a0, self.a0 > 0.0),
            ("b0", self.b0, self.b0 > 0.0),
            ("sparsity", self.sparsity, self.sparsity >= 0.0),
        ] {
            if !(v.is_finite() && ok) {
                return invalid(
                    field,
                    v.to_string(),
                    "a finite number > 0 (sparsity >= 0)".into(),
                );
            }
        }
        match self.state_bytes() {
            Some(bytes) if bytes <= self.memory_limit => Ok(()),
            bytes => invalid(
                "max_parents",
                format!(
                    "{}: {} parent sets per environment x {} environments need {} bytes",
                    self.max_parents,
                    self.sets_per_env(),
                    self.batch(),
                    bytes.map_or("more than 2^64".into(), |b| b.to_string())
                ),
                format!(
                    "at most memory_limit = {} bytes (lower max_parents or the batch)",
                    self.memory_limit
                ),
            ),
        }
    }
}

/// What a posterior update reports per environment.
#[derive(Debug, Clone, PartialEq)]
pub struct PosteriorSummary {
    /// `[B, n_vars]` posterior probability that each variable is a parent of the
    /// target (0 for the target itself): the acquisition state's `marginal_probs`.
    pub marginals: Vec<f32>,
    /// `[B]` entropy of the posterior over parent sets, in bits: the acquisition
    /// state's `uncertainty_bits`.
    pub entropy_bits: Vec<f32>,
    /// `[B]` the maximum-a-posteriori parent set, ascending, padded with
    /// [`NO_PARENT`] (ties go to the smaller set, then the lexicographically first).
    pub map_sets: Vec<[u32; MAX_PARENTS]>,
    /// `[B]` rows the statistics hold (rows with the target clamped are dropped).
    pub rows: Vec<u64>,
}

impl PosteriorSummary {
    /// The MAP set of environment `env` as a list.
    pub fn map_set(&self, env: usize) -> Vec<u32> {
        self.map_sets[env]
            .iter()
            .copied()
            .filter(|&v| v != NO_PARENT)
            .collect()
    }
}

/// A backend that keeps per-environment sufficient statistics and scores every parent
/// set of size at most `max_parents` exactly.
///
/// For a set `S` (`p = |S| + 1` columns with the intercept), `Z = [1, X_S]`, the
/// Normal-Inverse-Gamma marginal likelihood is, with `Lambda = Z'Z + lambda I = LL'`,
/// `v = L^-1 Z'y`, `a_n = a0 + n/2`, `b_n = b0 + (y'y - v'v) / 2`:
///
/// ```text
/// log p(y|S) = -(n/2) ln 2pi + (p/2) ln lambda - sum ln L_ii + a0 ln b0 - a_n ln b_n
///              + lnGamma(a_n) - lnGamma(a0)
/// ```
///
/// The posterior is `p(S | data) ∝ p(y|S) exp(-sparsity |S|)`. Sets are ordered by
/// size, then lexicographically over the candidates (every variable but the target,
/// ascending).
pub trait PosteriorBackend {
    /// The configuration.
    fn config(&self) -> &PosteriorConfig;

    /// Adds `[B, rows, n_vars]` samples (as [`SimBackend::sample`](super::SimBackend::sample)
    /// returns them) drawn under `interventions`. A row whose target was clamped is
    /// dropped; a shift `delta` on the target regresses `y - delta`.
    fn add_rows(
        &mut self,
        samples: &[f32],
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<()>;

    /// Scores every parent set from the statistics and returns the summary.
    fn posterior(&mut self) -> Result<PosteriorSummary>;

    /// Every set's log marginal likelihood for environment `env`, in set order.
    fn log_marginal_likelihoods(&mut self, env: usize) -> Result<Vec<f64>>;
}

/// Checks the inputs of [`PosteriorBackend::add_rows`].
pub fn validate_rows(
    config: &PosteriorConfig,
    samples: &[f32],
    rows: usize,
    interventions: &Interventions<'_>,
) -> Result<()> {
    let (b, d) = (config.batch(), config.n_vars);
    let expected = b.checked_mul(rows).and_then(|v| v.checked_mul(d));
    if expected != Some(samples.len()) {
        return Err(TesseraError::ShapeMismatch {
            what: "samples",
            got: samples.len(),
            expected: expected.unwrap_or(usize::MAX),
        });
    }
    crate::error::check_magnitude("samples", samples, MAX_MAGNITUDE)?;
    let expected = match interventions {
        Interventions::None => None,
        Interventions::PerEnv(_) => Some(b * d),
        Interventions::PerRow(_) => Some(b * rows * d),
    };
    if let Some(expected) = expected {
        crate::error::check_len("interventions", interventions.as_slice(), expected)?;
    }
    Ok(())
}

/// The intervention on the target of row `r` of environment `env`.
pub fn target_intervention(
    interventions: &Interventions<'_>,
    env: usize,
    r: usize,
    rows: usize,
    d: usize,
    target: usize,
) -> Intervention {
    interventions.at(env, r, rows, d, target)
}

/// The augmented row `[1, x_0, ..., x_{d-1}]` a Gram matrix accumulates for one
/// sample, or `None` when the target was clamped (the row says nothing about its
/// mechanism). A shift on the target is subtracted from it.
pub fn augmented_row(row: &[f32], target: usize, iv: Intervention, out: &mut [f64]) -> bool {
    if iv.kind == InterventionKind::Do as u32 {
        return false;
    }
    out[0] = 1.0;
    for (o, &x) in out[1..].iter_mut().zip(row) {
        *o = f64::from(x);
    }
    if iv.kind == InterventionKind::Shift as u32 {
        out[1 + target] -= f64::from(iv.value);
    }
    true
}

/// The parent sets of a target among `m` candidates, size at most `k`, in set order
/// (by size, then lexicographic), as candidate indices.
pub fn parent_sets(m: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    let mut frontier = vec![Vec::new()];
    for _ in 0..k.min(m) {
        let mut next = Vec::new();
        for set in &frontier {
            let start = set.last().map_or(0, |&c| c + 1);
            for c in start..m {
                let mut s: Vec<usize> = set.clone();
                s.push(c);
                next.push(s);
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out
}

/// `lnGamma(a_n) - lnGamma(a0) + a0 ln b0 - (n/2) ln 2pi`: the part of every set's
/// log marginal likelihood that depends only on the number of rows.
pub fn evidence_constant(config: &PosteriorConfig, n: f64) -> f64 {
    let an = config.a0 + n / 2.0;
    libm::lgamma(an) - libm::lgamma(config.a0) + config.a0 * config.b0.ln()
        - n / 2.0 * (2.0 * std::f64::consts::PI).ln()
}

/// The variable of candidate `c` for a target `target` (candidates skip the target).
pub fn candidate_variable(c: usize, target: usize) -> u32 {
    (if c < target { c } else { c + 1 }) as u32
}

/// Turns one environment's per-set log marginal likelihoods (in set order) into its
/// posterior: marginals written to `marginals` (`[n_vars]`), the entropy in bits and
/// the MAP set. Normalised by log-sum-exp in f64.
pub fn summarize(
    config: &PosteriorConfig,
    target: usize,
    sets: &[Vec<usize>],
    log_ml: &[f64],
    marginals: &mut [f32],
) -> (f32, [u32; MAX_PARENTS]) {
    summarize_with(
        config,
        target,
        sets,
        log_ml,
        marginals,
        &mut SummaryScratch::default(),
        |xs| xs.iter_mut().for_each(|x| *x = x.exp()),
    )
}

/// Scratch of [`summarize_with`], reused across environments.
#[derive(Debug, Clone, Default)]
pub struct SummaryScratch {
    log_w: Vec<f64>,
    scaled: Vec<f64>,
    acc: Vec<f64>,
}

/// [`summarize`] with the caller's scratch and its `exp_in_place` (every element `x <=
/// 0` replaced by `e^x`, to within a few ulps), so a SIMD backend can take the
/// exponentials in one vectorised pass.
pub fn summarize_with(
    config: &PosteriorConfig,
    target: usize,
    sets: &[Vec<usize>],
    log_ml: &[f64],
    marginals: &mut [f32],
    scratch: &mut SummaryScratch,
    exp_in_place: impl FnOnce(&mut [f64]),
) -> (f32, [u32; MAX_PARENTS]) {
    let SummaryScratch { log_w, scaled, acc } = scratch;
    log_w.clear();
    log_w.extend(
        sets.iter()
            .zip(log_ml)
            .map(|(s, l)| l - config.sparsity * s.len() as f64),
    );
    let (map, max) = log_w
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        });
    // One exp per set: w = exp(lw - max) / total; -w ln w = w (ln total - (lw - max)).
    scaled.clear();
    scaled.extend(log_w.iter().map(|v| v - max));
    exp_in_place(scaled);
    let total: f64 = scaled.iter().sum();
    let ln_total = total.ln();
    acc.clear();
    acc.resize(marginals.len(), 0.0);
    let mut entropy = 0.0;
    for ((set, &lw), &e) in sets.iter().zip(log_w.iter()).zip(scaled.iter()) {
        let w = e / total;
        if w > 0.0 {
            entropy += w * (ln_total - (lw - max));
        }
        for &c in set {
            acc[candidate_variable(c, target) as usize] += w;
        }
    }
    for (m, a) in marginals.iter_mut().zip(acc.iter()) {
        *m = a.clamp(0.0, 1.0) as f32;
    }
    let mut map_set = [NO_PARENT; MAX_PARENTS];
    for (slot, &c) in map_set.iter_mut().zip(&sets[map]) {
        *slot = candidate_variable(c, target);
    }
    ((entropy / std::f64::consts::LN_2).max(0.0) as f32, map_set)
}
