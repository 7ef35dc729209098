//! The neural shader module and its pipelines, built once per device.

use tessera_tensor::error::Result;

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};

/// WGSL sources of the neural kernels, `common.wgsl` first, concatenated into one module.
pub const SOURCES: &[(&str, &str)] = &[
    ("common.wgsl", include_str!("../../shaders/nn/common.wgsl")),
    ("gemm.wgsl", include_str!("../../shaders/nn/gemm.wgsl")),
    (
        "activation.wgsl",
        include_str!("../../shaders/nn/activation.wgsl"),
    ),
    ("loss.wgsl", include_str!("../../shaders/nn/loss.wgsl")),
    (
        "optimizer.wgsl",
        include_str!("../../shaders/nn/optimizer.wgsl"),
    ),
    (
        "cascade.wgsl",
        include_str!("../../shaders/nn/cascade.wgsl"),
    ),
    (
        "shortcut.wgsl",
        include_str!("../../shaders/nn/shortcut.wgsl"),
    ),
];

/// The whole neural module as one WGSL source.
pub fn module_source() -> String {
    crate::kernels::join(SOURCES)
}

/// Entry points of the neural module.
pub(crate) const ENTRY_POINTS: [&str; 22] = [
    "gemm",
    "gemm_vec4",
    "gemm_128",
    "gemm_reduce",
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
    "quickprop_update",
    "sarprop_update",
    "candidate_activation",
    "candidate_reduce",
    "shortcut_forward",
    "shortcut_delta",
    "shortcut_gradient",
];

/// Storage tensors per kernel (bindings 1..=6).
pub(crate) const TENSOR_BINDINGS: u32 = 6;

/// The neural kernels of `ctx`, compiled on first use and cached in the context.
pub(crate) fn pipelines(ctx: &GpuContext) -> Result<&KernelSet> {
    ctx.inner
        .nn
        .get_or_init(|| {
            KernelSet::build(
                ctx,
                KernelSetSpec {
                    label: "tessera nn",
                    source: module_source(),
                    dynamic_uniform: true,
                    storage_read_only: &[false; TENSOR_BINDINGS as usize],
                    entry_points: &ENTRY_POINTS,
                    workgroup_invocations: 256,
                },
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}
