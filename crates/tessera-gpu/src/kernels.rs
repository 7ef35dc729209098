//! A compiled WGSL module: one compute pipeline per entry point, all sharing one bind
//! group layout (a uniform at binding 0, storage buffers at 1..=N). Each kernel family
//! builds one per device, cached in the [`GpuContext`].

use tessera_tensor::error::{Result, TesseraError};

use crate::requirements::DeviceRequirements;

use crate::GpuContext;

/// The files of `sources` (name, text) as one WGSL module.
pub(crate) fn join(sources: &[(&str, &str)]) -> String {
    sources
        .iter()
        .map(|(_, src)| *src)
        .collect::<Vec<_>>()
        .join("\n")
}

/// How to build a [`KernelSet`].
pub(crate) struct KernelSetSpec<'a> {
    /// Label for the module, layout and errors.
    pub label: &'static str,
    /// The whole WGSL source.
    pub source: String,
    /// Whether binding 0 (the uniform) takes a dynamic offset.
    pub dynamic_uniform: bool,
    /// Read-only flag of each storage binding, from binding 1.
    pub storage_read_only: &'a [bool],
    /// Entry points to build pipelines for.
    pub entry_points: &'a [&'static str],
    /// Threads per workgroup the kernels use (checked against the device).
    pub workgroup_invocations: u32,
}

/// The pipelines of one WGSL module and their shared bind group layout.
pub(crate) struct KernelSet {
    pub layout: wgpu::BindGroupLayout,
    pipelines: Vec<(&'static str, wgpu::ComputePipeline)>,
}

impl KernelSet {
    /// The pipeline of `entry`.
    pub(crate) fn get(&self, entry: &str) -> &wgpu::ComputePipeline {
        &self
            .pipelines
            .iter()
            .find(|(e, _)| *e == entry)
            .expect("entry point was built")
            .1
    }

    /// Compiles `spec` on `ctx`'s device, after checking its limits.
    pub(crate) fn build(ctx: &GpuContext, spec: KernelSetSpec<'_>) -> Result<Self> {
        let _span = tracing::info_span!("build_pipelines", family = spec.label).entered();
        let needs = DeviceRequirements {
            storage_buffers_per_stage: spec.storage_read_only.len() as u32,
            invocations_per_workgroup: spec.workgroup_invocations,
            workgroup_size_x: spec.workgroup_invocations.min(256),
            workgroup_storage_bytes: 0,
            dynamic_uniform_buffers: u32::from(spec.dynamic_uniform),
        };
        // A family that outgrows what tessera declares it needs is a tessera bug: the
        // declaration is what apps open their devices with.
        debug_assert!(
            needs.check(&crate::REQUIRED.limits()).is_ok(),
            "{} needs more than tessera's declared REQUIRED limits",
            spec.label
        );
        needs.check(ctx.limits())?;
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.label),
            source: wgpu::ShaderSource::Wgsl(spec.source.into()),
        });
        let buffer = |binding, ty, has_dynamic_offset| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset,
                min_binding_size: None,
            },
            count: None,
        };
        let entries: Vec<_> = std::iter::once(buffer(
            0,
            wgpu::BufferBindingType::Uniform,
            spec.dynamic_uniform,
        ))
        .chain(
            spec.storage_read_only
                .iter()
                .enumerate()
                .map(|(i, &read_only)| {
                    buffer(
                        i as u32 + 1,
                        wgpu::BufferBindingType::Storage { read_only },
                        false,
                    )
                }),
        )
        .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(spec.label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = spec
            .entry_points
            .iter()
            .map(|&entry| {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (entry, pipeline)
            })
            .collect();
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(TesseraError::Device(format!(
                "{} pipelines failed to build: {error}",
                spec.label
            )));
        }
        Ok(Self { layout, pipelines })
    }
}
