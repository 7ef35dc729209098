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
//! let found = run.map_matches_truth()?.iter().filter(|&&m| m).count();
//! assert!(found > 0);
//! # Ok::<(), tessera::TesseraError>(())
//! ```
//!
//! Where each part runs: everything on the device. On a GPU a step is one submission
//! with nothing uploaded (unless [`ClosedLoop::step_with_values`] gives the values)
//! and nothing read back; the posterior is f64 where the device has `SHADER_F64`
//! (Vulkan, DX12), f32 elsewhere. Reads (`chosen`, `posterior`, `best_values`,
//! `map_matches_truth`) are on request. The CPU runs the same step in f64 for the
//! posterior, checking each step before it changes anything; the GPU records faults
//! on the device and reports them on the next read.

use tessera_cpu::CpuClosedLoop;
#[cfg(feature = "gpu")]
use tessera_gpu::GpuClosedLoop;
use tessera_tensor::Result;
pub use tessera_tensor::sim::closed_loop::{
    ClosedLoopBackend, LoopConfig, PolicyKeys, Selection, ValuePolicy, mechanism_features,
};
use tessera_tensor::sim::{PosteriorSummary, ScmBatch};

use crate::{Backend, Device};

// One per run, moved rarely: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Cpu(CpuClosedLoop),
    #[cfg(feature = "gpu")]
    Gpu(GpuClosedLoop),
}

/// A batch of environments running the closed loop on one device.
pub struct ClosedLoop {
    inner: Inner,
}

impl std::fmt::Debug for ClosedLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scm = self.backend_ref().scm();
        f.debug_struct("ClosedLoop")
            .field("batch", &scm.batch())
            .field("n_vars", &scm.n_vars())
            .field("step", &self.steps())
            .field("device", &self.backend())
            .finish()
    }
}

impl ClosedLoop {
    /// The loop for `scm`'s environments on `device`: the simulator, the posterior
    /// and the acquisition state (maximising each environment's target) on the
    /// device, an empty posterior, and a first choice of interventions from the
    /// initial state. Fails on a bad [`LoopConfig`] or a batch beyond the device.
    pub fn on(device: &Device, scm: &ScmBatch, config: &LoopConfig) -> Result<Self> {
        let inner = match device {
            Device::Cpu(_) => Inner::Cpu(CpuClosedLoop::new(scm, config)?),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuClosedLoop::new(ctx, scm, config)?),
        };
        Ok(Self { inner })
    }

    fn backend_ref(&self) -> &dyn ClosedLoopBackend {
        match &self.inner {
            Inner::Cpu(l) => l,
            #[cfg(feature = "gpu")]
            Inner::Gpu(l) => l,
        }
    }

    fn backend_mut(&mut self) -> &mut dyn ClosedLoopBackend {
        match &mut self.inner {
            Inner::Cpu(l) => l,
            #[cfg(feature = "gpu")]
            Inner::Gpu(l) => l,
        }
    }

    /// The backend the loop runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => Backend::Gpu,
        }
    }

    /// One step for every environment with values from the configured policy.
    pub fn step(&mut self) -> Result<()> {
        self.backend_mut().step()
    }

    /// One step with the chosen variable of environment `e` clamped to `values[e]`:
    /// sample one row under the intervention, add it to the posterior, set the
    /// posterior into the acquisition state, run its fused step (which chooses the
    /// next interventions). Bad values are refused with nothing changed.
    pub fn step_with_values(&mut self, values: &[f32]) -> Result<()> {
        self.backend_mut().step_with_values(values)
    }

    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.backend_ref().steps()
    }

    /// `[B]` the variable each environment intervenes on next (read back on a GPU).
    pub fn chosen(&mut self) -> Result<Vec<u32>> {
        self.backend_mut().chosen()
    }

    /// The posterior after the last step (read back on a GPU).
    pub fn posterior(&mut self) -> Result<PosteriorSummary> {
        self.backend_mut().posterior()
    }

    /// The best target value each environment has sampled (-inf before any step).
    pub fn best_values(&mut self) -> Result<Vec<f32>> {
        self.backend_mut().best_values()
    }

    /// Whether each environment's MAP parent set equals its target's true parents.
    pub fn map_matches_truth(&mut self) -> Result<Vec<bool>> {
        self.backend_mut().map_matches_truth()
    }

    /// Blocks until the device has finished every step recorded so far (a no-op on
    /// the CPU): what a timing loop calls before reading the clock.
    pub fn sync(&mut self) -> Result<()> {
        self.backend_mut().sync()
    }
}
