//! The heavy loops of the Gaussian-process metamodel: the correlation matrices of the
//! conditioning draws, their Cholesky factors (thousands of them in the
//! hyperparameter search) and the process's pull at every draw. The correlations and
//! pulls are sums of squared distances followed by `exp`, in f64: the inputs are
//! transposed to one column per dimension, so the distances, the exponentials
//! ([`exp_in_place`], a polynomial) and the weighted sums run across SIMD lanes.
//! The correlations and the factorisation's own loops never fuse a multiply-add, and
//! the GEMM of a large factorisation is `matrixmultiply`'s whatever tessera's level,
//! so every SIMD level gives the same bits there; the pull, the hot loop at every
//! draw, fuses them (FMA) at every vector level (the same bits among those) but not in
//! scalar code, where `mul_add` would be a libm call.

use std::ops::Range;

use rayon::prelude::*;
use tessera_tensor::error::{Result, TesseraError, check_finite_f64};

use super::CpuVoi;
use crate::dispatch::direct_kernel;
use crate::math::{exp_in_place, exp_in_place_with, mul_add};

/// Rows of [`CpuVoi::gaussian_pull`] per rayon task.
const PULL_ROWS_PER_TASK: usize = 512;
/// Order from which [`CpuVoi::cholesky`] works in panels (a 512 x 512 matrix is 2 MB,
/// past this machine's 1 MB L2).
const BLOCKED_CHOLESKY_FROM: usize = 512;
/// Columns per panel of the blocked Cholesky factorisation.
const CHOLESKY_PANEL: usize = 128;
/// Independent partial sums of the pull's dot product (8 f64 lanes of AVX-512).
const SUM_LANES: usize = 8;

/// `[rows, dims]` row-major points as `[dims, rows]`.
fn transposed(points: &[f64], dims: usize) -> Vec<f64> {
    let rows = points.len() / dims;
    let mut out = vec![0.0; points.len()];
    for (r, p) in points.chunks_exact(dims).enumerate() {
        for (k, &v) in p.iter().enumerate() {
            out[k * rows + r] = v;
        }
    }
    out
}

/// `out[j] = −Σ_k w_k (x_k − c_kj)²` over `columns` (`[dims, len]`, `len = out.len()`
/// from `offset` on).
#[inline(always)]
fn neg_sq_distances<const FUSED: bool>(
    x: &[f64],
    columns: &[f64],
    stride: usize,
    offset: usize,
    w: &[f64],
    out: &mut [f64],
) {
    out.fill(0.0);
    for (k, (&xk, &wk)) in x.iter().zip(w).enumerate() {
        let column = &columns[k * stride + offset..k * stride + offset + out.len()];
        for (o, &c) in out.iter_mut().zip(column) {
            let t = xk - c;
            *o = mul_add::<FUSED>(-wk, t * t, *o);
        }
    }
}

/// What every column of a correlation matrix reads.
#[derive(Clone, Copy)]
struct Points<'a> {
    /// `[dims, rows]`.
    points_t: &'a [f64],
    rows: usize,
    weights: &'a [f64],
    nugget: f64,
}

/// One column `c` of the correlation matrix from the diagonal down:
/// `out[r − c] = exp(−Σ_k w_k (p_rk − p_ck)²)`, plus `nugget` on the diagonal; `x` is
/// point `c`.
#[inline(always)]
fn correlation_column((points, x, c, out): (Points<'_>, &[f64], usize, &mut [f64])) {
    neg_sq_distances::<false>(x, points.points_t, points.rows, c, points.weights, out);
    exp_in_place(out);
    out[0] += points.nugget;
}

/// What every row of a pull reads.
#[derive(Clone, Copy)]
struct Process<'a> {
    dims: usize,
    /// `[dims, centres]`.
    centres_t: &'a [f64],
    weights: &'a [f64],
    /// `[centres]`.
    alpha: &'a [f64],
}

/// `out[i] = Σ_j α_j exp(−Σ_k w_k (x_ik − c_jk)²)` for a block of rows, the
/// distances of one row to every centre in `scratch`.
#[inline(always)]
fn pull_rows<const FUSED: bool>(
    (process, points, scratch, out): (Process<'_>, &[f64], &mut [f64], &mut [f64]),
) {
    let Process {
        dims,
        centres_t,
        weights: w,
        alpha,
    } = process;
    let centres = alpha.len();
    for (x, o) in points.chunks_exact(dims).zip(out.iter_mut()) {
        neg_sq_distances::<FUSED>(x, centres_t, centres, 0, w, scratch);
        exp_in_place_with::<FUSED>(scratch);
        let mut sums = [0.0; SUM_LANES];
        let mut a = alpha.chunks_exact(SUM_LANES);
        let mut e = scratch.chunks_exact(SUM_LANES);
        for (a, e) in (&mut a).zip(&mut e) {
            for l in 0..SUM_LANES {
                sums[l] = mul_add::<FUSED>(a[l], e[l], sums[l]);
            }
        }
        let tail: f64 = a
            .remainder()
            .iter()
            .zip(e.remainder())
            .map(|(a, e)| a * e)
            .sum();
        // A fixed tree, so the order of the sums never depends on the SIMD level.
        let halves = [0, 1, 2, 3].map(|l| sums[l] + sums[l + 4]);
        *o = ((halves[0] + halves[2]) + (halves[1] + halves[3])) + tail;
    }
}

/// Left-looking Cholesky factorisation of columns `columns` of the lower triangle of
/// the column-major `[n, n]` matrix `a`, in place: column `j` less `L_jk` times column
/// `k` for every `k` in `from..j` (contiguous runs, so the updates run across SIMD
/// lanes), then divided by its pivot's square root; the columns before `from` must
/// already have been subtracted. `false` at the first pivot that is not positive.
#[inline(always)]
fn cholesky_columns((a, n, columns, from): (&mut [f64], usize, Range<usize>, usize)) -> bool {
    for j in columns {
        let (done, rest) = a.split_at_mut(j * n);
        let column = &mut rest[j..n];
        for k in from..j {
            let factor = done[k * n + j];
            for (y, &x) in column.iter_mut().zip(&done[k * n + j..(k + 1) * n]) {
                *y -= factor * x;
            }
        }
        let pivot = column[0];
        // Every entry below a pivot enters a later pivot squared and subtracted, so an
        // overflow anywhere ends here as a pivot of -inf or NaN: a `true` factor is
        // finite.
        if pivot.is_nan() || pivot <= 0.0 {
            return false;
        }
        let root = pivot.sqrt();
        column[0] = root;
        for v in &mut column[1..] {
            *v /= root;
        }
    }
    true
}

direct_kernel!(
    /// [`correlation_column`] under SIMD dispatch.
    CorrelationColumn((Points<'_>, &[f64], usize, &mut [f64])) -> () => correlation_column
);

/// [`pull_rows`] under SIMD dispatch, its multiply-adds fused at every level but
/// scalar code.
struct PullRows<A>(A);

impl pulp::WithSimd for PullRows<(Process<'_>, &[f64], &mut [f64], &mut [f64])> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        if S::IS_SCALAR {
            pull_rows::<false>(self.0)
        } else {
            pull_rows::<true>(self.0)
        }
    }
}

direct_kernel!(
    /// [`cholesky_columns`] under SIMD dispatch.
    CholeskyColumns((&mut [f64], usize, Range<usize>, usize)) -> bool => cholesky_columns
);

/// Checks `points` as `[rows, dims]` and `weights` as `[dims]`; the rows.
fn check_points(what: &'static str, points: &[f64], dims: usize, weights: &[f64]) -> Result<usize> {
    if dims == 0 || weights.len() != dims {
        return Err(TesseraError::ShapeMismatch {
            what: "Gaussian-process weights (one per dimension, at least one)",
            got: weights.len(),
            expected: dims.max(1),
        });
    }
    if !points.len().is_multiple_of(dims) {
        return Err(TesseraError::ShapeMismatch {
            what,
            got: points.len(),
            expected: points.len() / dims * dims,
        });
    }
    check_finite_f64("Gaussian-process weight", weights)?;
    if let Some(&w) = weights.iter().find(|w| **w < 0.0) {
        return Err(TesseraError::InvalidArgument {
            what: "Gaussian-process weight",
            value: w,
            expected: "a weight >= 0",
        });
    }
    check_finite_f64(what, points)?;
    Ok(points.len() / dims)
}

impl CpuVoi {
    /// The Gaussian correlation matrix of `points` (`[rows, dims]`, row-major) plus
    /// `nugget` on its diagonal, entry `(r, c)` being `exp(−Σ_k w_k (p_rk − p_ck)²)`,
    /// written as the lower triangle of a column-major `[rows, rows]` matrix (entry
    /// `(r, c)`, `r >= c`, at `out[c · rows + r]`), the form a Cholesky factorisation
    /// reads. The strict upper triangle of `out` is left as it was. Columns run in
    /// parallel, each across SIMD lanes; `exp` is within 4e-16 relative of libm.
    ///
    /// Errors, with `out` unchanged: `weights` not one finite, non-negative value per
    /// dimension, `points` not whole rows or not finite, a non-finite `nugget`, or
    /// `out` not `rows²` long.
    pub fn gaussian_correlations(
        &self,
        points: &[f64],
        dims: usize,
        weights: &[f64],
        nugget: f64,
        out: &mut [f64],
    ) -> Result<()> {
        let rows = check_points("Gaussian-process points", points, dims, weights)?;
        if !nugget.is_finite() {
            return Err(TesseraError::InvalidArgument {
                what: "Gaussian-process nugget",
                value: nugget,
                expected: "a finite value",
            });
        }
        let cells = rows.saturating_mul(rows);
        if out.len() != cells {
            return Err(TesseraError::ShapeMismatch {
                what: "Gaussian-process correlation matrix (rows x rows)",
                got: out.len(),
                expected: cells,
            });
        }
        let _span = tracing::debug_span!("gaussian_correlations", rows, dims).entered();
        let points_t = transposed(points, dims);
        let shared = Points {
            points_t: &points_t,
            rows,
            weights,
            nugget,
        };
        let arch = self.arch;
        out.par_chunks_mut(rows.max(1))
            .enumerate()
            .for_each(|(c, column)| {
                arch.dispatch(CorrelationColumn((
                    shared,
                    &points[c * dims..(c + 1) * dims],
                    c,
                    &mut column[c..],
                )))
            });
        Ok(())
    }

    /// The pull of a Gaussian process at `points` (`[rows, dims]`, row-major):
    /// `out[i] = Σ_j alpha_j exp(−Σ_k w_k (x_ik − c_jk)²)` over the `alpha.len()`
    /// `centres` (`[alpha.len(), dims]`). Rows run in parallel, the centres across
    /// SIMD lanes in a fixed order of sums, multiply-adds fused at every vector level
    /// (the same bits at each of those and on any thread count; scalar code, unfused,
    /// differs in the last bits); `exp` is within 4e-16 relative of libm.
    ///
    /// Errors, with `out` unchanged: `weights` not one finite, non-negative value per
    /// dimension, `points` or `centres` not whole rows or not finite, `alpha` not
    /// finite or not one per centre, or `out` not one per point.
    pub fn gaussian_pull(
        &self,
        points: &[f64],
        centres: &[f64],
        dims: usize,
        weights: &[f64],
        alpha: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        let rows = check_points("Gaussian-process points", points, dims, weights)?;
        let count = check_points("Gaussian-process centres", centres, dims, weights)?;
        if alpha.len() != count {
            return Err(TesseraError::ShapeMismatch {
                what: "Gaussian-process coefficients (one per centre)",
                got: alpha.len(),
                expected: count,
            });
        }
        check_finite_f64("Gaussian-process coefficient", alpha)?;
        if out.len() != rows {
            return Err(TesseraError::ShapeMismatch {
                what: "Gaussian-process pulls (one per point)",
                got: out.len(),
                expected: rows,
            });
        }
        let _span = tracing::debug_span!("gaussian_pull", rows, centres = count, dims).entered();
        let centres_t = transposed(centres, dims);
        let process = Process {
            dims,
            centres_t: &centres_t,
            weights,
            alpha,
        };
        let arch = self.arch;
        out.par_chunks_mut(PULL_ROWS_PER_TASK)
            .zip(points.par_chunks(PULL_ROWS_PER_TASK * dims))
            .for_each_init(
                || vec![0.0; count],
                |scratch, (out, points)| {
                    arch.dispatch(PullRows((process, points, &mut scratch[..], out)))
                },
            );
        Ok(())
    }

    /// Factorises the symmetric matrix whose lower triangle `a` holds (column-major
    /// `[n, n]`, as [`CpuVoi::gaussian_correlations`] writes it) as `L Lᵀ`, in place:
    /// `Ok(true)` with `L` in the lower triangle and zeros above it, or `Ok(false)`
    /// when the matrix is not numerically positive definite (a pivot at or below 0, or
    /// NaN: an overflow in the factorisation ends as one, so a factor returned is
    /// finite), `a` then holding a partial factorisation. Left-looking, each column's
    /// updates across SIMD lanes, on one thread below 512 rows (the Gaussian process
    /// factorises small matrices many times, from several threads); from 512 rows in
    /// panels of 128 columns whose updates from the earlier columns are one threaded
    /// GEMM each. The strict upper triangle is scratch until it is zeroed.
    ///
    /// Errors, with `a` unchanged: `a` not `n²` long, or a non-finite value in its
    /// lower triangle.
    pub fn cholesky(&self, a: &mut [f64], n: usize) -> Result<bool> {
        if a.len() != n.saturating_mul(n) {
            return Err(TesseraError::ShapeMismatch {
                what: "matrix to factorise (n x n)",
                got: a.len(),
                expected: n.saturating_mul(n),
            });
        }
        let lower = (0..n).flat_map(|c| c * n + c..(c + 1) * n);
        if let Some(index) = lower.into_iter().find(|&i| !a[i].is_finite()) {
            return Err(TesseraError::NonFinite {
                what: "matrix to factorise (lower triangle)",
                index,
                value: a[index] as f32,
            });
        }
        let _span = tracing::debug_span!("cholesky", n).entered();
        let definite = if n < BLOCKED_CHOLESKY_FROM {
            self.arch.dispatch(CholeskyColumns((&mut *a, n, 0..n, 0)))
        } else {
            self.blocked_cholesky(a, n)
        };
        if definite {
            for c in 1..n {
                a[c * n..c * n + c].fill(0.0);
            }
        }
        Ok(definite)
    }

    /// [`CpuVoi::cholesky`] in panels of [`CHOLESKY_PANEL`] columns, for matrices past
    /// the caches: each panel first takes the product of the rows below it with every
    /// column before it off in one GEMM (`matrixmultiply`'s, threaded, cache-blocked),
    /// then is factorised by [`cholesky_columns`] against its own columns. The
    /// unblocked form re-reads every earlier column for each column: `n³/6` reads of a
    /// matrix that no longer fits in cache.
    fn blocked_cholesky(&self, a: &mut [f64], n: usize) -> bool {
        for start in (0..n).step_by(CHOLESKY_PANEL) {
            let width = CHOLESKY_PANEL.min(n - start);
            if start > 0 {
                let base = a.as_mut_ptr();
                // SAFETY: the product reads columns 0..start (rows start..n and the
                // panel's rows) and writes columns start..start + width (rows
                // start..n): disjoint parts of `a`, all inside its n² elements.
                unsafe {
                    matrixmultiply::dgemm(
                        n - start,
                        start,
                        width,
                        -1.0,
                        base.add(start),
                        1,
                        n as isize,
                        base.add(start),
                        n as isize,
                        1,
                        1.0,
                        base.add(start * n + start),
                        1,
                        n as isize,
                    );
                }
            }
            let panel = start..start + width;
            if !self
                .arch
                .dispatch(CholeskyColumns((&mut *a, n, panel, start)))
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimdLevel;

    /// Deterministic values in `[0, 1)`.
    fn uniform(count: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..count)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    fn correlation(a: &[f64], b: &[f64], w: &[f64]) -> f64 {
        let d: f64 = a
            .iter()
            .zip(b)
            .zip(w)
            .map(|((x, y), w)| w * (x - y) * (x - y))
            .sum();
        (-d).exp()
    }

    fn backends() -> Vec<CpuVoi> {
        SimdLevel::available()
            .into_iter()
            .map(|l| CpuVoi::with_level(l).unwrap())
            .collect()
    }

    #[test]
    fn correlations_match_libm_and_fill_only_the_lower_triangle() {
        for (rows, dims) in [(1, 1), (2, 3), (9, 2), (37, 4), (130, 5)] {
            let points = uniform(rows * dims, rows as u64);
            let w: Vec<f64> = (0..dims).map(|k| 0.3 + 7.0 * k as f64).collect();
            let mut first: Option<Vec<f64>> = None;
            for backend in backends() {
                let mut out = vec![-1.0; rows * rows];
                backend
                    .gaussian_correlations(&points, dims, &w, 0.25, &mut out)
                    .unwrap();
                for c in 0..rows {
                    for r in 0..rows {
                        let got = out[c * rows + r];
                        if r < c {
                            assert_eq!(got, -1.0, "upper ({r}, {c}) written");
                            continue;
                        }
                        let p = |i: usize| &points[i * dims..(i + 1) * dims];
                        let want = correlation(p(r), p(c), &w) + if r == c { 0.25 } else { 0.0 };
                        assert!(
                            // The exponent's own rounding (1 ulp of a distance d)
                            // moves exp by d ulp.
                            (got - want).abs() <= 1e-15 * (1.0 + want.ln().abs()) * want,
                            "({r}, {c}) {got} vs {want}"
                        );
                    }
                }
                match &first {
                    None => first = Some(out),
                    Some(f) => assert_eq!(f, &out, "levels differ"),
                }
            }
        }
    }

    #[test]
    fn pulls_match_a_scalar_sum_at_every_level_and_tail() {
        for (rows, centres, dims) in [
            (1, 1, 1),
            (3, 7, 2),
            (600, 8, 3),
            (1030, 19, 4),
            (5, 1000, 6),
        ] {
            let points = uniform(rows * dims, 3 + rows as u64);
            let centre_points = uniform(centres * dims, 5 + centres as u64);
            let alpha: Vec<f64> = uniform(centres, 11).iter().map(|v| 4.0 * v - 2.0).collect();
            let w: Vec<f64> = (0..dims).map(|k| 0.5 + 3.0 * k as f64).collect();
            // Every vector level fuses its multiply-adds (the same bits); scalar code
            // does not, so it is held to the tolerance only.
            let mut first_vector: Option<Vec<f64>> = None;
            for level in SimdLevel::available() {
                let backend = CpuVoi::with_level(level).unwrap();
                let mut out = vec![f64::NAN; rows];
                backend
                    .gaussian_pull(&points, &centre_points, dims, &w, &alpha, &mut out)
                    .unwrap();
                for (i, got) in out.iter().enumerate() {
                    let x = &points[i * dims..(i + 1) * dims];
                    let terms: Vec<f64> = (0..centres)
                        .map(|j| {
                            alpha[j] * correlation(x, &centre_points[j * dims..(j + 1) * dims], &w)
                        })
                        .collect();
                    let want: f64 = terms.iter().sum();
                    let scale: f64 = terms.iter().map(|t| t.abs()).sum();
                    assert!(
                        (got - want).abs() <= 1e-14 * scale.max(1e-300),
                        "row {i}: {got} vs {want}"
                    );
                }
                match &first_vector {
                    _ if level == SimdLevel::Scalar => {}
                    None => first_vector = Some(out),
                    Some(f) => assert_eq!(f, &out, "vector levels differ"),
                }
            }
        }
    }

    #[test]
    fn far_points_pull_nothing_and_empty_inputs_are_fine() {
        let backend = CpuVoi::new();
        let mut out = [f64::NAN];
        backend
            .gaussian_pull(&[0.0], &[1.0], 1, &[1e6], &[3.0], &mut out)
            .unwrap();
        assert_eq!(out, [0.0]);
        backend
            .gaussian_pull(&[], &[1.0], 1, &[1.0], &[3.0], &mut [])
            .unwrap();
        let mut none = [f64::NAN];
        backend
            .gaussian_pull(&[0.5], &[], 1, &[1.0], &[], &mut none)
            .unwrap();
        assert_eq!(none, [0.0]);
        backend
            .gaussian_correlations(&[], 2, &[1.0, 1.0], 0.0, &mut [])
            .unwrap();
    }

    #[test]
    fn bad_shapes_and_values_are_typed_errors_that_leave_out_alone() {
        let backend = CpuVoi::new();
        let mut out = [7.0; 4];
        let bad_correlations: [(&[f64], usize, &[f64], f64); 5] = [
            (&[0.0, 1.0, 2.0], 2, &[1.0, 1.0], 0.0),
            (&[0.0, 1.0], 2, &[1.0], 0.0),
            (&[0.0, f64::NAN], 1, &[1.0], 0.0),
            (&[0.0, 1.0], 1, &[-1.0], 0.0),
            (&[0.0, 1.0], 1, &[1.0], f64::INFINITY),
        ];
        for (points, dims, w, nugget) in bad_correlations {
            assert!(
                backend
                    .gaussian_correlations(points, dims, w, nugget, &mut out)
                    .is_err()
            );
            assert_eq!(out, [7.0; 4]);
        }
        assert!(
            backend
                .gaussian_correlations(&[0.0], 1, &[1.0], 0.0, &mut out)
                .is_err()
        );
        assert!(
            backend
                .gaussian_correlations(&[0.0], 0, &[], 0.0, &mut out)
                .is_err()
        );
        let mut pulls = [7.0; 2];
        // (points, centres, weights, alpha), one dimension.
        type PullCase = (
            &'static [f64],
            &'static [f64],
            &'static [f64],
            &'static [f64],
        );
        let bad_pulls: [PullCase; 5] = [
            (&[0.0, 1.0], &[0.0], &[1.0], &[1.0, 2.0]),
            (&[0.0, 1.0], &[0.0, f64::INFINITY], &[1.0], &[1.0, 2.0]),
            (&[0.0, 1.0], &[0.0], &[f64::NAN], &[1.0]),
            (&[0.0, 1.0], &[0.0], &[1.0], &[f64::NAN]),
            (&[0.0, 1.0, 2.0], &[0.0], &[1.0], &[1.0]),
        ];
        for (points, centres, w, alpha) in bad_pulls {
            assert!(
                backend
                    .gaussian_pull(points, centres, 1, w, alpha, &mut pulls)
                    .is_err()
            );
            assert_eq!(pulls, [7.0; 2]);
        }
    }

    #[test]
    fn cholesky_reconstructs_correlation_matrices_at_every_level() {
        // 600 runs in panels: four of 128 and one of 88.
        for (n, dims) in [(0, 1), (1, 1), (2, 2), (7, 3), (33, 2), (130, 4), (600, 3)] {
            let points = uniform(n * dims, 17 + n as u64);
            let w: Vec<f64> = (0..dims).map(|k| 2.0 + k as f64).collect();
            let mut matrix = vec![0.0; n * n];
            CpuVoi::new()
                .gaussian_correlations(&points, dims, &w, 1e-6, &mut matrix)
                .unwrap();
            let mut first: Option<Vec<f64>> = None;
            for backend in backends() {
                let mut l = matrix.clone();
                assert!(backend.cholesky(&mut l, n).unwrap(), "n = {n}");
                for c in 0..n {
                    for r in 0..n {
                        let at = |r: usize, c: usize| l[c * n + r];
                        if r < c {
                            assert_eq!(at(r, c), 0.0);
                            continue;
                        }
                        let product: f64 = (0..=c).map(|k| at(r, k) * at(c, k)).sum();
                        let want = matrix[c * n + r];
                        assert!(
                            (product - want).abs() <= 1e-12,
                            "({r}, {c}): {product} vs {want}"
                        );
                    }
                }
                match &first {
                    None => first = Some(l),
                    Some(f) => assert_eq!(f, &l, "levels differ"),
                }
            }
        }
    }

    #[test]
    fn cholesky_reports_indefinite_matrices_and_refuses_bad_ones() {
        let backend = CpuVoi::new();
        // [[1, 2], [2, 1]] has eigenvalues 3 and -1; the upper entry is never read.
        let mut indefinite = [1.0, 2.0, f64::NAN, 1.0];
        assert!(!backend.cholesky(&mut indefinite, 2).unwrap());
        let mut zero_pivot = [0.0];
        assert!(!backend.cholesky(&mut zero_pivot, 1).unwrap());
        // Entries that overflow f64 in the factorisation are reported, not returned.
        let mut overflowing = [1e-300, 1e300, f64::NAN, 1.0];
        assert!(!backend.cholesky(&mut overflowing, 2).unwrap());
        // A pivot that fails in the last panel of the blocked form.
        let n = 600;
        let mut late = vec![0.0; n * n];
        (0..n).for_each(|i| late[i * n + i] = 1.0);
        late[550 * n + 550] = -1.0;
        assert!(!backend.cholesky(&mut late, n).unwrap());
        let mut bad = [4.0, f64::INFINITY, 0.0, 1.0];
        assert!(backend.cholesky(&mut bad, 2).is_err());
        assert_eq!(bad[..2], [4.0, f64::INFINITY]);
        let mut short = [1.0, 0.0, 1.0];
        assert!(backend.cholesky(&mut short, 2).is_err());
        assert_eq!(short, [1.0, 0.0, 1.0]);
    }
}
