//! The shared acquisition parity suite, run against the GPU backend (lavapipe in CI).

use tessera_gpu::{GpuAcquisition, GpuContext, testing};
use tessera_tensor::Result;
use tessera_tensor::acquisition::AcquisitionConfig;

fn gpu() -> Option<impl Fn(&AcquisitionConfig) -> Result<GpuAcquisition>> {
    let ctx: GpuContext = testing::shared_context()?;
    Some(move |cfg: &AcquisitionConfig| GpuAcquisition::new(&ctx, cfg))
}

tessera_tensor::acquisition_parity_suite!(gpu(), cases = 12);

/// A corrupt checkpoint is refused by `from_state` before anything is uploaded.
#[test]
fn corrupt_checkpoints_are_rejected() {
    let Some(ctx) = testing::shared_context() else {
        return;
    };
    tessera_tensor::reference::parity::check_checkpoint_rejection(|s| {
        GpuAcquisition::from_state(&ctx, s).map(drop)
    });
}
