//! # tessera-cpu
//!
//! The CPU backend of tessera. It implements the kernel contracts of
//! [`tessera_tensor`] with runtime-dispatched SIMD ([`SimdLevel`]: AVX-512 or AVX2/FMA
//! on x86-64, NEON on Apple Silicon, scalar elsewhere) and `rayon` across cores, and
//! has no GPU dependency, so an application can depend on it alone.
//!
//! ```
//! use tessera_cpu::CpuAcquisition;
//! use tessera_tensor::acquisition::{AcquisitionBackend, AcquisitionConfig, Samples};
//!
//! let mut acq = CpuAcquisition::new(&AcquisitionConfig::single(3, 100, 2))?;
//! acq.add_samples(&Samples { values: &[0.1, 0.2, 0.3], intervened: &[true, false, false], targets: &[0.3] })?;
//! acq.exploration_coverage()?;
//! assert_eq!(acq.read_summaries()?[0].coverage.target_coverage_rate, 0.5);
//! # Ok::<(), tessera_tensor::TesseraError>(())
//! ```

pub mod acquisition;
mod dispatch;
pub mod icl;
mod linalg;
mod math;
mod memory;
pub mod nn;
pub mod search;
pub mod sim;
mod transpose;
pub mod voi;

pub use acquisition::CpuAcquisition;
pub use dispatch::SimdLevel;
pub use icl::CpuIcl;
pub use nn::CpuNn;
pub use search::CpuIndex;
pub use sim::{CpuClosedLoop, CpuPosterior, CpuSim};
pub use voi::CpuVoi;

/// The README's example, compiled and run by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
