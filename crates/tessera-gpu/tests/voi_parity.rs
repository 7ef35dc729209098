//! The shared VOI parity suite on the GPU backend (lavapipe in CI), held to the f32
//! tolerance.

use tessera_gpu::{GpuContext, GpuVoi, testing};
use tessera_tensor::Result;
use tessera_tensor::reference::voi_parity::F32Factory;

fn gpu() -> Option<F32Factory<impl Fn() -> Result<GpuVoi>>> {
    let ctx: GpuContext = testing::shared_context()?;
    Some(F32Factory(move || GpuVoi::new(&ctx)))
}

tessera_tensor::voi_parity_suite!(gpu(), 24);
