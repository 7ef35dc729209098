#![doc = include_str!("../README.md")]

pub mod acquisition;
pub mod error;
pub mod icl;
pub mod nn;
#[cfg(feature = "reference")]
pub mod reference;
pub mod rng;
pub mod search;
pub mod sim;
pub mod voi;

pub use error::{Result, TesseraError};
