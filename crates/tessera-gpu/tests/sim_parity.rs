//! The shared simulator parity suite on the GPU backend (lavapipe in CI), and
//! Philox's known answers computed on the device, bit for bit.

use tessera_gpu::sim::philox_blocks;
use tessera_gpu::{GpuContext, GpuSim, testing};
use tessera_tensor::Result;
use tessera_tensor::rng::philox4x32_10;
use tessera_tensor::sim::ScmBatch;

fn gpu() -> Option<impl Fn(&ScmBatch) -> Result<GpuSim>> {
    let ctx: GpuContext = testing::shared_context()?;
    Some(move |scm: &ScmBatch| GpuSim::new(&ctx, scm))
}

tessera_tensor::sim_parity_suite!(gpu());

#[test]
fn philox_on_the_device_gives_the_published_answers_and_the_cpus_bits() {
    let Some(ctx) = testing::shared_context() else {
        return;
    };
    let mut inputs = vec![
        ([0; 4], [0; 2]),
        ([u32::MAX; 4], [u32::MAX; 2]),
        (
            [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            [0xa409_3822, 0x299f_31d0],
        ),
    ];
    let mut rng = tessera_tensor::rng::Rng::new(3);
    let mut word = || rng.next_u64() as u32;
    for _ in 0..1000 {
        inputs.push(([word(), word(), word(), word()], [word(), word()]));
    }
    let gpu = philox_blocks(&ctx, &inputs).unwrap();
    assert_eq!(gpu[0], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
    assert_eq!(gpu[1], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
    assert_eq!(gpu[2], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]);
    for ((c, k), g) in inputs.iter().zip(&gpu) {
        assert_eq!(philox4x32_10(*c, *k), *g);
    }
}

mod posterior {
    use tessera_gpu::{GpuPosterior, testing};
    use tessera_tensor::reference::posterior_parity::F32Factory;
    use tessera_tensor::sim::PosteriorConfig;

    fn gpu() -> Option<F32Factory<impl Fn(&PosteriorConfig) -> tessera_tensor::Result<GpuPosterior>>>
    {
        let ctx = testing::shared_context()?;
        Some(F32Factory(move |c: &PosteriorConfig| {
            GpuPosterior::new(&ctx, c)
        }))
    }

    tessera_tensor::posterior_parity_suite!(gpu());
}

/// The same suite on the f32 kernels (a device without `SHADER_F64`, as Metal and GL
/// are): CI's lavapipe has f64, so without this the f32 posterior would only be
/// compiled, never run.
mod posterior_f32 {
    use tessera_gpu::{GpuPosterior, testing};
    use tessera_tensor::reference::posterior_parity::F32Factory;
    use tessera_tensor::sim::PosteriorConfig;

    fn gpu() -> Option<F32Factory<impl Fn(&PosteriorConfig) -> tessera_tensor::Result<GpuPosterior>>>
    {
        let ctx = testing::f32_context()?;
        Some(F32Factory(move |c: &PosteriorConfig| {
            GpuPosterior::new(&ctx, c)
        }))
    }

    tessera_tensor::posterior_parity_suite!(gpu());
}

/// On a device with f64 the GPU posterior agrees with the f64 reference at every size;
/// on one without, data that f32 cannot score (a target almost determined by its
/// parents, thousands of rows) is refused with an error, never returned as a wrong
/// posterior, and where it answers it agrees. Calls of 2000 rows also exercise the
/// split into dispatches of at most 512 rows.
#[test]
fn the_gpu_posterior_is_exact_with_f64_and_refuses_what_f32_cannot_resolve() {
    for ctx in [testing::shared_context(), testing::f32_context()]
        .into_iter()
        .flatten()
    {
        exact_or_refused(&ctx);
    }
}

fn exact_or_refused(ctx: &GpuContext) {
    use tessera_gpu::GpuPosterior;
    use tessera_tensor::TesseraError;
    use tessera_tensor::reference::{ReferencePosterior, ReferenceSim};
    use tessera_tensor::sim::{
        Interventions, PosteriorBackend, PosteriorConfig, ScmConfig, SimBackend,
    };
    let f64 = ctx
        .device()
        .features()
        .contains(tessera_gpu::wgpu::Features::SHADER_F64);
    let scm = ScmBatch::generate(&ScmConfig::new(16, 6, 8)).unwrap();
    let mut refused = 0;
    for rows in [100, 500, 2000, 10_000] {
        let samples = ReferenceSim::new(&scm)
            .unwrap()
            .sample(0, rows, &Interventions::None)
            .unwrap();
        let config = PosteriorConfig::for_scm(&scm, 3);
        let mut gpu = GpuPosterior::new(ctx, &config).unwrap();
        let mut reference = ReferencePosterior::new(&config).unwrap();
        gpu.add_rows(&samples, rows, &Interventions::None).unwrap();
        reference
            .add_rows(&samples, rows, &Interventions::None)
            .unwrap();
        let want = reference.posterior().unwrap();
        match gpu.posterior() {
            Ok(got) => {
                let tol = if f64 { 1e-5 } else { 2e-3 };
                for (g, w) in got.marginals.iter().zip(&want.marginals) {
                    assert!((g - w).abs() <= tol, "{rows} rows: {g} vs {w}");
                }
                assert_eq!(got.map_sets, want.map_sets, "{rows} rows");
            }
            Err(TesseraError::Diverged { .. }) if !f64 => refused += 1,
            Err(other) => panic!("{rows} rows: unexpected error {other}"),
        }
    }
    // Without f64, this model's targets are too tightly fitted for f32 at 10 000 rows.
    assert!(f64 || refused >= 1, "the f32 GPU answered every case");
}
