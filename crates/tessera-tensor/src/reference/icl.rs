//! The f64 references of the in-context kernels: every quantity formed as the
//! contract writes it, in double precision.

use crate::error::{Result, TesseraError};
use crate::icl::{
    Contexts, ContextualBlock, Dynamics, DynamicsRun, IclBackend, RankOneUpdates, UpdateSequences,
    check_rank_one, validate_dynamics, zero_attention,
};

/// The in-context kernels in f64.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceIcl;

/// `M y` for a row-major `rows × y.len()` matrix.
fn matvec(m: &[f32], y: &[f64]) -> Vec<f64> {
    m.chunks_exact(y.len())
        .map(|row| row.iter().zip(y).map(|(&a, b)| a as f64 * b).sum())
        .collect()
}

/// `Mᵀ y` for a row-major `y.len() × cols` matrix.
fn matvec_t(m: &[f32], y: &[f64], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for (row, &c) in m.chunks_exact(cols).zip(y) {
        for (o, &a) in out.iter_mut().zip(row) {
            *o += a as f64 * c;
        }
    }
    out
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn narrow(x: &[f64]) -> impl Iterator<Item = f32> + '_ {
    x.iter().map(|&v| v as f32)
}

/// One pair's attention: the token mixture `Σ α_i t_i` over `context` then `x`.
fn mixture(block: &ContextualBlock<'_>, context: &[f32], x: &[f32]) -> Vec<f64> {
    let d = block.d_model();
    let xw = widen(x);
    let q = matvec(block.wq(), &xw);
    let qt = matvec_t(block.wk(), &q, d);
    let tokens: Vec<&[f32]> = context.chunks_exact(d).chain([x]).collect();
    let scores: Vec<f64> = tokens
        .iter()
        .map(|t| block.scale() as f64 * t.iter().zip(&qt).map(|(&a, b)| a as f64 * b).sum::<f64>())
        .collect();
    let top = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut mix = vec![0.0; d];
    for (t, w) in tokens.iter().zip(&weights) {
        for (m, &v) in mix.iter_mut().zip(t.iter()) {
            *m += w / total * v as f64;
        }
    }
    mix
}

/// `A(x) = Wv x` and `v = A(x) / ‖A(x)‖²`, or the zero-attention error.
fn alone_and_v(
    block: &ContextualBlock<'_>,
    x: &[f32],
    pair: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let ax = matvec(block.wv(), &widen(x));
    let n2: f64 = ax.iter().map(|a| a * a).sum();
    if n2 < f32::MIN_POSITIVE as f64 {
        return Err(zero_attention(pair));
    }
    let v = ax.iter().map(|a| a / n2).collect();
    Ok((ax, v))
}

/// `u = W Wv (mix − x)`.
fn update_u(block: &ContextualBlock<'_>, mix: &[f64], x: &[f32]) -> Vec<f64> {
    let diff: Vec<f64> = mix.iter().zip(x).map(|(m, &v)| m - v as f64).collect();
    matvec(block.w(), &matvec(block.wv(), &diff))
}

impl IclBackend for ReferenceIcl {
    fn rank_one_updates(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<RankOneUpdates> {
        let pairs = check_rank_one(block, contexts)?;
        let d = block.d_model();
        let mut out = RankOneUpdates {
            m: block.m(),
            d_v: block.d_v(),
            u: Vec::new(),
            v: Vec::new(),
            attended: Vec::new(),
            alone: Vec::new(),
        };
        for b in 0..pairs {
            let x = &contexts.queries[b * d..(b + 1) * d];
            let context = &contexts.tokens[contexts.offsets[b] * d..contexts.offsets[b + 1] * d];
            let (ax, v) = alone_and_v(block, x, b)?;
            let mix = mixture(block, context, x);
            out.u.extend(narrow(&update_u(block, &mix, x)));
            out.v.extend(narrow(&v));
            out.attended.extend(narrow(&matvec(block.wv(), &mix)));
            out.alone.extend(narrow(&ax));
        }
        Ok(out)
    }

    fn update_sequences(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<UpdateSequences> {
        let pairs = check_rank_one(block, contexts)?;
        let d = block.d_model();
        let mut out = UpdateSequences {
            m: block.m(),
            offsets: contexts.offsets.to_vec(),
            u: Vec::new(),
            v: Vec::new(),
            norms: Vec::new(),
            step_norms: Vec::new(),
        };
        for b in 0..pairs {
            let x = &contexts.queries[b * d..(b + 1) * d];
            let (_, v) = alone_and_v(block, x, b)?;
            let vn = norm(&v);
            let mut previous = vec![0.0; block.m()];
            for t in 1..=contexts.offsets[b + 1] - contexts.offsets[b] {
                let context =
                    &contexts.tokens[contexts.offsets[b] * d..(contexts.offsets[b] + t) * d];
                let u = update_u(block, &mixture(block, context, x), x);
                let step: Vec<f64> = u.iter().zip(&previous).map(|(a, p)| a - p).collect();
                out.norms.push((norm(&u) * vn) as f32);
                out.step_norms.push((norm(&step) * vn) as f32);
                out.u.extend(narrow(&u));
                previous = u;
            }
            out.v.extend(narrow(&v));
        }
        Ok(out)
    }

    fn weight_dynamics(&mut self, p: &Dynamics<'_>) -> Result<DynamicsRun> {
        let contexts = validate_dynamics(p)?;
        let d = p.dim;
        let mut run = DynamicsRun {
            dim: d,
            max_steps: p.max_steps,
            weights: Vec::with_capacity(contexts * d * d),
            steps: Vec::new(),
            converged: Vec::new(),
            history: vec![0.0; contexts * p.max_steps],
        };
        let (h, lambda) = (p.step as f64, p.decay as f64);
        for b in 0..contexts {
            let q = widen(&p.queries[b * d..(b + 1) * d]);
            let keys = &p.keys[p.offsets[b] * d..p.offsets[b + 1] * d];
            let mut w: Vec<f64> = p.initial.map_or(vec![0.0; d * d], widen);
            let (mut steps, mut converged) = (0, false);
            while steps < p.max_steps && !converged {
                // qᵀ W k_i = (Wᵀ q) · k_i.
                let mut r = vec![0.0; d];
                for (row, &qi) in w.chunks_exact(d).zip(&q) {
                    for (o, a) in r.iter_mut().zip(row) {
                        *o += a * qi;
                    }
                }
                let scores: Vec<f64> = keys
                    .chunks_exact(d)
                    .map(|k| k.iter().zip(&r).map(|(&a, b)| a as f64 * b).sum())
                    .collect();
                let top = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
                let total: f64 = e.iter().sum();
                let mut s = vec![0.0; d];
                for (k, ei) in keys.chunks_exact(d).zip(&e) {
                    for (o, &a) in s.iter_mut().zip(k) {
                        *o += ei / total * a as f64;
                    }
                }
                let mut change = 0.0;
                for (i, row) in w.chunks_exact_mut(d).enumerate() {
                    for (j, wij) in row.iter_mut().enumerate() {
                        let delta = h * q[i] * s[j] - lambda * *wij;
                        change += delta * delta;
                        *wij += delta;
                    }
                }
                let change = change.sqrt();
                if !change.is_finite() {
                    return Err(TesseraError::Diverged {
                        what: "weight dynamics |dW|",
                        step: steps + 1,
                        value: change,
                    });
                }
                run.history[b * p.max_steps + steps] = change as f32;
                steps += 1;
                converged = change < p.tolerance as f64;
            }
            run.weights.extend(narrow(&w));
            run.steps.push(steps);
            run.converged.push(converged);
        }
        Ok(run)
    }
}
