//! f64 scalar references of every kernel and the parity suites built on them
//! (feature `reference`). Tests only: never a production path.

mod acquisition;
mod nn;
pub mod nn_parity;
pub mod parity;
mod posterior;
pub mod posterior_parity;
mod sim;
pub mod sim_parity;
mod voi;
pub mod voi_parity;

pub use acquisition::{ReferenceAcquisition, argmax_excluding};
pub use nn::{ReferenceNn, fann_tanh_error};
pub use posterior::ReferencePosterior;
pub use sim::ReferenceSim;
pub use voi::ReferenceVoi;
