#![doc = include_str!("../README.md")]

pub mod acquisition;
mod context;
mod counters;
pub mod icl;
mod kernels;
pub mod nn;
mod readback;
pub mod search;
pub mod sim;
pub mod testing;
mod timer;
pub mod voi;

pub use acquisition::GpuAcquisition;
pub use context::GpuContext;
pub use counters::LaunchCounters;
pub use icl::GpuIcl;
pub use nn::{GpuNn, GpuTensor};
pub use search::GpuIndex;
pub use sim::{GpuPosterior, GpuSim};
pub use voi::GpuVoi;
pub use wgpu;
