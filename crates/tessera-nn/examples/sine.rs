//! Regression of sin(x) on [-pi, pi] with a 1-16-1 net (tanh hidden, linear output)
//! trained by RPROP, printing the MSE curve.
//! `cargo run -p tessera-nn --example sine [-- --gpu]`

mod common;

use tessera_nn::datasets::sine;
use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::Result;
use tessera_tensor::nn::{Activation, NnKernels};

struct Sine;

impl common::Problem for Sine {
    fn run<K: NnKernels>(&self, k: K, data: &TrainData) -> Result<()> {
        let mut net = Network::new(&[1, 16, 1], Activation::SigmoidSymmetric, Init::Xavier, 2)?;
        net.set_output_activation(Activation::Linear, 1.0)?;
        let mut trainer = Trainer::new(
            Model::new(k, &net)?,
            TrainConfig::new(Algorithm::fann_rprop()),
        )?;
        println!("epoch   mse (log scale bar)");
        let stats = trainer.train_until(data, 5000, 1e-4, |s| {
            if s.epoch.is_power_of_two() || s.epoch % 250 == 0 {
                let bar =
                    "#".repeat(((s.mse.unwrap_or(f64::NAN).log10() + 5.0).max(0.0) * 8.0) as usize);
                println!("{:5}   {:.2e} {bar}", s.epoch, s.mse.unwrap_or(f64::NAN));
            }
            true
        })?;
        println!(
            "final mse {:.2e} after {} epochs",
            stats.mse.unwrap_or(f64::NAN),
            stats.epoch
        );
        let out = trainer.model_mut().forward(&[0.0, 1.0, 2.0])?;
        println!(
            "sin(0) ~ {:+.4}, sin(1) ~ {:+.4}, sin(2) ~ {:+.4}",
            out[0], out[1], out[2]
        );
        Ok(())
    }
}

fn main() -> Result<()> {
    common::main_with(Sine, sine(64))
}
