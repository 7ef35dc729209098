//! The acquisition parity suite: scenarios written once against [`AcquisitionBackend`]
//! and run, through [`acquisition_parity_suite!`](crate::acquisition_parity_suite),
//! against the reference, the CPU backend and the GPU backend. Each scenario drives the
//! backend and the f64 reference with the same inputs and compares everything they
//! report, the whole state included, to the spec's tolerances.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

use super::ReferenceAcquisition;
use crate::acquisition::{
    AcquisitionBackend, AcquisitionConfig, AcquisitionState, MAX_FEATURE_DIM, MAX_MAGNITUDE,
    NO_SELECTION, Objective, Samples, StepInput,
};
use crate::error::{Result, TesseraError};

/// Builds a backend for a config. Any `Fn(&AcquisitionConfig) -> Result<B>` is one.
pub trait BackendFactory {
    /// The backend it builds.
    type Backend: AcquisitionBackend;
    /// Builds a fresh backend state.
    fn create(&self, config: &AcquisitionConfig) -> Result<Self::Backend>;
}

impl<B: AcquisitionBackend, F: Fn(&AcquisitionConfig) -> Result<B>> BackendFactory for F {
    type Backend = B;
    fn create(&self, config: &AcquisitionConfig) -> Result<B> {
        self(config)
    }
}

/// Absolute floor and relative tolerance of float comparisons (the spec's).
pub const ABS_TOL: f64 = 1e-6;
/// Relative tolerance of float comparisons.
pub const REL_TOL: f64 = 1e-5;

/// Whether `got` agrees with `want` to the spec's tolerances (infinities must match).
pub fn close(got: f32, want: f32) -> bool {
    if got == want {
        return true;
    }
    let (g, w) = (got as f64, want as f64);
    g.is_finite() && w.is_finite() && (g - w).abs() <= (REL_TOL * w.abs()).max(ABS_TOL)
}

fn cmp_floats(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} elements, expected {}",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(&g, &w)| !close(g, w)) {
        Some(i) => Err(format!("{what}[{i}]: got {}, expected {}", got[i], want[i])),
        None => Ok(()),
    }
}

fn cmp_exact<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: &[T],
    want: &[T],
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} elements, expected {}",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(g, w)| g != w) {
        Some(i) => Err(format!(
            "{what}[{i}]: got {:?}, expected {:?}",
            got[i], want[i]
        )),
        None => Ok(()),
    }
}

/// Compares every output and the whole state of `backend` with `reference`.
///
/// Selected indices must match exactly, except where the reference's scores of the two
/// candidates agree within tolerance (a near-tie that f32 rounding may order either way).
pub fn compare<B: AcquisitionBackend>(
    backend: &mut B,
    reference: &mut ReferenceAcquisition,
) -> Result<(), String> {
    let e = |err: TesseraError| err.to_string();
    let cfg = reference.config().clone();
    let n = cfg.n_vars;
    cmp_floats(
        "confidence",
        &backend.read_confidence().map_err(e)?,
        &reference.read_confidence().map_err(e)?,
    )?;
    cmp_floats(
        "policy_features",
        &backend.read_policy_features().map_err(e)?,
        &reference.read_policy_features().map_err(e)?,
    )?;
    cmp_floats(
        "scores",
        &backend.read_scores().map_err(e)?,
        &reference.read_scores().map_err(e)?,
    )?;
    let (got, want) = (
        backend.read_summaries().map_err(e)?,
        reference.read_summaries().map_err(e)?,
    );
    let ref_scores = reference.scores_f64();
    for (b, (g, w)) in got.iter().zip(&want).enumerate() {
        let (gp, wp) = (g.progress, w.progress);
        cmp_floats(
            &format!("progress[{b}]"),
            &[
                gp.improvement_from_start,
                gp.recent_improvement,
                gp.optimization_rate,
            ],
            &[
                wp.improvement_from_start,
                wp.recent_improvement,
                wp.optimization_rate,
            ],
        )?;
        cmp_exact(
            &format!("stagnation_steps[{b}]"),
            &[gp.stagnation_steps],
            &[wp.stagnation_steps],
        )?;
        let (gc, wc) = (g.coverage, w.coverage);
        cmp_floats(
            &format!("coverage[{b}]"),
            &[
                gc.target_coverage_rate,
                gc.intervention_diversity,
                gc.unexplored_variables,
            ],
            &[
                wc.target_coverage_rate,
                wc.intervention_diversity,
                wc.unexplored_variables,
            ],
        )?;
        if g.selected != w.selected {
            let target = cfg.target_indices[b];
            let scores = &ref_scores[b * n..][..n];
            let near_tie = g.selected != NO_SELECTION
                && g.selected != target
                && (g.selected as usize) < n
                && w.selected != NO_SELECTION
                && close(
                    scores[g.selected as usize] as f32,
                    scores[w.selected as usize] as f32,
                );
            if !near_tie {
                return Err(format!(
                    "selected[{b}]: got {}, expected {}",
                    g.selected, w.selected
                ));
            }
        }
    }
    compare_state(
        &backend.read_state().map_err(e)?,
        &reference.read_state().map_err(e)?,
    )
}

/// Compares two full states: the ring exactly, floats to tolerance, and the backend's
/// incremental intervention counts with a rescan of its own ring.
pub fn compare_state(got: &AcquisitionState, want: &AcquisitionState) -> Result<(), String> {
    cmp_exact("values", &got.values, &want.values)?;
    cmp_exact("interventions", &got.interventions, &want.interventions)?;
    cmp_exact("targets", &got.targets, &want.targets)?;
    let spec_fields = |s: &AcquisitionState| {
        s.scalars
            .iter()
            .map(|e| e.spec_fields())
            .collect::<Vec<_>>()
    };
    cmp_exact("scalars", &spec_fields(got), &spec_fields(want))?;
    cmp_floats(
        "mechanism_features",
        &got.mechanism_features,
        &want.mechanism_features,
    )?;
    cmp_exact("marginal_probs", &got.marginal_probs, &want.marginal_probs)?;
    cmp_exact(
        "intervention_counts (vs reference)",
        &got.intervention_counts,
        &want.intervention_counts,
    )?;
    cmp_exact(
        "intervention_counts (vs rescan of the ring)",
        &got.intervention_counts,
        &got.rescan_intervention_counts(),
    )?;
    cmp_exact(
        "previous-best window (vs rescan of the ring)",
        &got.window_prev_best(),
        &got.rescan_prev_best(),
    )
}

pub use crate::rng::Rng;

/// Owned inputs of one pipeline step, generated at random.
#[derive(Debug, Clone)]
pub struct OwnedStep {
    /// `[B, n_vars]`.
    pub values: Vec<f32>,
    /// `[B, n_vars]`.
    pub intervened: Vec<bool>,
    /// `[B]`.
    pub targets: Vec<f32>,
    /// `[B, n_vars, feature_dim]`.
    pub observed: Vec<f32>,
    /// In (0, 1].
    pub learning_rate: f32,
    /// Exploration weight.
    pub exploration_weight: f32,
}

impl OwnedStep {
    /// Random inputs for `config`. Targets come from a coarse grid part of the time so
    /// that repeated bests (stagnation) and exact ties occur.
    pub fn random(config: &AcquisitionConfig, rng: &mut Rng) -> Self {
        let (b, n, fd) = (config.batch(), config.n_vars, config.feature_dim);
        let p_intervene = rng.range(0.05, 0.6);
        Self {
            values: (0..b * n).map(|_| rng.range(-10.0, 10.0)).collect(),
            intervened: (0..b * n).map(|_| rng.unit() < p_intervene).collect(),
            targets: (0..b)
                .map(|_| {
                    if rng.unit() < 0.3 {
                        (rng.range(-4.0, 4.0)).round()
                    } else {
                        rng.range(-50.0, 50.0)
                    }
                })
                .collect(),
            observed: (0..b * n * fd).map(|_| rng.range(-0.5, 1.5)).collect(),
            learning_rate: rng.range(0.01, 1.0).max(1e-3),
            exploration_weight: rng.range(0.0, 0.5),
        }
    }

    /// Borrowed view for [`AcquisitionBackend::step`].
    pub fn input(&self) -> StepInput<'_> {
        StepInput {
            samples: Samples {
                values: &self.values,
                intervened: &self.intervened,
                targets: &self.targets,
            },
            observed: &self.observed,
            learning_rate: self.learning_rate,
            exploration_weight: self.exploration_weight,
        }
    }
}

fn pair<F: BackendFactory>(f: &F, cfg: &AcquisitionConfig) -> (F::Backend, ReferenceAcquisition) {
    (
        f.create(cfg).expect("backend creation"),
        ReferenceAcquisition::new(cfg).expect("reference creation"),
    )
}

fn both<F: BackendFactory>(
    backend: &mut F::Backend,
    reference: &mut ReferenceAcquisition,
    op: impl Fn(&mut dyn AcquisitionBackend) -> Result<()>,
) {
    op(backend).expect("backend op");
    op(reference).expect("reference op");
}

fn assert_matches<B: AcquisitionBackend>(
    backend: &mut B,
    reference: &mut ReferenceAcquisition,
    context: &str,
) {
    if let Err(msg) = compare(backend, reference) {
        panic!("{context}: {msg}");
    }
}

/// Runs `steps` random pipeline steps on both, comparing after each `every` steps and
/// at the end.
pub fn run_steps<B: AcquisitionBackend>(
    backend: &mut B,
    reference: &mut ReferenceAcquisition,
    rng: &mut Rng,
    steps: usize,
    every: usize,
) -> Result<(), String> {
    let cfg = reference.config().clone();
    for i in 0..steps {
        let input = OwnedStep::random(&cfg, rng);
        backend.step(&input.input()).map_err(|e| e.to_string())?;
        reference.step(&input.input()).map_err(|e| e.to_string())?;
        if (i + 1) % every.max(1) == 0 || i + 1 == steps {
            compare(backend, reference).map_err(|m| format!("after step {}: {m}", i + 1))?;
        }
    }
    Ok(())
}

/// The spec's test vector for `mechanism_confidence`.
pub fn spec_test_vector<F: BackendFactory>(f: &F) {
    let cfg = AcquisitionConfig::single(3, 4, 1);
    let (mut be, mut re) = pair(f, &cfg);
    let observed = [1.0, 0.1, 0.9, 0.0, 1.0, 0.0, 0.5, 0.5, 0.5];
    both::<F>(&mut be, &mut re, |b| {
        b.update_mechanism_features(&observed, 1.0)
    });
    both::<F>(&mut be, &mut re, |b| b.mechanism_confidence());
    let got = be.read_confidence().unwrap();
    let want = [0.909_091, 0.0, 0.333_333];
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() < 1e-6,
            "confidence {got:?}, expected {want:?}"
        );
    }
    assert_matches(&mut be, &mut re, "spec test vector");
}

/// Every operation on a fresh, empty state.
pub fn empty_buffer<F: BackendFactory>(f: &F) {
    for objective in [Objective::Maximize, Objective::Minimize] {
        let cfg = AcquisitionConfig::batched(4, 5, vec![0, 3]).with_objective(objective);
        let (mut be, mut re) = pair(f, &cfg);
        both::<F>(&mut be, &mut re, |b| b.mechanism_confidence());
        both::<F>(&mut be, &mut re, |b| b.optimization_progress());
        both::<F>(&mut be, &mut re, |b| b.exploration_coverage());
        both::<F>(&mut be, &mut re, |b| b.policy_features());
        both::<F>(&mut be, &mut re, |b| b.acquisition_scores(0.1));
        both::<F>(&mut be, &mut re, |b| b.select_intervention());
        assert_matches(&mut be, &mut re, "empty buffer");
        let s = be.read_summaries().unwrap();
        assert_eq!(s[0].coverage.unexplored_variables, 1.0);
        assert_eq!(s[0].progress.stagnation_steps, 0);
        let pf = be.read_policy_features().unwrap();
        let fd = cfg.feature_dim;
        assert_eq!(pf[fd + 2], 0.0, "best_value is reported as 0 while empty");
        assert_eq!(&pf[fd + 10..fd + 12], &[0.0, 0.0]);
        let h = be.history_tensor(3).unwrap();
        assert_eq!(h, re.history_tensor(3).unwrap());
        assert!(h.chunks(5).all(|c| c == [0.0, 0.0, 0.0, 0.0, 1.0]));
    }
}

/// A ring filled to exactly its capacity, then one more sample.
pub fn exactly_full<F: BackendFactory>(f: &F) {
    let cfg = AcquisitionConfig::batched(5, 7, vec![2, 0, 4]);
    let (mut be, mut re) = pair(f, &cfg);
    let mut rng = Rng::new(7);
    run_steps(&mut be, &mut re, &mut rng, 7, 1).unwrap();
    let s = be.read_state().unwrap();
    assert!(
        s.scalars
            .iter()
            .all(|e| e.n_samples == 7 && e.write_idx == 0)
    );
    run_steps(&mut be, &mut re, &mut rng, 1, 1).unwrap();
}

/// Small rings wrapped many times, every step compared.
pub fn many_wraps<F: BackendFactory>(f: &F) {
    for (cap, steps) in [(1, 9), (2, 13), (3, 40), (11, 100)] {
        let cfg = AcquisitionConfig::batched(6, cap, vec![0, 5, 3]);
        let (mut be, mut re) = pair(f, &cfg);
        let mut rng = Rng::new(cap as u64);
        if let Err(m) = run_steps(&mut be, &mut re, &mut rng, steps, 1) {
            panic!("capacity {cap}: {m}");
        }
        for t in [1, cap, 2 * cap + 3] {
            cmp_floats(
                "history",
                &be.history_tensor(t).unwrap(),
                &re.history_tensor(t).unwrap(),
            )
            .unwrap_or_else(|m| panic!("capacity {cap}, T {t}: {m}"));
        }
    }
}

/// Same data under both objectives, feature widths 2 and 5.
pub fn objectives<F: BackendFactory>(f: &F) {
    for objective in [Objective::Maximize, Objective::Minimize] {
        for fd in [2, 5] {
            let cfg = AcquisitionConfig::batched(5, 16, vec![1, 4])
                .with_objective(objective)
                .with_feature_dim(fd);
            let (mut be, mut re) = pair(f, &cfg);
            run_steps(&mut be, &mut re, &mut Rng::new(3), 30, 1)
                .unwrap_or_else(|m| panic!("{objective:?}, fd {fd}: {m}"));
        }
    }
}

/// Identical variables tie; the lowest non-target index must win.
pub fn selection_ties<F: BackendFactory>(f: &F) {
    for target in [0u32, 1, 3] {
        let cfg = AcquisitionConfig::single(4, 8, target);
        let (mut be, mut re) = pair(f, &cfg);
        both::<F>(&mut be, &mut re, |b| b.mechanism_confidence());
        both::<F>(&mut be, &mut re, |b| b.policy_features());
        both::<F>(&mut be, &mut re, |b| b.acquisition_scores(0.1));
        both::<F>(&mut be, &mut re, |b| b.select_intervention());
        assert_matches(&mut be, &mut re, "ties");
        let expected = if target == 0 { 1 } else { 0 };
        assert_eq!(
            be.read_summaries().unwrap()[0].selected,
            expected,
            "target {target}"
        );
    }
    // A single variable is its own target: nothing can be selected.
    let cfg = AcquisitionConfig::single(1, 3, 0);
    let (mut be, mut re) = pair(f, &cfg);
    run_steps(&mut be, &mut re, &mut Rng::new(1), 5, 1).unwrap();
    assert_eq!(be.read_summaries().unwrap()[0].selected, NO_SELECTION);
}

/// History tensors with fewer rows than T, exactly T, and more, and constant columns.
pub fn history_windows<F: BackendFactory>(f: &F) {
    let cfg = AcquisitionConfig::batched(3, 10, vec![1, 2]);
    let (mut be, mut re) = pair(f, &cfg);
    let mut rng = Rng::new(11);
    for steps in [1, 3, 9] {
        run_steps(&mut be, &mut re, &mut rng, steps, steps).unwrap();
        for t in [1, 2, 4, 10, 25] {
            cmp_floats(
                "history",
                &be.history_tensor(t).unwrap(),
                &re.history_tensor(t).unwrap(),
            )
            .unwrap_or_else(|m| panic!("T {t}: {m}"));
        }
    }
    // Constant columns standardise to exactly 0.
    let (mut be, mut re) = pair(f, &AcquisitionConfig::single(2, 4, 0));
    for _ in 0..3 {
        let s = Samples {
            values: &[0.1, 7.0],
            intervened: &[false, true],
            targets: &[1.0],
        };
        both::<F>(&mut be, &mut re, |b| b.add_samples(&s));
    }
    let h = be.history_tensor(3).unwrap();
    assert_eq!(h, re.history_tensor(3).unwrap());
    assert!(h.chunks(5).all(|c| c[0] == 0.0));
}

/// A batch wider and longer than the random scenarios reach, for a backend's
/// parallel paths: 130 variables, 70 environments (the CPU's runs of 32 and a
/// remainder), a ring that wraps, compared with the reference after every step.
pub fn wide_batches<F: BackendFactory>(f: &F) {
    let targets = (0..70).map(|b| (b * 37 % 130) as u32).collect();
    let cfg = AcquisitionConfig::batched(130, 6, targets).with_feature_dim(4);
    let (mut be, mut re) = pair(f, &cfg);
    run_steps(&mut be, &mut re, &mut Rng::new(41), 9, 1).unwrap();
}

/// Size-1 shapes and a posterior update.
pub fn size_one_and_posterior<F: BackendFactory>(f: &F) {
    let cfg = AcquisitionConfig::single(2, 1, 1);
    let (mut be, mut re) = pair(f, &cfg);
    let mut rng = Rng::new(5);
    run_steps(&mut be, &mut re, &mut rng, 4, 1).unwrap();
    both::<F>(&mut be, &mut re, |b| b.set_posterior(&[0.25, 0.0], &[3.5]));
    run_steps(&mut be, &mut re, &mut rng, 2, 1).unwrap();
}

/// Bad inputs give typed errors and leave the state exactly as it was.
pub fn invalid_inputs_leave_state_unchanged<F: BackendFactory>(f: &F) {
    let cfg = AcquisitionConfig::batched(3, 4, vec![0, 2]);
    let mut be = f.create(&cfg).unwrap();
    let mut re = ReferenceAcquisition::new(&cfg).unwrap();
    run_steps(&mut be, &mut re, &mut Rng::new(2), 5, 5).unwrap();
    let before = be.read_state().unwrap();
    let good = OwnedStep::random(&cfg, &mut Rng::new(9));

    let mut nan_value = good.clone();
    nan_value.values[4] = f32::NAN;
    let mut inf_target = good.clone();
    inf_target.targets[1] = f32::INFINITY;
    let mut nan_observed = good.clone();
    nan_observed.observed[0] = f32::NAN;
    let mut bad_lr = good.clone();
    bad_lr.learning_rate = 0.0;
    let mut short = good.clone();
    short.values.pop();
    let mut short_flags = good.clone();
    short_flags.intervened.push(true);
    let mut nan_weight = good.clone();
    nan_weight.exploration_weight = f32::NAN;
    let mut huge_value = good.clone();
    huge_value.values[2] = -3e38;
    let mut huge_target = good.clone();
    huge_target.targets[0] = 2.0 * MAX_MAGNITUDE;
    let mut huge_observed = good.clone();
    huge_observed.observed[1] = 1e20;
    let mut huge_weight = good.clone();
    huge_weight.exploration_weight = 1e30;

    // (name, input, expected error, whether the samples themselves are bad)
    for (name, input, check, bad_samples) in [
        (
            "NaN value",
            &nan_value,
            matches_non_finite as fn(&TesseraError) -> bool,
            true,
        ),
        ("inf target", &inf_target, matches_non_finite, true),
        ("NaN observed", &nan_observed, matches_non_finite, false),
        ("learning rate 0", &bad_lr, matches_argument, false),
        ("short values", &short, matches_shape, true),
        ("long flags", &short_flags, matches_shape, true),
        ("NaN weight", &nan_weight, matches_argument, false),
        ("value -3e38", &huge_value, matches_too_large, true),
        ("target 2e15", &huge_target, matches_too_large, true),
        ("observed 1e20", &huge_observed, matches_too_large, false),
        ("weight 1e30", &huge_weight, matches_argument, false),
    ] {
        let err = be.step(&input.input()).expect_err(name);
        assert!(check(&err), "{name}: unexpected error {err}");
        if bad_samples {
            let err = be.add_samples(&input.input().samples).expect_err(name);
            assert!(check(&err), "{name}: unexpected add_samples error {err}");
        }
        assert_eq!(be.read_state().unwrap(), before, "{name} changed the state");
    }
    assert!(matches_argument(
        &be.update_mechanism_features(&good.observed, 1.5)
            .unwrap_err()
    ));
    assert!(matches_shape(
        &be.update_mechanism_features(&good.observed[1..], 0.5)
            .unwrap_err()
    ));
    assert!(matches_argument(
        &be.acquisition_scores(f32::INFINITY).unwrap_err()
    ));
    assert!(matches_argument(
        &be.set_posterior(&[0.5, 1.5, 0.0, 0.5, 0.5, 0.5], &[1.0, 1.0])
            .unwrap_err()
    ));
    assert!(matches_shape(
        &be.set_posterior(&[0.5; 6], &[1.0]).unwrap_err()
    ));
    assert!(matches_argument(
        &be.set_posterior(&[0.5; 6], &[1.0, -1.0]).unwrap_err()
    ));
    assert!(matches_argument(&be.history_tensor(0).unwrap_err()));
    assert_eq!(
        be.read_state().unwrap(),
        before,
        "a rejected call changed the state"
    );
}

fn matches_non_finite(e: &TesseraError) -> bool {
    matches!(e, TesseraError::NonFinite { .. })
}
fn matches_too_large(e: &TesseraError) -> bool {
    matches!(e, TesseraError::TooLarge { .. })
}
fn matches_argument(e: &TesseraError) -> bool {
    matches!(e, TesseraError::InvalidArgument { .. })
}
fn matches_shape(e: &TesseraError) -> bool {
    matches!(e, TesseraError::ShapeMismatch { .. })
}

/// Invalid configurations are errors at construction.
pub fn invalid_config_is_error<F: BackendFactory>(f: &F) {
    for cfg in [
        AcquisitionConfig::single(0, 4, 0),
        AcquisitionConfig::single(3, 0, 0),
        AcquisitionConfig::single(3, 4, 3),
        AcquisitionConfig::single(3, 4, 0).with_feature_dim(1),
        AcquisitionConfig::batched(3, 4, vec![]),
        AcquisitionConfig::batched(3, 4, vec![0, 1, 7]),
        AcquisitionConfig::single(3, 4, 0).with_feature_dim(MAX_FEATURE_DIM + 1),
        AcquisitionConfig::single(3, 4, 0).with_memory_limit(64),
    ] {
        assert!(f.create(&cfg).is_err(), "{cfg:?} was accepted");
    }
    // The probe (~80 GB): refused before anything is allocated.
    let huge = AcquisitionConfig::batched(5, 1_000_000, vec![0; 4096]);
    assert!(matches!(
        f.create(&huge),
        Err(TesseraError::DeviceLimit { .. })
    ));
    // A history tensor beyond the memory limit is refused too.
    let cfg = AcquisitionConfig::batched(3, 8, vec![0; 4]);
    let limited = cfg.clone().with_memory_limit(cfg.state_bytes().unwrap());
    let mut be = f.create(&limited).unwrap();
    assert!(matches!(
        be.history_tensor(1_000_000),
        Err(TesseraError::DeviceLimit { .. })
    ));
}

/// Inputs at the documented magnitude limit: every output stays finite and agrees
/// with the reference.
pub fn extreme_magnitudes<F: BackendFactory>(f: &F) {
    for objective in [Objective::Maximize, Objective::Minimize] {
        let cfg = AcquisitionConfig::batched(4, 16, vec![0, 1, 2, 3]).with_objective(objective);
        let (mut be, mut re) = pair(f, &cfg);
        let mut rng = Rng::new(17);
        for i in 0..40 {
            let mut step = OwnedStep::random(&cfg, &mut rng);
            let sign = |k: usize| if (i + k).is_multiple_of(3) { -1.0 } else { 1.0 };
            step.values
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = sign(k) * MAX_MAGNITUDE);
            step.targets
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = sign(k + 1) * MAX_MAGNITUDE);
            step.observed
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = sign(k) * MAX_MAGNITUDE);
            step.exploration_weight = MAX_MAGNITUDE;
            both::<F>(&mut be, &mut re, |b| b.step(&step.input()));
        }
        let state = be.read_state().unwrap();
        for (what, data) in [
            ("confidence", &state.confidence),
            ("policy_features", &state.policy_features),
            ("mechanism_features", &state.mechanism_features),
        ] {
            assert!(
                data.iter().all(|v| v.is_finite()),
                "{objective:?}: non-finite {what}"
            );
        }
        // The target's score is -inf by the spec; every other score is finite.
        for (i, &score) in state.scores.iter().enumerate() {
            let target = cfg.target_indices[i / cfg.n_vars] as usize == i % cfg.n_vars;
            assert!(
                score.is_finite() != target,
                "{objective:?}: score {i} is {score}"
            );
        }
        for s in &state.summaries {
            let p = s.progress;
            assert!(
                [
                    p.improvement_from_start,
                    p.recent_improvement,
                    p.optimization_rate
                ]
                .iter()
                .all(|v| v.is_finite()),
                "{objective:?}: non-finite progress {p:?}"
            );
        }
        assert!(be.history_tensor(20).unwrap().iter().all(|v| v.is_finite()));
        assert_matches(&mut be, &mut re, "extreme magnitudes");
    }
}

/// Corruptions of a valid checkpoint, each with the field the rejection must name.
pub fn corrupt_checkpoints(good: &AcquisitionState) -> Vec<(&'static str, AcquisitionState)> {
    let cap = good.config.capacity as u32;
    let mut out = Vec::new();
    let mut corrupt = |field, f: &dyn Fn(&mut AcquisitionState)| {
        let mut s = good.clone();
        f(&mut s);
        out.push((field, s));
    };
    corrupt("scalars.write_idx", &|s| s.scalars[1].write_idx = cap + 3);
    corrupt("scalars.n_samples", &|s| s.scalars[0].n_samples = cap + 1);
    corrupt("scalars.target_idx", &|s| s.scalars[0].target_idx = 99);
    corrupt("scalars.best_value", &|s| {
        s.scalars[1].best_value = f32::NAN
    });
    corrupt("scalars.best_value", &|s| s.scalars[0].best_value = -3e38);
    corrupt("scalars.uncertainty_bits", &|s| {
        s.scalars[0].uncertainty_bits = -1.0
    });
    corrupt("marginal_probs", &|s| s.marginal_probs[3] = 7.0);
    corrupt("values", &|s| s.values[5] = f32::INFINITY);
    corrupt("targets", &|s| s.targets[2] = 3e38);
    corrupt("interventions", &|s| s.interventions[4] = 0.5);
    corrupt("intervention_counts", &|s| s.intervention_counts[1] += 1);
    corrupt("prev_best_window", &|s| s.scalars[0].window_head = cap);
    corrupt("prev_best_window", &|s| s.scalars[1].window_len = cap + 1);
    corrupt("summaries.selected", &|s| s.summaries[0].selected = 1000);
    corrupt("confidence", &|s| s.confidence[0] = f32::NAN);
    out
}

/// A checkpoint of a batch that has wrapped its ring: what
/// [`check_checkpoint_rejection`] corrupts.
pub fn wrapped_checkpoint() -> AcquisitionState {
    let cfg = AcquisitionConfig::batched(4, 12, vec![0, 3]);
    let mut re = ReferenceAcquisition::new(&cfg).unwrap();
    let mut rng = Rng::new(5);
    for _ in 0..30 {
        re.step(&OwnedStep::random(&cfg, &mut rng).input()).unwrap();
    }
    re.read_state().unwrap()
}

/// `restore` (a backend's `from_state`) accepts a valid checkpoint and rejects each
/// of [`corrupt_checkpoints`] with [`TesseraError::InvalidState`] naming the field.
pub fn check_checkpoint_rejection(restore: impl Fn(&AcquisitionState) -> Result<()>) {
    let good = wrapped_checkpoint();
    good.validate().unwrap();
    restore(&good).expect("a valid checkpoint");
    for (field, state) in corrupt_checkpoints(&good) {
        match restore(&state) {
            Err(TesseraError::InvalidState { field: named, .. }) if named == field => {}
            other => panic!("corrupt `{field}`: expected InvalidState naming it, got {other:?}"),
        }
    }
}

/// A random scenario: a shape, a number of steps and a seed for the inputs.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The batch's configuration.
    pub config: AcquisitionConfig,
    /// Pipeline steps to run.
    pub steps: usize,
    /// Seed of the inputs.
    pub seed: u64,
}

/// Random shapes within the ranges (n_vars 1..64, capacity 1..2000, B 1..64),
/// with the total work bounded so a case stays quick on a software GPU.
pub fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    let capacity = prop_oneof![1usize..=16, 1usize..=2000];
    (
        1usize..=64,
        capacity,
        1usize..=64,
        2usize..=5,
        any::<bool>(),
        0usize..=80,
        any::<u64>(),
    )
        .prop_flat_map(|(n, cap, b, fd, minimize, steps, seed)| {
            // Keep B * n * capacity (the ring) under about 2^20 elements.
            let b = b.min((1 << 20) / (n * cap)).max(1);
            (
                proptest::collection::vec(0..n as u32, b),
                Just((n, cap, fd, minimize, steps, seed)),
            )
        })
        .prop_map(|(targets, (n, cap, fd, minimize, steps, seed))| Scenario {
            config: AcquisitionConfig::batched(n, cap, targets)
                .with_feature_dim(fd)
                .with_objective(if minimize {
                    Objective::Minimize
                } else {
                    Objective::Maximize
                }),
            steps,
            seed,
        })
}

/// Random pipelines compared with the reference at ten checkpoints, plus history.
pub fn random_pipelines<F: BackendFactory>(f: &F, cases: u32) {
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&scenario_strategy(), |s| {
            let (mut be, mut re) = pair(f, &s.config);
            let mut rng = Rng::new(s.seed);
            run_steps(&mut be, &mut re, &mut rng, s.steps, s.steps / 10)
                .map_err(TestCaseError::fail)?;
            // Every state a backend reaches is one its checkpoint check accepts.
            be.read_state()
                .unwrap()
                .validate()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let t = 1 + (s.seed % 24) as usize;
            cmp_floats(
                "history",
                &be.history_tensor(t).unwrap(),
                &re.history_tensor(t).unwrap(),
            )
            .map_err(TestCaseError::fail)?;
            Ok(())
        })
        .unwrap();
}

/// Instantiates the acquisition parity suite for one backend.
///
/// `$factory` is an expression of type `Option<F>` with `F:` [`BackendFactory`];
/// `None` skips every test (a GPU backend with no adapter outside CI). `cases` is the
/// number of random scenarios.
#[macro_export]
macro_rules! acquisition_parity_suite {
    ($factory:expr, cases = $cases:expr) => {
        $crate::acquisition_parity_suite!(@tests $factory, $cases;
            spec_test_vector, empty_buffer, exactly_full, many_wraps, objectives,
            selection_ties, history_windows, size_one_and_posterior, wide_batches,
            invalid_inputs_leave_state_unchanged, invalid_config_is_error,
            extreme_magnitudes);
        #[test]
        fn random_pipelines() {
            if let Some(f) = $factory {
                $crate::reference::parity::random_pipelines(&f, $cases);
            }
        }
    };
    (@tests $factory:expr, $cases:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $factory {
                    $crate::reference::parity::$name(&f);
                }
            }
        )*
    };
}
