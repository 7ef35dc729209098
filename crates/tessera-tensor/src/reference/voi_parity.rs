//! The value-of-information parity suite: scenarios written once against
//! [`VoiBackend`] and run, through [`voi_parity_suite!`](crate::voi_parity_suite),
//! against the reference, the CPU backend (f64 and f32 input) and the GPU backend.

use proptest::prelude::*;

use super::ReferenceVoi;
use crate::error::{Result, TesseraError};
use crate::rng::Rng;
use crate::voi::{Decision, DecisionSums, FittedLayout, Table, VoiBackend};

/// How closely a backend must agree with the f64 reference.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Error of a sum, relative to the sum of the absolute values of its terms.
    pub sum: f64,
    /// Rows whose optimal strategy may differ (near-ties at this precision), as a
    /// fraction of the rows.
    pub optimal: f64,
}

impl Tolerance {
    /// A backend that computes in f64 (the CPU).
    pub const F64: Self = Self {
        sum: 1e-12,
        optimal: 0.0,
    };
    /// A backend that computes in f32 (the GPU).
    pub const F32: Self = Self {
        sum: 2e-5,
        optimal: 0.02,
    };
}

/// Builds a VOI backend. Any `Fn() -> Result<B>` is one, held to [`Tolerance::F64`].
pub trait VoiFactory {
    /// The backend it builds.
    type Backend: VoiBackend;
    /// A fresh backend.
    fn create(&self) -> Result<Self::Backend>;
    /// How closely it must agree with the reference.
    fn tolerance(&self) -> Tolerance {
        Tolerance::F64
    }
}

impl<B: VoiBackend, F: Fn() -> Result<B>> VoiFactory for F {
    type Backend = B;
    fn create(&self) -> Result<B> {
        self()
    }
}

/// A factory held to [`Tolerance::F32`] (the GPU's).
pub struct F32Factory<F>(pub F);

impl<B: VoiBackend, F: Fn() -> Result<B>> VoiFactory for F32Factory<F> {
    type Backend = B;
    fn create(&self) -> Result<B> {
        (self.0)()
    }
    fn tolerance(&self) -> Tolerance {
        Tolerance::F32
    }
}

/// Compares sums, `scale` being the sum of the absolute values of the terms.
fn compare(
    what: &str,
    got: &[DecisionSums],
    want: &[DecisionSums],
    scale: f64,
    tol: Tolerance,
) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} reductions, expected {}",
            got.len(),
            want.len()
        ));
    }
    let bound = tol.sum * scale.max(1e-300);
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        if g.rows != w.rows || g.reference != w.reference {
            return Err(format!("{what}[{c}]: rows/reference {g:?} vs {w:?}"));
        }
        if (g.sum_max - w.sum_max).abs() > bound {
            return Err(format!(
                "{what}[{c}]: sum_max {} vs {} (bound {bound})",
                g.sum_max, w.sum_max
            ));
        }
        for (d, (a, b)) in g.sum_inc.iter().zip(&w.sum_inc).enumerate() {
            if (a - b).abs() > bound {
                return Err(format!(
                    "{what}[{c}]: sum_inc[{d}] {a} vs {b} (bound {bound})"
                ));
            }
        }
        let moved: u64 = g
            .optimal
            .iter()
            .zip(&w.optimal)
            .map(|(a, b)| a.abs_diff(*b))
            .sum();
        if g.optimal.iter().sum::<u64>() != w.rows
            || moved as f64 > 2.0 * tol.optimal * w.rows as f64
        {
            return Err(format!(
                "{what}[{c}]: optimal counts {:?} vs {:?}",
                g.optimal, w.optimal
            ));
        }
    }
    Ok(())
}

/// A random case: draws, strategies, a grid, an offset and a seed.
#[derive(Debug, Clone)]
pub struct Case {
    /// Draws.
    pub rows: usize,
    /// Strategies.
    pub strategies: usize,
    /// Willingness-to-pay values.
    pub grid: usize,
    /// Added to every net benefit and cost (large offsets test cancellation).
    pub offset: f64,
    /// Design columns of the fitted scenario.
    pub p: usize,
    /// Seed of the values.
    pub seed: u64,
}

/// Random cases: 1 row to several workgroups' worth (non-multiples of every tile),
/// 2 to 9 strategies, grids of 1 to 7, offsets up to 10^5.
pub fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop_oneof![1usize..=8, 1usize..=3000],
        2usize..=9,
        1usize..=7,
        prop_oneof![Just(0.0), Just(1e5), -1e3..1e3f64],
        1usize..=12,
        any::<u64>(),
    )
        .prop_map(|(rows, strategies, grid, offset, p, seed)| Case {
            rows,
            strategies,
            grid,
            offset,
            p,
            seed,
        })
}

/// f32-representable values, so f32 and f64 backends see the same input.
fn values(rng: &mut Rng, n: usize, scale: f32, offset: f64) -> Vec<f64> {
    (0..n)
        .map(|_| ((offset as f32) + scale * rng.normal()) as f64)
        .collect()
}

/// Runs one case's three reductions on `f`'s backend and the reference.
fn run_case<F: VoiFactory>(f: &F, c: &Case) -> std::result::Result<(), String> {
    let tol = f.tolerance();
    let mut rng = Rng::new(c.seed);
    let (n, d) = (c.rows, c.strategies);
    let mut be = f.create().map_err(|e| e.to_string())?;
    let mut re = ReferenceVoi::new();
    // Net benefits: strategy means spread around the offset, so the optimum varies.
    let mut nb = values(&mut rng, n * d, 50.0, c.offset);
    for (i, v) in nb.iter_mut().enumerate() {
        *v = (*v + (i % d) as f64 * 3.0) as f32 as f64;
    }
    let table = Table::new("nb", &nb, n, d).unwrap();
    let reference = [rng.below(d) as u32];
    let decision = Decision::NetBenefit(table);
    let scale: f64 = nb.iter().map(|v| (v - c.offset).abs() * 2.0).sum::<f64>() + 1.0;
    compare(
        "net benefit",
        &be.decision_sums(&decision, &reference)
            .map_err(|e| e.to_string())?,
        &re.decision_sums(&decision, &reference).unwrap(),
        scale,
        tol,
    )?;
    // Costs and effects over a grid.
    let costs = values(&mut rng, n * d, 1000.0, c.offset);
    let effects: Vec<f64> = values(&mut rng, n * d, 0.5, 3.0);
    let wtp: Vec<f64> = (0..c.grid).map(|k| 5000.0 * k as f64).collect();
    // Random per value, or in runs as the estimators choose them (the best strategy
    // in expectation changes a few times along a grid): blocks of lanes then share a
    // reference, which a backend may exploit.
    let reference: Vec<u32> = if c.seed.is_multiple_of(2) {
        (0..c.grid).map(|_| rng.below(d) as u32).collect()
    } else {
        let mut current = rng.below(d) as u32;
        (0..c.grid)
            .map(|_| {
                if rng.below(6) == 0 {
                    current = rng.below(d) as u32;
                }
                current
            })
            .collect()
    };
    let decision = Decision::CostEffect {
        costs: Table::new("costs", &costs, n, d).unwrap(),
        effects: Table::new("effects", &effects, n, d).unwrap(),
        wtp: &wtp,
    };
    let scale: f64 = (0..n * d)
        .map(|i| 2.0 * ((costs[i] - c.offset).abs() + 30_000.0 * effects[i].abs()))
        .sum::<f64>()
        + 1.0;
    compare(
        "costs and effects",
        &be.decision_sums(&decision, &reference)
            .map_err(|e| e.to_string())?,
        &re.decision_sums(&decision, &reference).unwrap(),
        scale,
        tol,
    )?;
    // A design, its cross-products and fitted reductions over two coefficient sets.
    let p = c.p;
    let x = values(&mut rng, n * p, 1.0, 0.0);
    let y = values(&mut rng, n * 2, 3.0, 1.0);
    let yt = Table::new("y", &y, n, 2).unwrap();
    let g = be
        .load_design(x.clone(), p, &yt)
        .map_err(|e| e.to_string())?;
    let w = re.load_design(x.clone(), p, &yt).unwrap();
    let gram_scale = (n as f64) * 20.0;
    for (i, (a, b)) in g.ztz.iter().zip(&w.ztz).enumerate() {
        if (a - b).abs() > tol.sum * gram_scale * 4.0 {
            return Err(format!("gram[{i}]: {a} vs {b}"));
        }
    }
    let layouts = [
        FittedLayout::NetBenefit { strategies: d },
        FittedLayout::CostEffect {
            strategies: d,
            wtp: &wtp,
        },
    ];
    for layout in layouts {
        let m = layout.columns();
        let sets = 2;
        let coefs = values(&mut rng, sets * p * m, 2.0, 0.0);
        let combos = sets * layout.grid();
        let reference: Vec<u32> = (0..combos).map(|_| rng.below(d) as u32).collect();
        let abs_fit: f64 = (0..sets)
            .map(|s| {
                (0..n)
                    .map(|i| {
                        (0..m)
                            .map(|col| {
                                (0..p)
                                    .map(|j| (x[i * p + j] * coefs[(s * p + j) * m + col]).abs())
                                    .sum::<f64>()
                            })
                            .sum::<f64>()
                    })
                    .sum::<f64>()
            })
            .sum();
        let kmax = wtp.last().copied().unwrap_or(0.0).max(1.0);
        compare(
            "fitted",
            &be.fitted_decision_sums(&coefs, sets, &layout, &reference)
                .map_err(|e| e.to_string())?,
            &re.fitted_decision_sums(&coefs, sets, &layout, &reference)
                .unwrap(),
            2.0 * kmax * abs_fit + 1.0,
            tol,
        )?;
    }
    Ok(())
}

/// Random cases against the reference.
pub fn random_cases<F: VoiFactory>(f: &F, cases: u32) {
    super::run_cases(case_strategy(), cases, |c| run_case(f, c));
}

/// Fixed edge cases: one row, two strategies, exact ties, a large offset, rows that
/// are not a multiple of any tile, and many strategies over more rows than a CPU chunk
/// (every group of the CPU's packed optimality counts).
pub fn edge_cases<F: VoiFactory>(f: &F) {
    for (rows, strategies, offset) in [
        (1, 2, 0.0),
        (1, 32, 0.0),
        (2, 2, 1e5),
        (255, 3, 0.0),
        (257, 4, -1e5),
        (4097, 5, 1e5),
        (1500, 13, 0.0),
        (2049, 32, 1e5),
    ] {
        let c = Case {
            rows,
            strategies,
            grid: 11,
            offset,
            p: 3,
            seed: rows as u64,
        };
        run_case(f, &c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
}

/// Exact ties go to the lowest index, and identical strategies have no value of
/// information.
pub fn ties_go_to_the_lowest_index<F: VoiFactory>(f: &F) {
    let mut be = f.create().unwrap();
    let nb = [3.0, 3.0, 1.0, 5.0, 5.0, 5.0, 2.0, 2.0, 0.0];
    let t = Table::new("nb", &nb[..], 3, 3).unwrap();
    let s = be.decision_sums(&Decision::NetBenefit(t), &[2]).unwrap();
    assert_eq!(s[0].optimal, vec![3, 0, 0]);
    assert_eq!(s[0].value_of_information(), 0.0);
    assert_eq!(s[0].best(), 0);
}

/// The worked tables, whatever the reference strategy.
pub fn worked_tables<F: VoiFactory>(f: &F) {
    let tol = f.tolerance();
    let cases: [(&[f64], usize, f64); 3] = [
        (&[10.0, 12.0, 11.0, 9.0, 13.0, 14.0], 2, 2.0 / 3.0),
        (&[1e9, -1e9, -1e9, 1e9, 1.0, 1.0], 2, 666_666_666.666_666_6),
        (
            &[
                8.0, 2.0, 1.0, 0.0, 1.0, 9.0, 2.0, 0.0, 2.0, 1.0, 10.0, 0.0, 0.0, 2.0, 1.0, 11.0,
            ],
            4,
            6.0,
        ),
    ];
    for (nb, d, want) in cases {
        let t = Table::new("nb", nb, nb.len() / d, d).unwrap();
        for r in 0..d as u32 {
            let mut be = f.create().unwrap();
            let got =
                be.decision_sums(&Decision::NetBenefit(t), &[r]).unwrap()[0].value_of_information();
            let bound = if tol.sum < 1e-9 { 1e-12 } else { 1e-6 } * want.abs();
            assert!(
                (got - want).abs() <= bound,
                "EVPI of {nb:?} against {r}: {got}, expected {want}"
            );
        }
    }
}

/// Bad calls are typed errors and leave the resident design in place.
pub fn bad_input_is_typed<F: VoiFactory>(f: &F) {
    let mut be = f.create().unwrap();
    let nb = [1.0, 2.0, 3.0, 4.0];
    let one_strategy = Table::new("nb", &nb[..], 4, 1).unwrap();
    assert!(matches!(
        be.decision_sums(&Decision::NetBenefit(one_strategy), &[0]),
        Err(TesseraError::InvalidArgument {
            what: "strategies",
            ..
        })
    ));
    let empty = Table::new("nb", &nb[..0], 0, 2).unwrap();
    assert!(matches!(
        be.decision_sums(&Decision::NetBenefit(empty), &[0]),
        Err(TesseraError::InvalidArgument { .. })
    ));
    let t = Table::new("nb", &nb[..], 2, 2).unwrap();
    assert!(matches!(
        be.decision_sums(&Decision::NetBenefit(t), &[2]),
        Err(TesseraError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        be.decision_sums(&Decision::NetBenefit(t), &[0, 0]),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    let other = Table::new("effects", &nb[..2], 1, 2).unwrap();
    assert!(matches!(
        be.decision_sums(
            &Decision::CostEffect {
                costs: t,
                effects: other,
                wtp: &[1.0]
            },
            &[0]
        ),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        be.decision_sums(
            &Decision::CostEffect {
                costs: t,
                effects: t,
                wtp: &[f64::NAN]
            },
            &[0]
        ),
        Err(TesseraError::NonFinite { .. })
    ));
    // Magnitudes whose increments or sums would overflow f64: refused, not summed to
    // an infinity or NaN.
    let huge = [1e308, -1e308, 0.0, 0.0];
    let huge = Table::new("nb", &huge[..], 2, 2).unwrap();
    assert!(matches!(
        be.decision_sums(&Decision::NetBenefit(huge), &[0]),
        Err(TesseraError::InvalidArgument { .. })
    ));
    let big = [1e200, 1.0, 1.0, 1.0];
    let big = Table::new("effects", &big[..], 2, 2).unwrap();
    assert!(matches!(
        be.decision_sums(
            &Decision::CostEffect {
                costs: t,
                effects: big,
                wtp: &[1.0, 1e200]
            },
            &[0, 0]
        ),
        Err(TesseraError::InvalidArgument { .. })
    ));
    let layout = FittedLayout::NetBenefit { strategies: 2 };
    assert!(matches!(
        be.fitted_decision_sums(&[1.0], 1, &layout, &[0]),
        Err(TesseraError::InvalidArgument {
            what: "resident design",
            ..
        })
    ));
    let y = Table::new("y", &nb[..2], 2, 1).unwrap();
    be.load_design(vec![1.0, 2.0], 1, &y).unwrap();
    assert!(matches!(
        be.load_design(vec![1.0, f64::INFINITY], 1, &y),
        Err(TesseraError::NonFinite { .. })
    ));
    assert!(matches!(
        be.load_design(vec![1.0], 1, &y),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        be.fitted_decision_sums(&[1.0, 2.0], 1, &layout, &[0]),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    // Coefficients whose fitted values could overflow.
    assert!(matches!(
        be.fitted_decision_sums(&[1e308], 1, &layout, &[0]),
        Err(TesseraError::InvalidArgument { .. })
    ));
    // The first design is still resident.
    let s = be.fitted_decision_sums(&[1.0], 1, &layout, &[0]).unwrap();
    assert_eq!(s[0].optimal, vec![0, 2]);
    assert!((s[0].sum_inc[1] - 3.0).abs() < 1e-6);
}

/// Instantiates the VOI parity suite for one backend. `$factory` is an expression of
/// type `Option<F>` with `F:` [`VoiFactory`]; `None` skips. `$cases` random cases.
#[macro_export]
macro_rules! voi_parity_suite {
    ($factory:expr, $cases:expr) => {
        #[test]
        fn random_cases() {
            if let Some(f) = $factory {
                $crate::reference::voi_parity::random_cases(&f, $cases);
            }
        }
        $crate::voi_parity_suite!(@tests $factory; edge_cases, ties_go_to_the_lowest_index,
            worked_tables, bad_input_is_typed);
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $factory {
                    $crate::reference::voi_parity::$name(&f);
                }
            }
        )*
    };
}
