//! Acquisition workloads: the fused step over sweeps of variables, capacity and batch,
//! and each operation on its own. Rings are filled to capacity before timing, so the
//! windows, counts and wraparound are all in play.

use serde::{Deserialize, Serialize};
use tessera_cpu::CpuAcquisition;
use tessera_gpu::GpuAcquisition;
use tessera_tensor::acquisition::{AcquisitionBackend, AcquisitionConfig, AcquisitionState};
use tessera_tensor::reference::ReferenceAcquisition;
use tessera_tensor::reference::parity::{self, OwnedStep, Rng};

use crate::backends::{BackendKind, BenchBackend};
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// Which operation a workload times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcqOp {
    /// The fused pipeline step.
    Step,
    /// `add_samples`.
    AddSample,
    /// `update_mechanism_features`.
    UpdateFeatures,
    /// `mechanism_confidence`.
    Confidence,
    /// `optimization_progress`.
    Progress,
    /// `exploration_coverage`.
    Coverage,
    /// `policy_features`.
    PolicyFeatures,
    /// `acquisition_scores`.
    Scores,
    /// `select_intervention`.
    Select,
    /// `history_tensor(T)`, read back included.
    History(usize),
}

impl AcqOp {
    /// Every operation except the fused step, with history windows of `history_len`.
    pub fn singles(history_len: usize) -> [AcqOp; 9] {
        [
            AcqOp::AddSample,
            AcqOp::UpdateFeatures,
            AcqOp::Confidence,
            AcqOp::Progress,
            AcqOp::Coverage,
            AcqOp::PolicyFeatures,
            AcqOp::Scores,
            AcqOp::Select,
            AcqOp::History(history_len),
        ]
    }

    /// Short name for tables.
    pub fn name(self) -> String {
        match self {
            AcqOp::Step => "step".into(),
            AcqOp::AddSample => "add_sample".into(),
            AcqOp::UpdateFeatures => "update_features".into(),
            AcqOp::Confidence => "confidence".into(),
            AcqOp::Progress => "progress".into(),
            AcqOp::Coverage => "coverage".into(),
            AcqOp::PolicyFeatures => "policy_features".into(),
            AcqOp::Scores => "scores".into(),
            AcqOp::Select => "select".into(),
            AcqOp::History(t) => format!("history T={t}"),
        }
    }
}

/// One acquisition workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcqWorkload {
    /// The table it belongs to.
    pub group: &'static str,
    /// What is timed.
    pub op: AcqOp,
    /// Variables per environment.
    pub n_vars: usize,
    /// Ring capacity.
    pub capacity: usize,
    /// Environments.
    pub batch: usize,
}

impl AcqWorkload {
    /// Stable identifier, used to match baselines.
    pub fn id(&self) -> String {
        format!(
            "acq/{}/{}/n{}-c{}-b{}",
            self.group,
            self.op.name(),
            self.n_vars,
            self.capacity,
            self.batch
        )
    }

    /// Row title.
    pub fn label(&self) -> String {
        format!(
            "{} n={} cap={} B={}",
            self.op.name(),
            self.n_vars,
            self.capacity,
            self.batch
        )
    }

    /// The configuration: targets spread over the variables.
    pub fn config(&self) -> AcquisitionConfig {
        AcquisitionConfig::batched(
            self.n_vars,
            self.capacity,
            (0..self.batch).map(|b| (b % self.n_vars) as u32).collect(),
        )
    }

    /// Bytes of one ring array (`B x capacity x n_vars x 4`), the state's bulk.
    pub fn ring_bytes(&self) -> u64 {
        (self.batch * self.capacity * self.n_vars * 4) as u64
    }

    /// Whether the f64 reference (which rescans the ring every step) is run on it.
    pub fn reference_affordable(&self) -> bool {
        self.batch * self.capacity * self.n_vars <= 1 << 18
    }
}

/// The acquisition workloads of a run. `quick` keeps a subset that finishes in about
/// a minute on a 2-core machine.
pub fn workloads(quick: bool) -> Vec<AcqWorkload> {
    let w = |group, op, n_vars, capacity, batch| AcqWorkload {
        group,
        op,
        n_vars,
        capacity,
        batch,
    };
    let mut out = vec![
        w("single", AcqOp::Step, 3, 1000, 1),
        w("single", AcqOp::Step, 50, 1000, 1),
    ];
    let (vars, caps, batches): (&[usize], &[usize], &[usize]) = if quick {
        (&[3, 10, 50], &[100, 1000], &[1, 64, 1024])
    } else {
        (
            &[3, 5, 10, 20, 50],
            &[100, 1000, 5000, 10000],
            &[1, 64, 1024, 4096],
        )
    };
    out.extend(vars.iter().map(|&n| w("vars", AcqOp::Step, n, 1000, 64)));
    out.extend(caps.iter().map(|&c| w("capacity", AcqOp::Step, 10, c, 64)));
    out.extend(
        batches
            .iter()
            .map(|&b| w("batch", AcqOp::Step, 10, 1000, b)),
    );
    out.extend(AcqOp::singles(100).map(|op| w("ops", op, 10, 1000, 64)));
    if !quick {
        out.push(w("large", AcqOp::Step, 50, 1000, 4096));
    }
    out
}

/// Inputs used to fill the ring: one sample per environment per call, from a seed.
fn fill_samples(config: &AcquisitionConfig, rng: &mut Rng) -> OwnedStep {
    OwnedStep::random(config, rng)
}

/// A state whose rings are full (capacity samples, then a few wrapped ones) and whose
/// features have moved off their defaults, built on the CPU.
pub fn filled_state(w: &AcqWorkload) -> AcquisitionState {
    let cfg = w.config();
    let mut cpu = CpuAcquisition::new(&cfg).expect("workload configs are valid");
    let mut rng = Rng::new(0x7e55e7a);
    for _ in 0..w.capacity + 3 {
        let s = fill_samples(&cfg, &mut rng);
        cpu.add_samples(&s.input().samples).expect("valid samples");
    }
    let s = fill_samples(&cfg, &mut rng);
    cpu.step(&s.input()).expect("valid step");
    cpu.state().clone()
}

/// The backend behind an [`AcqRunner`]: GPUs stay concrete so that kernel timing can
/// be switched on.
enum Backend {
    Host(Box<dyn AcquisitionBackend>),
    Gpu(Box<GpuAcquisition>),
}

/// A backend state ready to run one workload repeatedly.
pub struct AcqRunner {
    backend: Backend,
    inputs: Vec<OwnedStep>,
    next: usize,
    op: AcqOp,
    sync_ctx: Option<tessera_gpu::GpuContext>,
}

impl AcqRunner {
    /// Runs the operation once (on the GPU: enqueues it).
    pub fn run_once(&mut self) -> tessera_tensor::Result<()> {
        let input = &self.inputs[self.next % self.inputs.len()];
        self.next += 1;
        let b: &mut dyn AcquisitionBackend = match &mut self.backend {
            Backend::Host(b) => &mut **b,
            Backend::Gpu(g) => &mut **g,
        };
        match self.op {
            AcqOp::Step => b.step(&input.input()),
            AcqOp::AddSample => b.add_samples(&input.input().samples),
            AcqOp::UpdateFeatures => {
                b.update_mechanism_features(&input.observed, input.learning_rate)
            }
            AcqOp::Confidence => b.mechanism_confidence(),
            AcqOp::Progress => b.optimization_progress(),
            AcqOp::Coverage => b.exploration_coverage(),
            AcqOp::PolicyFeatures => b.policy_features(),
            AcqOp::Scores => b.acquisition_scores(input.exploration_weight),
            AcqOp::Select => b.select_intervention(),
            AcqOp::History(t) => b.history_tensor(t).map(|_| ()),
        }
    }

    /// Waits until the device has finished the queued work.
    pub fn sync(&self) -> tessera_tensor::Result<()> {
        (self.syncer())()
    }

    /// A closure that waits for the device, independent of `self`'s borrow.
    pub fn syncer(&self) -> impl Fn() -> tessera_tensor::Result<()> + use<> {
        let ctx = self.sync_ctx.clone();
        move || ctx.as_ref().map_or(Ok(()), |c| c.wait_idle())
    }

    /// The backend, e.g. to read results after timing.
    pub fn backend_mut(&mut self) -> &mut dyn AcquisitionBackend {
        match &mut self.backend {
            Backend::Host(b) => &mut **b,
            Backend::Gpu(g) => &mut **g,
        }
    }

    /// Median device time of the operation over `iters` runs, measured with GPU
    /// timestamp queries; `None` on the CPU or where the adapter has no timestamps.
    pub fn kernel_time_ns(&mut self, iters: u32) -> tessera_tensor::Result<Option<f64>> {
        let Backend::Gpu(g) = &mut self.backend else {
            return Ok(None);
        };
        if !g.enable_kernel_timing(iters) {
            return Ok(None);
        }
        for _ in 0..iters {
            self.run_once()?;
        }
        self.sync()?;
        let Backend::Gpu(g) = &mut self.backend else {
            return Ok(None);
        };
        let mut times = g.take_kernel_times()?;
        g.enable_kernel_timing(0);
        if times.is_empty() {
            return Ok(None);
        }
        times.sort_by(f64::total_cmp);
        Ok(Some(times[times.len() / 2]))
    }
}

/// Builds `w` on `backend` from a filled state. `None` when the backend does not run
/// this workload (the reference on large shapes).
pub fn prepare(
    w: &AcqWorkload,
    backend: &BenchBackend,
    filled: &AcquisitionState,
) -> tessera_tensor::Result<Option<(AcqRunner, u64)>> {
    let cfg = w.config();
    let (backend, bytes, sync_ctx) = match &backend.kind {
        BackendKind::Reference => {
            if !w.reference_affordable() {
                return Ok(None);
            }
            // The reference cannot load a state: replay the same fill.
            let mut r = ReferenceAcquisition::new(&cfg)?;
            let mut rng = Rng::new(0x7e55e7a);
            for _ in 0..w.capacity + 3 {
                r.add_samples(&fill_samples(&cfg, &mut rng).input().samples)?;
            }
            r.step(&fill_samples(&cfg, &mut rng).input())?;
            (Backend::Host(Box::new(r)), filled.bytes() as u64 * 2, None)
        }
        BackendKind::CpuScalar | BackendKind::CpuSimd => {
            let mut c = CpuAcquisition::from_state(filled.clone())?;
            c.set_simd(matches!(backend.kind, BackendKind::CpuSimd));
            (Backend::Host(Box::new(c)), filled.bytes() as u64, None)
        }
        BackendKind::GemmCrate | BackendKind::Libfann(_) | BackendKind::OpenBlas(_) => {
            return Ok(None);
        }
        BackendKind::Gpu(ctx) => {
            let g = GpuAcquisition::from_state(ctx, filled)?;
            let bytes = g.device_bytes();
            (Backend::Gpu(Box::new(g)), bytes, Some(ctx.clone()))
        }
    };
    let mut rng = Rng::new(w.capacity as u64 ^ 0x5eed);
    let inputs = (0..4).map(|_| OwnedStep::random(&cfg, &mut rng)).collect();
    Ok(Some((
        AcqRunner {
            backend,
            inputs,
            next: 0,
            op: w.op,
            sync_ctx,
        },
        bytes,
    )))
}

/// Runs the workload's operation once on `prepared` and on a CPU twin of the same
/// state and checks they agree (the whole state and every output): a benchmark of a
/// wrong result is worthless.
pub fn verify(
    w: &AcqWorkload,
    prepared: &mut AcqRunner,
    filled: &AcquisitionState,
) -> Result<(), String> {
    let mut twin = AcqRunner {
        backend: Backend::Host(Box::new(
            CpuAcquisition::from_state(filled.clone()).map_err(|e| e.to_string())?,
        )),
        inputs: prepared.inputs.clone(),
        next: prepared.next,
        op: w.op,
        sync_ctx: None,
    };
    let e = |err: tessera_tensor::TesseraError| err.to_string();
    prepared.run_once().map_err(e)?;
    twin.run_once().map_err(e)?;
    let (got, want) = (
        prepared.backend_mut().read_state().map_err(e)?,
        twin.backend_mut().read_state().map_err(e)?,
    );
    let close = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| parity::close(*x, *y))
    };
    if !close(&got.policy_features, &want.policy_features) || !close(&got.scores, &want.scores) {
        return Err(format!(
            "{}: outputs differ from the CPU backend",
            w.label()
        ));
    }
    parity::compare_state(&got, &want).map_err(|m| format!("{}: {m}", w.label()))?;
    Ok(())
}

/// Samples of one environment per step, for throughput (environment-steps/s).
pub fn items_per_iteration(w: &AcqWorkload) -> f64 {
    w.batch as f64
}

impl Workload for AcqWorkload {
    fn id(&self) -> String {
        AcqWorkload::id(self)
    }
    fn shape_key(&self) -> String {
        format!(
            "acq/{:?}/{}/{}/{}",
            self.op, self.n_vars, self.capacity, self.batch
        )
    }
    fn group(&self) -> &'static str {
        self.group
    }
    fn label(&self) -> String {
        AcqWorkload::label(self)
    }
    fn x(&self) -> f64 {
        match self.group {
            "vars" => self.n_vars as f64,
            "capacity" => self.capacity as f64,
            _ => self.batch as f64,
        }
    }
    fn unit(&self) -> &'static str {
        "env-steps"
    }
    fn items_per_iteration(&self) -> f64 {
        items_per_iteration(self)
    }
    /// The fused step's least traffic per environment: its inputs read, one ring row
    /// written, the mechanism features read and written, the per-variable marginals,
    /// confidences, counts and scores read and written, the policy features and the
    /// summary written. Its arithmetic is negligible beside that (not counted).
    fn cost(&self) -> Option<crate::cost::Cost> {
        if self.op != AcqOp::Step {
            return None;
        }
        let cfg = self.config();
        let (n, fd, pw) = (cfg.n_vars, cfg.feature_dim, cfg.policy_width());
        let words = (2 * n + 1 + n * fd) + (2 * n + 1) + 2 * n * fd + 8 * n + n * pw + 8;
        Some(crate::cost::Cost {
            bytes: 4.0 * (self.batch * words) as f64,
            flops: 0.0,
        })
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        Box::new(AcqFixture {
            w: *self,
            filled: filled_state(self),
        })
    }
}

struct AcqFixture {
    w: AcqWorkload,
    filled: AcquisitionState,
}

impl Fixture for AcqFixture {
    fn prepare(&self, backend: &BenchBackend) -> Result<Prepared, String> {
        match prepare(&self.w, backend, &self.filled) {
            Ok(Some((mut p, bytes))) => {
                verify(&self.w, &mut p, &self.filled)?;
                Ok(Prepared::Ready(Box::new(p), bytes))
            }
            Ok(None) if matches!(backend.kind, BackendKind::Reference) => {
                Ok(Prepared::NotApplicable(
                    "the f64 reference rescans the ring every step: small shapes only",
                ))
            }
            Ok(None) => Ok(Prepared::NotApplicable("not an acquisition backend")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Runner for AcqRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        AcqRunner::run_once(self)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        AcqRunner::sync(self)
    }
    fn kernel_time_ns(&mut self, iters: u32) -> tessera_tensor::Result<Option<f64>> {
        AcqRunner::kernel_time_ns(self, iters)
    }
}
