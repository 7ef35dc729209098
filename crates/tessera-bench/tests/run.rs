//! A small benchmark run: every workload is checked against the CPU before timing,
//! and the report renders as JSON, markdown and SVG; baselines flag regressions.

use tessera_bench::acquisition::{AcqOp, AcqWorkload, filled_state, prepare, verify};
use tessera_bench::backends::{BackendKind, discover};
use tessera_bench::nn::{NnKind, NnWorkload};
use tessera_bench::report::{Report, regressions};
use tessera_bench::workload::Workload;
use tessera_bench::{Options, run_workloads};

fn tiny_workloads() -> Vec<Box<dyn Workload>> {
    let w = |group, op, n_vars, capacity, batch| {
        Box::new(AcqWorkload {
            group,
            op,
            n_vars,
            capacity,
            batch,
        }) as Box<dyn Workload>
    };
    let mut out = vec![
        w("single", AcqOp::Step, 3, 50, 1),
        w("vars", AcqOp::Step, 3, 20, 4),
        w("vars", AcqOp::Step, 7, 20, 4),
        w("ops", AcqOp::Coverage, 5, 20, 3),
        w("ops", AcqOp::History(8), 5, 20, 3),
    ];
    out.extend([
        Box::new(NnWorkload {
            group: "gemm",
            software_max_flop: 1e9,
            kind: NnKind::Gemm { n: 33 },
        }) as Box<dyn Workload>,
        Box::new(NnWorkload {
            group: "nn-forward",
            software_max_flop: 1e9,
            kind: NnKind::Forward {
                sizes: &[5, 7, 3],
                batch: 4,
            },
        }),
        Box::new(NnWorkload {
            group: "nn-train",
            software_max_flop: 1e9,
            kind: NnKind::TrainStep {
                sizes: &[5, 7, 3],
                batch: 4,
            },
        }),
    ]);
    out
}

fn backends() -> Vec<tessera_bench::backends::BenchBackend> {
    let mut wanted = vec![
        "reference".to_owned(),
        "cpu".to_owned(),
        "libfann".to_owned(),
        "cpu-openblas".to_owned(),
    ];
    if tessera_gpu::testing::shared_context().is_some() {
        wanted.push("gpu-vulkan".into());
    }
    discover(&wanted, None)
}

#[test]
fn every_op_on_every_backend_agrees_with_the_cpu() {
    let ops = std::iter::once(AcqOp::Step).chain(AcqOp::singles(12));
    let backends = backends();
    for op in ops {
        let w = AcqWorkload {
            group: "ops",
            op,
            n_vars: 6,
            capacity: 15,
            batch: 5,
        };
        let filled = filled_state(&w);
        for b in &backends {
            let Some((mut p, bytes)) = prepare(&w, b, &filled).unwrap() else {
                // Only the comparison columns (gemm crate, libfann) have no acquisition.
                assert!(
                    matches!(
                        b.kind,
                        BackendKind::GemmCrate | BackendKind::Libfann(_) | BackendKind::OpenBlas(_)
                    ),
                    "{}",
                    b.info.id
                );
                continue;
            };
            assert!(bytes > 0);
            verify(&w, &mut p, &filled)
                .unwrap_or_else(|m| panic!("{} on {}: {m}", w.label(), b.info.id));
        }
    }
}

#[test]
fn a_small_run_renders_every_output() {
    let dir = std::env::temp_dir().join(format!("tessera-bench-test-{}", std::process::id()));
    let opts = Options {
        quick: true,
        out_dir: dir.clone(),
        progress: false,
        ..Options::default()
    };
    let outcome = run_workloads(&opts, &backends(), &tiny_workloads()).unwrap();
    let report = &outcome.report;
    assert!(report.results.iter().any(|m| m.backend == "cpu-simd"));
    assert!(
        report
            .results
            .iter()
            .all(|m| m.timing.median_ns > 0.0 && m.throughput > 0.0)
    );
    if let Some(ctx) = tessera_gpu::testing::shared_context().filter(|c| c.supports_timestamps()) {
        let name = &ctx.adapter_info().name;
        let gpu_ids: Vec<_> = report
            .backends
            .iter()
            .filter(|b| b.adapter.as_ref().is_some_and(|a| &a.name == name))
            .map(|b| b.id.clone())
            .collect();
        // Timestamp queries cover the acquisition kernels (not yet the neural launcher).
        let gpu_results = report
            .results
            .iter()
            .filter(|m| gpu_ids.contains(&m.backend) && m.workload.starts_with("acq/"));
        let missing: Vec<_> = gpu_results
            .clone()
            .filter(|m| m.kernel_ns.is_none())
            .map(|m| m.workload.clone())
            .collect();
        assert!(
            gpu_results.count() > 0 && missing.is_empty(),
            "no kernel time for {missing:?}"
        );
    }
    let md = report.markdown();
    assert!(md.contains("Acquisition step vs variables"), "{md}");
    assert!(
        md.contains("SGEMM") && md.contains("FLOP/s") && md.contains("cpu-gemm-crate"),
        "{md}"
    );
    assert!(md.contains("Neural training step"), "{md}");
    assert!(md.contains(&report.machine.cpu_model));
    if report
        .backends
        .iter()
        .any(|b| b.adapter.as_ref().is_some_and(|a| a.software))
    {
        assert!(md.contains("software rasteriser"));
    }
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let parsed: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(&parsed, report);
    let svg = std::fs::read_to_string(dir.join("scaling.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    assert!(dir.join("report.md").exists());

    // The same report as its own baseline has no regression; a faster baseline does.
    assert!(regressions(report, report, 0.1).is_empty());
    let mut faster = report.clone();
    for m in &mut faster.results {
        m.timing.median_ns /= 10.0;
    }
    assert_eq!(
        regressions(report, &faster, 0.1).len(),
        report.results.len()
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn search_and_icl_workloads_run_on_every_backend() {
    use tessera::search::Storage;
    use tessera_bench::search::{IclKind, IclWorkload, SearchWorkload};
    let mut workloads: Vec<Box<dyn Workload>> = Vec::new();
    for (group, storage, refine) in [
        ("search-f32", Storage::F32, None),
        ("search-bf16", Storage::Bf16, None),
        ("search-bf16", Storage::Bf16, Some(2)),
    ] {
        workloads.push(Box::new(SearchWorkload {
            group,
            n: 3000,
            dim: 24,
            queries: 5,
            storage,
            refine,
        }));
    }
    for kind in [IclKind::Update, IclKind::Dynamics] {
        workloads.push(Box::new(IclWorkload { kind, dim: 16 }));
    }
    let opts = Options {
        quick: true,
        out_dir: std::env::temp_dir().join(format!("tessera-bench-search-{}", std::process::id())),
        progress: false,
        ..Options::default()
    };
    let outcome = run_workloads(&opts, &backends(), &workloads).unwrap();
    for w in &workloads {
        let cpu = outcome
            .report
            .results
            .iter()
            .find(|m| m.backend == "cpu-simd" && m.workload == w.id())
            .unwrap_or_else(|| panic!("{} not run on the CPU", w.id()));
        assert!(
            cpu.note.as_deref().is_some_and(|n| n.contains("CPU floor")),
            "{:?}",
            cpu.note
        );
    }
    std::fs::remove_dir_all(&opts.out_dir).ok();
}
