//! Simulator workloads: generating a batch of SCMs (host-side set-up) and sampling
//! from it with one intervention per environment, on every backend.

use tessera::causal::{ClosedLoop, LoopConfig};
use tessera_cpu::{CpuPosterior, CpuSim};
use tessera_gpu::{GpuPosterior, GpuSim};
use tessera_tensor::sim::{Intervention, Interventions, ScmBatch, ScmConfig, SimBackend};
use tessera_tensor::sim::{PosteriorBackend, PosteriorConfig};

use crate::backends::{BackendKind, BenchBackend};
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// What one simulator workload times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimKind {
    /// `ScmBatch::generate` (host-side, the same for every backend).
    Generate,
    /// One `sample` call of `rows` rows per environment.
    Sample,
    /// One new row per environment added to the posterior, then every parent set of
    /// size at most `k` scored.
    Posterior {
        /// Largest parent set.
        k: usize,
    },
    /// One step of the closed loop (`tessera::causal::ClosedLoop::step`).
    Loop,
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
/// against the number of variables, the posterior update for k = 1, 2, 3, and the
/// closed loop against the batch and the number of variables.
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
    for k in 1..=3 {
        out.push(w("sim-posterior", SimKind::Posterior { k }, 1024, 20, 100));
    }
    out.push(w("loop-batch", SimKind::Loop, 64, 20, 1));
    out.push(w("loop-batch", SimKind::Loop, 1024, 20, 1));
    if !quick {
        out.push(w("sim-batch", SimKind::Sample, 4096, 20, 100));
        for d in [5, 20, 50] {
            out.push(w("sim-vars", SimKind::Sample, 1024, d, 100));
        }
        out.push(w("loop-batch", SimKind::Loop, 1, 20, 1));
        out.push(w("loop-batch", SimKind::Loop, 4096, 20, 1));
        for d in [5, 20, 50] {
            out.push(w("loop-vars", SimKind::Loop, 1024, d, 1));
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
            SimKind::Posterior { k } => format!(
                "posterior k={k} B={} d={} (+1 row on {})",
                self.batch, self.n_vars, self.rows
            ),
            SimKind::Loop => format!("loop step B={} d={}", self.batch, self.n_vars),
        }
    }
    fn x(&self) -> f64 {
        self.batch as f64
    }
    fn unit(&self) -> &'static str {
        match self.kind {
            SimKind::Generate => "SCMs",
            SimKind::Sample => "samples",
            SimKind::Posterior { .. } => "env-updates",
            SimKind::Loop => "env-steps",
        }
    }
    fn items_per_iteration(&self) -> f64 {
        match self.kind {
            SimKind::Generate | SimKind::Posterior { .. } | SimKind::Loop => self.batch as f64,
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
        match self.w.kind {
            SimKind::Posterior { k } => return self.prepare_posterior(backend, k),
            SimKind::Loop => return self.prepare_loop(backend),
            _ => {}
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

impl SimFixture {
    fn prepare_posterior(&self, backend: &BenchBackend, k: usize) -> Result<Prepared, String> {
        let e = |e: tessera_tensor::TesseraError| e.to_string();
        let config = PosteriorConfig::for_scm(&self.scm, k);
        let ivs = Interventions::PerEnv(&self.interventions);
        let mut cpu = CpuPosterior::new(&config).map_err(e)?;
        cpu.add_rows(&self.expected, self.w.rows, &ivs).map_err(e)?;
        let want = cpu.posterior().map_err(e)?;
        let mut posterior: Box<dyn PosteriorBackend> = match &backend.kind {
            BackendKind::CpuSimd => Box::new(cpu),
            BackendKind::Gpu(ctx) => {
                let mut gpu = GpuPosterior::new(ctx, &config).map_err(e)?;
                gpu.add_rows(&self.expected, self.w.rows, &ivs).map_err(e)?;
                let got = match gpu.posterior() {
                    Ok(got) => got,
                    Err(tessera_tensor::TesseraError::Diverged { .. }) => {
                        return Ok(Prepared::NotApplicable(
                            "the GPU posterior refuses these data: f32 cannot resolve their scores (see docs/sim.md)",
                        ));
                    }
                    Err(other) => return Err(other.to_string()),
                };
                if let Some(i) = got
                    .marginals
                    .iter()
                    .zip(&want.marginals)
                    .position(|(a, b)| (a - b).abs() > 2e-3)
                {
                    return Err(format!(
                        "marginal {i} is {} but the CPU gives {}",
                        got.marginals[i], want.marginals[i]
                    ));
                }
                Box::new(gpu)
            }
            _ => return Ok(Prepared::NotApplicable("no posterior on this backend")),
        };
        posterior.posterior().map_err(e)?;
        let d = self.w.n_vars;
        let row: Vec<f32> = (0..self.w.batch)
            .flat_map(|env| self.expected[env * self.w.rows * d..][..d].to_vec())
            .collect();
        let bytes = config.state_bytes().unwrap_or(0);
        // The timed row clamps each target, so it is uploaded and processed but dropped:
        // the statistics stay at the fixture's rows however many iterations run (the
        // GPU's f32 scores would be refused as rows pile up; a kept row costs the CPU
        // one (d+1)^2 rank-1 update more per environment).
        let mut clamped = self.interventions.clone();
        for (env, &t) in self.scm.targets().iter().enumerate() {
            clamped[env * d + t as usize] = Intervention::clamp(0.0);
        }
        Ok(Prepared::Ready(
            Box::new(PosteriorRunner {
                posterior,
                row,
                interventions: clamped,
            }),
            bytes,
        ))
    }

    fn prepare_loop(&self, backend: &BenchBackend) -> Result<Prepared, String> {
        let e = |e: tessera_tensor::TesseraError| e.to_string();
        let device = match &backend.kind {
            BackendKind::CpuSimd => tessera::Device::cpu(),
            BackendKind::Gpu(ctx) => tessera::Device::from_context(ctx.clone()),
            _ => return Ok(Prepared::NotApplicable("no closed loop on this backend")),
        };
        let mut run = ClosedLoop::on(&device, &self.scm, &LoopConfig::default()).map_err(e)?;
        run.step().map_err(e)?;
        if run.best_values().map_err(e)?.iter().any(|v| !v.is_finite()) {
            return Err("non-finite best values after a loop step".into());
        }
        let bytes = self.w.config().model_bytes()
            + PosteriorConfig::for_scm(&self.scm, LoopConfig::default().max_parents)
                .state_bytes()
                .unwrap_or(0);
        Ok(Prepared::Ready(Box::new(LoopRunner { run }), bytes))
    }
}

struct PosteriorRunner {
    posterior: Box<dyn PosteriorBackend>,
    row: Vec<f32>,
    interventions: Vec<Intervention>,
}

impl Runner for PosteriorRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.posterior
            .add_rows(&self.row, 1, &Interventions::PerEnv(&self.interventions))?;
        self.posterior.posterior().map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}

struct LoopRunner {
    run: ClosedLoop,
}

impl Runner for LoopRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.run.step()
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        self.run.sync()
    }
}
