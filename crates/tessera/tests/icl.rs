//! The in-context kernels agree on every device through the facade.

use tessera::{CpuDevice, Device};
use tessera_tensor::rng::Rng;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu(), Device::Cpu(CpuDevice::scalar())];
    if let Some(ctx) = tessera_gpu::testing::shared_context() {
        d.push(Device::from_context(ctx));
    }
    d
}

#[test]
fn in_context_updates_agree_on_every_device() {
    use tessera::icl::{Contexts, ContextualBlock, Dynamics, InContext};
    let mut rng = Rng::new(5);
    let d = 32;
    let mut matrix =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() / (d as f32).sqrt()).collect() };
    let (wq, wk, wv, w) = (matrix(d * d), matrix(d * d), matrix(d * d), matrix(d * d));
    let queries: Vec<f32> = matrix(3 * d).iter().map(|v| v * 4.0).collect();
    let tokens: Vec<f32> = matrix(20 * d).iter().map(|v| v * 4.0).collect();
    let block = ContextualBlock::new(d, d, d, d, &wq, &wk, &wv, &w).unwrap();
    let contexts = Contexts {
        queries: &queries,
        tokens: &tokens,
        offsets: &[0, 5, 5, 20],
    };
    let keys: Vec<f32> = tokens.iter().map(|v| v * 0.5).collect();
    let dynamics = Dynamics {
        dim: d,
        queries: &queries,
        keys: &keys,
        offsets: &[0, 5, 6, 20],
        initial: None,
        step: 0.5,
        decay: 0.3,
        tolerance: 1e-4,
        max_steps: 100,
    };
    let runs: Vec<_> = devices()
        .iter()
        .map(|device| {
            let mut icl = InContext::on(device).unwrap();
            (
                icl.rank_one_updates(&block, &contexts).unwrap(),
                icl.update_sequences(&block, &contexts).unwrap(),
                icl.weight_dynamics(&dynamics).unwrap(),
            )
        })
        .collect();
    let close = |a: &[f32], b: &[f32]| {
        let scale = b.iter().map(|v| v.abs()).fold(1e-6, f32::max);
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
    };
    for (up, seq, dyn_run) in &runs[1..] {
        assert!(close(&up.u, &runs[0].0.u));
        assert!(close(&seq.norms, &runs[0].1.norms));
        assert_eq!(dyn_run.steps, runs[0].2.steps);
        assert!(close(&dyn_run.weights, &runs[0].2.weights));
    }
    // The empty context of pair 1 leaves W alone.
    assert!(runs[0].0.u(1).iter().all(|&u| u == 0.0));
}
