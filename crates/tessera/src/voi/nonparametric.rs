//! The single-parameter EVPPI estimators that need no regression: Strong & Oakley's
//! block means and Sadatsafavi et al.'s segmentation. Both sort the draws by the
//! parameter, so they run on the host in f64 (they are bound by the sort).

use tessera_tensor::voi::{FittedLayout, Table};

/// Separators per pair of strategies the segmentation accepts.
pub(crate) const MAX_SEPARATORS: usize = 8;

/// The draws' indices sorted by one parameter (ties by index).
fn order_by(params: &Table<'_>, column: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..params.rows()).collect();
    order.sort_by(|&a, &b| params.get(a, column).total_cmp(&params.get(b, column)));
    order
}

/// The largest net benefit (relative to strategy 0) of the responses `f` at grid
/// value `k`.
fn best_of(layout: &FittedLayout<'_>, f: &[f64], k: usize) -> f64 {
    (0..layout.strategies())
        .map(|d| layout.net_benefit(f, d, k))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Strong & Oakley's estimator: the draws sorted by the parameter, cut into blocks
/// whose means of the responses stand for the conditional expectations.
///
/// `y` holds the responses `[N, m]` of `layout` less `y_shift`.
pub(crate) fn strong_oakley(
    layout: &FittedLayout<'_>,
    y: &[f64],
    y_shift: &[f64],
    params: &Table<'_>,
    column: usize,
    blocks: Option<usize>,
) -> Vec<f64> {
    let n = params.rows();
    let m = layout.columns();
    let order = order_by(params, column);
    let blocks = blocks
        .unwrap_or_else(|| (n as f64).sqrt().round() as usize)
        .clamp(1, n);
    // Block means of the shifted responses (the shift is added back).
    let means: Vec<(f64, Vec<f64>)> = (0..blocks)
        .map(|b| {
            let (lo, hi) = (b * n / blocks, (b + 1) * n / blocks);
            let mut mean = y_shift.to_vec();
            for &i in &order[lo..hi] {
                mean.iter_mut()
                    .zip(&y[i * m..(i + 1) * m])
                    .for_each(|(s, v)| *s += v / (hi - lo) as f64);
            }
            ((hi - lo) as f64 / n as f64, mean)
        })
        .collect();
    // The overall mean, from the block means (the shift is not the mean).
    let mut overall = vec![0.0; m];
    for (w, f) in &means {
        overall.iter_mut().zip(f).for_each(|(o, v)| *o += w * v);
    }
    (0..layout.grid())
        .map(|k| {
            let conditional: f64 = means.iter().map(|(w, f)| w * best_of(layout, f, k)).sum();
            (conditional - best_of(layout, &overall, k)).max(0.0)
        })
        .collect()
}

/// Sadatsafavi et al.'s segmentation estimator ("Need for speed", Value in Health
/// 2013): with the draws sorted by the parameter, the running sum of the difference
/// of two strategies' net benefits turns where their conditional expectations cross.
/// For every pair of strategies the `separators` cut points that make the segments'
/// sums of absolute values largest are found exactly (a dynamic programme over the
/// running sum, linear in N per separator); the union of all pairs' cut points splits
/// the draws into segments, each of which takes its best strategy:
/// `EVPPI = Σ_seg max_d Σ_{i∈seg} NB_d / N − max_d mean NB_d`.
///
/// `y` holds the responses `[N, m]` of `layout` less `y_shift`.
pub(crate) fn sadatsafavi(
    layout: &FittedLayout<'_>,
    y: &[f64],
    y_shift: &[f64],
    params: &Table<'_>,
    column: usize,
    separators: usize,
) -> Vec<f64> {
    let n = params.rows();
    let m = layout.columns();
    let d = layout.strategies();
    let order = order_by(params, column);
    // Running sums of the shifted responses in the parameter's order: the sum of the
    // responses over draws lo..hi is `prefix[hi] − prefix[lo] + (hi − lo)·y_shift`,
    // which keeps large means out of the differences.
    let mut prefix = vec![0.0; (n + 1) * m];
    for (t, &i) in order.iter().enumerate() {
        for c in 0..m {
            prefix[(t + 1) * m + c] = prefix[t * m + c] + y[i * m + c];
        }
    }
    let segment_sum = |lo: usize, hi: usize, out: &mut [f64]| {
        for (c, o) in out.iter_mut().enumerate() {
            *o = prefix[hi * m + c] - prefix[lo * m + c] + (hi - lo) as f64 * y_shift[c];
        }
    };
    let mut f = vec![0.0; m];
    let mut running = vec![0.0; n + 1];
    let mut dp = Segmentation::new(n, separators);
    (0..layout.grid())
        .map(|k| {
            let mut cuts = vec![0, n];
            for a in 0..d {
                for b in a + 1..d {
                    for (t, r) in running.iter_mut().enumerate() {
                        segment_sum(0, t, &mut f);
                        *r = layout.net_benefit(&f, a, k) - layout.net_benefit(&f, b, k);
                    }
                    cuts.extend(dp.cuts(&running));
                }
            }
            cuts.sort_unstable();
            cuts.dedup();
            let mut conditional = 0.0;
            for w in cuts.windows(2) {
                segment_sum(w[0], w[1], &mut f);
                conditional += best_of(layout, &f, k);
            }
            segment_sum(0, n, &mut f);
            ((conditional - best_of(layout, &f, k)) / n as f64).max(0.0)
        })
        .collect()
}

/// The dynamic programme of the segmentation, with its buffers kept between pairs.
struct Segmentation {
    separators: usize,
    /// `value[t]` = the best sum of segments' absolute differences over `0..t` with
    /// the separators placed so far.
    value: Vec<f64>,
    next: Vec<f64>,
    /// `from[j][t]` = where the last segment of the best split of `0..t` with `j + 1`
    /// separators starts.
    from: Vec<Vec<u32>>,
}

impl Segmentation {
    fn new(n: usize, separators: usize) -> Self {
        Self {
            separators,
            value: vec![0.0; n + 1],
            next: vec![0.0; n + 1],
            from: vec![vec![0; n + 1]; separators],
        }
    }

    /// The cut points `0 < t < n` that maximise `Σ_seg |c[hi] − c[lo]|` over at most
    /// `separators` cuts of the running sum `c` (`c[0] = 0`, `n + 1` values).
    fn cuts(&mut self, c: &[f64]) -> Vec<usize> {
        let n = c.len() - 1;
        for (v, &ct) in self.value.iter_mut().zip(c) {
            *v = (ct - c[0]).abs();
        }
        for j in 0..self.separators {
            // best[s] = max over a ≤ t of value[a] − s·c[a], for s = +1 and −1.
            let mut best = [(f64::NEG_INFINITY, 0u32); 2];
            let steps = c.iter().zip(&self.value).zip(&mut self.next);
            for (t, (((&ct, &value), next), from)) in steps.zip(&mut self.from[j]).enumerate() {
                for (s, sign) in [1.0, -1.0].into_iter().enumerate() {
                    let candidate = value - sign * ct;
                    if candidate > best[s].0 {
                        best[s] = (candidate, t as u32);
                    }
                }
                let up = best[0].0 + ct;
                let down = best[1].0 - ct;
                (*next, *from) = if up >= down {
                    (up, best[0].1)
                } else {
                    (down, best[1].1)
                };
            }
            std::mem::swap(&mut self.value, &mut self.next);
        }
        let mut cuts = Vec::with_capacity(self.separators);
        let mut t = n;
        for j in (0..self.separators).rev() {
            t = self.from[j][t] as usize;
            if t > 0 && t < n {
                cuts.push(t);
            }
        }
        cuts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split of `0..n` into at most `r + 1` segments, by brute force.
    fn brute_force(c: &[f64], r: usize) -> f64 {
        let n = c.len() - 1;
        fn go(c: &[f64], start: usize, left: usize, n: usize) -> f64 {
            let mut best = (c[n] - c[start]).abs();
            if left > 0 {
                for t in start + 1..n {
                    best = best.max((c[t] - c[start]).abs() + go(c, t, left - 1, n));
                }
            }
            best
        }
        go(c, 0, r, n)
    }

    #[test]
    fn the_segmentation_finds_the_best_cuts() {
        let mut state = 7u64;
        for trial in 0..200 {
            let n = 1 + trial % 13;
            let r = 1 + trial % 3;
            let mut c = vec![0.0];
            for _ in 0..n {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let step = ((state >> 33) % 7) as f64 - 3.0;
                c.push(c.last().unwrap() + step);
            }
            let mut dp = Segmentation::new(n, r);
            let cuts = dp.cuts(&c);
            assert!(cuts.len() <= r && cuts.iter().all(|&t| t > 0 && t < n));
            let mut points = vec![0];
            points.extend(cuts.iter().rev());
            points.push(n);
            points.dedup();
            assert!(points.windows(2).all(|w| w[0] < w[1]), "{points:?}");
            let got: f64 = points.windows(2).map(|w| (c[w[1]] - c[w[0]]).abs()).sum();
            assert_eq!(got, brute_force(&c, r), "c = {c:?}, r = {r}");
        }
    }
}
