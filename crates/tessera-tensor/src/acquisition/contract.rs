//! The kernel contract every acquisition backend implements.

use super::config::AcquisitionConfig;
use super::state::AcquisitionState;
use super::types::{Samples, StepInput, StepSummary};
use crate::error::Result;

/// The acquisition kernels of `docs/specs/acquisition.md`, batched over `B`
/// environments. Implemented by the f64 reference, the CPU backend and the GPU backend;
/// the parity suite is written once against this trait.
///
/// Operations write their results into the state (`confidence`, the step summaries,
/// the policy features, the scores); the `read_*` methods copy them out, which on the
/// GPU is the only time data leaves the device. Every method validates its inputs first
/// and leaves the state unchanged when it returns an error.
pub trait AcquisitionBackend {
    /// The configuration the backend's state was built for.
    fn config(&self) -> &AcquisitionConfig;

    /// Appends one sample to every environment's ring buffer.
    fn add_samples(&mut self, samples: &Samples<'_>) -> Result<()>;

    /// Replaces the posterior summary: `[B, n_vars]` marginal parent probabilities and
    /// `[B]` entropies in bits.
    fn set_posterior(&mut self, marginal_probs: &[f32], uncertainty_bits: &[f32]) -> Result<()>;

    /// `F = (1 - lr) F + lr observed`, then clips the uncertainty and confidence columns.
    fn update_mechanism_features(&mut self, observed: &[f32], learning_rate: f32) -> Result<()>;

    /// Computes and stores the mechanism confidence of every variable.
    fn mechanism_confidence(&mut self) -> Result<()>;

    /// Computes the optimisation progress into the step summaries.
    fn optimization_progress(&mut self) -> Result<()>;

    /// Computes the exploration coverage into the step summaries.
    fn exploration_coverage(&mut self) -> Result<()>;

    /// Computes the `[B, n_vars, feature_dim + 12]` policy features.
    fn policy_features(&mut self) -> Result<()>;

    /// Scores every variable from the stored policy features.
    fn acquisition_scores(&mut self, exploration_weight: f32) -> Result<()>;

    /// Picks the best-scoring non-target variable of each environment.
    fn select_intervention(&mut self) -> Result<()>;

    /// The fused pipeline step: every operation above, in the spec's order.
    fn step(&mut self, input: &StepInput<'_>) -> Result<()>;

    /// The `[B, t, n_vars, 5]` policy-network input built from the newest samples.
    fn history_tensor(&mut self, t: usize) -> Result<Vec<f32>>;

    /// `[B, n_vars]` mechanism confidence as last computed.
    fn read_confidence(&mut self) -> Result<Vec<f32>>;

    /// `[B]` progress, coverage and selection as last computed.
    fn read_summaries(&mut self) -> Result<Vec<StepSummary>>;

    /// `[B, n_vars, feature_dim + 12]` policy features as last computed.
    fn read_policy_features(&mut self) -> Result<Vec<f32>>;

    /// `[B, n_vars]` acquisition scores as last computed.
    fn read_scores(&mut self) -> Result<Vec<f32>>;

    /// A full copy of the state (the whole ring included): for tests and checkpoints.
    fn read_state(&mut self) -> Result<AcquisitionState>;
}
