//! The Cascade2 candidate pool on the CPU: candidates spread over cores, each one's
//! sums, activations, residual fit, score and gradients computed on contiguous rows
//! of the transposed values, so every loop is a vectorised axpy or dot.
//!
//! One parallel region per epoch and no packed GEMM: the pool's products are small
//! (`rows x inputs` per candidate). Measured on this machine's 2 cores for 2000 rows,
//! 22 inputs, 4 outputs and 80 candidates: 0.9 ms per epoch, against 1.1 ms with the
//! sums and input gradients as two threaded `matrixmultiply` GEMMs.

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::nn::Derivative;
use tessera_tensor::nn::cascade::{CANDIDATE_SUM_LIMIT, CandidateEpoch, CandidateUnit};

use super::activation::candidate_slice;
use crate::dispatch::Kernel;

/// Rows summed in f32 before a partial sum joins the f64 total.
const BLOCK: usize = 256;
/// Lanes of the f32 partial sums (one AVX2 register).
const LANES: usize = 8;

/// `[rows, cols]` row-major to `[cols, rows]`.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; m.len()];
    for (p, row) in m.chunks_exact(cols).enumerate() {
        for (i, &x) in row.iter().enumerate() {
            t[i * rows + p] = x;
        }
    }
    t
}

/// `Σ_i w[i] vt[i, ·]`: one candidate's sums over all rows.
#[inline(always)]
fn candidate_sums((sums, vt, w): (&mut [f32], &[f32], &[f32])) {
    let rows = sums.len();
    sums.fill(0.0);
    for (&wi, col) in w.iter().zip(vt.chunks_exact(rows)) {
        for (s, &v) in sums.iter_mut().zip(col) {
            *s += wi * v;
        }
    }
}

/// `Σ_p x[p] y[p]` in f32 lanes, blocks of [`BLOCK`] rows added up in f64.
#[inline(always)]
fn dot((x, y): (&[f32], &[f32])) -> f64 {
    let mut total = 0.0f64;
    for (x, y) in x.chunks(BLOCK).zip(y.chunks(BLOCK)) {
        let mut acc = [0.0f32; LANES];
        for (x, y) in x.chunks_exact(LANES).zip(y.chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        let tail = x.len() - x.len() % LANES;
        for p in tail..x.len() {
            acc[0] += x[p] * y[p];
        }
        total += acc.iter().map(|&a| a as f64).sum::<f64>();
    }
    total
}

/// `(Σ diff a, Σ diff²)` over one candidate's rows for one output, with
/// `diff = a o - e` and `err += diff o`, in f32 lanes added up in f64.
#[inline(always)]
fn fit_output((a, e, err, o): (&[f32], &[f32], &mut [f32], f32)) -> (f64, f64) {
    let (mut total_g, mut total_q) = (0.0f64, 0.0f64);
    for ((a, e), err) in a
        .chunks(BLOCK)
        .zip(e.chunks(BLOCK))
        .zip(err.chunks_mut(BLOCK))
    {
        let (mut g, mut q) = ([0.0f32; LANES], [0.0f32; LANES]);
        let lanes = a
            .chunks_exact(LANES)
            .zip(e.chunks_exact(LANES))
            .zip(err.chunks_exact_mut(LANES));
        for ((a, e), err) in lanes {
            for l in 0..LANES {
                let diff = a[l] * o - e[l];
                g[l] += diff * a[l];
                q[l] += diff * diff;
                err[l] += diff * o;
            }
        }
        let tail = a.len() - a.len() % LANES;
        for p in tail..a.len() {
            let diff = a[p] * o - e[p];
            g[0] += diff * a[p];
            q[0] += diff * diff;
            err[p] += diff * o;
        }
        total_g += g.iter().map(|&x| x as f64).sum::<f64>();
        total_q += q.iter().map(|&x| x as f64).sum::<f64>();
    }
    (total_g, total_q)
}

/// `d *= err` element-wise: the candidate's input-side error terms.
#[inline(always)]
fn scale_by((d, err): (&mut [f32], &[f32])) {
    for (d, e) in d.iter_mut().zip(err) {
        *d *= e;
    }
}

/// What one candidate reads: transposed values and residuals, and the epoch.
struct Shared<'a> {
    arch: Arch,
    e: CandidateEpoch,
    vt: &'a [f32],
    et: &'a [f32],
}

/// One candidate: its score, output gradients and input gradients.
fn candidate(
    sh: &Shared<'_>,
    unit: CandidateUnit,
    (w_in, w_out): (&[f32], &[f32]),
    (g_in, g_out, score): (&mut [f32], &mut [f32], &mut f32),
) {
    let (arch, rows) = (sh.arch, sh.e.rows);
    let mut act = vec![0.0f32; rows];
    arch.dispatch(Kernel(candidate_sums, (&mut act[..], sh.vt, w_in)));
    let mut terms = vec![0.0f32; rows];
    let limit = CANDIDATE_SUM_LIMIT / unit.steepness;
    let fann = sh.e.derivative == Derivative::Fann;
    let args = (unit.activation, unit.steepness, limit, fann);
    arch.dispatch(Kernel(
        candidate_slice,
        (&mut act[..], &mut terms[..], args),
    ));
    let mut err = vec![0.0f32; rows];
    let mut fit = sh.e.sse as f64;
    for (j, (&o, g)) in w_out.iter().zip(g_out.iter_mut()).enumerate() {
        let e_j = &sh.et[j * rows..(j + 1) * rows];
        let (gj, q) = arch.dispatch(Kernel(fit_output, (&act[..], e_j, &mut err[..], o)));
        *g = (2.0 * gj) as f32;
        fit -= q;
    }
    *score = fit as f32;
    // The input-side error terms f' Σ_j diff o.
    arch.dispatch(Kernel(scale_by, (&mut terms[..], &err[..])));
    for (g, col) in g_in.iter_mut().zip(sh.vt.chunks_exact(rows)) {
        *g = arch.dispatch(Kernel(dot, (&terms[..], col))) as f32;
    }
}

/// One candidate epoch (lengths already checked with [`CandidateEpoch::check`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn candidate_epoch(
    arch: Arch,
    e: CandidateEpoch,
    units: &[CandidateUnit],
    values: &[f32],
    residuals: &[f32],
    weights_in: &[f32],
    weights_out: &[f32],
    grad_in: &mut [f32],
    grad_out: &mut [f32],
    scores: &mut [f32],
) {
    let (rows, ni, no) = (e.rows, e.inputs, e.outputs);
    if rows == 0 || no == 0 {
        // Nothing to fit: every score is the starting error, every gradient 0.
        scores.fill(e.sse);
        grad_in.fill(0.0);
        grad_out.fill(0.0);
        return;
    }
    if ni == 0 {
        // No inputs: every sum is 0, as it is with one input of value 0.
        let one = CandidateEpoch { inputs: 1, ..e };
        let (zeros, w) = (vec![0.0; rows], vec![0.0; units.len()]);
        let mut g = vec![0.0; units.len()];
        let args = (&zeros[..], residuals, &w[..], weights_out);
        return candidate_epoch(
            arch, one, units, args.0, args.1, args.2, args.3, &mut g, grad_out, scores,
        );
    }
    let (vt, et) = (transpose(values, rows, ni), transpose(residuals, rows, no));
    let shared = Shared {
        arch,
        e,
        vt: &vt,
        et: &et,
    };
    units
        .par_iter()
        .zip(weights_in.par_chunks(ni))
        .zip(weights_out.par_chunks(no))
        .zip(grad_in.par_chunks_mut(ni))
        .zip(grad_out.par_chunks_mut(no))
        .zip(scores.par_iter_mut())
        .with_min_len(4)
        .for_each(|(((((&unit, w_in), w_out), g_in), g_out), score)| {
            candidate(&shared, unit, (w_in, w_out), (g_in, g_out, score));
        });
}
