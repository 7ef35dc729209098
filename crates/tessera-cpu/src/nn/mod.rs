//! The CPU neural kernels: GEMM from `crate::linalg` (tessera's AVX-512 kernel for
//! large products, `matrixmultiply` otherwise), element-wise kernels under pulp's SIMD
//! dispatch.

mod activation;
mod bf16;
mod cascade;
mod dense;
mod gemv;
mod loss;
mod shortcut;
mod update;

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::error::{Result, TesseraError};

use crate::dispatch::{Kernel, SimdLevel};
use tessera_tensor::nn::cascade::{CandidateEpoch, CandidateUnit};
use tessera_tensor::nn::dense::{DenseBackprop, DenseGrads, DenseLayerRef, DenseWork};
use tessera_tensor::nn::shortcut::{ShortcutPass, ShortcutUnit};
use tessera_tensor::nn::{
    Activation, AdamParams, Derivative, ErrorSums, Gemm, Loss, NnKernels, QuickpropParams,
    RpropParams, SarpropParams, SgdParams, check_lens,
};

pub use activation::{activate, candidate_derivative, derivative, fann_derivative, tanh};
pub use bf16::{Bf16Mlp, bf16_bits};

/// Element-wise work below this many elements stays on the calling thread.
const PARALLEL_MIN_LEN: usize = 1 << 16;

/// The CPU implementation of [`NnKernels`]; tensors are `Vec<f32>`.
#[derive(Debug, Clone, Copy)]
pub struct CpuNn {
    arch: Arch,
}

impl Default for CpuNn {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuNn {
    /// Kernels dispatched to the best SIMD level of this CPU.
    pub fn new() -> Self {
        Self {
            arch: crate::dispatch::arch(),
        }
    }

    /// Kernels without SIMD (pulp's scalar level): the baseline the SIMD paths are
    /// measured and tested against.
    pub fn new_scalar() -> Self {
        Self { arch: Arch::Scalar }
    }

    /// Kernels pinned to `level`; an error if this CPU lacks it. The fused pass of
    /// small nets runs at AVX2 at most (see `docs/benchmarks.md`).
    pub fn with_level(level: SimdLevel) -> Result<Self> {
        Ok(Self {
            arch: level.check_available()?.arch(),
        })
    }

    /// The level the kernels are dispatched to.
    pub fn level(&self) -> SimdLevel {
        SimdLevel::of(self.arch)
    }

    /// Runs `kernel((out, inputs, extra))` on matching chunks of `out` and `inputs`
    /// (same length), in parallel for large tensors, under SIMD dispatch.
    fn map<const N: usize, E: Copy + Send + Sync>(
        &self,
        out: &mut [f32],
        inputs: [&[f32]; N],
        extra: E,
        kernel: impl Fn((&mut [f32], [&[f32]; N], E)) + Copy + Send + Sync,
    ) {
        let arch = self.arch;
        if out.len() < PARALLEL_MIN_LEN {
            arch.dispatch(Kernel(kernel, (out, inputs, extra)));
            return;
        }
        const CHUNK: usize = 1 << 14;
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
            let start = c * CHUNK;
            let parts = inputs.map(|x| &x[start..start + o.len()]);
            arch.dispatch(Kernel(kernel, (o, parts, extra)));
        });
    }
}

fn no_gradient(activation: Activation) -> TesseraError {
    TesseraError::InvalidArgument {
        what: "activation without a gradient",
        value: activation.code() as f64,
        expected: "a differentiable activation (thresholds are inference-only)",
    }
}

impl NnKernels for CpuNn {
    type Tensor = Vec<f32>;
    type Metrics = ErrorSums;

    fn tensor(&self, data: &[f32]) -> Result<Vec<f32>> {
        Ok(data.to_vec())
    }

    fn zeros(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    fn write(&self, t: &mut Vec<f32>, data: &[f32]) -> Result<()> {
        check_lens("write", &[data.len()], t.len())?;
        t.copy_from_slice(data);
        Ok(())
    }

    fn read(&self, t: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(t.clone())
    }

    fn len(&self, t: &Vec<f32>) -> usize {
        t.len()
    }

    fn gemm(&self, g: Gemm, a: &Vec<f32>, b: &Vec<f32>, c: &mut Vec<f32>) -> Result<()> {
        g.check(a.len(), b.len(), c.len())?;
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        if g.m == 1 {
            // Batch 1: a packed GEMM would repack all of B on every call; a GEMV
            // streams it once. op(A) is the row `a` in either layout.
            gemv::gemv(self.arch, g, a, b, c);
            return Ok(());
        }
        // Row and column strides of op(A) and op(B): a transpose is a stride swap.
        let a_strides = if g.trans_a { (1, g.m) } else { (g.k, 1) };
        let b_strides = if g.trans_b { (1, g.k) } else { (g.n, 1) };
        crate::linalg::gemm(
            self.arch,
            (g.m, g.k, g.n),
            g.alpha,
            a,
            a_strides,
            b,
            b_strides,
            g.beta,
            c,
        );
        Ok(())
    }

    fn bias_activation(
        &self,
        z: &mut Vec<f32>,
        bias: &Vec<f32>,
        y: &mut Vec<f32>,
        rows: usize,
        cols: usize,
        activation: Activation,
        steepness: f32,
    ) -> Result<()> {
        check_lens("bias_activation z, y", &[z.len(), y.len()], rows * cols)?;
        check_lens("bias_activation bias", &[bias.len()], cols)?;
        if cols == 0 {
            return Ok(());
        }
        let arch = self.arch;
        let rows_of = |z: &mut [f32], y: &mut [f32]| {
            let args = (z, y, &bias[..], activation, steepness);
            arch.dispatch(activation::BiasActivationRows(args))
        };
        if z.len() < PARALLEL_MIN_LEN {
            rows_of(z, y);
        } else {
            // Blocks of whole rows, about 16 Ki elements each.
            let block = cols * (1usize << 14).div_ceil(cols);
            z.par_chunks_mut(block)
                .zip(y.par_chunks_mut(block))
                .for_each(|(zb, yb)| rows_of(zb, yb));
        }
        Ok(())
    }

    fn activation_backward(
        &self,
        z: &Vec<f32>,
        y: &Vec<f32>,
        dy: &Vec<f32>,
        dz: &mut Vec<f32>,
        cols: usize,
        activation: Activation,
        steepness: f32,
        derivative: Derivative,
    ) -> Result<()> {
        check_lens(
            "activation_backward",
            &[y.len(), dy.len(), dz.len()],
            z.len(),
        )?;
        if cols == 0 || !z.len().is_multiple_of(cols) {
            return Err(TesseraError::ShapeMismatch {
                what: "activation_backward cols",
                got: cols,
                expected: z.len(),
            });
        }
        if !activation.has_gradient() {
            return Err(no_gradient(activation));
        }
        let s = steepness;
        if activation.is_rowwise() {
            let args = (&mut dz[..], &y[..], &dy[..], cols, s);
            self.arch.dispatch(activation::SoftmaxBackwardRows(args));
        } else {
            let fann = derivative.uses_fann_form(activation);
            self.map(
                dz,
                [z, y, dy],
                (activation, s, fann),
                activation::backward_slice,
            );
        }
        Ok(())
    }

    fn output_gradient(
        &self,
        y: &Vec<f32>,
        target: &Vec<f32>,
        grad: &mut Vec<f32>,
        loss: Loss,
        output: Activation,
        steepness: f32,
        scale: f32,
    ) -> Result<()> {
        check_lens("output_gradient", &[target.len(), grad.len()], y.len())?;
        let h = loss.diff_scale(output);
        let extra = (loss, h, scale, steepness);
        self.map(grad, [y, target], extra, loss::output_gradient);
        Ok(())
    }

    fn metrics(&self) -> Result<ErrorSums> {
        Ok(ErrorSums::default())
    }

    fn accumulate_error_metrics(
        &self,
        y: &Vec<f32>,
        target: &Vec<f32>,
        loss: Loss,
        output: Activation,
        bit_fail_limit: f32,
        acc: &mut ErrorSums,
    ) -> Result<()> {
        check_lens("error_metrics", &[target.len()], y.len())?;
        let h = loss.diff_scale(output);
        let args = (&y[..], &target[..], h, bit_fail_limit);
        let (sse, fails) = self.arch.dispatch(loss::ErrorMetrics(args));
        acc.sse += sse;
        acc.bit_fails += fails;
        Ok(())
    }

    fn take_metrics(&self, acc: &mut ErrorSums) -> Result<(f64, u64)> {
        Ok(acc.take())
    }

    fn column_sums(
        &self,
        m: &Vec<f32>,
        out: &mut Vec<f32>,
        rows: usize,
        cols: usize,
        beta: f32,
    ) -> Result<()> {
        check_lens("column_sums m", &[m.len()], rows * cols)?;
        check_lens("column_sums out", &[out.len()], cols)?;
        let args = (&mut out[..], &m[..], cols, beta);
        self.arch.dispatch(loss::ColumnSums(args));
        Ok(())
    }

    fn sgd_update(
        &self,
        w: &mut Vec<f32>,
        g: &Vec<f32>,
        v: &mut Vec<f32>,
        p: SgdParams,
    ) -> Result<()> {
        check_lens("sgd_update", &[g.len(), v.len()], w.len())?;
        self.arch
            .dispatch(Kernel(update::sgd, (&mut w[..], &g[..], &mut v[..], p)));
        Ok(())
    }

    fn rprop_update(
        &self,
        w: &mut Vec<f32>,
        g: &Vec<f32>,
        prev_g: &mut Vec<f32>,
        step: &mut Vec<f32>,
        p: RpropParams,
    ) -> Result<()> {
        check_lens(
            "rprop_update",
            &[g.len(), prev_g.len(), step.len()],
            w.len(),
        )?;
        let args = (&mut w[..], &g[..], &mut prev_g[..], &mut step[..], p);
        self.arch.dispatch(Kernel(update::rprop, args));
        Ok(())
    }

    fn quickprop_update(
        &self,
        w: &mut Vec<f32>,
        g: &Vec<f32>,
        prev_slope: &mut Vec<f32>,
        prev_step: &mut Vec<f32>,
        p: QuickpropParams,
    ) -> Result<()> {
        check_lens(
            "quickprop_update",
            &[g.len(), prev_slope.len(), prev_step.len()],
            w.len(),
        )?;
        let args = (
            &mut w[..],
            &g[..],
            &mut prev_slope[..],
            &mut prev_step[..],
            p,
        );
        self.arch.dispatch(Kernel(update::quickprop, args));
        Ok(())
    }

    fn sarprop_update(
        &self,
        w: &mut Vec<f32>,
        g: &Vec<f32>,
        prev_slope: &mut Vec<f32>,
        step: &mut Vec<f32>,
        p: SarpropParams,
    ) -> Result<()> {
        check_lens(
            "sarprop_update",
            &[g.len(), prev_slope.len(), step.len()],
            w.len(),
        )?;
        let args = (&mut w[..], &g[..], &mut prev_slope[..], &mut step[..], p);
        self.arch.dispatch(Kernel(update::sarprop, args));
        Ok(())
    }

    fn adam_update(
        &self,
        w: &mut Vec<f32>,
        g: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        t: u32,
        p: AdamParams,
    ) -> Result<()> {
        check_lens("adam_update", &[g.len(), m.len(), v.len()], w.len())?;
        let c1 = 1.0 - p.beta1.powi(t as i32);
        let c2 = 1.0 - p.beta2.powi(t as i32);
        let args = (&mut w[..], &g[..], &mut m[..], &mut v[..], [c1, c2], p);
        self.arch.dispatch(Kernel(update::adam, args));
        Ok(())
    }

    fn dense_backprop(
        &self,
        p: DenseBackprop,
        layers: &[DenseLayerRef<'_, Vec<f32>>],
        x: &Vec<f32>,
        target: &Vec<f32>,
        work: DenseWork<'_, Vec<f32>>,
        grads: &mut [DenseGrads<'_, Vec<f32>>],
        metrics: Option<&mut ErrorSums>,
    ) -> Result<()> {
        if !dense::suits(layers) {
            return tessera_tensor::nn::dense::backprop_per_layer(
                self, p, layers, x, target, work, grads, metrics,
            );
        }
        p.check(layers, (x.len(), target.len()), grads, Vec::len)?;
        let _span =
            tracing::trace_span!("cpu_dense_backprop", rows = p.rows, layers = layers.len())
                .entered();
        dense::backprop(self.arch, p, layers, x, target, grads, metrics);
        Ok(())
    }

    fn candidate_epoch(
        &self,
        epoch: CandidateEpoch,
        units: &[CandidateUnit],
        values: &Vec<f32>,
        residuals: &Vec<f32>,
        weights_in: &Vec<f32>,
        weights_out: &Vec<f32>,
        grad_in: &mut Vec<f32>,
        grad_out: &mut Vec<f32>,
        scores: &mut Vec<f32>,
    ) -> Result<()> {
        epoch.check(
            units,
            [
                values.len(),
                residuals.len(),
                weights_in.len(),
                weights_out.len(),
                grad_in.len(),
                grad_out.len(),
                scores.len(),
            ],
        )?;
        let _span = tracing::trace_span!(
            "cpu_candidate_epoch",
            rows = epoch.rows,
            candidates = epoch.candidates
        )
        .entered();
        cascade::candidate_epoch(
            self.arch,
            epoch,
            units,
            values,
            residuals,
            weights_in,
            weights_out,
            grad_in,
            grad_out,
            scores,
        );
        Ok(())
    }

    fn shortcut_forward(
        &self,
        p: ShortcutPass,
        units: &[ShortcutUnit],
        weights: &Vec<f32>,
        x: &Vec<f32>,
        values: &mut Vec<f32>,
        sums: &mut Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        let offsets = p.check_forward(
            units,
            [weights.len(), x.len(), values.len(), sums.len(), y.len()],
        )?;
        let _span =
            tracing::trace_span!("cpu_shortcut_forward", rows = p.rows, units = units.len())
                .entered();
        shortcut::forward(self.arch, p, units, &offsets, weights, x, values, sums, y);
        Ok(())
    }

    fn shortcut_backward(
        &self,
        p: ShortcutPass,
        units: &[ShortcutUnit],
        derivative: Derivative,
        accumulate: bool,
        weights: &Vec<f32>,
        values: &Vec<f32>,
        sums: &Vec<f32>,
        dy: &Vec<f32>,
        deltas: &mut Vec<f32>,
        grad: &mut Vec<f32>,
    ) -> Result<()> {
        let offsets = p.check_backward(
            units,
            [
                weights.len(),
                values.len(),
                sums.len(),
                dy.len(),
                deltas.len(),
                grad.len(),
            ],
        )?;
        let _span =
            tracing::trace_span!("cpu_shortcut_backward", rows = p.rows, units = units.len())
                .entered();
        shortcut::backward(
            self.arch,
            p,
            units,
            &offsets,
            (derivative, accumulate),
            weights,
            [values, sums, dy],
            deltas,
            grad,
        );
        Ok(())
    }
}
