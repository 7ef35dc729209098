//! Shortcut networks on the CPU (`tessera_tensor::nn::shortcut`): blocks of 64 rows
//! held transposed (`[columns, rows]`), so every neuron's sum, activation and backward
//! step is a vector loop over the block's rows; blocks spread over cores.
//!
//! The weight gradient is summed per part (at most [`PARTS`] runs of blocks, fixed by
//! the batch alone) and the parts added in order, so the result does not depend on the
//! number of threads.

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::nn::Derivative;
use tessera_tensor::nn::cascade::CANDIDATE_SUM_LIMIT;
use tessera_tensor::nn::shortcut::{ShortcutPass, ShortcutUnit};

use super::activation::{activate_slice, backward_slice};
use crate::dispatch::direct_kernel;
use crate::transpose::planes_to_rows;

/// Rows per block.
const BLOCK: usize = 64;
/// Parts the weight gradient is summed in.
const PARTS: usize = 8;

/// What every block of a pass reads.
#[derive(Clone, Copy)]
struct Net<'a> {
    p: ShortcutPass,
    units: &'a [ShortcutUnit],
    offsets: &'a [usize],
    weights: &'a [f32],
}

/// `rows` rows of `m` (`[rows, cols]`) transposed into `t` (`[cols, rows]`).
fn transpose_in(m: &[f32], cols: usize, t: &mut [f32]) {
    // Rows of `m` are the "planes" of `cols` values each.
    planes_to_rows(m, cols, m.len() / cols, t);
}

/// The inverse of [`transpose_in`].
fn transpose_out(t: &[f32], cols: usize, m: &mut [f32]) {
    planes_to_rows(t, m.len() / cols, cols, m);
}

/// `acc += w x` element-wise.
#[inline(always)]
fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += w * x;
    }
}

/// `Σ a b` in eight lanes (vectorisable).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

direct_kernel!(
    /// [`forward_block`] under SIMD dispatch.
    ForwardBlock((&mut [f32], &mut [f32], &mut [f32], Net<'_>)) -> () => forward_block
);

direct_kernel!(
    /// [`backward_block`] under SIMD dispatch.
    BackwardBlock((&mut [f32], &mut [f32], [&[f32]; 3], (Net<'_>, Derivative))) -> () => backward_block
);

/// The sums of every unit over one block (`vt`: `[width, rows]`, inputs and bias
/// filled), the hidden values into `vt`, the outputs into `yt` (`[outputs, rows]`),
/// the sums into `st` (`[units, rows]`).
#[inline(always)]
fn forward_block((vt, st, yt, net): (&mut [f32], &mut [f32], &mut [f32], Net<'_>)) {
    let rows = st.len() / net.p.units();
    let n = net.p.inputs;
    for (u, unit) in net.units.iter().enumerate() {
        let (read, rest) = vt.split_at_mut((n + 1 + u.min(net.p.hidden)) * rows);
        let sum = &mut st[u * rows..(u + 1) * rows];
        sum.fill(0.0);
        let w = &net.weights[net.offsets[u]..net.offsets[u] + unit.fan_in];
        for (&wi, col) in w.iter().zip(read.chunks_exact(rows)) {
            axpy(sum, wi, col);
        }
        let s = unit.steepness;
        let out = if u < net.p.hidden {
            let limit = CANDIDATE_SUM_LIMIT / s.abs();
            if limit.is_finite() {
                sum.iter_mut().for_each(|x| *x = x.clamp(-limit, limit));
            }
            &mut rest[..rows]
        } else {
            let j = u - net.p.hidden;
            &mut yt[j * rows..(j + 1) * rows]
        };
        activate_slice(unit.activation, s, sum, out);
    }
}

/// One block's backward: `dt` (`[units, rows]`) receives the deltas, `grad` the
/// block's weight gradient added to it; `vt`, `st`, `dyt` transposed as the forward
/// left them.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn backward_block(
    (dt, grad, [vt, st, dyt], (net, derivative)): (
        &mut [f32],
        &mut [f32],
        [&[f32]; 3],
        (Net<'_>, Derivative),
    ),
) {
    let p = net.p;
    let rows = st.len() / p.units();
    let n = p.inputs;
    dt[..p.hidden * rows].fill(0.0);
    let mut upstream = vec![0.0f32; rows];
    let mut out = vec![0.0f32; rows];
    for (u, unit) in net.units.iter().enumerate().rev() {
        let (before, this) = dt.split_at_mut(u * rows);
        let delta = &mut this[..rows];
        let sum = &st[u * rows..(u + 1) * rows];
        let (s, a) = (unit.steepness, unit.activation);
        let y: &[f32] = if u < p.hidden {
            upstream.copy_from_slice(delta);
            &vt[(n + 1 + u) * rows..(n + 2 + u) * rows]
        } else {
            let j = u - p.hidden;
            upstream.copy_from_slice(&dyt[j * rows..(j + 1) * rows]);
            activate_slice(a, s, sum, &mut out);
            &out
        };
        let fann = derivative.uses_fann_form(a);
        backward_slice((delta, [sum, y, &upstream], (a, s, fann)));
        let off = net.offsets[u];
        let w = &net.weights[off..off + unit.fan_in];
        // Hidden neuron k is column n + 1 + k: its upstream gathers delta w.
        for (k, &wk) in w[n + 1..].iter().enumerate() {
            axpy(&mut before[k * rows..(k + 1) * rows], wk, delta);
        }
        for (g, col) in grad[off..off + unit.fan_in]
            .iter_mut()
            .zip(vt.chunks_exact(rows))
        {
            *g += dot(delta, col);
        }
    }
}

/// The forward pass (shapes already checked).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    arch: Arch,
    p: ShortcutPass,
    units: &[ShortcutUnit],
    offsets: &[usize],
    weights: &[f32],
    x: &[f32],
    values: &mut [f32],
    sums: &mut [f32],
    y: &mut [f32],
) {
    if p.rows == 0 {
        return;
    }
    let (n, width, nu, no) = (p.inputs, p.width(), p.units(), p.outputs);
    let net = Net {
        p,
        units,
        offsets,
        weights,
    };
    x.par_chunks(BLOCK * n)
        .zip(values.par_chunks_mut(BLOCK * width))
        .zip(sums.par_chunks_mut(BLOCK * nu))
        .zip(y.par_chunks_mut(BLOCK * no))
        .for_each(|(((x, v), s), y)| {
            let rows = x.len() / n;
            let mut vt = vec![0.0f32; width * rows];
            let mut st = vec![0.0f32; nu * rows];
            let mut yt = vec![0.0f32; no * rows];
            transpose_in(x, n, &mut vt[..n * rows]);
            vt[n * rows..(n + 1) * rows].fill(1.0);
            arch.dispatch(ForwardBlock((&mut vt[..], &mut st[..], &mut yt[..], net)));
            transpose_out(&vt, width, v);
            transpose_out(&st, nu, s);
            transpose_out(&yt, no, y);
        });
}

/// The backward pass (shapes already checked).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    arch: Arch,
    p: ShortcutPass,
    units: &[ShortcutUnit],
    offsets: &[usize],
    (derivative, accumulate): (Derivative, bool),
    weights: &[f32],
    [values, sums, dy]: [&[f32]; 3],
    deltas: &mut [f32],
    grad: &mut [f32],
) {
    if !accumulate {
        grad.fill(0.0);
    }
    if p.rows == 0 {
        return;
    }
    let (width, nu, no) = (p.width(), p.units(), p.outputs);
    let net = Net {
        p,
        units,
        offsets,
        weights,
    };
    let blocks = p.rows.div_ceil(BLOCK);
    let part_rows = blocks.div_ceil(PARTS) * BLOCK;
    let partials: Vec<Vec<f32>> = values
        .par_chunks(part_rows * width)
        .zip(sums.par_chunks(part_rows * nu))
        .zip(dy.par_chunks(part_rows * no))
        .zip(deltas.par_chunks_mut(part_rows * nu))
        .map(|(((v, s), dy), d)| {
            let mut g = vec![0.0f32; grad.len()];
            let blocks = v
                .chunks(BLOCK * width)
                .zip(s.chunks(BLOCK * nu))
                .zip(dy.chunks(BLOCK * no))
                .zip(d.chunks_mut(BLOCK * nu));
            for (((v, s), dy), d) in blocks {
                let rows = s.len() / nu;
                let (mut vt, mut st) = (vec![0.0f32; width * rows], vec![0.0f32; nu * rows]);
                let (mut dyt, mut dt) = (vec![0.0f32; no * rows], vec![0.0f32; nu * rows]);
                transpose_in(v, width, &mut vt);
                transpose_in(s, nu, &mut st);
                transpose_in(dy, no, &mut dyt);
                arch.dispatch(BackwardBlock((
                    &mut dt[..],
                    &mut g[..],
                    [&vt[..], &st[..], &dyt[..]],
                    (net, derivative),
                )));
                transpose_out(&dt, nu, d);
            }
            g
        })
        .collect();
    for part in partials {
        for (g, x) in grad.iter_mut().zip(part) {
            *g += x;
        }
    }
}
