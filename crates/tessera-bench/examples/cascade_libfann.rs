//! One cascade training of `N` neurons (default 40) on the bench's 2000 x 16 -> 4
//! classification set, or on a FANN `.data` file, by tessera on the CPU and by libfann
//! 2.2 in the same run, same empty net, data and parameters: the 40-neuron
//! comparison, too long for the bench's repeated samples. `cargo run --release -p
//! tessera-bench --example cascade_libfann [-- N [DATA]]`

use std::time::Instant;

use tessera_bench::cascade::classes;
use tessera_bench::libfann::Libfann;
use tessera_cpu::CpuNn;
use tessera_nn::cascade::{CascadeConfig, CascadeNetwork, CascadeTrainer};
use tessera_nn::fann::{FannSettings, write_cascade_net, write_data};
use tessera_tensor::nn::Activation;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let neurons: usize = std::env::args().nth(1).map_or(Ok(40), |a| a.parse())?;
    let data = match std::env::args().nth(2) {
        Some(path) => tessera_nn::fann::read_data(path)?,
        None => classes(),
    };
    let (n_in, n_out) = (data.n_inputs(), data.n_outputs());
    println!("{} samples, {n_in} inputs, {n_out} outputs", data.len());
    let net = CascadeNetwork::new(n_in, n_out, Activation::SigmoidSymmetric, 0.5, 1)?;
    let config = CascadeConfig {
        seed: 1,
        ..CascadeConfig::default()
    };
    let start = Instant::now();
    let mut trainer = CascadeTrainer::new(CpuNn::new(), net.clone(), config.clone())?;
    let report = trainer.train(&data, neurons, 0.0, |_| true)?;
    let ours = start.elapsed();
    println!(
        "tessera cpu-simd: {} neurons in {:.2?} ({:.1} ms per neuron), MSE {:.5}, bit fail {}",
        report.neurons,
        ours,
        ours.as_secs_f64() * 1e3 / report.neurons.max(1) as f64,
        report.mse,
        report.bit_fail
    );
    let Some(lib) = Libfann::load() else {
        println!("libfann 2.2 is not installed (apt-get install libfann-dev)");
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("tessera-cascade-libfann-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (net_path, data_path) = (dir.join("cascade.net"), dir.join("cascade.data"));
    write_cascade_net(&net_path, &net, &FannSettings::default(), &config.params)?;
    write_data(&data_path, &data)?;
    let lib = std::sync::Arc::new(lib);
    let mut run = lib.open(&net_path, &data_path)?;
    let start = Instant::now();
    let (hidden, bit_fail) = run.cascade(neurons as u32, 0.0, false);
    let theirs = start.elapsed();
    println!(
        "libfann 2.2:      {hidden} neurons in {:.2?} ({:.1} ms per neuron), bit fail {bit_fail}",
        theirs,
        theirs.as_secs_f64() * 1e3 / hidden.max(1) as f64
    );
    println!(
        "tessera is {:.1}x faster",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
