//! The Cascade2 candidate pool on the CPU: the pool's sums and input gradients as two
//! packed GEMMs over all candidates, and each candidate's activations, residual fit
//! and score in contiguous rows, candidates spread over cores; the fit by dot products
//! (`Σ diff² = o² Σa² - 2 o Σae + Σe²`), which vectorise where the three running sums
//! of the direct form did not.
//!
//! Measured on this machine's 2 cores (2000 rows, 4 outputs, 80 candidates): 0.68 ms
//! per epoch at 22 inputs, 0.88 ms at 57. Without the GEMMs (each candidate streaming
//! transposed values) it took 0.82 and 1.65 ms; with the direct-form fit, 0.96 and
//! 1.13 ms.

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::nn::cascade::{CANDIDATE_SUM_LIMIT, CandidateEpoch, CandidateUnit};
use tessera_tensor::nn::{Activation, Derivative};

use super::activation::candidate_slice;
use crate::dispatch::direct_kernel;
use crate::linalg::{dot, sgemm};

direct_kernel!(
    /// [`candidate_slice`] under SIMD dispatch.
    CandidateSlice((&mut [f32], &mut [f32], (Activation, f32, f32, (bool, bool)))) -> () => candidate_slice
);

direct_kernel!(
    /// [`dot`] under SIMD dispatch.
    Dot((&[f32], &[f32])) -> f64 => dot
);

direct_kernel!(
    /// [`residual_terms`] under SIMD dispatch.
    ResidualTerms((&mut [f32], &[f32], &[f32], &[f32])) -> () => residual_terms
);

direct_kernel!(
    /// [`scale_by`] under SIMD dispatch.
    ScaleBy((&mut [f32], &[f32])) -> () => scale_by
);

/// `err[p] = Σ_j diff[p, j] o_j = a[p] ‖o‖² - Σ_j o_j e[j, p]`, element-wise.
#[inline(always)]
fn residual_terms((err, a, et, o): (&mut [f32], &[f32], &[f32], &[f32])) {
    let rows = a.len();
    let oo: f32 = o.iter().map(|x| x * x).sum();
    for (e, &a) in err.iter_mut().zip(a) {
        *e = a * oo;
    }
    for (&oj, e_j) in o.iter().zip(et.chunks_exact(rows)) {
        for (e, &x) in err.iter_mut().zip(e_j) {
            *e -= oj * x;
        }
    }
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
        arch,
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
    let ee: Vec<f64> = et
        .chunks_exact(rows)
        .map(|e_j| arch.dispatch(Dot((e_j, e_j))))
        .collect();
    let fann = (
        e.derivative != Derivative::Exact,
        e.derivative == Derivative::FannCompat,
    );
    let sse = e.sse as f64;
    sums.par_chunks_mut(rows.max(1))
        .zip(grad_out.par_chunks_mut(no.max(1)))
        .zip(scores.par_iter_mut())
        .enumerate()
        .for_each(|(c, ((row, g_out), score))| {
            let unit = units[c];
            let limit = CANDIDATE_SUM_LIMIT / unit.steepness;
            let mut deriv = vec![0.0f32; rows];
            arch.dispatch(CandidateSlice((
                &mut *row,
                &mut deriv[..],
                (unit.activation, unit.steepness, limit, fann),
            )));
            // With diff = a o_j - e_j: Σ diff² = o_j² Σa² - 2 o_j Σ a e_j + Σ e_j² and
            // Σ diff a = o_j Σa² - Σ a e_j, from dot products of contiguous rows (each
            // within f32 rounding of the magnitudes of its terms).
            let o = &weights_out[c * no..(c + 1) * no];
            let a2 = arch.dispatch(Dot((&row[..], &row[..])));
            let mut fit = sse;
            for (j, (&oj, g)) in o.iter().zip(g_out.iter_mut()).enumerate() {
                let e_j = &et[j * rows..(j + 1) * rows];
                let ae = arch.dispatch(Dot((&row[..], e_j)));
                let oj = oj as f64;
                *g = (2.0 * (oj * a2 - ae)) as f32;
                fit -= oj * oj * a2 - 2.0 * oj * ae + ee[j];
            }
            *score = fit as f32;
            let mut err = vec![0.0f32; rows];
            arch.dispatch(ResidualTerms((&mut err[..], &row[..], &et[..], o)));
            // The row now holds the input-side error terms f' Σ_j diff o.
            row.copy_from_slice(&deriv);
            arch.dispatch(ScaleBy((&mut row[..], &err[..])));
        });
    // grad_in = D V: [candidates, rows] x [rows, inputs].
    sgemm(
        arch,
        (nc, rows, ni),
        &sums,
        (rows, 1),
        values,
        (ni, 1),
        grad_in,
    );
}
