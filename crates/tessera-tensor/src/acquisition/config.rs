//! Configuration of a batch of acquisition environments.

use crate::error::{Result, TesseraError};

/// Largest number of variables an environment may have.
pub const MAX_VARS: usize = 4096;
/// Largest ring-buffer capacity.
pub const MAX_CAPACITY: usize = 1_000_000;
/// Largest number of mechanism-feature columns.
pub const MAX_FEATURE_DIM: usize = 256;
/// Default bound on the bytes of a batch's state ([`AcquisitionConfig::state_bytes`]) and
/// of one history tensor: 16 GiB. The state is held on the host (and, on a GPU, in
/// device buffers too); raise or lower it with [`AcquisitionConfig::with_memory_limit`].
pub const DEFAULT_MEMORY_LIMIT: u64 = 16 << 30;
/// Largest magnitude accepted for sample values, targets, observed mechanism
/// features, entropies and the exploration weight. Kernels add, subtract and square
/// such values and sum them over the ring: 1e15 keeps every intermediate far below
/// f32's 3.4e38, so no output becomes infinite or NaN.
pub const MAX_MAGNITUDE: f32 = 1e15;
/// Number of policy-feature columns after the mechanism features.
pub const POLICY_EXTRA_COLUMNS: usize = 12;
/// Channels of the history tensor.
pub const HISTORY_CHANNELS: usize = 5;
/// Value of `selected` when no variable can be chosen: an environment whose only
/// variable is its target.
pub const NO_SELECTION: u32 = u32::MAX;
/// Default exploration weight of [`acquisition_scores`](crate::acquisition::AcquisitionBackend::acquisition_scores).
pub const DEFAULT_EXPLORATION_WEIGHT: f32 = 0.1;

/// Whether the target variable is to be maximised or minimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Objective {
    /// Larger target values are better (the default).
    #[default]
    Maximize,
    /// Smaller target values are better.
    Minimize,
}

impl Objective {
    /// The value `best_value` starts from: -inf for Maximize, +inf for Minimize.
    pub fn worst(self) -> f32 {
        match self {
            Objective::Maximize => f32::NEG_INFINITY,
            Objective::Minimize => f32::INFINITY,
        }
    }

    /// The code the GPU kernels use (0 = Maximize, 1 = Minimize).
    pub fn code(self) -> u32 {
        match self {
            Objective::Maximize => 0,
            Objective::Minimize => 1,
        }
    }
}

/// Shape and targets of a batch of `B` environments stepped together.
///
/// Every environment has the same `n_vars`, `capacity`, `feature_dim` and objective;
/// each has its own target variable. `B = target_indices.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquisitionConfig {
    /// Number of variables of each environment (1..=4096).
    pub n_vars: usize,
    /// Ring-buffer capacity in samples (1..=1_000_000).
    pub capacity: usize,
    /// Columns of the mechanism features (>= 2, default 3).
    pub feature_dim: usize,
    /// Maximise or minimise the target.
    pub objective: Objective,
    /// The target variable of each environment; its length is the batch size.
    pub target_indices: Vec<u32>,
    /// Largest [`state_bytes`](Self::state_bytes) (and history tensor) this batch may
    /// allocate ([`DEFAULT_MEMORY_LIMIT`] unless set).
    pub memory_limit: u64,
}

impl AcquisitionConfig {
    /// One environment (B = 1) with `feature_dim` 3, maximising.
    pub fn single(n_vars: usize, capacity: usize, target_idx: u32) -> Self {
        Self::batched(n_vars, capacity, vec![target_idx])
    }

    /// A batch of environments, one per entry of `target_indices`.
    pub fn batched(n_vars: usize, capacity: usize, target_indices: Vec<u32>) -> Self {
        Self {
            n_vars,
            capacity,
            feature_dim: 3,
            objective: Objective::Maximize,
            target_indices,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }

    /// Sets the largest number of bytes the batch's state may take.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Bytes of the state of the whole batch (every array of
    /// [`AcquisitionState`](super::AcquisitionState)), or `None` if it does not fit a
    /// `u64`. Computed without allocating anything.
    pub fn state_bytes(&self) -> Option<u64> {
        let (n, cap, fd) = (
            self.n_vars as u64,
            self.capacity as u64,
            self.feature_dim as u64,
        );
        let words = [
            cap.checked_mul(n)?.checked_mul(2)?, // values, interventions
            cap.checked_mul(2)?,                 // targets, prev_best_window
            n.checked_mul(fd)?,                  // mechanism features
            n.checked_mul(4)?,                   // marginal, confidence, counts, scores
            n.checked_mul(fd.checked_add(POLICY_EXTRA_COLUMNS as u64)?)?,
        ]
        .into_iter()
        .try_fold(0u64, u64::checked_add)?;
        let per_env = words.checked_mul(4)?.checked_add(
            (std::mem::size_of::<super::types::EnvScalars>()
                + std::mem::size_of::<super::types::StepSummary>()) as u64,
        )?;
        per_env.checked_mul(self.batch() as u64)
    }

    /// Bytes of the `[B, t, n_vars, 5]` history tensor for window `t`, checked against
    /// the memory limit.
    pub fn check_history_bytes(&self, t: usize) -> Result<u64> {
        let bytes = (self.batch() as u64)
            .checked_mul(t as u64)
            .and_then(|v| v.checked_mul(self.n_vars as u64))
            .and_then(|v| v.checked_mul(HISTORY_CHANNELS as u64 * 4));
        match bytes {
            Some(b) if b <= self.memory_limit => Ok(b),
            _ => Err(TesseraError::DeviceLimit {
                what: "bytes of the history tensor (B x t x n_vars x 5 x 4)",
                needed: bytes.unwrap_or(u64::MAX),
                limit: self.memory_limit,
            }),
        }
    }

    /// Sets the number of mechanism-feature columns.
    pub fn with_feature_dim(mut self, feature_dim: usize) -> Self {
        self.feature_dim = feature_dim;
        self
    }

    /// Sets the objective.
    pub fn with_objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// Number of environments in the batch.
    pub fn batch(&self) -> usize {
        self.target_indices.len()
    }

    /// Columns of one policy-feature row: `feature_dim + 12`.
    pub fn policy_width(&self) -> usize {
        self.feature_dim + POLICY_EXTRA_COLUMNS
    }

    /// Checks every field; backends call this before allocating anything.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, value: String, expected: &str| {
            Err(TesseraError::InvalidConfig {
                field,
                value,
                expected: expected.to_owned(),
            })
        };
        if !(1..=MAX_VARS).contains(&self.n_vars) {
            return invalid("n_vars", self.n_vars.to_string(), "1..=4096");
        }
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return invalid("capacity", self.capacity.to_string(), "1..=1000000");
        }
        if !(2..=MAX_FEATURE_DIM).contains(&self.feature_dim) {
            return invalid("feature_dim", self.feature_dim.to_string(), "2..=256");
        }
        if self.target_indices.is_empty() {
            return invalid("target_indices", "[]".into(), "at least one environment");
        }
        if u32::try_from(self.batch()).is_err() {
            return invalid("target_indices.len()", self.batch().to_string(), "< 2^32");
        }
        if let Some(&t) = self
            .target_indices
            .iter()
            .find(|&&t| t as usize >= self.n_vars)
        {
            return Err(TesseraError::IndexOutOfRange {
                what: "target_indices",
                index: t as usize,
                bound: self.n_vars,
            });
        }
        match self.state_bytes() {
            Some(bytes) if bytes <= self.memory_limit => Ok(()),
            bytes => Err(TesseraError::DeviceLimit {
                what: "bytes of the batch's state (raise AcquisitionConfig::memory_limit to allow more)",
                needed: bytes.unwrap_or(u64::MAX),
                limit: self.memory_limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_fields() {
        assert!(AcquisitionConfig::single(3, 10, 0).validate().is_ok());
        assert!(matches!(
            AcquisitionConfig::single(0, 10, 0).validate(),
            Err(TesseraError::InvalidConfig {
                field: "n_vars",
                ..
            })
        ));
        assert!(matches!(
            AcquisitionConfig::single(3, 0, 0).validate(),
            Err(TesseraError::InvalidConfig {
                field: "capacity",
                ..
            })
        ));
        assert!(matches!(
            AcquisitionConfig::single(3, 10, 0)
                .with_feature_dim(1)
                .validate(),
            Err(TesseraError::InvalidConfig {
                field: "feature_dim",
                ..
            })
        ));
        assert!(matches!(
            AcquisitionConfig::single(3, 10, 3).validate(),
            Err(TesseraError::IndexOutOfRange {
                index: 3,
                bound: 3,
                ..
            })
        ));
        assert!(
            AcquisitionConfig::batched(3, 10, vec![])
                .validate()
                .is_err()
        );
        assert!(AcquisitionConfig::single(4097, 10, 0).validate().is_err());
        assert!(
            AcquisitionConfig::single(3, 10, 0)
                .with_feature_dim(257)
                .validate()
                .is_err()
        );
        assert!(
            AcquisitionConfig::single(3, 1_000_001, 0)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn states_beyond_the_memory_limit_are_rejected_before_allocating() {
        // The probe: 10^6 x 4096 environments would need ~80 GB.
        let huge = AcquisitionConfig::batched(5, 1_000_000, vec![0; 4096]);
        assert!(huge.state_bytes().unwrap() > 80_000_000_000);
        assert!(matches!(
            huge.validate(),
            Err(TesseraError::DeviceLimit {
                limit: DEFAULT_MEMORY_LIMIT,
                ..
            })
        ));
        assert!(crate::acquisition::AcquisitionState::new(&huge).is_err());
        // The largest shape overflows nothing: its byte count is still computed.
        let widest = AcquisitionConfig::batched(MAX_VARS, MAX_CAPACITY, vec![0; 1 << 20])
            .with_feature_dim(MAX_FEATURE_DIM);
        assert!(widest.state_bytes().is_some() && widest.validate().is_err());
        // A user-given limit applies both ways.
        let small = AcquisitionConfig::single(3, 1000, 0);
        let bytes = small.state_bytes().unwrap();
        assert!(small.clone().with_memory_limit(bytes).validate().is_ok());
        assert!(
            small
                .clone()
                .with_memory_limit(bytes - 1)
                .validate()
                .is_err()
        );
        assert!(huge.clone().with_memory_limit(u64::MAX).validate().is_ok());
        assert!(small.check_history_bytes(10).is_ok());
        assert!(
            small
                .with_memory_limit(bytes)
                .check_history_bytes(1 << 40)
                .is_err()
        );
    }
}
