//! The closed causal-acquisition loop's contract: its settings, the random draws of
//! its policies (counter-based, so every backend makes the same choices), the
//! mechanism features it feeds the acquisition state, and the trait its backends
//! implement. Semantics: `docs/sim.md`, "The closed loop".

use super::posterior::PosteriorSummary;
use super::scm::ScmBatch;
use crate::acquisition::{MAX_MAGNITUDE, NO_SELECTION};
use crate::error::{Result, TesseraError, check_len, check_magnitude};
use crate::rng::philox4x32_10;

/// How the loop chooses the variable to intervene on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// The acquisition state's choice (`select_intervention`).
    Acquisition,
    /// A uniformly random non-target variable (the baseline), from a seed.
    Random {
        /// Seed of the choices.
        seed: u64,
    },
}

/// The value a chosen variable is clamped to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValuePolicy {
    /// Always this value.
    Fixed(f32),
    /// Uniform in `[lo, hi)`, from a seed.
    Uniform {
        /// Lower end.
        lo: f32,
        /// Upper end.
        hi: f32,
        /// Seed of the draws.
        seed: u64,
    },
}

/// The loop's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopConfig {
    /// Largest parent set the posterior scores (0..=3).
    pub max_parents: usize,
    /// Ring capacity of the acquisition state.
    pub capacity: usize,
    /// Mechanism-feature learning rate, in (0, 1].
    pub learning_rate: f32,
    /// Exploration weight of the acquisition scores.
    pub exploration_weight: f32,
    /// How the variable is chosen.
    pub selection: Selection,
    /// How its value is chosen (unless a step is given its values).
    pub values: ValuePolicy,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            max_parents: 2,
            capacity: 1000,
            learning_rate: 0.3,
            exploration_weight: 0.1,
            selection: Selection::Acquisition,
            values: ValuePolicy::Uniform {
                lo: -2.0,
                hi: 2.0,
                seed: 0,
            },
        }
    }
}

impl LoopConfig {
    /// Checks the value policy, the learning rate and the exploration weight (the
    /// posterior and the acquisition state check the rest when they are built).
    pub fn validate(&self) -> Result<()> {
        if let ValuePolicy::Fixed(v) = self.values {
            check_magnitude("values", &[v], MAX_MAGNITUDE)?;
        }
        if let ValuePolicy::Uniform { lo, hi, .. } = self.values
            && !(lo.is_finite()
                && hi.is_finite()
                && lo < hi
                && lo.abs().max(hi.abs()) <= MAX_MAGNITUDE)
        {
            return Err(TesseraError::InvalidConfig {
                field: "values",
                value: format!("Uniform {lo}..{hi}"),
                expected: format!("finite bounds with lo < hi, within +-{MAX_MAGNITUDE:e}"),
            });
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(TesseraError::InvalidConfig {
                field: "learning_rate",
                value: self.learning_rate.to_string(),
                expected: "a value in (0, 1]".into(),
            });
        }
        crate::acquisition::validate_exploration_weight(self.exploration_weight)
    }
}

/// Purpose tag of the loop's policy streams (other streams: the SCM's generation and
/// the sampling noise).
const POLICY_STREAM: u32 = 0x4C4F_4F50;

/// The Philox key of a policy stream: its seed, a salt naming the policy, and the
/// batch's seed, so two batches with one policy seed still draw differently.
fn policy_key(seed: u64, salt: u64, scm_seed: u64) -> [u32; 2] {
    let k = seed ^ salt ^ scm_seed;
    [k as u32, (k >> 32) as u32]
}

/// The draws the loop's policies make, as Philox keys: the word of environment `env`
/// at step `step` is `philox4x32_10([env, step, POLICY_STREAM, 0], key)[0]`. Mirrors
/// `LoopParams` in `shaders/sim/loop_prepare.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyKeys {
    /// Key of the random choices.
    pub choice: [u32; 2],
    /// Key of the uniform values.
    pub value: [u32; 2],
}

impl PolicyKeys {
    /// The keys of `config`'s policies for `scm`.
    pub fn new(config: &LoopConfig, scm: &ScmBatch) -> Self {
        let choice_seed = match config.selection {
            Selection::Random { seed } => seed,
            Selection::Acquisition => 0,
        };
        let value_seed = match config.values {
            ValuePolicy::Uniform { seed, .. } => seed,
            ValuePolicy::Fixed(_) => 0,
        };
        let scm_seed = scm.config().seed;
        Self {
            choice: policy_key(choice_seed, 0xC401CE, scm_seed),
            value: policy_key(value_seed, 0x7A1DE, scm_seed),
        }
    }
}

/// The policy word of environment `env` at step `step` under `key`.
pub fn policy_word(key: [u32; 2], env: usize, step: u32) -> u32 {
    philox4x32_10([env as u32, step, POLICY_STREAM, 0], key)[0]
}

/// A uniformly random non-target variable of `n_vars` from a word: `(word * (n - 1))
/// >> 32`, skipping the target; [`NO_SELECTION`] when the target is the only variable.
pub fn random_choice(word: u32, n_vars: usize, target: u32) -> u32 {
    if n_vars <= 1 {
        return NO_SELECTION;
    }
    let v = ((u64::from(word) * (n_vars as u64 - 1)) >> 32) as u32;
    if v >= target { v + 1 } else { v }
}

/// The random policy's choice for every environment of `scm` at step `step` (what
/// `loop_prepare.wgsl` draws on the device).
pub fn random_choices(key: [u32; 2], scm: &ScmBatch, step: u32) -> Vec<u32> {
    scm.targets()
        .iter()
        .enumerate()
        .map(|(e, &t)| random_choice(policy_word(key, e, step), scm.n_vars(), t))
        .collect()
}

/// A value uniform in `[lo, hi)` from a word's top 24 bits: `lo + (hi - lo) u`.
pub fn uniform_value(word: u32, lo: f32, hi: f32) -> f32 {
    let u = (word >> 8) as f32 * (1.0 / 16_777_216.0);
    // The GPU may fuse this multiply-add; the values agree to one rounding.
    (lo + (hi - lo) * u).min(hi.next_down())
}

/// The observed mechanism features the loop feeds the acquisition state
/// (`[B, n_vars, 3]`): the posterior parent probability `p`, its uncertainty
/// `4 p (1 - p)` and its certainty `1 - 4 p (1 - p)`, so the state's mechanism
/// confidence `|F0| / (1 + F1)` is high for variables the posterior is sure are parents.
pub fn mechanism_features(marginals: &[f32]) -> Vec<f32> {
    marginals
        .iter()
        .flat_map(|&p| {
            let u = 4.0 * p * (1.0 - p);
            [p, u, 1.0 - u]
        })
        .collect()
}

/// Checks the values of [`ClosedLoopBackend::step_with_values`]: `[B]`, finite and
/// within [`MAX_MAGNITUDE`].
pub fn validate_values(scm: &ScmBatch, values: &[f32]) -> Result<()> {
    check_len("values", values, scm.batch())?;
    check_magnitude("values", values, MAX_MAGNITUDE)
}

/// A backend that runs the closed loop: each step samples the chosen interventions'
/// outcomes (draw number = step), adds them to the exact parent-set posterior, sets the
/// posterior into the acquisition state, and runs its fused step, which chooses the
/// next interventions. Reads are on request; a GPU backend reads nothing back in a
/// step.
pub trait ClosedLoopBackend {
    /// The models the loop runs on.
    fn scm(&self) -> &ScmBatch;

    /// Steps taken.
    fn steps(&self) -> u32;

    /// One step for every environment with values from the configured policy.
    fn step(&mut self) -> Result<()>;

    /// One step with the chosen variable of environment `e` clamped to `values[e]`;
    /// fails, with nothing changed, on values of the wrong length, non-finite or
    /// beyond [`MAX_MAGNITUDE`].
    fn step_with_values(&mut self, values: &[f32]) -> Result<()>;

    /// `[B]` the variable each environment intervenes on next ([`NO_SELECTION`] when
    /// it has none to choose).
    fn chosen(&mut self) -> Result<Vec<u32>>;

    /// The posterior after the last step (all zeros before the first).
    fn posterior(&mut self) -> Result<PosteriorSummary>;

    /// `[B]` the best target value each environment has sampled (-inf before any step).
    fn best_values(&mut self) -> Result<Vec<f32>>;

    /// Blocks until the device has finished the steps recorded so far.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    /// Whether each environment's MAP parent set equals its target's true parents.
    fn map_matches_truth(&mut self) -> Result<Vec<bool>> {
        let summary = self.posterior()?;
        let scm = self.scm();
        Ok((0..scm.batch())
            .map(|e| summary.map_set(e) == scm.parents(e, scm.targets()[e]))
            .collect())
    }
}

/// The posterior summary of a batch before any row: zero marginals and entropies, the
/// empty set as MAP.
pub fn empty_summary(batch: usize, n_vars: usize) -> PosteriorSummary {
    PosteriorSummary {
        marginals: vec![0.0; batch * n_vars],
        entropy_bits: vec![0.0; batch],
        map_sets: vec![[super::NO_PARENT; super::MAX_PARENTS]; batch],
        rows: vec![0; batch],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_choices_skip_the_target_and_cover_the_rest() {
        let mut seen = [0usize; 5];
        for step in 0..2000 {
            let v = random_choice(policy_word([1, 2], 3, step), 5, 2);
            assert_ne!(v, 2);
            seen[v as usize] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(seen.iter().enumerate().all(|(v, &n)| v == 2 || n > 400));
        assert_eq!(random_choice(7, 1, 0), NO_SELECTION);
        assert_eq!(random_choice(u32::MAX, 3, 2), 1);
    }

    #[test]
    fn uniform_values_stay_in_range() {
        for w in [0, 1, 255, 256, u32::MAX, u32::MAX - 255] {
            let v = uniform_value(w, -2.0, 2.0);
            assert!((-2.0..2.0).contains(&v), "{v}");
        }
        assert_eq!(uniform_value(0, -2.0, 2.0), -2.0);
        let v = uniform_value(u32::MAX, 0.999_999_9, 1.0);
        assert!(v < 1.0);
    }

    #[test]
    fn bad_policies_are_refused() {
        let bad = |values| LoopConfig {
            values,
            ..LoopConfig::default()
        };
        for values in [
            ValuePolicy::Fixed(f32::NAN),
            ValuePolicy::Fixed(1e30),
            ValuePolicy::Uniform {
                lo: 1.0,
                hi: 1.0,
                seed: 0,
            },
            ValuePolicy::Uniform {
                lo: f32::NEG_INFINITY,
                hi: 1.0,
                seed: 0,
            },
        ] {
            assert!(bad(values).validate().is_err(), "{values:?}");
        }
        assert!(LoopConfig::default().validate().is_ok());
    }
}
