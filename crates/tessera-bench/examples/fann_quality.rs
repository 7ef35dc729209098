//! RPROP on FANN's benchmark datasets, tessera on the CPU against libfann 2.2 in the
//! same run: for each dataset, `SEEDS` initialisations of the bench's `inputs`-32-
//! `outputs` net, each trained `EPOCHS` epochs by both from the same `.net` file.
//! Prints the final training MSE (mean and spread over seeds, and the median: a
//! seed stuck on a plateau moves the mean by more than the others together) and the
//! time per epoch.
//!
//! Trajectories part after a few epochs: the CPU sums a small net's gradients in
//! blocks of rows, libfann sample by sample, and RPROP turns any rounding difference
//! in a gradient's sign into a different step. So quality is compared over seeds, not
//! epoch by epoch.
//!
//! `TESSERA_FANN_DATASETS=<FANN's datasets folder> cargo run --release -p
//! tessera-bench --example fann_quality [-- EPOCHS [SEEDS]]`

use std::sync::Arc;
use std::time::Instant;

use tessera_bench::libfann::Libfann;
use tessera_bench::nn::{FANN_DATASETS, FANN_DATASETS_ENV};
use tessera_cpu::CpuNn;
use tessera_nn::fann::{FannSettings, write_data, write_net};
use tessera_nn::{Algorithm, Model, TrainConfig, Trainer};
use tessera_tensor::nn::Loss;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args().nth(1).map_or(Ok(200), |a| a.parse())?;
    let seeds: u64 = std::env::args().nth(2).map_or(Ok(5), |a| a.parse())?;
    let Some(lib) = Libfann::load() else {
        println!("libfann 2.2 is not installed (apt-get install libfann-dev)");
        return Ok(());
    };
    let lib = Arc::new(lib);
    let dir = std::env::temp_dir().join(format!("tessera-fann-quality-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "RPROP, FANN defaults, {epochs} epochs, seeds 1..={seeds}; MSE mean ± sd (median) over seeds"
    );
    println!(
        "| dataset | net | tessera MSE | libfann MSE | tessera ms/epoch | libfann ms/epoch | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for d in FANN_DATASETS {
        let data = match d.load() {
            Ok(data) => data,
            Err(why) => {
                println!("| {} | skipped: {why} (set {FANN_DATASETS_ENV}) |", d.name);
                continue;
            }
        };
        let data_path = dir.join(format!("{}.data", d.name));
        write_data(&data_path, &data)?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_time, mut their_time) = (0.0, 0.0);
        for seed in 1..=seeds {
            let net = d.net(seed);
            let net_path = dir.join(format!("{}-{seed}.net", d.name));
            write_net(&net_path, &net, &FannSettings::default())?;
            let config = TrainConfig {
                loss: Loss::Fann { tanh: true },
                ..TrainConfig::new(Algorithm::fann_rprop())
            };
            let mut t = Trainer::new(Model::new(CpuNn::new(), &net)?, config)?;
            let start = Instant::now();
            let mut mse = f64::NAN;
            for _ in 0..epochs {
                mse = t.train_epoch(&data)?.mse.unwrap_or(f64::NAN);
            }
            our_time += start.elapsed().as_secs_f64();
            ours.push(mse);
            let mut run = lib.open(&net_path, &data_path)?;
            run.set_algorithm(2);
            let start = Instant::now();
            let mut mse = f32::NAN;
            for _ in 0..epochs {
                mse = run.train_epoch();
            }
            their_time += start.elapsed().as_secs_f64();
            theirs.push(mse as f64);
        }
        let ((om, os), (tm, ts)) = (mean_sd(&ours), mean_sd(&theirs));
        let per_epoch = |t: f64| t * 1e3 / (epochs as f64 * seeds as f64);
        println!(
            "| {} | {}-32-{} × {} | {om:.5} ± {os:.5} ({:.5}) | {tm:.5} ± {ts:.5} ({:.5}) | {:.3} | {:.3} | {:.1}x |",
            d.name,
            d.inputs,
            d.outputs,
            d.samples,
            median(&ours),
            median(&theirs),
            per_epoch(our_time),
            per_epoch(their_time),
            their_time / our_time
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
