//! Each operation of the contract for one environment: `#[inline(always)]` functions
//! of one `(env_index, env, args)` tuple, so that [`crate::dispatch::Kernel`] compiles
//! them, and the kernels they inline, for the dispatched instruction set.

use tessera_tensor::acquisition::{Coverage, Progress, Samples, StepInput, StepSummary};

use super::kernels::{self, Dims, EnvMut};

/// Runs `op` over every environment in turn (one dispatch for a whole batch).
#[inline(always)]
pub(super) fn each<A: Copy, K: for<'e> Fn((usize, EnvMut<'e>, A))>(
    (envs, args, op): (Vec<EnvMut<'_>>, A, K),
) {
    for (b, env) in envs.into_iter().enumerate() {
        op((b, env, args));
    }
}

#[inline(always)]
pub(super) fn add_sample((b, mut e, (d, s)): (usize, EnvMut<'_>, (Dims, &Samples<'_>))) {
    let row = b * d.n..(b + 1) * d.n;
    kernels::add_sample(
        d,
        &mut e,
        &s.values[row.clone()],
        &s.intervened[row],
        s.targets[b],
    );
}

#[inline(always)]
pub(super) fn update_features((b, e, (d, observed, lr)): (usize, EnvMut<'_>, (Dims, &[f32], f32))) {
    let per_env = d.n * d.fd;
    kernels::update_features(d, e.features, &observed[b * per_env..][..per_env], lr);
}

#[inline(always)]
pub(super) fn confidence((_, e, d): (usize, EnvMut<'_>, Dims)) {
    kernels::confidence(d, e.features, e.confidence, e.scalars.target_idx as usize);
}

#[inline(always)]
pub(super) fn progress((_, e, d): (usize, EnvMut<'_>, Dims)) {
    e.summary.progress = kernels::progress(d, e.targets, e.prev_window, e.scalars);
}

#[inline(always)]
pub(super) fn coverage((_, e, d): (usize, EnvMut<'_>, Dims)) {
    e.summary.coverage = kernels::coverage(d, e.counts, e.scalars);
}

/// Progress and coverage, and the policy features built from them; returns the first
/// two for the step's summary.
#[inline(always)]
fn progress_coverage_features(d: Dims, e: &mut EnvMut<'_>) -> (Progress, Coverage) {
    let progress = kernels::progress(d, e.targets, e.prev_window, e.scalars);
    let coverage = kernels::coverage(d, e.counts, e.scalars);
    kernels::policy_features(
        d,
        e.features,
        e.marginal,
        e.confidence,
        e.counts,
        e.scalars,
        &progress,
        &coverage,
        e.policy,
    );
    (progress, coverage)
}

#[inline(always)]
pub(super) fn policy_features((_, mut e, d): (usize, EnvMut<'_>, Dims)) {
    progress_coverage_features(d, &mut e);
}

#[inline(always)]
pub(super) fn scores((_, e, (d, weight)): (usize, EnvMut<'_>, (Dims, f32))) {
    kernels::scores(d, e.policy, e.scores, e.scalars.target_idx as usize, weight);
}

#[inline(always)]
pub(super) fn select((_, e, ()): (usize, EnvMut<'_>, ())) {
    e.summary.selected = kernels::select(e.scores, e.scalars.target_idx as usize);
}

/// The fused step: all eight stages on one environment while its data is in cache.
#[inline(always)]
pub(super) fn step((b, mut e, (d, input)): (usize, EnvMut<'_>, (Dims, &StepInput<'_>))) {
    let samples = &input.samples;
    let row = b * d.n..(b + 1) * d.n;
    let target = e.scalars.target_idx as usize;
    kernels::add_sample(
        d,
        &mut e,
        &samples.values[row.clone()],
        &samples.intervened[row],
        samples.targets[b],
    );
    kernels::update_features(
        d,
        e.features,
        &input.observed[b * d.n * d.fd..][..d.n * d.fd],
        input.learning_rate,
    );
    kernels::confidence(d, e.features, e.confidence, target);
    let (progress, coverage) = progress_coverage_features(d, &mut e);
    kernels::scores(d, e.policy, e.scores, target, input.exploration_weight);
    *e.summary = StepSummary {
        progress,
        coverage,
        selected: kernels::select(e.scores, target),
    };
}

/// The fused step over a run of consecutive environments, each one's ring rows
/// requested from memory while the one before it computes.
#[inline(always)]
pub(super) fn step_run((run, args): (Vec<(usize, EnvMut<'_>)>, (Dims, &StepInput<'_>))) {
    let mut envs = run.into_iter().peekable();
    while let Some((b, e)) = envs.next() {
        if let Some((_, next)) = envs.peek() {
            kernels::prefetch_ring(args.0, next);
        }
        step((b, e, args));
    }
}

#[inline(always)]
pub(super) fn history((d, e, t, out): (Dims, EnvMut<'_>, usize, &mut [f32])) {
    kernels::history(d, &e, t, out);
}
