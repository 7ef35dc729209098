//! # tessera-bench
//!
//! The benchmark workloads of tessera, defined once and shared by the criterion
//! benches in `benches/` and by `cargo xtask bench`, which times every workload on
//! every backend of the machine and writes JSON, markdown and an SVG chart.

pub mod acquisition;
pub mod backends;
pub mod machine;
pub mod report;
pub mod svg;
pub mod timing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::acquisition::{AcqWorkload, items_per_iteration};
use crate::backends::{BackendKind, BenchBackend};
use crate::report::{FirstCall, Measurement, Regression, Report};
use crate::timing::Budget;

/// Boxed error of a benchmark run.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// What a run measures and where it writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// A short run (fewer workloads, shorter samples).
    pub quick: bool,
    /// Backend ids (or parts of them) to keep; all when empty.
    pub backends: Vec<String>,
    /// Keep only GPU adapters whose name contains this.
    pub adapter: Option<String>,
    /// Directory for `report.json`, `report.md` and `scaling.svg`.
    pub out_dir: PathBuf,
    /// An earlier `report.json` to compare with.
    pub baseline: Option<PathBuf>,
    /// Relative slowdown that counts as a regression (0.10 = 10%).
    pub threshold: f64,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            backends: Vec::new(),
            adapter: None,
            out_dir: PathBuf::from("target/tessera-bench"),
            baseline: None,
            threshold: 0.10,
            progress: true,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Regressions against the baseline (empty without one).
    pub regressions: Vec<Regression>,
}

fn budget(quick: bool) -> Budget {
    if quick {
        Budget {
            measure: Duration::from_millis(120),
            samples: 5,
        }
    } else {
        Budget {
            measure: Duration::from_millis(600),
            samples: 11,
        }
    }
}

/// Runs the benchmark: discovers backends, then for every workload fills a state,
/// checks each backend against the CPU, and times it.
pub fn run(opts: &Options) -> Result<Outcome, BenchError> {
    let backends = backends::discover(&opts.backends, opts.adapter.as_deref());
    if backends.is_empty() {
        return Err(format!("no backend matches {:?}", opts.backends).into());
    }
    run_workloads(opts, &backends, &acquisition::workloads(opts.quick))
}

/// [`run`] on a given set of backends and workloads.
pub fn run_workloads(
    opts: &Options,
    backends: &[BenchBackend],
    workloads: &[AcqWorkload],
) -> Result<Outcome, BenchError> {
    let mut report = Report {
        version: env!("CARGO_PKG_VERSION").into(),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        quick: opts.quick,
        machine: machine::MachineInfo::current(),
        backends: backends.iter().map(|b| b.info.clone()).collect(),
        results: Vec::new(),
        first_calls: Vec::new(),
        skipped: Vec::new(),
    };
    let bar = if opts.progress {
        let bar = ProgressBar::new((workloads.len() * backends.len()) as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .map_err(|e| e.to_string())?
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    first_call_costs(backends, &mut report);
    let budget = budget(opts.quick);
    // A shape in several sweeps (n=10, capacity 1000, B=64 is in three) is measured
    // once and reported in each, so the tables never disagree with themselves.
    let mut measured: HashMap<(String, String), (timing::Timing, u64, Option<f64>)> =
        HashMap::new();
    let mut reference_skips = 0;
    for w in workloads {
        let key = |b: &BenchBackend| {
            let shape = format!("{:?}/{}/{}/{}", w.op, w.n_vars, w.capacity, w.batch);
            (shape, b.info.id.clone())
        };
        let filled = if backends.iter().all(|b| measured.contains_key(&key(b))) {
            None
        } else {
            bar.set_message(format!("filling {}", w.label()));
            Some(acquisition::filled_state(w))
        };
        for b in backends {
            bar.inc(1);
            if let Some(&(timing, bytes, kernel_ns)) = measured.get(&key(b)) {
                report
                    .results
                    .push(measurement(w, b, timing, bytes, kernel_ns));
                continue;
            }
            let filled = filled.as_ref().expect("filled when anything is unmeasured");
            bar.set_message(format!("{} on {}", w.label(), b.info.id));
            let (mut p, bytes) = match acquisition::prepare(w, b, filled) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    reference_skips += 1;
                    continue;
                }
                Err(e) => {
                    report
                        .skipped
                        .push(format!("{} on {}: {e}", w.label(), b.info.id));
                    continue;
                }
            };
            acquisition::verify(w, &mut p, filled)
                .map_err(|m| format!("{} disagrees with the CPU: {m}", b.info.id))?;
            let sync = p.syncer();
            let timing = timing::measure(|| p.run_once(), sync, budget)?;
            let kernel_ns = p.kernel_time_ns(if opts.quick { 8 } else { 32 })?;
            measured.insert(key(b), (timing, bytes, kernel_ns));
            report
                .results
                .push(measurement(w, b, timing, bytes, kernel_ns));
        }
    }
    if reference_skips > 0 {
        report.skipped.push(format!(
            "reference: {reference_skips} workloads with B x n_vars x capacity above 2^18 \
             (the f64 reference rescans the ring every step)"
        ));
    }
    bar.finish_and_clear();
    let regressions = match &opts.baseline {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read baseline {}: {e}", path.display()))?;
            let baseline: Report = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a tessera report: {e}", path.display()))?;
            report::regressions(&report, &baseline, opts.threshold)
        }
        None => Vec::new(),
    };
    let files = write_outputs(&report, &opts.out_dir)?;
    Ok(Outcome {
        report,
        files,
        regressions,
    })
}

fn measurement(
    w: &AcqWorkload,
    b: &BenchBackend,
    timing: timing::Timing,
    state_bytes: u64,
    kernel_ns: Option<f64>,
) -> Measurement {
    Measurement {
        workload: w.id(),
        group: w.group.into(),
        label: w.label(),
        x: match w.group {
            "vars" => w.n_vars as f64,
            "capacity" => w.capacity as f64,
            _ => w.batch as f64,
        },
        backend: b.info.id.clone(),
        throughput: items_per_iteration(w) * 1e9 / timing.median_ns,
        unit: "env-steps".into(),
        timing,
        kernel_ns,
        state_bytes,
    }
}

/// Times the one-off costs: opening a fresh device and building pipelines, building a
/// state, and its first synchronised step.
fn first_call_costs(backends: &[BenchBackend], report: &mut Report) {
    let w = AcqWorkload {
        group: "single",
        op: acquisition::AcqOp::Step,
        n_vars: 10,
        capacity: 1000,
        batch: 64,
    };
    let cfg = w.config();
    for b in backends {
        let t = Instant::now();
        let (backend, setup_ms): (BenchBackend, f64) = match &b.kind {
            BackendKind::Gpu(ctx) => {
                // A fresh device, so the pipeline cache is cold.
                let name = ctx.adapter_info().name.clone();
                let api = ctx.adapter_info().backend;
                let adapters = pollster::block_on(tessera_gpu::GpuContext::enumerate_adapters());
                let Some(a) = adapters
                    .iter()
                    .find(|a| a.get_info().name == name && a.get_info().backend == api)
                else {
                    continue;
                };
                let Ok(fresh) = pollster::block_on(tessera_gpu::GpuContext::from_adapter(a)) else {
                    continue;
                };
                let mut b2 = b.clone();
                b2.kind = BackendKind::Gpu(fresh);
                (b2, 0.0)
            }
            BackendKind::Reference => continue,
            _ => (b.clone(), 0.0),
        };
        let device_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let state = tessera_tensor::acquisition::AcquisitionState::new(&cfg).expect("valid config");
        let Ok(Some((mut p, _))) = acquisition::prepare(&w, &backend, &state) else {
            continue;
        };
        let create_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        if p.run_once().and_then(|_| p.sync()).is_err() {
            continue;
        }
        report.first_calls.push(FirstCall {
            backend: b.info.id.clone(),
            workload: w.label(),
            setup_ms: setup_ms + if backend.is_gpu() { device_ms } else { 0.0 },
            create_ms,
            first_run_ms: t.elapsed().as_secs_f64() * 1e3,
        });
    }
}

/// Writes `report.json`, `report.md` and `scaling.svg` into `dir`.
pub fn write_outputs(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let files = [
        (
            dir.join("report.json"),
            serde_json::to_string_pretty(report)?,
        ),
        (dir.join("report.md"), report.markdown()),
        (dir.join("scaling.svg"), svg::scaling_chart(report)),
    ];
    for (path, text) in &files {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}
