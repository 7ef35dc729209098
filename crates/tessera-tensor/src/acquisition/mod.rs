//! Causal acquisition: configuration, host state, inputs and outputs, and the backend
//! contract. Semantics: `docs/specs/acquisition.md` and `docs/acquisition.md`.

mod config;
mod contract;
mod state;
mod types;

pub use config::{
    AcquisitionConfig, DEFAULT_EXPLORATION_WEIGHT, DEFAULT_MEMORY_LIMIT, HISTORY_CHANNELS,
    MAX_CAPACITY, MAX_FEATURE_DIM, MAX_MAGNITUDE, MAX_VARS, NO_SELECTION, Objective,
    POLICY_EXTRA_COLUMNS,
};
pub use contract::AcquisitionBackend;
pub use state::AcquisitionState;
pub use types::{
    Coverage, EnvScalars, Progress, Samples, StepInput, StepSummary, validate_exploration_weight,
    validate_history_len, validate_learning_rate, validate_observed, validate_posterior,
};
