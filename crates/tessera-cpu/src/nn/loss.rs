//! Output gradients, error metrics and column sums: `#[inline(always)]` functions of
//! one tuple argument, run through [`crate::dispatch::Kernel`].

use crate::dispatch::direct_kernel;
use tessera_tensor::nn::Loss;

/// FANN's tanh error mapping of a (possibly halved) difference, with a
/// vectorisable `ln` (FANN calls libm's per output).
#[inline(always)]
fn fann_tanh_error(diff: f32) -> f32 {
    let clipped = diff.clamp(-0.9999999, 0.9999999);
    let mapped = crate::math::ln((1.0 + clipped) / (1.0 - clipped));
    if diff < -0.9999999 {
        -17.0
    } else if diff > 0.9999999 {
        17.0
    } else if diff.is_nan() {
        // As libm's ln would: a NaN stays a NaN.
        diff
    } else {
        mapped
    }
}

/// `dL/dy` (or `dL/dz` for softmax cross-entropy) of `loss`, times `scale`; `h` is
/// FANN's factor on `t - y`.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn output_gradient(
    (grad, [y, t], (loss, h, scale, steepness)): (&mut [f32], [&[f32]; 2], (Loss, f32, f32, f32)),
) {
    for ((g, &yv), &tv) in grad.iter_mut().zip(y).zip(t) {
        *g = match loss {
            Loss::MeanSquared => scale * (yv - tv),
            Loss::Fann { tanh } => {
                let diff = (tv - yv) * h;
                -scale * if tanh { fann_tanh_error(diff) } else { diff }
            }
            Loss::SoftmaxCrossEntropy => scale * steepness * (yv - tv),
        };
    }
}

direct_kernel!(
    /// [`error_metrics`] under SIMD dispatch.
    pub(super) ErrorMetrics((&[f32], &[f32], f32, f32)) -> (f64, u64) => error_metrics
);

/// Sum of squared `(t - y) h` and the count of those at least `limit` in size.
#[inline(always)]
pub(super) fn error_metrics((y, t, h, limit): (&[f32], &[f32], f32, f32)) -> (f64, u64) {
    y.iter()
        .zip(t)
        .fold((0.0f64, 0u64), |(sse, fails), (&yv, &tv)| {
            let diff = (tv - yv) * h;
            (
                sse + (diff * diff) as f64,
                fails + u64::from(diff.abs() >= limit),
            )
        })
}

direct_kernel!(
    /// [`column_sums`] under SIMD dispatch.
    pub(super) ColumnSums((&mut [f32], &[f32], usize, f32)) -> () => column_sums
);

/// `out = beta out + sum of m's rows` (`m` is `[rows, cols]`).
#[inline(always)]
pub(super) fn column_sums((out, m, cols, beta): (&mut [f32], &[f32], usize, f32)) {
    if beta == 0.0 {
        out.fill(0.0);
    } else if beta != 1.0 {
        out.iter_mut().for_each(|o| *o *= beta);
    }
    for row in m.chunks_exact(cols.max(1)) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}
