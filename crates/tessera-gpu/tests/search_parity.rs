//! The similarity parity suite on the GPU backend (lavapipe in CI).

use tessera_gpu::{GpuIndex, testing};
use tessera_tensor::search::IndexConfig;

fn gpu() -> Option<impl Fn(IndexConfig) -> tessera_tensor::Result<GpuIndex>> {
    let ctx = testing::shared_context()?;
    Some(move |config| GpuIndex::new(&ctx, config))
}

tessera_tensor::search_parity_suite!(gpu(), 24);
