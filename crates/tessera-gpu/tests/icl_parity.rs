//! The in-context parity suite on the GPU backend (lavapipe in CI).

use tessera_gpu::{GpuIcl, testing};

fn gpu() -> Option<impl Fn() -> tessera_tensor::Result<GpuIcl>> {
    let ctx = testing::shared_context()?;
    Some(move || GpuIcl::new(&ctx))
}

tessera_tensor::icl_parity_suite!(gpu(), 16);
