//! A shortcut net grown by Cascade2, then every weight trained together: six hidden
//! neurons installed on two-spirals (too few to solve it with frozen neurons), then
//! RPROP through every connection (libfann's `fann_train_on_data` on the grown net).
//! `cargo run --release -p tessera-nn --example shortcut_finetune [-- --gpu]`

mod common;

use tessera_nn::cascade::{CascadeConfig, CascadeNetwork, CascadeTrainer, ShortcutTrainer};
use tessera_nn::datasets::{sign_accuracy, two_spirals};
use tessera_nn::{Algorithm, TrainConfig, TrainData};
use tessera_tensor::Result;
use tessera_tensor::nn::{Activation, NnKernels};

struct Finetune;

impl common::Problem for Finetune {
    fn run<K: NnKernels>(&self, k: K, data: &TrainData) -> Result<()> {
        let net = CascadeNetwork::new(2, 1, Activation::SigmoidSymmetric, 0.5, 1)?;
        let config = CascadeConfig {
            seed: 1,
            ..CascadeConfig::default()
        };
        let mut cascade = CascadeTrainer::new(k, net, config)?;
        let grown = cascade.train(data, 6, 0.0, |_| true)?;
        let (net, kernels) = cascade.into_parts();
        println!(
            "cascade: {} hidden neurons, mse {:.5}, bit fail {}, {:.1}% of the points",
            net.hidden.len(),
            grown.mse,
            grown.bit_fail,
            100.0 * sign_accuracy(&net.run(data.inputs())?, data.outputs())
        );
        let mut trainer = ShortcutTrainer::new(
            kernels,
            &net,
            TrainConfig {
                derivative: tessera_tensor::nn::Derivative::Exact,
                ..TrainConfig::new(Algorithm::fann_rprop())
            },
        )?;
        let start = std::time::Instant::now();
        let last = trainer.train_until(data, 2000, 0.0, |s| {
            if s.epoch % 250 == 0 {
                println!(
                    "epoch {:4}  mse {:.5}  bit fail {:3}",
                    s.epoch,
                    s.mse.unwrap_or(f64::NAN),
                    s.bit_fail.unwrap_or(0)
                );
            }
            s.bit_fail != Some(0)
        })?;
        let tuned = trainer.network()?;
        println!(
            "every weight trained: {} epochs, mse {:.5}, bit fail {}, {:.1}% of the points, {:.2?}",
            last.epoch,
            last.mse.unwrap_or(f64::NAN),
            last.bit_fail.unwrap_or(0),
            100.0 * sign_accuracy(&tuned.run(data.inputs())?, data.outputs()),
            start.elapsed()
        );
        Ok(())
    }
}

fn main() -> Result<()> {
    common::main_with(Finetune, two_spirals())
}
