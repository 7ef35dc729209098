//! The closed causal-acquisition loop for a batch of random SCMs, against a
//! random-intervention baseline:
//!
//! ```sh
//! cargo run --release -p tessera --example causal_loop -- [ENVS] [VARS] [STEPS]
//! ```
//!
//! Defaults: 1024 environments x 20 variables, 100 steps. Prints, every 10 steps, how
//! often the MAP parent set equals the target's true one and the mean best target
//! value found, for the acquisition policy and for random interventions, and the
//! env-steps per second. `TESSERA_DEVICE=cpu` or `=gpu` chooses the device.

use std::time::Instant;

use tessera::Device;
use tessera::causal::{ClosedLoop, LoopConfig, Selection};
use tessera::sim::{ScmBatch, ScmConfig};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn summary(run: &mut ClosedLoop) -> tessera::Result<(f64, f64)> {
    let matches = run.map_matches_truth()?;
    let found = matches.iter().filter(|&&m| m).count() as f64 / matches.len() as f64;
    let best = run.best_values()?;
    let mean_best = best.iter().map(|&v| f64::from(v)).sum::<f64>() / best.len() as f64;
    Ok((found, mean_best))
}

fn main() -> tessera::Result<()> {
    let (envs, vars, steps) = (arg(1, 1024), arg(2, 20), arg(3, 100));
    let device = Device::new_blocking();
    println!(
        "{envs} environments x {vars} variables, {steps} steps, on {}",
        device.describe()
    );
    let mut config = ScmConfig::new(envs, vars, 2026);
    config.scale_by_in_degree = true;
    let scm = ScmBatch::generate(&config)?;
    let policy = LoopConfig::default();
    let baseline = LoopConfig {
        selection: Selection::Random { seed: 1 },
        ..LoopConfig::default()
    };
    let mut runs = [
        ("acquisition", ClosedLoop::on(&device, &scm, &policy)?, 0.0),
        ("random", ClosedLoop::on(&device, &scm, &baseline)?, 0.0),
    ];
    println!(
        "{:>5}  {:>22}  {:>22}",
        "step", "acquisition: MAP, best", "random: MAP, best"
    );
    for step in 1..=steps {
        for (_, run, seconds) in runs.iter_mut() {
            let start = Instant::now();
            run.step()?;
            run.sync()?;
            *seconds += start.elapsed().as_secs_f64();
        }
        if step % 10 == 0 || step == steps {
            let cells = runs
                .iter_mut()
                .map(|(_, run, _)| {
                    let (found, best) = summary(run)?;
                    Ok(format!("{:>9.1}%, {:>9.3}", 100.0 * found, best))
                })
                .collect::<tessera::Result<Vec<String>>>()?;
            println!("{step:>5}  {:>22}  {:>22}", cells[0], cells[1]);
        }
    }
    for (name, _, seconds) in &runs {
        let rate = (envs * steps) as f64 / seconds;
        println!(
            "{name}: {:.0} env-steps/s ({:.2} ms per step)",
            rate,
            1e3 * seconds / steps as f64
        );
    }
    Ok(())
}
