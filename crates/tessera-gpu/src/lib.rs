#![doc = include_str!("../README.md")]

pub mod acquisition;
mod context;
mod counters;
pub mod icl;
mod kernels;
pub mod nn;
mod readback;
mod requirements;
pub mod search;
pub mod sim;
pub mod testing;
mod timer;
pub mod voi;

pub use acquisition::{DeviceStepInputs, GpuAcquisition, pack_intervention_flags};
pub use context::GpuContext;
pub use counters::LaunchCounters;
pub use icl::GpuIcl;
pub use nn::{GemmKernel, GpuMetrics, GpuNn, GpuTensor};
pub use requirements::{DeviceRequirements, REQUIRED};
pub use search::GpuIndex;
pub use sim::{GpuClosedLoop, GpuPosterior, GpuSim};
pub use voi::GpuVoi;
pub use wgpu;
