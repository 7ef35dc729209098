//! Two-spirals solved by Cascade2: an empty shortcut net grown one hidden neuron at a
//! time until no training point fails, then saved as a FANN `.net` file libfann reads.
//! `cargo run --release -p tessera-nn --example cascade_spirals [-- --gpu]`

mod common;

use tessera_nn::TrainData;
use tessera_nn::cascade::{CascadeConfig, CascadeNetwork, CascadeTrainer, StopFunction};
use tessera_nn::datasets::{sign_accuracy, two_spirals};
use tessera_nn::fann::{FannSettings, write_cascade_net};
use tessera_tensor::Result;
use tessera_tensor::nn::{Activation, NnKernels};

struct Spirals;

impl common::Problem for Spirals {
    fn run<K: NnKernels>(&self, k: K, data: &TrainData) -> Result<()> {
        let net = CascadeNetwork::new(2, 1, Activation::SigmoidSymmetric, 0.5, 1)?;
        // FANN's defaults (RPROP, 80 candidates, its stop rules), stopping on bit fails.
        let config = CascadeConfig {
            stop: StopFunction::BitFail,
            seed: 1,
            ..CascadeConfig::default()
        };
        let params = config.params.clone();
        let mut trainer = CascadeTrainer::new(k, net, config)?;
        let start = std::time::Instant::now();
        let last = trainer.train(data, 40, 0.0, |r| {
            println!(
                "{:2} hidden neurons  epochs {:5}  mse {:.5}  bit fail {:3}",
                r.neurons, r.epochs, r.mse, r.bit_fail
            );
            true
        })?;
        let net = trainer.into_network();
        let accuracy = sign_accuracy(&net.run(data.inputs())?, data.outputs());
        println!(
            "{} hidden neurons, bit fail {}, {:.1}% of the {} points, {:.2?}",
            net.hidden.len(),
            last.bit_fail,
            100.0 * accuracy,
            data.len(),
            start.elapsed()
        );
        let path = std::env::temp_dir().join("tessera-cascade-spirals.net");
        let settings = FannSettings {
            train_stop_function: 1,
            ..FannSettings::default()
        };
        write_cascade_net(&path, &net, &settings, &params)?;
        println!("saved {}", path.display());
        Ok(())
    }
}

fn main() -> Result<()> {
    common::main_with(Spirals, two_spirals())
}
