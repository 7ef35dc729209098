//! Inputs and typed outputs of the acquisition kernels. The `Pod` types cross to the
//! GPU unchanged, so their layout is part of the WGSL contract (`shaders/acquisition/common.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::config::AcquisitionConfig;
use super::config::MAX_MAGNITUDE;
use crate::error::{Result, TesseraError, check_finite, check_len, check_magnitude};

/// Per-environment scalars of the state. Mirrors `EnvScalars` in WGSL.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct EnvScalars {
    /// Ring slot the next sample is written to.
    pub write_idx: u32,
    /// Valid samples in the ring: `min(step, capacity)`.
    pub n_samples: u32,
    /// Samples added so far (not capped).
    pub step: u32,
    /// The environment's target variable.
    pub target_idx: u32,
    /// Best target value seen (-inf / +inf before the first sample).
    pub best_value: f32,
    /// Posterior entropy in bits.
    pub uncertainty_bits: f32,
    /// Front of the previous-best window deque (a position in `prev_best_window`).
    pub window_head: u32,
    /// Entries in the previous-best window deque.
    pub window_len: u32,
}

impl EnvScalars {
    /// Ring slot of the `k`-th oldest valid sample.
    pub fn chronological_slot(&self, capacity: usize, k: usize) -> usize {
        (self.write_idx as usize + capacity - self.n_samples as usize + k) % capacity
    }

    /// The fields the spec defines (the window deque's bookkeeping left out), for
    /// comparing backends that keep different auxiliary structures.
    pub fn spec_fields(&self) -> (u32, u32, u32, u32, f32, f32) {
        (
            self.write_idx,
            self.n_samples,
            self.step,
            self.target_idx,
            self.best_value,
            self.uncertainty_bits,
        )
    }
}

/// Result of `optimization_progress` for one environment.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct Progress {
    /// Gain of the best value over the oldest valid sample.
    pub improvement_from_start: f32,
    /// Gain of the last (up to) 10 samples over the ones before them, at least 0.
    pub recent_improvement: f32,
    /// `improvement_from_start / step`.
    pub optimization_rate: f32,
    /// How many of the last 5 samples were not within 1e-6 of the best.
    pub stagnation_steps: u32,
}

/// Result of `exploration_coverage` for one environment.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct Coverage {
    /// Share of non-target variables intervened on at least once.
    pub target_coverage_rate: f32,
    /// Normalised entropy of the interventions over non-target variables.
    pub intervention_diversity: f32,
    /// `1 - target_coverage_rate`.
    pub unexplored_variables: f32,
}

/// Everything one pipeline step reports per environment. Mirrors `StepSummary` in WGSL.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct StepSummary {
    /// Written by `optimization_progress`.
    pub progress: Progress,
    /// Written by `exploration_coverage`.
    pub coverage: Coverage,
    /// Written by `select_intervention`: the variable to intervene on next.
    pub selected: u32,
}

/// One new sample for every environment of the batch.
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    /// `[B, n_vars]` observed values.
    pub values: &'a [f32],
    /// `[B, n_vars]` whether the sample intervened on each variable.
    pub intervened: &'a [bool],
    /// `[B]` target outcomes.
    pub targets: &'a [f32],
}

impl Samples<'_> {
    /// Checks lengths against the config and that every float is finite.
    pub fn validate(&self, config: &AcquisitionConfig) -> Result<()> {
        let rows = config.batch() * config.n_vars;
        check_len("values", self.values, rows)?;
        check_len("intervened", self.intervened, rows)?;
        check_len("targets", self.targets, config.batch())?;
        check_magnitude("values", self.values, MAX_MAGNITUDE)?;
        check_magnitude("targets", self.targets, MAX_MAGNITUDE)
    }
}

/// Inputs of one fused pipeline step for the whole batch.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// The new samples.
    pub samples: Samples<'a>,
    /// `[B, n_vars, feature_dim]` observed mechanism features.
    pub observed: &'a [f32],
    /// Mechanism-feature learning rate in (0, 1].
    pub learning_rate: f32,
    /// Exploration weight of the acquisition scores (default 0.1).
    pub exploration_weight: f32,
}

impl StepInput<'_> {
    /// Checks every input of the step.
    pub fn validate(&self, config: &AcquisitionConfig) -> Result<()> {
        self.samples.validate(config)?;
        validate_observed(config, self.observed, self.learning_rate)?;
        validate_exploration_weight(self.exploration_weight)
    }
}

/// Checks the inputs of `update_mechanism_features`.
pub fn validate_observed(config: &AcquisitionConfig, observed: &[f32], lr: f32) -> Result<()> {
    check_len(
        "observed",
        observed,
        config.batch() * config.n_vars * config.feature_dim,
    )?;
    check_magnitude("observed", observed, MAX_MAGNITUDE)?;
    validate_learning_rate(lr)
}

/// Checks the learning rate of `update_mechanism_features`: in (0, 1].
pub fn validate_learning_rate(lr: f32) -> Result<()> {
    if lr > 0.0 && lr <= 1.0 {
        Ok(())
    } else {
        Err(TesseraError::InvalidArgument {
            what: "learning_rate",
            value: lr as f64,
            expected: "a value in (0, 1]",
        })
    }
}

/// Checks the exploration weight of `acquisition_scores`.
pub fn validate_exploration_weight(weight: f32) -> Result<()> {
    if weight.is_finite() && weight.abs() <= MAX_MAGNITUDE {
        Ok(())
    } else {
        Err(TesseraError::InvalidArgument {
            what: "exploration_weight",
            value: weight as f64,
            expected: "a finite value of magnitude at most 1e15",
        })
    }
}

/// Checks the inputs of `set_posterior`: `[B, n_vars]` probabilities in [0, 1] and
/// `[B]` finite, non-negative entropies.
pub fn validate_posterior(
    config: &AcquisitionConfig,
    marginal_probs: &[f32],
    uncertainty_bits: &[f32],
) -> Result<()> {
    check_len(
        "marginal_probs",
        marginal_probs,
        config.batch() * config.n_vars,
    )?;
    check_len("uncertainty_bits", uncertainty_bits, config.batch())?;
    check_finite("marginal_probs", marginal_probs)?;
    check_finite("uncertainty_bits", uncertainty_bits)?;
    if let Some(&p) = marginal_probs.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(TesseraError::InvalidArgument {
            what: "marginal_probs",
            value: p as f64,
            expected: "probabilities in [0, 1]",
        });
    }
    if let Some(&h) = uncertainty_bits
        .iter()
        .find(|h| !(0.0..=MAX_MAGNITUDE).contains(*h))
    {
        return Err(TesseraError::InvalidArgument {
            what: "uncertainty_bits",
            value: h as f64,
            expected: "entropies in [0, 1e15]",
        });
    }
    Ok(())
}

/// Checks the window length of `history_tensor` (1..=1000000) and that its output
/// fits the config's memory limit.
pub fn validate_history_len(config: &AcquisitionConfig, t: usize) -> Result<()> {
    if t == 0 || t > super::config::MAX_CAPACITY {
        return Err(TesseraError::InvalidArgument {
            what: "history length T",
            value: t as f64,
            expected: "1..=1000000",
        });
    }
    config.check_history_bytes(t).map(drop)
}
