//! The in-context parity suite: scenarios written once against [`IclBackend`] and
//! run, through [`icl_parity_suite!`](crate::icl_parity_suite), against the reference,
//! the CPU backend and the GPU backend.

use proptest::prelude::*;

use super::ReferenceIcl;
use crate::error::{Result, TesseraError};
use crate::icl::{Contexts, ContextualBlock, Dynamics, IclBackend};
use crate::rng::Rng;

/// Relative error an f32 backend may make on a vector, against its natural scale.
const TOLERANCE: f64 = 2e-5;

fn norm(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt()
}

fn norm64(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// `‖got − want‖ ≤ TOLERANCE · scale`, per row of `width`.
fn close_rows(
    what: &str,
    got: &[f32],
    want: &[f32],
    width: usize,
    scale: impl Fn(usize) -> f64,
) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (r, (g, w)) in got
        .chunks(width.max(1))
        .zip(want.chunks(width.max(1)))
        .enumerate()
    {
        let err: f64 = g
            .iter()
            .zip(w)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let bound = TOLERANCE * scale(r) + 1e-30;
        if err.is_nan() || err > bound {
            return Err(format!(
                "{what}[{r}]: error {err} beyond {bound}: {g:?} vs {w:?}"
            ));
        }
    }
    Ok(())
}

/// Builds an in-context backend. Any `Fn() -> Result<B>` is one.
pub trait IclFactory {
    /// The backend it builds.
    type Backend: IclBackend;
    /// A fresh backend.
    fn create(&self) -> Result<Self::Backend>;
}

impl<B: IclBackend, F: Fn() -> Result<B>> IclFactory for F {
    type Backend = B;
    fn create(&self) -> Result<B> {
        self()
    }
}

/// Owned weights and contexts of a random scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    d_model: usize,
    d_k: usize,
    d_v: usize,
    m: usize,
    wq: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    w: Vec<f32>,
    queries: Vec<f32>,
    tokens: Vec<f32>,
    offsets: Vec<usize>,
}

impl Scenario {
    /// Random weights of scale `1/sqrt(fan-in)` and tokens of `lengths` per pair.
    pub fn random(dims: [usize; 4], lengths: &[usize], seed: u64) -> Self {
        let [d_model, d_k, d_v, m] = dims;
        let mut rng = Rng::new(seed);
        let mut matrix = |rows: usize, cols: usize| -> Vec<f32> {
            let s = 1.0 / (cols as f32).sqrt();
            (0..rows * cols).map(|_| s * rng.normal()).collect()
        };
        let wq = matrix(d_k, d_model);
        // Scores of a few units, so the softmax is neither uniform nor one-hot.
        let wk = matrix(d_k, d_model).iter().map(|v| v * 2.0).collect();
        let wv = matrix(d_v, d_model);
        let w = matrix(m, d_v);
        let total: usize = lengths.iter().sum();
        let queries = matrix(lengths.len(), d_model)
            .iter()
            .map(|v| v * (d_model as f32).sqrt())
            .collect();
        let tokens = matrix(total, d_model)
            .iter()
            .map(|v| v * (d_model as f32).sqrt())
            .collect();
        let mut offsets = vec![0];
        for l in lengths {
            offsets.push(offsets.last().unwrap() + l);
        }
        Self {
            d_model,
            d_k,
            d_v,
            m,
            wq,
            wk,
            wv,
            w,
            queries,
            tokens,
            offsets,
        }
    }

    /// The block.
    pub fn block(&self) -> ContextualBlock<'_> {
        ContextualBlock::new(
            self.d_model,
            self.d_k,
            self.d_v,
            self.m,
            &self.wq,
            &self.wk,
            &self.wv,
            &self.w,
        )
        .unwrap()
    }

    /// The pairs.
    pub fn contexts(&self) -> Contexts<'_> {
        Contexts {
            queries: &self.queries,
            tokens: &self.tokens,
            offsets: &self.offsets,
        }
    }

    fn pairs(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Scales of `A(·)` and of `u` for pair `b`: `‖Wv‖ max(‖x‖, ‖t_i‖)` and `‖W‖` times it.
    fn scales(&self, b: usize) -> (f64, f64) {
        let d = self.d_model;
        let x = norm(&self.queries[b * d..(b + 1) * d]);
        let t = self.tokens[self.offsets[b] * d..self.offsets[b + 1] * d]
            .chunks(d)
            .map(norm)
            .fold(x, f64::max);
        let a = norm(&self.wv) * t;
        (a, norm(&self.w) * a)
    }
}

/// Checks a backend's rank-1 updates against the reference's, and the identity
/// `(W + ΔW) A(x) = W A(C, x)` with the backend's own factors (relative 1e-5).
pub fn check_rank_one<F: IclFactory>(f: &F, s: &Scenario) -> std::result::Result<(), String> {
    let mut be = f.create().map_err(|e| e.to_string())?;
    let got = be
        .rank_one_updates(&s.block(), &s.contexts())
        .map_err(|e| e.to_string())?;
    let want = ReferenceIcl
        .rank_one_updates(&s.block(), &s.contexts())
        .unwrap();
    let (a, u) = (|b| s.scales(b).0, |b| s.scales(b).1);
    close_rows("alone", &got.alone, &want.alone, s.d_v, a)?;
    close_rows("attended", &got.attended, &want.attended, s.d_v, a)?;
    close_rows("u", &got.u, &want.u, s.m, u)?;
    // v = A(x)/‖A(x)‖² amplifies A(x)'s error, which is at the scale of ‖Wv‖‖x‖, by
    // 2/‖A(x)‖: a nearly vanishing A(x) is ill-conditioned in every f32 backend.
    close_rows("v", &got.v, &want.v, s.d_v, |b| {
        let v = norm(want.v(b));
        v.max(2.0 * s.scales(b).0 * v * v)
    })?;
    for b in 0..s.pairs() {
        let lhs = got.apply(b, &s.w, &got.alone[b * s.d_v..(b + 1) * s.d_v]);
        let attended = &got.attended[b * s.d_v..(b + 1) * s.d_v];
        let rhs: Vec<f64> =
            s.w.chunks_exact(s.d_v)
                .map(|row| {
                    row.iter()
                        .zip(attended)
                        .map(|(&w, &a)| w as f64 * a as f64)
                        .sum()
                })
                .collect();
        let err = norm64(&lhs.iter().zip(&rhs).map(|(l, r)| l - r).collect::<Vec<_>>());
        let bound = 1e-5 * norm64(&rhs).max(1e-3 * s.scales(b).1);
        if err.is_nan() || err > bound {
            return Err(format!(
                "pair {b}: (W + dW) A(x) is {err} from W A(C, x), beyond {bound}"
            ));
        }
    }
    Ok(())
}

/// Checks the token-by-token updates against the reference's, and that the last step
/// is the whole context's update.
pub fn check_sequences<F: IclFactory>(f: &F, s: &Scenario) -> std::result::Result<(), String> {
    let mut be = f.create().map_err(|e| e.to_string())?;
    let got = be
        .update_sequences(&s.block(), &s.contexts())
        .map_err(|e| e.to_string())?;
    let want = ReferenceIcl
        .update_sequences(&s.block(), &s.contexts())
        .unwrap();
    if got.offsets != want.offsets {
        return Err(format!(
            "offsets {:?}, expected {:?}",
            got.offsets, want.offsets
        ));
    }
    let pair_of = |step: usize| want.offsets.partition_point(|&o| o <= step) - 1;
    close_rows("u", &got.u, &want.u, s.m, |t| s.scales(pair_of(t)).1)?;
    let vnorm = |t: usize| norm(&want.v[pair_of(t) * s.d_v..(pair_of(t) + 1) * s.d_v]);
    // A norm is ‖u‖‖v‖: u's error at its scale, and v's relative error, up to
    // 2‖Wv‖‖x‖/‖A(x)‖ (see `check_rank_one`).
    let bound = |t: usize, norm_t: f32| {
        let (a, u) = s.scales(pair_of(t));
        u * vnorm(t) + 2.0 * a * vnorm(t) * norm_t as f64
    };
    close_rows("norms", &got.norms, &want.norms, 1, |t| {
        bound(t, want.norms[t])
    })?;
    close_rows("step norms", &got.step_norms, &want.step_norms, 1, |t| {
        bound(t, want.step_norms[t])
    })?;
    let whole = be
        .rank_one_updates(&s.block(), &s.contexts())
        .map_err(|e| e.to_string())?;
    for b in 0..s.pairs() {
        let end = got.offsets[b + 1];
        if end > got.offsets[b] {
            close_rows(
                "last step",
                &got.u[(end - 1) * s.m..end * s.m],
                whole.u(b),
                s.m,
                |_| s.scales(b).1,
            )?;
        }
    }
    Ok(())
}

/// Random scenarios: dimensions 1 to 40, 0 to 5 pairs, contexts of 0 to 30 tokens.
pub fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (
        [1usize..=40, 1usize..=24, 1usize..=24, 1usize..=24],
        prop::collection::vec(0usize..=30, 0..=5),
        any::<u64>(),
    )
        .prop_map(|(dims, lengths, seed)| Scenario::random(dims, &lengths, seed))
}

/// Random rank-1 and token-by-token scenarios.
pub fn random_cases<F: IclFactory>(f: &F, cases: u32) {
    super::run_cases(scenario_strategy(), cases, |s| {
        check_rank_one(f, s)?;
        check_sequences(f, s)
    });
}

/// The dimensions of common models, a long context, an empty one and one token.
pub fn model_dimensions<F: IclFactory>(f: &F) {
    for (dims, lengths) in [
        ([384, 64, 384, 384], vec![40, 0, 1]),
        ([768, 64, 96, 200], vec![3, 300]),
        ([1, 1, 1, 1], vec![5, 0]),
    ] {
        let s = Scenario::random(dims, &lengths, dims[0] as u64);
        check_rank_one(f, &s).unwrap_or_else(|e| panic!("{dims:?}: {e}"));
        check_sequences(f, &s).unwrap_or_else(|e| panic!("{dims:?}: {e}"));
        let got = f
            .create()
            .unwrap()
            .rank_one_updates(&s.block(), &s.contexts())
            .unwrap();
        // No context, no update.
        if let Some(b) = lengths.iter().position(|&l| l == 0) {
            assert!(
                got.u(b).iter().all(|&u| u == 0.0),
                "{dims:?}: u of an empty context"
            );
        }
    }
}

/// A toy block (attention, then an MLP whose first layer is `W`): its output with the
/// context equals its output without the context once `W` has the update.
pub fn toy_block_forgets_its_context<F: IclFactory>(f: &F) {
    let s = Scenario::random([16, 8, 12, 10], &[6, 9, 1], 77);
    let mut rng = Rng::new(78);
    let bias: Vec<f64> = (0..s.m).map(|_| 0.1 * rng.normal() as f64).collect();
    let w2: Vec<f64> = (0..3 * s.m).map(|_| rng.normal() as f64).collect();
    let mlp = |z: &[f64]| -> Vec<f64> {
        let hidden: Vec<f64> = z.iter().zip(&bias).map(|(a, b)| (a + b).max(0.0)).collect();
        w2.chunks(s.m)
            .map(|row| row.iter().zip(&hidden).map(|(a, b)| a * b).sum())
            .collect()
    };
    let up = f
        .create()
        .unwrap()
        .rank_one_updates(&s.block(), &s.contexts())
        .unwrap();
    for b in 0..3 {
        let attended: Vec<f64> = up.attended[b * s.d_v..(b + 1) * s.d_v]
            .iter()
            .map(|&a| a as f64)
            .collect();
        let z_context: Vec<f64> =
            s.w.chunks(s.d_v)
                .map(|row| row.iter().zip(&attended).map(|(&w, a)| w as f64 * a).sum())
                .collect();
        let with_context = mlp(&z_context);
        let updated = mlp(&up.apply(b, &s.w, &up.alone[b * s.d_v..(b + 1) * s.d_v]));
        let err = norm64(
            &with_context
                .iter()
                .zip(&updated)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>(),
        );
        assert!(
            err <= 1e-4 * norm64(&with_context).max(1e-6),
            "pair {b}: {with_context:?} vs {updated:?}"
        );
    }
}

/// Random weight dynamics against the reference: the same steps (one more or fewer
/// only where the last norm sits on the tolerance), norms and final weights.
pub fn dynamics_match_the_reference<F: IclFactory>(f: &F) {
    let mut rng = Rng::new(31);
    for case in 0..12 {
        let dim = 1 + rng.below(24);
        let lengths: Vec<usize> = (0..1 + rng.below(5)).map(|_| 1 + rng.below(8)).collect();
        let total: usize = lengths.iter().sum();
        let mut offsets = vec![0];
        for l in &lengths {
            offsets.push(offsets.last().unwrap() + l);
        }
        let scale = 1.0 / (dim as f32).sqrt();
        let queries: Vec<f32> = (0..lengths.len() * dim).map(|_| rng.normal()).collect();
        let keys: Vec<f32> = (0..total * dim).map(|_| scale * rng.normal()).collect();
        let initial: Vec<f32> = (0..dim * dim).map(|_| 0.1 * scale * rng.normal()).collect();
        let problem = Dynamics {
            dim,
            queries: &queries,
            keys: &keys,
            offsets: &offsets,
            initial: (case % 2 == 0).then_some(&initial[..]),
            step: 0.05 + rng.unit(),
            decay: 0.05 + 0.9 * rng.unit(),
            tolerance: 1e-4,
            max_steps: 150,
        };
        let got = f.create().unwrap().weight_dynamics(&problem).unwrap();
        let want = ReferenceIcl.weight_dynamics(&problem).unwrap();
        for b in 0..lengths.len() {
            let (g, w) = (got.norms(b), want.norms(b));
            let common = g.len().min(w.len());
            let on_boundary = |h: &[f32]| {
                h.last()
                    .is_some_and(|&n| (n as f64 - 1e-4).abs() < 1e-3 * 1e-4 + 1e-3 * n as f64)
            };
            if g.len() != w.len()
                && !(g.len().abs_diff(w.len()) == 1 && (on_boundary(g) || on_boundary(w)))
            {
                panic!(
                    "case {case} context {b}: {} steps, expected {}",
                    g.len(),
                    w.len()
                );
            }
            let first = w.first().copied().unwrap_or(1.0) as f64;
            close_rows("norms", &g[..common], &w[..common], 1, |_| 10.0 * first)
                .unwrap_or_else(|e| panic!("case {case} context {b}: {e}"));
            assert_eq!(
                got.converged[b],
                want.converged[b] || g.len() != w.len(),
                "case {case} context {b}"
            );
            let wn = norm(want.weights(b));
            close_rows(
                "weights",
                got.weights(b),
                want.weights(b),
                dim * dim,
                |_| 10.0 * wn,
            )
            .unwrap_or_else(|e| panic!("case {case} context {b}: {e}"));
        }
    }
}

/// With one key and `W_0 = 0` the norms are `h ‖q‖ ‖k‖ (1 − λ)^{t−1}`.
pub fn one_key_norms_decay_geometrically<F: IclFactory>(f: &F) {
    let mut rng = Rng::new(4);
    let dim = 24;
    let q: Vec<f32> = (0..2 * dim).map(|_| rng.normal()).collect();
    let k: Vec<f32> = (0..2 * dim).map(|_| rng.normal()).collect();
    let (h, lambda) = (0.3f32, 0.25f32);
    let run = f
        .create()
        .unwrap()
        .weight_dynamics(&Dynamics {
            dim,
            queries: &q,
            keys: &k,
            offsets: &[0, 1, 2],
            initial: None,
            step: h,
            decay: lambda,
            tolerance: 1e-6,
            max_steps: 40,
        })
        .unwrap();
    for b in 0..2 {
        let first = h as f64 * norm(&q[b * dim..(b + 1) * dim]) * norm(&k[b * dim..(b + 1) * dim]);
        assert_eq!(run.steps[b], 40);
        assert!(!run.converged[b]);
        for (t, &n) in run.norms(b).iter().enumerate() {
            let want = first * (1.0 - lambda as f64).powi(t as i32);
            // ΔW = h q kᵀ − λ W is a difference of terms the size of the first step's,
            // so an f32 backend's error stays at that scale while the norm decays.
            assert!(
                (n as f64 - want).abs() <= 1e-5 * want + 1e-6 * first,
                "context {b} step {}: {n} vs {want}",
                t + 1
            );
        }
    }
}

/// Every bad input is a typed error.
pub fn bad_input_is_typed<F: IclFactory>(f: &F) {
    let s = Scenario::random([4, 3, 3, 2], &[2, 1], 9);
    let mut be = f.create().unwrap();
    let block = s.block();
    let contexts = s.contexts();
    let nan_tokens: Vec<f32> = s
        .tokens
        .iter()
        .enumerate()
        .map(|(i, &v)| if i == 5 { f32::NAN } else { v })
        .collect();
    let short_queries = &s.queries[..7];
    let zero_queries = vec![0.0; 8];
    for (what, c, expect) in [
        (
            "nan token",
            Contexts {
                tokens: &nan_tokens,
                ..contexts
            },
            "NonFinite",
        ),
        (
            "short queries",
            Contexts {
                queries: short_queries,
                ..contexts
            },
            "ShapeMismatch",
        ),
        (
            "offsets past the tokens",
            Contexts {
                offsets: &[0, 2, 4],
                ..contexts
            },
            "InvalidArgument",
        ),
        (
            "decreasing offsets",
            Contexts {
                offsets: &[0, 3, 2, 3],
                ..contexts
            },
            "InvalidArgument",
        ),
        (
            "A(x) = 0",
            Contexts {
                queries: &zero_queries,
                ..contexts
            },
            "InvalidArgument",
        ),
    ] {
        for e in [
            be.rank_one_updates(&block, &c).unwrap_err(),
            be.update_sequences(&block, &c).unwrap_err(),
        ] {
            assert!(format!("{e:?}").starts_with(expect), "{what}: {e:?}");
        }
    }
    assert!(matches!(
        block.with_scale(0.0),
        Err(TesseraError::InvalidArgument { what: "scale", .. })
    ));
    let big = vec![1e5f32; 12];
    assert!(matches!(
        ContextualBlock::new(4, 3, 3, 2, &big, &s.wk, &s.wv, &s.w),
        Err(TesseraError::TooLarge { what: "wq", .. })
    ));
    assert!(matches!(
        ContextualBlock::new(0, 3, 3, 2, &[], &[], &[], &[]),
        Err(TesseraError::InvalidConfig {
            field: "d_model",
            ..
        })
    ));
    let q = [1.0f32, 0.0];
    let k = [0.5f32, 0.5];
    let good = Dynamics {
        dim: 2,
        queries: &q,
        keys: &k,
        offsets: &[0, 1],
        initial: None,
        step: 0.5,
        decay: 0.1,
        tolerance: 1e-3,
        max_steps: 10,
    };
    assert!(be.weight_dynamics(&good).is_ok());
    let nan_initial = [f32::NAN; 4];
    for (what, p) in [
        (
            "no keys",
            Dynamics {
                keys: &[],
                offsets: &[0, 0],
                ..good
            },
        ),
        ("decay 2", Dynamics { decay: 2.0, ..good }),
        ("negative step", Dynamics { step: -1.0, ..good }),
        (
            "tolerance 0",
            Dynamics {
                tolerance: 0.0,
                ..good
            },
        ),
        (
            "no steps",
            Dynamics {
                max_steps: 0,
                ..good
            },
        ),
        (
            "nan initial",
            Dynamics {
                initial: Some(&nan_initial),
                ..good
            },
        ),
        ("dim 0", Dynamics { dim: 0, ..good }),
    ] {
        assert!(be.weight_dynamics(&p).is_err(), "{what}");
    }
}

/// The in-context parity suite as `#[test]` functions, for an expression that
/// evaluates to `Option<impl IclFactory>` (`None` skips) and a number of random cases.
#[macro_export]
macro_rules! icl_parity_suite {
    ($factory:expr, $cases:expr) => {
        #[test]
        fn random_cases() {
            if let Some(f) = $factory {
                $crate::reference::icl_parity::random_cases(&f, $cases);
            }
        }
        $crate::icl_parity_suite!(@tests $factory; model_dimensions,
            toy_block_forgets_its_context, dynamics_match_the_reference,
            one_key_norms_decay_geometrically, bad_input_is_typed);
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $factory {
                    $crate::reference::icl_parity::$name(&f);
                }
            }
        )*
    };
}
