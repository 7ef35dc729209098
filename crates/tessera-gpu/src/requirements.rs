//! What tessera's kernels need of a device. Every family's pipelines are checked
//! against it when they are built, and [`GpuContext::from_device`](crate::GpuContext::from_device)
//! refuses a device below it, so an app that hands tessera a device opened with
//! too-small limits gets one clear error, not a failure deep in a later call.

use tessera_tensor::error::{Result, TesseraError};

/// Device limits tessera's kernels need. Anything larger (batches over the binding
/// size, more workgroups than one dimension holds) is split, so only these are hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRequirements {
    /// Storage buffers bound to one compute shader (the acquisition kernels bind 14).
    pub storage_buffers_per_stage: u32,
    /// Threads of the largest workgroup.
    pub invocations_per_workgroup: u32,
    /// Threads along x of the largest workgroup.
    pub workgroup_size_x: u32,
    /// Bytes of workgroup memory of the module that declares the most.
    pub workgroup_storage_bytes: u32,
    /// Uniform buffers with a dynamic offset in one pipeline layout (the neural
    /// kernels' parameter ring).
    pub dynamic_uniform_buffers: u32,
}

/// What every tessera kernel fits in. WebGPU's defaults meet all of it but the
/// storage buffers (8): ask for the adapter's limits (every Vulkan, Metal and DX12 GPU
/// has at least 16; GL drivers as well) or for [`DeviceRequirements::limits`].
pub const REQUIRED: DeviceRequirements = DeviceRequirements {
    storage_buffers_per_stage: 14,
    invocations_per_workgroup: 256,
    workgroup_size_x: 256,
    workgroup_storage_bytes: 16384,
    dynamic_uniform_buffers: 1,
};

impl DeviceRequirements {
    /// WebGPU's default limits, raised where tessera needs more.
    pub fn limits(&self) -> wgpu::Limits {
        let d = wgpu::Limits::default();
        wgpu::Limits {
            max_storage_buffers_per_shader_stage: d
                .max_storage_buffers_per_shader_stage
                .max(self.storage_buffers_per_stage),
            max_compute_invocations_per_workgroup: d
                .max_compute_invocations_per_workgroup
                .max(self.invocations_per_workgroup),
            max_compute_workgroup_size_x: d.max_compute_workgroup_size_x.max(self.workgroup_size_x),
            max_compute_workgroup_storage_size: d
                .max_compute_workgroup_storage_size
                .max(self.workgroup_storage_bytes),
            max_dynamic_uniform_buffers_per_pipeline_layout: d
                .max_dynamic_uniform_buffers_per_pipeline_layout
                .max(self.dynamic_uniform_buffers),
            ..d
        }
    }

    /// Fails with [`TesseraError::DeviceLimit`] naming the first limit of `limits`
    /// below these requirements.
    pub fn check(&self, limits: &wgpu::Limits) -> Result<()> {
        for (what, needed, limit) in [
            (
                "storage buffers per shader stage",
                self.storage_buffers_per_stage,
                limits.max_storage_buffers_per_shader_stage,
            ),
            (
                "invocations per workgroup",
                self.invocations_per_workgroup,
                limits.max_compute_invocations_per_workgroup,
            ),
            (
                "workgroup size x",
                self.workgroup_size_x,
                limits.max_compute_workgroup_size_x,
            ),
            (
                "bytes of workgroup memory",
                self.workgroup_storage_bytes,
                limits.max_compute_workgroup_storage_size,
            ),
            (
                "dynamic uniform buffers per pipeline layout",
                self.dynamic_uniform_buffers,
                limits.max_dynamic_uniform_buffers_per_pipeline_layout,
            ),
        ] {
            if needed > limit {
                return Err(TesseraError::DeviceLimit {
                    what,
                    needed: needed.into(),
                    limit: limit.into(),
                });
            }
        }
        Ok(())
    }
}
