//! The closed causal-acquisition loop: simulate, intervene, sample, update the exact
//! parent-set posterior, set it into the acquisition state, step, choose the next
//! intervention, for a whole batch of environments. Semantics: `docs/sim.md`.
//!
//! ```
//! use tessera::Device;
//! use tessera::causal::{ClosedLoop, LoopConfig};
//! use tessera::sim::{ScmBatch, ScmConfig};
//!
//! let scm = ScmBatch::generate(&ScmConfig::new(32, 6, 1))?;
//! let mut run = ClosedLoop::on(&Device::new_blocking(), &scm, &LoopConfig::default())?;
//! for _ in 0..20 {
//!     run.step()?;
//! }
//! let found = run.map_matches_truth().iter().filter(|&&m| m).count();
//! assert!(found > 0);
//! # Ok::<(), tessera::TesseraError>(())
//! ```
//!
//! Where each part runs: the simulator and the acquisition state on the device, the
//! posterior on the CPU (in f64). On a GPU a step therefore reads back the chosen
//! variables and the new samples and uploads the posterior: two small round trips per
//! step, not yet the single device-resident submission issue 10 asks for.

use tessera_cpu::CpuPosterior;
use tessera_tensor::acquisition::{AcquisitionConfig, NO_SELECTION, Samples, StepInput};
use tessera_tensor::rng::Rng;
use tessera_tensor::sim::{
    Intervention, Interventions, PosteriorBackend, PosteriorConfig, PosteriorSummary,
};
use tessera_tensor::{Result, TesseraError};

use crate::sim::{ScmBatch, Simulator};
use crate::{Acquisition, Device};

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
    /// How its value is chosen (unless [`ClosedLoop::step_with_values`] gives them).
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

/// A batch of environments running the closed loop on one device.
pub struct ClosedLoop {
    config: LoopConfig,
    scm: ScmBatch,
    sim: Simulator,
    posterior: CpuPosterior,
    acquisition: Acquisition,
    summary: PosteriorSummary,
    best: Vec<f32>,
    step: u32,
    choice_rng: Rng,
    value_rng: Rng,
}

impl std::fmt::Debug for ClosedLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosedLoop")
            .field("batch", &self.scm.batch())
            .field("n_vars", &self.scm.n_vars())
            .field("step", &self.step)
            .field("device", &self.acquisition.backend())
            .finish()
    }
}

impl ClosedLoop {
    /// The loop for `scm`'s environments on `device`: the simulator and the acquisition
    /// state (maximising each environment's target) on the device, an empty posterior,
    /// and a first choice of interventions from the initial state.
    pub fn on(device: &Device, scm: &ScmBatch, config: &LoopConfig) -> Result<Self> {
        if let ValuePolicy::Uniform { lo, hi, .. } = config.values
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(TesseraError::InvalidConfig {
                field: "values",
                value: format!("Uniform {lo}..{hi}"),
                expected: "finite bounds with lo < hi".into(),
            });
        }
        if !(config.learning_rate > 0.0 && config.learning_rate <= 1.0) {
            return Err(TesseraError::InvalidConfig {
                field: "learning_rate",
                value: config.learning_rate.to_string(),
                expected: "a value in (0, 1]".into(),
            });
        }
        tessera_tensor::acquisition::validate_exploration_weight(config.exploration_weight)?;
        let acq_config =
            AcquisitionConfig::batched(scm.n_vars(), config.capacity, scm.targets().to_vec());
        let mut acquisition = Acquisition::new(device, &acq_config)?;
        let posterior = CpuPosterior::new(&PosteriorConfig::for_scm(scm, config.max_parents))?;
        let sim = Simulator::on(device, scm)?;
        acquisition.evaluate(config.exploration_weight)?;
        let (b, d) = (scm.batch(), scm.n_vars());
        let seed = |policy_seed: u64, salt: u64| Rng::new(policy_seed ^ salt ^ scm.config().seed);
        Ok(Self {
            choice_rng: seed(
                match config.selection {
                    Selection::Random { seed } => seed,
                    Selection::Acquisition => 0,
                },
                0xC401CE,
            ),
            value_rng: seed(
                match config.values {
                    ValuePolicy::Uniform { seed, .. } => seed,
                    ValuePolicy::Fixed(_) => 0,
                },
                0x7A1DE,
            ),
            summary: PosteriorSummary {
                marginals: vec![0.0; b * d],
                entropy_bits: vec![0.0; b],
                map_sets: vec![
                    [tessera_tensor::sim::NO_PARENT; tessera_tensor::sim::MAX_PARENTS];
                    b
                ],
                rows: vec![0; b],
            },
            best: vec![f32::NEG_INFINITY; b],
            config: config.clone(),
            scm: scm.clone(),
            sim,
            posterior,
            acquisition,
            step: 0,
        })
    }

    /// One step for every environment with values from the configured policy.
    pub fn step(&mut self) -> Result<()> {
        let b = self.scm.batch();
        let values: Vec<f32> = match self.config.values {
            ValuePolicy::Fixed(v) => vec![v; b],
            ValuePolicy::Uniform { lo, hi, .. } => {
                (0..b).map(|_| self.value_rng.range(lo, hi)).collect()
            }
        };
        self.step_with_values(&values)
    }

    /// One step with the chosen variable of environment `e` clamped to `values[e]`:
    /// sample one row under the intervention, add it to the posterior, set the
    /// posterior into the acquisition state, run its fused step (which chooses the
    /// next interventions).
    pub fn step_with_values(&mut self, values: &[f32]) -> Result<()> {
        let (b, d) = (self.scm.batch(), self.scm.n_vars());
        tessera_tensor::error::check_len("values", values, b)?;
        tessera_tensor::error::check_magnitude(
            "values",
            values,
            tessera_tensor::acquisition::MAX_MAGNITUDE,
        )?;
        let chosen = self.choose()?;
        let mut ivs = vec![Intervention::OBSERVE; b * d];
        let mut intervened = vec![false; b * d];
        for (env, &v) in chosen.iter().enumerate() {
            if v != NO_SELECTION {
                ivs[env * d + v as usize] = Intervention::clamp(values[env]);
                intervened[env * d + v as usize] = true;
            }
        }
        let ivs = Interventions::PerEnv(&ivs);
        let row = self.sim.sample(self.step, 1, &ivs)?;
        let targets: Vec<f32> = (0..b)
            .map(|e| row[e * d + self.scm.targets()[e] as usize])
            .collect();
        // Checked before anything changes, so a refused step leaves the posterior and
        // the acquisition state as they were.
        let samples = Samples {
            values: &row,
            intervened: &intervened,
            targets: &targets,
        };
        samples.validate(self.acquisition.config())?;
        self.posterior.add_rows(&row, 1, &ivs)?;
        self.summary = self.posterior.posterior()?;
        for (best, &y) in self.best.iter_mut().zip(&targets) {
            *best = best.max(y);
        }
        self.acquisition
            .set_posterior(&self.summary.marginals, &self.summary.entropy_bits)?;
        let observed = mechanism_features(&self.summary.marginals);
        self.acquisition.step(&StepInput {
            samples,
            observed: &observed,
            learning_rate: self.config.learning_rate,
            exploration_weight: self.config.exploration_weight,
        })?;
        self.step += 1;
        Ok(())
    }

    /// The variable each environment intervenes on next.
    fn choose(&mut self) -> Result<Vec<u32>> {
        match self.config.selection {
            Selection::Acquisition => self.acquisition.selected_blocking(),
            Selection::Random { .. } => {
                let d = self.scm.n_vars();
                Ok(self
                    .scm
                    .targets()
                    .iter()
                    .map(|&t| {
                        if d == 1 {
                            return NO_SELECTION;
                        }
                        let v = self.choice_rng.below(d - 1) as u32;
                        if v >= t { v + 1 } else { v }
                    })
                    .collect())
            }
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// The posterior after the last step.
    pub fn posterior(&self) -> &PosteriorSummary {
        &self.summary
    }

    /// The best target value each environment has sampled (-inf before any step).
    pub fn best_values(&self) -> &[f32] {
        &self.best
    }

    /// Whether each environment's MAP parent set equals its target's true parents.
    pub fn map_matches_truth(&self) -> Vec<bool> {
        (0..self.scm.batch())
            .map(|e| self.summary.map_set(e) == self.scm.parents(e, self.scm.targets()[e]))
            .collect()
    }

    /// The acquisition state (for its reads: `summaries`, `scores`, `state`, ...).
    pub fn acquisition(&mut self) -> &mut Acquisition {
        &mut self.acquisition
    }
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
