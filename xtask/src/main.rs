//! `cargo xtask <task>`: project tasks that need more than cargo.
//!
//! `cargo xtask bench [OPTIONS]` runs the `tessera-bench` binary in release mode with
//! the same options (`cargo xtask bench --help` lists them). It times every kernel
//! family on every backend of this machine (CPU scalar and SIMD, each wgpu adapter) and
//! writes markdown tables, JSON and an SVG chart under `target/tessera-bench/`.
//!
//! xtask depends on no workspace crate, so `cargo package --workspace` can package it
//! beside the published crates although neither it nor `tessera-bench` is published.

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask bench [OPTIONS] (cargo xtask bench --help for the options)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["run", "--release", "-p", "tessera-bench", "--"])
                .args(&args)
                .status();
            match status {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
                Err(e) => {
                    eprintln!("cargo xtask bench: could not run cargo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some(other) => {
            eprintln!("cargo xtask: unknown task `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// The top-level README shows the facade crate's examples; `cargo test` runs the
    /// crate README's copies as doctests, so the two must not drift apart.
    #[test]
    fn the_readme_examples_are_the_tested_ones() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let blocks = |path: &str| -> Vec<String> {
            let text = std::fs::read_to_string(format!("{root}/{path}")).unwrap();
            text.split("```rust\n")
                .skip(1)
                .map(|b| b.split("```").next().unwrap().to_owned())
                .collect()
        };
        let (top, tested) = (blocks("README.md"), blocks("crates/tessera/README.md"));
        assert!(!top.is_empty());
        assert_eq!(
            top, tested,
            "README.md's examples differ from crates/tessera/README.md's"
        );
    }
}
