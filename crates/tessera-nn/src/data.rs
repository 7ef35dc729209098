//! Training data: paired input and output rows.

use std::sync::atomic::{AtomicU64, Ordering};

use tessera_tensor::error::{Result, TesseraError, check_finite};

use crate::limits::{MAX_DATA_VALUES, MAX_LAYER_WIDTH};

/// The rows of `inputs` (`[rows, width]`, a net's inputs to run): at least one row,
/// whole rows, finite values, or a typed error naming `what`.
pub(crate) fn check_input_rows(what: &'static str, inputs: &[f32], width: usize) -> Result<usize> {
    if inputs.is_empty() || !inputs.len().is_multiple_of(width) {
        return Err(TesseraError::ShapeMismatch {
            what,
            got: inputs.len(),
            expected: width,
        });
    }
    check_finite("inputs", inputs)?;
    Ok(inputs.len() / width)
}

/// `samples` rows of inputs and desired outputs, row-major. Built only through
/// [`TrainData::new`], so every value is finite and the shapes agree.
#[derive(Debug, Clone)]
pub struct TrainData {
    n_inputs: usize,
    n_outputs: usize,
    inputs: Vec<f32>,
    outputs: Vec<f32>,
    /// Names these samples, so a trainer can keep them resident on its backend
    /// across epochs (the data is immutable; clones hold equal samples).
    id: u64,
}

impl PartialEq for TrainData {
    fn eq(&self, other: &Self) -> bool {
        (self.n_inputs, self.n_outputs) == (other.n_inputs, other.n_outputs)
            && self.inputs == other.inputs
            && self.outputs == other.outputs
    }
}

impl TrainData {
    /// Checks the widths (1..=[`MAX_LAYER_WIDTH`]), that `inputs` and `outputs` hold
    /// the same number of whole rows (at most [`MAX_DATA_VALUES`] values together),
    /// and that every value is finite.
    pub fn new(
        n_inputs: usize,
        n_outputs: usize,
        inputs: Vec<f32>,
        outputs: Vec<f32>,
    ) -> Result<Self> {
        for (field, width) in [("n_inputs", n_inputs), ("n_outputs", n_outputs)] {
            if !(1..=MAX_LAYER_WIDTH).contains(&width) {
                return Err(TesseraError::InvalidConfig {
                    field,
                    value: width.to_string(),
                    expected: format!("1..={MAX_LAYER_WIDTH} values per sample"),
                });
            }
        }
        if !inputs.len().is_multiple_of(n_inputs) {
            return Err(TesseraError::InvalidConfig {
                field: "training inputs",
                value: format!("{} values", inputs.len()),
                expected: format!("whole rows of n_inputs = {n_inputs} values"),
            });
        }
        let samples = inputs.len() / n_inputs;
        if samples.checked_mul(n_outputs) != Some(outputs.len()) {
            return Err(TesseraError::InvalidConfig {
                field: "training outputs",
                value: format!("{} values", outputs.len()),
                expected: format!(
                    "{samples} rows of n_outputs = {n_outputs} values, one per input row"
                ),
            });
        }
        if inputs.len() + outputs.len() > MAX_DATA_VALUES {
            return Err(TesseraError::InvalidConfig {
                field: "training data",
                value: format!("{} values", inputs.len() + outputs.len()),
                expected: format!("at most {MAX_DATA_VALUES} values"),
            });
        }
        check_finite("training inputs", &inputs)?;
        check_finite("training outputs", &outputs)?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            n_inputs,
            n_outputs,
            inputs,
            outputs,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The identity of these samples (equal for clones).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Inputs per sample.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Outputs per sample.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Every sample's inputs, `[samples, n_inputs]` row-major.
    pub fn inputs(&self) -> &[f32] {
        &self.inputs
    }

    /// Every sample's desired outputs, `[samples, n_outputs]` row-major.
    pub fn outputs(&self) -> &[f32] {
        &self.outputs
    }

    /// The inputs of sample `i`. Panics if `i >= len()`, like slice indexing.
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.n_inputs..][..self.n_inputs]
    }

    /// The desired outputs of sample `i`. Panics if `i >= len()`.
    pub fn output(&self, i: usize) -> &[f32] {
        &self.outputs[i * self.n_outputs..][..self.n_outputs]
    }

    /// The inputs and outputs, consuming the data.
    pub fn into_parts(self) -> (Vec<f32>, Vec<f32>) {
        (self.inputs, self.outputs)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.len() / self.n_inputs
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Smallest and largest input value (for Widrow-Nguyen initialisation).
    pub fn input_range(&self) -> (f32, f32) {
        self.inputs
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// Rows `idx` gathered into contiguous input and output buffers.
    pub(crate) fn gather(&self, idx: &[usize], x: &mut Vec<f32>, t: &mut Vec<f32>) {
        x.clear();
        t.clear();
        for &i in idx {
            x.extend_from_slice(self.input(i));
            t.extend_from_slice(self.output(i));
        }
    }
}
