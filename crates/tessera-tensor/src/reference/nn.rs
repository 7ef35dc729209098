//! f64 scalar reference of the neural kernels: each formula of `crate::nn` written
//! as plainly as possible.

use crate::error::{Result, TesseraError};
use crate::nn::cascade::{
    CandidateEpoch, CandidateUnit, candidate_derivative, clamp_candidate_sum,
};
use crate::nn::shortcut::{ShortcutPass, ShortcutUnit, shortcut_derivative, shortcut_sum};
use crate::nn::{
    Activation, AdamParams, Derivative, ErrorSums, Gemm, Loss, NnKernels, QuickpropParams,
    RpropParams, SarpropParams, SgdParams, check_lens, softmax_row,
};

/// The f64 reference backend: tensors are `Vec<f64>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceNn;

/// FANN's tanh error mapping of a (possibly halved) difference.
pub fn fann_tanh_error(diff: f64) -> f64 {
    if diff < -0.9999999 {
        -17.0
    } else if diff > 0.9999999 {
        17.0
    } else {
        ((1.0 + diff) / (1.0 - diff)).ln()
    }
}

fn no_gradient(activation: Activation) -> TesseraError {
    TesseraError::InvalidArgument {
        what: "activation without a gradient",
        value: activation.code() as f64,
        expected: "a differentiable activation (thresholds are inference-only)",
    }
}

impl NnKernels for ReferenceNn {
    type Tensor = Vec<f64>;
    type Metrics = ErrorSums;

    fn tensor(&self, data: &[f32]) -> Result<Vec<f64>> {
        Ok(data.iter().map(|&v| v as f64).collect())
    }

    fn zeros(&self, len: usize) -> Result<Vec<f64>> {
        Ok(vec![0.0; len])
    }

    fn write(&self, t: &mut Vec<f64>, data: &[f32]) -> Result<()> {
        check_lens("write", &[data.len()], t.len())?;
        *t = self.tensor(data)?;
        Ok(())
    }

    fn read(&self, t: &Vec<f64>) -> Result<Vec<f32>> {
        Ok(t.iter().map(|&v| v as f32).collect())
    }

    fn len(&self, t: &Vec<f64>) -> usize {
        t.len()
    }

    fn gemm(&self, g: Gemm, a: &Vec<f64>, b: &Vec<f64>, c: &mut Vec<f64>) -> Result<()> {
        g.check(a.len(), b.len(), c.len())?;
        let at = |i: usize, p: usize| {
            if g.trans_a {
                a[p * g.m + i]
            } else {
                a[i * g.k + p]
            }
        };
        let bt = |p: usize, j: usize| {
            if g.trans_b {
                b[j * g.k + p]
            } else {
                b[p * g.n + j]
            }
        };
        for i in 0..g.m {
            for j in 0..g.n {
                let dot: f64 = (0..g.k).map(|p| at(i, p) * bt(p, j)).sum();
                let old = if g.beta == 0.0 {
                    0.0
                } else {
                    g.beta as f64 * c[i * g.n + j]
                };
                c[i * g.n + j] = g.alpha as f64 * dot + old;
            }
        }
        Ok(())
    }

    fn bias_activation(
        &self,
        z: &mut Vec<f64>,
        bias: &Vec<f64>,
        y: &mut Vec<f64>,
        rows: usize,
        cols: usize,
        activation: Activation,
        steepness: f32,
    ) -> Result<()> {
        check_lens("bias_activation z, y", &[z.len(), y.len()], rows * cols)?;
        check_lens("bias_activation bias", &[bias.len()], cols)?;
        let s = steepness as f64;
        for r in 0..rows {
            let row = r * cols..(r + 1) * cols;
            for (zv, b) in z[row.clone()].iter_mut().zip(bias) {
                *zv += b;
            }
            if activation.is_rowwise() {
                let u: Vec<f64> = z[row.clone()].iter().map(|v| s * v).collect();
                y[row].copy_from_slice(&softmax_row(&u));
            } else {
                for (yv, zv) in y[row.clone()].iter_mut().zip(&z[row]) {
                    *yv = activation.apply(s * zv);
                }
            }
        }
        Ok(())
    }

    fn activation_backward(
        &self,
        z: &Vec<f64>,
        y: &Vec<f64>,
        dy: &Vec<f64>,
        dz: &mut Vec<f64>,
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
        let s = steepness as f64;
        if activation.is_rowwise() {
            for r in 0..z.len() / cols {
                let row = r * cols..(r + 1) * cols;
                let dot: f64 = dy[row.clone()]
                    .iter()
                    .zip(&y[row.clone()])
                    .map(|(a, b)| a * b)
                    .sum();
                for i in row {
                    dz[i] = s * y[i] * (dy[i] - dot);
                }
            }
        } else {
            for i in 0..z.len() {
                let exact = || s * activation.derivative(s * z[i]);
                dz[i] = dy[i] * derivative.at(activation, s, y[i], s * z[i], exact);
            }
        }
        Ok(())
    }

    fn output_gradient(
        &self,
        y: &Vec<f64>,
        target: &Vec<f64>,
        grad: &mut Vec<f64>,
        loss: Loss,
        output: Activation,
        steepness: f32,
        scale: f32,
    ) -> Result<()> {
        check_lens("output_gradient", &[target.len(), grad.len()], y.len())?;
        let (scale, h) = (scale as f64, loss.diff_scale(output) as f64);
        for i in 0..y.len() {
            grad[i] = match loss {
                Loss::MeanSquared => scale * (y[i] - target[i]),
                Loss::Fann { tanh } => {
                    let diff = (target[i] - y[i]) * h;
                    -scale * if tanh { fann_tanh_error(diff) } else { diff }
                }
                Loss::SoftmaxCrossEntropy => scale * steepness as f64 * (y[i] - target[i]),
            };
        }
        Ok(())
    }

    fn metrics(&self) -> Result<ErrorSums> {
        Ok(ErrorSums::default())
    }

    fn accumulate_error_metrics(
        &self,
        y: &Vec<f64>,
        target: &Vec<f64>,
        loss: Loss,
        output: Activation,
        bit_fail_limit: f32,
        acc: &mut ErrorSums,
    ) -> Result<()> {
        check_lens("error_metrics", &[target.len()], y.len())?;
        let h = loss.diff_scale(output) as f64;
        for (yv, tv) in y.iter().zip(target) {
            let diff = (tv - yv) * h;
            acc.sse += diff * diff;
            acc.bit_fails += u64::from(diff.abs() >= bit_fail_limit as f64);
        }
        Ok(())
    }

    fn take_metrics(&self, acc: &mut ErrorSums) -> Result<(f64, u64)> {
        Ok(acc.take())
    }

    fn column_sums(
        &self,
        m: &Vec<f64>,
        out: &mut Vec<f64>,
        rows: usize,
        cols: usize,
        beta: f32,
    ) -> Result<()> {
        check_lens("column_sums m", &[m.len()], rows * cols)?;
        check_lens("column_sums out", &[out.len()], cols)?;
        for (j, o) in out.iter_mut().enumerate() {
            let sum: f64 = (0..rows).map(|i| m[i * cols + j]).sum();
            *o = if beta == 0.0 {
                sum
            } else {
                beta as f64 * *o + sum
            };
        }
        Ok(())
    }

    fn sgd_update(
        &self,
        w: &mut Vec<f64>,
        g: &Vec<f64>,
        v: &mut Vec<f64>,
        p: SgdParams,
    ) -> Result<()> {
        check_lens("sgd_update", &[g.len(), v.len()], w.len())?;
        let (lr, mu, wd) = (
            p.learning_rate as f64,
            p.momentum as f64,
            p.weight_decay as f64,
        );
        for i in 0..w.len() {
            v[i] = mu * v[i] - lr * (g[i] + wd * w[i]);
            w[i] += v[i];
        }
        Ok(())
    }

    fn rprop_update(
        &self,
        w: &mut Vec<f64>,
        g: &Vec<f64>,
        prev_g: &mut Vec<f64>,
        step: &mut Vec<f64>,
        p: RpropParams,
    ) -> Result<()> {
        check_lens(
            "rprop_update",
            &[g.len(), prev_g.len(), step.len()],
            w.len(),
        )?;
        for i in 0..w.len() {
            let prev_step = step[i].max(0.0001);
            let mut gi = g[i];
            let next = if prev_g[i] * gi >= 0.0 {
                (prev_step * p.increase_factor as f64).min(p.delta_max as f64)
            } else {
                gi = 0.0;
                (prev_step * p.decrease_factor as f64).max(p.delta_min as f64)
            };
            // FANN moves every weight whose gradient is not positive up, zeroed ones too.
            if gi > 0.0 {
                w[i] = (w[i] - next).max(-1500.0);
            } else {
                w[i] = (w[i] + next).min(1500.0);
            }
            step[i] = next;
            prev_g[i] = gi;
        }
        Ok(())
    }

    fn quickprop_update(
        &self,
        w: &mut Vec<f64>,
        g: &Vec<f64>,
        prev_slope: &mut Vec<f64>,
        prev_step: &mut Vec<f64>,
        p: QuickpropParams,
    ) -> Result<()> {
        check_lens(
            "quickprop_update",
            &[g.len(), prev_slope.len(), prev_step.len()],
            w.len(),
        )?;
        let (eps, decay, mu) = (p.epsilon as f64, p.decay as f64, p.mu as f64);
        let shrink = mu / (1.0 + mu);
        for i in 0..w.len() {
            // FANN's slope is the negative gradient, plus decay.
            let slope = -g[i] + decay * w[i];
            let (step, prev) = (prev_step[i], prev_slope[i]);
            let mut next = 0.0;
            if step > 0.001 {
                if slope > 0.0 {
                    next += eps * slope;
                }
                next += if slope > shrink * prev {
                    mu * step
                } else {
                    step * slope / (prev - slope)
                };
            } else if step < -0.001 {
                if slope < 0.0 {
                    next += eps * slope;
                }
                next += if slope < shrink * prev {
                    mu * step
                } else {
                    step * slope / (prev - slope)
                };
            } else {
                next += eps * slope;
            }
            prev_step[i] = next;
            w[i] = (w[i] + next).clamp(-1500.0, 1500.0);
            prev_slope[i] = slope;
        }
        Ok(())
    }

    fn sarprop_update(
        &self,
        w: &mut Vec<f64>,
        g: &Vec<f64>,
        prev_slope: &mut Vec<f64>,
        step: &mut Vec<f64>,
        p: SarpropParams,
    ) -> Result<()> {
        check_lens(
            "sarprop_update",
            &[g.len(), prev_slope.len(), step.len()],
            w.len(),
        )?;
        let (inc, dec) = (p.increase_factor as f64, p.decrease_factor as f64);
        let (dmin, dmax) = (p.delta_min as f64, p.delta_max as f64);
        for i in 0..w.len() {
            let prev_step = step[i].max(dmin);
            let mut slope = g[i] - p.weight_decay as f64 * w[i];
            let same_sign = prev_slope[i] * slope;
            let next = if same_sign > 0.0 {
                let next = (prev_step * inc).min(dmax);
                w[i] += if slope < 0.0 { next } else { -next };
                next
            } else if same_sign < 0.0 {
                slope = 0.0;
                if prev_step < p.step_threshold as f64 {
                    let u = crate::rng::noise_unit(p.noise_seed, i as u32) as f64;
                    prev_step * dec + p.noise_scale as f64 * u
                } else {
                    (prev_step * dec).max(dmin)
                }
            } else {
                w[i] += if slope < 0.0 { prev_step } else { -prev_step };
                prev_step
            };
            step[i] = next;
            prev_slope[i] = slope;
        }
        Ok(())
    }

    fn adam_update(
        &self,
        w: &mut Vec<f64>,
        g: &Vec<f64>,
        m: &mut Vec<f64>,
        v: &mut Vec<f64>,
        t: u32,
        p: AdamParams,
    ) -> Result<()> {
        check_lens("adam_update", &[g.len(), m.len(), v.len()], w.len())?;
        let (b1, b2) = (p.beta1 as f64, p.beta2 as f64);
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        let (lr, eps, wd) = (
            p.learning_rate as f64,
            p.epsilon as f64,
            p.weight_decay as f64,
        );
        for i in 0..w.len() {
            let gi = if p.decoupled { g[i] } else { g[i] + wd * w[i] };
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            let update = (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            w[i] -= lr * (update + if p.decoupled { wd * w[i] } else { 0.0 });
        }
        Ok(())
    }

    fn candidate_epoch(
        &self,
        e: CandidateEpoch,
        units: &[CandidateUnit],
        values: &Vec<f64>,
        residuals: &Vec<f64>,
        weights_in: &Vec<f64>,
        weights_out: &Vec<f64>,
        grad_in: &mut Vec<f64>,
        grad_out: &mut Vec<f64>,
        scores: &mut Vec<f64>,
    ) -> Result<()> {
        e.check(
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
        let (ni, no) = (e.inputs, e.outputs);
        grad_in.iter_mut().for_each(|g| *g = 0.0);
        grad_out.iter_mut().for_each(|g| *g = 0.0);
        for (c, unit) in units.iter().enumerate() {
            let s = unit.steepness as f64;
            let w_in = &weights_in[c * ni..(c + 1) * ni];
            let w_out = &weights_out[c * no..(c + 1) * no];
            let mut score = e.sse as f64;
            for p in 0..e.rows {
                let v = &values[p * ni..(p + 1) * ni];
                let sum = clamp_candidate_sum(v.iter().zip(w_in).map(|(a, b)| a * b).sum(), s);
                let a = unit.activation.apply(s * sum);
                let d = candidate_derivative(unit.activation, s, sum, a, e.derivative);
                let mut error = 0.0;
                for j in 0..no {
                    let diff = a * w_out[j] - residuals[p * no + j];
                    grad_out[c * no + j] += 2.0 * diff * a;
                    error += diff * w_out[j];
                    score -= diff * diff;
                }
                for i in 0..ni {
                    grad_in[c * ni + i] += d * error * v[i];
                }
            }
            scores[c] = score;
        }
        Ok(())
    }

    fn shortcut_forward(
        &self,
        p: ShortcutPass,
        units: &[ShortcutUnit],
        weights: &Vec<f64>,
        x: &Vec<f64>,
        values: &mut Vec<f64>,
        sums: &mut Vec<f64>,
        y: &mut Vec<f64>,
    ) -> Result<()> {
        let offsets = p.check_forward(
            units,
            [weights.len(), x.len(), values.len(), sums.len(), y.len()],
        )?;
        let (n, width, nu) = (p.inputs, p.width(), p.units());
        for row in 0..p.rows {
            let v = &mut values[row * width..(row + 1) * width];
            v[..n].copy_from_slice(&x[row * n..(row + 1) * n]);
            v[n] = 1.0;
            for (u, unit) in units.iter().enumerate() {
                let w = &weights[offsets[u]..offsets[u] + unit.fan_in];
                let s = unit.steepness as f64;
                let dot: f64 = v[..unit.fan_in].iter().zip(w).map(|(a, b)| a * b).sum();
                let sum = shortcut_sum(u < p.hidden, dot, s);
                sums[row * nu + u] = sum;
                let out = unit.activation.apply(s * sum);
                if u < p.hidden {
                    v[n + 1 + u] = out;
                } else {
                    y[row * p.outputs + u - p.hidden] = out;
                }
            }
        }
        Ok(())
    }

    fn shortcut_backward(
        &self,
        p: ShortcutPass,
        units: &[ShortcutUnit],
        derivative: Derivative,
        accumulate: bool,
        weights: &Vec<f64>,
        values: &Vec<f64>,
        sums: &Vec<f64>,
        dy: &Vec<f64>,
        deltas: &mut Vec<f64>,
        grad: &mut Vec<f64>,
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
        let (n, width, nu) = (p.inputs, p.width(), p.units());
        if !accumulate {
            grad.iter_mut().for_each(|g| *g = 0.0);
        }
        for row in 0..p.rows {
            let v = &values[row * width..(row + 1) * width];
            let d = &mut deltas[row * nu..(row + 1) * nu];
            d[..p.hidden].iter_mut().for_each(|g| *g = 0.0);
            for (u, unit) in units.iter().enumerate().rev() {
                let s = unit.steepness as f64;
                let sum = sums[row * nu + u];
                let (upstream, out) = if u < p.hidden {
                    (d[u], v[n + 1 + u])
                } else {
                    let j = u - p.hidden;
                    (dy[row * p.outputs + j], unit.activation.apply(s * sum))
                };
                let delta =
                    upstream * shortcut_derivative(unit.activation, s, sum, out, derivative);
                d[u] = delta;
                let w = &weights[offsets[u]..offsets[u] + unit.fan_in];
                for i in n + 1..unit.fan_in {
                    d[i - n - 1] += delta * w[i];
                }
                for (g, &vi) in grad[offsets[u]..].iter_mut().zip(&v[..unit.fan_in]) {
                    *g += delta * vi;
                }
            }
        }
        Ok(())
    }
}
