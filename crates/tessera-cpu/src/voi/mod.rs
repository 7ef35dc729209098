//! The CPU value-of-information reductions: rayon over chunks of rows, the
//! willingness-to-pay grid in SIMD lanes, sums in f64 per chunk combined pairwise.

use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::error::Result;
use tessera_tensor::voi::{
    Decision, DecisionSums, DesignShape, FittedLayout, Gram, MAX_STRATEGIES, Table, Values,
    VoiBackend, no_design, validate_decision, validate_design, validate_fitted,
};

use crate::dispatch::{SimdLevel, direct_kernel};

mod gaussian;

/// Rows per rayon task: the rows of a chunk stay in cache across the grid.
const CHUNK_ROWS: usize = 1024;
/// Grid values per SIMD block (eight f64 lanes of AVX-512, two of NEON's).
const LANES: usize = 8;

/// The CPU implementation of [`VoiBackend`], in f64 for f64 and f32 input alike.
pub struct CpuVoi {
    arch: Arch,
    design: Option<(Vec<f64>, DesignShape)>,
}

impl std::fmt::Debug for CpuVoi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuVoi")
            .field("design_columns", &self.design.as_ref().map(|d| d.1.p))
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
    GramChunk((&[&[f64]], usize)) -> Vec<f64> => gram_chunk
);

direct_kernel!(
    /// [`fitted_columns`] under SIMD dispatch.
    FittedColumns((&[&[f64]], &[f64], usize, &mut [f64])) -> () => fitted_columns
);

/// Sums of net-benefit rows `[rows, d]` against `reference`: rows in pairs (two
/// dependency chains per sum), the optimal strategies counted in 16-bit fields of
/// `G` `u64` groups held in registers ([`COUNT_FIELDS`] strategies a group).
#[inline(always)]
fn net_benefit_rows<T: Copy + Into<f64>>((nb, d, reference): (&[T], usize, usize)) -> DecisionSums {
    match d.div_ceil(COUNT_FIELDS) {
        1 => net_benefit_block::<T, 1>(nb, d, reference),
        2 => net_benefit_block::<T, 2>(nb, d, reference),
        _ => net_benefit_block::<T, { MAX_STRATEGIES / COUNT_FIELDS }>(nb, d, reference),
    }
}

/// One row of [`net_benefit_rows`]: `max_d inc_d` and the first strategy reaching it
/// as its count group and field.
#[inline(always)]
fn net_benefit_row<T: Copy + Into<f64>>(row: &[T], reference: usize) -> (f64, usize, u64) {
    let (mut best, mut arg) = (row[0].into(), 0);
    for (j, &v) in row.iter().enumerate().skip(1) {
        let v: f64 = v.into();
        let above = v > best;
        best = if above { v } else { best };
        arg = if above { j } else { arg };
    }
    let inc = best - row[reference].into();
    let (group, field) = count_field(arg);
    (inc, group, field)
}

/// Column sums of a row-major `[rows, d]` block, `8 d` values at a time (whole rows,
/// so a column's values share a lane position), then the lanes folded.
#[inline(always)]
fn column_sums<T: Copy + Into<f64>>(nb: &[T], d: usize) -> Vec<f64> {
    const ROWS: usize = 8;
    let width = ROWS * d;
    let mut lanes = vec![0.0f64; width];
    let blocks = nb.chunks_exact(width);
    let last = blocks.remainder();
    for block in blocks {
        for (acc, &v) in lanes.iter_mut().zip(block) {
            *acc += v.into();
        }
    }
    for (acc, &v) in lanes.iter_mut().zip(last) {
        *acc += v.into();
    }
    let mut sums = vec![0.0; d];
    for row in lanes.chunks_exact(d) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
    sums
}

/// [`net_benefit_rows`] with `G` count groups. `sum_inc` is `Σ NB_d − Σ NB_r`, from
/// the column sums (f64 sums of at most a chunk of rows: no cancellation to fear).
#[inline(always)]
fn net_benefit_block<T: Copy + Into<f64>, const G: usize>(
    nb: &[T],
    d: usize,
    reference: usize,
) -> DecisionSums {
    let mut s = DecisionSums::zero(d, reference);
    let (mut sum_max, mut counts) = (0.0, [0u64; G]);
    let pairs = nb.chunks_exact(2 * d);
    let last = pairs.remainder();
    for pair in pairs {
        let (a, b) = pair.split_at(d);
        let (max_a, group_a, field_a) = net_benefit_row(a, reference);
        let (max_b, group_b, field_b) = net_benefit_row(b, reference);
        sum_max += max_a + max_b;
        for (g, count) in counts.iter_mut().enumerate() {
            let (in_a, in_b) = (G == 1 || group_a == g, G == 1 || group_b == g);
            *count += if in_a { field_a } else { 0 } + if in_b { field_b } else { 0 };
        }
    }
    if !last.is_empty() {
        let (max, group, field) = net_benefit_row(last, reference);
        sum_max += max;
        counts[if G == 1 { 0 } else { group }] += field;
    }
    let sums = column_sums(nb, d);
    for (j, (inc, optimal)) in s.sum_inc.iter_mut().zip(&mut s.optimal).enumerate() {
        *inc = sums[j] - sums[reference];
        *optimal = unpack_count(counts[j / COUNT_FIELDS], j);
    }
    s.rows = (nb.len() / d) as u64;
    s.sum_max = sum_max;
    s
}

/// Strategies whose optimality counts share one `u64` lane: 16-bit fields, which a
/// chunk of rows cannot overflow.
const COUNT_FIELDS: usize = 4;

/// Strategy `j`'s count group, and what adds one row where `j` is optimal to it.
#[inline(always)]
fn count_field(j: usize) -> (usize, u64) {
    (j / COUNT_FIELDS, 1 << (16 * (j % COUNT_FIELDS)))
}

/// Strategy `j`'s count, out of its group's packed fields.
#[inline(always)]
fn unpack_count(group: u64, j: usize) -> u64 {
    (group >> (16 * (j % COUNT_FIELDS))) & 0xffff
}
const _: () = assert!(CHUNK_ROWS < 1 << 16);

/// Sums of cost and effect rows at every grid value `wtp`, each against its reference.
///
/// Each row is first taken relative to strategy 0 (`δe_d = e_d − e_0`, `δc_d = c_d −
/// c_0`), which removes what the strategies share, so `x_d = k δe_d − δc_d` is
/// `NB_d − NB_0` at grid value `k` and `inc_d = x_d − x_r`. The grid runs `LANES`
/// values at a time in SIMD lanes: per row and lane the largest `x_d`, the first
/// strategy reaching it (counted in 16-bit fields of `u64` lanes) and `x_r`, so every
/// `max_d inc_d` term is exactly `≥ 0`. `sum_inc` is linear in `k`: it comes from the
/// column sums of `δe` and `δc`, not from the lanes.
#[inline(always)]
fn cost_effect_rows<T: Copy + Into<f64>>(
    (costs, effects, d, wtp, reference): (&[T], &[T], usize, &[f64], &[u32]),
) -> Vec<DecisionSums> {
    let rows = costs.len() / d;
    let (mut de, mut dc) = (vec![0.0f64; rows * d], vec![0.0f64; rows * d]);
    let (mut sum_de, mut sum_dc) = (vec![0.0f64; d], vec![0.0f64; d]);
    for (((crow, erow), der), dcr) in costs
        .chunks_exact(d)
        .zip(effects.chunks_exact(d))
        .zip(de.chunks_exact_mut(d))
        .zip(dc.chunks_exact_mut(d))
    {
        let (c0, e0): (f64, f64) = (crow[0].into(), erow[0].into());
        for j in 0..d {
            der[j] = erow[j].into() - e0;
            dcr[j] = crow[j].into() - c0;
            sum_de[j] += der[j];
            sum_dc[j] += dcr[j];
        }
    }
    debug_assert!(d <= MAX_STRATEGIES);
    let groups = d.div_ceil(COUNT_FIELDS);
    let mut out = Vec::with_capacity(wtp.len());
    for (ks, refs) in wtp.chunks(LANES).zip(reference.chunks(LANES)) {
        let lanes = ks.len();
        // Padding lanes repeat the last value and are dropped at the end.
        let k: [f64; LANES] = std::array::from_fn(|l| ks[l.min(lanes - 1)]);
        let r: [usize; LANES] = std::array::from_fn(|l| refs[l.min(lanes - 1)] as usize);
        let is_ref: Vec<[f64; LANES]> = (0..d)
            .map(|j| r.map(|rl| if rl == j { 1.0 } else { 0.0 }))
            .collect();
        // The reference changes only where the best strategy in expectation does, so
        // most blocks share one.
        let reference = if r.iter().all(|&rl| rl == r[0]) {
            BlockReference::Shared(r[0])
        } else {
            BlockReference::Mixed(&is_ref)
        };
        let (sum_max, counts) = match groups {
            1 => grid_block::<1>(&de, &dc, d, &k, reference),
            2 => grid_block::<2>(&de, &dc, d, &k, reference),
            _ => grid_block::<{ MAX_STRATEGIES / COUNT_FIELDS }>(&de, &dc, d, &k, reference),
        };
        out.extend((0..lanes).map(|l| {
            DecisionSums {
                rows: rows as u64,
                reference: r[l],
                sum_max: sum_max[l],
                sum_inc: (0..d)
                    .map(|j| k[l] * (sum_de[j] - sum_de[r[l]]) - (sum_dc[j] - sum_dc[r[l]]))
                    .collect(),
                optimal: (0..d)
                    .map(|j| unpack_count(counts[j / COUNT_FIELDS][l], j))
                    .collect(),
            }
        }));
    }
    out
}

/// The reference strategies of a block of lanes.
#[derive(Clone, Copy)]
enum BlockReference<'a> {
    /// Every lane's is this strategy: `x_r` is taken as it is computed.
    Shared(usize),
    /// Per lane: `is_ref[j]` is 1 in the lanes whose reference is `j`, else 0, so
    /// `x_r = Σ_j is_ref[j] x_j` exactly (one more multiply-add per strategy).
    Mixed(&'a [[f64; LANES]]),
}

/// One row of [`cost_effect_rows`] for one block of lanes: `max_d inc_d`, and the
/// first strategy reaching it as its count group and field.
#[inline(always)]
fn grid_row(
    (de, dc): (&[f64], &[f64]),
    k: &[f64; LANES],
    reference: BlockReference<'_>,
) -> ([f64; LANES], [u64; LANES], [u64; LANES]) {
    // Strategy 0's x is 0: the start of the maximum and of x_r.
    let (mut best, mut x_ref) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (mut group, mut field) = ([0u64; LANES], [1u64; LANES]);
    for j in 1..de.len() {
        let (a, b) = (de[j], dc[j]);
        let (g, f) = count_field(j);
        let g = g as u64;
        let x: [f64; LANES] = std::array::from_fn(|l| k[l] * a - b);
        for l in 0..LANES {
            let above = x[l] > best[l];
            best[l] = if above { x[l] } else { best[l] };
            group[l] = if above { g } else { group[l] };
            field[l] = if above { f } else { field[l] };
        }
        match reference {
            BlockReference::Shared(r) => {
                if j == r {
                    x_ref = x;
                }
            }
            BlockReference::Mixed(is_ref) => {
                for l in 0..LANES {
                    x_ref[l] += is_ref[j][l] * x[l];
                }
            }
        }
    }
    let inc: [f64; LANES] = std::array::from_fn(|l| best[l] - x_ref[l]);
    (inc, group, field)
}

/// The rows of [`cost_effect_rows`] for one block of lanes, with `G` groups of count
/// fields (a constant, so the counts stay in registers). Rows run in pairs whose terms
/// are added before the running sums, which halves the sums' dependency chains.
// The lane loops index several per-lane arrays by the same lane.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn grid_block<const G: usize>(
    de: &[f64],
    dc: &[f64],
    d: usize,
    k: &[f64; LANES],
    reference: BlockReference<'_>,
) -> ([f64; LANES], Vec<[u64; LANES]>) {
    let mut sum_max = [0.0f64; LANES];
    let mut counts = [[0u64; LANES]; G];
    // With one group every field counts in it.
    let count = |g: usize, (group, field): (&[u64; LANES], &[u64; LANES]), l: usize| {
        if G == 1 || group[l] == g as u64 {
            field[l]
        } else {
            0
        }
    };
    let (pairs_e, pairs_c) = (de.chunks_exact(2 * d), dc.chunks_exact(2 * d));
    let (last_e, last_c) = (pairs_e.remainder(), pairs_c.remainder());
    for (e, c) in pairs_e.zip(pairs_c) {
        let (inc1, group1, field1) = grid_row((&e[..d], &c[..d]), k, reference);
        let (inc2, group2, field2) = grid_row((&e[d..], &c[d..]), k, reference);
        for l in 0..LANES {
            sum_max[l] += inc1[l] + inc2[l];
        }
        for (g, counts) in counts.iter_mut().enumerate() {
            for l in 0..LANES {
                counts[l] += count(g, (&group1, &field1), l) + count(g, (&group2, &field2), l);
            }
        }
    }
    if !last_e.is_empty() {
        let (inc, group, field) = grid_row((last_e, last_c), k, reference);
        for l in 0..LANES {
            sum_max[l] += inc[l];
        }
        for (g, counts) in counts.iter_mut().enumerate() {
            for l in 0..LANES {
                counts[l] += count(g, (&group, &field), l);
            }
        }
    }
    (sum_max, counts.to_vec())
}

/// Merges the per-chunk partials, given in row order, pairwise by a fixed tree
/// (neighbours first), so the result has a pairwise sum's error and does not depend
/// on the thread count.
fn merge_in_order(mut parts: Vec<Vec<DecisionSums>>) -> Vec<DecisionSums> {
    while parts.len() > 1 {
        let mut next = Vec::with_capacity(parts.len().div_ceil(2));
        let mut iter = parts.into_iter();
        while let Some(mut a) = iter.next() {
            if let Some(b) = iter.next() {
                a.iter_mut().zip(&b).for_each(|(x, y)| x.merge(y));
            }
            next.push(a);
        }
        parts = next;
    }
    parts.pop().unwrap_or_default()
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
        match (Rows::of(costs, start, end), Rows::of(effects, start, end)) {
            (Rows::F64(c), Rows::F64(e)) => self
                .arch
                .dispatch(CostEffectRows((c, e, d, wtp, reference))),
            (Rows::F32(c), Rows::F32(e)) => self
                .arch
                .dispatch(CostEffectRows((c, e, d, wtp, reference))),
            (c, e) => {
                let widen = |rows: Rows<'_>| -> Vec<f64> {
                    match rows {
                        Rows::F64(v) => v.to_vec(),
                        Rows::F32(v) => v.iter().map(|&x| x as f64).collect(),
                    }
                };
                let (c, e) = (widen(c), widen(e));
                self.arch
                    .dispatch(CostEffectRows((&c[..], &e[..], d, wtp, reference)))
            }
        }
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

/// The upper triangle of `ZᵀZ` of one chunk, from its `q` columns.
#[inline(always)]
fn gram_chunk((columns, q): (&[&[f64]], usize)) -> Vec<f64> {
    let mut out = vec![0.0; q * q];
    for a in 0..q {
        for b in a..q {
            out[a * q + b] = dot(columns[a], columns[b]);
        }
    }
    out
}

/// Row-major `[rows, width]` values into `width` contiguous columns of `out`.
fn transpose_into<T: Copy + Into<f64>>(values: &[T], width: usize, out: &mut [f64]) {
    let rows = values.len() / width;
    for (r, row) in values.chunks_exact(width).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v.into();
        }
    }
}

/// `f_k = Σ_j β[j, k] x_j` for a chunk's design columns `x_j`, into `f` (`m` columns
/// of the chunk's rows, one after another): multiply-adds along contiguous columns.
#[inline(always)]
fn fitted_columns((x, beta, m, f): (&[&[f64]], &[f64], usize, &mut [f64])) {
    let rows = f.len() / m;
    for (k, fk) in f.chunks_exact_mut(rows).enumerate() {
        fk.fill(0.0);
        for (j, xj) in x.iter().enumerate() {
            let b = beta[j * m + k];
            fk.iter_mut().zip(xj.iter()).for_each(|(f, &x)| *f += b * x);
        }
    }
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
            Decision::NetBenefit(t) => merge_in_order(
                chunks(rows)
                    .map(|(a, b)| vec![self.net_benefit_chunk(t, a, b, reference[0] as usize)])
                    .collect(),
            ),
            Decision::CostEffect {
                costs,
                effects,
                wtp,
            } => merge_in_order(
                chunks(rows)
                    .map(|range| self.cost_effect_chunk(costs, effects, wtp, reference, range))
                    .collect(),
            ),
        })
    }

    fn load_design(&mut self, x: Vec<f64>, p: usize, y: &Table<'_>) -> Result<Gram> {
        let shape = validate_design(&x, p, y)?;
        let (n, m) = (y.rows(), y.cols());
        let _span = tracing::debug_span!("cpu_voi_gram", rows = n, p, m).entered();
        let q = p + m;
        // Per chunk in row order, added in that order, so the result does not depend
        // on the thread count.
        let parts: Vec<Vec<f64>> = chunks(n)
            .map(|(a, b)| {
                // The chunk's columns, contiguous, so every product is a dot: the
                // design's as they are, the responses' transposed in one pass.
                let rows = b - a;
                let mut yc = vec![0.0; m * rows];
                match y.values() {
                    Values::F64(v) => transpose_into(&v[a * m..b * m], m, &mut yc),
                    Values::F32(v) => transpose_into(&v[a * m..b * m], m, &mut yc),
                }
                let columns: Vec<&[f64]> = (0..p)
                    .map(|j| &x[j * n + a..j * n + b])
                    .chain(yc.chunks_exact(rows))
                    .collect();
                let mut full = self.arch.dispatch(GramChunk((&columns[..], q)));
                for a in 0..q {
                    for b in 0..a {
                        full[a * q + b] = full[b * q + a];
                    }
                }
                full
            })
            .collect();
        let ztz = parts.iter().fold(vec![0.0; q * q], |mut s, t| {
            s.iter_mut().zip(t).for_each(|(a, b)| *a += b);
            s
        });
        self.design = Some((x, shape));
        Ok(Gram { p, m, rows: n, ztz })
    }

    fn fitted_decision_sums(
        &mut self,
        coefs: &[f64],
        sets: usize,
        layout: &FittedLayout<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        let (x, shape) = self.design.as_ref().ok_or_else(no_design)?;
        validate_fitted(coefs, sets, shape, layout, reference)?;
        let p = shape.p;
        let (m, d, grid, n) = (
            layout.columns(),
            layout.strategies(),
            layout.grid(),
            x.len() / p,
        );
        let _span = tracing::debug_span!("cpu_voi_fitted", rows = n, p, sets, grid).entered();
        let this = &*self;
        let parts = chunks(n)
            .map(|(a, b)| {
                let rows = b - a;
                let xs: Vec<&[f64]> = (0..p).map(|j| &x[j * n + a..j * n + b]).collect();
                // The fitted columns, then the increments over strategy 0 in the rows
                // of tables (column 0 stays 0): buffers reused across the sets.
                let mut f = vec![0.0; rows * m];
                let mut first = vec![0.0; rows * d];
                let mut second = match layout {
                    FittedLayout::NetBenefit { .. } => Vec::new(),
                    FittedLayout::CostEffect { .. } => vec![0.0; rows * d],
                };
                let mut out = Vec::with_capacity(sets * grid);
                for s in 0..sets {
                    let beta = &coefs[s * p * m..(s + 1) * p * m];
                    let refs = &reference[s * grid..(s + 1) * grid];
                    // validate_fitted's bound keeps every fitted value and sum finite.
                    this.arch
                        .dispatch(FittedColumns((&xs[..], beta, m, &mut f[..])));
                    let column = |k: usize| &f[k * rows..(k + 1) * rows];
                    match layout {
                        FittedLayout::NetBenefit { .. } => {
                            for k in 0..m {
                                let rows_of = first.chunks_exact_mut(d);
                                rows_of.zip(column(k)).for_each(|(row, &v)| row[1 + k] = v);
                            }
                            let r = refs[0] as usize;
                            out.push(this.arch.dispatch(NetBenefitRows((&first[..], d, r))));
                        }
                        FittedLayout::CostEffect { wtp, .. } => {
                            for k in 0..d - 1 {
                                let rows_of = first.chunks_exact_mut(d);
                                rows_of.zip(column(k)).for_each(|(row, &v)| row[1 + k] = v);
                                let rows_of = second.chunks_exact_mut(d);
                                rows_of
                                    .zip(column(d - 1 + k))
                                    .for_each(|(row, &v)| row[1 + k] = v);
                            }
                            out.extend(this.arch.dispatch(CostEffectRows((
                                &second[..],
                                &first[..],
                                d,
                                *wtp,
                                refs,
                            ))));
                        }
                    }
                }
                out
            })
            .collect();
        Ok(merge_in_order(parts))
    }

    fn release_design(&mut self) -> Option<Vec<f64>> {
        self.design.take().map(|(x, _)| x)
    }
}
