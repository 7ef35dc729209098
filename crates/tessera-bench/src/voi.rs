//! Value-of-information workloads: EVPI over net benefits and over a 101-point
//! willingness-to-pay grid from costs and effects, EVPPI by the linear and the
//! GAM-style metamodels, on every backend through `tessera::voi`.

use tessera::voi::{EvppiOptions, Metamodel, Outcomes, Table, Voi};
use tessera::{CpuDevice, Device};
use tessera_tensor::rng::Rng;

use crate::backends::{BackendKind, BenchBackend};
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// Strategies of every workload.
const STRATEGIES: usize = 4;
/// Points of the willingness-to-pay grid.
const GRID: usize = 101;

/// What one VOI workload times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VoiKind {
    /// EVPI of a net-benefit table.
    Evpi,
    /// EVPI and the acceptability curve at every grid value, from costs and effects.
    Grid,
    /// EVPPI of a group of `params` parameters.
    Evppi {
        /// Parameters in the group.
        params: usize,
        /// The metamodel.
        metamodel: Metamodel,
    },
}

/// A VOI workload over `draws` draws of 4 strategies.
#[derive(Debug, Clone, Copy)]
pub struct VoiWorkload {
    group: &'static str,
    kind: VoiKind,
    draws: usize,
}

/// The sizes: EVPI at 5K to 5M draws, the grid at the same, EVPPI of 1, 2 and
/// 4 parameters at 10K and 500K (GAM at 10K, and 2 parameters at 500K), the
/// single-parameter estimators at 10K and 500K, and the Gaussian process of 4
/// parameters at 10K and 500K.
pub fn workloads(quick: bool) -> Vec<VoiWorkload> {
    let w = |group, kind, draws| VoiWorkload { group, kind, draws };
    if quick {
        return vec![
            w("voi-evpi", VoiKind::Evpi, 500_000),
            w("voi-grid", VoiKind::Grid, 50_000),
            w(
                "voi-evppi",
                VoiKind::Evppi {
                    params: 2,
                    metamodel: Metamodel::Linear,
                },
                500_000,
            ),
            w(
                "voi-evppi",
                VoiKind::Evppi {
                    params: 2,
                    metamodel: Metamodel::Gam,
                },
                10_000,
            ),
        ];
    }
    let mut out = Vec::new();
    for n in [5_000, 50_000, 500_000, 5_000_000] {
        out.push(w("voi-evpi", VoiKind::Evpi, n));
    }
    for n in [5_000, 50_000, 500_000, 5_000_000] {
        out.push(w("voi-grid", VoiKind::Grid, n));
    }
    for n in [10_000, 500_000] {
        for params in [1, 2, 4] {
            let metamodel = Metamodel::Linear;
            out.push(w("voi-evppi", VoiKind::Evppi { params, metamodel }, n));
        }
        for metamodel in [
            Metamodel::StrongOakley { blocks: None },
            Metamodel::Sadatsafavi { separators: 1 },
        ] {
            out.push(w(
                "voi-evppi",
                VoiKind::Evppi {
                    params: 1,
                    metamodel,
                },
                n,
            ));
        }
    }
    for params in [1, 2, 4] {
        let metamodel = Metamodel::Gam;
        out.push(w("voi-evppi", VoiKind::Evppi { params, metamodel }, 10_000));
    }
    for n in [10_000, 500_000] {
        let metamodel = Metamodel::GaussianProcess {
            fit_rows: tessera::voi::DEFAULT_GP_FIT_ROWS,
        };
        out.push(w(
            "voi-evppi",
            VoiKind::Evppi {
                params: 4,
                metamodel,
            },
            n,
        ));
    }
    out.push(w(
        "voi-evppi",
        VoiKind::Evppi {
            params: 2,
            metamodel: Metamodel::Gam,
        },
        500_000,
    ));
    out
}

fn normal(rng: &mut Rng) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Workload for VoiWorkload {
    fn id(&self) -> String {
        format!("voi/{}", self.label())
    }
    fn group(&self) -> &'static str {
        self.group
    }
    fn label(&self) -> String {
        match self.kind {
            VoiKind::Evpi => format!("EVPI N={} D={STRATEGIES}", self.draws),
            VoiKind::Grid => format!("EVPI + CEAC N={} D={STRATEGIES} K={GRID}", self.draws),
            VoiKind::Evppi { params, metamodel } => format!(
                "EVPPI {} {params} param N={} D={STRATEGIES}",
                match metamodel {
                    Metamodel::Gam => "GAM",
                    Metamodel::Linear => "linear",
                    Metamodel::StrongOakley { .. } => "Strong-Oakley",
                    Metamodel::Sadatsafavi { .. } => "Sadatsafavi",
                    Metamodel::GaussianProcess { .. } => "GP",
                    _ => "other",
                },
                self.draws
            ),
        }
    }
    fn x(&self) -> f64 {
        self.draws as f64
    }
    fn unit(&self) -> &'static str {
        "draws"
    }
    fn items_per_iteration(&self) -> f64 {
        match self.kind {
            VoiKind::Grid => (self.draws * GRID) as f64,
            _ => self.draws as f64,
        }
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        let n = self.draws;
        let mut rng = Rng::new(0x701);
        // Four parameters; strategy d's net benefit around 2·10^4 with a slope on them.
        let params: Vec<f64> = (0..n * 4).map(|_| normal(&mut rng)).collect();
        let mut costs = vec![0.0; n * STRATEGIES];
        let mut effects = vec![0.0; n * STRATEGIES];
        for i in 0..n {
            let t = &params[i * 4..(i + 1) * 4];
            for d in 0..STRATEGIES {
                let s = d as f64;
                costs[i * STRATEGIES + d] =
                    1e4 + 3e3 * s + 500.0 * (t[0] * s - t[1]) + 200.0 * normal(&mut rng);
                effects[i * STRATEGIES + d] =
                    1.0 + 0.12 * s + 0.05 * (t[2] * s + t[3]) + 0.02 * normal(&mut rng);
            }
        }
        let nb: Vec<f64> = (0..n * STRATEGIES)
            .map(|i| 25_000.0 * effects[i] - costs[i])
            .collect();
        let wtp: Vec<f64> = (0..GRID).map(|k| 1000.0 * k as f64).collect();
        Box::new(VoiFixture {
            w: *self,
            params,
            costs,
            effects,
            nb,
            wtp,
        })
    }
}

struct VoiFixture {
    w: VoiWorkload,
    params: Vec<f64>,
    costs: Vec<f64>,
    effects: Vec<f64>,
    nb: Vec<f64>,
    wtp: Vec<f64>,
}

impl VoiFixture {
    /// The workload's result on `device` (EVPI or EVPPI values).
    fn compute(&self, voi: &mut Voi) -> tessera_tensor::Result<Vec<f64>> {
        let n = self.w.draws;
        match self.w.kind {
            VoiKind::Evpi => {
                let o = Outcomes::NetBenefit(Table::new("nb", &self.nb, n, STRATEGIES)?);
                Ok(voi.evpi(&o)?.iter().map(|e| e.evpi).collect())
            }
            VoiKind::Grid => {
                let o = Outcomes::CostEffect {
                    costs: Table::new("costs", &self.costs, n, STRATEGIES)?,
                    effects: Table::new("effects", &self.effects, n, STRATEGIES)?,
                    wtp: &self.wtp,
                };
                Ok(voi.evpi(&o)?.iter().map(|e| e.evpi).collect())
            }
            VoiKind::Evppi { params, metamodel } => {
                let o = Outcomes::NetBenefit(Table::new("nb", &self.nb, n, STRATEGIES)?);
                let p = Table::new("params", &self.params, n, 4)?;
                let group: Vec<usize> = (0..params).collect();
                let options = EvppiOptions {
                    metamodel,
                    ..EvppiOptions::default()
                };
                Ok(voi.evppi(&o, &p, &[&group], &options)?[0].values.clone())
            }
        }
    }
}

impl Fixture for VoiFixture {
    fn prepare(&self, backend: &BenchBackend) -> Result<Prepared, String> {
        let e = |e: tessera_tensor::TesseraError| e.to_string();
        let device = match &backend.kind {
            BackendKind::CpuSimd => Device::cpu(),
            BackendKind::CpuScalar => Device::Cpu(CpuDevice::scalar()),
            BackendKind::Gpu(ctx) => Device::from_context(ctx.clone()),
            _ => return Ok(Prepared::NotApplicable("no VOI on this backend")),
        };
        let want = self
            .compute(&mut Voi::on(&Device::cpu()).map_err(e)?)
            .map_err(e)?;
        let mut voi = Voi::on(&device).map_err(e)?;
        let got = self.compute(&mut voi).map_err(e)?;
        crate::workload::check_close("value", &got, &want, 1e-3)?;
        let bytes = match self.w.kind {
            VoiKind::Grid => (self.costs.len() + self.effects.len()) * 8,
            VoiKind::Evpi => self.nb.len() * 8,
            VoiKind::Evppi { .. } => (self.nb.len() + self.params.len()) * 8,
        } as u64;
        Ok(Prepared::Ready(
            Box::new(VoiRunner {
                fixture: self.clone_inputs(),
                voi,
            }),
            bytes,
        ))
    }
}

impl VoiFixture {
    fn clone_inputs(&self) -> VoiFixture {
        VoiFixture {
            w: self.w,
            params: self.params.clone(),
            costs: self.costs.clone(),
            effects: self.effects.clone(),
            nb: self.nb.clone(),
            wtp: self.wtp.clone(),
        }
    }
}

struct VoiRunner {
    fixture: VoiFixture,
    voi: Voi,
}

impl Runner for VoiRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        // Each call returns its results on the host: that is the estimators' contract.
        self.fixture.compute(&mut self.voi).map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}
