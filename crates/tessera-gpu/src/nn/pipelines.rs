//! The neural shader module and its pipelines, built once per device.

use tessera_tensor::error::{Result, TesseraError};

use crate::GpuContext;

/// WGSL sources of the neural kernels, `common.wgsl` first, concatenated into one module.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "common.wgsl",
        include_str!("../../../../shaders/nn/common.wgsl"),
    ),
    (
        "gemm.wgsl",
        include_str!("../../../../shaders/nn/gemm.wgsl"),
    ),
    (
        "activation.wgsl",
        include_str!("../../../../shaders/nn/activation.wgsl"),
    ),
    (
        "loss.wgsl",
        include_str!("../../../../shaders/nn/loss.wgsl"),
    ),
    (
        "optimizer.wgsl",
        include_str!("../../../../shaders/nn/optimizer.wgsl"),
    ),
];

/// The whole neural module as one WGSL source.
pub fn module_source() -> String {
    SOURCES
        .iter()
        .map(|(_, src)| *src)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Entry points of the neural module.
pub(crate) const ENTRY_POINTS: [&str; 12] = [
    "gemm",
    "gemv",
    "bias_activation",
    "bias_softmax",
    "activation_backward",
    "softmax_backward",
    "output_gradient",
    "error_metrics",
    "column_sums",
    "sgd_update",
    "rprop_update",
    "adam_update",
];

/// Storage tensors per kernel (bindings 1..=5).
pub(crate) const TENSOR_BINDINGS: u32 = 5;

pub(crate) struct NnPipelines {
    pub layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl NnPipelines {
    pub(crate) fn get(&self, entry: &str) -> &wgpu::ComputePipeline {
        &self.pipelines[ENTRY_POINTS
            .iter()
            .position(|&e| e == entry)
            .expect("known entry point")]
    }

    /// The cached pipelines of `ctx`, built on first use.
    pub(crate) fn of(ctx: &GpuContext) -> Result<&NnPipelines> {
        ctx.inner
            .nn
            .get_or_init(|| Self::build(ctx))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build(ctx: &GpuContext) -> Result<Self> {
        let _span = tracing::info_span!("nn_pipelines").entered();
        let limits = ctx.limits();
        if limits.max_storage_buffers_per_shader_stage < TENSOR_BINDINGS
            || limits.max_compute_invocations_per_workgroup < 256
        {
            return Err(TesseraError::DeviceLimit {
                what: "storage buffers per stage (5) and invocations per workgroup (256)",
                needed: 256,
                limit: limits.max_compute_invocations_per_workgroup.into(),
            });
        }
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tessera nn"),
            source: wgpu::ShaderSource::Wgsl(module_source().into()),
        });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        entries.extend(
            (1..=TENSOR_BINDINGS).map(|binding| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }),
        );
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tessera nn"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tessera nn"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = ENTRY_POINTS
            .iter()
            .map(|entry| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(TesseraError::Device(format!(
                "nn pipelines failed to build: {error}"
            )));
        }
        Ok(Self { layout, pipelines })
    }
}
