//! # tessera
//!
//! Portable GPU kernels for amortised causal Bayesian optimisation, run as WGSL
//! compute shaders through wgpu (Metal, Vulkan, DX12, GL) with a CPU SIMD fallback
//! that gives the same answers.
//!
//! ```
//! use tessera::{Acquisition, AcquisitionConfig, Device, Samples, StepInput};
//!
//! // The GPU when one is found, otherwise the CPU (with a tracing warning).
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

mod acquisition;
mod device;

pub use acquisition::Acquisition;
pub use device::{Backend, Device};
pub use tessera_gpu::GpuContext;
pub use tessera_tensor::acquisition::{
    AcquisitionConfig, AcquisitionState, Coverage, DEFAULT_EXPLORATION_WEIGHT, NO_SELECTION,
    Objective, Progress, Samples, StepInput, StepSummary,
};
pub use tessera_tensor::{Result, TesseraError};

/// The README's example, compiled and run by `cargo test` so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;
