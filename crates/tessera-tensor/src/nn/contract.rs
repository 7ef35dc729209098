//! The neural kernel contract.

use super::Activation;
use super::cascade::{CandidateEpoch, CandidateUnit};
use crate::error::{Result, TesseraError};

/// `C = alpha op(A) op(B) + beta C` with `op(A): [m, k]`, `op(B): [k, n]`, `C: [m, n]`,
/// all row-major. `trans_a` means `A` is stored `[k, m]`, `trans_b` that `B` is stored
/// `[n, k]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The reduced dimension.
    pub k: usize,
    /// `A` is stored transposed.
    pub trans_a: bool,
    /// `B` is stored transposed.
    pub trans_b: bool,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the existing `C` (0 overwrites it, NaNs included).
    pub beta: f32,
}

impl Gemm {
    /// `C = A B`.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self {
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            beta: 0.0,
        }
    }

    /// Checks the operands' lengths.
    pub fn check(&self, a: usize, b: usize, c: usize) -> Result<()> {
        for (what, got, expected) in [
            ("gemm A", a, self.m * self.k),
            ("gemm B", b, self.k * self.n),
            ("gemm C", c, self.m * self.n),
        ] {
            if got != expected {
                return Err(TesseraError::ShapeMismatch {
                    what,
                    got,
                    expected,
                });
            }
        }
        if !self.alpha.is_finite() || !self.beta.is_finite() {
            return Err(TesseraError::InvalidArgument {
                what: "gemm alpha/beta",
                value: if self.alpha.is_finite() {
                    self.beta
                } else {
                    self.alpha
                } as f64,
                expected: "finite scales",
            });
        }
        Ok(())
    }

    /// Floating-point operations: `2 m n k`.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// How the output error is turned into a gradient and reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Squared error: `dL/dy = scale (y - t)`; metrics on `y - t`.
    MeanSquared,
    /// FANN 2.2's output error (`fann_compute_MSE`): `diff = t - y`, halved when the
    /// output activation is symmetric (`fann_update_MSE`); with `tanh` (FANN's TANH
    /// error function) mapped to `ln((1 + diff) / (1 - diff))`, clipped to +-17 beyond
    /// +-0.9999999. `dL/dy = -scale diff`; metrics on the halved `diff`, as FANN reports.
    Fann {
        /// FANN_ERRORFUNC_TANH instead of FANN_ERRORFUNC_LINEAR.
        tanh: bool,
    },
    /// Softmax cross-entropy on a softmax output layer: the kernel writes
    /// `dL/dz = scale s (y - t)` directly (softmax and loss fused).
    SoftmaxCrossEntropy,
}

impl Loss {
    /// The factor FANN applies to `t - y` for this output activation (0.5 for the
    /// symmetric ones under [`Loss::Fann`], else 1).
    pub fn diff_scale(self, output: Activation) -> f32 {
        match self {
            Loss::Fann { .. } if output.is_fann_symmetric() => 0.5,
            _ => 1.0,
        }
    }

    /// Kernel code: 0 mean squared, 1 FANN linear, 2 FANN tanh, 3 softmax CE.
    pub fn code(self) -> u32 {
        match self {
            Loss::MeanSquared => 0,
            Loss::Fann { tanh: false } => 1,
            Loss::Fann { tanh: true } => 2,
            Loss::SoftmaxCrossEntropy => 3,
        }
    }
}

/// How the backward pass takes activation derivatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Derivative {
    /// The exact derivative of the activation.
    #[default]
    Exact,
    /// FANN 2.2's choices (`fann_activation_derived`), from the layer's output `y`:
    /// the sigmoids clip `y` to [0.01, 0.99] before `2 s y (1 - y)`, the symmetric
    /// ones to [-0.98, 0.98] before `s (1 - y^2)`, so saturated units keep a
    /// gradient; the linear pieces give `s` everywhere. Other activations: the exact
    /// derivative. The default of FANN's algorithms.
    Fann,
    /// libfann 2.2's `fann_activation_derived` verbatim ([`fann_derivative`]): as
    /// `Fann`, plus libfann's Gaussian, Elliot and trigonometric formulas, which
    /// apply the steepness to an already steepened sum (for a steepness other than 1
    /// they are not the derivative, and training with them stalls), and for a
    /// Cascade2 candidate the Elliot pair's form on the sum without the steepness.
    /// For following libfann's trajectories bit for bit.
    FannCompat,
}

impl Derivative {
    /// Kernel code: 0 exact, 1 FANN.
    pub fn code(self) -> u32 {
        match self {
            Derivative::Exact => 0,
            Derivative::Fann => 1,
            Derivative::FannCompat => 2,
        }
    }

    /// Whether this convention replaces the exact derivative of `activation` by
    /// [`fann_derivative`].
    pub fn uses_fann_form(self, activation: Activation) -> bool {
        use Activation::*;
        match self {
            Derivative::Exact => false,
            Derivative::Fann => matches!(
                activation,
                Sigmoid
                    | SigmoidStepwise
                    | SigmoidSymmetric
                    | SigmoidSymmetricStepwise
                    | LinearPiece
                    | LinearPieceSymmetric
            ),
            Derivative::FannCompat => fann_derivative(activation, 1.0, 0.0, 0.0).is_some(),
        }
    }

    /// The derivative of `f(s x)` by `x` under this convention: [`fann_derivative`] at
    /// output `y` and libfann's stored sum `sum` where [`Self::uses_fann_form`],
    /// else `exact`.
    pub fn at(
        self,
        activation: Activation,
        steepness: f64,
        y: f64,
        sum: f64,
        exact: impl FnOnce() -> f64,
    ) -> f64 {
        if self.uses_fann_form(activation) {
            fann_derivative(activation, steepness, y, sum).unwrap_or_else(exact)
        } else {
            exact()
        }
    }
}

/// libfann 2.2's derivative of `activation` (`fann_activation_derived`, with
/// respect to the sum, steepness applied) at output `y` and at `sum` as libfann stores
/// it (the steepness applied, `s x`, for a network's neurons; without it for a
/// Cascade2 candidate), for the activations where it can differ from the exact one;
/// `None` for the others. The sigmoids clip `y`, the linear pieces give the steepness,
/// and the Gaussians and trigonometric ones apply the steepness once more than the
/// exact derivative does (`s cos(s sum)` for the symmetric sine), so for a steepness
/// other than 1 they differ. In f64, the form the reference uses; the kernels mirror it.
pub fn fann_derivative(activation: Activation, steepness: f64, y: f64, sum: f64) -> Option<f64> {
    use Activation::*;
    let s = steepness;
    match activation {
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
        SinSymmetric => Some(s * (s * sum).cos()),
        CosSymmetric => Some(-s * (s * sum).sin()),
        Sin => Some(s * (s * sum).cos() / 2.0),
        Cos => Some(-s * (s * sum).sin() / 2.0),
        _ => None,
    }
}

/// Mini-batch SGD with momentum and (coupled) weight decay:
/// `v = momentum v - lr (g + decay w)`, `w += v`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    /// Learning rate.
    pub learning_rate: f32,
    /// Momentum (0 for plain gradient descent).
    pub momentum: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
}

/// iRPROP- as FANN 2.2 implements it (`fann_update_weights_irpropm`), including its
/// quirk: a weight whose gradient is not positive (a zeroed one after a sign change
/// included) moves up by the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RpropParams {
    /// Step growth when the gradient keeps its sign (FANN: 1.2).
    pub increase_factor: f32,
    /// Step shrink when it flips (FANN: 0.5).
    pub decrease_factor: f32,
    /// Smallest step (FANN: 0).
    pub delta_min: f32,
    /// Largest step (FANN: 50).
    pub delta_max: f32,
}

impl Default for RpropParams {
    fn default() -> Self {
        Self {
            increase_factor: 1.2,
            decrease_factor: 0.5,
            delta_min: 0.0,
            delta_max: 50.0,
        }
    }
}

/// QUICKPROP as FANN 2.2 implements it (`fann_update_weights_quickprop`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuickpropParams {
    /// `learning_rate / samples` (FANN: 0.7 / samples).
    pub epsilon: f32,
    /// Weight decay added to the slope (FANN: -0.0001).
    pub decay: f32,
    /// Largest step growth (FANN: 1.75).
    pub mu: f32,
}

/// One SARPROP update as FANN 2.2 writes it (`fann_update_weights_sarprop`), with the
/// epoch-dependent factors already evaluated (`tessera_nn`'s `Sarprop` does that). In
/// the kernels' convention `g = dE/dw`, per weight, with `step` floored at `delta_min`:
///
/// - `slope = g - weight_decay w` (FANN's sign: the term pushes weights away from 0);
/// - same sign as the previous slope: the step grows by `increase_factor` (at most
///   `delta_max`) and the weight moves against the slope;
/// - opposite sign: the weight stays, the slope is stored as 0 and the step shrinks by
///   `decrease_factor`; below `step_threshold` it also gains `noise_scale u`, `u` in
///   [0, 1) from [`noise_unit`](crate::rng::noise_unit)`(noise_seed, index)`, else it is
///   floored at `delta_min`;
/// - a zero product (first epoch, or after a flip): the weight moves against the slope
///   by the step, which is kept.
///
/// FANN keeps a stale step from the previous weight of its loop in that last branch;
/// tessera keeps the weight's own step, which FANN's code intends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SarpropParams {
    /// Step growth when the slope keeps its sign (FANN: 1.2).
    pub increase_factor: f32,
    /// Step shrink when it flips (FANN: 0.5).
    pub decrease_factor: f32,
    /// Smallest step, also the floor of the stored one (FANN: 1e-6).
    pub delta_min: f32,
    /// Largest step (FANN: 50).
    pub delta_max: f32,
    /// Factor of the weight term in the slope (FANN: `2^(-T epoch + weight_decay_shift)`).
    pub weight_decay: f32,
    /// Steps below this gain noise when they shrink (FANN: `0.1 MSE`).
    pub step_threshold: f32,
    /// Scale of that noise (FANN: `sqrt(MSE) 2^(-T epoch + step_error_shift)`).
    pub noise_scale: f32,
    /// Key of this update's noise (one per tensor and epoch).
    pub noise_seed: u32,
}

/// Adam, or AdamW with `decoupled` weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub learning_rate: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator floor.
    pub epsilon: f32,
    /// Weight decay: added to the gradient (Adam) or applied to the weights (AdamW).
    pub weight_decay: f32,
    /// AdamW's decoupled decay.
    pub decoupled: bool,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

/// Squared errors and bit fails summed on the host, in f64 (the CPU backends'
/// [`NnKernels::Metrics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ErrorSums {
    /// Sum of squared errors.
    pub sse: f64,
    /// Outputs whose error reached the bit-fail limit.
    pub bit_fails: u64,
}

impl ErrorSums {
    /// The sums, leaving zeros behind.
    pub fn take(&mut self) -> (f64, u64) {
        let taken = std::mem::take(self);
        (taken.sse, taken.bit_fails)
    }
}

/// The neural kernels every backend implements, on its own resident tensors.
///
/// Every method checks lengths and returns a typed error, writing nothing, when they
/// do not match the shapes given.
pub trait NnKernels {
    /// A backend-resident f32 array.
    type Tensor;
    /// Where [`NnKernels::accumulate_error_metrics`] sums an epoch's errors: on the
    /// host for CPU backends ([`ErrorSums`]), on the device for a GPU.
    type Metrics;

    /// Uploads `data`.
    fn tensor(&self, data: &[f32]) -> Result<Self::Tensor>;
    /// A zero-filled tensor of `len` elements.
    fn zeros(&self, len: usize) -> Result<Self::Tensor>;
    /// Overwrites `t` with `data` (same length).
    fn write(&self, t: &mut Self::Tensor, data: &[f32]) -> Result<()>;
    /// Copies `t` back to the host.
    fn read(&self, t: &Self::Tensor) -> Result<Vec<f32>>;
    /// Number of elements of `t`.
    fn len(&self, t: &Self::Tensor) -> usize;

    /// Waits until every queued operation has finished (a no-op for synchronous
    /// backends).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// Times the next `dispatches` kernel launches with device timestamps (each
    /// method here is one launch on a GPU; a training step is several). Returns false,
    /// and times nothing, where the backend has no device timer (the default).
    fn enable_kernel_timing(&self, _dispatches: u32) -> bool {
        false
    }

    /// Device time of each launch timed since timing was enabled or last taken, in
    /// nanoseconds and launch order (empty by default). Submits pending work.
    fn take_kernel_times(&self) -> Result<Vec<f64>> {
        Ok(Vec::new())
    }

    /// `C = alpha op(A) op(B) + beta C`.
    fn gemm(&self, g: Gemm, a: &Self::Tensor, b: &Self::Tensor, c: &mut Self::Tensor)
    -> Result<()>;

    /// Forward of a layer on `[rows, cols]` sums: `z += bias` (broadcast over rows),
    /// then `y = f(steepness z)` (row-wise for softmax).
    #[allow(clippy::too_many_arguments)]
    fn bias_activation(
        &self,
        z: &mut Self::Tensor,
        bias: &Self::Tensor,
        y: &mut Self::Tensor,
        rows: usize,
        cols: usize,
        activation: Activation,
        steepness: f32,
    ) -> Result<()>;

    /// Backward of the activation: `dz = dy * steepness f'(steepness z)` (softmax:
    /// its Jacobian-vector product), or FANN's derivative from `y` (see
    /// [`Derivative`]). Thresholds are an error.
    #[allow(clippy::too_many_arguments)]
    fn activation_backward(
        &self,
        z: &Self::Tensor,
        y: &Self::Tensor,
        dy: &Self::Tensor,
        dz: &mut Self::Tensor,
        cols: usize,
        activation: Activation,
        steepness: f32,
        derivative: Derivative,
    ) -> Result<()>;

    /// The gradient of `loss` at the outputs of a layer with activation `output`:
    /// `dy`, or `dz` for softmax cross-entropy, times `scale`.
    #[allow(clippy::too_many_arguments)]
    fn output_gradient(
        &self,
        y: &Self::Tensor,
        target: &Self::Tensor,
        grad: &mut Self::Tensor,
        loss: Loss,
        output: Activation,
        steepness: f32,
        scale: f32,
    ) -> Result<()>;

    /// A zeroed accumulator of squared errors and bit fails.
    fn metrics(&self) -> Result<Self::Metrics>;

    /// Adds the sum of squared errors and FANN's bit-fail count (`|diff| >= limit`) of
    /// `y` against `target` into `acc`, with `diff` as `loss` defines it for activation
    /// `output`. Nothing is read back: a GPU keeps the sums on the device, so an epoch
    /// of many chunks or mini-batches measures itself without a host sync.
    #[allow(clippy::too_many_arguments)]
    fn accumulate_error_metrics(
        &self,
        y: &Self::Tensor,
        target: &Self::Tensor,
        loss: Loss,
        output: Activation,
        bit_fail_limit: f32,
        acc: &mut Self::Metrics,
    ) -> Result<()>;

    /// What `acc` has accumulated, read back to the host (a host sync on a GPU), as
    /// (sum of squared errors, bit fails); `acc` is zeroed.
    fn take_metrics(&self, acc: &mut Self::Metrics) -> Result<(f64, u64)>;

    /// [`NnKernels::accumulate_error_metrics`] of one pair, read back at once.
    fn error_metrics(
        &self,
        y: &Self::Tensor,
        target: &Self::Tensor,
        loss: Loss,
        output: Activation,
        bit_fail_limit: f32,
    ) -> Result<(f64, u64)> {
        let mut acc = self.metrics()?;
        self.accumulate_error_metrics(y, target, loss, output, bit_fail_limit, &mut acc)?;
        self.take_metrics(&mut acc)
    }

    /// `out[j] = beta out[j] + sum_i m[i, j]` over `[rows, cols]` (bias gradients).
    fn column_sums(
        &self,
        m: &Self::Tensor,
        out: &mut Self::Tensor,
        rows: usize,
        cols: usize,
        beta: f32,
    ) -> Result<()>;

    /// One SGD-with-momentum step on `w` with gradient `g` and velocity `v`.
    fn sgd_update(
        &self,
        w: &mut Self::Tensor,
        g: &Self::Tensor,
        v: &mut Self::Tensor,
        p: SgdParams,
    ) -> Result<()>;

    /// One iRPROP- step; `prev_g` and `step` hold the per-weight state.
    fn rprop_update(
        &self,
        w: &mut Self::Tensor,
        g: &Self::Tensor,
        prev_g: &mut Self::Tensor,
        step: &mut Self::Tensor,
        p: RpropParams,
    ) -> Result<()>;

    /// One QUICKPROP step; `prev_slope` and `prev_step` hold the per-weight state
    /// (both start at 0).
    fn quickprop_update(
        &self,
        w: &mut Self::Tensor,
        g: &Self::Tensor,
        prev_slope: &mut Self::Tensor,
        prev_step: &mut Self::Tensor,
        p: QuickpropParams,
    ) -> Result<()>;

    /// One SARPROP step; `prev_slope` (starting at 0) and `step` (starting at 0, FANN's
    /// start) hold the per-weight state.
    fn sarprop_update(
        &self,
        w: &mut Self::Tensor,
        g: &Self::Tensor,
        prev_slope: &mut Self::Tensor,
        step: &mut Self::Tensor,
        p: SarpropParams,
    ) -> Result<()>;

    /// One epoch of a Cascade2 candidate pool: every candidate's score and the
    /// gradients of its input and output weights (see [`crate::nn::cascade`]), from
    /// the frozen values `[rows, inputs]` and residuals `[rows, outputs]`. Weights and
    /// gradients are candidate-major (`[candidates, inputs]`, `[candidates, outputs]`);
    /// `units` gives each candidate's activation and steepness. Checked with
    /// [`CandidateEpoch::check`].
    #[allow(clippy::too_many_arguments)]
    fn candidate_epoch(
        &self,
        epoch: CandidateEpoch,
        units: &[CandidateUnit],
        values: &Self::Tensor,
        residuals: &Self::Tensor,
        weights_in: &Self::Tensor,
        weights_out: &Self::Tensor,
        grad_in: &mut Self::Tensor,
        grad_out: &mut Self::Tensor,
        scores: &mut Self::Tensor,
    ) -> Result<()>;

    /// Forward and backward of a dense net on one batch of `p.rows` samples `x`
    /// (`[rows, inputs]`) with targets `target` (`[rows, outputs]`): every layer's
    /// weight and bias gradients into `grads` (added to them when `p.accumulate`), and
    /// the batch's squared errors and bit fails into `metrics` when given. Defined by
    /// [`backprop_per_layer`](crate::nn::dense::backprop_per_layer), the default; a
    /// backend may fuse it (then `work` may be left unwritten). Checked with
    /// [`DenseBackprop::check`](crate::nn::dense::DenseBackprop::check).
    #[allow(clippy::too_many_arguments)]
    fn dense_backprop(
        &self,
        p: crate::nn::dense::DenseBackprop,
        layers: &[crate::nn::dense::DenseLayerRef<'_, Self::Tensor>],
        x: &Self::Tensor,
        target: &Self::Tensor,
        work: crate::nn::dense::DenseWork<'_, Self::Tensor>,
        grads: &mut [crate::nn::dense::DenseGrads<'_, Self::Tensor>],
        metrics: Option<&mut Self::Metrics>,
    ) -> Result<()> {
        crate::nn::dense::backprop_per_layer(self, p, layers, x, target, work, grads, metrics)
    }

    /// Forward of a shortcut network on `p.rows` samples `x` (`[rows, inputs]`): the
    /// value matrix `values` (`[rows, width]`: the inputs, the bias column and every
    /// hidden neuron), every unit's (clamped) sum into `sums` (`[rows, units]`) and the
    /// outputs into `y` (`[rows, outputs]`); see [`crate::nn::shortcut`]. Checked with
    /// [`ShortcutPass::check_forward`](crate::nn::shortcut::ShortcutPass::check_forward).
    #[allow(clippy::too_many_arguments)]
    fn shortcut_forward(
        &self,
        p: crate::nn::shortcut::ShortcutPass,
        units: &[crate::nn::shortcut::ShortcutUnit],
        weights: &Self::Tensor,
        x: &Self::Tensor,
        values: &mut Self::Tensor,
        sums: &mut Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;

    /// Backward of a shortcut network from the output gradient `dy` (`[rows,
    /// outputs]`) and the forward's `values` and `sums`: every unit's `delta` into
    /// `deltas` (`[rows, units]`) and the weight gradient into `grad` (added to it
    /// when `accumulate`); see [`crate::nn::shortcut`]. Checked with
    /// [`ShortcutPass::check_backward`](crate::nn::shortcut::ShortcutPass::check_backward).
    #[allow(clippy::too_many_arguments)]
    fn shortcut_backward(
        &self,
        p: crate::nn::shortcut::ShortcutPass,
        units: &[crate::nn::shortcut::ShortcutUnit],
        derivative: Derivative,
        accumulate: bool,
        weights: &Self::Tensor,
        values: &Self::Tensor,
        sums: &Self::Tensor,
        dy: &Self::Tensor,
        deltas: &mut Self::Tensor,
        grad: &mut Self::Tensor,
    ) -> Result<()>;

    /// One Adam(W) step number `t` (from 1) with moments `m` and `v`.
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        &self,
        w: &mut Self::Tensor,
        g: &Self::Tensor,
        m: &mut Self::Tensor,
        v: &mut Self::Tensor,
        t: u32,
        p: AdamParams,
    ) -> Result<()>;
}

/// Checks each named length against its expected one: the first that differs is a
/// [`TesseraError::ShapeMismatch`] naming it.
pub(crate) fn check_all<const N: usize>(
    names: [&'static str; N],
    lens: [usize; N],
    expected: [usize; N],
) -> Result<()> {
    for ((what, got), expected) in names.into_iter().zip(lens).zip(expected) {
        if got != expected {
            return Err(TesseraError::ShapeMismatch {
                what,
                got,
                expected,
            });
        }
    }
    Ok(())
}

/// Returns an error unless every length in `lens` equals `expected`.
pub fn check_lens(what: &'static str, lens: &[usize], expected: usize) -> Result<()> {
    match lens.iter().find(|&&l| l != expected) {
        Some(&got) => Err(TesseraError::ShapeMismatch {
            what,
            got,
            expected,
        }),
        None => Ok(()),
    }
}
