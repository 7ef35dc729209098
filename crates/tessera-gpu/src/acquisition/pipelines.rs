//! The acquisition shader module and its compute pipelines, built once per device.

use tessera_tensor::error::Result;

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};

/// WGSL sources of the acquisition kernels, `common.wgsl` first. They are
/// concatenated into one module: every kernel file may call every other's stage.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "common.wgsl",
        include_str!("../../shaders/acquisition/common.wgsl"),
    ),
    (
        "add_sample.wgsl",
        include_str!("../../shaders/acquisition/add_sample.wgsl"),
    ),
    (
        "set_posterior.wgsl",
        include_str!("../../shaders/acquisition/set_posterior.wgsl"),
    ),
    (
        "update_mechanism_features.wgsl",
        include_str!("../../shaders/acquisition/update_mechanism_features.wgsl"),
    ),
    (
        "mechanism_confidence.wgsl",
        include_str!("../../shaders/acquisition/mechanism_confidence.wgsl"),
    ),
    (
        "optimization_progress.wgsl",
        include_str!("../../shaders/acquisition/optimization_progress.wgsl"),
    ),
    (
        "exploration_coverage.wgsl",
        include_str!("../../shaders/acquisition/exploration_coverage.wgsl"),
    ),
    (
        "policy_features.wgsl",
        include_str!("../../shaders/acquisition/policy_features.wgsl"),
    ),
    (
        "acquisition_scores.wgsl",
        include_str!("../../shaders/acquisition/acquisition_scores.wgsl"),
    ),
    (
        "select_intervention.wgsl",
        include_str!("../../shaders/acquisition/select_intervention.wgsl"),
    ),
    (
        "pipeline_step.wgsl",
        include_str!("../../shaders/acquisition/pipeline_step.wgsl"),
    ),
    (
        "history_tensor.wgsl",
        include_str!("../../shaders/acquisition/history_tensor.wgsl"),
    ),
];

/// The whole acquisition module as one WGSL source.
pub fn module_source() -> String {
    crate::kernels::join(SOURCES)
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

/// The acquisition kernels of `ctx`, compiled on first use and cached in the context.
pub(crate) fn pipelines(ctx: &GpuContext) -> Result<&KernelSet> {
    ctx.inner
        .acquisition
        .get_or_init(|| {
            let entry_points: Vec<&'static str> =
                Kernel::ALL.iter().map(|k| k.entry_point()).collect();
            // Binding 10 (the per-step inputs) is the only read-only one.
            let storage_read_only: Vec<bool> = (1..=STORAGE_BINDINGS).map(|b| b == 10).collect();
            KernelSet::build(
                ctx,
                KernelSetSpec {
                    label: "tessera acquisition",
                    source: module_source(),
                    dynamic_uniform: false,
                    storage_read_only: &storage_read_only,
                    entry_points: &entry_points,
                    workgroup_invocations: WORKGROUP_SIZE,
                },
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}
