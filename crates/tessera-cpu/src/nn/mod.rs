//! The CPU neural kernels: GEMM from `matrixmultiply` (packed, cache-blocked,
//! AVX2/FMA or NEON, threaded), element-wise kernels under pulp's SIMD dispatch.

mod activation;
mod gemv;

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::{
    Activation, AdamParams, Gemm, Loss, NnKernels, QuickpropParams, RpropParams, SarpropParams,
    SgdParams, check_lens,
};
use tessera_tensor::rng::noise_unit;

pub use activation::{activate, derivative, tanh};

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
        Self { arch: Arch::new() }
    }

    /// Kernels without SIMD (pulp's scalar level): the baseline the SIMD paths are
    /// measured and tested against.
    pub fn new_scalar() -> Self {
        Self { arch: Arch::Scalar }
    }

    /// Runs `f` on matching chunks of `out` and `inputs` (same length), in parallel
    /// for large tensors, under SIMD dispatch.
    fn map<const N: usize>(
        &self,
        out: &mut [f32],
        inputs: [&[f32]; N],
        f: impl Fn(&mut [f32], [&[f32]; N]) + Sync + Send,
    ) {
        let arch = self.arch;
        if out.len() < PARALLEL_MIN_LEN {
            arch.dispatch(|| f(out, inputs));
            return;
        }
        const CHUNK: usize = 1 << 14;
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
            let start = c * CHUNK;
            let parts = inputs.map(|x| &x[start..start + o.len()]);
            arch.dispatch(|| f(o, parts));
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

fn fann_tanh_error(diff: f32) -> f32 {
    if diff < -0.9999999 {
        -17.0
    } else if diff > 0.9999999 {
        17.0
    } else {
        ((1.0 + diff) / (1.0 - diff)).ln()
    }
}

impl NnKernels for CpuNn {
    type Tensor = Vec<f32>;

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
        let (rsa, csa) = if g.trans_a {
            (1, g.m as isize)
        } else {
            (g.k as isize, 1)
        };
        let (rsb, csb) = if g.trans_b {
            (1, g.k as isize)
        } else {
            (g.n as isize, 1)
        };
        // SAFETY: the lengths were checked against m, n, k above, so every index the
        // strides reach lies inside `a`, `b` and `c`, and `c` does not alias them.
        unsafe {
            matrixmultiply::sgemm(
                g.m,
                g.k,
                g.n,
                g.alpha,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                g.beta,
                c.as_mut_ptr(),
                g.n as isize,
                1,
            );
        }
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
        let arch = self.arch;
        let row_op = |zr: &mut [f32], yr: &mut [f32]| {
            for (zv, b) in zr.iter_mut().zip(bias) {
                *zv += b;
            }
            if activation.is_rowwise() {
                let max = zr
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| m.max(steepness * v));
                let mut sum = 0.0;
                for (yv, zv) in yr.iter_mut().zip(zr.iter()) {
                    *yv = (steepness * zv - max).exp();
                    sum += *yv;
                }
                let inv = 1.0 / sum;
                yr.iter_mut().for_each(|v| *v *= inv);
            } else {
                activation::activate_slice(activation, steepness, zr, yr);
            }
        };
        if cols == 0 {
            return Ok(());
        }
        if z.len() < PARALLEL_MIN_LEN {
            arch.dispatch(|| {
                z.chunks_mut(cols)
                    .zip(y.chunks_mut(cols))
                    .for_each(|(zr, yr)| row_op(zr, yr))
            });
        } else {
            z.par_chunks_mut(cols)
                .zip(y.par_chunks_mut(cols))
                .for_each(|(zr, yr)| arch.dispatch(|| row_op(zr, yr)));
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
            self.arch.dispatch(|| {
                for (((dzr, yr), dyr), _) in dz
                    .chunks_mut(cols)
                    .zip(y.chunks(cols))
                    .zip(dy.chunks(cols))
                    .zip(z.chunks(cols))
                {
                    let dot: f32 = dyr.iter().zip(yr).map(|(a, b)| a * b).sum();
                    for ((d, &yv), &g) in dzr.iter_mut().zip(yr).zip(dyr) {
                        *d = s * yv * (g - dot);
                    }
                }
            });
        } else {
            self.map(dz, [z, dy], |out, [z, dy]| {
                activation::backward_slice(activation, s, z, dy, out);
            });
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
        self.map(grad, [y, target], |out, [y, t]| {
            for ((g, &yv), &tv) in out.iter_mut().zip(y).zip(t) {
                *g = match loss {
                    Loss::MeanSquared => scale * (yv - tv),
                    Loss::Fann { tanh } => {
                        let diff = (tv - yv) * h;
                        -scale * if tanh { fann_tanh_error(diff) } else { diff }
                    }
                    Loss::SoftmaxCrossEntropy => scale * steepness * (yv - tv),
                };
            }
        });
        Ok(())
    }

    fn error_metrics(
        &self,
        y: &Vec<f32>,
        target: &Vec<f32>,
        loss: Loss,
        output: Activation,
        bit_fail_limit: f32,
    ) -> Result<(f64, u64)> {
        check_lens("error_metrics", &[target.len()], y.len())?;
        let h = loss.diff_scale(output);
        Ok(self.arch.dispatch(|| {
            y.iter()
                .zip(target)
                .fold((0.0f64, 0u64), |(sse, fails), (&yv, &tv)| {
                    let diff = (tv - yv) * h;
                    (
                        sse + (diff * diff) as f64,
                        fails + u64::from(diff.abs() >= bit_fail_limit),
                    )
                })
        }))
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
        self.arch.dispatch(|| {
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
        });
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
        self.arch.dispatch(|| {
            for ((wi, &gi), vi) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                *vi = p.momentum * *vi - p.learning_rate * (gi + p.weight_decay * *wi);
                *wi += *vi;
            }
        });
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
        self.arch.dispatch(|| {
            for (((wi, &gi), pg), st) in w
                .iter_mut()
                .zip(g)
                .zip(prev_g.iter_mut())
                .zip(step.iter_mut())
            {
                let prev_step = st.max(0.0001);
                let mut gi = gi;
                let next = if *pg * gi >= 0.0 {
                    (prev_step * p.increase_factor).min(p.delta_max)
                } else {
                    gi = 0.0;
                    (prev_step * p.decrease_factor).max(p.delta_min)
                };
                // FANN moves every weight whose gradient is not positive up.
                if gi > 0.0 {
                    *wi = (*wi - next).max(-1500.0);
                } else {
                    *wi = (*wi + next).min(1500.0);
                }
                *st = next;
                *pg = gi;
            }
        });
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
        let shrink = p.mu / (1.0 + p.mu);
        self.arch.dispatch(|| {
            for (((wi, &gi), ps), st) in w
                .iter_mut()
                .zip(g)
                .zip(prev_slope.iter_mut())
                .zip(prev_step.iter_mut())
            {
                let slope = -gi + p.decay * *wi;
                let (step, prev) = (*st, *ps);
                let mut next = 0.0;
                if step > 0.001 {
                    if slope > 0.0 {
                        next += p.epsilon * slope;
                    }
                    next += if slope > shrink * prev {
                        p.mu * step
                    } else {
                        step * slope / (prev - slope)
                    };
                } else if step < -0.001 {
                    if slope < 0.0 {
                        next += p.epsilon * slope;
                    }
                    next += if slope < shrink * prev {
                        p.mu * step
                    } else {
                        step * slope / (prev - slope)
                    };
                } else {
                    next += p.epsilon * slope;
                }
                *st = next;
                *wi = (*wi + next).clamp(-1500.0, 1500.0);
                *ps = slope;
            }
        });
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
        self.arch.dispatch(|| {
            for (i, (((wi, &gi), ps), st)) in w
                .iter_mut()
                .zip(g)
                .zip(prev_slope.iter_mut())
                .zip(step.iter_mut())
                .enumerate()
            {
                let prev_step = st.max(p.delta_min);
                let mut slope = gi - p.weight_decay * *wi;
                let same_sign = *ps * slope;
                let next = if same_sign > 0.0 {
                    let next = (prev_step * p.increase_factor).min(p.delta_max);
                    *wi += if slope < 0.0 { next } else { -next };
                    next
                } else if same_sign < 0.0 {
                    slope = 0.0;
                    if prev_step < p.step_threshold {
                        let u = noise_unit(p.noise_seed, i as u32);
                        prev_step * p.decrease_factor + p.noise_scale * u
                    } else {
                        (prev_step * p.decrease_factor).max(p.delta_min)
                    }
                } else {
                    *wi += if slope < 0.0 { prev_step } else { -prev_step };
                    prev_step
                };
                *st = next;
                *ps = slope;
            }
        });
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
        self.arch.dispatch(|| {
            for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let gi = if p.decoupled {
                    gi
                } else {
                    gi + p.weight_decay * *wi
                };
                *mi = p.beta1 * *mi + (1.0 - p.beta1) * gi;
                *vi = p.beta2 * *vi + (1.0 - p.beta2) * gi * gi;
                let update = (*mi / c1) / ((*vi / c2).sqrt() + p.epsilon);
                *wi -= p.learning_rate
                    * (update
                        + if p.decoupled {
                            p.weight_decay * *wi
                        } else {
                            0.0
                        });
            }
        });
        Ok(())
    }
}
