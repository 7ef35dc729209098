//! Host-side state of a batch of acquisition environments, in the layout every backend
//! shares (environment-major, row-major inside an environment).

use super::config::AcquisitionConfig;
use super::types::{EnvScalars, StepSummary};
use crate::error::Result;

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
    /// built elsewhere, e.g. deserialised, may not).
    pub fn check_shapes(&self) -> Result<()> {
        let expected = Self::new(&self.config)?;
        let lens = |s: &Self| {
            [
                ("values", s.values.len()),
                ("interventions", s.interventions.len()),
                ("targets", s.targets.len()),
                ("scalars", s.scalars.len()),
                ("mechanism_features", s.mechanism_features.len()),
                ("marginal_probs", s.marginal_probs.len()),
                ("confidence", s.confidence.len()),
                ("intervention_counts", s.intervention_counts.len()),
                ("prev_best_window", s.prev_best_window.len()),
                ("summaries", s.summaries.len()),
                ("policy_features", s.policy_features.len()),
                ("scores", s.scores.len()),
            ]
        };
        match lens(self)
            .into_iter()
            .zip(lens(&expected))
            .find(|(g, w)| g.1 != w.1)
        {
            Some(((what, got), (_, expected))) => Err(crate::TesseraError::ShapeMismatch {
                what,
                got,
                expected,
            }),
            None => Ok(()),
        }
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
        let cap = self.config.capacity;
        let maximize = self.config.objective == super::Objective::Maximize;
        self.scalars
            .iter()
            .enumerate()
            .map(|(env, s)| {
                let older = (s.n_samples as usize).saturating_sub(10);
                (0..older)
                    .map(|k| self.targets[env * cap + s.chronological_slot(cap, k)])
                    .reduce(|a, b| if maximize { a.max(b) } else { a.min(b) })
            })
            .collect()
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
