//! Per-environment acquisition kernels in f32: the CPU twins of
//! `shaders/acquisition/*.wgsl`. Each function works on one environment's slices;
//! `super::CpuAcquisition` runs them over the batch (rayon) under pulp's SIMD dispatch,
//! so the element loops below compile to AVX2/FMA or NEON where the CPU has them.

use tessera_tensor::acquisition::{
    Coverage, EnvScalars, HISTORY_CHANNELS, NO_SELECTION, Objective, Progress, StepSummary,
};

/// Shape of one environment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub n: usize,
    pub cap: usize,
    pub fd: usize,
    pub width: usize,
    pub objective: Objective,
}

impl Dims {
    fn gain(&self, a: f32, b: f32) -> f32 {
        match self.objective {
            Objective::Maximize => a - b,
            Objective::Minimize => b - a,
        }
    }
    fn better(&self, a: f32, b: f32) -> f32 {
        match self.objective {
            Objective::Maximize => a.max(b),
            Objective::Minimize => a.min(b),
        }
    }
}

/// Mutable views of one environment's part of the state.
pub(crate) struct EnvMut<'a> {
    pub values: &'a mut [f32],
    pub interventions: &'a mut [f32],
    pub targets: &'a mut [f32],
    pub scalars: &'a mut EnvScalars,
    pub features: &'a mut [f32],
    pub marginal: &'a mut [f32],
    pub confidence: &'a mut [f32],
    pub counts: &'a mut [u32],
    pub prev_window: &'a mut [u32],
    pub summary: &'a mut StepSummary,
    pub policy: &'a mut [f32],
    pub scores: &'a mut [f32],
}

/// One environment's slices in [`EnvMut`]'s field order, as the state's arrays yield
/// them when split or zipped.
pub(crate) type EnvParts<'a> = (
    &'a mut [f32],
    &'a mut [f32],
    &'a mut [f32],
    &'a mut EnvScalars,
    &'a mut [f32],
    &'a mut [f32],
    &'a mut [f32],
    &'a mut [u32],
    &'a mut [u32],
    &'a mut StepSummary,
    &'a mut [f32],
    &'a mut [f32],
);

impl<'a> From<EnvParts<'a>> for EnvMut<'a> {
    fn from(p: EnvParts<'a>) -> Self {
        Self {
            values: p.0,
            interventions: p.1,
            targets: p.2,
            scalars: p.3,
            features: p.4,
            marginal: p.5,
            confidence: p.6,
            counts: p.7,
            prev_window: p.8,
            summary: p.9,
            policy: p.10,
            scores: p.11,
        }
    }
}

/// Asks the cache for the ring rows the next step of this environment touches (the
/// row at the cursor in `values` and `interventions`, the cursor's target, the
/// window's ends). Across a batch these are scattered over the whole state, one
/// memory latency each, so the caller issues them one environment ahead.
#[inline(always)]
pub(crate) fn prefetch_ring(d: Dims, e: &EnvMut<'_>) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let s = &*e.scalars;
        let slot = s.write_idx as usize % d.cap;
        let line = |p: *const f32| {
            // SAFETY: prefetching is a hint with no architectural effect, valid for
            // any address; every address here is inside a live slice anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
        };
        for row in [
            &e.values[slot * d.n..][..d.n],
            &e.interventions[slot * d.n..][..d.n],
        ] {
            // One hint per 64-byte line, the row's last element included.
            for i in (0..d.n).step_by(16).chain([d.n - 1]) {
                line(&row[i]);
            }
        }
        line(&e.targets[slot]);
        let head = s.window_head as usize % d.cap;
        let tail = (s.window_head + s.window_len) as usize % d.cap;
        line(e.prev_window[head..].as_ptr().cast());
        line(e.prev_window[tail..].as_ptr().cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (d, e);
}

/// Writes one sample at the ring cursor, keeping the intervention counts incremental:
/// the overwritten row (if the ring was full) leaves, the new row enters.
#[inline(always)]
pub(crate) fn add_sample(d: Dims, e: &mut EnvMut<'_>, values: &[f32], flags: &[bool], target: f32) {
    let s = &mut *e.scalars;
    let slot = s.write_idx as usize;
    let row = slot * d.n..(slot + 1) * d.n;
    let full = s.n_samples as usize == d.cap;
    let old = &mut e.interventions[row.clone()];
    for ((count, old), &new) in e.counts.iter_mut().zip(old.iter_mut()).zip(flags) {
        if full {
            *count -= (*old != 0.0) as u32;
        }
        *count += new as u32;
        *old = new as u32 as f32;
    }
    // Element by element: a run-time-length copy is a `memmove` call.
    for (slot, &v) in e.values[row].iter_mut().zip(values) {
        *slot = v;
    }
    e.targets[slot] = target;
    s.write_idx = ((slot + 1) % d.cap) as u32;
    s.n_samples = (s.n_samples + 1).min(d.cap as u32);
    s.step = s.step.wrapping_add(1);
    s.best_value = d.better(s.best_value, target);
    advance_prev_best_window(d, e.prev_window, e.targets, s);
}

/// Keeps the monotonic deque of step numbers whose front is the best target among the
/// valid samples older than the newest 10. Called after a sample was added (`s.step`
/// counts it): samples that left the ring leave the front, the sample that just became
/// 11th-newest enters at the back after every worse-or-equal entry is dropped.
/// Amortised O(1) per sample. Slot of step `k` is `k % capacity`.
#[inline(always)]
pub(crate) fn advance_prev_best_window(
    d: Dims,
    window: &mut [u32],
    targets: &[f32],
    s: &mut EnvScalars,
) {
    let cap = d.cap as u32;
    let oldest = s.step - s.n_samples;
    while s.window_len > 0 && window[s.window_head as usize] < oldest {
        s.window_head = (s.window_head + 1) % cap;
        s.window_len -= 1;
    }
    if s.n_samples > 10 {
        let entering = s.step - 11;
        let t_new = targets[(entering % cap) as usize];
        while s.window_len > 0 {
            let back = window[((s.window_head + s.window_len - 1) % cap) as usize];
            if d.gain(t_new, targets[(back % cap) as usize]) >= 0.0 {
                s.window_len -= 1;
            } else {
                break;
            }
        }
        window[((s.window_head + s.window_len) % cap) as usize] = entering;
        s.window_len += 1;
    }
}

/// `F = (1 - lr) F + lr observed`, then clip columns 1 and 2 to [0, 1].
#[inline(always)]
pub(crate) fn update_features(d: Dims, features: &mut [f32], observed: &[f32], lr: f32) {
    let keep = 1.0 - lr;
    for (f, &o) in features.iter_mut().zip(observed) {
        *f = keep * *f + lr * o;
    }
    for row in features.chunks_exact_mut(d.fd) {
        row[1] = row[1].clamp(0.0, 1.0);
        if d.fd > 2 {
            row[2] = row[2].clamp(0.0, 1.0);
        }
    }
}

/// `c_i = clip(|F[i,0]| / (1 + F[i,1]), 0, 1)`, 0 for the target.
#[inline(always)]
pub(crate) fn confidence(d: Dims, features: &[f32], out: &mut [f32], target: usize) {
    for (c, row) in out.iter_mut().zip(features.chunks_exact(d.fd)) {
        *c = (row[0].abs() / (1.0 + row[1])).clamp(0.0, 1.0);
    }
    out[target] = 0.0;
}

/// The spec's optimisation progress: the newest 10 samples are read from the ring,
/// the best of the older ones from the front of the previous-best window.
#[inline(always)]
pub(crate) fn progress(d: Dims, targets: &[f32], window: &[u32], s: &EnvScalars) -> Progress {
    let n = s.n_samples as usize;
    let t = |k: usize| targets[s.chronological_slot(d.cap, k)];
    let mut p = Progress::default();
    if n > 1 {
        let t0 = t(0);
        p.improvement_from_start = d.gain(s.best_value, t0);
        let r = n - n.min(10);
        let recent_best = (r + 1..n).fold(t(r), |acc, k| d.better(acc, t(k)));
        let prev = if r > 0 {
            targets[(window[s.window_head as usize] as usize) % d.cap]
        } else {
            t0
        };
        p.recent_improvement = d.gain(recent_best, prev).max(0.0);
        p.optimization_rate = if s.step == 0 {
            0.0
        } else {
            p.improvement_from_start / s.step as f32
        };
    }
    if n >= 5 {
        let near_best = (n - 5..n)
            .filter(|&k| d.gain(s.best_value, t(k)) < 1e-6)
            .count() as u32;
        p.stagnation_steps = 5 - near_best;
    }
    p
}

/// Counts up to which `c ln c` comes from a table (32 KiB of f64).
const C_LN_C_TABLE: usize = 4096;

/// `c ln c` for `c < C_LN_C_TABLE` (0 at 0), built once per process.
fn c_ln_c_table() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..C_LN_C_TABLE)
            .map(|c| {
                if c == 0 {
                    0.0
                } else {
                    c as f64 * (c as f64).ln()
                }
            })
            .collect()
    })
}

/// The spec's exploration coverage, from the incremental intervention counts.
#[inline(always)]
pub(crate) fn coverage(d: Dims, counts: &[u32], s: &EnvScalars) -> Coverage {
    if s.n_samples == 0 {
        return Coverage {
            target_coverage_rate: 0.0,
            intervention_diversity: 0.0,
            unexplored_variables: 1.0,
        };
    }
    let target = s.target_idx as usize;
    let non_target = || {
        counts
            .iter()
            .enumerate()
            .filter(move |&(j, &c)| j != target && c > 0)
            .map(|(_, &c)| c)
    };
    let m = d.n - 1;
    let covered = non_target().count();
    let total: u64 = non_target().map(u64::from).sum();
    let coverage = if m == 0 {
        0.0
    } else {
        covered as f32 / m as f32
    };
    let diversity = if total > 0 {
        // −Σ p ln p with p = c / T is ln T − Σ c ln c / T: one logarithm per
        // environment, the counts' `c ln c` looked up (in f64, so nothing cancels).
        let table = c_ln_c_table();
        let sum: f64 = non_target()
            .map(|c| match table.get(c as usize) {
                Some(&v) => v,
                None => f64::from(c) * f64::from(c).ln(),
            })
            .sum();
        let total = total as f64;
        let h = (total.ln() - sum / total).max(0.0);
        (h / if m > 1 { (m as f64).ln() } else { 1.0 }) as f32
    } else {
        0.0
    };
    Coverage {
        target_coverage_rate: coverage,
        intervention_diversity: diversity,
        unexplored_variables: 1.0 - coverage,
    }
}

/// Writes the `[n_vars, fd + 12]` policy features.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn policy_features(
    d: Dims,
    features: &[f32],
    marginal: &[f32],
    confidence: &[f32],
    counts: &[u32],
    s: &EnvScalars,
    progress: &Progress,
    coverage: &Coverage,
    out: &mut [f32],
) {
    let empty = s.n_samples == 0;
    let globals = [
        if empty { 0.0 } else { s.best_value },
        s.uncertainty_bits,
        s.step as f32,
        s.n_samples as f32,
        progress.improvement_from_start,
        progress.optimization_rate,
        coverage.target_coverage_rate,
        coverage.intervention_diversity,
    ];
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let inv_total = if total == 0 { 0.0 } else { 1.0 / total as f32 };
    let idle = (s.step as f32).clamp(0.0, 100.0) / 100.0;
    for (i, row) in out.chunks_exact_mut(d.width).enumerate() {
        // Element by element: a copy of run-time length is a `memmove` call, and
        // 50 of them per environment were a tenth of the step.
        for (r, &f) in row[..d.fd].iter_mut().zip(&features[i * d.fd..]) {
            *r = f;
        }
        row[d.fd] = marginal[i];
        row[d.fd + 1] = confidence[i];
        store_eight(&mut row[d.fd + 2..d.fd + 10], &globals);
        let (rate, tsi) = if empty {
            (0.0, 0.0)
        } else {
            let rate = counts[i] as f32 * inv_total;
            let tsi = if rate > 0.0 {
                (1.0 / (rate + 1e-6)).clamp(0.0, 100.0) / 100.0
            } else {
                idle
            };
            (rate, tsi)
        };
        row[d.fd + 10] = rate;
        row[d.fd + 11] = tsi;
    }
}

/// `dst = src` as two 4-lane stores: LLVM keeps the eight values in separate
/// registers and would store them one by one (a tenth of the step).
#[inline(always)]
fn store_eight(dst: &mut [f32], src: &[f32; 8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_storeu_ps};
        let dst: &mut [f32; 8] = dst.try_into().expect("eight values");
        // SAFETY: SSE2 is part of x86-64; both arrays hold eight f32s.
        unsafe {
            _mm_storeu_ps(dst.as_mut_ptr(), _mm_loadu_ps(src.as_ptr()));
            _mm_storeu_ps(dst.as_mut_ptr().add(4), _mm_loadu_ps(src.as_ptr().add(4)));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// `s_i = conf_i (1 + w (1 - rate_i)) - 0.1 F[i,1]`, -inf for the target.
#[inline(always)]
pub(crate) fn scores(d: Dims, policy: &[f32], out: &mut [f32], target: usize, weight: f32) {
    for (s, row) in out.iter_mut().zip(policy.chunks_exact(d.width)) {
        *s = row[d.fd + 1] * (1.0 + weight * (1.0 - row[d.fd + 10])) - 0.1 * row[1];
    }
    out[target] = f32::NEG_INFINITY;
}

/// Argmax, lowest index on ties, never the target.
#[inline(always)]
pub(crate) fn select(scores: &[f32], target: usize) -> u32 {
    let mut best = NO_SELECTION;
    let mut best_score = f32::NEG_INFINITY;
    for (i, &s) in scores.iter().enumerate() {
        if i != target && (best == NO_SELECTION || s > best_score) {
            best = i as u32;
            best_score = s;
        }
    }
    best
}

/// Writes the `[t_len, n_vars, 5]` history tensor of one environment into `out`.
#[inline(always)]
pub(crate) fn history(d: Dims, e: &EnvMut<'_>, t_len: usize, out: &mut [f32]) {
    let s = &*e.scalars;
    let p = t_len.min(s.n_samples as usize);
    let first_row = t_len - p;
    let slot = |k: usize| (s.write_idx as usize + d.cap - p + k) % d.cap;
    for cell in out[..first_row * d.n * HISTORY_CHANNELS].chunks_exact_mut(HISTORY_CHANNELS) {
        cell.copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 1.0]);
    }
    let target = s.target_idx as usize;
    for j in 0..d.n {
        let value = |k: usize| e.values[slot(k) * d.n + j];
        // Shifted data: deviations from the oldest present value are exact for nearby
        // values (Sterbenz), so standardising close values loses no precision in f32.
        // A constant column gives exactly 0.
        let shift = if p > 0 { value(0) } else { 0.0 };
        let (mean, std) = if p > 1 {
            let mean = (0..p).map(|k| value(k) - shift).sum::<f32>() / p as f32;
            let var = (0..p)
                .map(|k| (value(k) - shift - mean).powi(2))
                .sum::<f32>()
                / p as f32;
            (mean, var.sqrt() + 1e-8)
        } else {
            (0.0, 1.0)
        };
        let mut last_intervention: Option<usize> = None;
        for k in 0..p {
            let r = first_row + k;
            let intervened = e.interventions[slot(k) * d.n + j] != 0.0;
            if intervened {
                last_intervention = Some(r);
            }
            let cell = &mut out[(r * d.n + j) * HISTORY_CHANNELS..][..HISTORY_CHANNELS];
            cell[0] = if p > 1 {
                (value(k) - shift - mean) / std
            } else {
                value(k)
            };
            cell[1] = (j == target) as u32 as f32;
            cell[2] = intervened as u32 as f32;
            cell[3] = e.marginal[j];
            cell[4] = last_intervention.map_or(1.0, |at| ((r - at) as f32 / t_len as f32).min(1.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diversity_by_the_table_matches_the_entropy_above_and_below_its_end() {
        let d = Dims {
            n: 5,
            cap: 20_000,
            fd: 3,
            width: 15,
            objective: Objective::Maximize,
        };
        let s = EnvScalars {
            write_idx: 0,
            n_samples: 10,
            step: 10,
            target_idx: 2,
            best_value: 0.0,
            uncertainty_bits: 0.0,
            window_head: 0,
            window_len: 0,
        };
        for counts in [
            [3, 0, 9, 4, 1],
            [5000, 3, 0, 7000, 4095],
            [4096, 4096, 1, 1, 0],
            [0, 0, 0, 12, 0],
        ] {
            let total: f64 = counts
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != 2)
                .map(|(_, &c)| f64::from(c))
                .sum();
            let h: f64 = counts
                .iter()
                .enumerate()
                .filter(|&(j, &c)| j != 2 && c > 0)
                .map(|(_, &c)| {
                    let p = f64::from(c) / total;
                    -p * p.ln()
                })
                .sum();
            let want = (h / 4f64.ln()) as f32;
            let got = coverage(d, &counts, &s).intervention_diversity;
            assert!((got - want).abs() <= 1e-6, "{counts:?}: {got} vs {want}");
        }
    }
}
