//! Simulator workloads: generating a batch of SCMs (host-side set-up) and sampling
//! from it with one intervention per environment, on every backend.

use tessera_cpu::CpuSim;
use tessera_gpu::GpuSim;
use tessera_tensor::sim::{Intervention, Interventions, ScmBatch, ScmConfig, SimBackend};

use crate::backends::{BackendKind, BenchBackend};
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// What one simulator workload times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimKind {
    /// `ScmBatch::generate` (host-side, the same for every backend).
    Generate,
    /// One `sample` call of `rows` rows per environment.
    Sample,
}

/// A simulator workload: `batch` environments of `n_vars` variables, `rows` rows.
#[derive(Debug, Clone, Copy)]
pub struct SimWorkload {
    group: &'static str,
    kind: SimKind,
    batch: usize,
    n_vars: usize,
    rows: usize,
}

/// The simulator workloads: generation of 1024 x 20, sampling against the batch and
/// against the number of variables.
pub fn workloads(quick: bool) -> Vec<SimWorkload> {
    let w = |group, kind, batch, n_vars, rows| SimWorkload {
        group,
        kind,
        batch,
        n_vars,
        rows,
    };
    let mut out = vec![
        w("sim-setup", SimKind::Generate, 1024, 20, 0),
        w("sim-batch", SimKind::Sample, 64, 20, 100),
        w("sim-batch", SimKind::Sample, 1024, 20, 100),
    ];
    if !quick {
        out.push(w("sim-batch", SimKind::Sample, 4096, 20, 100));
        for d in [5, 20, 50] {
            out.push(w("sim-vars", SimKind::Sample, 1024, d, 100));
        }
    }
    out
}

impl SimWorkload {
    fn config(&self) -> ScmConfig {
        ScmConfig::new(self.batch, self.n_vars, 0x51a)
    }
}

impl Workload for SimWorkload {
    fn id(&self) -> String {
        format!("sim/{}", self.label())
    }
    fn shape_key(&self) -> String {
        self.id()
    }
    fn group(&self) -> &'static str {
        self.group
    }
    fn label(&self) -> String {
        match self.kind {
            SimKind::Generate => {
                format!("generate {} SCMs x {} variables", self.batch, self.n_vars)
            }
            SimKind::Sample => format!(
                "sample B={} d={} rows={}",
                self.batch, self.n_vars, self.rows
            ),
        }
    }
    fn x(&self) -> f64 {
        self.batch as f64
    }
    fn unit(&self) -> &'static str {
        match self.kind {
            SimKind::Generate => "SCMs",
            SimKind::Sample => "samples",
        }
    }
    fn items_per_iteration(&self) -> f64 {
        match self.kind {
            SimKind::Generate => self.batch as f64,
            SimKind::Sample => (self.batch * self.rows) as f64,
        }
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        let scm = ScmBatch::generate(&self.config()).expect("valid config");
        let d = self.n_vars;
        // One do-intervention per environment, on a rotating non-target variable.
        let interventions = (0..self.batch)
            .flat_map(|e| {
                let target = scm.targets()[e] as usize;
                let v = (target + 1 + e % (d - 1).max(1)) % d;
                (0..d).map(move |k| {
                    if k == v && k != target {
                        Intervention::clamp(1.0)
                    } else {
                        Intervention::OBSERVE
                    }
                })
            })
            .collect::<Vec<_>>();
        let expected = CpuSim::new(&scm)
            .and_then(|mut s| s.sample(0, self.rows.max(1), &Interventions::PerEnv(&interventions)))
            .expect("CPU sampling");
        Box::new(SimFixture {
            w: *self,
            scm,
            interventions,
            expected,
        })
    }
}

struct SimFixture {
    w: SimWorkload,
    scm: ScmBatch,
    interventions: Vec<Intervention>,
    expected: Vec<f32>,
}

impl Fixture for SimFixture {
    fn prepare(&self, backend: &BenchBackend) -> Result<Prepared, String> {
        let e = |e: tessera_tensor::TesseraError| e.to_string();
        if self.w.kind == SimKind::Generate {
            return Ok(match backend.kind {
                BackendKind::CpuSimd => Prepared::Ready(
                    Box::new(GenerateRunner {
                        config: self.w.config(),
                    }),
                    self.w.config().model_bytes(),
                ),
                _ => Prepared::NotApplicable(
                    "SCMs are generated on the host, once, for every backend",
                ),
            });
        }
        let mut sampler: Box<dyn SimBackend> = match &backend.kind {
            BackendKind::CpuSimd => Box::new(CpuSim::new(&self.scm).map_err(e)?),
            BackendKind::Gpu(ctx) => Box::new(GpuSim::new(ctx, &self.scm).map_err(e)?),
            _ => return Ok(Prepared::NotApplicable("no simulator on this backend")),
        };
        let got = sampler
            .sample(0, self.w.rows, &Interventions::PerEnv(&self.interventions))
            .map_err(e)?;
        if let Some(i) = got
            .iter()
            .zip(&self.expected)
            .position(|(a, b)| (a - b).abs() > 1e-3 * (1.0 + b.abs()))
        {
            return Err(format!(
                "sample {i} is {} but the CPU gives {}",
                got[i], self.expected[i]
            ));
        }
        let bytes = self.w.config().model_bytes() + (self.expected.len() * 4) as u64;
        Ok(Prepared::Ready(
            Box::new(SampleRunner {
                sampler,
                rows: self.w.rows,
                interventions: self.interventions.clone(),
                draw: 0,
            }),
            bytes,
        ))
    }
}

struct GenerateRunner {
    config: ScmConfig,
}

impl Runner for GenerateRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        ScmBatch::generate(&self.config).map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}

struct SampleRunner {
    sampler: Box<dyn SimBackend>,
    rows: usize,
    interventions: Vec<Intervention>,
    draw: u32,
}

impl Runner for SampleRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        // Each call reads its samples back: that is the contract of `sample`.
        self.draw = self.draw.wrapping_add(1);
        self.sampler
            .sample(
                self.draw,
                self.rows,
                &Interventions::PerEnv(&self.interventions),
            )
            .map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}
