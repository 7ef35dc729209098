//! # tessera-bench
//!
//! The benchmark workloads of tessera, defined once and shared by the criterion
//! benches in `benches/` and by `cargo xtask bench`, which times every workload on
//! every backend of the machine and writes JSON, markdown and an SVG chart.

pub mod acquisition;
pub mod backends;
pub mod cascade;
pub mod cost;
pub mod floors;
pub mod libfann;
pub mod machine;
pub mod nn;
pub mod openblas;
pub mod report;
pub mod search;
pub mod sim;
pub mod svg;
pub mod timing;
pub mod voi;
pub mod workload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::acquisition::AcqWorkload;
use crate::backends::{BackendKind, BenchBackend};
use crate::report::{FirstCall, Measurement, Regression, Report};
use crate::timing::Action;
use crate::timing::Budget;
use crate::workload::{Prepared, Workload};

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
    /// Kernel families to run (`acquisition`, `nn`, `cascade`, `sim`, `voi`, `search`);
    /// all when empty.
    pub families: Vec<String>,
    /// The GPUs' peak f32 GFLOP/s, for the fraction-of-peak columns (else the
    /// vendor table's figure for a known adapter).
    pub peak_gflops: Option<f64>,
    /// The GPUs' peak memory bandwidth in GB/s, likewise.
    pub peak_gbps: Option<f64>,
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
            families: Vec::new(),
            peak_gflops: None,
            peak_gbps: None,
        }
    }
}

impl Options {
    /// Whether kernel family `family` is selected.
    pub fn wants(&self, family: &str) -> bool {
        self.families.is_empty() || self.families.iter().any(|f| f == family)
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
    let mut backends = backends::discover(&opts.backends, opts.adapter.as_deref());
    for b in &mut backends {
        if let Some(a) = &mut b.info.adapter {
            a.peak = cost::peak_for(&a.name, opts.peak_gflops, opts.peak_gbps);
        }
    }
    if backends.is_empty() {
        return Err(format!("no backend matches {:?}", opts.backends).into());
    }
    let mut workloads: Vec<Box<dyn Workload>> = Vec::new();
    if opts.wants("acquisition") {
        workloads.extend(
            acquisition::workloads(opts.quick)
                .into_iter()
                .map(|w| Box::new(w) as Box<dyn Workload>),
        );
    }
    if opts.wants("nn") {
        workloads.extend(
            nn::workloads(opts.quick)
                .into_iter()
                .map(|w| Box::new(w) as Box<dyn Workload>),
        );
    }
    if opts.wants("cascade") {
        workloads.extend(
            cascade::workloads(opts.quick)
                .into_iter()
                .map(|w| Box::new(w) as Box<dyn Workload>),
        );
    }
    if opts.wants("sim") {
        workloads.extend(
            sim::workloads(opts.quick)
                .into_iter()
                .map(|w| Box::new(w) as Box<dyn Workload>),
        );
    }
    if opts.wants("voi") {
        workloads.extend(
            voi::workloads(opts.quick)
                .into_iter()
                .map(|w| Box::new(w) as Box<dyn Workload>),
        );
    }
    if opts.wants("search") {
        workloads.extend(search::workloads(opts.quick));
    }
    run_workloads(opts, &backends, &workloads)
}

/// [`run`] on a given set of backends and workloads.
pub fn run_workloads(
    opts: &Options,
    backends: &[BenchBackend],
    workloads: &[Box<dyn Workload>],
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
    if opts.wants("acquisition") {
        first_call_costs(backends, &mut report);
    }
    let budget = budget(opts.quick);
    // A shape in several sweeps (n=10, capacity 1000, B=64 is in three) is measured
    // once and reported in each, so the tables never disagree with themselves.
    let mut measured: HashMap<(String, String), Measurement> = HashMap::new();
    let mut not_run: std::collections::BTreeMap<(String, &'static str), usize> = Default::default();
    for w in workloads {
        let key = |b: &BenchBackend| (w.shape_key(), b.info.id.clone());
        let fixture = if backends.iter().all(|b| measured.contains_key(&key(b))) {
            None
        } else {
            bar.set_message(format!("preparing {}", w.label()));
            Some(w.fixture())
        };
        for b in backends {
            bar.inc(1);
            if let Some(m) = measured.get(&key(b)) {
                report.results.push(Measurement {
                    workload: w.id(),
                    group: w.group().into(),
                    label: w.label(),
                    x: w.x(),
                    ..m.clone()
                });
                continue;
            }
            let Some(fixture) = fixture.as_ref() else {
                continue;
            };
            bar.set_message(format!("{} on {}", w.label(), b.info.id));
            let (mut runner, bytes) = match fixture.prepare(b) {
                Ok(Prepared::Ready(r, bytes)) => (r, bytes),
                Ok(Prepared::NotApplicable(why)) => {
                    *not_run.entry((b.info.id.clone(), why)).or_default() += 1;
                    continue;
                }
                Err(e) => {
                    return Err(format!(
                        "{} on {} disagrees with the CPU: {e}",
                        w.label(),
                        b.info.id
                    )
                    .into());
                }
            };
            let timing = timing::measure(
                |action| match action {
                    Action::Run => runner.run_once(),
                    Action::Sync => runner.sync(),
                },
                budget,
            )?;
            let kernel_ns = runner.kernel_time_ns(if opts.quick { 8 } else { 32 })?;
            let launches = match &b.kind {
                BackendKind::Gpu(ctx) => Some(launches_per_iteration(ctx, runner.as_mut())?),
                _ => None,
            };
            let m = Measurement {
                workload: w.id(),
                group: w.group().into(),
                label: w.label(),
                x: w.x(),
                backend: b.info.id.clone(),
                throughput: w.items_per_iteration() * 1e9 / timing.median_ns,
                unit: w.unit().into(),
                timing,
                kernel_ns,
                state_bytes: bytes,
                note: runner.note(),
                launches,
                cost: w.cost(),
            };
            measured.insert(key(b), m.clone());
            report.results.push(m);
        }
    }
    for ((backend, why), count) in not_run {
        report
            .skipped
            .push(format!("{backend}: {count} workloads not run ({why})"));
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

/// What one iteration of `runner` launches on `ctx`: the counters over four iterations
/// and the sync after them, divided by four (so a sync's wait counts as a quarter).
fn launches_per_iteration(
    ctx: &tessera_gpu::GpuContext,
    runner: &mut dyn workload::Runner,
) -> Result<report::Launches, BenchError> {
    const ITERS: f64 = 4.0;
    runner.sync()?;
    let before = ctx.counters();
    for _ in 0..ITERS as usize {
        runner.run_once()?;
    }
    runner.sync()?;
    let c = ctx.counters().since(&before);
    let per = |v: u64| v as f64 / ITERS;
    Ok(report::Launches {
        submissions: per(c.submissions),
        passes: per(c.passes),
        dispatches: per(c.dispatches),
        bind_groups: per(c.bind_groups),
        bytes_uploaded: per(c.bytes_uploaded),
        bytes_read_back: per(c.bytes_read_back),
        host_syncs: per(c.host_syncs),
    })
}

/// Times the one-off costs of the acquisition family: opening a fresh device and
/// building pipelines, building a state, and its first synchronised step.
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
