//! # tessera-gpu
//!
//! The wgpu backend of tessera: WGSL compute kernels (the sources live in the
//! workspace's `shaders/` folder) run on Metal, Vulkan, DX12 or GL. A [`GpuContext`]
//! opens an adapter (or wraps a device the application already owns) and caches the
//! compiled pipelines; state types such as [`GpuAcquisition`] keep their data resident
//! on the device and read back only what is asked for.

pub mod acquisition;
mod context;
mod kernels;
pub mod nn;
mod readback;
pub mod testing;
mod timer;

pub use acquisition::GpuAcquisition;
pub use context::GpuContext;
pub use nn::{GpuNn, GpuTensor};
pub use wgpu;
