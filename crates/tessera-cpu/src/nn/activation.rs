//! Activations and their derivatives in f32: the CPU twins of
//! `shaders/nn/activation.wgsl` (formulas: `tessera_tensor::nn::Activation`).

use tessera_tensor::nn::Activation;

/// `f(u)` for an element-wise activation (`u = s x`).
#[inline(always)]
pub fn activate(a: Activation, u: f32) -> f32 {
    use Activation::*;
    match a {
        Linear | Softmax => u,
        Threshold => f32::from(u >= 0.0),
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
            let c = (2.0 / std::f32::consts::PI).sqrt();
            0.5 * u * (1.0 + (c * (u + 0.044715 * u * u * u)).tanh())
        }
        Silu => u / (1.0 + (-u).exp()),
    }
}

/// `df/du` at `u` (0 for thresholds and softmax, which are handled elsewhere).
#[inline(always)]
pub fn derivative(a: Activation, u: f32) -> f32 {
    use Activation::*;
    match a {
        Linear => 1.0,
        Threshold | ThresholdSymmetric | Softmax => 0.0,
        Sigmoid | SigmoidStepwise => {
            let y = activate(a, u);
            2.0 * y * (1.0 - y)
        }
        SigmoidSymmetric | SigmoidSymmetricStepwise => {
            let y = u.tanh();
            1.0 - y * y
        }
        Gaussian => -2.0 * u * (-u * u).exp(),
        GaussianSymmetric => -4.0 * u * (-u * u).exp(),
        Elliot => 0.5 / ((1.0 + u.abs()) * (1.0 + u.abs())),
        ElliotSymmetric => 1.0 / ((1.0 + u.abs()) * (1.0 + u.abs())),
        LinearPiece => f32::from((0.0..=1.0).contains(&u)),
        LinearPieceSymmetric => f32::from((-1.0..=1.0).contains(&u)),
        SinSymmetric => u.cos(),
        CosSymmetric => -u.sin(),
        Sin => u.cos() / 2.0,
        Cos => -u.sin() / 2.0,
        Relu => f32::from(u > 0.0),
        LeakyRelu => {
            if u > 0.0 {
                1.0
            } else {
                0.01
            }
        }
        Gelu => {
            let c = (2.0 / std::f32::consts::PI).sqrt();
            let t = (c * (u + 0.044715 * u * u * u)).tanh();
            0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * u * u)
        }
        Silu => {
            let s = 1.0 / (1.0 + (-u).exp());
            s + u * s * (1.0 - s)
        }
    }
}
