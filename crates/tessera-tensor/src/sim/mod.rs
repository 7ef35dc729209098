//! The causal simulator family: batches of random linear-Gaussian structural causal
//! models (SCMs), one per environment, and sampling from them with interventions.
//! Semantics: `docs/sim.md`.
//!
//! An [`ScmBatch`] is generated on the host from a seed ([`ScmConfig`]) and is the
//! same whatever the backend; a [`SimBackend`] (the f64 reference, `CpuSim`, `GpuSim`)
//! draws samples from it with Philox4x32-10 streams keyed by (seed, environment,
//! draw, row), so every backend draws the same random integers.

pub mod closed_loop;
mod contract;
pub mod posterior;
mod scm;

pub use closed_loop::{
    ClosedLoopBackend, LoopConfig, PolicyKeys, Selection, ValuePolicy, mechanism_features,
};
pub use contract::{
    Intervention, InterventionKind, Interventions, SimBackend, check_samples, noise_key,
    validate_sample,
};
pub use posterior::{MAX_PARENTS, NO_PARENT, PosteriorBackend, PosteriorConfig, PosteriorSummary};
pub use scm::{Graph, MAX_SIM_VARS, ScmBatch, ScmConfig, TargetRule};
