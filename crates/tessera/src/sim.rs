//! Batches of random linear-Gaussian structural causal models, sampled with
//! interventions on any [`Device`], and the exact posterior over each target's parent
//! set ([`CpuPosterior`]: f64 on the CPU; a GPU posterior is not built yet). Semantics:
//! `docs/sim.md`.
//!
//! ```
//! use tessera::Device;
//! use tessera::sim::{Intervention, Interventions, ScmBatch, ScmConfig, Simulator};
//!
//! // 64 environments of 10 variables, each with its own random DAG.
//! let scm = ScmBatch::generate(&ScmConfig::new(64, 10, 7))?;
//! let mut sim = Simulator::on(&Device::new_blocking(), &scm)?;
//! let observational = sim.sample(0, 100, &Interventions::None)?; // [64, 100, 10]
//! // do(x_3 = 2) in every environment.
//! let mut ivs = vec![Intervention::OBSERVE; 64 * 10];
//! (0..64).for_each(|e| ivs[e * 10 + 3] = Intervention::clamp(2.0));
//! let intervened = sim.sample(1, 100, &Interventions::PerEnv(&ivs))?;
//! assert_eq!(intervened[3], 2.0);
//! assert_eq!(observational.len(), 64 * 100 * 10);
//! # Ok::<(), tessera::TesseraError>(())
//! ```

use tessera_cpu::CpuSim;
#[cfg(feature = "gpu")]
use tessera_gpu::GpuSim;
use tessera_tensor::Result;

pub use tessera_cpu::CpuPosterior;
pub use tessera_tensor::sim::{
    Graph, Intervention, InterventionKind, Interventions, MAX_PARENTS, MAX_SIM_VARS, NO_PARENT,
    PosteriorBackend, PosteriorConfig, PosteriorSummary, ScmBatch, ScmConfig, SimBackend,
    TargetRule,
};

use crate::{Backend, Device};

// One per simulator, moved rarely: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Cpu(CpuSim),
    #[cfg(feature = "gpu")]
    Gpu(GpuSim),
}

/// Samples from a batch of SCMs on one device; every backend draws the same random
/// integers for the same seed and draw number.
pub struct Simulator {
    inner: Inner,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("backend", &self.backend())
            .field("batch", &self.scm().batch())
            .field("n_vars", &self.scm().n_vars())
            .finish()
    }
}

impl Simulator {
    /// A simulator for `scm` on `device` (the models are uploaded once).
    pub fn on(device: &Device, scm: &ScmBatch) -> Result<Self> {
        let inner = match device {
            Device::Cpu(_) => Inner::Cpu(CpuSim::new(scm)?),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuSim::new(ctx, scm)?),
        };
        Ok(Self { inner })
    }

    fn backend_mut(&mut self) -> &mut dyn SimBackend {
        match &mut self.inner {
            Inner::Cpu(s) => s,
            #[cfg(feature = "gpu")]
            Inner::Gpu(s) => s,
        }
    }

    /// The backend the simulator runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => Backend::Gpu,
        }
    }

    /// The models being sampled.
    pub fn scm(&self) -> &ScmBatch {
        match &self.inner {
            Inner::Cpu(s) => s.scm(),
            #[cfg(feature = "gpu")]
            Inner::Gpu(s) => s.scm(),
        }
    }

    /// `rows` samples per environment for draw number `draw`, `[B, rows, n_vars]` in
    /// variable order. See [`SimBackend::sample`].
    pub fn sample(
        &mut self,
        draw: u32,
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<Vec<f32>> {
        self.backend_mut().sample(draw, rows, interventions)
    }
}
