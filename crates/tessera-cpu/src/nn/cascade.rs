//! The Cascade2 candidate pool on the CPU: the pool's sums and input gradients as two
//! packed GEMMs over all candidates, and each candidate's activations, residual fit
//! and score in contiguous rows, candidates spread over cores.

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

/// `C = A B` with explicit strides (`matrixmultiply`'s packed, threaded SGEMM).
#[allow(clippy::too_many_arguments)]
fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(
        m * k == 0 || last(m, k, rsa, csa) < a.len(),
        "sgemm A out of range"
    );
    assert!(
        k * n == 0 || last(k, n, rsb, csb) < b.len(),
        "sgemm B out of range"
    );
    assert!(m * n <= c.len(), "sgemm C out of range");
    if m * n == 0 {
        return;
    }
    // SAFETY: the assertions above keep every index the strides reach inside `a`,
    // `b` and `c` (C is dense `[m, n]`), and `c` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `(Σ diff a, Σ diff²)` over one candidate's rows for output `j`, with
/// `diff = a o - e` and `err += diff o`, in blocks of f32 lanes added up in f64.
#[inline(always)]
fn fit_output((a, e, err, o): (&[f32], &[f32], &mut [f32], f32)) -> (f64, f64) {
    let (mut total_g, mut total_q) = (0.0f64, 0.0f64);
    for ((a, e), err) in a
        .chunks(BLOCK)
        .zip(e.chunks(BLOCK))
        .zip(err.chunks_mut(BLOCK))
    {
        let (mut g, mut q) = ([0.0f32; LANES], [0.0f32; LANES]);
        let mut lanes = a
            .chunks_exact(LANES)
            .zip(e.chunks_exact(LANES))
            .zip(err.chunks_exact_mut(LANES));
        for ((a, e), err) in lanes.by_ref() {
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
    let (rows, ni, no, nc) = (e.rows, e.inputs, e.outputs, e.candidates);
    if rows == 0 || no == 0 {
        // Nothing to fit: every score is the starting error, every gradient 0.
        scores.fill(e.sse);
        grad_in.fill(0.0);
        grad_out.fill(0.0);
        return;
    }
    // Sums transposed, [candidates, rows], so each candidate's row is contiguous.
    let mut sums = vec![0.0f32; nc * rows];
    sgemm(
        (nc, ni, rows),
        weights_in,
        (ni, 1),
        values,
        (1, ni),
        &mut sums,
    );
    // Residuals transposed, [outputs, rows].
    let mut et = vec![0.0f32; no * rows];
    for p in 0..rows {
        for j in 0..no {
            et[j * rows + p] = residuals[p * no + j];
        }
    }
    let fann = e.derivative == Derivative::Fann;
    let sse = e.sse as f64;
    sums.par_chunks_mut(rows.max(1))
        .zip(grad_out.par_chunks_mut(no.max(1)))
        .zip(scores.par_iter_mut())
        .enumerate()
        .for_each(|(c, ((row, g_out), score))| {
            let unit = units[c];
            let limit = CANDIDATE_SUM_LIMIT / unit.steepness;
            let mut deriv = vec![0.0f32; rows];
            arch.dispatch(Kernel(
                candidate_slice,
                (
                    &mut *row,
                    &mut deriv[..],
                    (unit.activation, unit.steepness, limit, fann),
                ),
            ));
            let mut err = vec![0.0f32; rows];
            let mut fit = sse;
            for j in 0..no {
                let o = weights_out[c * no + j];
                let e_j = &et[j * rows..(j + 1) * rows];
                let (g, q) = arch.dispatch(Kernel(fit_output, (&row[..], e_j, &mut err[..], o)));
                g_out[j] = (2.0 * g) as f32;
                fit -= q;
            }
            *score = fit as f32;
            // The row now holds the input-side error terms f' Σ_j diff o.
            row.copy_from_slice(&deriv);
            arch.dispatch(Kernel(scale_by, (&mut row[..], &err[..])));
        });
    // grad_in = D V: [candidates, rows] x [rows, inputs].
    sgemm((nc, rows, ni), &sums, (rows, 1), values, (ni, 1), grad_in);
}
