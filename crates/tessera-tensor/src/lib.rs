//! # tessera-tensor
//!
//! The bottom layer of tessera: shapes, configurations, host-side state, the error
//! type and the kernel contracts that every backend implements. It has no GPU
//! dependency. With the `reference` feature it also carries the f64 scalar reference of
//! every kernel and the parity suite that runs the same scenarios against any backend.

pub mod acquisition;
pub mod error;
pub mod nn;
#[cfg(feature = "reference")]
pub mod reference;
pub mod rng;

pub use error::{Result, TesseraError};
