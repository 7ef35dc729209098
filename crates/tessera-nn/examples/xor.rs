//! XOR with FANN's defaults: a 2-3-1 sigmoid-symmetric net trained by RPROP.
//! `cargo run -p tessera-nn --example xor [-- --gpu]`

mod common;

use tessera_nn::datasets::xor;
use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::Result;
use tessera_tensor::nn::{Activation, NnKernels};

struct Xor;

impl common::Problem for Xor {
    fn run<K: NnKernels>(&self, k: K, data: &TrainData) -> Result<()> {
        let net = Network::new(
            &[2, 3, 1],
            Activation::SigmoidSymmetric,
            Init::FannUniform,
            7,
        )?;
        let mut trainer = Trainer::new(
            Model::new(k, &net)?,
            TrainConfig::new(Algorithm::fann_rprop()),
        )?;
        let stats = trainer.train_until(data, 1000, 0.001, |s| {
            if s.epoch % 10 == 0 {
                println!(
                    "epoch {:4}  mse {:.6}  bit fail {}",
                    s.epoch,
                    s.mse.unwrap_or(f64::NAN),
                    s.bit_fail.unwrap_or(0)
                );
            }
            true
        })?;
        println!(
            "stopped at epoch {} with mse {:.6}",
            stats.epoch,
            stats.mse.unwrap_or(f64::NAN)
        );
        let out = trainer.model_mut().forward(data.inputs())?;
        for (x, y) in data.inputs().chunks(2).zip(out) {
            println!("xor({:+}, {:+}) = {y:+.4}", x[0], x[1]);
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    common::main_with(Xor, xor())
}
