//! Host-side state of a batch of acquisition environments, in the layout every backend
//! shares (environment-major, row-major inside an environment).

use super::config::{AcquisitionConfig, MAX_MAGNITUDE, NO_SELECTION, Objective};
use super::types::{EnvScalars, StepSummary};
use crate::error::{Result, TesseraError};

/// One array's per-element check: field, data, elements per environment, the test
/// and what it expects.
type ElementCheck<'a> = (
    &'static str,
    &'a [f32],
    usize,
    fn(f32) -> bool,
    &'static str,
);

/// Whether `v` is finite and within [`MAX_MAGNITUDE`].
fn in_magnitude(v: f32) -> bool {
    v.is_finite() && v.abs() <= MAX_MAGNITUDE
}

/// The full state of `B` environments. The CPU backend works on it in place; the GPU
/// backend keeps the same arrays in device buffers and reads them back into this type.
///
/// Besides the spec's fields it keeps two incremental structures so that no step
/// rescans the ring: `intervention_counts`, the number of valid samples that intervened
/// on each variable (the new row is added, the overwritten one subtracted), and
/// `prev_best_window`, a monotonic deque of step numbers whose front is the best target
/// among the valid samples older than the newest 10 (the `prev` of
/// `optimization_progress`). It also keeps the outputs of the last computed operations (`summaries`,
/// `policy_features`, `scores`).
#[derive(Debug, Clone, PartialEq)]
pub struct AcquisitionState {
    /// The configuration the state was built for.
    pub config: AcquisitionConfig,
    /// `[B, capacity, n_vars]` observed values.
    pub values: Vec<f32>,
    /// `[B, capacity, n_vars]` 1.0 where the sample intervened, else 0.0.
    pub interventions: Vec<f32>,
    /// `[B, capacity]` target outcomes.
    pub targets: Vec<f32>,
    /// `[B]` ring cursors, counters and scalars.
    pub scalars: Vec<EnvScalars>,
    /// `[B, n_vars, feature_dim]` mechanism features.
    pub mechanism_features: Vec<f32>,
    /// `[B, n_vars]` marginal parent probabilities.
    pub marginal_probs: Vec<f32>,
    /// `[B, n_vars]` last computed mechanism confidence.
    pub confidence: Vec<f32>,
    /// `[B, n_vars]` interventions per variable among the valid samples.
    pub intervention_counts: Vec<u32>,
    /// `[B, capacity]` ring of step numbers: the monotonic deque behind `prev`.
    pub prev_best_window: Vec<u32>,
    /// `[B]` last computed progress, coverage and selection.
    pub summaries: Vec<StepSummary>,
    /// `[B, n_vars, feature_dim + 12]` last computed policy features.
    pub policy_features: Vec<f32>,
    /// `[B, n_vars]` last computed acquisition scores.
    pub scores: Vec<f32>,
}

impl AcquisitionState {
    /// A fresh state with the spec's defaults. Fails on an invalid config.
    pub fn new(config: &AcquisitionConfig) -> Result<Self> {
        config.validate()?;
        let (b, n, cap, fd) = (
            config.batch(),
            config.n_vars,
            config.capacity,
            config.feature_dim,
        );
        let mut mechanism_features = vec![0.5; b * n * fd];
        for row in mechanism_features.chunks_exact_mut(fd) {
            row[0] = 1.0;
        }
        let mut marginal_probs = vec![0.5; b * n];
        for (env, &t) in config.target_indices.iter().enumerate() {
            marginal_probs[env * n + t as usize] = 0.0;
        }
        let scalars = config
            .target_indices
            .iter()
            .map(|&target_idx| EnvScalars {
                write_idx: 0,
                n_samples: 0,
                step: 0,
                target_idx,
                best_value: config.objective.worst(),
                uncertainty_bits: 1.0,
                window_head: 0,
                window_len: 0,
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            values: vec![0.0; b * cap * n],
            interventions: vec![0.0; b * cap * n],
            targets: vec![0.0; b * cap],
            scalars,
            mechanism_features,
            confidence: marginal_probs.clone(),
            marginal_probs,
            intervention_counts: vec![0; b * n],
            prev_best_window: vec![0; b * cap],
            summaries: vec![StepSummary::default(); b],
            policy_features: vec![0.0; b * n * config.policy_width()],
            scores: vec![0.0; b * n],
        })
    }

    /// Checks the config and that every array has the length it implies (a state
    /// built elsewhere, e.g. deserialised, may not). Allocates nothing.
    pub fn check_shapes(&self) -> Result<()> {
        self.config.validate()?;
        let c = &self.config;
        let (b, n, cap, fd) = (c.batch(), c.n_vars, c.capacity, c.feature_dim);
        // The config is valid, so its state fits the memory limit and these products fit.
        for (what, got, expected) in [
            ("values", self.values.len(), b * cap * n),
            ("interventions", self.interventions.len(), b * cap * n),
            ("targets", self.targets.len(), b * cap),
            ("scalars", self.scalars.len(), b),
            (
                "mechanism_features",
                self.mechanism_features.len(),
                b * n * fd,
            ),
            ("marginal_probs", self.marginal_probs.len(), b * n),
            ("confidence", self.confidence.len(), b * n),
            ("intervention_counts", self.intervention_counts.len(), b * n),
            ("prev_best_window", self.prev_best_window.len(), b * cap),
            ("summaries", self.summaries.len(), b),
            (
                "policy_features",
                self.policy_features.len(),
                b * n * c.policy_width(),
            ),
            ("scores", self.scores.len(), b * n),
        ] {
            if got != expected {
                return Err(crate::TesseraError::ShapeMismatch {
                    what,
                    got,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Checks every invariant a backend relies on, so that a corrupt checkpoint is
    /// rejected instead of making a kernel panic or return garbage: the shapes; per
    /// environment, the target, ring cursor and counts consistent with `step`
    /// (`n_samples = min(step, capacity)`, `write_idx = step % capacity`); finite
    /// values within [`MAX_MAGNITUDE`]; intervention flags of 0 or 1; probabilities in
    /// [0, 1]; entropies >= 0; `best_value` the objective's worst before the first
    /// sample and otherwise finite and no worse than any valid target; and the
    /// incremental structures equal to a rescan of the ring. The error names the
    /// field and the environment. Runs in time linear in the state's size.
    pub fn validate(&self) -> Result<()> {
        self.check_shapes()?;
        let c = &self.config;
        let (n, cap) = (c.n_vars, c.capacity);
        let bad = |field: &'static str, env: usize, message: String| {
            Err(TesseraError::InvalidState {
                field,
                env,
                message,
            })
        };
        // Per-element checks of the big arrays: the first offender names its env.
        let arrays: [ElementCheck<'_>; 7] = [
            (
                "values",
                &self.values,
                cap * n,
                in_magnitude,
                "finite values within 1e15",
            ),
            (
                "targets",
                &self.targets,
                cap,
                in_magnitude,
                "finite values within 1e15",
            ),
            (
                "interventions",
                &self.interventions,
                cap * n,
                |v| v == 0.0 || v == 1.0,
                "0 or 1",
            ),
            (
                "mechanism_features",
                &self.mechanism_features,
                n * c.feature_dim,
                in_magnitude,
                "finite values within 1e15",
            ),
            (
                "marginal_probs",
                &self.marginal_probs,
                n,
                |v| (0.0..=1.0).contains(&v),
                "probabilities in [0, 1]",
            ),
            (
                "confidence",
                &self.confidence,
                n,
                f32::is_finite,
                "finite values",
            ),
            (
                "scores",
                &self.scores,
                n,
                |v| v.is_finite() || v == f32::NEG_INFINITY,
                "finite values (-inf for the target)",
            ),
        ];
        for (field, data, per_env, ok, expected) in arrays {
            if let Some(i) = data.iter().position(|&v| !ok(v)) {
                return bad(
                    field,
                    i / per_env,
                    format!(
                        "element {} is {}, expected {expected}",
                        i % per_env,
                        data[i]
                    ),
                );
            }
        }
        if let Some(i) = self.policy_features.iter().position(|v| !v.is_finite()) {
            let per_env = n * c.policy_width();
            return bad(
                "policy_features",
                i / per_env,
                format!("element {} is {}", i % per_env, self.policy_features[i]),
            );
        }
        for (env, (s, summary)) in self.scalars.iter().zip(&self.summaries).enumerate() {
            let target = c.target_indices[env];
            if s.target_idx != target {
                return bad(
                    "scalars.target_idx",
                    env,
                    format!("{}, but the config's target is {target}", s.target_idx),
                );
            }
            let expected_n = (s.step as usize).min(cap);
            if s.n_samples as usize != expected_n {
                return bad(
                    "scalars.n_samples",
                    env,
                    format!(
                        "{}, expected min(step {}, capacity {cap}) = {expected_n}",
                        s.n_samples, s.step
                    ),
                );
            }
            if s.write_idx as usize != s.step as usize % cap {
                return bad(
                    "scalars.write_idx",
                    env,
                    format!("{}, expected step {} % capacity {cap}", s.write_idx, s.step),
                );
            }
            if !(s.uncertainty_bits.is_finite()
                && (0.0..=MAX_MAGNITUDE).contains(&s.uncertainty_bits))
            {
                return bad(
                    "scalars.uncertainty_bits",
                    env,
                    format!("{}, expected an entropy in [0, 1e15]", s.uncertainty_bits),
                );
            }
            let targets = &self.targets[env * cap..][..cap];
            let better = |a: f32, b: f32| match c.objective {
                Objective::Maximize => a > b,
                Objective::Minimize => a < b,
            };
            if s.n_samples == 0 {
                if s.best_value != c.objective.worst() {
                    return bad(
                        "scalars.best_value",
                        env,
                        format!(
                            "{} before any sample, expected {}",
                            s.best_value,
                            c.objective.worst()
                        ),
                    );
                }
            } else if !in_magnitude(s.best_value) {
                return bad(
                    "scalars.best_value",
                    env,
                    format!("{}, expected a finite value within 1e15", s.best_value),
                );
            } else if let Some(k) = (0..s.n_samples as usize)
                .find(|&k| better(targets[s.chronological_slot(cap, k)], s.best_value))
            {
                return bad(
                    "scalars.best_value",
                    env,
                    format!(
                        "{} is worse than the valid target {}",
                        s.best_value,
                        targets[s.chronological_slot(cap, k)]
                    ),
                );
            }
            if summary.selected != NO_SELECTION && summary.selected as usize >= n {
                return bad(
                    "summaries.selected",
                    env,
                    format!(
                        "{}, expected a variable below {n} or NO_SELECTION",
                        summary.selected
                    ),
                );
            }
            let p = &summary.progress;
            let v = &summary.coverage;
            if ![
                p.improvement_from_start,
                p.recent_improvement,
                p.optimization_rate,
                v.target_coverage_rate,
                v.intervention_diversity,
                v.unexplored_variables,
            ]
            .iter()
            .all(|x| x.is_finite())
            {
                return bad("summaries", env, "non-finite progress or coverage".into());
            }
            self.check_window(env, s)?;
        }
        let counts = self.rescan_intervention_counts();
        if let Some(i) = counts
            .iter()
            .zip(&self.intervention_counts)
            .position(|(a, b)| a != b)
        {
            return bad(
                "intervention_counts",
                i / n,
                format!(
                    "variable {} counts {}, the ring holds {}",
                    i % n,
                    self.intervention_counts[i],
                    counts[i]
                ),
            );
        }
        Ok(())
    }

    /// The previous-best deque of `env`: its cursors in range, its entries valid step
    /// numbers older than the newest 10, in order, with targets from best to worst,
    /// and its front the best of those samples.
    fn check_window(&self, env: usize, s: &EnvScalars) -> Result<()> {
        let cap = self.config.capacity;
        let bad = |message: String| {
            Err(TesseraError::InvalidState {
                field: "prev_best_window",
                env,
                message,
            })
        };
        let older = (s.n_samples as usize).saturating_sub(10);
        if s.window_head as usize >= cap || s.window_len as usize > older {
            return bad(format!(
                "head {} and length {}, expected a head below {cap} and at most {older} entries",
                s.window_head, s.window_len
            ));
        }
        let window = &self.prev_best_window[env * cap..][..cap];
        let first_valid = s.step as u64 - s.n_samples as u64;
        let newest_older = (s.step as u64).saturating_sub(10);
        let mut previous: Option<(u32, f32)> = None;
        for k in 0..s.window_len as usize {
            let step = window[(s.window_head as usize + k) % cap];
            if (step as u64) < first_valid || step as u64 >= newest_older {
                return bad(format!(
                    "entry {k} is step {step}, expected a valid step older than the newest 10"
                ));
            }
            let value = self.targets[env * cap + step as usize % cap];
            if let Some((prev_step, prev_value)) = previous {
                let ordered = match self.config.objective {
                    Objective::Maximize => prev_value >= value,
                    Objective::Minimize => prev_value <= value,
                };
                if step <= prev_step || !ordered {
                    return bad(format!("entry {k} (step {step}) breaks the deque's order"));
                }
            }
            previous = Some((step, value));
        }
        let front = (s.window_len > 0)
            .then(|| self.targets[env * cap + window[s.window_head as usize] as usize % cap]);
        let want = self.rescan_prev_best_of(env);
        if front != want {
            return bad(format!(
                "its front holds {front:?}, a rescan of the ring finds {want:?}"
            ));
        }
        Ok(())
    }

    /// Bytes held by the state's arrays (what a backend keeps resident for it).
    pub fn bytes(&self) -> usize {
        use std::mem::size_of_val;
        size_of_val(self.values.as_slice())
            + size_of_val(self.interventions.as_slice())
            + size_of_val(self.targets.as_slice())
            + size_of_val(self.scalars.as_slice())
            + size_of_val(self.mechanism_features.as_slice())
            + size_of_val(self.marginal_probs.as_slice())
            + size_of_val(self.confidence.as_slice())
            + size_of_val(self.intervention_counts.as_slice())
            + size_of_val(self.prev_best_window.as_slice())
            + size_of_val(self.summaries.as_slice())
            + size_of_val(self.policy_features.as_slice())
            + size_of_val(self.scores.as_slice())
    }

    /// Counts of interventions per variable recomputed by scanning the valid rows of
    /// the ring: what `intervention_counts` must always equal.
    pub fn rescan_intervention_counts(&self) -> Vec<u32> {
        let (n, cap) = (self.config.n_vars, self.config.capacity);
        let mut counts = vec![0u32; self.intervention_counts.len()];
        for (env, s) in self.scalars.iter().enumerate() {
            for k in 0..s.n_samples as usize {
                let slot = s.chronological_slot(cap, k);
                let row = &self.interventions[(env * cap + slot) * n..][..n];
                for (c, &x) in counts[env * n..][..n].iter_mut().zip(row) {
                    *c += (x != 0.0) as u32;
                }
            }
        }
        counts
    }

    /// The best target among each environment's valid samples older than the newest
    /// 10, found by scanning the ring: what the front of `prev_best_window` must hold
    /// (`None` where there are no such samples).
    pub fn rescan_prev_best(&self) -> Vec<Option<f32>> {
        (0..self.scalars.len())
            .map(|env| self.rescan_prev_best_of(env))
            .collect()
    }

    fn rescan_prev_best_of(&self, env: usize) -> Option<f32> {
        let cap = self.config.capacity;
        let maximize = self.config.objective == Objective::Maximize;
        let s = &self.scalars[env];
        let older = (s.n_samples as usize).saturating_sub(10);
        (0..older)
            .map(|k| self.targets[env * cap + s.chronological_slot(cap, k)])
            .reduce(|a, b| if maximize { a.max(b) } else { a.min(b) })
    }

    /// What the front of each environment's `prev_best_window` holds.
    pub fn window_prev_best(&self) -> Vec<Option<f32>> {
        let cap = self.config.capacity;
        self.scalars
            .iter()
            .enumerate()
            .map(|(env, s)| {
                (s.window_len > 0).then(|| {
                    let step = self.prev_best_window[env * cap + s.window_head as usize];
                    self.targets[env * cap + step as usize % cap]
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let cfg = AcquisitionConfig::batched(3, 4, vec![1, 2]);
        let s = AcquisitionState::new(&cfg).unwrap();
        assert_eq!(&s.mechanism_features[..3], &[1.0, 0.5, 0.5]);
        assert_eq!(&s.marginal_probs, &[0.5, 0.0, 0.5, 0.5, 0.5, 0.0]);
        assert_eq!(s.confidence, s.marginal_probs);
        assert_eq!(s.scalars[0].best_value, f32::NEG_INFINITY);
        assert_eq!(s.scalars[1].uncertainty_bits, 1.0);
    }

    #[test]
    fn malformed_states_are_rejected() {
        let mut s = AcquisitionState::new(&AcquisitionConfig::single(3, 4, 0)).unwrap();
        assert!(s.check_shapes().is_ok());
        s.targets.pop();
        assert!(matches!(
            s.check_shapes(),
            Err(crate::TesseraError::ShapeMismatch {
                what: "targets",
                got: 3,
                expected: 4
            })
        ));
    }

    #[test]
    fn three_vars_capacity_1000_fits_64_kib() {
        let s = AcquisitionState::new(&AcquisitionConfig::single(3, 1000, 0)).unwrap();
        assert!(s.bytes() <= 64 * 1024, "{} bytes", s.bytes());
    }
}
