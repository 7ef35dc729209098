//! The closed loop on the CPU: [`CpuSim`], [`CpuPosterior`] (f64) and
//! [`CpuAcquisition`] in one step, checked before anything changes.

use tessera_tensor::acquisition::{
    AcquisitionBackend, AcquisitionConfig, NO_SELECTION, Samples, StepInput,
};
use tessera_tensor::error::Result;
use tessera_tensor::sim::closed_loop::{
    ClosedLoopBackend, LoopConfig, PolicyKeys, Selection, ValuePolicy, empty_summary,
    mechanism_features, policy_word, random_choices, uniform_value, validate_values,
};
use tessera_tensor::sim::{
    Intervention, Interventions, PosteriorBackend, PosteriorConfig, PosteriorSummary, ScmBatch,
    SimBackend,
};

use super::{CpuPosterior, CpuSim};
use crate::CpuAcquisition;

/// The CPU implementation of [`ClosedLoopBackend`].
pub struct CpuClosedLoop {
    config: LoopConfig,
    keys: PolicyKeys,
    sim: CpuSim,
    posterior: CpuPosterior,
    acquisition: CpuAcquisition,
    summary: PosteriorSummary,
    best: Vec<f32>,
    step: u32,
}

impl std::fmt::Debug for CpuClosedLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuClosedLoop")
            .field("batch", &self.sim.scm().batch())
            .field("n_vars", &self.sim.scm().n_vars())
            .field("step", &self.step)
            .finish()
    }
}

impl CpuClosedLoop {
    /// The loop for `scm`'s environments: the acquisition state maximising each
    /// environment's target, an empty posterior, and a first choice of interventions
    /// from the initial state.
    pub fn new(scm: &ScmBatch, config: &LoopConfig) -> Result<Self> {
        config.validate()?;
        let posterior = CpuPosterior::new(&PosteriorConfig::for_scm(scm, config.max_parents))?;
        let mut acquisition = CpuAcquisition::new(&AcquisitionConfig::batched(
            scm.n_vars(),
            config.capacity,
            scm.targets().to_vec(),
        ))?;
        acquisition.optimization_progress()?;
        acquisition.exploration_coverage()?;
        acquisition.policy_features()?;
        acquisition.acquisition_scores(config.exploration_weight)?;
        acquisition.select_intervention()?;
        Ok(Self {
            keys: PolicyKeys::new(config, scm),
            sim: CpuSim::new(scm)?,
            summary: empty_summary(scm.batch(), scm.n_vars()),
            best: vec![f32::NEG_INFINITY; scm.batch()],
            config: config.clone(),
            posterior,
            acquisition,
            step: 0,
        })
    }

    /// The policy's values of this step.
    fn policy_values(&self) -> Vec<f32> {
        let b = self.sim.scm().batch();
        match self.config.values {
            ValuePolicy::Fixed(v) => vec![v; b],
            ValuePolicy::Uniform { lo, hi, .. } => (0..b)
                .map(|e| uniform_value(policy_word(self.keys.value, e, self.step), lo, hi))
                .collect(),
        }
    }
}

impl ClosedLoopBackend for CpuClosedLoop {
    fn scm(&self) -> &ScmBatch {
        self.sim.scm()
    }

    fn steps(&self) -> u32 {
        self.step
    }

    fn step(&mut self) -> Result<()> {
        let values = self.policy_values();
        self.step_with_values(&values)
    }

    fn step_with_values(&mut self, values: &[f32]) -> Result<()> {
        let chosen = self.chosen()?;
        let scm = self.sim.scm();
        let (b, d) = (scm.batch(), scm.n_vars());
        validate_values(scm, values)?;
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
            .map(|e| row[e * d + self.sim.scm().targets()[e] as usize])
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

    fn chosen(&mut self) -> Result<Vec<u32>> {
        Ok(match self.config.selection {
            Selection::Acquisition => self
                .acquisition
                .read_summaries()?
                .iter()
                .map(|s| s.selected)
                .collect(),
            Selection::Random { .. } => random_choices(self.keys.choice, self.sim.scm(), self.step),
        })
    }

    fn posterior(&mut self) -> Result<PosteriorSummary> {
        Ok(self.summary.clone())
    }

    fn best_values(&mut self) -> Result<Vec<f32>> {
        Ok(self.best.clone())
    }
}
