//! Activations and their derivatives in f32: the CPU twins of
//! `shaders/nn/activation.wgsl` (formulas: `tessera_tensor::nn::Activation`).

use crate::dispatch::direct_kernel;
use tessera_tensor::nn::Activation;

use crate::math::exp;

/// `tanh` in f32 without a libm call: a [13/6] rational minimax approximation on
/// [-7.9988, 7.9988] (beyond it tanh rounds to +-1), the one Eigen uses. Branch-free,
/// so loops over it vectorise; within 8 ulp of tanh (relative error below 1e-6,
/// tested below), against the 1e-4 the kernels promise.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.998_811_7;
    const ALPHA: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    // Plain multiply-adds: `mul_add` is a libm call wherever FMA is not enabled.
    let mut p = ALPHA[6];
    for &a in ALPHA[..6].iter().rev() {
        p = p * x2 + a;
    }
    let mut q = BETA[3];
    for &b in BETA[..3].iter().rev() {
        q = q * x2 + b;
    }
    let r = x * p / q;
    // Tiny arguments: tanh x rounds to x, which the ratio misses by a few 1e-8.
    if x.abs() < 4e-4 { x } else { r }
}

/// 2π in three parts (Cody and Waite): `k P1` and `k P2` are exact for `|k| < 2^12`.
const TWO_PI: [f32; 3] = [6.28125, 0.001_935_005_2, 3.019_916e-7];
/// 1.5 * 2^23: adding and subtracting it rounds to the nearest integer, ties to even.
const ROUNDER: f32 = 12_582_912.0;

/// `x` reduced to about [-π, π] (the rounded turn count can be one off next to a
/// half turn, leaving `r` a hair beyond π, where the polynomials still hold); clamped to
/// ±(π + 1/4) for `|x|` beyond about 2^22 turns, where an f32 holds no phase any more.
#[inline(always)]
fn reduce_angle(x: f32) -> f32 {
    let k = (x * std::f32::consts::FRAC_1_PI * 0.5 + ROUNDER) - ROUNDER;
    let r = ((x - k * TWO_PI[0]) - k * TWO_PI[1]) - k * TWO_PI[2];
    r.clamp(-std::f32::consts::PI - 0.25, std::f32::consts::PI + 0.25)
}

/// `sin x` in f32 without a libm call: Cody-Waite reduction to [-π, π] and the Taylor
/// polynomial to degree 15 (error below 2e-6 for `|x| <= 2^12 2π`, tested below).
/// Branch-free, so loops over it vectorise.
#[inline(always)]
pub fn sin(x: f32) -> f32 {
    const C: [f32; 7] = [
        -1.0 / 6.0,
        1.0 / 120.0,
        -1.0 / 5040.0,
        1.0 / 362_880.0,
        -1.0 / 39_916_800.0,
        1.0 / 6_227_020_800.0,
        -1.0 / 1_307_674_368_000.0,
    ];
    let r = reduce_angle(x);
    let r2 = r * r;
    let mut p = C[6];
    for &c in C[..6].iter().rev() {
        p = p * r2 + c;
    }
    r + r * r2 * p
}

/// `cos x` in f32, as [`sin`] (Taylor to degree 16).
#[inline(always)]
pub fn cos(x: f32) -> f32 {
    const C: [f32; 8] = [
        -0.5,
        1.0 / 24.0,
        -1.0 / 720.0,
        1.0 / 40_320.0,
        -1.0 / 3_628_800.0,
        1.0 / 479_001_600.0,
        -1.0 / 87_178_291_200.0,
        1.0 / 20_922_789_888_000.0,
    ];
    let r = reduce_angle(x);
    let r2 = r * r;
    let mut p = C[7];
    for &c in C[..7].iter().rev() {
        p = p * r2 + c;
    }
    1.0 + r2 * p
}

/// Binds `$c` to each activation in turn, one copy of `$body` per activation, so the
/// `match` inside [`activate`] and [`derivative`] folds away and loops vectorise.
macro_rules! for_const_activation {
    ($a:expr, |$c:ident| $body:expr) => {{
        use Activation::*;
        match $a {
            Linear => {
                let $c = Linear;
                $body
            }
            Threshold => {
                let $c = Threshold;
                $body
            }
            ThresholdSymmetric => {
                let $c = ThresholdSymmetric;
                $body
            }
            Sigmoid => {
                let $c = Sigmoid;
                $body
            }
            SigmoidStepwise => {
                let $c = SigmoidStepwise;
                $body
            }
            SigmoidSymmetric => {
                let $c = SigmoidSymmetric;
                $body
            }
            SigmoidSymmetricStepwise => {
                let $c = SigmoidSymmetricStepwise;
                $body
            }
            Gaussian => {
                let $c = Gaussian;
                $body
            }
            GaussianSymmetric => {
                let $c = GaussianSymmetric;
                $body
            }
            Elliot => {
                let $c = Elliot;
                $body
            }
            ElliotSymmetric => {
                let $c = ElliotSymmetric;
                $body
            }
            LinearPiece => {
                let $c = LinearPiece;
                $body
            }
            LinearPieceSymmetric => {
                let $c = LinearPieceSymmetric;
                $body
            }
            SinSymmetric => {
                let $c = SinSymmetric;
                $body
            }
            CosSymmetric => {
                let $c = CosSymmetric;
                $body
            }
            Sin => {
                let $c = Sin;
                $body
            }
            Cos => {
                let $c = Cos;
                $body
            }
            Relu => {
                let $c = Relu;
                $body
            }
            LeakyRelu => {
                let $c = LeakyRelu;
                $body
            }
            Gelu => {
                let $c = Gelu;
                $body
            }
            Silu => {
                let $c = Silu;
                $body
            }
            Softmax => {
                let $c = Softmax;
                $body
            }
        }
    }};
}

/// `y = f(s z)` element-wise.
#[inline(always)]
pub(super) fn activate_slice(a: Activation, s: f32, z: &[f32], y: &mut [f32]) {
    for_const_activation!(a, |c| for (yv, &zv) in y.iter_mut().zip(z) {
        *yv = activate(c, s * zv);
    })
}

direct_kernel!(
    /// [`bias_activation_rows`] under SIMD dispatch.
    pub(super) BiasActivationRows((&mut [f32], &mut [f32], &[f32], Activation, f32)) -> () => bias_activation_rows
);

/// Rows of a layer's forward (`bias.len()` columns each): `z += bias`, then
/// `y = f(s z)`, row-wise for softmax. Element-wise activations run over all the rows
/// in one loop: row by row, a narrow layer's 32 columns paid the activation's dispatch
/// and loop tails on every row.
#[inline(always)]
pub(super) fn bias_activation_rows(
    (z, y, bias, a, s): (&mut [f32], &mut [f32], &[f32], Activation, f32),
) {
    for zr in z.chunks_mut(bias.len()) {
        for (zv, b) in zr.iter_mut().zip(bias) {
            *zv += b;
        }
    }
    if !a.is_rowwise() {
        activate_slice(a, s, z, y);
        return;
    }
    for (zr, yr) in z.chunks(bias.len()).zip(y.chunks_mut(bias.len())) {
        let max = zr.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(s * v));
        let mut sum = 0.0;
        for (yv, zv) in yr.iter_mut().zip(zr.iter()) {
            *yv = exp(s * zv - max);
            sum += *yv;
        }
        let inv = 1.0 / sum;
        yr.iter_mut().for_each(|v| *v *= inv);
    }
}

direct_kernel!(
    /// [`softmax_backward_rows`] under SIMD dispatch.
    pub(super) SoftmaxBackwardRows((&mut [f32], &[f32], &[f32], usize, f32)) -> () => softmax_backward_rows
);

/// Softmax backward over rows of `cols`: `dz = s y (dy - sum(dy y))`.
#[inline(always)]
pub(super) fn softmax_backward_rows(
    (dz, y, dy, cols, s): (&mut [f32], &[f32], &[f32], usize, f32),
) {
    for ((dzr, yr), dyr) in dz.chunks_mut(cols).zip(y.chunks(cols)).zip(dy.chunks(cols)) {
        let dot: f32 = dyr.iter().zip(yr).map(|(a, b)| a * b).sum();
        for ((d, &yv), &g) in dzr.iter_mut().zip(yr).zip(dyr) {
            *d = s * yv * (g - dot);
        }
    }
}

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
        // Full relative precision near 0, where (1 + tanh u) / 2 would round outputs
        // below about 3e-8 to 0 and stop their gradients (a vectorisable exp).
        Sigmoid | SigmoidStepwise => 1.0 / (1.0 + exp(-2.0 * u)),
        SigmoidSymmetric | SigmoidSymmetricStepwise => tanh(u),
        Gaussian => exp(-u * u),
        GaussianSymmetric => 2.0 * exp(-u * u) - 1.0,
        Elliot => (u / 2.0) / (1.0 + u.abs()) + 0.5,
        ElliotSymmetric => u / (1.0 + u.abs()),
        LinearPiece => u.clamp(0.0, 1.0),
        LinearPieceSymmetric => u.clamp(-1.0, 1.0),
        SinSymmetric => sin(u),
        CosSymmetric => cos(u),
        Sin => sin(u) / 2.0 + 0.5,
        Cos => cos(u) / 2.0 + 0.5,
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
            0.5 * u * (1.0 + tanh(c * (u + 0.044715 * u * u * u)))
        }
        Silu => u / (1.0 + exp(-u)),
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
            let y = tanh(u);
            1.0 - y * y
        }
        Gaussian => -2.0 * u * exp(-u * u),
        GaussianSymmetric => -4.0 * u * exp(-u * u),
        Elliot => 0.5 / ((1.0 + u.abs()) * (1.0 + u.abs())),
        ElliotSymmetric => 1.0 / ((1.0 + u.abs()) * (1.0 + u.abs())),
        LinearPiece => f32::from((0.0..=1.0).contains(&u)),
        LinearPieceSymmetric => f32::from((-1.0..=1.0).contains(&u)),
        SinSymmetric => cos(u),
        CosSymmetric => -sin(u),
        Sin => cos(u) / 2.0,
        Cos => -sin(u) / 2.0,
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
            let t = tanh(c * (u + 0.044715 * u * u * u));
            0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * u * u)
        }
        Silu => {
            let s = 1.0 / (1.0 + exp(-u));
            s + u * s * (1.0 - s)
        }
    }
}

/// libfann 2.2's derivative at output `y` and libfann's stored sum `sum` (`s z` for a
/// network's neurons), steepness applied, where it can differ from the exact one (the
/// f32 twin of `tessera_tensor::nn::fann_derivative`).
#[inline(always)]
pub fn fann_derivative(a: Activation, s: f32, y: f32, sum: f32) -> Option<f32> {
    use Activation::*;
    match a {
        Sigmoid | SigmoidStepwise => {
            let y = y.clamp(0.01, 0.99);
            Some(2.0 * s * y * (1.0 - y))
        }
        SigmoidSymmetric | SigmoidSymmetricStepwise => {
            let y = y.clamp(-0.98, 0.98);
            Some(s * (1.0 - y * y))
        }
        LinearPiece | LinearPieceSymmetric => Some(s),
        Gaussian => Some(-2.0 * sum * y * s * s),
        GaussianSymmetric => Some(-2.0 * sum * (y + 1.0) * s * s),
        Elliot => Some(s / (2.0 * (1.0 + sum.abs()) * (1.0 + sum.abs()))),
        ElliotSymmetric => Some(s / ((1.0 + sum.abs()) * (1.0 + sum.abs()))),
        SinSymmetric => Some(s * cos(s * sum)),
        CosSymmetric => Some(-s * sin(s * sum)),
        Sin => Some(s * cos(s * sum) / 2.0),
        Cos => Some(-s * sin(s * sum) / 2.0),
        _ => None,
    }
}

/// `dz = dy s f'(s z)` element-wise, or, with `fann` (the convention's
/// `Derivative::uses_fann_form` for `a`), libfann's from `y` and `s z`.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn backward_slice(
    (dz, [z, y, dy], (a, s, fann)): (&mut [f32], [&[f32]; 3], (Activation, f32, bool)),
) {
    if fann {
        for_const_activation!(a, |c| for (((d, &yv), &g), &zv) in
            dz.iter_mut().zip(y).zip(dy).zip(z)
        {
            *d = g * fann_derivative(c, s, yv, s * zv).unwrap_or(0.0);
        })
    } else {
        for_const_activation!(a, |c| for ((d, &zv), &g) in dz.iter_mut().zip(z).zip(dy) {
            *d = g * s * derivative(c, s * zv);
        })
    }
}

/// The derivative of a candidate's `y = f(s sum)` with respect to `sum` (the f32 twin
/// of `tessera_tensor::nn::cascade::candidate_derivative`): `fann` clips the
/// sigmoids and gives the linear pieces `s` (`Derivative::Fann` and `FannCompat`),
/// `compat` takes the Elliot pair's libfann form (`FannCompat`).
#[inline(always)]
pub fn candidate_derivative(
    a: Activation,
    s: f32,
    sum: f32,
    y: f32,
    (fann, compat): (bool, bool),
) -> f32 {
    use Activation::*;
    // From the output y where it gives the derivative, so nothing is evaluated twice.
    let u = s * sum;
    match a {
        Sigmoid | SigmoidStepwise => {
            let y = if fann { y.clamp(0.01, 0.99) } else { y };
            2.0 * s * y * (1.0 - y)
        }
        SigmoidSymmetric | SigmoidSymmetricStepwise => {
            let y = if fann { y.clamp(-0.98, 0.98) } else { y };
            s * (1.0 - y * y)
        }
        Gaussian => -2.0 * s * u * y,
        GaussianSymmetric => -2.0 * s * u * (y + 1.0),
        Elliot | ElliotSymmetric => {
            // FANN's |sum| where the exact derivative has |s sum|.
            let g = 1.0 + if compat { sum.abs() } else { u.abs() };
            let scale = if a == Elliot { 0.5 } else { 1.0 };
            scale * s / (g * g)
        }
        LinearPiece | LinearPieceSymmetric if fann => s,
        _ => s * derivative(a, u),
    }
}

/// One candidate's activations over its rows: `sums` (clamped to `±limit`) become
/// `y = f(s sum)`, and `deriv` receives the derivatives with respect to the sums.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn candidate_slice(
    (sums, deriv, (a, s, limit, fann)): (
        &mut [f32],
        &mut [f32],
        (Activation, f32, f32, (bool, bool)),
    ),
) {
    for_const_activation!(a, |c| for (x, d) in sums.iter_mut().zip(deriv.iter_mut()) {
        let sum = x.clamp(-limit, limit);
        let y = activate(c, s * sum);
        *d = candidate_derivative(c, s, sum, y, fann);
        *x = y;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_eight_ulp_everywhere() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x <= 12.0 {
            let want = (x as f64).tanh();
            let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            worst = worst.max((tanh(x) as f64 - want).abs() / ulp);
            x += 1.0 / 4096.0;
        }
        for x in [
            0.0, -0.0, 1e-30, -1e-8, 3.9e-4, 4.1e-4, 7.99, 8.0, 1e30, -1e30,
        ] {
            let want = (x as f64).tanh();
            assert!((tanh(x) as f64 - want).abs() <= 8.0 * want.abs() * f32::EPSILON as f64);
        }
        assert!(worst <= 8.0, "worst error {worst} ulp");
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn sin_and_cos_are_within_2e6_up_to_4096_turns() {
        let limit = 4096.0 * std::f32::consts::TAU;
        let mut x = -limit;
        let mut worst = 0.0f64;
        while x <= limit {
            let xd = x as f64;
            worst = worst
                .max((sin(x) as f64 - xd.sin()).abs())
                .max((cos(x) as f64 - xd.cos()).abs());
            x += 0.013;
        }
        assert!(worst <= 2e-6, "worst error {worst}");
        for x in [1e30f32, -1e30, 3e9] {
            assert!(sin(x).abs() <= 1.0 + 1e-6 && cos(x).abs() <= 1.0 + 1e-6);
        }
    }
}
