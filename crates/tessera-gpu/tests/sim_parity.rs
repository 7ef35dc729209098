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
