//! The whole training pass of a small dense net in blocks of rows
//! ([`NnKernels::dense_backprop`](tessera_tensor::nn::NnKernels::dense_backprop)).
//!
//! Per layer, a small net's epoch is a handful of GEMMs whose smallest side is a
//! dozen or two, plus element-wise passes. Run one layer at a time over the whole
//! batch, every call pays packing, a thread fork-join and a trip through memory for
//! a few microseconds of arithmetic: FANN's building set (14-32-3, 2104 samples) spent
//! more time in thread wake-ups, packing and passes than in multiply-adds. Here a
//! block of up to [`BLOCK_ROWS`] samples goes forward and backward through every layer
//! while its activations are in cache, with register-blocked GEMMs that need no
//! packing, and the batch is cut into at most [`PARTS`] runs of blocks whose gradients
//! are summed in run order: the same result on any number of threads.

use std::cell::RefCell;

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use tessera_tensor::nn::dense::{DenseBackprop, DenseGrads, DenseLayerRef};
use tessera_tensor::nn::{Derivative, ErrorSums, Loss};

use super::activation::{backward_slice, bias_activation_rows, softmax_backward_rows};
use super::loss::{error_metrics, output_gradient};
use crate::dispatch::SimdLevel;

/// Samples that go through the whole net together.
const BLOCK_ROWS: usize = 128;
/// The fewest samples of a block: smaller batches take fewer, narrower blocks.
const MIN_BLOCK_ROWS: usize = 16;

/// Runs of blocks whose gradients are summed separately (and in parallel), then in
/// order: a constant, so the sums do not depend on the thread count.
const PARTS: usize = 8;
/// The widest layer (inputs included) the fused pass takes.
const MAX_WIDTH: usize = 256;
/// The most inputs per sample the fused pass takes: wider rows are read better by
/// the per-layer path's packed GEMMs (measured: a 256-60-10 net at 256 samples
/// took 475 µs fused, 307 µs per layer; 125-32-2 was faster fused at every batch).
const MAX_INPUTS: usize = 128;
/// The most weights the fused pass takes: they are re-read for every block, so they
/// must stay in the core's L2 cache (64 KiB of them here).
const MAX_WEIGHTS: usize = 1 << 14;

/// Rows per block for a batch of `rows`: [`BLOCK_ROWS`], or for batches under
/// [`PARTS`] full blocks, enough 16-row multiples to give every part a block (so two
/// or more cores share a small batch evenly). A function of `rows` alone, so the
/// sums' order is the same on every machine.
fn block_rows(rows: usize) -> usize {
    let even = rows.div_ceil(PARTS).next_multiple_of(MIN_BLOCK_ROWS);
    even.clamp(MIN_BLOCK_ROWS, BLOCK_ROWS)
}

/// Whether the fused pass suits these layers (narrow and few weights); larger nets
/// keep the per-layer path, whose packed GEMMs run near the core's peak.
pub(super) fn suits(layers: &[DenseLayerRef<'_, Vec<f32>>]) -> bool {
    let weights: usize = layers.iter().map(|l| l.inputs * l.outputs).sum();
    weights <= MAX_WEIGHTS
        && layers.first().is_some_and(|l| l.inputs <= MAX_INPUTS)
        && layers
            .iter()
            .all(|l| l.inputs <= MAX_WIDTH && l.outputs <= MAX_WIDTH)
}

/// Offsets of each layer's weights and biases in one flat gradient buffer.
fn layout(layers: &[DenseLayerRef<'_, Vec<f32>>]) -> (Vec<(usize, usize)>, usize) {
    let mut at = 0;
    let offsets = layers
        .iter()
        .map(|l| {
            let w = at;
            at += l.inputs * l.outputs;
            let b = at;
            at += l.outputs;
            (w, b)
        })
        .collect();
    (offsets, at)
}

thread_local! {
    /// Each thread's block buffers (sums, activations and errors of every layer).
    static BLOCK_SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's per-run gradient sums (taken for a call, then put back).
    static PART_GRADS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// What every block of one call shares.
struct Shared<'a> {
    p: DenseBackprop,
    layers: &'a [DenseLayerRef<'a, Vec<f32>>],
    /// Each layer's weights transposed, `[outputs, inputs]`, for `dZ W^T`.
    transposed: &'a [Vec<f32>],
    offsets: &'a [(usize, usize)],
    x: &'a [f32],
    target: &'a [f32],
    measure: bool,
    /// Samples per block.
    block_rows: usize,
}

/// The fused pass; the caller has checked `p` with [`DenseBackprop::check`] and
/// [`suits`].
pub(super) fn backprop(
    arch: Arch,
    p: DenseBackprop,
    layers: &[DenseLayerRef<'_, Vec<f32>>],
    x: &[f32],
    target: &[f32],
    grads: &mut [DenseGrads<'_, Vec<f32>>],
    metrics: Option<&mut ErrorSums>,
) {
    // 16-lane tiles waste lanes on these narrow layers: at AVX-512 the epochs of
    // FANN's 14-32-3 and 21-32-3 nets measured 1.2-1.3x slower than at AVX2.
    let arch = SimdLevel::of(arch).min(SimdLevel::Avx2).arch();
    let (offsets, params) = layout(layers);
    let transposed: Vec<Vec<f32>> = layers
        .iter()
        .map(|l| {
            let mut t = vec![0.0; l.w.len()];
            for (i, row) in l.w.chunks_exact(l.outputs).enumerate() {
                for (o, &v) in row.iter().enumerate() {
                    t[o * l.inputs + i] = v;
                }
            }
            t
        })
        .collect();
    let block_rows = block_rows(p.rows);
    let blocks = p.rows.div_ceil(block_rows);
    let parts = blocks.clamp(1, PARTS);
    let shared = Shared {
        p,
        layers,
        transposed: &transposed,
        offsets: &offsets,
        x,
        target,
        measure: metrics.is_some(),
        block_rows,
    };
    // Part `i` takes blocks [i blocks / parts, (i + 1) blocks / parts).
    let part_blocks = |i: usize| (i * blocks / parts, (i + 1) * blocks / parts);
    // Taken out of the thread-local rather than borrowed across the parallel loop:
    // while this thread waits there, rayon may run another call's work on it.
    let mut part_grads = PART_GRADS.take();
    {
        // Each part zeroes its own sums.
        if part_grads.len() < parts * params {
            part_grads.resize(parts * params, 0.0);
        }
        let sums = &mut part_grads[..parts * params];
        let mut errors = vec![(0.0f64, 0u64); parts];
        let run = |(i, (sum, err)): (usize, (&mut [f32], &mut (f64, u64)))| {
            let (first, end) = part_blocks(i);
            *err = run_blocks(arch, &shared, first..end, sum);
        };
        if parts == 1 {
            run((0, (&mut sums[..], &mut errors[0])));
        } else {
            sums.par_chunks_mut(params)
                .zip(errors.par_iter_mut())
                .enumerate()
                .for_each(run);
        }
        for ((g, l), &(w_at, b_at)) in grads.iter_mut().zip(layers).zip(&offsets) {
            let (nw, nb) = (l.inputs * l.outputs, l.outputs);
            if transposed_gradient(l) {
                reduce_transposed(g.w, sums, params, w_at, (l.inputs, l.outputs), p.accumulate);
            } else {
                reduce(g.w, sums, params, w_at..w_at + nw, p.accumulate);
            }
            reduce(g.b, sums, params, b_at..b_at + nb, p.accumulate);
        }
        if let Some(acc) = metrics {
            for (sse, fails) in errors {
                acc.sse += sse;
                acc.bit_fails += fails;
            }
        }
    }
    PART_GRADS.set(part_grads);
}

/// Layers narrower than this (in outputs) run their forward pass as dot products and
/// sum their weight gradient transposed, so the vector side is the long one.
const NARROW: usize = 8;

/// Whether a layer's weight gradient is summed as `gW^T = dZ^T X` (`[outputs,
/// inputs]`). Only for narrow layers: with 32 outputs (gene's and mushroom's 120 and
/// 125 inputs) the untransposed tiles measured 15 to 20% faster.
fn transposed_gradient(l: &DenseLayerRef<'_, Vec<f32>>) -> bool {
    l.outputs < NARROW && l.inputs > l.outputs
}

/// `out (+)= (Σ_parts sums[part][at..])^T`: the parts' `[outputs, inputs]` sums added
/// in order into the first part's (contiguous), then transposed once into `out`'s
/// `[inputs, outputs]`.
fn reduce_transposed(
    out: &mut [f32],
    sums: &mut [f32],
    params: usize,
    at: usize,
    (inputs, outputs): (usize, usize),
    keep: bool,
) {
    let len = inputs * outputs;
    let (first, rest) = sums.split_at_mut(params);
    let total = &mut first[at..at + len];
    for part in rest.chunks_exact(params) {
        for (t, &v) in total.iter_mut().zip(&part[at..at + len]) {
            *t += v;
        }
    }
    for (i, row) in out.chunks_exact_mut(outputs).enumerate() {
        for (o, v) in row.iter_mut().enumerate() {
            let sum = total[o * inputs + i];
            *v = if keep { *v + sum } else { sum };
        }
    }
}

/// `out (+)= Σ_parts sums[part][range]`, parts added in order.
fn reduce(out: &mut [f32], sums: &[f32], params: usize, range: std::ops::Range<usize>, keep: bool) {
    if !keep {
        out.fill(0.0);
    }
    for part in sums.chunks_exact(params) {
        for (o, &s) in out.iter_mut().zip(&part[range.clone()]) {
            *o += s;
        }
    }
}

/// Blocks `blocks` of the batch, their gradients summed into `sum` (zeroed here);
/// returns their squared errors and bit fails.
fn run_blocks(
    arch: Arch,
    shared: &Shared<'_>,
    blocks: std::ops::Range<usize>,
    sum: &mut [f32],
) -> (f64, u64) {
    sum.fill(0.0);
    let widths: usize = shared.layers.iter().map(|l| l.outputs).sum();
    // Taken out of the thread-local for the call: a closure around the dispatched
    // kernel would be compiled for the baseline instruction set.
    // Every block writes its buffers before reading them: grown, never cleared.
    let mut scratch = BLOCK_SCRATCH.take();
    let len = 4 * shared.block_rows * widths;
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    let errors = arch.dispatch(BlocksKernel((shared, blocks, &mut scratch[..len], sum)));
    BLOCK_SCRATCH.set(scratch);
    errors
}

/// [`blocks_kernel`] as a pulp operation. Called directly rather than through
/// `crate::dispatch::Kernel`'s `FnOnce`: the compiler's `call_once` shim is not `inline(always)`,
/// and with a body this large it stays a separate function compiled for the baseline
/// instruction set (measured: SSE code, 2x slower).
struct BlocksKernel<'a, 'b>(BlocksArgs<'a, 'b>);

type BlocksArgs<'a, 'b> = (
    &'a Shared<'b>,
    std::ops::Range<usize>,
    &'a mut [f32],
    &'a mut [f32],
);

impl WithSimd for BlocksKernel<'_, '_> {
    type Output = (f64, u64);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> (f64, u64) {
        blocks_kernel(simd, self.0)
    }
}

/// The loop of [`run_blocks`], under SIMD dispatch.
#[inline(always)]
fn blocks_kernel<S: Simd>(
    simd: S,
    (shared, blocks, scratch, sum): BlocksArgs<'_, '_>,
) -> (f64, u64) {
    let mut errors = (0.0, 0);
    for b in blocks {
        let start = b * shared.block_rows;
        let rows = shared.block_rows.min(shared.p.rows - start);
        let (sse, fails) = block(simd, shared, start, rows, scratch, sum);
        errors.0 += sse;
        errors.1 += fails;
    }
    errors
}

/// One block of `rows` samples from `start`: forward, output error, backward, with
/// gradients added into `sum`.
#[inline(always)]
fn block<S: Simd>(
    simd: S,
    s: &Shared<'_>,
    start: usize,
    rows: usize,
    scratch: &mut [f32],
    sum: &mut [f32],
) -> (f64, u64) {
    let layers = s.layers;
    let n = layers.len();
    let inputs = layers[0].inputs;
    let outputs = layers[n - 1].outputs;
    let x = &s.x[start * inputs..(start + rows) * inputs];
    let t = &s.target[start * outputs..(start + rows) * outputs];
    // Four `[rows, outputs]` buffers per layer, carved from the scratch.
    let mut bufs: Vec<[&mut [f32]; 4]> = Vec::with_capacity(n);
    let mut rest = scratch;
    for l in layers {
        let len = rows * l.outputs;
        let (z, r) = rest.split_at_mut(len);
        let (a, r) = r.split_at_mut(len);
        let (dz, r) = r.split_at_mut(len);
        let (da, r) = r.split_at_mut(len);
        rest = r;
        bufs.push([z, a, dz, da]);
    }
    for (i, l) in layers.iter().enumerate() {
        let (before, after) = bufs.split_at_mut(i);
        let input: &[f32] = if i == 0 { x } else { before[i - 1][1] };
        let [z, a, ..] = &mut after[0];
        if l.outputs < NARROW {
            // Few columns: dot products along the contiguous inputs.
            gemm_dot(
                simd,
                (rows, l.outputs, l.inputs),
                input,
                &s.transposed[i],
                z,
            );
        } else {
            gemm_small(
                simd,
                (rows, l.outputs, l.inputs),
                input,
                (l.inputs, 1),
                l.w,
                z,
                false,
            );
        }
        bias_activation_rows((z, a, &l.b[..], l.activation, l.steepness));
    }
    let out = &layers[n - 1];
    let h = s.p.loss.diff_scale(out.activation);
    let errors = if s.measure {
        error_metrics((&bufs[n - 1][1][..], t, h, s.p.bit_fail_limit))
    } else {
        (0.0, 0)
    };
    let gradient = (s.p.loss, h, s.p.scale, out.steepness);
    {
        let [z, a, dz, da] = &mut bufs[n - 1];
        if s.p.loss == Loss::SoftmaxCrossEntropy {
            output_gradient((dz, [a, t], gradient));
        } else {
            output_gradient((da, [a, t], gradient));
            activation_backward(out, s.p.derivative, z, a, da, dz);
        }
    }
    for l in (0..n).rev() {
        let layer = &layers[l];
        let (w_at, b_at) = s.offsets[l];
        let (below, this) = bufs.split_at_mut(l);
        let dz: &[f32] = this[0][2];
        let input: &[f32] = if l == 0 { x } else { below[l - 1][1] };
        let (gw, gb) = sum[w_at..].split_at_mut(b_at - w_at);
        if transposed_gradient(layer) {
            // gW^T += dZ^T input: the inputs are the long, vector side.
            gemm_small(
                simd,
                (layer.outputs, layer.inputs, rows),
                dz,
                (1, layer.outputs),
                input,
                gw,
                true,
            );
        } else {
            // gW += input^T dZ: A(i, q) = input[q, i].
            gemm_small(
                simd,
                (layer.inputs, layer.outputs, rows),
                input,
                (1, layer.inputs),
                dz,
                gw,
                true,
            );
        }
        // gb += 1^T dZ: a one-row product, its sums held in registers.
        let ones = (0, 0);
        gemm_small(simd, (1, layer.outputs, rows), &[1.0], ones, dz, gb, true);
        if l > 0 {
            let prev = &layers[l - 1];
            let [z, a, dz_prev, da] = &mut below[l - 1];
            // dA = dZ W^T, with W^T `[outputs, inputs]` row-major.
            gemm_small(
                simd,
                (rows, layer.inputs, layer.outputs),
                dz,
                (layer.outputs, 1),
                &s.transposed[l],
                da,
                false,
            );
            activation_backward(prev, s.p.derivative, z, a, da, dz_prev);
        }
    }
    errors
}

/// `dz = da f'(z)` for one layer's block, as the per-layer kernel computes it.
#[inline(always)]
fn activation_backward(
    l: &DenseLayerRef<'_, Vec<f32>>,
    derivative: Derivative,
    z: &[f32],
    a: &[f32],
    da: &[f32],
    dz: &mut [f32],
) {
    if l.activation.is_rowwise() {
        softmax_backward_rows((dz, a, da, l.outputs, l.steepness));
    } else {
        let fann = derivative.uses_fann_form(l.activation);
        backward_slice((dz, [z, a, da], (l.activation, l.steepness, fann)));
    }
}

/// `C[i, j] (+)= Σ_q A(i, q) B[q, j]` for `i < m`, `j < n`, `q < k`, with
/// `A(i, q) = a[i rs + q cs]` and `B` (`[k, n]`) and `C` (`[m, n]`) row-major: four
/// rows of `C` at a time, in register tiles of two vectors of columns, then one, then
/// a masked one. Nothing is packed: a block's operands are in L1 or L2 already.
#[inline(always)]
fn gemm_small<S: Simd>(
    simd: S,
    dims: (usize, usize, usize),
    a: &[f32],
    strides: (usize, usize),
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    let (n, lanes) = (dims.1, S::F32_LANES);
    let mut j = 0;
    while j + 2 * lanes <= n {
        column_tile::<S, 2>(simd, dims, a, strides, b, c, accumulate, j);
        j += 2 * lanes;
    }
    if j + lanes <= n {
        column_tile::<S, 1>(simd, dims, a, strides, b, c, accumulate, j);
        j += lanes;
    }
    if j < n {
        partial_tile(simd, dims, a, strides, b, c, accumulate, j);
    }
}

/// Rows of `C` per register tile.
const TILE_ROWS: usize = 4;

/// Columns `j..j + NV lanes` of [`gemm_small`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn column_tile<S: Simd, const NV: usize>(
    simd: S,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (rs, cs): (usize, usize),
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    j: usize,
) {
    const R: usize = TILE_ROWS;
    let width = NV * S::F32_LANES;
    let mut i = 0;
    while i < m {
        let tile_rows = R.min(m - i);
        // An edge tile repeats its last row in the registers it does not store, so
        // every tile runs the same fully unrolled loop.
        let rows: [usize; R] = std::array::from_fn(|r| i + r.min(tile_rows - 1));
        let mut acc = [[simd.splat_f32s(0.0); NV]; R];
        if accumulate {
            for (acc, &row) in acc.iter_mut().zip(&rows) {
                let (row, _) = S::as_simd_f32s(&c[row * n + j..][..width]);
                acc.copy_from_slice(row);
            }
        }
        if k > 0 {
            // Every index of `a` the loop reads, checked once: this loop is the hot
            // path of small-net training, and a check per load adds a third to it.
            assert!(rows[R - 1] * rs + (k - 1) * cs < a.len());
            for q in 0..k {
                let (bq, _) = S::as_simd_f32s(&b[q * n + j..][..width]);
                for (acc, &row) in acc.iter_mut().zip(&rows) {
                    // SAFETY: row <= rows[R - 1] and q < k: within the assertion's bound.
                    let av = simd.splat_f32s(unsafe { *a.get_unchecked(row * rs + q * cs) });
                    for (o, &bv) in acc.iter_mut().zip(bq) {
                        *o = simd.mul_add_e_f32s(av, bv, *o);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(tile_rows) {
            let (row, _) = S::as_mut_simd_f32s(&mut c[(i + r) * n + j..][..width]);
            row.copy_from_slice(acc);
        }
        i += R;
    }
}

/// The last `n - j` columns of [`gemm_small`], fewer than a vector: masked loads of
/// `B`, four rows of `C` at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn partial_tile<S: Simd>(
    simd: S,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (rs, cs): (usize, usize),
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    j: usize,
) {
    const R: usize = TILE_ROWS;
    let width = n - j;
    let mut i = 0;
    while i < m {
        let tile_rows = R.min(m - i);
        let mut acc = [simd.splat_f32s(0.0); R];
        if accumulate {
            for (r, acc) in acc.iter_mut().enumerate().take(tile_rows) {
                *acc = simd.partial_load_f32s(&c[(i + r) * n + j..][..width]);
            }
        }
        for q in 0..k {
            let bq = simd.partial_load_f32s(&b[q * n + j..][..width]);
            for (r, acc) in acc.iter_mut().enumerate().take(tile_rows) {
                let av = simd.splat_f32s(a[(i + r) * rs + q * cs]);
                *acc = simd.mul_add_e_f32s(av, bq, *acc);
            }
        }
        for (r, &acc) in acc.iter().enumerate().take(tile_rows) {
            simd.partial_store_f32s(&mut c[(i + r) * n + j..][..width], acc);
        }
        i += R;
    }
}

/// `C[i, j] = Σ_q A[i, q] B^T[j, q]` with `A` (`[m, k]`), `B^T` (`[n, k]`) and `C`
/// (`[m, n]`) row-major: for narrow `C`, vectors along `k`, then summed.
#[inline(always)]
fn gemm_dot<S: Simd>(
    simd: S,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    bt: &[f32],
    c: &mut [f32],
) {
    for (row, out) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)).take(m) {
        let (row_v, row_tail) = S::as_simd_f32s(row);
        for (col, o) in bt.chunks_exact(k).zip(out.iter_mut()) {
            let (col_v, col_tail) = S::as_simd_f32s(col);
            let mut acc = [simd.splat_f32s(0.0); 2];
            for (pair, (&x, &y)) in row_v.iter().zip(col_v).enumerate() {
                acc[pair % 2] = simd.mul_add_e_f32s(x, y, acc[pair % 2]);
            }
            let tail = simd.mul_add_e_f32s(
                simd.partial_load_f32s(row_tail),
                simd.partial_load_f32s(col_tail),
                simd.add_f32s(acc[0], acc[1]),
            );
            *o = simd.reduce_sum_f32s(tail);
        }
    }
}
