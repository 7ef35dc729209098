//! The acquisition shader module and its compute pipelines, built once per device.

use tessera_tensor::error::{Result, TesseraError};

use crate::GpuContext;

/// WGSL sources of the acquisition kernels, `common.wgsl` first. They are
/// concatenated into one module: every kernel file may call every other's stage.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "common.wgsl",
        include_str!("../../../../shaders/acquisition/common.wgsl"),
    ),
    (
        "add_sample.wgsl",
        include_str!("../../../../shaders/acquisition/add_sample.wgsl"),
    ),
    (
        "set_posterior.wgsl",
        include_str!("../../../../shaders/acquisition/set_posterior.wgsl"),
    ),
    (
        "update_mechanism_features.wgsl",
        include_str!("../../../../shaders/acquisition/update_mechanism_features.wgsl"),
    ),
    (
        "mechanism_confidence.wgsl",
        include_str!("../../../../shaders/acquisition/mechanism_confidence.wgsl"),
    ),
    (
        "optimization_progress.wgsl",
        include_str!("../../../../shaders/acquisition/optimization_progress.wgsl"),
    ),
    (
        "exploration_coverage.wgsl",
        include_str!("../../../../shaders/acquisition/exploration_coverage.wgsl"),
    ),
    (
        "policy_features.wgsl",
        include_str!("../../../../shaders/acquisition/policy_features.wgsl"),
    ),
    (
        "acquisition_scores.wgsl",
        include_str!("../../../../shaders/acquisition/acquisition_scores.wgsl"),
    ),
    (
        "select_intervention.wgsl",
        include_str!("../../../../shaders/acquisition/select_intervention.wgsl"),
    ),
    (
        "pipeline_step.wgsl",
        include_str!("../../../../shaders/acquisition/pipeline_step.wgsl"),
    ),
    (
        "history_tensor.wgsl",
        include_str!("../../../../shaders/acquisition/history_tensor.wgsl"),
    ),
];

/// The whole acquisition module as one WGSL source.
pub fn module_source() -> String {
    SOURCES
        .iter()
        .map(|(_, src)| *src)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One entry point of the acquisition module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    AddSample,
    SetPosterior,
    UpdateMechanismFeatures,
    MechanismConfidence,
    OptimizationProgress,
    ExplorationCoverage,
    PolicyFeatures,
    AcquisitionScores,
    SelectIntervention,
    PipelineStep,
    HistoryTensor,
}

impl Kernel {
    const ALL: [Kernel; 11] = [
        Kernel::AddSample,
        Kernel::SetPosterior,
        Kernel::UpdateMechanismFeatures,
        Kernel::MechanismConfidence,
        Kernel::OptimizationProgress,
        Kernel::ExplorationCoverage,
        Kernel::PolicyFeatures,
        Kernel::AcquisitionScores,
        Kernel::SelectIntervention,
        Kernel::PipelineStep,
        Kernel::HistoryTensor,
    ];

    pub(crate) fn entry_point(self) -> &'static str {
        match self {
            Kernel::AddSample => "add_sample",
            Kernel::SetPosterior => "set_posterior",
            Kernel::UpdateMechanismFeatures => "update_mechanism_features",
            Kernel::MechanismConfidence => "mechanism_confidence",
            Kernel::OptimizationProgress => "optimization_progress",
            Kernel::ExplorationCoverage => "exploration_coverage",
            Kernel::PolicyFeatures => "policy_features",
            Kernel::AcquisitionScores => "acquisition_scores",
            Kernel::SelectIntervention => "select_intervention",
            Kernel::PipelineStep => "pipeline_step",
            Kernel::HistoryTensor => "history_tensor",
        }
    }
}

/// Storage buffers the acquisition bind group uses (bindings 1..=14).
pub(crate) const STORAGE_BINDINGS: u32 = 14;
/// Threads per workgroup (`WG` in common.wgsl).
pub(crate) const WORKGROUP_SIZE: u32 = 64;

/// The bind group layout shared by every acquisition kernel and one pipeline per kernel.
pub(crate) struct AcquisitionPipelines {
    pub layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl AcquisitionPipelines {
    pub(crate) fn get(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[Kernel::ALL
            .iter()
            .position(|&k| k == kernel)
            .expect("every kernel has a pipeline")]
    }

    /// The cached pipelines of `ctx`, built on first use.
    pub(crate) fn of(ctx: &GpuContext) -> Result<&AcquisitionPipelines> {
        ctx.inner
            .acquisition
            .get_or_init(|| Self::build(ctx))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build(ctx: &GpuContext) -> Result<Self> {
        let _span = tracing::info_span!("acquisition_pipelines").entered();
        let limits = ctx.limits();
        let needed = [
            (
                "storage buffers per shader stage",
                STORAGE_BINDINGS,
                limits.max_storage_buffers_per_shader_stage,
            ),
            (
                "workgroup size x",
                WORKGROUP_SIZE,
                limits.max_compute_workgroup_size_x,
            ),
            (
                "invocations per workgroup",
                WORKGROUP_SIZE,
                limits.max_compute_invocations_per_workgroup,
            ),
        ];
        for (what, needed, limit) in needed {
            if needed > limit {
                return Err(TesseraError::DeviceLimit {
                    what,
                    needed: needed.into(),
                    limit: limit.into(),
                });
            }
        }
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tessera acquisition"),
            source: wgpu::ShaderSource::Wgsl(module_source().into()),
        });
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        entries.extend((1..=STORAGE_BINDINGS).map(|b| storage(b, b == 10)));
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tessera acquisition"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tessera acquisition"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = Kernel::ALL
            .iter()
            .map(|k| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(k.entry_point()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(k.entry_point()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(TesseraError::Device(format!(
                "acquisition pipelines failed to build: {error}"
            )));
        }
        Ok(Self { layout, pipelines })
    }
}
