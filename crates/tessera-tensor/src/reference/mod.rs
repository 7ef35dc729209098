//! f64 scalar references of every kernel and the parity suites built on them
//! (feature `reference`). Tests only: never a production path.

mod acquisition;
mod icl;
pub mod icl_parity;
mod nn;
pub mod nn_parity;
pub mod parity;
mod posterior;
pub mod posterior_parity;
mod search;
pub mod search_parity;
mod sim;
pub mod sim_parity;
mod voi;
pub mod voi_parity;

pub use acquisition::{ReferenceAcquisition, argmax_excluding};
pub use icl::ReferenceIcl;
pub use nn::{ReferenceNn, fann_tanh_error};
pub use posterior::ReferencePosterior;
pub use search::ReferenceIndex;
pub use sim::ReferenceSim;
pub use voi::ReferenceVoi;

/// Runs `check` on `cases` random values of `strategy` through proptest (which
/// shrinks a failure), without a persistence file.
pub(crate) fn run_cases<S: proptest::strategy::Strategy>(
    strategy: S,
    cases: u32,
    check: impl Fn(&S::Value) -> std::result::Result<(), String>,
) {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |value| {
            check(&value).map_err(TestCaseError::fail)
        })
        .unwrap();
}
