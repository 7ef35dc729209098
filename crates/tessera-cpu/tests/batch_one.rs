//! The batch-1 GEMV splits large products over two rayon workers; its result must not
//! depend on who ran which half, and it must not wait on a busy pool.

use rayon::prelude::*;
use tessera_cpu::CpuNn;
use tessera_tensor::nn::{Gemm, NnKernels};

fn product(k: &CpuNn, a: &Vec<f32>, b: &Vec<f32>, g: Gemm) -> Vec<f32> {
    let mut c = vec![0.5; g.n];
    k.gemm(g, a, b, &mut c).unwrap();
    c
}

#[test]
fn split_gemv_gives_the_same_bits_from_any_thread_and_a_busy_pool() {
    let k = CpuNn::new();
    // 784 x 128 f32 is 392 KiB: above the split threshold.
    let g = Gemm {
        alpha: 0.75,
        beta: 2.0,
        ..Gemm::new(1, 128, 784)
    };
    let a: Vec<f32> = (0..g.k).map(|i| (i as f32 * 0.37).sin()).collect();
    let b: Vec<f32> = (0..g.k * g.n).map(|i| (i as f32 * 0.11).cos()).collect();
    let want = product(&k, &a, &b, g);
    // From inside the pool, with every worker busy with other products.
    let from_pool: Vec<Vec<f32>> = (0..64)
        .into_par_iter()
        .map(|_| product(&k, &a, &b, g))
        .collect();
    assert!(from_pool.iter().all(|c| c == &want));
    // From plain threads racing for the pool.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..50).map(|_| product(&k, &a, &b, g)).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            assert!(h.join().unwrap().iter().all(|c| c == &want));
        }
    });
    // And the same answer as the f64 sum, to f32 rounding.
    for (j, &got) in want.iter().enumerate() {
        let exact: f64 = (0..g.k)
            .map(|i| a[i] as f64 * b[i * g.n + j] as f64)
            .sum::<f64>()
            * 0.75
            + 1.0;
        assert!(
            (got as f64 - exact).abs() <= 1e-4 * exact.abs().max(1.0),
            "{j}"
        );
    }
}
