//! The value-of-information family: the row reductions that EVPI, EVPPI, EVSI, the
//! acceptability curve and the metamodels are built from. Semantics: `docs/voi.md`.
//!
//! A [`VoiBackend`] (the f64 reference, `CpuVoi`, `GpuVoi`) computes three reductions
//! over the N draws of a probabilistic sensitivity analysis:
//! - [`VoiBackend::decision_sums`]: per row, the incremental net benefit of every
//!   strategy against a reference strategy, its row maximum and the optimal strategy,
//!   summed over rows (from a net-benefit table, or from costs and effects at every
//!   willingness-to-pay value of a grid);
//! - [`VoiBackend::load_design`]: the cross-products `ZᵀZ` of a regression design
//!   `Z = [X | Y]`, kept resident for
//! - [`VoiBackend::fitted_decision_sums`]: the same decision sums over the fitted
//!   values `X·β` of a metamodel, for many coefficient sets at once, without
//!   materialising them.
//!
//! The estimators (`tessera::voi`) combine the sums in f64 on the host.

pub mod analytic;
mod contract;

pub use contract::{
    Decision, DecisionSums, DesignShape, FittedLayout, Gram, MAX_DESIGN_COLUMNS, MAX_STRATEGIES,
    Table, Values, VoiBackend, argmax, check_reference, no_design, validate_decision,
    validate_design, validate_fitted,
};
