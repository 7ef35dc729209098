//! f64 scalar references of every kernel and the parity suites built on them
//! (feature `reference`). Tests only: never a production path.

mod acquisition;
pub mod parity;

pub use acquisition::{ReferenceAcquisition, argmax_excluding};
