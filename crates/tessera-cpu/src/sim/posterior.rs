//! The CPU parent-set posterior: f64 Gram matrices updated by rank-1 updates, and
//! every set scored from the intercept-eliminated statistics by extending the Cholesky
//! factor of its prefix by one row (a pair costs one square root and one division on
//! top of its first member's, a triple one more), environments in parallel.

use rayon::prelude::*;

use crate::dispatch::{SimdLevel, direct_kernel};
use crate::math::exp_in_place;
use pulp::Arch;
use tessera_tensor::error::Result;
use tessera_tensor::sim::posterior::{
    IndexedSets, PosteriorBackend, PosteriorConfig, PosteriorSummary, SummaryScratch,
    augmented_row, candidate_variable, evidence_constant, summarize_with, target_intervention,
    validate_rows,
};
use tessera_tensor::sim::{Interventions, MAX_PARENTS, NO_PARENT};

/// The CPU implementation of [`PosteriorBackend`], in f64.
#[derive(Debug, Clone)]
pub struct CpuPosterior {
    config: PosteriorConfig,
    /// `[B, (d+1), (d+1)]`; only the upper triangle is kept up to date.
    gram: Vec<f64>,
    sets: IndexedSets,
    arch: Arch,
}

impl CpuPosterior {
    /// An empty posterior (no rows yet), at the widest SIMD level in use
    /// ([`SimdLevel::in_use`]).
    pub fn new(config: &PosteriorConfig) -> Result<Self> {
        Self::with_level(config, SimdLevel::in_use())
    }

    /// An empty posterior pinned to `level`; an error if this CPU lacks it.
    pub fn with_level(config: &PosteriorConfig, level: SimdLevel) -> Result<Self> {
        config.validate()?;
        let arch = level.check_available()?.arch();
        let d1 = config.n_vars + 1;
        Ok(Self {
            gram: vec![0.0; config.batch() * d1 * d1],
            sets: IndexedSets::new(config.n_vars - 1, config.max_parents),
            config: config.clone(),
            arch,
        })
    }

    /// Every set's log marginal likelihood for `env`, in set order, into `out`.
    fn score_env(&self, env: usize, out: &mut Vec<f64>, scratch: &mut Scratch) {
        self.arch.dispatch(ScoreEnv((self, env, out, scratch)));
    }
}

/// `ln` of every element, `x > 0` normal: exponent split, mantissa reduced to
/// [sqrt(1/2), sqrt(2)), then `2 atanh t` to t^19 (below 1e-16 relative). A loop the
/// compiler vectorises, unlike calls to libm.
#[inline(always)]
fn ln_in_place(xs: &mut [f64]) {
    for x in xs.iter_mut() {
        let bits = x.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        let big = m > std::f64::consts::SQRT_2;
        let (m, e) = if big { (m * 0.5, e + 1) } else { (m, e) };
        let t = (m - 1.0) / (m + 1.0);
        let t2 = t * t;
        let mut series = 1.0 / 19.0;
        for k in [17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0, 1.0] {
            series = series * t2 + 1.0 / k;
        }
        *x = e as f64 * std::f64::consts::LN_2 + 2.0 * t * series;
    }
}

/// Scratch of one environment's scoring, reused across environments.
#[derive(Default)]
struct Scratch {
    /// `[m, m]` statistics with the intercept eliminated: `S = Lambda_XX - l0 l0'`.
    s: Vec<f64>,
    /// `[m]` `Z'y` with the intercept eliminated.
    r: Vec<f64>,
    /// Per set of the level being scored: `sum ln L_ii` (the new pivot's log is added
    /// in one pass), `v'v`, and the pivot.
    sum_ln: Vec<f64>,
    vtv: Vec<f64>,
    pivot: Vec<f64>,
    /// Level 2, lexicographic pairs: the factor row `l1` and `v_b|a`, for level 3.
    pair_l1: Vec<f64>,
    pair_v: Vec<f64>,
    pair_inv: Vec<f64>,
    /// `[m]` the diagonal of `S`.
    diag: Vec<f64>,
    logs: Vec<f64>,
}

impl Scratch {
    fn start_level(&mut self) {
        self.sum_ln.clear();
        self.vtv.clear();
        self.pivot.clear();
    }

    /// Appends the level's scores to `out`: the pivots' logs and `ln b_n` in two
    /// vectorised passes.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn finish_level(
        &mut self,
        p: usize,
        constant: f64,
        ln_lambda: f64,
        an: f64,
        b0: f64,
        yy: f64,
        out: &mut Vec<f64>,
    ) {
        self.logs.clear();
        self.logs.extend_from_slice(&self.pivot);
        ln_in_place(&mut self.logs);
        for (s, l) in self.sum_ln.iter_mut().zip(&self.logs) {
            *s += l;
        }
        self.logs.clear();
        self.logs
            .extend(self.vtv.iter().map(|vtv| b0 + 0.5 * (yy - vtv).max(0.0)));
        ln_in_place(&mut self.logs);
        let prior = p as f64 / 2.0 * ln_lambda + constant;
        out.extend(
            self.sum_ln
                .iter()
                .zip(&self.logs)
                .map(|(s, ln_bn)| prior - s - an * ln_bn),
        );
    }
}

/// A pivot floored at the smallest positive f64 against rounding (with `lambda > 0`
/// the matrices are positive definite).
#[inline(always)]
fn pivot(x: f64) -> f64 {
    x.max(f64::MIN_POSITIVE).sqrt()
}

direct_kernel!(
    /// [`score_env`] under SIMD dispatch.
    ScoreEnv((&CpuPosterior, usize, &mut Vec<f64>, &mut Scratch)) -> () => score_env
);

direct_kernel!(
    /// [`exp_in_place`] under SIMD dispatch.
    ExpInPlace(&mut [f64]) -> () => exp_in_place
);

/// One environment's set scores in set order (size 0, 1, 2, 3).
///
/// With the intercept eliminated (`L00 = sqrt(n + lambda)`, `l0_a = G[0, a] / L00`,
/// `v0 = G[0, y] / L00`), `S_ab = G_ab + lambda [a = b] - l0_a l0_b` and
/// `r_a = G_ay - l0_a v0`, the factor of a set's `Lambda` continues from `S`: a single
/// `{a}` has pivot `sqrt(S_aa)` and `v_a = r_a / pivot`; a pair extends its first
/// member's, a triple its first two members'.
#[inline(always)]
fn score_env((post, env, out, w): (&CpuPosterior, usize, &mut Vec<f64>, &mut Scratch)) {
    let c = &post.config;
    let d1 = c.n_vars + 1;
    let target = c.targets[env] as usize;
    let g = &post.gram[env * d1 * d1..][..d1 * d1];
    // Upper triangle only.
    let at = |i: usize, j: usize| if i <= j { g[i * d1 + j] } else { g[j * d1 + i] };
    let y = 1 + target;
    let n = g[0];
    let constant = evidence_constant(c, n);
    let an = c.a0 + n / 2.0;
    let ln_lambda = c.lambda.ln();
    let yy = at(y, y);
    let m = c.n_vars - 1;
    let col = |cand: usize| 1 + candidate_variable(cand, target) as usize;
    let l00 = (n + c.lambda).sqrt();
    let v0 = at(0, y) / l00;
    let base_ln = l00.ln();
    let base_vtv = v0 * v0;
    out.clear();
    // The empty set.
    w.start_level();
    w.sum_ln.push(0.0);
    w.pivot.push(l00);
    w.vtv.push(base_vtv);
    w.finish_level(0, constant, ln_lambda, an, c.b0, yy, out);
    if c.max_parents == 0 {
        return;
    }
    let l0: Vec<f64> = (0..m).map(|a| at(0, col(a)) / l00).collect();
    // The upper triangle of S (all the levels read) from pairs on; singles need only
    // its diagonal. Candidates skip the target, so the Gram columns of candidates
    // `a..target` are `a + 1..` and those of `target..m` are `target + 2..`: two
    // contiguous runs of Gram row `col(a)`.
    w.s.clear();
    w.s.resize(m * m, 0.0);
    for a in 0..m {
        let g_row = &g[col(a) * d1..][..d1];
        let end = if c.max_parents >= 2 { m } else { a + 1 };
        let s_row = &mut w.s[a * m..][..m];
        let split = target.clamp(a, end);
        let runs = [(a..split, 1), (split..end, 2)];
        for (run, offset) in runs {
            let gram = &g_row[run.start + offset..run.end + offset];
            for ((s_ab, &g_ab), &l0_b) in s_row[run.clone()].iter_mut().zip(gram).zip(&l0[run]) {
                *s_ab = g_ab - l0[a] * l0_b;
            }
        }
        s_row[a] += c.lambda;
    }
    w.r.clear();
    w.r.extend((0..m).map(|a| at(col(a), y) - l0[a] * v0));
    // Singles.
    let mut single_inv = vec![0.0; m];
    let mut single_v = vec![0.0; m];
    w.start_level();
    for a in 0..m {
        let d = pivot(w.s[a * m + a]);
        single_inv[a] = 1.0 / d;
        single_v[a] = w.r[a] * single_inv[a];
        w.sum_ln.push(base_ln);
        w.pivot.push(d);
        w.vtv.push(base_vtv + single_v[a] * single_v[a]);
    }
    w.finish_level(1, constant, ln_lambda, an, c.b0, yy, out);
    if c.max_parents == 1 {
        return;
    }
    let single_ln: Vec<f64> = w.sum_ln.clone();
    // The diagonal of S, so that the loops over a set's last member read contiguous
    // memory and vectorise.
    w.diag.clear();
    w.diag.extend((0..m).map(|t| w.s[t * m + t]));
    // Pairs (a, b), a < b, in lexicographic order: the row [l1] under {a}.
    let pairs = m * (m - 1) / 2;
    w.start_level();
    for v in [
        &mut w.pair_l1,
        &mut w.pair_v,
        &mut w.pair_inv,
        &mut w.sum_ln,
        &mut w.pivot,
        &mut w.vtv,
    ] {
        v.resize(pairs, 0.0);
    }
    let mut start = 0;
    for a in 0..m {
        let count = m - a - 1;
        let range = start..start + count;
        start += count;
        let (inv_a, v_a) = (single_inv[a], single_v[a]);
        let vtv_a = base_vtv + v_a * v_a;
        w.sum_ln[range.clone()].fill(single_ln[a]);
        // Slices of one length from distinct fields: no bounds checks, no aliasing, so
        // the loop vectorises.
        let Scratch {
            s,
            r,
            diag,
            pair_l1,
            pair_v,
            pair_inv,
            pivot: pivots,
            vtv,
            ..
        } = &mut *w;
        let (s_row, diag, r) = (
            &s[a * m + a + 1..][..count],
            &diag[a + 1..][..count],
            &r[a + 1..][..count],
        );
        let (l1_out, v_out) = (&mut pair_l1[range.clone()], &mut pair_v[range.clone()]);
        let (inv_out, pivot_out) = (&mut pair_inv[range.clone()], &mut pivots[range.clone()]);
        let vtv_out = &mut vtv[range];
        for k in 0..count {
            let l1 = s_row[k] * inv_a;
            let d = pivot(diag[k] - l1 * l1);
            let inv = 1.0 / d;
            let v = (r[k] - l1 * v_a) * inv;
            (l1_out[k], v_out[k], inv_out[k], pivot_out[k]) = (l1, v, inv, d);
            vtv_out[k] = vtv_a + v * v;
        }
    }
    w.finish_level(2, constant, ln_lambda, an, c.b0, yy, out);
    if c.max_parents == 2 {
        return;
    }
    let pair_ln: Vec<f64> = w.sum_ln.clone();
    let pair_vtv: Vec<f64> = w.vtv.clone();
    // Triples (a, b, t), a < b < t: the row [l1, l2] under {a, b}.
    w.start_level();
    let mut pair = 0;
    for a in 0..m {
        let (inv_a, v_a) = (single_inv[a], single_v[a]);
        let s_a = &w.s[a * m..][..m];
        for b in a + 1..m {
            let (l1_ab, inv_b) = (w.pair_l1[pair], w.pair_inv[pair]);
            let (v_b, ln_ab, vtv_ab) = (w.pair_v[pair], pair_ln[pair], pair_vtv[pair]);
            let first = w.pivot.len();
            let count = m - b - 1;
            for v in [&mut w.sum_ln, &mut w.pivot, &mut w.vtv] {
                v.resize(first + count, 0.0);
            }
            w.sum_ln[first..].fill(ln_ab);
            let inputs = s_a[b + 1..]
                .iter()
                .zip(&w.s[b * m + b + 1..(b + 1) * m])
                .zip(&w.diag[b + 1..])
                .zip(&w.r[b + 1..]);
            for ((pivot_out, vtv_out), (((&s_at, &s_bt), &s_tt), &r_t)) in w.pivot[first..]
                .iter_mut()
                .zip(&mut w.vtv[first..])
                .zip(inputs)
            {
                let l1 = s_at * inv_a;
                let l2 = (s_bt - l1_ab * l1) * inv_b;
                let d = pivot(s_tt - l1 * l1 - l2 * l2);
                let v = (r_t - l1 * v_a - l2 * v_b) / d;
                *pivot_out = d;
                *vtv_out = vtv_ab + v * v;
            }
            pair += 1;
        }
    }
    w.finish_level(3, constant, ln_lambda, an, c.b0, yy, out);
}

impl PosteriorBackend for CpuPosterior {
    fn config(&self) -> &PosteriorConfig {
        &self.config
    }

    fn add_rows(
        &mut self,
        samples: &[f32],
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<()> {
        validate_rows(&self.config, samples, rows, interventions)?;
        let _span =
            tracing::debug_span!("cpu_posterior_add_rows", batch = self.config.batch(), rows)
                .entered();
        let d = self.config.n_vars;
        let d1 = d + 1;
        let targets = &self.config.targets;
        self.gram
            .par_chunks_mut(d1 * d1)
            .enumerate()
            .with_min_len((1 << 14) / (d1 * d1 * rows).max(1) + 1)
            .for_each(|(env, g)| {
                let target = targets[env] as usize;
                let mut a = vec![0.0f64; d1];
                for r in 0..rows {
                    let iv = target_intervention(interventions, env, r, rows, d, target);
                    if !augmented_row(&samples[(env * rows + r) * d..][..d], target, iv, &mut a) {
                        continue;
                    }
                    for i in 0..d1 {
                        let ai = a[i];
                        for (gij, aj) in g[i * d1 + i..(i + 1) * d1].iter_mut().zip(&a[i..]) {
                            *gij += ai * aj;
                        }
                    }
                }
            });
        Ok(())
    }

    fn posterior(&mut self) -> Result<PosteriorSummary> {
        let _span = tracing::debug_span!("cpu_posterior", batch = self.config.batch()).entered();
        let (b, d) = (self.config.batch(), self.config.n_vars);
        let mut marginals = vec![0.0f32; b * d];
        let per_env: Vec<(f32, [u32; MAX_PARENTS], u64)> = marginals
            .par_chunks_mut(d)
            .enumerate()
            .map_init(
                <(Vec<f64>, Scratch, SummaryScratch)>::default,
                |(scores, scratch, summary), (env, m)| {
                    self.score_env(env, scores, scratch);
                    let target = self.config.targets[env] as usize;
                    let (h, map) = summarize_with(
                        &self.config,
                        target,
                        &self.sets,
                        scores,
                        m,
                        summary,
                        |xs| self.arch.dispatch(ExpInPlace(xs)),
                    );
                    (h, map, self.gram[env * (d + 1) * (d + 1)] as u64)
                },
            )
            .collect();
        let mut summary = PosteriorSummary {
            marginals,
            entropy_bits: Vec::with_capacity(b),
            map_sets: Vec::with_capacity(b),
            rows: Vec::with_capacity(b),
        };
        for (h, map, n) in per_env {
            summary.entropy_bits.push(h);
            summary.map_sets.push(map);
            summary.rows.push(n);
        }
        debug_assert!(summary.map_sets.iter().all(
            |s| s.len() == MAX_PARENTS && s.iter().all(|&v| v == NO_PARENT || (v as usize) < d)
        ));
        Ok(summary)
    }

    fn log_marginal_likelihoods(&mut self, env: usize) -> Result<Vec<f64>> {
        self.config.check_env(env)?;
        let mut out = Vec::new();
        self.score_env(env, &mut out, &mut Scratch::default());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn polynomial_ln_agrees_with_libm() {
        let mut xs: Vec<f64> = (0..20_000)
            .map(|i| 1e-300 * 1.05f64.powi(i % 14_000) + i as f64 * 1e-3)
            .collect();
        xs.extend([1.0, 2.0, 0.5, std::f64::consts::SQRT_2, 1e300, 3e-308]);
        let want: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
        super::ln_in_place(&mut xs);
        for (g, w) in xs.iter().zip(&want) {
            assert!((g - w).abs() <= 4e-16 * w.abs().max(1.0), "{g} vs {w}");
        }
    }
}
