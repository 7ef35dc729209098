//! The benchmark runner behind `cargo xtask bench` (which runs this binary in release
//! mode with the same arguments).
//!
//! `cargo xtask bench` times every kernel family on every backend of this machine
//! (CPU scalar and SIMD, each wgpu adapter) and writes markdown tables, JSON and an
//! SVG chart under `target/tessera-bench/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "tessera project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// CPU vs GPU benchmark tables for this machine.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// A short run: fewer workloads and shorter samples (under two minutes on 2 cores).
    #[arg(long)]
    quick: bool,
    /// Backends to run, by id or part of one: reference, cpu-scalar, cpu-simd,
    /// cpu-gemm-crate, libfann, gpu, gpu-vulkan, gpu-metal, gpu-dx12, gpu-gl
    /// (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_parser = parse_backend)]
    backend: Vec<String>,
    /// Kernel families to run: acquisition, nn, cascade, sim, voi, search (comma-separated;
    /// default: all).
    #[arg(long, value_delimiter = ',', value_parser = ["acquisition", "nn", "cascade", "sim", "voi", "search"])]
    family: Vec<String>,
    /// Only GPU adapters whose name contains this (case-insensitive).
    #[arg(long)]
    adapter: Option<String>,
    /// Where to write report.json, report.md and scaling.svg.
    #[arg(long, default_value = "target/tessera-bench")]
    out: PathBuf,
    /// An earlier report.json to compare with; slower workloads are flagged.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Slowdown, in percent, beyond which a workload counts as a regression.
    #[arg(long, default_value_t = 10.0, value_parser = parse_threshold)]
    threshold: f64,
    /// Exit with status 1 when a regression is found.
    #[arg(long, requires = "baseline")]
    fail_on_regression: bool,
    /// Re-render report.md and scaling.svg from an earlier report.json (no timing).
    #[arg(long, conflicts_with_all = ["quick", "baseline", "list"])]
    render: Option<PathBuf>,
    /// List the backends found on this machine and exit.
    #[arg(long)]
    list: bool,
    /// No progress bar (for logs).
    #[arg(long)]
    no_progress: bool,
    /// The GPU's peak f32 GFLOP/s, for the fraction-of-peak column (default: the
    /// vendor figure for a known adapter).
    #[arg(long, value_parser = parse_peak)]
    peak_gflops: Option<f64>,
    /// The GPU's peak memory bandwidth in GB/s, likewise.
    #[arg(long, value_parser = parse_peak)]
    peak_gbps: Option<f64>,
}

fn parse_peak(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive rate")),
    }
}

fn parse_backend(s: &str) -> Result<String, String> {
    const KNOWN: &[&str] = &["reference", "cpu", "gpu", "libfann"];
    let s = s.trim().to_lowercase();
    if KNOWN.iter().any(|k| s.starts_with(k)) {
        Ok(s)
    } else {
        Err(format!(
            "unknown backend `{s}`: expected reference, cpu-scalar, cpu-simd, cpu-gemm-crate, libfann, gpu or gpu-<api>[-<n>]"
        ))
    }
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p.is_finite() => Ok(p),
        _ => Err(format!("`{s}` is not a positive percentage")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.task {
        Task::Bench(args) => bench(args),
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    if args.list {
        for b in tessera_bench::backends::discover(&args.backend, args.adapter.as_deref()) {
            println!("{:<16} {}", b.info.id, b.info.label);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &args.render {
        let report = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                serde_json::from_str::<tessera_bench::report::Report>(&t).map_err(|e| e.to_string())
            });
        return match report
            .map(|r| tessera_bench::write_outputs(&r, &args.out).map_err(|e| e.to_string()))
        {
            Ok(Ok(files)) => {
                files.iter().for_each(|f| println!("wrote {}", f.display()));
                ExitCode::SUCCESS
            }
            Ok(Err(e)) | Err(e) => {
                eprintln!("cargo xtask bench --render {}: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    let opts = tessera_bench::Options {
        quick: args.quick,
        backends: args.backend,
        adapter: args.adapter,
        out_dir: args.out,
        baseline: args.baseline,
        threshold: args.threshold / 100.0,
        progress: !args.no_progress,
        families: args.family,
        peak_gflops: args.peak_gflops,
        peak_gbps: args.peak_gbps,
    };
    match tessera_bench::run(&opts) {
        Ok(outcome) => {
            println!("{}", outcome.report.markdown());
            for f in &outcome.files {
                println!("wrote {}", f.display());
            }
            if opts.baseline.is_some() {
                if outcome.regressions.is_empty() {
                    println!(
                        "no regression beyond {:.0}% against the baseline",
                        args.threshold
                    );
                }
                for r in &outcome.regressions {
                    println!(
                        "REGRESSION {} on {}: {:.1}% slower",
                        r.workload,
                        r.backend,
                        100.0 * r.slowdown()
                    );
                }
                if args.fail_on_regression && !outcome.regressions.is_empty() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cargo xtask bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    #[test]
    fn accepts_the_documented_options() {
        let cli = parse(&[
            "bench",
            "--quick",
            "--backend",
            "cpu-simd,gpu-vulkan",
            "--threshold",
            "5",
            "--family",
            "nn",
        ])
        .unwrap();
        let Task::Bench(a) = cli.task;
        assert!(a.quick);
        assert_eq!(a.backend, ["cpu-simd", "gpu-vulkan"]);
        assert_eq!(a.threshold, 5.0);
        assert_eq!(a.family, ["nn"]);
    }

    #[test]
    fn argument_errors_say_what_was_expected() {
        let e = parse(&["bench", "--backend", "tpu"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown backend `tpu`") && e.contains("cpu-simd"),
            "{e}"
        );
        let e = parse(&["bench", "--threshold=-3"]).unwrap_err().to_string();
        assert!(e.contains("not a positive percentage"), "{e}");
        let e = parse(&["bench", "--fail-on-regression"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--baseline"), "{e}");
        let e = parse(&["bench", "--family", "vision"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("acquisition") && e.contains("nn"), "{e}");
        let e = parse(&["bnech"]).unwrap_err().to_string();
        assert!(e.contains("bench"), "{e}");
    }
}
