//! The Gaussian-process metamodel of EVPPI for groups of many parameters (Strong,
//! Oakley & Brennan 2014; SAVI's and R `voi`'s method above 4 parameters).
//!
//! Per response column: inputs scaled to `[0, 1]`, a linear mean `h(x)ᵀβ` and a
//! Gaussian correlation `exp(−Σ_k ((x_k − x'_k)/δ_k)²)` with a nugget `ν`. The
//! hyperparameters `(δ, ν)` maximise their marginal posterior density (β and σ²
//! integrated out, the priors of SAVI) on a subsample, by Nelder–Mead in log space;
//! the process is then conditioned on `fit_rows` draws and its posterior mean
//! predicted at every draw, so EVPPI uses all of them (SAVI and `voi` use only the
//! fitted subsample). Everything runs on the host in f64: the columns' searches in
//! parallel, the correlations, their factorisations and the predictions by the CPU
//! backend's SIMD kernels (`CpuVoi::gaussian_correlations`, `cholesky` and
//! `gaussian_pull`).

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use tessera_cpu::CpuVoi;
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::voi::Table;

use super::metamodel::{ROWS_PER_TASK, over_row_chunks};

/// Largest conditioning subsample (its correlation matrix is `fit_rows²` f64).
pub(crate) const MAX_FIT_ROWS: usize = 5000;
/// Conditioning matrices alive at once while response columns are fitted in parallel
/// (one is `8 fit_rows²` bytes: 8 MB at the default 1000 rows, 200 MB at the largest).
const PARALLEL_FIT_BYTES: usize = 256 << 20;
/// Rows the hyperparameters are estimated on: SAVI's `min(30 g, 250)`.
const HYPER_ROWS_PER_INPUT: usize = 30;
const MAX_HYPER_ROWS: usize = 250;
/// Inverse-gamma priors of SAVI: σ² ~ IG(0.001, 0.001), ν ~ IG(0.001, 1); log δ ~
/// N(0, 10^5).
const A_SIGMA: f64 = 0.001;
const B_SIGMA: f64 = 0.001;
const A_NU: f64 = 0.001;
const B_NU: f64 = 1.0;
const LOG_DELTA_PRIOR_VAR: f64 = 1e5;
/// Log-hyperparameters are kept within this range (correlation lengths and nuggets
/// beyond it are numerically the same).
const LOG_BOUND: f64 = 15.0;

/// The group's columns scaled to `[0, 1]` by their range, constant columns left out:
/// `[n, g]` row-major and `g`.
fn scaled_inputs(params: &Table<'_>, group: &[usize]) -> (Vec<f64>, usize) {
    let n = params.rows();
    let ranges: Vec<(f64, f64)> = group
        .iter()
        .map(|&c| {
            let parts = over_row_chunks(n, |lo, hi| {
                (lo..hi).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), i| {
                    let v = params.get(i, c);
                    (a.min(v), b.max(v))
                })
            });
            parts
                .into_iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (lo, hi)| {
                    (a.min(lo), b.max(hi))
                })
        })
        .collect();
    let kept: Vec<(usize, f64, f64)> = group
        .iter()
        .zip(&ranges)
        .filter(|(_, (lo, hi))| hi > lo)
        .map(|(&c, &(lo, hi))| (c, lo, hi - lo))
        .collect();
    let g = kept.len();
    let mut z = vec![0.0; n * g];
    z.par_chunks_mut((ROWS_PER_TASK * g).max(1))
        .enumerate()
        .for_each(|(chunk, out)| {
            for (r, row) in out.chunks_exact_mut(g.max(1)).enumerate() {
                let i = chunk * ROWS_PER_TASK + r;
                for (v, &(c, lo, range)) in row.iter_mut().zip(&kept) {
                    *v = (params.get(i, c) - lo) / range;
                }
            }
        });
    (z, g)
}

/// The Cholesky factor `L` (zeros above the diagonal) of the correlation matrix of
/// `rows` points plus `nu` on the diagonal, both by the CPU kernels; `None` if the
/// matrix is not numerically positive definite or the kernels refuse the values.
fn correlation_factor(
    cpu: &CpuVoi,
    z: &[f64],
    g: usize,
    w: &[f64],
    nu: f64,
) -> Option<DMatrix<f64>> {
    let rows = z.len() / g;
    let mut cells = vec![0.0; rows * rows];
    cpu.gaussian_correlations(z, g, w, nu, &mut cells).ok()?;
    cpu.cholesky(&mut cells, rows)
        .ok()?
        .then(|| DMatrix::from_vec(rows, rows, cells))
}

/// The mean's basis `[1, z]` of the points.
fn mean_basis(z: &[f64], g: usize) -> DMatrix<f64> {
    let rows = z.len() / g;
    DMatrix::from_fn(
        rows,
        g + 1,
        |i, j| if j == 0 { 1.0 } else { z[i * g + j - 1] },
    )
}

/// The hyperparameters' log posterior density up to a constant (SAVI's
/// `post.density`), at log-hyperparameters `theta = (log δ_1..g, log ν)`.
fn log_posterior(cpu: &CpuVoi, theta: &[f64], z: &[f64], g: usize, y: &[f64]) -> f64 {
    if theta.iter().any(|t| t.abs() > LOG_BOUND) {
        return f64::NEG_INFINITY;
    }
    let n = y.len();
    let w: Vec<f64> = theta[..g].iter().map(|t| (-2.0 * t).exp()).collect();
    let nu = theta[g].exp();
    let Some(l) = correlation_factor(cpu, z, g, &w, nu) else {
        return f64::NEG_INFINITY;
    };
    let h = mean_basis(z, g);
    let q = g + 1;
    let ys = l.solve_lower_triangular(&DVector::from_column_slice(y));
    let xs = l.solve_lower_triangular(&h);
    let (Some(ys), Some(xs)) = (ys, xs) else {
        return f64::NEG_INFINITY;
    };
    let gram = xs.transpose() * &xs + DMatrix::identity(q, q) * 1e-7;
    let xty = xs.transpose() * &ys;
    let Some(gram_chol) = gram.clone().cholesky() else {
        return f64::NEG_INFINITY;
    };
    let beta = gram_chol.solve(&xty);
    let rss = (ys.dot(&ys) - 2.0 * beta.dot(&xty) + beta.dot(&(&gram * &beta))).max(0.0);
    let log_det_l: f64 = l.diagonal().iter().map(|v| v.ln()).sum();
    let log_det_gram: f64 = 2.0 * gram_chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    let log_prior: f64 = theta[..g]
        .iter()
        .map(|t| -t * t / (2.0 * LOG_DELTA_PRIOR_VAR))
        .sum::<f64>()
        - (A_NU + 1.0) * theta[g]
        - B_NU / nu;
    let value = -log_det_l
        - 0.5 * log_det_gram
        - (n as f64 - q as f64 + 2.0 * A_SIGMA) / 2.0 * (rss / 2.0 + B_SIGMA).ln()
        + log_prior;
    if value.is_nan() {
        f64::NEG_INFINITY
    } else {
        value
    }
}

/// Nelder–Mead minimisation of `f` from `x0` (initial simplex steps `step`), until
/// the simplex's values agree to `1e-8` relative or `max_evals` evaluations.
fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: &[f64], step: f64, max_evals: usize) -> Vec<f64> {
    let k = x0.len();
    let mut simplex: Vec<(f64, Vec<f64>)> = (0..=k)
        .map(|i| {
            let mut x = x0.to_vec();
            if i > 0 {
                x[i - 1] += step;
            }
            (f(&x), x)
        })
        .collect();
    let mut evals = k + 1;
    let point = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(a, b)| a + t * (b - a)).collect()
    };
    while evals < max_evals {
        simplex.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (best, worst) = (simplex[0].0, simplex[k].0);
        if (worst - best).abs() <= 1e-8 * (best.abs() + 1e-8) {
            break;
        }
        let centroid: Vec<f64> = (0..k)
            .map(|j| simplex[..k].iter().map(|(_, x)| x[j]).sum::<f64>() / k as f64)
            .collect();
        let worst_x = simplex[k].1.clone();
        let reflected = point(&centroid, &worst_x, -1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < best {
            let expanded = point(&centroid, &worst_x, -2.0);
            let fe = f(&expanded);
            evals += 1;
            simplex[k] = if fe < fr {
                (fe, expanded)
            } else {
                (fr, reflected)
            };
        } else if fr < simplex[k - 1].0 {
            simplex[k] = (fr, reflected);
        } else {
            let (toward, ft) = if fr < worst {
                (reflected, fr)
            } else {
                (worst_x, worst)
            };
            let contracted = point(&centroid, &toward, 0.5);
            let fc = f(&contracted);
            evals += 1;
            if fc < ft {
                simplex[k] = (fc, contracted);
            } else {
                let best_x = simplex[0].1.clone();
                for s in simplex.iter_mut().skip(1) {
                    s.1 = point(&best_x, &s.1, 0.5);
                    s.0 = f(&s.1);
                }
                evals += k;
            }
        }
    }
    simplex.sort_by(|a, b| a.0.total_cmp(&b.0));
    simplex.swap_remove(0).1
}

/// A process conditioned on its centres: the posterior mean at `x` is
/// `h(x)ᵀβ + Σ_j α_j c(x, centre_j)`.
struct Conditioned {
    g: usize,
    w: Vec<f64>,
    centres: Vec<f64>,
    beta: DVector<f64>,
    alpha: DVector<f64>,
}

impl Conditioned {
    /// Conditions on `z` (`[rows, g]`) and responses `y` with the hyperparameters.
    fn new(cpu: &CpuVoi, z: &[f64], g: usize, y: &[f64], theta: &[f64]) -> Option<Self> {
        let w: Vec<f64> = theta[..g].iter().map(|t| (-2.0 * t).exp()).collect();
        let nu = theta[g].exp();
        let l = correlation_factor(cpu, z, g, &w, nu)?;
        let h = mean_basis(z, g);
        let y = DVector::from_column_slice(y);
        // (L Lᵀ)⁻¹ b by two triangular solves.
        let inv_h = l.tr_solve_lower_triangular(&l.solve_lower_triangular(&h)?)?;
        let gram = h.transpose() * &inv_h + DMatrix::identity(g + 1, g + 1) * 1e-7;
        let beta = gram.cholesky()?.solve(&(inv_h.transpose() * &y));
        let residual = l.solve_lower_triangular(&(y - &h * &beta))?;
        let alpha = l.tr_solve_lower_triangular(&residual)?;
        Some(Self {
            g,
            w,
            centres: z.to_vec(),
            beta,
            alpha,
        })
    }

    /// The posterior mean at every row of `z` (`[n, g]`) into column `k` of `out`
    /// (`[n, m]`): the pulls by the CPU kernel, then the linear mean.
    fn predict(&self, cpu: &CpuVoi, z: &[f64], out: &mut [f64], m: usize, k: usize) -> Result<()> {
        let g = self.g;
        let mut pull = vec![0.0; z.len() / g];
        cpu.gaussian_pull(
            z,
            &self.centres,
            g,
            &self.w,
            self.alpha.as_slice(),
            &mut pull,
        )?;
        out.par_chunks_mut(ROWS_PER_TASK * m)
            .zip(pull.par_chunks(ROWS_PER_TASK))
            .zip(z.par_chunks(ROWS_PER_TASK * g))
            .for_each(|((rows, pull), x)| {
                for ((row, pull), x) in rows.chunks_exact_mut(m).zip(pull).zip(x.chunks_exact(g)) {
                    let mean = self.beta[0]
                        + x.iter()
                            .zip(self.beta.iter().skip(1))
                            .map(|(x, b)| x * b)
                            .sum::<f64>();
                    row[k] = mean + pull;
                }
            });
        Ok(())
    }
}

/// Evenly strided row indices, `count` of `n`.
fn strided(n: usize, count: usize) -> Vec<usize> {
    (0..count).map(|i| i * n / count).collect()
}

/// The GP's fitted values `[n, m]` of the responses `y` (`[n, m]`, row-major) on the
/// group's parameters, conditioned on `fit_rows` strided draws, the heavy loops on
/// `cpu`'s SIMD level.
pub(crate) fn fitted(
    cpu: &CpuVoi,
    params: &Table<'_>,
    group: &[usize],
    y: &[f64],
    m: usize,
    fit_rows: usize,
) -> Result<Vec<f64>> {
    fitted_within(cpu, params, group, y, m, fit_rows, PARALLEL_FIT_BYTES)
}

/// [`fitted`], fitting in parallel as many columns as keep their conditioning
/// matrices within `parallel_bytes`.
fn fitted_within(
    cpu: &CpuVoi,
    params: &Table<'_>,
    group: &[usize],
    y: &[f64],
    m: usize,
    fit_rows: usize,
    parallel_bytes: usize,
) -> Result<Vec<f64>> {
    let n = params.rows();
    let (z, g) = scaled_inputs(params, group);
    let mut out = vec![0.0; n * m];
    if g == 0 {
        // Every parameter constant: the fit is the responses' mean.
        for k in 0..m {
            let mean = (0..n).map(|i| y[i * m + k]).sum::<f64>() / n as f64;
            (0..n).for_each(|i| out[i * m + k] = mean);
        }
        return Ok(out);
    }
    let fit = strided(n, fit_rows.min(n));
    let hyper_count = (HYPER_ROWS_PER_INPUT * g)
        .min(MAX_HYPER_ROWS)
        .min(fit.len());
    let hyper: Vec<usize> = strided(fit.len(), hyper_count)
        .into_iter()
        .map(|i| fit[i])
        .collect();
    let gather = |rows: &[usize]| -> Vec<f64> {
        rows.iter()
            .flat_map(|&i| z[i * g..(i + 1) * g].iter().copied())
            .collect()
    };
    let (z_fit, z_hyper) = (gather(&fit), gather(&hyper));
    // The columns' hyperparameters are independent searches: in parallel, as many at
    // once as keep their conditioning matrices within `parallel_bytes`.
    let matrix_bytes = fit.len() * fit.len() * std::mem::size_of::<f64>();
    let at_once = (parallel_bytes / matrix_bytes.max(1)).max(1);
    let fit_column = |k: usize| {
        let _span = tracing::info_span!("gp_response", column = k, rows = fit.len()).entered();
        let column = |rows: &[usize]| -> Vec<f64> { rows.iter().map(|&i| y[i * m + k]).collect() };
        let y_hyper = column(&hyper);
        let objective = |theta: &[f64]| -log_posterior(cpu, theta, &z_hyper, g, &y_hyper);
        // As SAVI: restart from the optimum until it moves by less than 0.05.
        let mut theta = vec![0.0; g + 1];
        for _ in 0..8 {
            let next = nelder_mead(&objective, &theta, 1.0, 400 * (g + 1));
            let moved: f64 = next.iter().zip(&theta).map(|(a, b)| (a - b).abs()).sum();
            theta = next;
            if moved < 0.05 {
                break;
            }
        }
        Conditioned::new(cpu, &z_fit, g, &column(&fit), &theta).ok_or(
            TesseraError::InvalidArgument {
                what: "Gaussian-process correlation matrix (not positive definite)",
                value: theta[g].exp(),
                expected: "a nugget that keeps the conditioning draws' correlations definite",
            },
        )
    };
    let mut processes: Vec<Conditioned> = Vec::with_capacity(m);
    for first in (0..m).step_by(at_once) {
        let batch: Vec<Conditioned> = (first..(first + at_once).min(m))
            .into_par_iter()
            .map(fit_column)
            .collect::<Result<_>>()?;
        processes.extend(batch);
    }
    for (k, process) in processes.iter().enumerate() {
        process.predict(cpu, &z, &mut out, m, k)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_the_minimum_of_a_quadratic_bowl() {
        let f = |x: &[f64]| (x[0] - 1.0).powi(2) + 3.0 * (x[1] + 2.0).powi(2) + 5.0;
        let x = nelder_mead(&f, &[0.0, 0.0], 1.0, 2000);
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] + 2.0).abs() < 1e-3,
            "{x:?}"
        );
    }

    #[test]
    fn columns_fitted_one_at_a_time_equal_columns_fitted_together() {
        let (n, cols, m) = (600, 3, 3);
        let values: Vec<f64> = (0..n * cols)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let params = Table::new("params", &values, n, cols).unwrap();
        let y: Vec<f64> = (0..n * m)
            .map(|i| {
                let (row, k) = (i / m, i % m);
                (values[row * cols + k % cols] * (k + 2) as f64).sin()
            })
            .collect();
        let cpu = CpuVoi::new();
        let together = fitted_within(&cpu, &params, &[0, 1, 2], &y, m, 200, usize::MAX).unwrap();
        let alone = fitted_within(&cpu, &params, &[0, 1, 2], &y, m, 200, 1).unwrap();
        assert_eq!(together, alone);
        assert!(together.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_noise_free_process_interpolates_its_centres() {
        let cpu = CpuVoi::new();
        let z: Vec<f64> = (0..20).map(|i| i as f64 / 19.0).collect();
        let y: Vec<f64> = z.iter().map(|x| (6.0 * x).sin()).collect();
        let theta = [(0.3f64).ln(), (1e-9f64).ln()];
        let p = Conditioned::new(&cpu, &z, 1, &y, &theta).unwrap();
        // Predicted into column 1 of two: column 0 stays as it was.
        let mut at_centres = vec![-7.0; 2 * z.len()];
        p.predict(&cpu, &z, &mut at_centres, 2, 1).unwrap();
        for (row, want) in at_centres.chunks_exact(2).zip(&y) {
            assert_eq!(row[0], -7.0);
            assert!((row[1] - want).abs() < 1e-5);
        }
        // Between the centres it follows the curve.
        let mut between = [0.0];
        p.predict(&cpu, &[0.5 / 19.0], &mut between, 1, 0).unwrap();
        assert!((between[0] - (6.0 * 0.5 / 19.0f64).sin()).abs() < 1e-3);
    }
}
