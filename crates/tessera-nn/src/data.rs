//! Training data: paired input and output rows.

use tessera_tensor::error::{Result, TesseraError, check_finite};

/// `samples` rows of inputs and desired outputs, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainData {
    /// Inputs per sample.
    pub n_inputs: usize,
    /// Outputs per sample.
    pub n_outputs: usize,
    /// `[samples, n_inputs]`.
    pub inputs: Vec<f32>,
    /// `[samples, n_outputs]`.
    pub outputs: Vec<f32>,
}

impl TrainData {
    /// Checks shapes and finiteness.
    pub fn new(
        n_inputs: usize,
        n_outputs: usize,
        inputs: Vec<f32>,
        outputs: Vec<f32>,
    ) -> Result<Self> {
        if n_inputs == 0 || n_outputs == 0 || !inputs.len().is_multiple_of(n_inputs) {
            return Err(TesseraError::ShapeMismatch {
                what: "training inputs",
                got: inputs.len(),
                expected: n_inputs,
            });
        }
        let samples = inputs.len() / n_inputs;
        if outputs.len() != samples * n_outputs {
            return Err(TesseraError::ShapeMismatch {
                what: "training outputs",
                got: outputs.len(),
                expected: samples * n_outputs,
            });
        }
        check_finite("training inputs", &inputs)?;
        check_finite("training outputs", &outputs)?;
        Ok(Self {
            n_inputs,
            n_outputs,
            inputs,
            outputs,
        })
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
            x.extend_from_slice(&self.inputs[i * self.n_inputs..][..self.n_inputs]);
            t.extend_from_slice(&self.outputs[i * self.n_outputs..][..self.n_outputs]);
        }
    }
}
