//! Activation functions: FANN 2.2's set (with its numeric ids, for `.net` files) and
//! modern ones. `y = f(s * x)` with steepness `s`; derivatives are taken with respect to
//! the pre-activation sum `x`, exactly (FANN's stepwise variants are computed as their
//! exact counterparts).

use crate::error::{Result, TesseraError};

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `y = s x`.
    Linear,
    /// `y = 0` if `s x < 0`, else 1. No gradient: inference only.
    Threshold,
    /// `y = -1` if `s x < 0`, else 1. No gradient: inference only.
    ThresholdSymmetric,
    /// `y = 1 / (1 + exp(-2 s x))`.
    Sigmoid,
    /// FANN's piecewise-linear sigmoid, computed as [`Activation::Sigmoid`].
    SigmoidStepwise,
    /// `y = tanh(s x)`.
    SigmoidSymmetric,
    /// FANN's piecewise-linear tanh, computed as [`Activation::SigmoidSymmetric`].
    SigmoidSymmetricStepwise,
    /// `y = exp(-(s x)^2)`.
    Gaussian,
    /// `y = 2 exp(-(s x)^2) - 1`.
    GaussianSymmetric,
    /// `y = (s x / 2) / (1 + |s x|) + 0.5`.
    Elliot,
    /// `y = s x / (1 + |s x|)`.
    ElliotSymmetric,
    /// `y = clamp(s x, 0, 1)`.
    LinearPiece,
    /// `y = clamp(s x, -1, 1)`.
    LinearPieceSymmetric,
    /// `y = sin(s x)`.
    SinSymmetric,
    /// `y = cos(s x)`.
    CosSymmetric,
    /// `y = sin(s x) / 2 + 0.5`.
    Sin,
    /// `y = cos(s x) / 2 + 0.5`.
    Cos,
    /// `y = max(0, s x)`.
    Relu,
    /// `y = s x` if positive, else `0.01 s x`.
    LeakyRelu,
    /// GELU, tanh form: `0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))`, `u = s x`.
    Gelu,
    /// SiLU: `u / (1 + exp(-u))`, `u = s x`.
    Silu,
    /// Softmax over each row (output layers): `exp(u_i) / sum_j exp(u_j)`, `u = s x`.
    Softmax,
}

impl Activation {
    /// Every activation, in kernel-code order.
    pub const ALL: [Activation; 22] = [
        Activation::Linear,
        Activation::Threshold,
        Activation::ThresholdSymmetric,
        Activation::Sigmoid,
        Activation::SigmoidStepwise,
        Activation::SigmoidSymmetric,
        Activation::SigmoidSymmetricStepwise,
        Activation::Gaussian,
        Activation::GaussianSymmetric,
        Activation::Elliot,
        Activation::ElliotSymmetric,
        Activation::LinearPiece,
        Activation::LinearPieceSymmetric,
        Activation::SinSymmetric,
        Activation::CosSymmetric,
        Activation::Sin,
        Activation::Cos,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Softmax,
    ];

    /// The code the kernels switch on (`shaders/nn/activation.wgsl`).
    pub fn code(self) -> u32 {
        Self::ALL
            .iter()
            .position(|&a| a == self)
            .expect("every activation is listed") as u32
    }

    /// FANN 2.2's `fann_activationfunc_enum` value, for the FANN ones.
    pub fn fann_id(self) -> Option<u32> {
        use Activation::*;
        Some(match self {
            Linear => 0,
            Threshold => 1,
            ThresholdSymmetric => 2,
            Sigmoid => 3,
            SigmoidStepwise => 4,
            SigmoidSymmetric => 5,
            SigmoidSymmetricStepwise => 6,
            Gaussian => 7,
            GaussianSymmetric => 8,
            Elliot => 10,
            ElliotSymmetric => 11,
            LinearPiece => 12,
            LinearPieceSymmetric => 13,
            SinSymmetric => 14,
            CosSymmetric => 15,
            Sin => 16,
            Cos => 17,
            Relu | LeakyRelu | Gelu | Silu | Softmax => return None,
        })
    }

    /// The activation with FANN id `id`, or an error naming it.
    pub fn from_fann_id(id: u32) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.fann_id() == Some(id))
            .ok_or(TesseraError::InvalidArgument {
                what: "FANN activation id",
                value: id as f64,
                expected: "0..=17 except 9 (GAUSSIAN_STEPWISE is not supported)",
            })
    }

    /// Whether training can back-propagate through it (thresholds cannot).
    pub fn has_gradient(self) -> bool {
        !matches!(self, Activation::Threshold | Activation::ThresholdSymmetric)
    }

    /// FANN's symmetric activations, whose output error FANN halves.
    pub fn is_fann_symmetric(self) -> bool {
        use Activation::*;
        matches!(
            self,
            LinearPieceSymmetric
                | ThresholdSymmetric
                | SigmoidSymmetric
                | SigmoidSymmetricStepwise
                | ElliotSymmetric
                | GaussianSymmetric
                | SinSymmetric
                | CosSymmetric
        )
    }

    /// Whether it couples the outputs of a row (softmax).
    pub fn is_rowwise(self) -> bool {
        self == Activation::Softmax
    }

    /// `f(u)` in f64 for an element-wise activation, `u = s x` (softmax: see
    /// [`softmax_row`]).
    pub fn apply(self, u: f64) -> f64 {
        use Activation::*;
        match self {
            Linear => u,
            Threshold => {
                if u < 0.0 {
                    0.0
                } else {
                    1.0
                }
            }
            ThresholdSymmetric => {
                if u < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            }
            Sigmoid | SigmoidStepwise => 1.0 / (1.0 + (-2.0 * u).exp()),
            SigmoidSymmetric | SigmoidSymmetricStepwise => u.tanh(),
            Gaussian => (-u * u).exp(),
            GaussianSymmetric => 2.0 * (-u * u).exp() - 1.0,
            Elliot => (u / 2.0) / (1.0 + u.abs()) + 0.5,
            ElliotSymmetric => u / (1.0 + u.abs()),
            LinearPiece => u.clamp(0.0, 1.0),
            LinearPieceSymmetric => u.clamp(-1.0, 1.0),
            SinSymmetric => u.sin(),
            CosSymmetric => u.cos(),
            Sin => u.sin() / 2.0 + 0.5,
            Cos => u.cos() / 2.0 + 0.5,
            Relu => u.max(0.0),
            LeakyRelu => {
                if u > 0.0 {
                    u
                } else {
                    0.01 * u
                }
            }
            Gelu => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * u * (1.0 + (c * (u + 0.044715 * u * u * u)).tanh())
            }
            Silu => u / (1.0 + (-u).exp()),
            Softmax => u,
        }
    }

    /// `df/du` in f64 at `u` (multiply by the steepness for `dy/dx`). Thresholds
    /// and softmax return 0 (see [`Activation::has_gradient`] and [`softmax_row`]).
    pub fn derivative(self, u: f64) -> f64 {
        use Activation::*;
        let y = self.apply(u);
        match self {
            Linear => 1.0,
            Threshold | ThresholdSymmetric | Softmax => 0.0,
            Sigmoid | SigmoidStepwise => 2.0 * y * (1.0 - y),
            SigmoidSymmetric | SigmoidSymmetricStepwise => 1.0 - y * y,
            Gaussian => -2.0 * u * y,
            GaussianSymmetric => -4.0 * u * (-u * u).exp(),
            Elliot => 0.5 / ((1.0 + u.abs()) * (1.0 + u.abs())),
            ElliotSymmetric => 1.0 / ((1.0 + u.abs()) * (1.0 + u.abs())),
            LinearPiece => f64::from((0.0..=1.0).contains(&u)),
            LinearPieceSymmetric => f64::from((-1.0..=1.0).contains(&u)),
            SinSymmetric => u.cos(),
            CosSymmetric => -u.sin(),
            Sin => u.cos() / 2.0,
            Cos => -u.sin() / 2.0,
            Relu => f64::from(u > 0.0),
            LeakyRelu => {
                if u > 0.0 {
                    1.0
                } else {
                    0.01
                }
            }
            Gelu => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let inner = c * (u + 0.044715 * u * u * u);
                let t = inner.tanh();
                0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * u * u)
            }
            Silu => {
                let s = 1.0 / (1.0 + (-u).exp());
                s + u * s * (1.0 - s)
            }
        }
    }

    /// Lower-case name used in docs and on the command line.
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// Softmax of one row in f64, numerically stable.
pub fn softmax_row(u: &[f64]) -> Vec<f64> {
    let max = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = u.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        for a in Activation::ALL {
            if !a.has_gradient() || a.is_rowwise() {
                continue;
            }
            for &u in &[-2.3, -0.7, -0.05, 0.3, 0.9, 1.7] {
                // Kinks (linear piece at 0 and 1, ReLU at 0) are avoided by the points.
                let h = 1e-6;
                let fd = (a.apply(u + h) - a.apply(u - h)) / (2.0 * h);
                let d = a.derivative(u);
                assert!(
                    (fd - d).abs() <= 1e-6 * d.abs().max(1.0),
                    "{a:?} at {u}: {d} vs {fd}"
                );
            }
        }
    }

    #[test]
    fn fann_ids_round_trip() {
        for a in Activation::ALL {
            if let Some(id) = a.fann_id() {
                assert_eq!(Activation::from_fann_id(id).unwrap(), a);
            }
        }
        assert!(Activation::from_fann_id(9).is_err());
        assert!(Activation::from_fann_id(42).is_err());
    }
}
