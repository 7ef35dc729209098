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
    let indexed = IndexedSets::from_sets(sets.to_vec(), marginals.len().saturating_sub(1));
    summarize_with(
        config,
        target,
        &indexed,
        log_ml,
        marginals,
        &mut SummaryScratch::default(),
        |xs| xs.iter_mut().for_each(|x| *x = x.exp()),
    )
}

/// Parent sets (in set order) with, for each candidate, the indices of the sets that
/// contain it: an inverted index built once, so that each marginal is a sum of
/// independent loads instead of a scatter into shared accumulators.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedSets {
    sets: Vec<Vec<usize>>,
    member_offsets: Vec<usize>,
    members: Vec<u32>,
}

impl IndexedSets {
    /// The sets of size at most `k` among `m` candidates ([`parent_sets`]), indexed.
    pub fn new(m: usize, k: usize) -> Self {
        Self::from_sets(parent_sets(m, k), m)
    }

    /// `sets` of candidates below `m`, indexed.
    pub fn from_sets(sets: Vec<Vec<usize>>, m: usize) -> Self {
        let mut member_offsets = vec![0usize; m + 1];
        for &c in sets.iter().flatten() {
            member_offsets[c + 1] += 1;
        }
        for c in 0..m {
            member_offsets[c + 1] += member_offsets[c];
        }
        let mut members = vec![0u32; member_offsets[m]];
        let mut next = member_offsets[..m].to_vec();
        for (i, set) in sets.iter().enumerate() {
            for &c in set {
                members[next[c]] = i as u32;
                next[c] += 1;
            }
        }
        Self {
            sets,
            member_offsets,
            members,
        }
    }

    /// The sets, in set order.
    pub fn sets(&self) -> &[Vec<usize>] {
        &self.sets
    }

    /// Candidates the sets are drawn from.
    pub fn candidates(&self) -> usize {
        self.member_offsets.len() - 1
    }

    /// The indices of the sets that contain candidate `c`.
    fn containing(&self, c: usize) -> &[u32] {
        &self.members[self.member_offsets[c]..self.member_offsets[c + 1]]
    }
}

/// Scratch of [`summarize_with`], reused across environments.
#[derive(Debug, Clone, Default)]
pub struct SummaryScratch {
    log_w: Vec<f64>,
    scaled: Vec<f64>,
    terms: Vec<f64>,
}

/// A sum in four interleaved partial sums (so that the additions pipeline), then
/// combined pairwise.
fn sum4(xs: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = xs.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `sum values[i]` over `idx`, in four interleaved partial sums.
fn gather_sum4(values: &[f64], idx: &[u32]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = idx.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().map(|&i| values[i as usize]).sum();
    for c in chunks {
        for (a, &i) in acc.iter_mut().zip(c) {
            *a += values[i as usize];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// [`summarize`] with the caller's scratch and its `exp_in_place` (every element `x <=
/// 0` replaced by `e^x`, to within a few ulps), so a SIMD backend can take the
/// exponentials in one vectorised pass.
pub fn summarize_with(
    config: &PosteriorConfig,
    target: usize,
    indexed: &IndexedSets,
    log_ml: &[f64],
    marginals: &mut [f32],
    scratch: &mut SummaryScratch,
    exp_in_place: impl FnOnce(&mut [f64]),
) -> (f32, [u32; MAX_PARENTS]) {
    let sets = indexed.sets();
    let SummaryScratch {
        log_w,
        scaled,
        terms,
    } = scratch;
    log_w.clear();
    log_w.extend(
        sets.iter()
            .zip(log_ml)
            .map(|(s, l)| l - config.sparsity * s.len() as f64),
    );
    // The MAP set is the first of the largest (NaN scores never win).
    let max = log_w
        .chunks(4)
        .fold([f64::NEG_INFINITY; 4], |mut m, c| {
            for (m, &v) in m.iter_mut().zip(c) {
                *m = m.max(v);
            }
            m
        })
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max);
    let map = log_w.iter().position(|&v| v == max).unwrap_or(0);
    // One exp per set: w = e / total with e = exp(lw - max), and, as the weights sum
    // to 1, the entropy -sum w ln w = ln total - sum e (lw - max) / total.
    scaled.clear();
    scaled.extend(log_w.iter().map(|v| v - max));
    terms.clear();
    terms.extend_from_slice(scaled);
    exp_in_place(scaled);
    for (t, &e) in terms.iter_mut().zip(scaled.iter()) {
        *t = if e > 0.0 { e * *t } else { 0.0 };
    }
    let total = sum4(scaled);
    let entropy = total.ln() - sum4(terms) / total;
    marginals.fill(0.0);
    for c in 0..indexed.candidates() {
        let p = gather_sum4(scaled, indexed.containing(c)) / total;
        marginals[candidate_variable(c, target) as usize] = p.clamp(0.0, 1.0) as f32;
    }
    let mut map_set = [NO_PARENT; MAX_PARENTS];
    for (slot, &c) in map_set.iter_mut().zip(&sets[map]) {
        *slot = candidate_variable(c, target);
    }
    ((entropy / std::f64::consts::LN_2).max(0.0) as f32, map_set)
}
