//! The f64 scalar reference of the value-of-information reductions, with Neumaier
//! compensated sums.

use crate::error::Result;
use crate::voi::{
    Decision, DecisionSums, DesignShape, FittedLayout, Gram, Table, VoiBackend, no_design,
    validate_decision, validate_design, validate_fitted,
};

/// A compensated (Neumaier) sum.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        self.comp += if self.sum.abs() >= v.abs() {
            (self.sum - t) + v
        } else {
            (v - t) + self.sum
        };
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.comp
    }
}

/// Sums of one reduction from a per-row net-benefit function.
fn reduce(
    rows: usize,
    strategies: usize,
    reference: usize,
    mut nb: impl FnMut(usize, usize) -> f64,
) -> DecisionSums {
    let mut sum_max = Sum::default();
    let mut sum_inc = vec![Sum::default(); strategies];
    let mut optimal = vec![0u64; strategies];
    let mut values = vec![0.0; strategies];
    for i in 0..rows {
        values
            .iter_mut()
            .enumerate()
            .for_each(|(d, v)| *v = nb(i, d));
        let r = values[reference];
        let mut best = 0;
        for d in 0..strategies {
            let inc = values[d] - r;
            sum_inc[d].add(inc);
            if values[d] - r > values[best] - r {
                best = d;
            }
        }
        sum_max.add(values[best] - r);
        optimal[best] += 1;
    }
    DecisionSums {
        rows: rows as u64,
        reference,
        sum_max: sum_max.value(),
        sum_inc: sum_inc.into_iter().map(Sum::value).collect(),
        optimal,
    }
}

/// The reference backend: plain loops in f64.
#[derive(Debug, Default)]
pub struct ReferenceVoi {
    design: Option<(Vec<f64>, DesignShape)>,
}

impl ReferenceVoi {
    /// A backend with no design loaded.
    pub fn new() -> Self {
        Self::default()
    }
}

impl VoiBackend for ReferenceVoi {
    fn decision_sums(
        &mut self,
        decision: &Decision<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        validate_decision(decision, reference)?;
        Ok((0..decision.combos())
            .map(|c| {
                reduce(
                    decision.rows(),
                    decision.strategies(),
                    reference[c] as usize,
                    |i, d| decision.net_benefit(i, d, c),
                )
            })
            .collect())
    }

    fn load_design(&mut self, x: Vec<f64>, p: usize, y: &Table<'_>) -> Result<Gram> {
        let shape = validate_design(&x, p, y)?;
        let (n, m) = (y.rows(), y.cols());
        let q = p + m;
        let z = |i: usize, j: usize| if j < p { x[j * n + i] } else { y.get(i, j - p) };
        let mut ztz = vec![0.0; q * q];
        for a in 0..q {
            for b in a..q {
                let mut s = Sum::default();
                (0..n).for_each(|i| s.add(z(i, a) * z(i, b)));
                ztz[a * q + b] = s.value();
                ztz[b * q + a] = s.value();
            }
        }
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
        let (x, shape) = self.design.as_ref().ok_or(no_design())?;
        validate_fitted(coefs, sets, shape, layout, reference)?;
        let p = shape.p;
        let (m, grid, n) = (layout.columns(), layout.grid(), x.len() / p);
        let mut out = Vec::with_capacity(sets * grid);
        for s in 0..sets {
            let beta = &coefs[s * p * m..(s + 1) * p * m];
            let fitted: Vec<f64> = (0..n)
                .flat_map(|i| {
                    (0..m).map(move |c| (0..p).map(|j| x[j * n + i] * beta[j * m + c]).sum())
                })
                .collect();
            for k in 0..grid {
                out.push(reduce(
                    n,
                    layout.strategies(),
                    reference[s * grid + k] as usize,
                    |i, d| layout.net_benefit(&fitted[i * m..(i + 1) * m], d, k),
                ));
            }
        }
        Ok(out)
    }
}
