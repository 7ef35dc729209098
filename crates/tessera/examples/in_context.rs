//! The implicit weight update of in-context learning: a block of attention and a dense
//! layer, the rank-1 update that lets the layer reproduce the context's effect without
//! the context, its growth token by token, and the seed system's weight dynamics.
//!
//! `cargo run --release -p tessera --example in_context`

use tessera::Device;
use tessera::icl::{Contexts, ContextualBlock, Dynamics, InContext};
use tessera_tensor::rng::Rng;

fn main() -> Result<(), tessera::TesseraError> {
    let d = 64;
    let mut rng = Rng::new(3);
    let mut matrix = |rows: usize, scale: f32| -> Vec<f32> {
        (0..rows * d).map(|_| scale * rng.normal()).collect()
    };
    let s = 1.0 / (d as f32).sqrt();
    let (wq, wk, wv, w) = (
        matrix(d, 2.0 * s),
        matrix(d, 2.0 * s),
        matrix(d, s),
        matrix(d, s),
    );
    let block = ContextualBlock::new(d, d, d, d, &wq, &wk, &wv, &w)?;
    // Two query tokens: one with a 12-token context, one with a 3-token context.
    let queries = matrix(2, 1.0);
    let tokens = matrix(15, 1.0);
    let offsets = [0, 12, 15];
    let contexts = Contexts {
        queries: &queries,
        tokens: &tokens,
        offsets: &offsets,
    };

    let device = Device::new_blocking();
    println!("device: {}", device.describe());
    let mut icl = InContext::on(&device)?;
    let updates = icl.rank_one_updates(&block, &contexts)?;
    for b in 0..2 {
        // (W + ΔW) A(x), computed lazily from the factors, against W A(C, x).
        let without_context = updates.apply(b, &w, &updates.alone[b * d..(b + 1) * d]);
        let attended = &updates.attended[b * d..(b + 1) * d];
        let with_context: Vec<f64> = w
            .chunks(d)
            .map(|row| {
                row.iter()
                    .zip(attended)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum()
            })
            .collect();
        let err: f64 = without_context
            .iter()
            .zip(&with_context)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let size: f64 = with_context.iter().map(|v| v * v).sum::<f64>().sqrt();
        println!(
            "pair {b}: |dW| = {:.4}, |(W + dW) A(x) - W A(C, x)| / |W A(C, x)| = {:.1e}",
            updates.norm(b),
            err / size
        );
    }

    let sequences = icl.update_sequences(&block, &contexts)?;
    println!("pair 0, token by token:");
    for (t, (n, step)) in sequences
        .norms(0)
        .iter()
        .zip(sequences.step_norms(0))
        .enumerate()
    {
        println!(
            "  after token {:2}: |dW_t| = {n:.4}, |dW_t - dW_t-1| = {step:.4}",
            t + 1
        );
    }

    // The seed system's dynamics, for real: 2 contexts of 12 and 3 keys.
    let keys: Vec<f32> = tokens.iter().map(|v| v * s).collect();
    let run = icl.weight_dynamics(&Dynamics {
        dim: d,
        queries: &queries,
        keys: &keys,
        offsets: &offsets,
        initial: None,
        step: 0.5,
        decay: 0.2,
        tolerance: 1e-5,
        max_steps: 500,
    })?;
    for b in 0..2 {
        let norms = run.norms(b);
        println!(
            "context {b}: {} steps (converged: {}), |dW| from {:.4} to {:.2e}",
            run.steps[b],
            run.converged[b],
            norms[0],
            norms[norms.len() - 1]
        );
    }
    Ok(())
}
