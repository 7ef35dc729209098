//! The VOI parity suite on the CPU backend, with SIMD dispatch, pinned to scalar code
//! and pinned to every other level this CPU runs, on f64 input (the suite's tables
//! are f64).

mod common;

use tessera_cpu::{CpuVoi, SimdLevel};

fn pinned(level: SimdLevel) -> Option<impl Fn() -> tessera_tensor::Result<CpuVoi>> {
    common::pinned(level, SimdLevel::in_use()).map(|l| move || CpuVoi::with_level(l))
}

mod dispatched {
    use super::*;
    tessera_tensor::voi_parity_suite!(Some(|| Ok(CpuVoi::new())), 48);
}

mod scalar {
    use super::*;
    tessera_tensor::voi_parity_suite!(Some(|| Ok(CpuVoi::scalar())), 16);
}

mod avx2 {
    use super::*;
    tessera_tensor::voi_parity_suite!(pinned(SimdLevel::Avx2), 16);
}

mod avx512 {
    use super::*;
    tessera_tensor::voi_parity_suite!(pinned(SimdLevel::Avx512), 16);
}

/// The sums are combined in a fixed order: the same bits on any number of threads.
#[test]
fn sums_do_not_depend_on_the_thread_count() {
    use tessera_tensor::rng::Rng;
    use tessera_tensor::voi::{Decision, FittedLayout, Table, VoiBackend};
    let (n, d) = (50_000, 4);
    let mut rng = Rng::new(5);
    let mut draw = |scale: f64| -> Vec<f64> {
        (0..n * d)
            .map(|_| 1e4 + scale * f64::from(rng.normal()))
            .collect()
    };
    let (costs, effects) = (draw(300.0), draw(0.1));
    let x: Vec<f64> = (0..n * 2).map(|i| (i % 7) as f64 * 0.1 + 1.0).collect();
    let wtp: Vec<f64> = (0..20).map(|k| 5000.0 * f64::from(k)).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut voi = CpuVoi::new();
            let decision = Decision::CostEffect {
                costs: Table::new("costs", &costs, n, d).unwrap(),
                effects: Table::new("effects", &effects, n, d).unwrap(),
                wtp: &wtp,
            };
            let grid = voi.decision_sums(&decision, &[1; 20]).unwrap();
            let y = Table::new("y", &costs[..n * 3], n, 3).unwrap();
            let gram = voi.load_design(x.clone(), 2, &y).unwrap();
            let layout = FittedLayout::NetBenefit { strategies: 4 };
            let fitted = voi
                .fitted_decision_sums(&[1.0, 2.0, 3.0, 0.5, 0.1, 0.2], 1, &layout, &[0])
                .unwrap();
            (grid, gram.ztz, fitted)
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}
