//! The CPU value-of-information reductions: rayon over chunks of rows, the
//! willingness-to-pay grid in SIMD lanes, sums in f64 per chunk combined pairwise.

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::error::Result;
use tessera_tensor::voi::{
    Decision, DecisionSums, FittedLayout, Gram, MAX_STRATEGIES, Table, Values, VoiBackend,
    no_design, validate_decision, validate_design, validate_fitted,
};

use crate::dispatch::{SimdLevel, direct_kernel};

/// Rows per rayon task: the rows of a chunk stay in cache across the grid.
const CHUNK_ROWS: usize = 1024;
/// Grid values per SIMD block (eight f64 lanes of AVX-512, two of NEON's).
const LANES: usize = 8;

/// The CPU implementation of [`VoiBackend`], in f64 for f64 and f32 input alike.
pub struct CpuVoi {
    arch: Arch,
    design: Option<(Vec<f64>, usize)>,
}

impl std::fmt::Debug for CpuVoi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuVoi")
            .field("design_columns", &self.design.as_ref().map(|d| d.1))
            .finish()
    }
}

impl Default for CpuVoi {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuVoi {
    /// A backend with runtime SIMD dispatch and no design loaded.
    pub fn new() -> Self {
        Self {
            arch: crate::dispatch::arch(),
            design: None,
        }
    }

    /// A backend pinned to scalar code (the parity suite runs both).
    pub fn scalar() -> Self {
        Self {
            arch: Arch::Scalar,
            design: None,
        }
    }

    /// A backend pinned to `level`; an error if this CPU lacks it.
    pub fn with_level(level: SimdLevel) -> Result<Self> {
        Ok(Self {
            arch: level.check_available()?.arch(),
            design: None,
        })
    }
}

/// A row-major `[rows, D]` block of one table, as f64 or f32.
#[derive(Clone, Copy)]
enum Rows<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
}

impl<'a> Rows<'a> {
    fn of(t: &Table<'a>, start: usize, end: usize) -> Self {
        let (a, b) = (start * t.cols(), end * t.cols());
        match t.values() {
            Values::F64(v) => Rows::F64(&v[a..b]),
            Values::F32(v) => Rows::F32(&v[a..b]),
        }
    }
}

direct_kernel!(
    /// [`net_benefit_rows`] under SIMD dispatch.
    NetBenefitRows<T>((&[T], usize, usize)) -> DecisionSums => net_benefit_rows::<T>
    where T: Copy + Into<f64>
);

direct_kernel!(
    /// [`cost_effect_rows`] under SIMD dispatch.
    CostEffectRows<T>((&[T], &[T], usize, &[f64], &[u32])) -> Vec<DecisionSums> => cost_effect_rows::<T>
    where T: Copy + Into<f64>
);

direct_kernel!(
    /// [`gram_chunk`] under SIMD dispatch.
    GramChunk((&[Vec<f64>], usize)) -> Vec<f64> => gram_chunk
);

direct_kernel!(
    /// [`fitted_rows`] under SIMD dispatch.
    FittedRows((&[f64], &[f64], usize, usize)) -> Vec<f64> => fitted_rows
);

/// Sums of net-benefit rows `[rows, d]` against `reference`.
#[inline(always)]
fn net_benefit_rows<T: Copy + Into<f64>>((nb, d, reference): (&[T], usize, usize)) -> DecisionSums {
    let mut s = DecisionSums::zero(d, reference);
    let mut sum_max = 0.0;
    for row in nb.chunks_exact(d) {
        let r: f64 = row[reference].into();
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for (j, (&v, acc)) in row.iter().zip(s.sum_inc.iter_mut()).enumerate() {
            let inc = v.into() - r;
            *acc += inc;
            if inc > best_v {
                best_v = inc;
                best = j;
            }
        }
        sum_max += best_v;
        s.optimal[best] += 1;
    }
    s.rows = (nb.len() / d) as u64;
    s.sum_max = sum_max;
    s
}

/// Accumulators of one block of `LANES` grid values.
struct Lanes {
    max: [f64; LANES],
    inc: Vec<[f64; LANES]>,
    optimal: Vec<[u64; LANES]>,
}

/// Sums of cost and effect rows at the grid values `wtp` (at most `LANES`), each
/// against its reference: the grid runs in SIMD lanes.
#[inline(always)]
fn cost_effect_rows<T: Copy + Into<f64>>(
    (costs, effects, d, wtp, reference): (&[T], &[T], usize, &[f64], &[u32]),
) -> Vec<DecisionSums> {
    let lanes = wtp.len();
    let mut k = [0.0; LANES];
    let mut refs = [0usize; LANES];
    for l in 0..lanes {
        k[l] = wtp[l];
        refs[l] = reference[l] as usize;
    }
    // Padding lanes repeat the last value and are dropped at the end.
    for l in lanes..LANES {
        k[l] = wtp[lanes - 1];
        refs[l] = refs[lanes - 1];
    }
    let mut acc = Lanes {
        max: [0.0; LANES],
        inc: vec![[0.0; LANES]; d],
        optimal: vec![[0; LANES]; d],
    };
    let mut c = [0.0f64; MAX_STRATEGIES];
    let mut e = [0.0f64; MAX_STRATEGIES];
    let mut v = [[0.0f64; LANES]; MAX_STRATEGIES];
    for (crow, erow) in costs.chunks_exact(d).zip(effects.chunks_exact(d)) {
        for j in 0..d {
            c[j] = crow[j].into();
            e[j] = erow[j].into();
        }
        let mut base = [0.0; LANES];
        for l in 0..LANES {
            base[l] = k[l] * e[refs[l]] - c[refs[l]];
        }
        // Branch-free over the lanes: increments, their maximum, then the first
        // strategy reaching it (the lowest index on ties).
        let mut best = [f64::NEG_INFINITY; LANES];
        for j in 0..d {
            let (cj, ej) = (c[j], e[j]);
            let (vj, inc) = (&mut v[j], &mut acc.inc[j]);
            for l in 0..LANES {
                let x = k[l] * ej - cj - base[l];
                vj[l] = x;
                inc[l] += x;
                best[l] = best[l].max(x);
            }
        }
        acc.max.iter_mut().zip(&best).for_each(|(m, b)| *m += b);
        let mut taken = [false; LANES];
        for (vj, opt) in v[..d].iter().zip(acc.optimal.iter_mut()) {
            for l in 0..LANES {
                let hit = vj[l] == best[l] && !taken[l];
                opt[l] += hit as u64;
                taken[l] |= hit;
            }
        }
    }
    let rows = (costs.len() / d) as u64;
    (0..lanes)
        .map(|l| DecisionSums {
            rows,
            reference: refs[l],
            sum_max: acc.max[l],
            sum_inc: acc.inc.iter().map(|v| v[l]).collect(),
            optimal: acc.optimal.iter().map(|v| v[l]).collect(),
        })
        .collect()
}

/// Merges per-chunk partials pairwise (rayon's reduction tree).
fn merge(mut a: Vec<DecisionSums>, b: Vec<DecisionSums>) -> Vec<DecisionSums> {
    if a.is_empty() {
        return b;
    }
    a.iter_mut().zip(&b).for_each(|(x, y)| x.merge(y));
    a
}

impl CpuVoi {
    /// Sums of rows `start..end` of net benefits.
    fn net_benefit_chunk(&self, t: &Table<'_>, start: usize, end: usize, r: usize) -> DecisionSums {
        let d = t.cols();
        match Rows::of(t, start, end) {
            Rows::F64(v) => self.arch.dispatch(NetBenefitRows((v, d, r))),
            Rows::F32(v) => self.arch.dispatch(NetBenefitRows((v, d, r))),
        }
    }

    /// Sums of rows `start..end` of costs and effects over the whole grid.
    fn cost_effect_chunk(
        &self,
        costs: &Table<'_>,
        effects: &Table<'_>,
        wtp: &[f64],
        reference: &[u32],
        (start, end): (usize, usize),
    ) -> Vec<DecisionSums> {
        let d = costs.cols();
        let mut out = Vec::with_capacity(wtp.len());
        for (k, r) in wtp.chunks(LANES).zip(reference.chunks(LANES)) {
            let part = match (Rows::of(costs, start, end), Rows::of(effects, start, end)) {
                (Rows::F64(c), Rows::F64(e)) => self.arch.dispatch(CostEffectRows((c, e, d, k, r))),
                (Rows::F32(c), Rows::F32(e)) => self.arch.dispatch(CostEffectRows((c, e, d, k, r))),
                (c, e) => {
                    let widen = |rows: Rows<'_>| -> Vec<f64> {
                        match rows {
                            Rows::F64(v) => v.to_vec(),
                            Rows::F32(v) => v.iter().map(|&x| x as f64).collect(),
                        }
                    };
                    let (c, e) = (widen(c), widen(e));
                    self.arch
                        .dispatch(CostEffectRows((&c[..], &e[..], d, k, r)))
                }
            };
            out.extend(part);
        }
        out
    }
}

fn chunks(rows: usize) -> impl IndexedParallelIterator<Item = (usize, usize)> {
    (0..rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(move |c| (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(rows)))
}

/// `Σ_i a_i b_i` with eight independent partial sums, so it vectorises.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The upper triangle of `ZᵀZ` of one chunk, from its columns (`[q][rows]`).
#[inline(always)]
fn gram_chunk((columns, q): (&[Vec<f64>], usize)) -> Vec<f64> {
    let mut out = vec![0.0; q * q];
    for a in 0..q {
        for b in a..q {
            out[a * q + b] = dot(&columns[a], &columns[b]);
        }
    }
    out
}

/// `X_chunk · β` (`[rows, p]` by `[p, m]`), row-major.
#[inline(always)]
fn fitted_rows((x, beta, p, m): (&[f64], &[f64], usize, usize)) -> Vec<f64> {
    let mut f = vec![0.0; x.len() / p * m];
    for (xr, fr) in x.chunks_exact(p).zip(f.chunks_exact_mut(m)) {
        for (j, &xj) in xr.iter().enumerate() {
            let br = &beta[j * m..(j + 1) * m];
            fr.iter_mut().zip(br).for_each(|(acc, b)| *acc += xj * b);
        }
    }
    f
}

impl VoiBackend for CpuVoi {
    fn decision_sums(
        &mut self,
        decision: &Decision<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        validate_decision(decision, reference)?;
        let rows = decision.rows();
        let _span =
            tracing::debug_span!("cpu_voi_decision", rows, combos = decision.combos()).entered();
        Ok(match decision {
            Decision::NetBenefit(t) => chunks(rows)
                .map(|(a, b)| vec![self.net_benefit_chunk(t, a, b, reference[0] as usize)])
                .reduce(Vec::new, merge),
            Decision::CostEffect {
                costs,
                effects,
                wtp,
            } => chunks(rows)
                .map(|range| self.cost_effect_chunk(costs, effects, wtp, reference, range))
                .reduce(Vec::new, merge),
        })
    }

    fn load_design(&mut self, x: Vec<f64>, p: usize, y: &Table<'_>) -> Result<Gram> {
        validate_design(&x, p, y)?;
        let (n, m) = (y.rows(), y.cols());
        let _span = tracing::debug_span!("cpu_voi_gram", rows = n, p, m).entered();
        let q = p + m;
        let upper = chunks(n)
            .map(|(a, b)| {
                // The chunk's columns, contiguous, so every product is a dot.
                let columns: Vec<Vec<f64>> = (0..q)
                    .map(|c| {
                        (a..b)
                            .map(|i| if c < p { x[i * p + c] } else { y.get(i, c - p) })
                            .collect()
                    })
                    .collect();
                self.arch.dispatch(GramChunk((&columns[..], q)))
            })
            .reduce(
                || vec![0.0; q * q],
                |mut s, t| {
                    s.iter_mut().zip(&t).for_each(|(a, b)| *a += b);
                    s
                },
            );
        let mut ztz = upper;
        for a in 0..q {
            for b in 0..a {
                ztz[a * q + b] = ztz[b * q + a];
            }
        }
        self.design = Some((x, p));
        Ok(Gram { p, m, rows: n, ztz })
    }

    fn fitted_decision_sums(
        &mut self,
        coefs: &[f64],
        sets: usize,
        layout: &FittedLayout<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        let (x, p) = self.design.as_ref().ok_or_else(no_design)?;
        let p = *p;
        validate_fitted(coefs, sets, p, layout, reference)?;
        let (m, d, grid, n) = (
            layout.columns(),
            layout.strategies(),
            layout.grid(),
            x.len() / p,
        );
        let _span = tracing::debug_span!("cpu_voi_fitted", rows = n, p, sets, grid).entered();
        let this = &*self;
        Ok(chunks(n)
            .map(|(a, b)| {
                let rows = b - a;
                let xs = &x[a * p..b * p];
                let mut out = Vec::with_capacity(sets * grid);
                for s in 0..sets {
                    let beta = &coefs[s * p * m..(s + 1) * p * m];
                    let f = this.arch.dispatch(FittedRows((xs, beta, p, m)));
                    let refs = &reference[s * grid..(s + 1) * grid];
                    match layout {
                        FittedLayout::NetBenefit { .. } => {
                            let mut nb = vec![0.0; rows * d];
                            for i in 0..rows {
                                nb[i * d + 1..(i + 1) * d].copy_from_slice(&f[i * m..(i + 1) * m]);
                            }
                            let t = Table::new("fitted", &nb, rows, d).expect("finite fit");
                            out.push(this.net_benefit_chunk(&t, 0, rows, refs[0] as usize));
                        }
                        FittedLayout::CostEffect { wtp, .. } => {
                            let (mut c, mut e) = (vec![0.0; rows * d], vec![0.0; rows * d]);
                            for i in 0..rows {
                                let fr = &f[i * m..(i + 1) * m];
                                e[i * d + 1..(i + 1) * d].copy_from_slice(&fr[..d - 1]);
                                c[i * d + 1..(i + 1) * d].copy_from_slice(&fr[d - 1..]);
                            }
                            let ct = Table::new("fitted costs", &c, rows, d).expect("finite fit");
                            let et = Table::new("fitted effects", &e, rows, d).expect("finite fit");
                            out.extend(this.cost_effect_chunk(&ct, &et, wtp, refs, (0, rows)));
                        }
                    }
                }
                out
            })
            .reduce(Vec::new, merge))
    }
}
