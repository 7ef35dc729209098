//! The candidate pool of Cascade2 (FANN's cascade-correlation variant): every
//! candidate neuron of one cascade step scored and differentiated in one batched
//! kernel. Semantics: `docs/nn.md`, "Cascade2".
//!
//! A candidate `c` reads the frozen network's values `V: [rows, inputs]` (the
//! network's inputs, a column of ones for the bias, then every installed hidden
//! neuron, in FANN's neuron order) through its input weights `W_in[c, ·]`, and
//! predicts the residual errors `E: [rows, outputs]` through its output weights
//! `W_out[c, ·]`. With `s` its steepness and `f` its activation:
//!
//! - `sum[p, c] = clamp(V[p, ·] · W_in[c, ·], ±150 / s)`, `a[p, c] = f(s sum)`;
//! - `diff[p, c, j] = a[p, c] W_out[c, j] - E[p, j]`;
//! - `score[c] = sse - Σ_p Σ_j diff²` (FANN's residual-error reduction, not
//!   Fahlman's correlation; `sse` is the output phase's sum of squared errors);
//! - `grad_out[c, j] = Σ_p 2 diff[p, c, j] a[p, c]`;
//! - `grad_in[c, i] = Σ_p f'(p, c) (Σ_j diff[p, c, j] W_out[c, j]) V[p, i]`, with
//!   FANN's missing factor 2, and `f'` the derivative with respect to `sum` that
//!   [`candidate_derivative`] defines.
//!
//! The gradients are those of `Σ diff²` (descent lowers it, raising the score), in
//! the sign convention of the optimizer kernels.

use super::contract::check_all;
use super::{Activation, Derivative};
use crate::error::{Result, TesseraError};

/// One candidate neuron's activation and steepness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateUnit {
    /// Activation function (one with a gradient, element-wise).
    pub activation: Activation,
    /// Steepness `s` (finite, > 0).
    pub steepness: f32,
}

/// The shape and constants of one candidate epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateEpoch {
    /// Training samples.
    pub rows: usize,
    /// Inputs of every candidate: the network's inputs, the bias and the hidden
    /// neurons installed so far.
    pub inputs: usize,
    /// The network's outputs.
    pub outputs: usize,
    /// Candidates in the pool.
    pub candidates: usize,
    /// The sum of squared errors the scores start from (finite).
    pub sse: f32,
    /// Which activation derivative the input gradients use.
    pub derivative: Derivative,
}

/// The largest `|sum|` FANN lets a candidate reach, times its steepness.
pub const CANDIDATE_SUM_LIMIT: f32 = 150.0;

impl CandidateEpoch {
    /// Checks the pool (one unit per candidate, differentiable element-wise
    /// activations, finite positive steepnesses), the constants, and the lengths of
    /// `values`, `residuals`, `weights_in`, `weights_out`, `grad_in`, `grad_out` and
    /// `scores`, in that order. Every backend calls it before touching anything.
    pub fn check(&self, units: &[CandidateUnit], lens: [usize; 7]) -> Result<()> {
        if units.len() != self.candidates {
            return Err(TesseraError::ShapeMismatch {
                what: "candidate units",
                got: units.len(),
                expected: self.candidates,
            });
        }
        if let Some(u) = units
            .iter()
            .find(|u| !u.activation.has_gradient() || u.activation.is_rowwise())
        {
            return Err(TesseraError::InvalidArgument {
                what: "candidate activation",
                value: u.activation.code() as f64,
                expected: "a differentiable element-wise activation (no threshold, no softmax)",
            });
        }
        if let Some(u) = units
            .iter()
            .find(|u| !(u.steepness.is_finite() && u.steepness > 0.0))
        {
            return Err(TesseraError::InvalidArgument {
                what: "candidate steepness",
                value: u.steepness as f64,
                expected: "a finite number > 0",
            });
        }
        if !self.sse.is_finite() {
            return Err(TesseraError::InvalidArgument {
                what: "candidate epoch sse",
                value: self.sse as f64,
                expected: "a finite sum of squared errors",
            });
        }
        let names = [
            "candidate values",
            "candidate residuals",
            "candidate input weights",
            "candidate output weights",
            "candidate input gradients",
            "candidate output gradients",
            "candidate scores",
        ];
        let (r, i, o, c) = (self.rows, self.inputs, self.outputs, self.candidates);
        let expected = [r * i, r * o, c * i, c * o, c * i, c * o, c];
        check_all(names, lens, expected)
    }
}

/// The clamped sum of a candidate or hidden neuron: `sum` limited to
/// `±150 / |steepness|`, as FANN limits it (so `s sum` stays within ±150; no limit
/// for a zero steepness).
pub fn clamp_candidate_sum(sum: f64, steepness: f64) -> f64 {
    let limit = CANDIDATE_SUM_LIMIT as f64 / steepness.abs();
    if limit.is_nan() {
        return sum;
    }
    sum.clamp(-limit, limit)
}

/// The derivative of a candidate's output `y = f(s sum)` with respect to `sum`.
///
/// `Derivative::Exact` gives `s f'(s sum)`; `Derivative::Fann` the sigmoids' and
/// linear pieces' clipped forms of [`fann_derivative`](super::fann_derivative) and
/// the exact derivative elsewhere. `Derivative::FannCompat` gives what libfann's
/// `fann_activation_derived` returns for a candidate, whose stored sum lacks the
/// steepness: as `Fann`, plus `s / (2 (1 + |sum|)²)` and `s / (1 + |sum|)²` for the
/// Elliot pair (FANN's `|sum|` where the exact derivative has `|s sum|`); FANN's
/// Gaussian and trigonometric forms are exact on a candidate's sum.
pub fn candidate_derivative(
    activation: Activation,
    steepness: f64,
    sum: f64,
    y: f64,
    derivative: Derivative,
) -> f64 {
    let s = steepness;
    let exact = || s * activation.derivative(s * sum);
    // libfann stores a candidate's sum without its steepness.
    derivative.at(activation, s, y, sum, exact)
}

/// FANN's candidate activations (`cascade_activation_functions` by default).
pub const FANN_CANDIDATE_ACTIVATIONS: [Activation; 10] = [
    Activation::Sigmoid,
    Activation::SigmoidSymmetric,
    Activation::Gaussian,
    Activation::GaussianSymmetric,
    Activation::Elliot,
    Activation::ElliotSymmetric,
    Activation::SinSymmetric,
    Activation::CosSymmetric,
    Activation::Sin,
    Activation::Cos,
];

/// FANN's candidate steepnesses (`cascade_activation_steepnesses` by default).
pub const FANN_CANDIDATE_STEEPNESSES: [f32; 4] = [0.25, 0.5, 0.75, 1.0];
