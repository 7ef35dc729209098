//! Forward and backward of a whole dense net on one batch: the training step's
//! gradients as one contract call ([`NnKernels::dense_backprop`]).
//!
//! Its meaning is the per-layer composition in [`backprop_per_layer`] (the default
//! every backend inherits): the forward pass layer by layer, the output error, then
//! each layer's weight and bias gradients and the error of its input. A backend may
//! compute the same sums in another order (the CPU runs small nets in blocks of rows,
//! every layer of a block while it is in cache); results then agree to f32 rounding,
//! not bit for bit.

use super::{Activation, Derivative, Gemm, Loss, NnKernels, check_lens};
use crate::error::{Result, TesseraError};

/// One dense layer as [`NnKernels::dense_backprop`] reads it: `Z = X W + b`,
/// `Y = f(steepness Z)`, with `W: [inputs, outputs]` and `b: [outputs]`.
#[derive(Debug)]
pub struct DenseLayerRef<'a, T> {
    /// Weights, `[inputs, outputs]` row-major.
    pub w: &'a T,
    /// Biases, `[outputs]`.
    pub b: &'a T,
    /// Inputs of the layer.
    pub inputs: usize,
    /// Outputs (neurons) of the layer.
    pub outputs: usize,
    /// Activation of its neurons.
    pub activation: Activation,
    /// Steepness applied to the sums before the activation.
    pub steepness: f32,
}

// Derived `Clone`/`Copy` would require `T: Copy`; the fields are references.
impl<T> Clone for DenseLayerRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DenseLayerRef<'_, T> {}

/// The per-layer buffers of the composition, each `[rows, outputs]` of its layer:
/// sums `z`, activations `a`, and the errors `dz` (of the sums) and `da` (of the
/// activations). A backend that fuses the pass may leave them unwritten.
#[derive(Debug)]
pub struct DenseWork<'a, T> {
    /// Sums of each layer.
    pub z: &'a mut [T],
    /// Activations of each layer.
    pub a: &'a mut [T],
    /// Error of each layer's sums.
    pub dz: &'a mut [T],
    /// Error of each layer's activations.
    pub da: &'a mut [T],
}

/// Where one layer's gradients go: `w` as `[inputs, outputs]`, `b` as `[outputs]`.
#[derive(Debug)]
pub struct DenseGrads<'a, T> {
    /// Gradient of the weights.
    pub w: &'a mut T,
    /// Gradient of the biases.
    pub b: &'a mut T,
}

/// What one [`NnKernels::dense_backprop`] call computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseBackprop {
    /// Samples in the batch.
    pub rows: usize,
    /// The loss whose gradient flows back.
    pub loss: Loss,
    /// How activation derivatives are taken.
    pub derivative: Derivative,
    /// Factor on the output gradient (1, or `1 / rows` for a mean).
    pub scale: f32,
    /// Add to the gradients already held (`true`) or overwrite them.
    pub accumulate: bool,
    /// FANN's bit-fail limit for the error metrics.
    pub bit_fail_limit: f32,
}

impl DenseBackprop {
    /// Checks that the layers chain, that every tensor has its layer's length, that
    /// every activation has a gradient and that the loss fits the output layer.
    /// `lens(t)` is a tensor's length.
    pub fn check<T>(
        &self,
        layers: &[DenseLayerRef<'_, T>],
        (x, target): (usize, usize),
        grads: &[DenseGrads<'_, T>],
        lens: impl Fn(&T) -> usize,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (layers.first(), layers.last()) else {
            return Err(TesseraError::ShapeMismatch {
                what: "dense_backprop layers",
                got: 0,
                expected: 1,
            });
        };
        check_lens("dense_backprop grads", &[grads.len()], layers.len())?;
        check_lens("dense_backprop x", &[x], self.rows * first.inputs)?;
        check_lens("dense_backprop target", &[target], self.rows * last.outputs)?;
        for (i, (l, g)) in layers.iter().zip(grads).enumerate() {
            if i > 0 {
                check_lens(
                    "dense_backprop layer inputs",
                    &[l.inputs],
                    layers[i - 1].outputs,
                )?;
            }
            let w = l.inputs * l.outputs;
            check_lens("dense_backprop weights", &[lens(l.w), lens(g.w)], w)?;
            check_lens("dense_backprop biases", &[lens(l.b), lens(g.b)], l.outputs)?;
            if !l.activation.has_gradient() {
                return Err(TesseraError::InvalidArgument {
                    what: "activation without a gradient",
                    value: l.activation.code() as f64,
                    expected: "a differentiable activation (thresholds are inference-only)",
                });
            }
        }
        if last.activation.is_rowwise() != (self.loss == Loss::SoftmaxCrossEntropy) {
            return Err(TesseraError::InvalidArgument {
                what: "loss and output activation",
                value: self.loss.code() as f64,
                expected: "softmax cross-entropy exactly when the output layer is softmax",
            });
        }
        Ok(())
    }
}

/// The forward pass layer by layer: `z[l] = a[l - 1] W + b`, `a[l] = f(s z[l])`,
/// with `a[-1] = x`.
pub fn forward_per_layer<K: NnKernels + ?Sized>(
    k: &K,
    layers: &[DenseLayerRef<'_, K::Tensor>],
    x: &K::Tensor,
    rows: usize,
    z: &mut [K::Tensor],
    a: &mut [K::Tensor],
) -> Result<()> {
    check_lens("forward buffers", &[z.len(), a.len()], layers.len())?;
    for (i, l) in layers.iter().enumerate() {
        let (before, after) = a.split_at_mut(i);
        let input = if i == 0 { x } else { &before[i - 1] };
        k.gemm(Gemm::new(rows, l.outputs, l.inputs), input, l.w, &mut z[i])?;
        k.bias_activation(
            &mut z[i],
            l.b,
            &mut after[0],
            rows,
            l.outputs,
            l.activation,
            l.steepness,
        )?;
    }
    Ok(())
}

/// [`NnKernels::dense_backprop`] as a composition of the per-layer kernels: the
/// definition every backend's result is tested against.
#[allow(clippy::too_many_arguments)]
pub fn backprop_per_layer<K: NnKernels + ?Sized>(
    k: &K,
    p: DenseBackprop,
    layers: &[DenseLayerRef<'_, K::Tensor>],
    x: &K::Tensor,
    target: &K::Tensor,
    work: DenseWork<'_, K::Tensor>,
    grads: &mut [DenseGrads<'_, K::Tensor>],
    metrics: Option<&mut K::Metrics>,
) -> Result<()> {
    p.check(layers, (k.len(x), k.len(target)), grads, |t| k.len(t))?;
    let n = layers.len();
    check_lens(
        "dense_backprop work",
        &[work.z.len(), work.a.len(), work.dz.len(), work.da.len()],
        n,
    )?;
    let DenseWork { z, a, dz, da } = work;
    forward_per_layer(k, layers, x, p.rows, z, a)?;
    let last = n - 1;
    let out = &layers[last];
    if let Some(acc) = metrics {
        k.accumulate_error_metrics(
            &a[last],
            target,
            p.loss,
            out.activation,
            p.bit_fail_limit,
            acc,
        )?;
    }
    if p.loss == Loss::SoftmaxCrossEntropy {
        let (activation, steepness) = (out.activation, out.steepness);
        k.output_gradient(
            &a[last],
            target,
            &mut dz[last],
            p.loss,
            activation,
            steepness,
            p.scale,
        )?;
    } else {
        k.output_gradient(
            &a[last],
            target,
            &mut da[last],
            p.loss,
            out.activation,
            out.steepness,
            p.scale,
        )?;
        k.activation_backward(
            &z[last],
            &a[last],
            &da[last],
            &mut dz[last],
            out.outputs,
            out.activation,
            out.steepness,
            p.derivative,
        )?;
    }
    let beta = if p.accumulate { 1.0 } else { 0.0 };
    for l in (0..n).rev() {
        let spec = &layers[l];
        let input = if l == 0 { x } else { &a[l - 1] };
        let g = Gemm {
            m: spec.inputs,
            n: spec.outputs,
            k: p.rows,
            trans_a: true,
            trans_b: false,
            alpha: 1.0,
            beta,
        };
        k.gemm(g, input, &dz[l], grads[l].w)?;
        k.column_sums(&dz[l], grads[l].b, p.rows, spec.outputs, beta)?;
        if l > 0 {
            let g = Gemm {
                m: p.rows,
                n: spec.inputs,
                k: spec.outputs,
                trans_a: false,
                trans_b: true,
                alpha: 1.0,
                beta: 0.0,
            };
            let (lower, upper) = dz.split_at_mut(l);
            k.gemm(g, &upper[0], spec.w, &mut da[l - 1])?;
            let prev = &layers[l - 1];
            k.activation_backward(
                &z[l - 1],
                &a[l - 1],
                &da[l - 1],
                &mut lower[l - 1],
                prev.outputs,
                prev.activation,
                prev.steepness,
                p.derivative,
            )?;
        }
    }
    Ok(())
}
