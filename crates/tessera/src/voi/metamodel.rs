//! Regression metamodels of EVPPI: bases built on the host in f64 from a parameter
//! group, and penalised least squares with smoothing chosen by GCV, solved from the
//! design's cross-products (which a backend computes).

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rayon::prelude::*;
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::voi::{Gram, Table, Values};

/// How EVPPI regresses the incremental net benefits on a parameter group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metamodel {
    /// [`Metamodel::Gam`] for groups of up to 4 parameters, else
    /// [`Metamodel::GaussianProcess`] on 1000 draws (see `docs/voi.md`).
    Auto,
    /// Least squares on the standardised parameters and an intercept.
    Linear,
    /// Least squares on every monomial of the standardised parameters up to `degree`
    /// (2 or 3), interactions included.
    Polynomial {
        /// Total degree, 2 or 3.
        degree: usize,
    },
    /// Penalised regression splines: a cubic regression spline per parameter (10
    /// knots for one parameter), a tensor product of them for 2 to 4 (5, 4 and 4
    /// knots per margin), one smoothing parameter per margin (a shared one above 2
    /// margins), chosen by generalised cross-validation.
    Gam,
    /// Strong & Oakley's nonparametric estimator for one parameter: the draws sorted by
    /// it and cut into blocks (`blocks`, default `√N`), the block means standing for
    /// the conditional expectations.
    StrongOakley {
        /// Number of blocks; `None` for `round(√N)`.
        blocks: Option<usize>,
    },
    /// A Gaussian process per response (Strong, Oakley & Brennan 2014; the method
    /// of SAVI and R `voi` above 4 parameters): linear mean, Gaussian correlation
    /// with a length per parameter and a nugget, hyperparameters by their posterior
    /// mode on `min(30 g, 250)` draws, conditioned on `fit_rows` draws (10 to 5000)
    /// and predicted at every draw, on the host.
    GaussianProcess {
        /// Draws the process is conditioned on (strided over the sample), 10 to 5000.
        fit_rows: usize,
    },
    /// Sadatsafavi et al.'s segmentation estimator for one parameter: the draws sorted
    /// by it, the running sum of each pair of strategies' difference cut where it
    /// turns (`separators` cuts per pair, 1 to 8; 1 is the paper's default), each
    /// segment taking its best strategy.
    Sadatsafavi {
        /// Cut points per pair of strategies, 1 to 8.
        separators: usize,
    },
}

impl Metamodel {
    /// The metamodel `Auto` stands for with `params` parameters.
    pub fn resolve(self, params: usize) -> Self {
        match self {
            Metamodel::Auto if params <= 4 => Metamodel::Gam,
            Metamodel::Auto => Metamodel::GaussianProcess {
                fit_rows: DEFAULT_GP_FIT_ROWS,
            },
            m => m,
        }
    }

    /// Whether the estimator takes exactly one parameter per group.
    pub fn single_parameter(self) -> bool {
        matches!(
            self,
            Metamodel::StrongOakley { .. } | Metamodel::Sadatsafavi { .. }
        )
    }
}

/// Draws a Gaussian process chosen by [`Metamodel::Auto`] is conditioned on.
pub const DEFAULT_GP_FIT_ROWS: usize = 1000;

/// A regression basis: the design, its penalties and how it makes a constant.
pub(crate) struct Basis {
    /// `n × p`, column-major (each term's column contiguous).
    pub x: Vec<f64>,
    pub p: usize,
    /// Column means of `x`.
    pub col_mean: Vec<f64>,
    /// `p × p` penalty matrices, one per smoothing parameter (none: plain least squares).
    pub penalties: Vec<Vec<f64>>,
    /// Whether one smoothing parameter is shared by all penalties.
    pub shared_lambda: bool,
    /// Coefficients under which the basis is the constant 1.
    pub constant: Vec<f64>,
}

fn invalid(field: &'static str, value: impl ToString, expected: &str) -> TesseraError {
    TesseraError::InvalidConfig {
        field,
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// Rows per task of the host-side passes over the draws.
pub(crate) const ROWS_PER_TASK: usize = 8192;

/// `f(lo, hi)` over consecutive chunks of `ROWS_PER_TASK` of `n` rows, in parallel,
/// with the results in row order (so sums combined from them do not depend on the
/// thread count).
pub(crate) fn over_row_chunks<R: Send>(n: usize, f: impl Fn(usize, usize) -> R + Sync) -> Vec<R> {
    (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|c| f(c * ROWS_PER_TASK, ((c + 1) * ROWS_PER_TASK).min(n)))
        .collect()
}

/// Adds per-chunk column sums in row order.
pub(crate) fn add_in_order(parts: Vec<Vec<f64>>, columns: usize) -> Vec<f64> {
    parts.iter().fold(vec![0.0; columns], |mut acc, part| {
        acc.iter_mut().zip(part).for_each(|(a, v)| *a += v);
        acc
    })
}

/// The mean and standard deviation of each of the group's columns, in one parallel
/// pass of sums shifted by the column's first value (so a large mean does not
/// cancel); a constant column has sd 0.
fn column_scales(params: &Table<'_>, group: &[usize]) -> Vec<(f64, f64)> {
    /// `Σ (v − shift)` and `Σ (v − shift)²` per group column over rows `lo..hi`.
    fn shifted_sums<T: Copy + Into<f64>>(
        v: &[T],
        cols: usize,
        group: &[usize],
        shift: &[f64],
        (lo, hi): (usize, usize),
    ) -> Vec<[f64; 2]> {
        let mut sums = vec![[0.0; 2]; group.len()];
        for row in v[lo * cols..hi * cols].chunks_exact(cols) {
            for ((s, &c), k) in sums.iter_mut().zip(group).zip(shift) {
                let x = row[c].into() - k;
                s[0] += x;
                s[1] += x * x;
            }
        }
        sums
    }
    let (n, cols, g) = (params.rows(), params.cols(), group.len());
    let shift: Vec<f64> = group.iter().map(|&c| params.get(0, c)).collect();
    let parts = over_row_chunks(n, |lo, hi| match params.values() {
        Values::F64(v) => shifted_sums(v, cols, group, &shift, (lo, hi)),
        Values::F32(v) => shifted_sums(v, cols, group, &shift, (lo, hi)),
    });
    (0..g)
        .map(|j| {
            let (s, q) = parts
                .iter()
                .fold((0.0, 0.0), |(s, q), p| (s + p[j][0], q + p[j][1]));
            let mean = s / n as f64;
            let var = (q / n as f64 - mean * mean).max(0.0);
            (shift[j] + mean, var.sqrt())
        })
        .collect()
}

/// `(v − mean) / sd`, or 0 for a constant column.
fn standardise(v: f64, (mean, sd): (f64, f64)) -> f64 {
    if sd > 0.0 { (v - mean) / sd } else { 0.0 }
}

/// The group's columns standardised to mean 0 and sd 1 (constant columns to 0).
pub(crate) fn standardised(params: &Table<'_>, group: &[usize]) -> Vec<Vec<f64>> {
    let n = params.rows();
    let scales = column_scales(params, group);
    group
        .iter()
        .zip(scales)
        .map(|(&c, scale)| {
            (0..n)
                .map(|i| standardise(params.get(i, c), scale))
                .collect()
        })
        .collect()
}

/// Exponent vectors of every monomial in `g` variables of total degree ≤ `degree`,
/// the constant first.
fn monomials(g: usize, degree: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![0; g]];
    for total in 1..=degree {
        let mut current = vec![0; g];
        fn rec(i: usize, left: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if i + 1 == cur.len() {
                cur[i] = left;
                out.push(cur.clone());
                return;
            }
            for e in (0..=left).rev() {
                cur[i] = e;
                rec(i + 1, left - e, cur, out);
            }
        }
        rec(0, total, &mut current, &mut out);
    }
    out
}

/// A cubic regression spline (natural cubic spline in its values at the knots) on
/// `k` knots at the quantiles of `z`: the basis rows `[n, k']` and the penalty
/// `∫ f''²` (`k' × k'`), `k'` being `k` or fewer for data with fewer distinct values.
fn cubic_regression_spline(z: &[f64], k: usize) -> (Vec<f64>, usize, Vec<f64>) {
    let mut sorted = z.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mut knots: Vec<f64> = (0..k)
        .map(|j| sorted[((n - 1) as f64 * j as f64 / (k - 1) as f64).round() as usize])
        .collect();
    knots.dedup();
    let k = knots.len();
    if k < 2 {
        // A constant parameter: the basis is the constant.
        return (vec![1.0; n], 1, vec![0.0]);
    }
    let h: Vec<f64> = knots.windows(2).map(|w| w[1] - w[0]).collect();
    // F maps values at the knots to second derivatives (0 at the ends: natural).
    let mut f = DMatrix::<f64>::zeros(k, k);
    let mut penalty = DMatrix::<f64>::zeros(k, k);
    if k > 2 {
        let mut d = DMatrix::<f64>::zeros(k - 2, k);
        let mut b = DMatrix::<f64>::zeros(k - 2, k - 2);
        for i in 0..k - 2 {
            d[(i, i)] = 1.0 / h[i];
            d[(i, i + 1)] = -1.0 / h[i] - 1.0 / h[i + 1];
            d[(i, i + 2)] = 1.0 / h[i + 1];
            b[(i, i)] = (h[i] + h[i + 1]) / 3.0;
            if i + 1 < k - 2 {
                b[(i, i + 1)] = h[i + 1] / 6.0;
                b[(i + 1, i)] = h[i + 1] / 6.0;
            }
        }
        let interior = b
            .clone()
            .cholesky()
            .expect("B is diagonally dominant")
            .solve(&d);
        f.rows_mut(1, k - 2).copy_from(&interior);
        penalty = d.transpose() * interior;
    }
    let mut x = vec![0.0; n * k];
    for (i, &v) in z.iter().enumerate() {
        let v = v.clamp(knots[0], knots[k - 1]);
        let j = match knots.partition_point(|&t| t <= v) {
            0 => 0,
            p => (p - 1).min(k - 2),
        };
        let (lo, hi, hj) = (knots[j], knots[j + 1], h[j]);
        let (am, ap) = ((hi - v) / hj, (v - lo) / hj);
        let cm = ((hi - v).powi(3) / hj - hj * (hi - v)) / 6.0;
        let cp = ((v - lo).powi(3) / hj - hj * (v - lo)) / 6.0;
        let row = &mut x[i * k..(i + 1) * k];
        row[j] += am;
        row[j + 1] += ap;
        for (c, r) in row.iter_mut().enumerate() {
            *r += cm * f[(j, c)] + cp * f[(j + 1, c)];
        }
    }
    (x, k, penalty.as_slice().to_vec())
}

/// Row-wise Kronecker product of marginal bases, with each margin's penalty lifted to
/// the product (`I ⊗ … ⊗ S_j ⊗ … ⊗ I`).
fn tensor_product(margins: Vec<(Vec<f64>, usize, Vec<f64>)>, n: usize) -> Basis {
    let sizes: Vec<usize> = margins.iter().map(|m| m.1).collect();
    let p: usize = sizes.iter().product();
    // Column-major: term c is the product of one column of every margin.
    let mut x = vec![1.0; n * p];
    for (c, column) in x.chunks_exact_mut(n).enumerate() {
        let mut stride = p;
        for (basis, k, _) in &margins {
            stride /= k;
            let j = (c / stride) % k;
            for (v, row) in column.iter_mut().zip(basis.chunks_exact(*k)) {
                *v *= row[j];
            }
        }
    }
    let mut penalties = Vec::new();
    let mut stride = p;
    for (_, k, s) in &margins {
        stride /= k;
        if s.iter().all(|&v| v == 0.0) {
            continue;
        }
        let mut lifted = vec![0.0; p * p];
        for a in 0..p {
            for b in 0..p {
                // Equal indices on every other margin, S on this one.
                let others_equal = a - (a / stride % k) * stride == b - (b / stride % k) * stride;
                if others_equal {
                    lifted[a * p + b] = s[(a / stride % k) * k + b / stride % k];
                }
            }
        }
        penalties.push(lifted);
    }
    let col_mean = column_means(&x, n);
    Basis {
        x,
        p,
        col_mean,
        shared_lambda: penalties.len() > 2,
        penalties,
        constant: vec![1.0; p],
    }
}

/// Means of the columns of a column-major `n × p` matrix.
fn column_means(x: &[f64], n: usize) -> Vec<f64> {
    x.chunks_exact(n)
        .map(|c| c.iter().sum::<f64>() / n as f64)
        .collect()
}

/// Writes the monomials `terms` of the standardised group columns of rows `start..`
/// of `v` (`cols` columns) into `out` (one slice per term, the chunk's rows of its
/// column), and returns their sums.
fn monomial_rows<T: Copy + Into<f64>>(
    v: &[T],
    cols: usize,
    group: &[usize],
    scales: &[(f64, f64)],
    terms: &[Vec<usize>],
    start: usize,
    out: &mut [&mut [f64]],
) -> Vec<f64> {
    let rows = out.first().map_or(0, |c| c.len());
    let src = v[start * cols..(start + rows) * cols].chunks_exact(cols);
    if terms.len() == group.len() + 1 {
        // Degree 1: the constant and the variables (`monomials`' order), a column at
        // a time.
        out[0].fill(1.0);
        for ((column, &c), &scale) in out[1..].iter_mut().zip(group).zip(scales) {
            for (x, row) in column.iter_mut().zip(src.clone()) {
                *x = standardise(row[c].into(), scale);
            }
        }
        return out.iter().map(|c| c.iter().sum()).collect();
    }
    // Each variable's powers 0 to 3 by multiplication (what `powi` computes for these
    // exponents, without a libm call per element).
    let mut powers = vec![[1.0; 4]; group.len()];
    for (r, row) in src.enumerate() {
        for ((pw, &c), &scale) in powers.iter_mut().zip(group).zip(scales) {
            let z = standardise(row[c].into(), scale);
            *pw = [1.0, z, z * z, z * z * z];
        }
        for (column, e) in out.iter_mut().zip(terms) {
            column[r] = e.iter().zip(&powers).fold(1.0, |acc, (&e, pw)| acc * pw[e]);
        }
    }
    out.iter().map(|c| c.iter().sum()).collect()
}

/// Builds `metamodel`'s basis for the group's columns of `params`.
/// A polynomial basis is written into `buffer` (a previous design's allocation).
pub(crate) fn basis(
    metamodel: Metamodel,
    params: &Table<'_>,
    group: &[usize],
    buffer: Vec<f64>,
) -> Result<Basis> {
    let n = params.rows();
    let g = group.len();
    let polynomial = |degree: usize| {
        let terms = monomials(g, degree);
        let p = terms.len();
        let scales = column_scales(params, group);
        // In parallel chunks of rows, each writing its rows of every column, with
        // the chunk's column sums for the means. Every element is written below:
        // only growth is zeroed.
        let mut x = buffer;
        x.resize(n * p, 0.0);
        let mut columns: Vec<_> = x
            .chunks_mut(n)
            .map(|c| c.chunks_mut(ROWS_PER_TASK))
            .collect();
        let tasks: Vec<Vec<&mut [f64]>> = (0..n.div_ceil(ROWS_PER_TASK))
            .map(|_| columns.iter_mut().filter_map(Iterator::next).collect())
            .collect();
        let sums: Vec<Vec<f64>> = tasks
            .into_par_iter()
            .enumerate()
            .map(|(chunk, mut out)| {
                let out = &mut out[..];
                let start = chunk * ROWS_PER_TASK;
                match params.values() {
                    Values::F64(v) => {
                        monomial_rows(v, params.cols(), group, &scales, &terms, start, out)
                    }
                    Values::F32(v) => {
                        monomial_rows(v, params.cols(), group, &scales, &terms, start, out)
                    }
                }
            })
            .collect();
        let col_mean = add_in_order(sums, p).iter().map(|s| s / n as f64).collect();
        let mut constant = vec![0.0; p];
        constant[0] = 1.0;
        Basis {
            x,
            p,
            col_mean,
            penalties: Vec::new(),
            shared_lambda: false,
            constant,
        }
    };
    match metamodel.resolve(g) {
        Metamodel::Linear => Ok(polynomial(1)),
        Metamodel::Polynomial { degree } if (2..=3).contains(&degree) => Ok(polynomial(degree)),
        Metamodel::Polynomial { degree } => Err(invalid("polynomial degree", degree, "2 or 3")),
        Metamodel::Gam if (1..=4).contains(&g) => {
            let k = [10, 5, 4, 4][g - 1];
            let margins = standardised(params, group)
                .iter()
                .map(|col| cubic_regression_spline(col, k))
                .collect();
            Ok(tensor_product(margins, n))
        }
        Metamodel::Gam => Err(invalid(
            "GAM parameter group size",
            g,
            "1 to 4 parameters (use Polynomial or Auto above 4)",
        )),
        Metamodel::StrongOakley { .. }
        | Metamodel::Sadatsafavi { .. }
        | Metamodel::GaussianProcess { .. }
        | Metamodel::Auto => {
            unreachable!("resolved; the nonparametric estimators and the process have no basis")
        }
    }
}

/// A fitted metamodel: coefficients per response and what their posterior needs.
pub(crate) struct Fit {
    /// `[p, m]`, row-major, including the responses' means.
    pub coefs: Vec<f64>,
    /// Per response: `σ·U·√D⁺` (`p × p`, column-major), for posterior draws.
    pub posterior_factor: Vec<DMatrix<f64>>,
    /// Effective degrees of freedom per response.
    pub edf: Vec<f64>,
}

/// Smoothing-parameter candidates (log10, relative to the normalised penalties).
fn lambda_grid(penalties: usize, shared: bool) -> Vec<Vec<f64>> {
    let one: Vec<f64> = (0..=24).map(|i| -9.0 + 0.5 * i as f64).collect();
    match (penalties, shared) {
        (0, _) => vec![Vec::new()],
        (_, true) | (1, _) => one.iter().map(|&l| vec![l; penalties]).collect(),
        _ => {
            let coarse: Vec<f64> = (0..=12).map(|i| -9.0 + i as f64).collect();
            let mut out = vec![Vec::new()];
            for _ in 0..penalties {
                out = out
                    .into_iter()
                    .flat_map(|prefix| {
                        coarse.iter().map(move |&l| {
                            let mut v = prefix.clone();
                            v.push(l);
                            v
                        })
                    })
                    .collect();
            }
            out
        }
    }
}

/// Penalised least squares of every response column on the design, each with the
/// smoothing parameters that minimise its GCV score; rank-deficient designs are
/// solved by the pseudo-inverse. `y_shift` (what was subtracted from the responses)
/// is added back through `constant`.
pub(crate) fn fit(gram: &Gram, basis: &Basis, y_shift: &[f64]) -> Fit {
    let (p, m, n) = (gram.p, gram.m, gram.rows as f64);
    let g = DMatrix::from_row_slice(p, p, &gram.xtx());
    let xty: Vec<DVector<f64>> = (0..m).map(|k| DVector::from_vec(gram.xty(k))).collect();
    let trace_g = g.trace().max(f64::MIN_POSITIVE);
    let penalties: Vec<DMatrix<f64>> = basis
        .penalties
        .iter()
        .map(|s| {
            let s = DMatrix::from_row_slice(p, p, s);
            let t = s.trace();
            if t > 0.0 { s * (trace_g / t) } else { s }
        })
        .collect();
    struct Best {
        score: f64,
        beta: DVector<f64>,
        factor: DMatrix<f64>,
        edf: f64,
    }
    let mut best: Vec<Option<Best>> = (0..m).map(|_| None).collect();
    for lambdas in lambda_grid(penalties.len(), basis.shared_lambda) {
        let mut h = g.clone();
        for (s, l) in penalties.iter().zip(&lambdas) {
            h += s * 10f64.powf(*l);
        }
        let eig = SymmetricEigen::new(h);
        let top = eig.eigenvalues.iter().fold(0.0f64, |a, &v| a.max(v));
        let inv: DVector<f64> = eig
            .eigenvalues
            .map(|v| if v > top * 1e-11 { 1.0 / v } else { 0.0 });
        let u = &eig.eigenvectors;
        // tr(H⁺G) = Σ_j inv_j · (uⱼᵀ G uⱼ).
        let ug = u.transpose() * &g * u;
        let edf: f64 = (0..p).map(|j| inv[j] * ug[(j, j)]).sum();
        let dof = n - edf;
        for k in 0..m {
            let beta = u * inv.component_mul(&(u.transpose() * &xty[k]));
            let rss = (gram.yty(k) - 2.0 * beta.dot(&xty[k]) + beta.dot(&(&g * &beta))).max(0.0);
            let score = if dof > 0.0 {
                n * rss / (dof * dof)
            } else {
                f64::INFINITY
            };
            if best[k].as_ref().is_none_or(|b| score < b.score) {
                let sigma = if dof > 0.0 { (rss / dof).sqrt() } else { 0.0 };
                let mut factor = u.clone();
                for j in 0..p {
                    factor.column_mut(j).scale_mut(sigma * inv[j].sqrt());
                }
                best[k] = Some(Best {
                    score,
                    beta,
                    factor,
                    edf,
                });
            }
        }
    }
    let mut coefs = vec![0.0; p * m];
    let mut posterior_factor = Vec::with_capacity(m);
    let mut edf = Vec::with_capacity(m);
    for (k, b) in best.into_iter().enumerate() {
        let b = b.expect("the grid has a candidate");
        for j in 0..p {
            coefs[j * m + k] = b.beta[j] + y_shift[k] * basis.constant[j];
        }
        posterior_factor.push(b.factor);
        edf.push(b.edf);
    }
    Fit {
        coefs,
        posterior_factor,
        edf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monomials_count_every_term_once() {
        assert_eq!(monomials(2, 2).len(), 6);
        assert_eq!(monomials(3, 3).len(), 20);
        assert_eq!(monomials(1, 1), vec![vec![0], vec![1]]);
    }

    #[test]
    fn a_cubic_regression_spline_is_a_partition_of_unity_and_fits_a_cubic_exactly_inside() {
        let z: Vec<f64> = (0..200).map(|i| -2.0 + 4.0 * i as f64 / 199.0).collect();
        let (x, k, s) = cubic_regression_spline(&z, 10);
        assert_eq!(k, 10);
        for row in x.chunks_exact(k) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // A straight line has no curvature: its values at the knots are in S's null space.
        let line: Vec<f64> = (0..k)
            .map(|j| z[(199.0 * j as f64 / 9.0).round() as usize])
            .collect();
        let s = DMatrix::from_column_slice(k, k, &s);
        let v = DVector::from_vec(line);
        assert!((v.transpose() * &s * &v)[0].abs() < 1e-9);
    }
}
