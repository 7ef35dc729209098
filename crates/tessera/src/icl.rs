//! In-context learning as an implicit weight update: the rank-1 update of a dense
//! layer that makes it, without the context, compute what attention over the context
//! gives (Dherin et al. 2025), token by token, and the iterative weight dynamics
//! `ΔW = h Σ α_i q k_iᵀ − λ W`, batched over contexts.
//!
//! ```
//! use tessera::Device;
//! use tessera::icl::{ContextualBlock, Contexts, InContext};
//!
//! let eye = [1.0, 0.0, 0.0, 1.0];
//! let block = ContextualBlock::new(2, 2, 2, 2, &eye, &eye, &eye, &eye)?;
//! // One query token with a context of two tokens.
//! let contexts = Contexts { queries: &[1.0, 0.0], tokens: &[0.0, 1.0, 0.5, 0.5], offsets: &[0, 2] };
//! let mut icl = InContext::on(&Device::new_blocking())?;
//! let up = icl.rank_one_updates(&block, &contexts)?;
//! // (W + u vᵀ) A(x) = W A(C, x): the update stands in for the context.
//! let without_context = up.apply(0, &eye, &up.alone[..2]);
//! assert!((without_context[1] - up.attended[1] as f64).abs() < 1e-5);
//! # Ok::<(), tessera::TesseraError>(())
//! ```

use tessera_cpu::CpuIcl;
#[cfg(feature = "gpu")]
use tessera_gpu::GpuIcl;
pub use tessera_tensor::icl::{
    Contexts, ContextualBlock, Dynamics, DynamicsRun, IclBackend, MAX_DIM, MAX_MAGNITUDE,
    MAX_STEPS, RankOneUpdates, UpdateSequences,
};

use crate::{Backend, Device, Result};

// One per caller: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Cpu(CpuIcl),
    #[cfg(feature = "gpu")]
    Gpu(GpuIcl),
}

/// The in-context kernels on one device.
pub struct InContext {
    inner: Inner,
}

impl std::fmt::Debug for InContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InContext")
            .field("backend", &self.backend())
            .finish()
    }
}

impl InContext {
    /// The kernels on `device`.
    pub fn on(device: &Device) -> Result<Self> {
        let inner = match device {
            Device::Cpu(cpu) if cpu.is_scalar() => Inner::Cpu(CpuIcl::scalar()),
            Device::Cpu(_) => Inner::Cpu(CpuIcl::new()),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuIcl::new(ctx)?),
        };
        Ok(Self { inner })
    }

    /// The backend the kernels run on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => Backend::Gpu,
        }
    }

    fn kernels(&mut self) -> &mut dyn IclBackend {
        match &mut self.inner {
            Inner::Cpu(b) => b,
            #[cfg(feature = "gpu")]
            Inner::Gpu(b) => b,
        }
    }

    /// The rank-1 update `ΔW = u vᵀ` of every (query, context) pair, factored.
    pub fn rank_one_updates(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<RankOneUpdates> {
        self.kernels().rank_one_updates(block, contexts)
    }

    /// The update after each token of every pair's context, with `‖ΔW_t‖_F` and
    /// `‖ΔW_t − ΔW_{t−1}‖_F`.
    pub fn update_sequences(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<UpdateSequences> {
        self.kernels().update_sequences(block, contexts)
    }

    /// The weight dynamics of every context, to the tolerance or the step cap.
    pub fn weight_dynamics(&mut self, problem: &Dynamics<'_>) -> Result<DynamicsRun> {
        self.kernels().weight_dynamics(problem)
    }
}
