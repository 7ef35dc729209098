//! The acquisition API: a batch of environments on a [`Device`].

use tessera_cpu::CpuAcquisition;
#[cfg(feature = "gpu")]
use tessera_gpu::GpuAcquisition;
use tessera_tensor::Result;
use tessera_tensor::acquisition::{
    AcquisitionBackend, AcquisitionConfig, AcquisitionState, Coverage, Progress, Samples,
    StepInput, StepSummary,
};

use crate::{Backend, Device};

/// The backend a batch runs on, matched once per call.
enum Inner {
    Cpu(CpuAcquisition),
    #[cfg(feature = "gpu")]
    Gpu(GpuAcquisition),
}

/// A batch of `B` causal-acquisition environments stepped together on one device.
///
/// Operations (`step`, `add_samples`, ...) only enqueue work: on the GPU nothing is
/// read back until a read method (`summaries`, `selected`, `policy_features`, ...) is
/// called. Reads come in async and `_blocking` forms; on native platforms the async
/// form waits for the device by polling it, so it does not yield while the GPU works.
/// Every method validates its input and leaves the state unchanged on error.
pub struct Acquisition {
    inner: Inner,
}

impl std::fmt::Debug for Acquisition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquisition")
            .field("backend", &self.backend())
            .field("config", self.config())
            .finish()
    }
}

macro_rules! reads {
    ($($(#[$doc:meta])* $name:ident, $blocking:ident -> $ty:ty = |$s:ident| $body:expr;)*) => {$(
        $(#[$doc])*
        pub async fn $name(&mut self) -> Result<$ty> {
            self.$blocking()
        }
        $(#[$doc])*
        ///
        /// Blocking form.
        pub fn $blocking(&mut self) -> Result<$ty> {
            let $s = self.backend_mut();
            $body
        }
    )*};
}

impl Acquisition {
    /// A fresh batch on `device`. Fails on an invalid config (a state beyond the
    /// config's memory limit included) or when the batch does not fit the device.
    pub fn new(device: &Device, config: &AcquisitionConfig) -> Result<Self> {
        let inner = match device {
            Device::Cpu(cpu) => {
                let mut acq = CpuAcquisition::new(config)?;
                acq.set_simd(!cpu.is_scalar());
                Inner::Cpu(acq)
            }
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuAcquisition::new(ctx, config)?),
        };
        Ok(Self { inner })
    }

    /// Resumes from a host state (a checkpoint from [`Acquisition::state`], possibly
    /// taken on another device). A state that breaks an invariant is refused with
    /// [`TesseraError::InvalidState`](crate::TesseraError::InvalidState) naming the
    /// field.
    pub fn from_state(device: &Device, state: &AcquisitionState) -> Result<Self> {
        let inner = match device {
            Device::Cpu(cpu) => {
                let mut acq = CpuAcquisition::from_state(state.clone())?;
                acq.set_simd(!cpu.is_scalar());
                Inner::Cpu(acq)
            }
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuAcquisition::from_state(ctx, state)?),
        };
        Ok(Self { inner })
    }

    /// The backend's contract implementation (one match, no allocation).
    fn backend_mut(&mut self) -> &mut dyn AcquisitionBackend {
        match &mut self.inner {
            Inner::Cpu(b) => b,
            #[cfg(feature = "gpu")]
            Inner::Gpu(b) => b,
        }
    }

    /// The backend the batch runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => Backend::Gpu,
        }
    }

    /// The batch's configuration.
    pub fn config(&self) -> &AcquisitionConfig {
        match &self.inner {
            Inner::Cpu(b) => b.config(),
            #[cfg(feature = "gpu")]
            Inner::Gpu(b) => b.config(),
        }
    }

    /// The fused pipeline step for every environment: add the samples, update the
    /// mechanism features, then confidence, progress, coverage, policy features,
    /// scores and the selected intervention. On the GPU: one submission, no readback.
    pub fn step(&mut self, input: &StepInput<'_>) -> Result<()> {
        self.backend_mut().step(input)
    }

    /// Appends one sample to every environment.
    pub fn add_samples(&mut self, samples: &Samples<'_>) -> Result<()> {
        self.backend_mut().add_samples(samples)
    }

    /// Replaces the posterior summary (`[B, n_vars]` marginal parent probabilities,
    /// `[B]` entropies in bits).
    pub fn set_posterior(
        &mut self,
        marginal_probs: &[f32],
        uncertainty_bits: &[f32],
    ) -> Result<()> {
        self.backend_mut()
            .set_posterior(marginal_probs, uncertainty_bits)
    }

    /// Blends observed mechanism features into the state.
    pub fn update_mechanism_features(
        &mut self,
        observed: &[f32],
        learning_rate: f32,
    ) -> Result<()> {
        self.backend_mut()
            .update_mechanism_features(observed, learning_rate)
    }

    /// Recomputes the mechanism confidence.
    pub fn mechanism_confidence(&mut self) -> Result<()> {
        self.backend_mut().mechanism_confidence()
    }

    /// Recomputes progress, coverage, policy features, scores and the selection from
    /// the current state, without adding a sample.
    pub fn evaluate(&mut self, exploration_weight: f32) -> Result<()> {
        let b = self.backend_mut();
        b.optimization_progress()?;
        b.exploration_coverage()?;
        b.policy_features()?;
        b.acquisition_scores(exploration_weight)?;
        b.select_intervention()
    }

    /// The `[B, t, n_vars, 5]` policy-network input.
    pub async fn history_tensor(&mut self, t: usize) -> Result<Vec<f32>> {
        self.history_tensor_blocking(t)
    }

    /// The `[B, t, n_vars, 5]` policy-network input. Blocking form.
    pub fn history_tensor_blocking(&mut self, t: usize) -> Result<Vec<f32>> {
        self.backend_mut().history_tensor(t)
    }

    reads! {
        /// `[B]` progress, coverage and selection of the last step.
        summaries, summaries_blocking -> Vec<StepSummary> = |b| b.read_summaries();
        /// `[B]` variable to intervene on next (`NO_SELECTION` if none can be chosen).
        selected, selected_blocking -> Vec<u32> =
            |b| Ok(b.read_summaries()?.iter().map(|s| s.selected).collect());
        /// `[B]` optimisation progress of the last step.
        progress, progress_blocking -> Vec<Progress> =
            |b| Ok(b.read_summaries()?.iter().map(|s| s.progress).collect());
        /// `[B]` exploration coverage of the last step.
        coverage, coverage_blocking -> Vec<Coverage> =
            |b| Ok(b.read_summaries()?.iter().map(|s| s.coverage).collect());
        /// `[B, n_vars]` mechanism confidence.
        confidence, confidence_blocking -> Vec<f32> = |b| b.read_confidence();
        /// `[B, n_vars, feature_dim + 12]` policy features.
        policy_features, policy_features_blocking -> Vec<f32> = |b| b.read_policy_features();
        /// `[B, n_vars]` acquisition scores.
        scores, scores_blocking -> Vec<f32> = |b| b.read_scores();
        /// A full copy of the state, for checkpoints or moving to another device.
        state, state_blocking -> AcquisitionState = |b| b.read_state();
    }
}
