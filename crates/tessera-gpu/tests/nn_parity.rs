//! The shared neural-kernel parity suite, run against the GPU backend (lavapipe in CI).

use tessera_gpu::{GpuNn, testing};

fn gpu() -> Option<GpuNn> {
    testing::shared_context().map(|ctx| GpuNn::new(&ctx).expect("neural pipelines build"))
}

tessera_tensor::nn_parity_suite!(gpu());

/// Each GEMM kernel pinned for every shape and layout of the suite (`Auto` picks
/// among them by shape, and the suite's shapes are too small for it to pick most).
macro_rules! gemm_kernel_suite {
    ($($module:ident => $kernel:expr),*) => {
        $(
            mod $module {
                use tessera_gpu::{GemmKernel, GpuNn, testing};

                fn gpu() -> Option<GpuNn> {
                    testing::shared_context().map(|ctx| {
                        GpuNn::new(&ctx).expect("neural pipelines build").with_gemm_kernel($kernel)
                    })
                }

                tessera_tensor::nn_parity_suite!(@tests gpu(); gemm_layouts);
            }
        )*
    };
}

gemm_kernel_suite!(
    tile64 => GemmKernel::Tile64,
    tile128 => GemmKernel::Tile128,
    split_k_3 => GemmKernel::SplitK(3),
    split_k_64 => GemmKernel::SplitK(64)
);

/// Error metrics accumulated over more partials than one segment holds (4096 pairs):
/// the sums continue in a second segment and are read in one readback.
#[test]
fn error_metrics_accumulate_across_segments() {
    use tessera_tensor::nn::{Activation, Loss, NnKernels};
    if testing::shared_context().is_none() {
        return;
    }
    // A context of its own: the counters of the shared one would see other tests.
    let ctx = tessera_gpu::GpuContext::new_blocking().unwrap();
    let k = GpuNn::new(&ctx).unwrap();
    let y: Vec<f32> = (0..600).map(|i| (i as f32 * 0.37).sin()).collect();
    let t: Vec<f32> = (0..600).map(|i| (i as f32 * 0.11).cos()).collect();
    let (ky, kt) = (k.tensor(&y).unwrap(), k.tensor(&t).unwrap());
    let (loss, out) = (Loss::MeanSquared, Activation::Linear);
    let (sse, fails) = k.error_metrics(&ky, &kt, loss, out, 0.35).unwrap();
    let mut acc = k.metrics().unwrap();
    // 3 workgroups a call: 1400 calls fill 4200 pairs.
    for _ in 0..1400 {
        k.accumulate_error_metrics(&ky, &kt, loss, out, 0.35, &mut acc)
            .unwrap();
    }
    let before = k.context().counters();
    let (total, total_fails) = k.take_metrics(&mut acc).unwrap();
    let read = k.context().counters().since(&before);
    assert!(
        (total - 1400.0 * sse).abs() <= 1e-4 * total,
        "{total} vs 1400 x {sse}"
    );
    assert_eq!(total_fails, 1400 * fails);
    assert_eq!(
        read.host_syncs, 1,
        "one readback for every segment: {read:?}"
    );
}
