//! Value of information for decision analysts: EVPI, EVPPI, EVSI, structural EVPI,
//! acceptability curves and population scaling, over the draws of a probabilistic
//! sensitivity analysis, on any [`Device`]. Semantics and precision: `docs/voi.md`.
//!
//! ```
//! use tessera::Device;
//! use tessera::voi::{EvppiOptions, Outcomes, Table, Voi};
//!
//! // Three draws of two strategies' net benefits.
//! let nb = [10.0, 12.0, 11.0, 9.0, 13.0, 14.0];
//! let mut voi = Voi::on(&Device::cpu())?;
//! let evpi = voi.evpi(&Outcomes::NetBenefit(Table::new("nb", &nb[..], 3, 2)?))?;
//! assert!((evpi[0].evpi - 2.0 / 3.0).abs() < 1e-12);
//!
//! // EVPPI of the first of two independent parameters; the incremental benefit is
//! // 0.1 + t1 + t2.
//! let mut state = 1u64;
//! let mut uniform = || {
//!     state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
//!     (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
//! };
//! let n = 2000;
//! let params: Vec<f64> = (0..2 * n).map(|_| uniform()).collect();
//! let nb: Vec<f64> = (0..n).flat_map(|i| [0.0, 0.1 + params[2 * i] + params[2 * i + 1]]).collect();
//! let outcomes = Outcomes::NetBenefit(Table::new("nb", &nb, n, 2)?);
//! let params = Table::new("params", &params, n, 2)?;
//! let evppi = voi.evppi(&outcomes, &params, &[&[0]], &EvppiOptions::default())?;
//! assert!(evppi[0].values[0] > 0.0 && evppi[0].within_bounds());
//! # Ok::<(), tessera::TesseraError>(())
//! ```

mod gp;
mod metamodel;
mod nonparametric;

use rayon::prelude::*;
use tessera_cpu::CpuVoi;
#[cfg(feature = "gpu")]
use tessera_gpu::GpuVoi;
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::rng::Rng;
use tessera_tensor::voi::{FittedLayout, argmax};

pub use metamodel::{DEFAULT_GP_FIT_ROWS, Metamodel};
pub use tessera_tensor::voi::analytic::{self, Discounting, population_factor};
pub use tessera_tensor::voi::{
    Decision, DecisionSums, Gram, MAX_STRATEGIES, Table, Values, VoiBackend,
};

use crate::{Backend, Device};

/// Rows the reference strategy of a reduction is chosen from.
const PILOT_ROWS: usize = 4096;

/// Draws per metamodel term below which EVPPI warns of overfitting.
const DRAWS_PER_TERM: usize = 10;

/// The outcomes of a probabilistic sensitivity analysis.
#[derive(Debug, Clone, Copy)]
pub enum Outcomes<'a> {
    /// Net benefits `[N, D]` (one willingness-to-pay value, already applied).
    NetBenefit(Table<'a>),
    /// Costs and effects `[N, D]`, analysed at every value of a willingness-to-pay
    /// grid (net benefit `k·effect − cost`).
    CostEffect {
        /// Costs per draw and strategy.
        costs: Table<'a>,
        /// Effects per draw and strategy.
        effects: Table<'a>,
        /// Willingness-to-pay values.
        wtp: &'a [f64],
    },
}

impl<'a> Outcomes<'a> {
    fn decision(&self) -> Decision<'a> {
        match *self {
            Outcomes::NetBenefit(t) => Decision::NetBenefit(t),
            Outcomes::CostEffect {
                costs,
                effects,
                wtp,
            } => Decision::CostEffect {
                costs,
                effects,
                wtp,
            },
        }
    }

    /// Draws.
    pub fn rows(&self) -> usize {
        self.decision().rows()
    }

    /// Strategies.
    pub fn strategies(&self) -> usize {
        self.decision().strategies()
    }

    /// Results per call: 1, or the grid's length.
    pub fn grid(&self) -> usize {
        self.decision().combos()
    }

    fn layout(&self) -> FittedLayout<'a> {
        match *self {
            Outcomes::NetBenefit(t) => FittedLayout::NetBenefit {
                strategies: t.cols(),
            },
            Outcomes::CostEffect { costs, wtp, .. } => FittedLayout::CostEffect {
                strategies: costs.cols(),
                wtp,
            },
        }
    }

    /// The regression responses `[N, m]` in the layout's column order (increments
    /// over strategy 0) less a shift per column, and the shifts. The shift is the
    /// mean over a strided pilot of at most `PILOT_ROWS` rows: near enough to the
    /// mean that the cross-products do not cancel, and every estimator is invariant to
    /// it (the bases represent constants, which absorb what the shift leaves), so the
    /// responses take one parallel pass.
    fn responses(&self, y: &mut Vec<f64>) -> Vec<f64> {
        let (n, d) = (self.rows(), self.strategies());
        let m = self.layout().columns();
        // The tables whose increments fill the columns, in order.
        let sources: &[Table<'_>] = match self {
            Outcomes::NetBenefit(t) => &[*t],
            Outcomes::CostEffect { costs, effects, .. } => &[*effects, *costs],
        };
        let increments = |i: usize, out: &mut [f64]| {
            for (t, out) in sources.iter().zip(out.chunks_exact_mut(d - 1)) {
                let first = t.get(i, 0);
                for (j, o) in out.iter_mut().enumerate() {
                    *o = t.get(i, j + 1) - first;
                }
            }
        };
        let step = n.div_ceil(PILOT_ROWS).max(1);
        let mut shift = vec![0.0; m];
        let mut row = vec![0.0; m];
        for i in (0..n).step_by(step) {
            increments(i, &mut row);
            shift.iter_mut().zip(&row).for_each(|(s, v)| *s += v);
        }
        let pilot = n.div_ceil(step) as f64;
        shift.iter_mut().for_each(|s| *s /= pilot);
        // Every element is written below: only growth is zeroed.
        y.resize(n * m, 0.0);
        let rows = metamodel::ROWS_PER_TASK;
        y.par_chunks_mut(rows * m)
            .enumerate()
            .for_each(|(chunk, out)| {
                let start = chunk * rows;
                for (offset, t) in sources.iter().enumerate() {
                    let shift = &shift[offset * (d - 1)..(offset + 1) * (d - 1)];
                    let cols = offset * (d - 1)..(offset + 1) * (d - 1);
                    match t.values() {
                        Values::F64(v) => shifted_increments(v, d, start, out, m, cols, shift),
                        Values::F32(v) => shifted_increments(v, d, start, out, m, cols, shift),
                    }
                }
            });
        shift
    }
}

/// Writes `v[i, j] − v[i, 0] − shift[j − 1]` for `j ≥ 1` (`v` has `d` columns) into
/// columns `cols` of the rows of `out` (`m` columns each), for rows `start..`.
fn shifted_increments<T: Copy + Into<f64>>(
    v: &[T],
    d: usize,
    start: usize,
    out: &mut [f64],
    m: usize,
    cols: std::ops::Range<usize>,
    shift: &[f64],
) {
    let rows = out.len() / m;
    let src = v[start * d..(start + rows) * d].chunks_exact(d);
    for (dst, src) in out.chunks_exact_mut(m).zip(src) {
        let first: f64 = src[0].into();
        let dst = &mut dst[cols.clone()];
        for ((o, &x), s) in dst.iter_mut().zip(&src[1..]).zip(shift) {
            *o = x.into() - first - s;
        }
    }
}

/// The value of perfect information at one willingness-to-pay value, with what the
/// same pass gives: the optimal strategy and the acceptability of each.
#[derive(Debug, Clone, PartialEq)]
pub struct Evpi {
    /// `mean_i max_d NB − max_d mean_i NB`, ≥ 0, per person.
    pub evpi: f64,
    /// The strategy with the largest expected net benefit (lowest index on ties).
    pub best: usize,
    /// Each strategy's expected net benefit minus the best's (≤ 0).
    pub mean_vs_best: Vec<f64>,
    /// The probability that each strategy is optimal (the acceptability curve's
    /// points).
    pub probability_optimal: Vec<f64>,
}

impl From<&DecisionSums> for Evpi {
    fn from(s: &DecisionSums) -> Self {
        let best = s.best();
        let mean = s.mean_inc();
        Self {
            evpi: s.value_of_information(),
            best,
            mean_vs_best: mean.iter().map(|m| m - mean[best]).collect(),
            probability_optimal: s.probability_optimal(),
        }
    }
}

/// The cost-effectiveness acceptability curve and frontier over a grid, from
/// [`Voi::evpi`]'s results.
pub fn acceptability_frontier(points: &[Evpi]) -> Vec<(usize, f64)> {
    points
        .iter()
        .map(|p| (p.best, p.probability_optimal[p.best]))
        .collect()
}

/// What EVPPI and EVSI are computed with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvppiOptions {
    /// The regression metamodel.
    pub metamodel: Metamodel,
    /// Draws from the metamodel's posterior for standard errors (0: none). All
    /// draws run in one batched reduction.
    pub posterior_draws: usize,
    /// Seed of the posterior draws.
    pub seed: u64,
}

impl Default for EvppiOptions {
    fn default() -> Self {
        Self {
            metamodel: Metamodel::Auto,
            posterior_draws: 0,
            seed: 0x766f_6900,
        }
    }
}

/// Something about an EVPPI result its user should know.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiWarning {
    /// EVPPI came out above EVPI at grid value `index` (impossible in exact
    /// arithmetic: a sign of an overfitted metamodel or too few draws).
    ExceedsEvpi {
        /// Grid index.
        index: usize,
        /// The EVPPI estimate.
        evppi: f64,
        /// The EVPI.
        evpi: f64,
    },
    /// The metamodel has fewer than 10 draws per term: its fitted values follow the
    /// noise and EVPPI is biased upward.
    ManyTerms {
        /// Metamodel terms.
        terms: usize,
        /// Draws.
        draws: usize,
    },
}

/// EVPPI of one parameter group (or EVSI of one study) over the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Evppi {
    /// The group's parameter columns.
    pub group: Vec<usize>,
    /// The metamodel used (`Auto` resolved).
    pub metamodel: Metamodel,
    /// Terms of the metamodel (0 for the single-parameter estimators; for the
    /// Gaussian process, its mean's `g + 1`).
    pub terms: usize,
    /// Effective degrees of freedom of the fit of each response column (the
    /// layout's increments over strategy 0; empty for Strong-Oakley).
    pub effective_df: Vec<f64>,
    /// EVPPI per grid value, per person.
    pub values: Vec<f64>,
    /// EVPI per grid value, the upper bound.
    pub evpi: Vec<f64>,
    /// Standard errors from the metamodel's posterior, when draws were asked for.
    pub standard_errors: Option<Vec<f64>>,
    /// Warnings about the estimate.
    pub warnings: Vec<VoiWarning>,
}

impl Evppi {
    /// Whether `0 ≤ EVPPI ≤ EVPI` at every grid value.
    pub fn within_bounds(&self) -> bool {
        !self
            .warnings
            .iter()
            .any(|w| matches!(w, VoiWarning::ExceedsEvpi { .. }))
    }
}

/// Expected net benefit of sampling over candidate sample sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Enbs {
    /// `population · EVSI(n) − cost(n)` per sample size.
    pub values: Vec<f64>,
    /// Index of the largest.
    pub optimal: usize,
}

/// ENBS from per-person EVSI at each sample size, a population factor
/// ([`population_factor`]) and the study's cost at each size.
pub fn enbs(evsi: &[f64], population: f64, costs: &[f64]) -> Result<Enbs> {
    if evsi.is_empty() || evsi.len() != costs.len() {
        return Err(TesseraError::ShapeMismatch {
            what: "study costs (one per sample size)",
            got: costs.len(),
            expected: evsi.len().max(1),
        });
    }
    if !(population.is_finite() && population >= 0.0) {
        return Err(TesseraError::InvalidArgument {
            what: "population factor",
            value: population,
            expected: "a finite value >= 0",
        });
    }
    if let Some(i) = evsi.iter().chain(costs).position(|v| !v.is_finite()) {
        return Err(TesseraError::NonFinite {
            what: "EVSI or study costs",
            index: i,
            value: f32::NAN,
        });
    }
    let values: Vec<f64> = evsi
        .iter()
        .zip(costs)
        .map(|(e, c)| population * e - c)
        .collect();
    let optimal = argmax(&values);
    Ok(Enbs { values, optimal })
}

/// One group's estimate before its checks.
struct Estimate {
    values: Vec<f64>,
    terms: usize,
    effective_df: Vec<f64>,
    standard_errors: Option<Vec<f64>>,
}

impl Estimate {
    /// An estimate with no metamodel terms and no standard errors.
    fn nonparametric(values: Vec<f64>) -> Self {
        Self {
            values,
            terms: 0,
            effective_df: Vec::new(),
            standard_errors: None,
        }
    }
}

// One per analysis: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Cpu(CpuVoi),
    #[cfg(feature = "gpu")]
    Gpu(GpuVoi),
}

/// The value-of-information estimators on one device: reductions over the draws on
/// the device, the small solves in f64 on the host.
///
/// A `Voi` keeps its two largest host buffers (the regression responses and the
/// design, `N` rows each) between calls, so repeated analyses reuse memory instead of
/// faulting in fresh pages; dropping it frees them.
pub struct Voi {
    inner: Inner,
    /// The responses of the last EVPPI call, for reuse.
    responses: Vec<f64>,
    /// The design the backend handed back, for reuse.
    design: Vec<f64>,
}

impl std::fmt::Debug for Voi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voi")
            .field("backend", &self.backend())
            .finish()
    }
}

/// The reference strategy of each reduction: the best in expectation over a strided
/// subsample, so an f32 backend sums increments near the optimum, not raw values.
fn pilot_reference(decision: &Decision<'_>) -> Vec<u32> {
    let (n, d) = (decision.rows(), decision.strategies());
    let step = n.div_ceil(PILOT_ROWS).max(1);
    let column_sums = |table: &Table<'_>| {
        let mut sums = vec![0.0; d];
        for i in (0..n).step_by(step) {
            sums.iter_mut()
                .enumerate()
                .for_each(|(j, s)| *s += table.get(i, j));
        }
        sums
    };
    match decision {
        Decision::NetBenefit(table) => vec![argmax(&column_sums(table)) as u32],
        // Mean net benefits are linear in k: one pass over the rows serves the grid.
        Decision::CostEffect {
            costs,
            effects,
            wtp,
        } => {
            let (c, e) = (column_sums(costs), column_sums(effects));
            wtp.iter()
                .map(|&k| {
                    let mean: Vec<f64> = e.iter().zip(&c).map(|(e, c)| k * e - c).collect();
                    argmax(&mean) as u32
                })
                .collect()
        }
    }
}

/// Checks a parameter group against a table of `cols` parameters.
fn check_group(group: &[usize], cols: usize) -> Result<()> {
    if group.is_empty() {
        return Err(TesseraError::InvalidArgument {
            what: "parameter group size",
            value: 0.0,
            expected: "at least one parameter",
        });
    }
    for (i, &c) in group.iter().enumerate() {
        if c >= cols {
            return Err(TesseraError::IndexOutOfRange {
                what: "parameter column of a group",
                index: c,
                bound: cols,
            });
        }
        if group[..i].contains(&c) {
            return Err(TesseraError::InvalidArgument {
                what: "parameter group (a column named twice)",
                value: c as f64,
                expected: "distinct columns",
            });
        }
    }
    Ok(())
}

impl Voi {
    /// The estimators on `device`.
    pub fn on(device: &Device) -> Result<Self> {
        let inner = match device {
            Device::Cpu(cpu) if cpu.is_scalar() => Inner::Cpu(CpuVoi::scalar()),
            Device::Cpu(_) => Inner::Cpu(CpuVoi::new()),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuVoi::new(ctx)?),
        };
        Ok(Self {
            inner,
            responses: Vec::new(),
            design: Vec::new(),
        })
    }

    /// The backend the estimators run on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => Backend::Gpu,
        }
    }

    /// The reductions' backend, for callers that combine the sums themselves.
    pub fn backend_mut(&mut self) -> &mut dyn VoiBackend {
        match &mut self.inner {
            Inner::Cpu(b) => b,
            #[cfg(feature = "gpu")]
            Inner::Gpu(b) => b,
        }
    }

    /// EVPI at every grid value (one value for net benefits), with the optimal
    /// strategy and the acceptability of each, in one pass over the draws.
    pub fn evpi(&mut self, outcomes: &Outcomes<'_>) -> Result<Vec<Evpi>> {
        let decision = outcomes.decision();
        tessera_tensor::voi::validate_decision(&decision, &vec![0; decision.combos()])?;
        let reference = pilot_reference(&decision);
        let _span =
            tracing::info_span!("evpi", rows = decision.rows(), grid = decision.combos()).entered();
        let sums = self.backend_mut().decision_sums(&decision, &reference)?;
        Ok(sums.iter().map(Evpi::from).collect())
    }

    /// Structural EVPI over model structures `s` with weights `p_s` (summing to 1):
    /// `Σ p_s E[max_d NB | s] − max_d Σ p_s E[NB_d | s]`. Every table has the same
    /// strategies.
    pub fn structural_evpi(&mut self, structures: &[(f64, Table<'_>)]) -> Result<f64> {
        let Some((_, first)) = structures.first() else {
            return Err(TesseraError::InvalidArgument {
                what: "model structures",
                value: 0.0,
                expected: "at least one structure",
            });
        };
        let d = first.cols();
        let total: f64 = structures.iter().map(|(w, _)| w).sum();
        if structures
            .iter()
            .any(|(w, _)| !(w.is_finite() && *w >= 0.0))
            || (total - 1.0).abs() > 1e-9
        {
            return Err(TesseraError::InvalidArgument {
                what: "structure weights",
                value: total,
                expected: "finite weights >= 0 summing to 1",
            });
        }
        let mut expected_max = 0.0;
        let mut expected = vec![0.0; d];
        for (w, t) in structures {
            if t.cols() != d {
                return Err(TesseraError::ShapeMismatch {
                    what: "strategies of a structure's table",
                    got: t.cols(),
                    expected: d,
                });
            }
            let decision = Decision::NetBenefit(*t);
            tessera_tensor::voi::validate_decision(&decision, &[0])?;
            let reference = pilot_reference(&decision);
            let s = &self.backend_mut().decision_sums(&decision, &reference)?[0];
            // The reference's own mean, in f64 on the host, anchors the increments.
            let r = s.reference;
            let anchor = (0..t.rows()).map(|i| t.get(i, r)).sum::<f64>() / t.rows() as f64;
            let n = s.rows as f64;
            expected_max += w * (anchor + s.sum_max / n);
            for (e, inc) in expected.iter_mut().zip(&s.sum_inc) {
                *e += w * (anchor + inc / n);
            }
        }
        let best = expected.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        Ok((expected_max - best).max(0.0))
    }

    /// EVPPI of each parameter group (columns of `params`, one row per draw) at
    /// every grid value. See [`EvppiOptions`] and `docs/voi.md`.
    pub fn evppi(
        &mut self,
        outcomes: &Outcomes<'_>,
        params: &Table<'_>,
        groups: &[&[usize]],
        options: &EvppiOptions,
    ) -> Result<Vec<Evppi>> {
        if params.rows() != outcomes.rows() {
            return Err(TesseraError::ShapeMismatch {
                what: "parameter rows (one per draw)",
                got: params.rows(),
                expected: outcomes.rows(),
            });
        }
        for group in groups {
            check_group(group, params.cols())?;
            if options.metamodel.single_parameter() && group.len() != 1 {
                return Err(TesseraError::InvalidConfig {
                    field: "metamodel",
                    value: format!("{:?} for {} parameters", options.metamodel, group.len()),
                    expected: "one parameter per group (use Gam or Polynomial)".into(),
                });
            }
        }
        match options.metamodel {
            Metamodel::StrongOakley { blocks }
                if blocks.is_some_and(|b| b == 0 || b > params.rows()) =>
            {
                return Err(TesseraError::InvalidConfig {
                    field: "Strong-Oakley blocks",
                    value: format!("{blocks:?}"),
                    expected: format!("1..={} (the draws)", params.rows()),
                });
            }
            Metamodel::GaussianProcess { fit_rows }
                if !(10..=gp::MAX_FIT_ROWS).contains(&fit_rows) =>
            {
                return Err(TesseraError::InvalidConfig {
                    field: "Gaussian-process fit rows",
                    value: fit_rows.to_string(),
                    expected: format!("10..={} draws", gp::MAX_FIT_ROWS),
                });
            }
            Metamodel::Sadatsafavi { separators }
                if separators == 0 || separators > nonparametric::MAX_SEPARATORS =>
            {
                return Err(TesseraError::InvalidConfig {
                    field: "Sadatsafavi separators",
                    value: separators.to_string(),
                    expected: format!(
                        "1..={} per pair of strategies",
                        nonparametric::MAX_SEPARATORS
                    ),
                });
            }
            _ => {}
        }
        if options.posterior_draws > 4096 {
            return Err(TesseraError::InvalidConfig {
                field: "posterior draws",
                value: options.posterior_draws.to_string(),
                expected: "0..=4096".into(),
            });
        }
        let evpi: Vec<f64> = self.evpi(outcomes)?.iter().map(|e| e.evpi).collect();
        let mut y = std::mem::take(&mut self.responses);
        let y_shift = outcomes.responses(&mut y);
        let layout = outcomes.layout();
        let m = layout.columns();
        let n = outcomes.rows();
        let yt = Table::new("responses", &y, n, m)?;
        let results = groups
            .iter()
            .map(|group| {
                let _span = tracing::info_span!("evppi", params = group.len()).entered();
                let metamodel = options.metamodel.resolve(group.len());
                let Estimate {
                    values,
                    terms,
                    effective_df,
                    standard_errors,
                } = match metamodel {
                    Metamodel::StrongOakley { blocks } => {
                        Estimate::nonparametric(nonparametric::strong_oakley(
                            &layout, &y, &y_shift, params, group[0], blocks,
                        ))
                    }
                    Metamodel::Sadatsafavi { separators } => {
                        Estimate::nonparametric(nonparametric::sadatsafavi(
                            &layout, &y, &y_shift, params, group[0], separators,
                        ))
                    }
                    Metamodel::GaussianProcess { fit_rows } => {
                        // The host's kernels at the CPU device's own level (scalar
                        // when asked); beside a GPU, at the widest level.
                        #[cfg(feature = "gpu")]
                        let widest;
                        let host = match &self.inner {
                            Inner::Cpu(cpu) => cpu,
                            #[cfg(feature = "gpu")]
                            Inner::Gpu(_) => {
                                widest = CpuVoi::new();
                                &widest
                            }
                        };
                        let fitted = gp::fitted(host, params, group, &y, m, fit_rows)?;
                        Estimate {
                            terms: group.len() + 1,
                            ..Estimate::nonparametric(
                                self.evppi_of_fitted(outcomes, &fitted, &y_shift)?,
                            )
                        }
                    }
                    _ => self.regression_evppi(
                        outcomes, &yt, &y_shift, params, group, metamodel, options,
                    )?,
                };
                let mut warnings = Vec::new();
                if terms > 0 && n < DRAWS_PER_TERM * terms {
                    warnings.push(VoiWarning::ManyTerms { terms, draws: n });
                }
                for (index, (&v, &e)) in values.iter().zip(&evpi).enumerate() {
                    if v > e + 1e-6 * e.abs().max(1e-12) {
                        warnings.push(VoiWarning::ExceedsEvpi {
                            index,
                            evppi: v,
                            evpi: e,
                        });
                    }
                }
                Ok(Evppi {
                    group: group.to_vec(),
                    metamodel,
                    terms,
                    effective_df,
                    values,
                    evpi: evpi.clone(),
                    standard_errors,
                    warnings,
                })
            })
            .collect();
        self.responses = y;
        results
    }

    /// EVSI by the regression method (Strong et al. 2015): each study is a table of
    /// summary statistics of its simulated data, one row per draw, regressed on as
    /// EVPPI regresses on parameters.
    pub fn evsi(
        &mut self,
        outcomes: &Outcomes<'_>,
        studies: &[Table<'_>],
        options: &EvppiOptions,
    ) -> Result<Vec<Evppi>> {
        studies
            .iter()
            .map(|s| {
                let group: Vec<usize> = (0..s.cols()).collect();
                let mut r = self.evppi(outcomes, s, &[&group], options)?;
                Ok(r.remove(0))
            })
            .collect()
    }

    /// EVPPI from fitted responses `[N, m]` (less `shift`) computed on the host: the
    /// EVPI of the fitted outcomes, on the device.
    fn evppi_of_fitted(
        &mut self,
        outcomes: &Outcomes<'_>,
        fitted: &[f64],
        shift: &[f64],
    ) -> Result<Vec<f64>> {
        let (n, d) = (outcomes.rows(), outcomes.strategies());
        // Increments over strategy 0 in columns 1.. of a table; column 0 stays 0.
        let table = |offset: usize| -> Vec<f64> {
            let m = fitted.len() / n.max(1);
            let mut t = vec![0.0; n * d];
            for (row, f) in t.chunks_exact_mut(d).zip(fitted.chunks_exact(m)) {
                let f = &f[offset..offset + d - 1];
                let s = &shift[offset..offset + d - 1];
                for ((o, f), s) in row[1..].iter_mut().zip(f).zip(s) {
                    *o = f + s;
                }
            }
            t
        };
        let results = match outcomes {
            Outcomes::NetBenefit(_) => {
                let nb = table(0);
                self.evpi(&Outcomes::NetBenefit(Table::new("fitted", &nb, n, d)?))?
            }
            Outcomes::CostEffect { wtp, .. } => {
                let (e, c) = (table(0), table(d - 1));
                self.evpi(&Outcomes::CostEffect {
                    costs: Table::new("fitted costs", &c, n, d)?,
                    effects: Table::new("fitted effects", &e, n, d)?,
                    wtp,
                })?
            }
        };
        Ok(results.iter().map(|r| r.evpi).collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn regression_evppi(
        &mut self,
        outcomes: &Outcomes<'_>,
        y: &Table<'_>,
        y_shift: &[f64],
        params: &Table<'_>,
        group: &[usize],
        metamodel: Metamodel,
        options: &EvppiOptions,
    ) -> Result<Estimate> {
        let n = outcomes.rows();
        let buffer = std::mem::take(&mut self.design);
        let mut basis = metamodel::basis(metamodel, params, group, buffer)?;
        let p = basis.p;
        if p > n {
            return Err(TesseraError::InvalidArgument {
                what: "metamodel terms (more than draws)",
                value: p as f64,
                expected: "at most one term per draw",
            });
        }
        let x = std::mem::take(&mut basis.x);
        let gram = self.backend_mut().load_design(x, p, y)?;
        let fit = metamodel::fit(&gram, &basis, y_shift);
        let layout = outcomes.layout();
        let (m, grid) = (layout.columns(), layout.grid());
        // Set 0 is the fit; sets 1.. are posterior draws.
        let sets = 1 + options.posterior_draws;
        let mut coefs = Vec::with_capacity(sets * p * m);
        coefs.extend_from_slice(&fit.coefs);
        let mut rng = Rng::new(options.seed);
        for _ in 1..sets {
            let mut draw = fit.coefs.clone();
            for (k, factor) in fit.posterior_factor.iter().enumerate() {
                let z: Vec<f64> = (0..p).map(|_| rng.normal() as f64).collect();
                for j in 0..p {
                    let shift: f64 = (0..p).map(|c| factor[(j, c)] * z[c]).sum();
                    draw[j * m + k] += shift;
                }
            }
            coefs.extend_from_slice(&draw);
        }
        // The exact mean fitted value picks each reduction's reference strategy.
        let reference: Vec<u32> = (0..sets)
            .flat_map(|s| {
                let beta = &coefs[s * p * m..(s + 1) * p * m];
                let mean: Vec<f64> = (0..m)
                    .map(|c| (0..p).map(|j| basis.col_mean[j] * beta[j * m + c]).sum())
                    .collect();
                (0..grid)
                    .map(|k| {
                        let nb: Vec<f64> = (0..layout.strategies())
                            .map(|d| layout.net_benefit(&mean, d, k))
                            .collect();
                        argmax(&nb) as u32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let sums = self
            .backend_mut()
            .fitted_decision_sums(&coefs, sets, &layout, &reference);
        if let Some(x) = self.backend_mut().release_design() {
            self.design = x;
        }
        let sums = sums?;
        let values: Vec<f64> = sums[..grid]
            .iter()
            .map(DecisionSums::value_of_information)
            .collect();
        let se = (sets > 2).then(|| {
            (0..grid)
                .map(|k| {
                    let draws: Vec<f64> = (1..sets)
                        .map(|s| sums[s * grid + k].value_of_information())
                        .collect();
                    let mean = draws.iter().sum::<f64>() / draws.len() as f64;
                    let var = draws.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / (draws.len() - 1) as f64;
                    var.sqrt()
                })
                .collect()
        });
        Ok(Estimate {
            values,
            terms: p,
            effective_df: fit.edf,
            standard_errors: se,
        })
    }
}
