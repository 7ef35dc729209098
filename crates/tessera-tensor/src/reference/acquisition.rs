//! f64 scalar reference of every acquisition kernel: the spec written as plainly as
//! possible, with no incremental bookkeeping (intervention counts are rescanned every
//! time), so that the fast backends can be checked against it.

use crate::acquisition::{
    AcquisitionBackend, AcquisitionConfig, AcquisitionState, Coverage, EnvScalars,
    HISTORY_CHANNELS, NO_SELECTION, Objective, Progress, Samples, StepInput, StepSummary,
    validate_exploration_weight, validate_history_len, validate_observed, validate_posterior,
};
use crate::error::Result;

#[derive(Debug, Clone)]
struct Env {
    write_idx: usize,
    n_samples: usize,
    step: u64,
    target: usize,
    best: f64,
    bits: f64,
    values: Vec<f64>,
    interventions: Vec<bool>,
    targets: Vec<f64>,
    features: Vec<f64>,
    marginal: Vec<f64>,
    confidence: Vec<f64>,
    progress: [f64; 3],
    stagnation: u32,
    coverage: [f64; 3],
    selected: u32,
    policy: Vec<f64>,
    scores: Vec<f64>,
}

/// The scalar f64 reference backend.
#[derive(Debug, Clone)]
pub struct ReferenceAcquisition {
    config: AcquisitionConfig,
    envs: Vec<Env>,
}

impl ReferenceAcquisition {
    /// A fresh reference state. Fails on an invalid config.
    pub fn new(config: &AcquisitionConfig) -> Result<Self> {
        let host = AcquisitionState::new(config)?;
        let (n, cap, fd) = (config.n_vars, config.capacity, config.feature_dim);
        let envs = config
            .target_indices
            .iter()
            .enumerate()
            .map(|(b, &t)| Env {
                write_idx: 0,
                n_samples: 0,
                step: 0,
                target: t as usize,
                best: config.objective.worst() as f64,
                bits: 1.0,
                values: vec![0.0; cap * n],
                interventions: vec![false; cap * n],
                targets: vec![0.0; cap],
                features: widen(&host.mechanism_features[b * n * fd..][..n * fd]),
                marginal: widen(&host.marginal_probs[b * n..][..n]),
                confidence: widen(&host.confidence[b * n..][..n]),
                progress: [0.0; 3],
                stagnation: 0,
                coverage: [0.0; 3],
                selected: 0,
                policy: vec![0.0; n * config.policy_width()],
                scores: vec![0.0; n],
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            envs,
        })
    }

    /// `[B, n_vars]` acquisition scores in f64, for near-tie checks.
    pub fn scores_f64(&self) -> Vec<f64> {
        self.envs.iter().flat_map(|e| e.scores.clone()).collect()
    }

    fn gain(&self, a: f64, b: f64) -> f64 {
        match self.config.objective {
            Objective::Maximize => a - b,
            Objective::Minimize => b - a,
        }
    }

    fn better(&self, a: f64, b: f64) -> f64 {
        match self.config.objective {
            Objective::Maximize => a.max(b),
            Objective::Minimize => a.min(b),
        }
    }

    fn chronological_targets(&self, e: &Env) -> Vec<f64> {
        let cap = self.config.capacity;
        (0..e.n_samples)
            .map(|k| e.targets[(e.write_idx + cap - e.n_samples + k) % cap])
            .collect()
    }

    fn counts(&self, e: &Env) -> Vec<u64> {
        let (n, cap) = (self.config.n_vars, self.config.capacity);
        let mut counts = vec![0u64; n];
        for k in 0..e.n_samples {
            let slot = (e.write_idx + cap - e.n_samples + k) % cap;
            for (j, c) in counts.iter_mut().enumerate() {
                *c += e.interventions[slot * n + j] as u64;
            }
        }
        counts
    }

    fn progress_of(&self, e: &Env) -> ([f64; 3], u32) {
        let t = self.chronological_targets(e);
        let n = t.len();
        let mut floats = [0.0; 3];
        if n > 1 {
            let from_start = self.gain(e.best, t[0]);
            let w = n.min(10);
            let r = n - w;
            let best_of = |s: &[f64]| s.iter().copied().reduce(|a, b| self.better(a, b)).unwrap();
            let recent_best = best_of(&t[r..]);
            let prev = if r > 0 { best_of(&t[..r]) } else { t[0] };
            floats = [
                from_start,
                self.gain(recent_best, prev).max(0.0),
                if e.step == 0 {
                    0.0
                } else {
                    from_start / e.step as f64
                },
            ];
        }
        // "t within 1e-6 of best", written as gain(best, t) < 1e-6 so that f32 backends
        // evaluate it exactly (best - 1e-6 rounds back to best in f32 for |best| > 8).
        let stagnation = if n >= 5 {
            5 - t[n - 5..]
                .iter()
                .filter(|&&tk| self.gain(e.best, tk) < 1e-6)
                .count() as u32
        } else {
            0
        };
        (floats, stagnation)
    }

    fn coverage_of(&self, e: &Env) -> [f64; 3] {
        if e.n_samples == 0 {
            return [0.0, 0.0, 1.0];
        }
        let mut nt = self.counts(e);
        nt[e.target] = 0;
        let m = self.config.n_vars - 1;
        let covered = nt.iter().filter(|&&c| c > 0).count();
        let coverage = if m == 0 {
            0.0
        } else {
            covered as f64 / m as f64
        };
        let s: u64 = nt.iter().sum();
        let diversity = if s > 0 {
            let h: f64 = nt
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / s as f64;
                    -p * p.ln()
                })
                .sum();
            h / if m > 1 { (m as f64).ln() } else { 1.0 }
        } else {
            0.0
        };
        [coverage, diversity, 1.0 - coverage]
    }

    fn policy_of(&self, e: &Env) -> Vec<f64> {
        let (n, fd) = (self.config.n_vars, self.config.feature_dim);
        let (progress, _) = self.progress_of(e);
        let coverage = self.coverage_of(e);
        let counts = self.counts(e);
        let total: u64 = counts.iter().sum();
        let globals = [
            if e.n_samples == 0 { 0.0 } else { e.best },
            e.bits,
            e.step as f64,
            e.n_samples as f64,
            progress[0],
            progress[2],
            coverage[0],
            coverage[1],
        ];
        let mut out = Vec::with_capacity(n * (fd + 12));
        for (i, &count) in counts.iter().enumerate() {
            out.extend_from_slice(&e.features[i * fd..][..fd]);
            out.push(e.marginal[i]);
            out.push(e.confidence[i]);
            out.extend_from_slice(&globals);
            let rate = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let tsi = if rate > 0.0 {
                (1.0 / (rate + 1e-6)).clamp(0.0, 100.0)
            } else {
                (e.step as f64).clamp(0.0, 100.0)
            };
            if e.n_samples == 0 {
                out.extend_from_slice(&[0.0, 0.0]);
            } else {
                out.extend_from_slice(&[rate, tsi / 100.0]);
            }
        }
        out
    }

    fn history_of(&self, e: &Env, t_len: usize) -> Vec<f64> {
        let (n, cap) = (self.config.n_vars, self.config.capacity);
        let p = t_len.min(e.n_samples);
        let first_row = t_len - p;
        let mut out = vec![0.0; t_len * n * HISTORY_CHANNELS];
        let slot = |k: usize| (e.write_idx + cap - p + k) % cap;
        for j in 0..n {
            let column: Vec<f64> = (0..p).map(|k| e.values[slot(k) * n + j]).collect();
            let (mean, std) = if p > 1 {
                let mean = column.iter().sum::<f64>() / p as f64;
                let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / p as f64;
                (mean, var.sqrt() + 1e-8)
            } else {
                (0.0, 1.0)
            };
            let mut last_intervention: Option<usize> = None;
            for r in 0..t_len {
                let cell = &mut out[(r * n + j) * HISTORY_CHANNELS..][..HISTORY_CHANNELS];
                if r < first_row {
                    cell[4] = 1.0;
                    continue;
                }
                let k = r - first_row;
                let intervened = e.interventions[slot(k) * n + j];
                if intervened {
                    last_intervention = Some(r);
                }
                cell[0] = (column[k] - mean) / std;
                cell[1] = (j == e.target) as u8 as f64;
                cell[2] = intervened as u8 as f64;
                cell[3] = e.marginal[j];
                cell[4] = match last_intervention {
                    Some(at) => ((r - at) as f64 / t_len as f64).min(1.0),
                    None => 1.0,
                };
            }
        }
        out
    }

    fn scores_of(&self, e: &Env, weight: f64) -> Vec<f64> {
        let (n, fd) = (self.config.n_vars, self.config.feature_dim);
        let width = self.config.policy_width();
        (0..n)
            .map(|i| {
                if i == e.target {
                    return f64::NEG_INFINITY;
                }
                let row = &e.policy[i * width..][..width];
                let (conf, rate) = (row[fd + 1], row[fd + 10]);
                conf * (1.0 + weight * (1.0 - rate)) - 0.1 * row[1]
            })
            .collect()
    }
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn narrow(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Index of the highest score, lowest index on ties, never `target`.
pub fn argmax_excluding(scores: &[f64], target: usize) -> u32 {
    let mut best: Option<(usize, f64)> = None;
    for (i, &s) in scores.iter().enumerate() {
        if i != target && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map_or(NO_SELECTION, |(i, _)| i as u32)
}

impl AcquisitionBackend for ReferenceAcquisition {
    fn config(&self) -> &AcquisitionConfig {
        &self.config
    }

    fn add_samples(&mut self, samples: &Samples<'_>) -> Result<()> {
        samples.validate(&self.config)?;
        let (n, cap, objective) = (
            self.config.n_vars,
            self.config.capacity,
            self.config.objective,
        );
        for (b, e) in self.envs.iter_mut().enumerate() {
            let slot = e.write_idx;
            for j in 0..n {
                e.values[slot * n + j] = samples.values[b * n + j] as f64;
                e.interventions[slot * n + j] = samples.intervened[b * n + j];
            }
            let t = samples.targets[b] as f64;
            e.targets[slot] = t;
            e.write_idx = (e.write_idx + 1) % cap;
            e.n_samples = (e.n_samples + 1).min(cap);
            e.step += 1;
            e.best = match objective {
                Objective::Maximize => e.best.max(t),
                Objective::Minimize => e.best.min(t),
            };
        }
        Ok(())
    }

    fn set_posterior(&mut self, marginal_probs: &[f32], uncertainty_bits: &[f32]) -> Result<()> {
        validate_posterior(&self.config, marginal_probs, uncertainty_bits)?;
        let n = self.config.n_vars;
        for (b, e) in self.envs.iter_mut().enumerate() {
            e.marginal = widen(&marginal_probs[b * n..][..n]);
            e.bits = uncertainty_bits[b] as f64;
        }
        Ok(())
    }

    fn update_mechanism_features(&mut self, observed: &[f32], lr: f32) -> Result<()> {
        validate_observed(&self.config, observed, lr)?;
        let (n, fd) = (self.config.n_vars, self.config.feature_dim);
        let lr = lr as f64;
        for (b, e) in self.envs.iter_mut().enumerate() {
            let obs = &observed[b * n * fd..][..n * fd];
            for (k, f) in e.features.iter_mut().enumerate() {
                *f = (1.0 - lr) * *f + lr * obs[k] as f64;
                if k % fd == 1 || k % fd == 2 {
                    *f = f.clamp(0.0, 1.0);
                }
            }
        }
        Ok(())
    }

    fn mechanism_confidence(&mut self) -> Result<()> {
        let fd = self.config.feature_dim;
        for e in &mut self.envs {
            for (i, c) in e.confidence.iter_mut().enumerate() {
                let f = &e.features[i * fd..];
                *c = if i == e.target {
                    0.0
                } else {
                    (f[0].abs() / (1.0 + f[1])).clamp(0.0, 1.0)
                };
            }
        }
        Ok(())
    }

    fn optimization_progress(&mut self) -> Result<()> {
        for b in 0..self.envs.len() {
            let (floats, stagnation) = self.progress_of(&self.envs[b]);
            self.envs[b].progress = floats;
            self.envs[b].stagnation = stagnation;
        }
        Ok(())
    }

    fn exploration_coverage(&mut self) -> Result<()> {
        for b in 0..self.envs.len() {
            self.envs[b].coverage = self.coverage_of(&self.envs[b]);
        }
        Ok(())
    }

    fn policy_features(&mut self) -> Result<()> {
        for b in 0..self.envs.len() {
            self.envs[b].policy = self.policy_of(&self.envs[b]);
        }
        Ok(())
    }

    fn acquisition_scores(&mut self, exploration_weight: f32) -> Result<()> {
        validate_exploration_weight(exploration_weight)?;
        for b in 0..self.envs.len() {
            self.envs[b].scores = self.scores_of(&self.envs[b], exploration_weight as f64);
        }
        Ok(())
    }

    fn select_intervention(&mut self) -> Result<()> {
        for e in &mut self.envs {
            e.selected = argmax_excluding(&e.scores, e.target);
        }
        Ok(())
    }

    fn step(&mut self, input: &StepInput<'_>) -> Result<()> {
        input.validate(&self.config)?;
        self.add_samples(&input.samples)?;
        self.update_mechanism_features(input.observed, input.learning_rate)?;
        self.mechanism_confidence()?;
        self.optimization_progress()?;
        self.exploration_coverage()?;
        self.policy_features()?;
        self.acquisition_scores(input.exploration_weight)?;
        self.select_intervention()
    }

    fn history_tensor(&mut self, t: usize) -> Result<Vec<f32>> {
        validate_history_len(&self.config, t)?;
        Ok(self
            .envs
            .iter()
            .flat_map(|e| narrow(&self.history_of(e, t)))
            .collect())
    }

    fn read_confidence(&mut self) -> Result<Vec<f32>> {
        Ok(self
            .envs
            .iter()
            .flat_map(|e| narrow(&e.confidence))
            .collect())
    }

    fn read_summaries(&mut self) -> Result<Vec<StepSummary>> {
        Ok(self
            .envs
            .iter()
            .map(|e| StepSummary {
                progress: Progress {
                    improvement_from_start: e.progress[0] as f32,
                    recent_improvement: e.progress[1] as f32,
                    optimization_rate: e.progress[2] as f32,
                    stagnation_steps: e.stagnation,
                },
                coverage: Coverage {
                    target_coverage_rate: e.coverage[0] as f32,
                    intervention_diversity: e.coverage[1] as f32,
                    unexplored_variables: e.coverage[2] as f32,
                },
                selected: e.selected,
            })
            .collect())
    }

    fn read_policy_features(&mut self) -> Result<Vec<f32>> {
        Ok(self.envs.iter().flat_map(|e| narrow(&e.policy)).collect())
    }

    fn read_scores(&mut self) -> Result<Vec<f32>> {
        Ok(self.envs.iter().flat_map(|e| narrow(&e.scores)).collect())
    }

    fn read_state(&mut self) -> Result<AcquisitionState> {
        let mut s = AcquisitionState::new(&self.config)?;
        let (n, cap) = (self.config.n_vars, self.config.capacity);
        for (b, e) in self.envs.iter().enumerate() {
            s.values[b * cap * n..][..cap * n].copy_from_slice(&narrow(&e.values));
            for (dst, &x) in s.interventions[b * cap * n..][..cap * n]
                .iter_mut()
                .zip(&e.interventions)
            {
                *dst = x as u8 as f32;
            }
            s.targets[b * cap..][..cap].copy_from_slice(&narrow(&e.targets));
            s.scalars[b] = EnvScalars {
                write_idx: e.write_idx as u32,
                n_samples: e.n_samples as u32,
                step: e.step as u32,
                target_idx: e.target as u32,
                best_value: e.best as f32,
                uncertainty_bits: e.bits as f32,
                window_head: 0,
                window_len: 0,
            };
            // The reference keeps no deque; it reports the one-entry deque holding the
            // best of the samples older than the newest 10, found by scanning.
            let older = e.n_samples.saturating_sub(10);
            if older > 0 {
                let first = e.step as usize - e.n_samples;
                let best_step = (first..first + older)
                    .reduce(|a, b| {
                        let (ta, tb) = (e.targets[a % cap], e.targets[b % cap]);
                        if self.better(ta, tb) == ta { a } else { b }
                    })
                    .unwrap();
                s.prev_best_window[b * cap] = best_step as u32;
                s.scalars[b].window_len = 1;
            }
            let fd = self.config.feature_dim;
            s.mechanism_features[b * n * fd..][..n * fd].copy_from_slice(&narrow(&e.features));
            s.marginal_probs[b * n..][..n].copy_from_slice(&narrow(&e.marginal));
            s.confidence[b * n..][..n].copy_from_slice(&narrow(&e.confidence));
            for (dst, c) in s.intervention_counts[b * n..][..n]
                .iter_mut()
                .zip(self.counts(e))
            {
                *dst = c as u32;
            }
        }
        s.summaries = self.read_summaries()?;
        s.policy_features = self.read_policy_features()?;
        s.scores = self.read_scores()?;
        Ok(s)
    }
}
