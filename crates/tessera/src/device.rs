//! The device handle: which backend runs the kernels.

use tessera_gpu::GpuContext;
use tessera_tensor::Result;

/// Which backend a [`Device`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The CPU SIMD backend (`tessera-cpu`).
    Cpu,
    /// The wgpu backend (`tessera-gpu`).
    Gpu,
}

/// Where tessera's kernels run: a GPU context, or the CPU.
#[derive(Debug, Clone)]
pub struct Device {
    pub(crate) gpu: Option<GpuContext>,
}

impl Device {
    /// The GPU if one is found and works, otherwise the CPU (with a `tracing`
    /// warning saying why). Honours `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
    /// `WGPU_POWER_PREF`.
    pub async fn new() -> Self {
        Self::gpu_or_cpu(GpuContext::new().await)
    }

    /// [`Device::new`], blocking the calling thread.
    pub fn new_blocking() -> Self {
        pollster::block_on(Self::new())
    }

    /// The CPU backend.
    pub fn cpu() -> Self {
        Self { gpu: None }
    }

    /// The GPU, or an error saying why there is none.
    pub async fn gpu() -> Result<Self> {
        Ok(Self::from_context(GpuContext::new().await?))
    }

    /// [`Device::gpu`], blocking the calling thread.
    pub fn gpu_blocking() -> Result<Self> {
        pollster::block_on(Self::gpu())
    }

    /// A device on a GPU context, e.g. one built with
    /// [`GpuContext::from_device`] on the application's own wgpu device.
    pub fn from_context(ctx: GpuContext) -> Self {
        Self { gpu: Some(ctx) }
    }

    /// The fallback rule: use the GPU when there is one, else warn and use the CPU.
    pub(crate) fn gpu_or_cpu(gpu: Result<GpuContext>) -> Self {
        match gpu {
            Ok(ctx) => Self::from_context(ctx),
            Err(e) => {
                tracing::warn!(error = %e, "no usable GPU; tessera falls back to the CPU backend");
                Self::cpu()
            }
        }
    }

    /// Which backend this device runs.
    pub fn backend(&self) -> Backend {
        if self.gpu.is_some() {
            Backend::Gpu
        } else {
            Backend::Cpu
        }
    }

    /// The GPU context, if this is a GPU device.
    pub fn gpu_context(&self) -> Option<&GpuContext> {
        self.gpu.as_ref()
    }

    /// A one-line description: the adapter's name and API, or the CPU.
    pub fn describe(&self) -> String {
        match &self.gpu {
            Some(ctx) => {
                let i = ctx.adapter_info();
                let software = if ctx.is_software() {
                    ", software rasteriser"
                } else {
                    ""
                };
                format!("{} ({:?}{software})", i.name, i.backend)
            }
            None => format!("CPU ({} threads)", rayon_threads()),
        }
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_tensor::TesseraError;

    #[test]
    fn no_adapter_falls_back_to_the_cpu() {
        let d = Device::gpu_or_cpu(Err(TesseraError::NoAdapter("none in this test".into())));
        assert_eq!(d.backend(), Backend::Cpu);
        assert!(d.describe().starts_with("CPU"));
    }
}
