//! The reductions every value-of-information backend implements, and their inputs.

use crate::error::{Result, TesseraError};

/// Most strategies (decision options) a table may have.
pub const MAX_STRATEGIES: usize = 32;

/// Most columns a regression design `[X | Y]` may have.
pub const MAX_DESIGN_COLUMNS: usize = 1024;

/// Values of a table, in f64 or f32 (both accepted; the CPU computes in f64 either way,
/// the GPU in f32).
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    /// Double precision.
    F64(&'a [f64]),
    /// Single precision.
    F32(&'a [f32]),
}

impl Values<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Values::F64(v) => v.len(),
            Values::F32(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64.
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Values::F64(v) => v[i],
            Values::F32(v) => v[i] as f64,
        }
    }

    /// The first NaN or infinity, if any, and the largest magnitude, in one pass that
    /// vectorises at any instruction set: each magnitude, or infinity for a NaN or an
    /// infinity, into eight running maxima (selects, not `f64::max`, whose NaN rule
    /// does not vectorise); the index is looked for only on failure.
    fn scan(&self) -> (Option<(usize, f64)>, f64) {
        fn largest<T: Copy + Into<f64>>(v: &[T]) -> f64 {
            let flagged = |x: T| {
                let a = x.into().abs();
                if a <= f64::MAX { a } else { f64::INFINITY }
            };
            let mut max = [0.0f64; 8];
            let lanes = v.chunks_exact(8);
            let tail = lanes.remainder();
            for c in lanes {
                for (m, &x) in max.iter_mut().zip(c) {
                    let a = flagged(x);
                    *m = if a > *m { a } else { *m };
                }
            }
            tail.iter()
                .map(|&x| flagged(x))
                .chain(max)
                .fold(0.0, |m, a| if a > m { a } else { m })
        }
        let max_abs = match self {
            Values::F64(v) => largest(v),
            Values::F32(v) => largest(v),
        };
        if max_abs.is_finite() {
            return (None, max_abs);
        }
        let found = match self {
            Values::F64(v) => v.iter().position(|x| !x.is_finite()),
            Values::F32(v) => v.iter().position(|x| !x.is_finite()),
        };
        (found.map(|i| (i, self.get(i))), f64::INFINITY)
    }
}

impl<'a> From<&'a [f64]> for Values<'a> {
    fn from(v: &'a [f64]) -> Self {
        Values::F64(v)
    }
}

impl<'a> From<&'a [f32]> for Values<'a> {
    fn from(v: &'a [f32]) -> Self {
        Values::F32(v)
    }
}

impl<'a> From<&'a Vec<f64>> for Values<'a> {
    fn from(v: &'a Vec<f64>) -> Self {
        Values::F64(v)
    }
}

impl<'a> From<&'a Vec<f32>> for Values<'a> {
    fn from(v: &'a Vec<f32>) -> Self {
        Values::F32(v)
    }
}

/// A row-major table of finite values: `rows` draws by `cols` columns. Built only
/// through [`Table::new`], which checks the shape and that every value is finite.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    values: Values<'a>,
    rows: usize,
    cols: usize,
    /// Largest magnitude, found by the finite check.
    max_abs: f64,
}

impl<'a> Table<'a> {
    /// A `rows × cols` table over `values`; fails on a length that is not
    /// `rows · cols` or on a NaN or infinity (naming the element as `what`).
    pub fn new(
        what: &'static str,
        values: impl Into<Values<'a>>,
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        let values = values.into();
        let expected = rows
            .checked_mul(cols)
            .ok_or(TesseraError::InvalidArgument {
                what: "rows x columns",
                value: rows as f64 * cols as f64,
                expected: "a table that fits in memory",
            })?;
        if values.len() != expected {
            return Err(TesseraError::ShapeMismatch {
                what,
                got: values.len(),
                expected,
            });
        }
        let (non_finite, max_abs) = values.scan();
        if let Some((index, value)) = non_finite {
            return Err(TesseraError::NonFinite {
                what,
                index,
                value: value as f32,
            });
        }
        Ok(Self {
            values,
            rows,
            cols,
            max_abs,
        })
    }

    /// Number of rows (draws).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn values(&self) -> Values<'a> {
        self.values
    }

    /// Element `(row, col)` as f64.
    #[inline]
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.values.get(row * self.cols + col)
    }

    /// Largest absolute value (0 for an empty table), found when the table was built.
    pub fn max_abs(&self) -> f64 {
        self.max_abs
    }
}

/// What a decision reduction runs over.
#[derive(Debug, Clone, Copy)]
pub enum Decision<'a> {
    /// A net-benefit table `[N, D]`: one reduction.
    NetBenefit(Table<'a>),
    /// Costs and effects `[N, D]` and a willingness-to-pay grid: net benefit
    /// `k·effect − cost` at each `k`, one reduction per grid value, without
    /// materialising the net-benefit tables.
    CostEffect {
        /// Costs per draw and strategy.
        costs: Table<'a>,
        /// Effects per draw and strategy.
        effects: Table<'a>,
        /// Willingness-to-pay values.
        wtp: &'a [f64],
    },
}

impl Decision<'_> {
    /// Draws (rows).
    pub fn rows(&self) -> usize {
        match self {
            Decision::NetBenefit(t) => t.rows(),
            Decision::CostEffect { costs, .. } => costs.rows(),
        }
    }

    /// Strategies (columns).
    pub fn strategies(&self) -> usize {
        match self {
            Decision::NetBenefit(t) => t.cols(),
            Decision::CostEffect { costs, .. } => costs.cols(),
        }
    }

    /// Number of reductions: 1, or the grid's length.
    pub fn combos(&self) -> usize {
        match self {
            Decision::NetBenefit(_) => 1,
            Decision::CostEffect { wtp, .. } => wtp.len(),
        }
    }

    /// Net benefit of strategy `d` in row `i` at reduction `combo`.
    #[inline]
    pub fn net_benefit(&self, i: usize, d: usize, combo: usize) -> f64 {
        match self {
            Decision::NetBenefit(t) => t.get(i, d),
            Decision::CostEffect {
                costs,
                effects,
                wtp,
            } => wtp[combo] * effects.get(i, d) - costs.get(i, d),
        }
    }
}

/// The sums of one decision reduction over N rows, against a reference strategy `r`:
/// with `inc_d = NB_d − NB_r` per row,
/// `sum_max = Σ_i max_d inc_d`, `sum_inc[d] = Σ_i inc_d` and `optimal[d]` = the rows
/// where `d` has the largest net benefit (the lowest index on ties).
///
/// Choosing `r` near the best strategy keeps the sums small where the net benefits
/// are large, so a backend in f32 does not cancel.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionSums {
    /// Rows reduced.
    pub rows: u64,
    /// The reference strategy.
    pub reference: usize,
    /// `Σ_i max_d inc_d` (each term ≥ 0).
    pub sum_max: f64,
    /// `Σ_i inc_d` per strategy (0 for the reference).
    pub sum_inc: Vec<f64>,
    /// Rows in which each strategy is optimal.
    pub optimal: Vec<u64>,
}

impl DecisionSums {
    /// Empty sums for `strategies` strategies against `reference`.
    pub fn zero(strategies: usize, reference: usize) -> Self {
        Self {
            rows: 0,
            reference,
            sum_max: 0.0,
            sum_inc: vec![0.0; strategies],
            optimal: vec![0; strategies],
        }
    }

    /// Adds another partial of the same reduction.
    pub fn merge(&mut self, other: &Self) {
        self.rows += other.rows;
        self.sum_max += other.sum_max;
        self.sum_inc
            .iter_mut()
            .zip(&other.sum_inc)
            .for_each(|(a, b)| *a += b);
        self.optimal
            .iter_mut()
            .zip(&other.optimal)
            .for_each(|(a, b)| *a += b);
    }

    /// The mean incremental net benefit of each strategy against the reference.
    pub fn mean_inc(&self) -> Vec<f64> {
        let n = self.rows.max(1) as f64;
        self.sum_inc.iter().map(|s| s / n).collect()
    }

    /// The strategy with the largest expected net benefit (lowest index on ties).
    pub fn best(&self) -> usize {
        argmax(&self.sum_inc)
    }

    /// `mean_i max_d NB − max_d mean_i NB`, clamped at 0.
    pub fn value_of_information(&self) -> f64 {
        let n = self.rows.max(1) as f64;
        let best_mean = self
            .sum_inc
            .iter()
            .fold(f64::NEG_INFINITY, |m, &s| m.max(s))
            / n;
        (self.sum_max / n - best_mean).max(0.0)
    }

    /// The probability that each strategy is optimal.
    pub fn probability_optimal(&self) -> Vec<f64> {
        let n = self.rows.max(1) as f64;
        self.optimal.iter().map(|&c| c as f64 / n).collect()
    }
}

/// Index of the largest value, the lowest on ties (0 for an empty slice).
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// The cross-products of a regression design `Z = [X | Y]` (`X` is `[N, p]`, `Y` is
/// `[N, m]`): `ZᵀZ`, `q × q` with `q = p + m`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Gram {
    /// Columns of `X`.
    pub p: usize,
    /// Columns of `Y`.
    pub m: usize,
    /// Rows reduced.
    pub rows: usize,
    /// `ZᵀZ`, row-major.
    pub ztz: Vec<f64>,
}

impl Gram {
    /// `(ZᵀZ)[i, j]`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.ztz[i * (self.p + self.m) + j]
    }

    /// `XᵀX`, `p × p` row-major.
    pub fn xtx(&self) -> Vec<f64> {
        (0..self.p)
            .flat_map(|i| (0..self.p).map(move |j| (i, j)))
            .map(|(i, j)| self.at(i, j))
            .collect()
    }

    /// Column `k` of `XᵀY` (length `p`).
    pub fn xty(&self, k: usize) -> Vec<f64> {
        (0..self.p).map(|i| self.at(i, self.p + k)).collect()
    }

    /// `(YᵀY)[k, k]`.
    pub fn yty(&self, k: usize) -> f64 {
        self.at(self.p + k, self.p + k)
    }
}

/// How the columns of a metamodel's coefficients map to strategies' fitted net
/// benefits. Strategy 0's fitted incremental net benefit is 0 (the columns are
/// increments over strategy 0).
#[derive(Debug, Clone, Copy)]
pub enum FittedLayout<'a> {
    /// `m = D − 1` columns: the fitted `NB_d − NB_0`, `d = 1..D`. One reduction per
    /// coefficient set.
    NetBenefit {
        /// Strategies `D`.
        strategies: usize,
    },
    /// `m = 2(D − 1)` columns: fitted incremental effects of `d = 1..D`, then fitted
    /// incremental costs; the net benefit at `k` is `k·effect − cost`. One reduction
    /// per (coefficient set, grid value), set-major.
    CostEffect {
        /// Strategies `D`.
        strategies: usize,
        /// Willingness-to-pay values.
        wtp: &'a [f64],
    },
}

impl FittedLayout<'_> {
    /// Strategies `D`.
    pub fn strategies(&self) -> usize {
        match *self {
            FittedLayout::NetBenefit { strategies } => strategies,
            FittedLayout::CostEffect { strategies, .. } => strategies,
        }
    }

    /// Coefficient columns `m`.
    pub fn columns(&self) -> usize {
        match *self {
            FittedLayout::NetBenefit { strategies } => strategies.saturating_sub(1),
            FittedLayout::CostEffect { strategies, .. } => 2 * strategies.saturating_sub(1),
        }
    }

    /// Grid values per coefficient set (1 for net benefits).
    pub fn grid(&self) -> usize {
        match self {
            FittedLayout::NetBenefit { .. } => 1,
            FittedLayout::CostEffect { wtp, .. } => wtp.len(),
        }
    }

    /// The fitted net benefit of strategy `d` at grid value `k` from the fitted
    /// columns `f` of one row (`f.len() == columns()`).
    #[inline]
    pub fn net_benefit(&self, f: &[f64], d: usize, k: usize) -> f64 {
        if d == 0 {
            return 0.0;
        }
        match *self {
            FittedLayout::NetBenefit { .. } => f[d - 1],
            FittedLayout::CostEffect { strategies, wtp } => {
                wtp[k] * f[d - 1] - f[strategies - 1 + d - 1]
            }
        }
    }
}

/// A backend of the value-of-information reductions. Every method fails, with
/// nothing changed, on inputs [`validate_decision`], [`validate_design`] or
/// [`validate_fitted`] refuse.
pub trait VoiBackend {
    /// The decision sums of `decision`, one per reduction (1, or one per grid value),
    /// each against `reference[combo]`.
    fn decision_sums(
        &mut self,
        decision: &Decision<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>>;

    /// Makes `x` (`rows × p`, column-major: each of the `p` columns contiguous, finite)
    /// the resident design and returns the cross-products of `[X | Y]`.
    fn load_design(&mut self, x: Vec<f64>, p: usize, y: &Table<'_>) -> Result<Gram>;

    /// The decision sums of the fitted values `X·β_s` of the resident design, for
    /// `sets` coefficient sets `coefs` (`[sets, p, m]`, row-major), one reduction per
    /// (set, grid value), set-major, each against `reference[combo]`.
    fn fitted_decision_sums(
        &mut self,
        coefs: &[f64],
        sets: usize,
        layout: &FittedLayout<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>>;

    /// Drops the resident design and hands back the host buffer it was loaded from,
    /// when the backend kept it, so a caller can fill it with the next design instead
    /// of faulting in fresh memory. After it, a fitted reduction needs a new design.
    fn release_design(&mut self) -> Option<Vec<f64>> {
        None
    }
}

fn check_strategies(strategies: usize) -> Result<()> {
    if !(2..=MAX_STRATEGIES).contains(&strategies) {
        return Err(TesseraError::InvalidArgument {
            what: "strategies",
            value: strategies as f64,
            expected: "2..=32 strategies (columns)",
        });
    }
    Ok(())
}

fn check_grid(wtp: &[f64]) -> Result<()> {
    if wtp.is_empty() || wtp.len() > u16::MAX as usize {
        return Err(TesseraError::InvalidArgument {
            what: "willingness-to-pay grid length",
            value: wtp.len() as f64,
            expected: "1..=65535 values",
        });
    }
    if let Some(index) = wtp.iter().position(|k| !k.is_finite()) {
        return Err(TesseraError::NonFinite {
            what: "willingness-to-pay grid",
            index,
            value: wtp[index] as f32,
        });
    }
    Ok(())
}

/// Checks a reference per reduction, each a strategy index.
pub fn check_reference(reference: &[u32], combos: usize, strategies: usize) -> Result<()> {
    if reference.len() != combos {
        return Err(TesseraError::ShapeMismatch {
            what: "reference strategies",
            got: reference.len(),
            expected: combos,
        });
    }
    if let Some(&r) = reference.iter().find(|&&r| r as usize >= strategies) {
        return Err(TesseraError::IndexOutOfRange {
            what: "reference strategy",
            index: r as usize,
            bound: strategies,
        });
    }
    Ok(())
}

/// Checks a decision reduction: at least one row, 2 to [`MAX_STRATEGIES`]
/// strategies, costs and effects of one shape, a finite grid, a valid reference per
/// reduction.
pub fn validate_decision(decision: &Decision<'_>, reference: &[u32]) -> Result<()> {
    if decision.rows() == 0 {
        return Err(TesseraError::InvalidArgument {
            what: "draws (rows)",
            value: 0.0,
            expected: "at least one draw",
        });
    }
    check_strategies(decision.strategies())?;
    if let Decision::CostEffect {
        costs,
        effects,
        wtp,
    } = decision
    {
        if effects.rows() != costs.rows() || effects.cols() != costs.cols() {
            return Err(TesseraError::ShapeMismatch {
                what: "effects (must have the costs' shape)",
                got: effects.rows() * effects.cols(),
                expected: costs.rows() * costs.cols(),
            });
        }
        check_grid(wtp)?;
    }
    let largest = match decision {
        Decision::NetBenefit(t) => t.max_abs(),
        Decision::CostEffect {
            costs,
            effects,
            wtp,
        } => largest_abs(wtp) * effects.max_abs() + costs.max_abs(),
    };
    check_sums_stay_finite("largest |net benefit|", largest, decision.rows())?;
    check_reference(reference, decision.combos(), decision.strategies())
}

fn largest_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Refuses per-row magnitudes whose increments summed over `rows` could overflow f64
/// (a silent infinity or NaN otherwise).
fn check_sums_stay_finite(what: &'static str, per_row: f64, rows: usize) -> Result<()> {
    let limit = f64::MAX / (2.0 * rows.max(1) as f64);
    if per_row <= limit {
        return Ok(());
    }
    Err(TesseraError::InvalidArgument {
        what,
        value: per_row,
        expected: "below f64::MAX / (2 draws), so that sums over the draws stay finite",
    })
}

/// What a backend keeps of a validated design for the checks of fitted reductions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DesignShape {
    /// Rows (draws).
    pub rows: usize,
    /// Columns of `X`.
    pub p: usize,
    /// Largest magnitude in `X`.
    pub max_abs: f64,
}

/// Checks a design: `x` holds `y.rows() × p` finite values (column-major), `p ≥ 1`, at least one row,
/// and `p + m` within [`MAX_DESIGN_COLUMNS`].
pub fn validate_design(x: &[f64], p: usize, y: &Table<'_>) -> Result<DesignShape> {
    if y.rows() == 0 {
        return Err(TesseraError::InvalidArgument {
            what: "design rows",
            value: 0.0,
            expected: "at least one row",
        });
    }
    if p == 0 || p + y.cols() > MAX_DESIGN_COLUMNS {
        return Err(TesseraError::InvalidArgument {
            what: "design columns",
            value: (p + y.cols()) as f64,
            expected: "1..=1024 columns of [X | Y], with at least one in X",
        });
    }
    let x = Table::new("design", x, y.rows(), p)?;
    Ok(DesignShape {
        rows: y.rows(),
        p,
        max_abs: x.max_abs(),
    })
}

/// Checks a fitted reduction against a resident design, including a bound on the
/// fitted net benefits that keeps their sums finite.
pub fn validate_fitted(
    coefs: &[f64],
    sets: usize,
    design: &DesignShape,
    layout: &FittedLayout<'_>,
    reference: &[u32],
) -> Result<()> {
    let p = design.p;
    check_strategies(layout.strategies())?;
    if let FittedLayout::CostEffect { wtp, .. } = layout {
        check_grid(wtp)?;
    }
    let combos = sets.checked_mul(layout.grid()).filter(|&c| c >= 1);
    let combos = combos.ok_or(TesseraError::InvalidArgument {
        what: "coefficient sets",
        value: sets as f64,
        expected: "at least one set",
    })?;
    let coefs = Table::new("metamodel coefficients", coefs, sets, p * layout.columns())?;
    // |fitted| ≤ p·max|β|·max|X| per response; a net benefit combines two.
    let scale = match layout {
        FittedLayout::NetBenefit { .. } => 1.0,
        FittedLayout::CostEffect { wtp, .. } => largest_abs(wtp) + 1.0,
    };
    let largest = scale * p as f64 * coefs.max_abs() * design.max_abs;
    check_sums_stay_finite("largest |fitted net benefit| bound", largest, design.rows)?;
    check_reference(reference, combos, layout.strategies())
}

/// The error for a fitted reduction before any design was loaded.
pub fn no_design() -> TesseraError {
    TesseraError::InvalidArgument {
        what: "resident design",
        value: 0.0,
        expected: "a design loaded with load_design before fitted_decision_sums",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_find_every_non_finite_value_and_their_largest_magnitude() {
        for n in [1usize, 7, 8, 9, 64, 67] {
            for at in [0, n / 2, n - 1] {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut v: Vec<f64> = (0..n).map(|i| i as f64 - 3.0).collect();
                    v[at] = bad;
                    let err = Table::new("t", &v, n, 1).unwrap_err();
                    assert!(
                        matches!(err, TesseraError::NonFinite { index, .. } if index == at),
                        "n {n}, at {at}: {err}"
                    );
                    let w: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                    let err = Table::new("t", &w, n, 1).unwrap_err();
                    assert!(matches!(err, TesseraError::NonFinite { index, .. } if index == at));
                }
            }
            let v: Vec<f64> = (0..n).map(|i| -(i as f64) * 1e300).collect();
            let t = Table::new("t", &v, n, 1).unwrap();
            assert_eq!(t.max_abs(), (n - 1) as f64 * 1e300);
        }
        let empty = Table::new("t", &[0.0f64; 0][..], 0, 3).unwrap();
        assert_eq!(empty.max_abs(), 0.0);
        let max = Table::new("t", &[f64::MAX, -f64::MAX][..], 1, 2).unwrap();
        assert_eq!(max.max_abs(), f64::MAX);
    }
}
