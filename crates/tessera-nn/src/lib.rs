//! # tessera-nn
//!
//! Dense feed-forward networks (FANN's layered "standard" nets and modern MLPs),
//! run and trained on any backend that implements
//! [`NnKernels`](tessera_tensor::nn::NnKernels): `tessera_cpu::CpuNn` or
//! `tessera_gpu::GpuNn`, with the same results. Reads and writes FANN `.net` and
//! `.data` files.
//!
//! ```
//! use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
//! use tessera_tensor::nn::Activation;
//!
//! let xor = TrainData::new(2, 1, vec![-1., -1., -1., 1., 1., -1., 1., 1.], vec![-1., 1., 1., -1.])?;
//! let net = Network::new(&[2, 3, 1], Activation::SigmoidSymmetric, Init::FannUniform, 7)?;
//! let model = Model::new(tessera_cpu::CpuNn::new(), &net)?;
//! let mut trainer = Trainer::new(model, TrainConfig::new(Algorithm::fann_rprop()))?;
//! let stats = trainer.train_until(&xor, 1000, 0.001, |_| true)?;
//! assert!(stats.mse.is_some_and(|mse| mse <= 0.001) && stats.bit_fail == Some(0));
//! # Ok::<(), tessera_tensor::TesseraError>(())
//! ```

pub mod cascade;
mod data;
pub mod datasets;
pub mod fann;
pub mod limits;
mod model;
mod network;
mod train;

pub use data::TrainData;
pub use model::Model;
pub use network::{Init, Layer, Network};
pub use train::{Algorithm, EpochStats, Sarprop, TrainConfig, Trainer};

/// The README's example, compiled and run by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
