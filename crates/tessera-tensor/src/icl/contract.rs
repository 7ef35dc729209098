//! The in-context kernels every backend implements, their inputs and their results.

use crate::error::{Result, TesseraError, check_len, check_magnitude};

/// Largest model, key, value or output dimension.
pub const MAX_DIM: usize = 16_384;
/// Largest magnitude of a weight, token or query value: products of three weight
/// matrices and a token stay far inside f32's range at [`MAX_DIM`].
pub const MAX_MAGNITUDE: f32 = 1e4;
/// Most iterations of the weight dynamics.
pub const MAX_STEPS: usize = 1_000_000;
/// Most values a result may hold (weights of every context, norm histories).
const MAX_RESULT_VALUES: usize = 1 << 30;

fn check_dim(field: &'static str, value: usize) -> Result<()> {
    if value == 0 || value > MAX_DIM {
        return Err(TesseraError::InvalidConfig {
            field,
            value: value.to_string(),
            expected: format!("1..={MAX_DIM}"),
        });
    }
    Ok(())
}

fn check_matrix(what: &'static str, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    check_len(what, data, rows * cols)?;
    check_magnitude(what, data, MAX_MAGNITUDE)
}

/// Checks `offsets` (non-decreasing from 0 to `total`) and returns the number of pairs.
fn check_offsets(what: &'static str, offsets: &[usize], total: usize) -> Result<usize> {
    if offsets.first() != Some(&0) || offsets.last() != Some(&total) {
        return Err(TesseraError::InvalidArgument {
            what,
            value: offsets.last().copied().unwrap_or(0) as f64,
            expected: "offsets from 0 to the number of tokens (one more than the pairs)",
        });
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(TesseraError::InvalidArgument {
            what,
            value: (i + 1) as f64,
            expected: "non-decreasing offsets (this one is below the one before)",
        });
    }
    Ok(offsets.len() - 1)
}

/// A contextual block: single-head attention `A` with `Wq`, `Wk` (`d_k × d_model`)
/// and `Wv` (`d_v × d_model`), followed by a dense layer `W` (`m × d_v`). All
/// row-major.
///
/// For a query token `x` and context tokens `C`, `A(C, x) = Wv Σ_i α_i t_i` over the
/// tokens `t_i` of `C` and `x` itself, `α = softmax(scale · (Wq x)ᵀ (Wk t_i))`; `A(x)`
/// attends to `x` alone, so `A(x) = Wv x`.
#[derive(Debug, Clone, Copy)]
pub struct ContextualBlock<'a> {
    // Private: [`ContextualBlock::new`] and [`ContextualBlock::with_scale`] validate
    // every field, so backends can trust a block without rescanning its weights (one
    // pass over four `d x d` matrices, 5.5 ms at d = 3072 on one core).
    d_model: usize,
    d_k: usize,
    d_v: usize,
    m: usize,
    wq: &'a [f32],
    wk: &'a [f32],
    wv: &'a [f32],
    w: &'a [f32],
    scale: f32,
}

impl<'a> ContextualBlock<'a> {
    /// A block with the usual score scale `1 / sqrt(d_k)`; fails on a dimension
    /// outside `1..=MAX_DIM`, a matrix of the wrong length, or a weight that is not
    /// finite or beyond [`MAX_MAGNITUDE`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        d_model: usize,
        d_k: usize,
        d_v: usize,
        m: usize,
        wq: &'a [f32],
        wk: &'a [f32],
        wv: &'a [f32],
        w: &'a [f32],
    ) -> Result<Self> {
        let block = Self {
            d_model,
            d_k,
            d_v,
            m,
            wq,
            wk,
            wv,
            w,
            scale: 1.0 / (d_k as f32).sqrt(),
        };
        block.check()?;
        Ok(block)
    }

    /// The same block with another score scale (finite, positive).
    pub fn with_scale(self, scale: f32) -> Result<Self> {
        let block = Self { scale, ..self };
        block.check()?;
        Ok(block)
    }

    /// Token dimension.
    pub fn d_model(&self) -> usize {
        self.d_model
    }

    /// Query and key dimension.
    pub fn d_k(&self) -> usize {
        self.d_k
    }

    /// Value dimension (the dense layer's input).
    pub fn d_v(&self) -> usize {
        self.d_v
    }

    /// The dense layer's outputs.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Query weights, `d_k × d_model`.
    pub fn wq(&self) -> &'a [f32] {
        self.wq
    }

    /// Key weights, `d_k × d_model`.
    pub fn wk(&self) -> &'a [f32] {
        self.wk
    }

    /// Value weights, `d_v × d_model`.
    pub fn wv(&self) -> &'a [f32] {
        self.wv
    }

    /// The dense layer, `m × d_v`.
    pub fn w(&self) -> &'a [f32] {
        self.w
    }

    /// Scale of the attention scores.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Fails unless every dimension, matrix and the scale are valid.
    fn check(&self) -> Result<()> {
        check_dim("d_model", self.d_model)?;
        check_dim("d_k", self.d_k)?;
        check_dim("d_v", self.d_v)?;
        check_dim("m", self.m)?;
        check_matrix("wq", self.wq, self.d_k, self.d_model)?;
        check_matrix("wk", self.wk, self.d_k, self.d_model)?;
        check_matrix("wv", self.wv, self.d_v, self.d_model)?;
        check_matrix("w", self.w, self.m, self.d_v)?;
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(TesseraError::InvalidArgument {
                what: "scale",
                value: self.scale as f64,
                expected: "a finite, positive score scale",
            });
        }
        Ok(())
    }
}

/// Query tokens and their contexts: pair `b` is `queries[b]` with the context tokens
/// `offsets[b]..offsets[b + 1]` of `tokens` (an empty context is allowed).
#[derive(Debug, Clone, Copy)]
pub struct Contexts<'a> {
    /// Query tokens, `pairs × d_model`.
    pub queries: &'a [f32],
    /// Every context's tokens, one after the other, `tokens × d_model`.
    pub tokens: &'a [f32],
    /// Where each pair's context starts, and the end of the last: `pairs + 1` values.
    pub offsets: &'a [usize],
}

impl Contexts<'_> {
    /// Checks the shapes and values against tokens of `d_model` and returns the
    /// number of pairs.
    pub fn check(&self, d_model: usize) -> Result<usize> {
        if !self.tokens.len().is_multiple_of(d_model) {
            return Err(TesseraError::ShapeMismatch {
                what: "tokens",
                got: self.tokens.len(),
                expected: self.tokens.len() / d_model * d_model + d_model,
            });
        }
        let pairs = check_offsets("offsets", self.offsets, self.tokens.len() / d_model)?;
        check_matrix("queries", self.queries, pairs, d_model)?;
        check_magnitude("tokens", self.tokens, MAX_MAGNITUDE)?;
        Ok(pairs)
    }

    /// Number of pairs (valid after [`Contexts::check`]).
    pub fn pairs(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

/// Checks a rank-1 call and returns the number of pairs.
pub fn check_rank_one(block: &ContextualBlock<'_>, contexts: &Contexts<'_>) -> Result<usize> {
    // The block was validated when it was built.
    let pairs = contexts.check(block.d_model)?;
    let values = pairs.saturating_mul(block.m + 3 * block.d_v);
    if values > MAX_RESULT_VALUES {
        return Err(TesseraError::InvalidArgument {
            what: "pairs",
            value: pairs as f64,
            expected: "results of at most 2^30 values",
        });
    }
    Ok(pairs)
}

/// The error of a pair whose `A(x)` is zero: no rank-1 update maps it anywhere.
pub fn zero_attention(pair: usize) -> TesseraError {
    TesseraError::InvalidArgument {
        what: "pair whose A(x) = Wv x is zero",
        value: pair as f64,
        expected: "a query token with A(x) != 0 (the update divides by |A(x)|^2)",
    }
}

/// `v = A(x) / ‖A(x)‖²` of each pair from its `A(x)` (rows of `d_v`), the norm summed
/// in f64; the [`zero_attention`] error for the first pair whose `A(x)` vanishes.
pub fn update_vectors(alone: &[f32], d_v: usize) -> Result<Vec<f32>> {
    let mut v = Vec::with_capacity(alone.len());
    for (b, a) in alone.chunks_exact(d_v).enumerate() {
        let n2: f64 = a.iter().map(|&x| x as f64 * x as f64).sum();
        if n2 < f32::MIN_POSITIVE as f64 {
            return Err(zero_attention(b));
        }
        v.extend(a.iter().map(|&x| (x as f64 / n2) as f32));
    }
    Ok(v)
}

/// The rank-1 updates `ΔW = u vᵀ` of a batch of pairs, kept factored: `u = W ΔA`,
/// `v = A(x) / ‖A(x)‖²`, `ΔA = A(C, x) − A(x)`, so that `(W + ΔW) A(x) = W A(C, x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankOneUpdates {
    /// Outputs of the dense layer.
    pub m: usize,
    /// Value dimension.
    pub d_v: usize,
    /// `u` of each pair, `pairs × m`.
    pub u: Vec<f32>,
    /// `v` of each pair, `pairs × d_v`.
    pub v: Vec<f32>,
    /// `A(C, x)` of each pair, `pairs × d_v`.
    pub attended: Vec<f32>,
    /// `A(x)` of each pair, `pairs × d_v`.
    pub alone: Vec<f32>,
}

/// Fails with [`TesseraError::Diverged`] where `u` holds NaN or an infinity (finite
/// inputs whose products overflowed f32).
fn check_u(u: &[f32]) -> Result<()> {
    match u.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(TesseraError::Diverged {
            what: "rank-1 update u",
            step: 0,
            value: u[i] as f64,
        }),
    }
}

impl RankOneUpdates {
    /// The updates of a backend's `A(x)` and `ΔA` (rows of `d_v`) and `u` (rows of
    /// `m`): `v` and `A(C, x) = A(x) + ΔA` are formed here. Fails on a vanishing `A(x)`
    /// or a non-finite `u`.
    pub fn from_factors(
        m: usize,
        d_v: usize,
        alone: Vec<f32>,
        delta: &[f32],
        u: Vec<f32>,
    ) -> Result<Self> {
        let v = update_vectors(&alone, d_v)?;
        check_u(&u)?;
        let attended = alone.iter().zip(delta).map(|(a, b)| a + b).collect();
        Ok(Self {
            m,
            d_v,
            u,
            v,
            attended,
            alone,
        })
    }

    /// Number of pairs.
    pub fn pairs(&self) -> usize {
        self.v.len() / self.d_v.max(1)
    }

    /// `u` of pair `b`.
    pub fn u(&self, b: usize) -> &[f32] {
        &self.u[b * self.m..(b + 1) * self.m]
    }

    /// `v` of pair `b`.
    pub fn v(&self, b: usize) -> &[f32] {
        &self.v[b * self.d_v..(b + 1) * self.d_v]
    }

    /// `‖ΔW‖_F = ‖u‖ ‖v‖` of pair `b`.
    pub fn norm(&self, b: usize) -> f64 {
        let n = |x: &[f32]| x.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
        n(self.u(b)) * n(self.v(b))
    }

    /// `(W + ΔW) y = W y + u (v · y)` for pair `b`, without forming `ΔW`; `w` is the
    /// block's dense layer (`m × d_v`), `y` has `d_v` values. Computed in f64.
    pub fn apply(&self, b: usize, w: &[f32], y: &[f32]) -> Vec<f64> {
        let vy: f64 = self
            .v(b)
            .iter()
            .zip(y)
            .map(|(&a, &c)| a as f64 * c as f64)
            .sum();
        w.chunks_exact(self.d_v)
            .zip(self.u(b))
            .map(|(row, &u)| {
                row.iter()
                    .zip(y)
                    .map(|(&a, &c)| a as f64 * c as f64)
                    .sum::<f64>()
                    + u as f64 * vy
            })
            .collect()
    }
}

/// The updates as each pair's context is consumed one token at a time: after token
/// `t` (from 1), `ΔW_t = u_t vᵀ` is the update for the first `t` tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSequences {
    /// Outputs of the dense layer.
    pub m: usize,
    /// Where pair `b`'s steps start in `u` and the norms (its context length apart).
    pub offsets: Vec<usize>,
    /// `u_t` of every step, `steps × m`.
    pub u: Vec<f32>,
    /// `v` of each pair (the same for every step), `pairs × d_v`.
    pub v: Vec<f32>,
    /// `‖ΔW_t‖_F` of every step.
    pub norms: Vec<f32>,
    /// `‖ΔW_t − ΔW_{t−1}‖_F` of every step (`ΔW_0 = 0`): what token `t` changed.
    pub step_norms: Vec<f32>,
}

impl UpdateSequences {
    /// The sequences of the steps `u` (`steps × m`, pair `b`'s at
    /// `offsets[b]..offsets[b + 1]`) and each pair's `A(x)` (rows of `d_v`): `v` and the
    /// norms `‖u_t‖ ‖v‖` and `‖u_t − u_{t−1}‖ ‖v‖` are formed here, in f64. Fails on a
    /// vanishing `A(x)` or a non-finite `u`.
    pub fn new(
        m: usize,
        offsets: &[usize],
        u: Vec<f32>,
        alone: &[f32],
        d_v: usize,
    ) -> Result<Self> {
        let v = update_vectors(alone, d_v)?;
        check_u(&u)?;
        let pairs = offsets.len().saturating_sub(1);
        let steps = offsets.last().copied().unwrap_or(0);
        let n = |x: &mut dyn Iterator<Item = f64>| x.map(|a| a * a).sum::<f64>().sqrt();
        let mut norms = vec![0.0f32; steps];
        let mut step_norms = vec![0.0f32; steps];
        for b in 0..pairs {
            let vn = n(&mut v[b * d_v..(b + 1) * d_v].iter().map(|&a| a as f64));
            for t in offsets[b]..offsets[b + 1] {
                let ut = &u[t * m..(t + 1) * m];
                norms[t] = (n(&mut ut.iter().map(|&a| a as f64)) * vn) as f32;
                let change = if t == offsets[b] {
                    n(&mut ut.iter().map(|&a| a as f64))
                } else {
                    let prev = &u[(t - 1) * m..t * m];
                    n(&mut ut.iter().zip(prev).map(|(&a, &p)| a as f64 - p as f64))
                };
                step_norms[t] = (change * vn) as f32;
            }
        }
        Ok(Self {
            m,
            offsets: offsets.to_vec(),
            u,
            v,
            norms,
            step_norms,
        })
    }

    /// `‖ΔW_t‖_F` of pair `b`, token by token.
    pub fn norms(&self, b: usize) -> &[f32] {
        &self.norms[self.offsets[b]..self.offsets[b + 1]]
    }

    /// `‖ΔW_t − ΔW_{t−1}‖_F` of pair `b`, token by token.
    pub fn step_norms(&self, b: usize) -> &[f32] {
        &self.step_norms[self.offsets[b]..self.offsets[b + 1]]
    }
}

/// The seed system's weight dynamics, batched over contexts: for context `b` with
/// query `q` and keys `k_i`, from `W_0`,
/// `α = softmax_i(qᵀ W k_i)`, `ΔW = h Σ_i α_i q k_iᵀ − λ W`, `W ← W + ΔW`, until
/// `‖ΔW‖_F < tolerance` or `max_steps` steps.
#[derive(Debug, Clone, Copy)]
pub struct Dynamics<'a> {
    /// Dimension of queries and keys (`W` is `dim × dim`).
    pub dim: usize,
    /// One query per context, `contexts × dim`.
    pub queries: &'a [f32],
    /// Every context's keys, one after the other, `keys × dim`.
    pub keys: &'a [f32],
    /// Where each context's keys start, and the end of the last (each context needs
    /// at least one key).
    pub offsets: &'a [usize],
    /// `W_0`, shared by every context (row-major `dim × dim`); zero when `None`.
    pub initial: Option<&'a [f32]>,
    /// The step size `h`.
    pub step: f32,
    /// The decay `λ`, in `[0, 2)` (the map contracts only there).
    pub decay: f32,
    /// Stop once `‖ΔW‖_F` falls below this.
    pub tolerance: f32,
    /// Most steps per context.
    pub max_steps: usize,
}

/// Checks a dynamics problem and returns the number of contexts.
pub fn validate_dynamics(p: &Dynamics<'_>) -> Result<usize> {
    check_dim("dim", p.dim)?;
    if !p.keys.len().is_multiple_of(p.dim) {
        return Err(TesseraError::ShapeMismatch {
            what: "keys",
            got: p.keys.len(),
            expected: p.keys.len() / p.dim * p.dim + p.dim,
        });
    }
    let contexts = check_offsets("offsets", p.offsets, p.keys.len() / p.dim)?;
    if let Some(b) = p.offsets.windows(2).position(|w| w[1] == w[0]) {
        return Err(TesseraError::InvalidArgument {
            what: "context without keys",
            value: b as f64,
            expected: "at least one key per context (softmax over no keys is undefined)",
        });
    }
    check_matrix("queries", p.queries, contexts, p.dim)?;
    check_magnitude("keys", p.keys, MAX_MAGNITUDE)?;
    if let Some(w0) = p.initial {
        check_matrix("initial", w0, p.dim, p.dim)?;
    }
    for (what, value, ok, expected) in [
        (
            "step",
            p.step,
            p.step.is_finite() && p.step >= 0.0,
            "a finite h >= 0",
        ),
        (
            "decay",
            p.decay,
            (0.0..2.0).contains(&p.decay),
            "0 <= lambda < 2",
        ),
        (
            "tolerance",
            p.tolerance,
            p.tolerance.is_finite() && p.tolerance > 0.0,
            "a finite tolerance > 0",
        ),
    ] {
        if !ok {
            return Err(TesseraError::InvalidArgument {
                what,
                value: value as f64,
                expected,
            });
        }
    }
    if p.max_steps == 0 || p.max_steps > MAX_STEPS {
        return Err(TesseraError::InvalidArgument {
            what: "max_steps",
            value: p.max_steps as f64,
            expected: "1..=1000000 steps",
        });
    }
    let weights = contexts.checked_mul(p.dim * p.dim);
    let history = contexts.checked_mul(p.max_steps);
    if !matches!((weights, history), (Some(w), Some(h)) if w <= MAX_RESULT_VALUES && h <= MAX_RESULT_VALUES)
    {
        return Err(TesseraError::InvalidArgument {
            what: "contexts",
            value: contexts as f64,
            expected: "weights and norm histories of at most 2^30 values each",
        });
    }
    Ok(contexts)
}

/// The weight dynamics' result per context.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicsRun {
    /// `W` is `dim × dim`.
    pub dim: usize,
    /// Most steps a context could take (the stride of `history`).
    pub max_steps: usize,
    /// The final `W` of each context, `contexts × dim × dim`.
    pub weights: Vec<f32>,
    /// Steps each context took.
    pub steps: Vec<usize>,
    /// Whether each context stopped on the tolerance (not the step cap).
    pub converged: Vec<bool>,
    /// `‖ΔW_t‖_F` of each step, `contexts × max_steps` (zero past a context's steps).
    pub history: Vec<f32>,
}

impl DynamicsRun {
    /// `‖ΔW_t‖_F` of context `b`, step by step.
    pub fn norms(&self, b: usize) -> &[f32] {
        let start = b * self.max_steps;
        &self.history[start..start + self.steps[b]]
    }

    /// The final `W` of context `b`.
    pub fn weights(&self, b: usize) -> &[f32] {
        let n = self.dim * self.dim;
        &self.weights[b * n..(b + 1) * n]
    }
}

/// The in-context kernels of one backend. A call that fails returns a typed error and
/// no partial result.
pub trait IclBackend {
    /// The rank-1 update of every pair of `contexts`.
    fn rank_one_updates(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<RankOneUpdates>;

    /// The update after each token of every pair's context, with its norms.
    fn update_sequences(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<UpdateSequences>;

    /// The weight dynamics of every context.
    fn weight_dynamics(&mut self, problem: &Dynamics<'_>) -> Result<DynamicsRun>;
}
