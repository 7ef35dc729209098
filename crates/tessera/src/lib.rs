//! # tessera
//!
//! Portable GPU compute kernels, run as WGSL compute shaders through wgpu (Metal,
//! Vulkan, DX12, GL) with a CPU SIMD fallback that gives the same answers. One
//! dependency and one [`Device`] serve every kernel family:
//!
//! - **causal acquisition** ([`Acquisition`]): the per-step state and kernels of
//!   amortised causal Bayesian optimisation, batched over many environments;
//! - **neural networks** ([`nn`]): dense nets trained by FANN's algorithms, SGD or
//!   Adam, FANN `.net` and `.data` files read and written;
//! - **causal simulation** ([`sim`]): batches of random linear-Gaussian SCMs sampled
//!   with do and shift interventions, the same random draws on every backend, and the
//!   exact posterior over each target's parent set;
//! - **the closed loop** ([`causal`]): simulate, intervene, update the posterior and
//!   step the acquisition state for a whole batch;
//! - **value of information** ([`voi`]): EVPI, EVPPI and EVSI from simulation output;
//! - **similarity search** ([`search`]): exact top-k over an index of f32 or bf16
//!   vectors under cosine, inner-product or L2 metrics;
//! - **in-context updates** ([`icl`]): the implicit rank-1 weight update of in-context
//!   learning, token by token, and the iterative weight dynamics.
//!
//! [`Device::new`] picks a hardware GPU when one works and otherwise the CPU (never a
//! software rasteriser unless asked: `TESSERA_DEVICE=gpu` or [`Device::gpu`]);
//! [`Device::describe`] and [`Device::fallback_reason`] say what it chose and why.
//!
//! ```
//! use tessera::{Acquisition, AcquisitionConfig, Device, Samples, StepInput};
//!
//! let device = Device::new_blocking();
//! // Two environments of 3 variables, ring capacity 1000, targets 2 and 0.
//! let config = AcquisitionConfig::batched(3, 1000, vec![2, 0]);
//! let mut acq = Acquisition::new(&device, &config)?;
//! let observed = [0.8_f32, 0.2, 0.7].repeat(6);
//! acq.step(&StepInput {
//!     samples: Samples {
//!         values: &[0.1, 0.4, 1.2, 0.3, 0.0, 0.5],
//!         intervened: &[true, false, false, false, true, false],
//!         targets: &[1.2, 0.3],
//!     },
//!     observed: &observed,
//!     learning_rate: 0.5,
//!     exploration_weight: 0.1,
//! })?;
//! let next = acq.selected_blocking()?; // the only readback
//! assert_eq!(next.len(), 2);
//! assert!(next[0] != 2 && next[1] != 0); // never the target
//! # Ok::<(), tessera::TesseraError>(())
//! ```
//!
//! ## Cargo features
//! `gpu` (the wgpu backend), `acquisition`, `nn`, `sim`, `voi`, `search` and `icl` (the
//! families), all
//! on by default.
//! Without `gpu`, wgpu is not compiled and every [`Device`] is the CPU.

#[cfg(feature = "acquisition")]
mod acquisition;
#[cfg(all(feature = "acquisition", feature = "sim"))]
pub mod causal;
mod device;
#[cfg(feature = "icl")]
pub mod icl;
#[cfg(feature = "nn")]
pub mod nn;
#[cfg(feature = "search")]
pub mod search;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "voi")]
pub mod voi;

#[cfg(feature = "acquisition")]
pub use acquisition::Acquisition;
pub use device::{Backend, CpuDevice, Device, Preference};
#[cfg(feature = "gpu")]
pub use tessera_gpu::GpuContext;
#[cfg(feature = "acquisition")]
pub use tessera_tensor::acquisition::{
    AcquisitionConfig, AcquisitionState, Coverage, DEFAULT_EXPLORATION_WEIGHT,
    DEFAULT_MEMORY_LIMIT, MAX_MAGNITUDE, NO_SELECTION, Objective, Progress, Samples, StepInput,
    StepSummary,
};
pub use tessera_tensor::{Result, TesseraError};

/// The README's example, compiled and run by `cargo test` so it cannot rot.
#[cfg(all(doctest, feature = "acquisition", feature = "nn"))]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
