//! The two-spirals benchmark to 100% training accuracy: a 2-48-48-1 tanh net trained
//! by full-batch Adam. `cargo run --release -p tessera-nn --example two_spirals [-- --gpu]`

mod common;

use tessera_nn::datasets::{sign_accuracy, two_spirals};
use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::Result;
use tessera_tensor::nn::{Activation, AdamParams, NnKernels};

struct Spirals;

impl common::Problem for Spirals {
    fn run<K: NnKernels>(&self, k: K, data: &TrainData) -> Result<()> {
        let mut net = Network::new(
            &[2, 48, 48, 1],
            Activation::SigmoidSymmetric,
            Init::Xavier,
            1,
        )?;
        net.set_hidden_activation(Activation::SigmoidSymmetric, 1.0)?;
        net.set_output_activation(Activation::SigmoidSymmetric, 1.0)?;
        let adam = AdamParams {
            learning_rate: 0.01,
            ..AdamParams::default()
        };
        let config = TrainConfig::new(Algorithm::Adam {
            params: adam,
            batch_size: data.len(),
        });
        let mut trainer = Trainer::new(Model::new(k, &net)?, config)?;
        let start = std::time::Instant::now();
        for round in 1..=50 {
            let stats = trainer.train_until(data, 100, 0.0, |_| true)?;
            let accuracy =
                sign_accuracy(&trainer.model_mut().forward(data.inputs())?, data.outputs());
            println!(
                "epoch {:5}  mse {:.5}  accuracy {:.1}%",
                round * 100,
                stats.mse.unwrap_or(f64::NAN),
                100.0 * accuracy
            );
            if accuracy == 1.0 {
                println!(
                    "100% of the {} training points after {} epochs, {:.2?}",
                    data.len(),
                    stats.epoch,
                    start.elapsed()
                );
                return Ok(());
            }
        }
        println!("did not reach 100% in 5000 epochs");
        Ok(())
    }
}

fn main() -> Result<()> {
    common::main_with(Spirals, two_spirals())
}
