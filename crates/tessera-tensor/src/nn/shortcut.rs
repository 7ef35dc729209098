//! Shortcut networks (FANN's `FANN_NETTYPE_SHORTCUT`, the shape Cascade2 grows): every
//! neuron reads the network's inputs, the bias and every hidden neuron before it.
//! Semantics: `docs/specs/neural.md`, "Shortcut networks".
//!
//! A batch of `rows` samples is held as one growing value matrix
//! `V: [rows, width]`, `width = inputs + 1 + hidden`: the inputs, a column of ones
//! (the bias), then each hidden neuron's output. Every neuron is a *unit* that reads a
//! prefix of `V`'s columns through its weights; units are numbered hidden first, then
//! outputs, and their weights are stored one after the other in one flat tensor
//! (unit `u`'s `fan_in` weights start where unit `u - 1`'s end). With `s` its
//! steepness and `f` its activation:
//!
//! - hidden unit `k`: `sum = clamp(V[p, ..fan_in] · w_k, ±150 / |s|)` (FANN's clamp,
//!   as [`clamp_candidate_sum`]), `V[p, inputs + 1 + k] = f(s sum)`; its `fan_in` is
//!   at least `inputs + 1` and at most `inputs + 1 + k` (it reads only neurons before
//!   it);
//! - output unit `j`: `sum = V[p, ..] · w` over the whole width (no clamp),
//!   `y[p, j] = f(s sum)`.
//!
//! The backward pass takes `dy = dL/dy` (from
//! [`NnKernels::output_gradient`](super::NnKernels::output_gradient)) and computes,
//! from the last unit to the first, `delta_u = dL/dsum_u`: `dy_j d_j` for an output,
//! `d_k Σ_{u > k} delta_u w_u[inputs + 1 + k]` for a hidden unit (over the units that
//! read it), with `d` the derivative of `f(s sum)` by `sum` as
//! [`Derivative`] selects ([`Derivative::at`]: libfann's forms from the unit's output
//! and its stored sum `s sum` where the convention uses them, else exact
//! `s f'(s sum)` at the clamped sum). The weight gradient is
//! `grad[u, i] = Σ_p delta_u[p] V[p, i]`, in the sign convention of the optimizer
//! kernels.

use super::cascade::clamp_candidate_sum;
use super::contract::check_all;
use super::{Activation, Derivative};
use crate::error::{Result, TesseraError};

/// One neuron of a shortcut network: activation, steepness and how many of the value
/// matrix's leading columns it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShortcutUnit {
    /// Activation function (element-wise).
    pub activation: Activation,
    /// Steepness `s` (finite).
    pub steepness: f32,
    /// Columns of the value matrix read: the inputs, the bias and the hidden neurons
    /// before this one's layer.
    pub fan_in: usize,
}

/// The shape of one shortcut pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortcutPass {
    /// Samples in the batch.
    pub rows: usize,
    /// The network's inputs.
    pub inputs: usize,
    /// Hidden neurons.
    pub hidden: usize,
    /// Output neurons.
    pub outputs: usize,
}

impl ShortcutPass {
    /// Columns of the value matrix: `inputs + 1 + hidden`.
    pub fn width(&self) -> usize {
        self.inputs + 1 + self.hidden
    }

    /// Units: `hidden + outputs`.
    pub fn units(&self) -> usize {
        self.hidden + self.outputs
    }

    /// Checks the units against the shape (at least one input and one output, one
    /// unit per neuron, element-wise activations
    /// with finite steepnesses, each hidden unit reading the inputs, the bias and
    /// only neurons before it, each output reading the whole width; with `train`,
    /// activations with a gradient) and returns where each unit's weights start,
    /// with the total weight count last.
    pub fn offsets(&self, units: &[ShortcutUnit], train: bool) -> Result<Vec<usize>> {
        if units.len() != self.units() {
            return Err(TesseraError::ShapeMismatch {
                what: "shortcut units",
                got: units.len(),
                expected: self.units(),
            });
        }
        if self.inputs == 0 || self.outputs == 0 {
            return Err(TesseraError::InvalidArgument {
                what: "shortcut inputs and outputs",
                value: self.inputs.min(self.outputs) as f64,
                expected: "at least one input and one output",
            });
        }
        let mut offsets = Vec::with_capacity(units.len() + 1);
        let mut total = 0usize;
        for (u, unit) in units.iter().enumerate() {
            if unit.activation.is_rowwise() || (train && !unit.activation.has_gradient()) {
                return Err(TesseraError::InvalidArgument {
                    what: "shortcut unit activation",
                    value: unit.activation.code() as f64,
                    expected: if train {
                        "a differentiable element-wise activation (no threshold, no softmax)"
                    } else {
                        "an element-wise activation (no softmax)"
                    },
                });
            }
            if !unit.steepness.is_finite() {
                return Err(TesseraError::InvalidArgument {
                    what: "shortcut unit steepness",
                    value: unit.steepness as f64,
                    expected: "a finite number",
                });
            }
            let (lo, hi) = if u < self.hidden {
                (self.inputs + 1, self.inputs + 1 + u)
            } else {
                (self.width(), self.width())
            };
            if !(lo..=hi).contains(&unit.fan_in) {
                return Err(TesseraError::IndexOutOfRange {
                    what: "shortcut unit fan-in (columns past the neurons before it)",
                    index: unit.fan_in,
                    bound: hi + 1,
                });
            }
            offsets.push(total);
            total = total
                .checked_add(unit.fan_in)
                .ok_or(TesseraError::InvalidArgument {
                    what: "shortcut weights",
                    value: f64::INFINITY,
                    expected: "a count that fits in memory",
                })?;
        }
        offsets.push(total);
        Ok(offsets)
    }

    /// Checks a forward pass: the units ([`Self::offsets`]), then the lengths of
    /// `weights`, `x` (`[rows, inputs]`), `values` (`[rows, width]`), `sums`
    /// (`[rows, units]`) and `y` (`[rows, outputs]`), in that order. Returns the
    /// units' offsets, as [`Self::offsets`].
    pub fn check_forward(&self, units: &[ShortcutUnit], lens: [usize; 5]) -> Result<Vec<usize>> {
        let offsets = self.offsets(units, false)?;
        let weights = *offsets.last().expect("a total");
        let [x, values, sums, y] =
            self.row_lens([self.inputs, self.width(), self.units(), self.outputs])?;
        let expected = [weights, x, values, sums, y];
        let names = [
            "shortcut weights",
            "shortcut inputs",
            "shortcut values",
            "shortcut sums",
            "shortcut outputs",
        ];
        check_all(names, lens, expected)?;
        Ok(offsets)
    }

    /// Checks a backward pass: the units ([`Self::offsets`] for training), then the
    /// lengths of `weights`, `values`, `sums`, `dy` (`[rows, outputs]`), `deltas`
    /// (`[rows, units]`) and `grad` (as `weights`), in that order. Returns the units'
    /// offsets.
    pub fn check_backward(&self, units: &[ShortcutUnit], lens: [usize; 6]) -> Result<Vec<usize>> {
        let offsets = self.offsets(units, true)?;
        let weights = *offsets.last().expect("a total");
        let [values, sums, dy] = self.row_lens([self.width(), self.units(), self.outputs])?;
        let expected = [weights, values, sums, dy, sums, weights];
        let names = [
            "shortcut weights",
            "shortcut values",
            "shortcut sums",
            "shortcut output gradient",
            "shortcut deltas",
            "shortcut weight gradient",
        ];
        check_all(names, lens, expected)?;
        Ok(offsets)
    }
}

impl ShortcutPass {
    /// `rows` times each width, overflow-checked.
    fn row_lens<const N: usize>(&self, widths: [usize; N]) -> Result<[usize; N]> {
        let mut out = [0; N];
        for (o, w) in out.iter_mut().zip(widths) {
            *o = self
                .rows
                .checked_mul(w)
                .ok_or(TesseraError::InvalidArgument {
                    what: "shortcut rows",
                    value: self.rows as f64,
                    expected: "rows x columns that fit in memory",
                })?;
        }
        Ok(out)
    }
}

/// A unit's sum as the forward pass keeps it: clamped for hidden units.
pub fn shortcut_sum(hidden: bool, sum: f64, steepness: f64) -> f64 {
    if hidden {
        clamp_candidate_sum(sum, steepness)
    } else {
        sum
    }
}

/// The derivative of a unit's output `y = f(s sum)` by `sum`, as `derivative` selects.
pub fn shortcut_derivative(
    activation: Activation,
    steepness: f64,
    sum: f64,
    y: f64,
    derivative: Derivative,
) -> f64 {
    let exact = || steepness * activation.derivative(steepness * sum);
    derivative.at(activation, steepness, y, steepness * sum, exact)
}
