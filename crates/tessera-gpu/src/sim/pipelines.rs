//! The simulator's shader module and its pipelines, built once per device.

use tessera_tensor::error::Result;

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};

/// WGSL sources of the sampling module, `philox.wgsl` first.
pub const SOURCES: &[(&str, &str)] = &[
    ("philox.wgsl", include_str!("../../shaders/sim/philox.wgsl")),
    ("sample.wgsl", include_str!("../../shaders/sim/sample.wgsl")),
];

/// WGSL sources of the Philox known-answer module that tests build.
pub const TEST_SOURCES: &[(&str, &str)] = &[
    ("philox.wgsl", include_str!("../../shaders/sim/philox.wgsl")),
    (
        "philox_test.wgsl",
        include_str!("../../shaders/sim/philox_test.wgsl"),
    ),
];

/// The sampling module as one WGSL source.
pub fn module_source() -> String {
    crate::kernels::join(SOURCES)
}

/// Storage bindings of the sampling kernel: order, weights, bias, noise,
/// interventions (read-only), samples.
pub(crate) const STORAGE_READ_ONLY: [bool; 6] = [true, true, true, true, true, false];

/// The sampling kernels of `ctx`, compiled on first use and cached in the context.
pub(crate) fn pipelines(ctx: &GpuContext) -> Result<&KernelSet> {
    ctx.inner
        .sim
        .get_or_init(|| {
            KernelSet::build(
                ctx,
                KernelSetSpec {
                    label: "tessera sim",
                    source: module_source(),
                    dynamic_uniform: false,
                    storage_read_only: &STORAGE_READ_ONLY,
                    entry_points: &["sample"],
                    workgroup_invocations: 64,
                },
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}
