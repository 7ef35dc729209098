//! The in-context kernels on the CPU in f32: the projections of every pair at once as
//! packed SGEMMs (`q̃ = Wkᵀ Wq x`, so a context token costs one dot product, never a
//! projection), the attention mixtures per pair on rayon, and the weight dynamics
//! per context on rayon with the `d × d` sweeps compiled for the dispatched SIMD set.

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::icl::{
    Contexts, ContextualBlock, Dynamics, DynamicsRun, IclBackend, RankOneUpdates, UpdateSequences,
    check_rank_one, validate_dynamics,
};

use crate::dispatch::{SimdLevel, direct_kernel};
use crate::linalg::{dot, sgemm};

/// The CPU implementation of [`IclBackend`].
#[derive(Debug, Clone, Copy)]
pub struct CpuIcl {
    arch: Arch,
}

impl Default for CpuIcl {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuIcl {
    /// A backend with runtime SIMD dispatch.
    pub fn new() -> Self {
        Self {
            arch: crate::dispatch::arch(),
        }
    }

    /// A backend pinned to scalar code.
    pub fn scalar() -> Self {
        Self { arch: Arch::Scalar }
    }

    /// A backend pinned to `level`; an error if this CPU lacks it.
    pub fn with_level(level: SimdLevel) -> Result<Self> {
        Ok(Self {
            arch: level.check_available()?.arch(),
        })
    }
}

/// `out = rows · Mᵀ` for `rows` (`n × cols`) and a row-major `M` (`out_cols × cols`).
fn times_transpose(
    arch: Arch,
    rows: &[f32],
    n: usize,
    cols: usize,
    m: &[f32],
    out_cols: usize,
) -> Vec<f32> {
    let mut out = vec![0.0; n * out_cols];
    sgemm(
        arch,
        (n, cols, out_cols),
        rows,
        (cols, 1),
        m,
        (1, cols),
        &mut out,
    );
    out
}

/// Per pair: `q̃ = Wkᵀ Wq x`, scaled, as rows of `pairs × d_model`.
fn score_vectors(
    arch: Arch,
    block: &ContextualBlock<'_>,
    queries: &[f32],
    pairs: usize,
) -> Vec<f32> {
    let q = times_transpose(
        arch,
        queries,
        pairs,
        block.d_model(),
        block.wq(),
        block.d_k(),
    );
    let mut qt = vec![0.0; pairs * block.d_model()];
    sgemm(
        arch,
        (pairs, block.d_k(), block.d_model()),
        &q,
        (block.d_k(), 1),
        block.wk(),
        (block.d_model(), 1),
        &mut qt,
    );
    qt.iter_mut().for_each(|v| *v *= block.scale());
    qt
}

/// Streams a pair's tokens through an online softmax: after each context token,
/// `diff = Σ α_i (t_i − x)` over the tokens so far and `x` (whose own term is zero, so
/// a weak context costs no cancellation). `emit` sees each prefix's `diff`.
fn mixtures(qt: &[f32], context: &[f32], x: &[f32], mut emit: impl FnMut(&[f32])) -> Vec<f32> {
    let d = x.len();
    let score = |t: &[f32]| dot((qt, t)) as f32;
    let mut top = score(x);
    // Σ e^{s_i − top} (t_i − x) and Σ e^{s_i − top}, x's own weight 1 at the start.
    let mut acc = vec![0.0f32; d];
    let mut total = 1.0f32;
    let mut diff = vec![0.0f32; d];
    for t in context.chunks_exact(d) {
        let s = score(t);
        if s > top {
            let rescale = (top - s).exp();
            acc.iter_mut().for_each(|a| *a *= rescale);
            total *= rescale;
            top = s;
        }
        let e = (s - top).exp();
        total += e;
        for ((a, &ti), &xi) in acc.iter_mut().zip(t).zip(x) {
            *a += e * (ti - xi);
        }
        let inv = 1.0 / total;
        for (o, &a) in diff.iter_mut().zip(&acc) {
            *o = a * inv;
        }
        emit(&diff);
    }
    diff
}

direct_kernel!(
    /// [`transpose_times`] under SIMD dispatch.
    TransposeTimes((&[f32], &[f32], &mut [f32])) -> () => transpose_times
);

direct_kernel!(
    /// [`update_weights`] under SIMD dispatch.
    UpdateWeights((&mut [f32], &[f32], &[f32], f32, f32)) -> f64 => update_weights
);

/// `(r, s) = (Wᵀ q, ·)`: accumulates `r += q_i W_i` over the rows of `W`.
#[inline(always)]
fn transpose_times((w, q, r): (&[f32], &[f32], &mut [f32])) {
    r.iter_mut().for_each(|v| *v = 0.0);
    let d = q.len();
    for (row, &qi) in w.chunks_exact(d).zip(q) {
        for (o, &a) in r.iter_mut().zip(row) {
            *o += qi * a;
        }
    }
}

/// `ΔW = h q sᵀ − λ W`, `W += ΔW`; returns `‖ΔW‖²`, summed per row in f32 lanes and
/// across rows in f64.
#[inline(always)]
fn update_weights((w, q, s, h, lambda): (&mut [f32], &[f32], &[f32], f32, f32)) -> f64 {
    let d = q.len();
    let mut total = 0.0f64;
    for (row, &qi) in w.chunks_exact_mut(d).zip(q) {
        let hq = h * qi;
        let mut acc = [0.0f32; 8];
        for (c, (wij, &sj)) in row.iter_mut().zip(s).enumerate() {
            let delta = hq * sj - lambda * *wij;
            *wij += delta;
            acc[c % 8] += delta * delta;
        }
        total += acc.iter().map(|&a| a as f64).sum::<f64>();
    }
    total
}

impl IclBackend for CpuIcl {
    fn rank_one_updates(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<RankOneUpdates> {
        let pairs = check_rank_one(block, contexts)?;
        let _span = tracing::debug_span!("cpu_rank_one_updates", pairs).entered();
        let (d, d_v) = (block.d_model(), block.d_v());
        let qt = score_vectors(self.arch, block, contexts.queries, pairs);
        // [x; Σ α_i (t_i − x)] of every pair, so one product with Wv gives A(x) and ΔA.
        let mut stacked = vec![0.0f32; 2 * pairs * d];
        stacked[..pairs * d].copy_from_slice(contexts.queries);
        stacked[pairs * d..]
            .par_chunks_mut(d)
            .enumerate()
            .for_each(|(b, out)| {
                let x = &contexts.queries[b * d..(b + 1) * d];
                let context =
                    &contexts.tokens[contexts.offsets[b] * d..contexts.offsets[b + 1] * d];
                out.copy_from_slice(&mixtures(&qt[b * d..(b + 1) * d], context, x, |_| {}));
            });
        let mut alone = times_transpose(self.arch, &stacked, 2 * pairs, d, block.wv(), d_v);
        let delta = alone.split_off(pairs * d_v);
        let u = times_transpose(self.arch, &delta, pairs, d_v, block.w(), block.m());
        RankOneUpdates::from_factors(block.m(), d_v, alone, &delta, u)
    }

    fn update_sequences(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<UpdateSequences> {
        let pairs = check_rank_one(block, contexts)?;
        let _span = tracing::debug_span!("cpu_update_sequences", pairs).entered();
        let (d, d_v, m) = (block.d_model(), block.d_v(), block.m());
        let steps = *contexts.offsets.last().unwrap_or(&0);
        let qt = score_vectors(self.arch, block, contexts.queries, pairs);
        // The queries, then every prefix's Σ α_i (t_i − x) (pair b's steps at its
        // context's rows), so one product with Wv gives A(x) and every ΔA_t.
        let mut stacked = vec![0.0f32; (pairs + steps) * d];
        stacked[..pairs * d].copy_from_slice(contexts.queries);
        let offsets = contexts.offsets;
        let mut rows: Vec<&mut [f32]> = Vec::with_capacity(pairs);
        let mut rest = &mut stacked[pairs * d..];
        for b in 0..pairs {
            let (mine, after) = rest.split_at_mut((offsets[b + 1] - offsets[b]) * d);
            rows.push(mine);
            rest = after;
        }
        rows.into_par_iter().enumerate().for_each(|(b, out)| {
            let x = &contexts.queries[b * d..(b + 1) * d];
            let context = &contexts.tokens[offsets[b] * d..offsets[b + 1] * d];
            let mut next = out.chunks_exact_mut(d);
            mixtures(&qt[b * d..(b + 1) * d], context, x, |diff| {
                next.next()
                    .expect("one row per token")
                    .copy_from_slice(diff);
            });
        });
        let mut alone = times_transpose(self.arch, &stacked, pairs + steps, d, block.wv(), d_v);
        let delta = alone.split_off(pairs * d_v);
        let u = times_transpose(self.arch, &delta, steps, d_v, block.w(), m);
        UpdateSequences::new(m, offsets, u, &alone, d_v)
    }

    fn weight_dynamics(&mut self, p: &Dynamics<'_>) -> Result<DynamicsRun> {
        let contexts = validate_dynamics(p)?;
        let _span = tracing::debug_span!("cpu_weight_dynamics", contexts, dim = p.dim).entered();
        let d = p.dim;
        let mut weights = vec![0.0f32; contexts * d * d];
        let mut history = vec![0.0f32; contexts * p.max_steps];
        let arch = self.arch;
        let outcomes: Vec<Result<(usize, bool)>> = weights
            .par_chunks_mut(d * d)
            .zip(history.par_chunks_mut(p.max_steps))
            .enumerate()
            .map(|(b, (w, norms))| {
                if let Some(w0) = p.initial {
                    w.copy_from_slice(w0);
                }
                let q = &p.queries[b * d..(b + 1) * d];
                let keys = &p.keys[p.offsets[b] * d..p.offsets[b + 1] * d];
                let mut r = vec![0.0f32; d];
                let mut s = vec![0.0f32; d];
                let mut scores = vec![0.0f32; keys.len() / d];
                for (step, norm) in norms.iter_mut().enumerate() {
                    arch.dispatch(TransposeTimes((&*w, q, r.as_mut_slice())));
                    for (sc, k) in scores.iter_mut().zip(keys.chunks_exact(d)) {
                        *sc = dot((&r, k)) as f32;
                    }
                    let top = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let total: f64 = scores.iter().map(|&x| ((x - top) as f64).exp()).sum();
                    s.iter_mut().for_each(|v| *v = 0.0);
                    for (&sc, k) in scores.iter().zip(keys.chunks_exact(d)) {
                        let alpha = (((sc - top) as f64).exp() / total) as f32;
                        for (o, &kj) in s.iter_mut().zip(k) {
                            *o += alpha * kj;
                        }
                    }
                    let change = arch
                        .dispatch(UpdateWeights((&mut *w, q, s.as_slice(), p.step, p.decay)))
                        .sqrt();
                    if !change.is_finite() {
                        return Err(TesseraError::Diverged {
                            what: "weight dynamics |dW|",
                            step: step + 1,
                            value: change,
                        });
                    }
                    *norm = change as f32;
                    if change < p.tolerance as f64 {
                        return Ok((step + 1, true));
                    }
                }
                Ok((p.max_steps, false))
            })
            .collect();
        let mut steps = Vec::with_capacity(contexts);
        let mut converged = Vec::with_capacity(contexts);
        for o in outcomes {
            let (n, c) = o?;
            steps.push(n);
            converged.push(c);
        }
        Ok(DynamicsRun {
            dim: d,
            max_steps: p.max_steps,
            weights,
            steps,
            converged,
            history,
        })
    }
}
