//! Criterion benches of the acquisition pipeline step on the CPU and, when an adapter
//! is present, the GPU. Workloads come from `tessera-bench`, like `cargo xtask bench`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tessera_bench::acquisition::{AcqOp, AcqWorkload, filled_state, prepare};
use tessera_bench::backends::discover;

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquisition_step");
    let backends = discover(
        &[
            "cpu-simd".into(),
            "gpu-vulkan".into(),
            "gpu-metal".into(),
            "gpu-dx12".into(),
        ],
        None,
    );
    let workloads = [
        (3, 1000, 1),
        (50, 1000, 1),
        (10, 1000, 64),
        (10, 1000, 1024),
    ];
    for (n_vars, capacity, batch) in workloads {
        let w = AcqWorkload {
            group: "criterion",
            op: AcqOp::Step,
            n_vars,
            capacity,
            batch,
        };
        let filled = filled_state(&w);
        group.throughput(Throughput::Elements(batch as u64));
        for b in &backends {
            let Ok(Some((mut p, _))) = prepare(&w, b, &filled) else {
                continue;
            };
            let sync = p.syncer();
            // Time whole batches with the device synchronised at the end, so GPU work
            // is counted, not just its submission.
            group.bench_function(BenchmarkId::new(&b.info.id, w.label()), |bench| {
                bench.iter_custom(|iters| {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        p.run_once().unwrap();
                    }
                    sync().unwrap();
                    start.elapsed()
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
