//! Configuration of a batch of acquisition environments.

use crate::error::{Result, TesseraError};

/// Largest number of variables an environment may have.
pub const MAX_VARS: usize = 4096;
/// Largest ring-buffer capacity.
pub const MAX_CAPACITY: usize = 1_000_000;
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
        if self.feature_dim < 2 {
            return invalid("feature_dim", self.feature_dim.to_string(), ">= 2");
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
        Ok(())
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
            AcquisitionConfig::single(3, 1_000_001, 0)
                .validate()
                .is_err()
        );
    }
}
