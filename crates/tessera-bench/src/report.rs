//! The report of a run: JSON for machines and baselines, markdown for people.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::backends::BackendInfo;
use crate::machine::MachineInfo;
use crate::timing::{Timing, format_ns};

/// One workload timed on one backend.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Measurement {
    /// Workload identifier (matches across runs).
    pub workload: String,
    /// Table the workload belongs to.
    pub group: String,
    /// Row title.
    pub label: String,
    /// The swept parameter's value, for charts.
    pub x: f64,
    /// Backend identifier.
    pub backend: String,
    /// Per-iteration timing.
    pub timing: Timing,
    /// Median device time of one iteration from GPU timestamp queries, where the
    /// adapter has them (kernel only: no submission or readback).
    #[serde(default)]
    pub kernel_ns: Option<f64>,
    /// Items per second (see `unit`).
    pub throughput: f64,
    /// What `throughput` counts.
    pub unit: String,
    /// Memory the backend holds for the workload's state, in bytes.
    pub state_bytes: u64,
    /// A remark, e.g. the MSE a training workload reached before timing.
    #[serde(default)]
    pub note: Option<String>,
    /// GPU backends: what one iteration launched, from the context's counters.
    #[serde(default)]
    pub launches: Option<Launches>,
    /// The bytes and FLOPs one iteration needs at least, where modelled.
    #[serde(default)]
    pub cost: Option<crate::cost::Cost>,
}

/// One iteration's launches on a GPU (`tessera_gpu::LaunchCounters`, per iteration).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Launches {
    /// Command buffers submitted.
    pub submissions: f64,
    /// Compute passes begun.
    pub passes: f64,
    /// Dispatches recorded.
    pub dispatches: f64,
    /// Bind groups created.
    pub bind_groups: f64,
    /// Bytes uploaded.
    pub bytes_uploaded: f64,
    /// Bytes read back.
    pub bytes_read_back: f64,
    /// Host waits for the device.
    pub host_syncs: f64,
}

/// One-off costs of a backend, kept apart from steady-state timings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FirstCall {
    /// Backend identifier.
    pub backend: String,
    /// What was measured.
    pub workload: String,
    /// Opening the device and compiling the pipelines (0 on the CPU), in ms.
    pub setup_ms: f64,
    /// Building and uploading the state, in ms.
    pub create_ms: f64,
    /// The first run, synchronised, in ms.
    pub first_run_ms: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// tessera version that produced it.
    pub version: String,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
    /// Whether `--quick` was used.
    pub quick: bool,
    /// The host.
    pub machine: MachineInfo,
    /// The columns.
    pub backends: Vec<BackendInfo>,
    /// Steady-state results.
    pub results: Vec<Measurement>,
    /// First-call costs.
    pub first_calls: Vec<FirstCall>,
    /// Workloads skipped on a backend, and why.
    pub skipped: Vec<String>,
}

/// Titles of the groups, in report order.
pub const GROUPS: &[(&str, &str)] = &[
    ("single", "Acquisition step, one environment"),
    (
        "vars",
        "Acquisition step vs variables (capacity 1000, B = 64)",
    ),
    (
        "capacity",
        "Acquisition step vs capacity (10 variables, B = 64)",
    ),
    (
        "batch",
        "Acquisition step vs batch (10 variables, capacity 1000)",
    ),
    (
        "ops",
        "Acquisition operations (10 variables, capacity 1000, B = 64)",
    ),
    (
        "large",
        "Acquisition step, B = 4096, 50 variables, capacity 1000",
    ),
    ("gemm", "SGEMM, C = A B, n x n x n"),
    ("nn-forward", "Neural forward pass, input upload included"),
    (
        "nn-train",
        "Neural training step: forward, backward, Adam update, loss read back",
    ),
    (
        "fann",
        "FANN RPROP training epoch against libfann 2.2 (same net, data and algorithm)",
    ),
    (
        "fann-datasets",
        "FANN RPROP epoch on FANN's benchmark datasets, 32 hidden neurons, against libfann 2.2 (same net, data and algorithm)",
    ),
    (
        "cascade",
        "Cascade2 training against libfann 2.2's fann_cascadetrain_on_data (same nets, data and parameters)",
    ),
    (
        "sim-setup",
        "Simulator set-up: generating the SCMs on the host",
    ),
    (
        "sim-batch",
        "Simulator sampling vs batch (20 variables, 100 rows, one do per environment, samples read back)",
    ),
    (
        "sim-vars",
        "Simulator sampling vs variables (B = 1024, 100 rows, samples read back)",
    ),
    (
        "sim-posterior",
        "Parent-set posterior: one new row per environment, every set of size <= k scored (B = 1024, 20 variables)",
    ),
    ("loop-batch", "Closed loop step vs batch (20 variables)"),
    ("loop-vars", "Closed loop step vs variables (B = 1024)"),
    (
        "voi-evpi",
        "EVPI of a net-benefit table, f64 input (D = 4 strategies)",
    ),
    (
        "voi-grid",
        "EVPI and acceptability at 101 willingness-to-pay values from costs and effects (D = 4)",
    ),
    (
        "voi-evppi",
        "EVPPI of a parameter group, fit and decision pass (D = 4)",
    ),
    (
        "search-f32",
        "Exact top-10 search, cosine, f32 storage (clustered synthetic embeddings; k results read back)",
    ),
    (
        "search-bf16",
        "Exact top-10 search, cosine, bf16 storage and queries, f32 sums (recall against the f32 result)",
    ),
    (
        "icl-update",
        "In-context rank-1 updates, d_k = d_v = m = d (u, v, A(x), A(C, x) read back)",
    ),
    (
        "icl-dynamics",
        "Weight dynamics to |dW| < 1e-4 or 100 steps (final W read back)",
    ),
];

fn fmt_rate(x: f64, unit: &str) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2} G{unit}", x / 1e9),
        x if x >= 1e6 => format!("{:.2} M{unit}", x / 1e6),
        x if x >= 1e3 => format!("{:.2} k{unit}", x / 1e3),
        x => format!("{x:.1} {unit}"),
    }
}

/// A speed ratio with three significant digits (0.00213x, 1.25x, 312x).
fn fmt_ratio(r: f64) -> String {
    let digits = if r > 0.0 {
        (2 - r.log10().floor() as i32).clamp(0, 6) as usize
    } else {
        2
    };
    format!("{r:.digits$}x")
}

fn fmt_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

impl Report {
    fn result(&self, workload: &str, backend: &str) -> Option<&Measurement> {
        self.results
            .iter()
            .find(|m| m.workload == workload && m.backend == backend)
    }

    /// The report as markdown: a header naming the machine and adapters, one table per
    /// group, first-call costs and memory.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# tessera benchmark{}\n",
            if self.quick { " (--quick)" } else { "" }
        );
        let _ = writeln!(
            md,
            "- CPU: {} ({} threads, {}; SIMD: {})",
            self.machine.cpu_model,
            self.machine.threads,
            self.machine.os,
            if self.machine.simd.is_empty() {
                "baseline only".to_owned()
            } else {
                self.machine.simd.join(", ")
            }
        );
        for b in &self.backends {
            let _ = match &b.adapter {
                Some(a) => writeln!(
                    md,
                    "- `{}`: {} via {}, driver {}, type {}{}",
                    b.id,
                    a.name,
                    a.api,
                    a.driver,
                    a.device_type,
                    if a.software {
                        " — **software rasteriser: its timings are not GPU speed**"
                    } else {
                        ""
                    }
                ),
                None => writeln!(md, "- `{}`: {}", b.id, b.label),
            };
        }
        let _ = writeln!(
            md,
            "- tessera {}; median wall-clock time per iteration with the device synchronised, ± half the interquartile range, throughput; `kernel` is the device time from GPU timestamp queries where the adapter has them",
            self.version
        );
        let cpu = "cpu-simd";
        for (group, title) in GROUPS {
            let rows: Vec<&Measurement> = {
                let mut seen = Vec::new();
                for m in self.results.iter().filter(|m| m.group == *group) {
                    if !seen.iter().any(|s: &&Measurement| s.workload == m.workload) {
                        seen.push(m);
                    }
                }
                seen
            };
            if rows.is_empty() {
                continue;
            }
            let backends: Vec<&BackendInfo> = self
                .backends
                .iter()
                .filter(|b| {
                    rows.iter()
                        .any(|r| self.result(&r.workload, &b.id).is_some())
                })
                .collect();
            let gpus: Vec<&&BackendInfo> =
                backends.iter().filter(|b| b.adapter.is_some()).collect();
            let _ = writeln!(md, "\n## {title}\n");
            let mut header = String::from("| workload |");
            let mut rule = String::from("|---|");
            for b in &backends {
                let _ = write!(header, " {} |", b.id);
                rule.push_str("---|");
            }
            for g in &gpus {
                let _ = write!(header, " {} / CPU SIMD |", g.id);
                rule.push_str("---|");
            }
            let _ = writeln!(md, "{header}\n{rule}");
            for r in rows {
                let mut line = format!("| {} |", r.label);
                for b in &backends {
                    match self.result(&r.workload, &b.id) {
                        Some(m) => {
                            let kernel = m
                                .kernel_ns
                                .map(|k| format!(", kernel {}", format_ns(k)))
                                .unwrap_or_default();
                            let note = m
                                .note
                                .as_ref()
                                .map(|n| format!("; {n}"))
                                .unwrap_or_default();
                            let _ = write!(
                                line,
                                " {} ±{:.0}% ({}{kernel}{note}) |",
                                format_ns(m.timing.median_ns),
                                m.timing.spread_pct(),
                                fmt_rate(m.throughput, &format!("{}/s", m.unit))
                            );
                        }
                        None => line.push_str(" — |"),
                    }
                }
                for g in &gpus {
                    match (
                        self.result(&r.workload, &g.id),
                        self.result(&r.workload, cpu),
                    ) {
                        (Some(gm), Some(cm)) => {
                            let ratio = cm.timing.median_ns / gm.timing.median_ns;
                            let _ = write!(line, " {} |", fmt_ratio(ratio));
                        }
                        _ => line.push_str(" — |"),
                    }
                }
                let _ = writeln!(md, "{line}");
            }
        }
        if !self.first_calls.is_empty() {
            let _ = writeln!(md, "\n## First-call costs (not in the tables above)\n");
            let _ = writeln!(
                md,
                "| backend | workload | device + pipelines | create state | first run |\n|---|---|---|---|---|"
            );
            for f in &self.first_calls {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
                    f.backend, f.workload, f.setup_ms, f.create_ms, f.first_run_ms
                );
            }
        }
        let mut memory: BTreeMap<&str, u64> = BTreeMap::new();
        for m in &self.results {
            let e = memory.entry(m.backend.as_str()).or_default();
            *e = (*e).max(m.state_bytes);
        }
        if !memory.is_empty() {
            let _ = writeln!(
                md,
                "\n## Peak state memory per backend\n\n| backend | largest state held |\n|---|---|"
            );
            for (b, bytes) in memory {
                let _ = writeln!(md, "| {b} | {} |", fmt_bytes(bytes));
            }
        }
        let launched: Vec<&Measurement> = self
            .results
            .iter()
            .filter(|m| m.launches.is_some())
            .collect();
        if !launched.is_empty() {
            let _ = writeln!(
                md,
                "\n## Launches per iteration on the GPU (from the context's counters)\n\n\
                 | workload | backend | submissions | passes | dispatches | new bind groups | uploaded | read back | host syncs |\n\
                 |---|---|---|---|---|---|---|---|---|"
            );
            let mut seen = std::collections::HashSet::new();
            for m in launched {
                if !seen.insert((&m.workload, &m.backend)) {
                    continue;
                }
                let l = m.launches.expect("filtered");
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    m.label,
                    m.backend,
                    l.submissions,
                    l.passes,
                    l.dispatches,
                    l.bind_groups,
                    fmt_bytes(l.bytes_uploaded as u64),
                    fmt_bytes(l.bytes_read_back as u64),
                    l.host_syncs
                );
            }
        }
        self.achieved_rates(&mut md);
        if !self.skipped.is_empty() {
            let _ = writeln!(md, "\n## Skipped\n");
            for s in &self.skipped {
                let _ = writeln!(md, "- {s}");
            }
        }
        md
    }
}

impl Report {
    /// The cost-model table: achieved GB/s and GFLOP/s of each modelled workload on
    /// each GPU column (from its kernel time where timestamps exist, else wall time),
    /// and the fraction of the adapter's peak where known.
    fn achieved_rates(&self, md: &mut String) {
        let rows: Vec<(&Measurement, &BackendInfo)> = self
            .results
            .iter()
            .filter(|m| m.cost.is_some())
            .filter_map(|m| {
                let b = self.backends.iter().find(|b| b.id == m.backend)?;
                b.adapter.is_some().then_some((m, b))
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## Achieved rates on the GPU (cost model: the bytes and FLOPs an iteration needs at least)\n\n\
             | workload | backend | bytes | FLOPs | time used | GB/s | GFLOP/s | of peak bandwidth | of peak FLOP/s |\n\
             |---|---|---|---|---|---|---|---|---|"
        );
        for (m, b) in rows {
            let cost = m.cost.expect("filtered");
            let (ns, which) = match m.kernel_ns {
                Some(k) => (k, "kernel"),
                None => (m.timing.median_ns, "wall"),
            };
            let gbps = cost.bytes / ns;
            let gflops = cost.flops / ns;
            let peak = b.adapter.as_ref().and_then(|a| a.peak.as_ref());
            let share = |rate: f64, peak: Option<f64>| match peak {
                Some(p) if p > 0.0 => format!("{:.1}%", 100.0 * rate / p),
                _ => "—".to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.3e} | {which} {} | {gbps:.2} | {gflops:.2} | {} | {} |",
                m.label,
                m.backend,
                fmt_bytes(cost.bytes as u64),
                cost.flops,
                format_ns(ns),
                share(gbps, peak.and_then(|p| p.gbps)),
                share(gflops, peak.and_then(|p| p.gflops)),
            );
        }
        for b in &self.backends {
            if let Some(p) = b.adapter.as_ref().and_then(|a| a.peak.as_ref()) {
                let _ = writeln!(
                    md,
                    "\n`{}` peak: {} GFLOP/s f32, {} GB/s ({})",
                    b.id,
                    p.gflops.map_or("—".into(), |g| format!("{g:.0}")),
                    p.gbps.map_or("—".into(), |g| format!("{g:.0}")),
                    p.source
                );
            }
        }
    }
}

/// A measurement slower than its baseline by more than the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// Workload identifier.
    pub workload: String,
    /// Backend identifier.
    pub backend: String,
    /// Baseline median, ns.
    pub before_ns: f64,
    /// New median, ns.
    pub after_ns: f64,
}

impl Regression {
    /// Relative slowdown (0.25 = 25% slower).
    pub fn slowdown(&self) -> f64 {
        self.after_ns / self.before_ns - 1.0
    }
}

/// Workloads present in both reports whose median grew by more than `threshold`
/// (0.10 = 10%), and whose new fastest sample is also slower than the old median, so
/// that noise alone does not flag them.
pub fn regressions(new: &Report, baseline: &Report, threshold: f64) -> Vec<Regression> {
    new.results
        .iter()
        .filter_map(|m| {
            let old = baseline.result(&m.workload, &m.backend)?;
            let slower = m.timing.median_ns > old.timing.median_ns * (1.0 + threshold)
                && m.timing.min_ns > old.timing.median_ns;
            slower.then(|| Regression {
                workload: m.workload.clone(),
                backend: m.backend.clone(),
                before_ns: old.timing.median_ns,
                after_ns: m.timing.median_ns,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_keep_three_significant_digits() {
        assert_eq!(fmt_ratio(0.002134), "0.00213x");
        assert_eq!(fmt_ratio(1.254), "1.25x");
        assert_eq!(fmt_ratio(312.4), "312x");
        assert_eq!(fmt_bytes(3 << 20), "3.0 MiB");
    }
}
