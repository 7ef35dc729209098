//! The shared neural-kernel parity suite, run against the GPU backend (lavapipe in CI).

use tessera_gpu::{GpuNn, testing};

fn gpu() -> Option<GpuNn> {
    testing::shared_context().map(|ctx| GpuNn::new(&ctx).expect("neural pipelines build"))
}

tessera_tensor::nn_parity_suite!(gpu());
