//! The CPU acquisition backend: the state lives in host memory, environments run in
//! parallel with rayon when the batch is large enough to pay for it, and the element
//! loops run under pulp's runtime SIMD dispatch.

mod kernels;
mod ops;

use kernels::{Dims, EnvMut};
use pulp::Arch;
use rayon::prelude::*;
use tessera_tensor::acquisition::{
    AcquisitionBackend, AcquisitionConfig, AcquisitionState, HISTORY_CHANNELS, Samples, StepInput,
    StepSummary, validate_exploration_weight, validate_history_len, validate_observed,
    validate_posterior,
};
use tessera_tensor::error::Result;

use crate::dispatch::{Kernel, SimdLevel};

/// The next per-environment chunk: every array holds exactly one per environment.
fn next<T>(chunks: &mut impl Iterator<Item = T>) -> T {
    chunks.next().expect("one chunk per environment")
}

/// Below this many element-operations per call the batch runs on the calling thread:
/// rayon's fork-join costs a few microseconds, more than a small step takes.
const PARALLEL_MIN_WORK: usize = 1 << 15;

/// Environments per run of the parallel step (each prefetches the next one's rows).
const STEP_RUN: usize = 32;

/// A batch of acquisition environments on the CPU.
#[derive(Debug, Clone)]
pub struct CpuAcquisition {
    state: AcquisitionState,
    arch: Arch,
}

impl CpuAcquisition {
    /// A fresh batch with the spec's defaults, at [`CpuAcquisition::default_level`].
    /// Fails on an invalid config.
    pub fn new(config: &AcquisitionConfig) -> Result<Self> {
        Ok(Self::hold(
            AcquisitionState::new(config)?,
            Self::default_level().arch(),
        ))
    }

    /// Like [`CpuAcquisition::new`], pinned to `level`; an error if this CPU lacks it.
    pub fn with_level(config: &AcquisitionConfig, level: SimdLevel) -> Result<Self> {
        let arch = level.check_available()?.arch();
        Ok(Self::hold(AcquisitionState::new(config)?, arch))
    }

    /// Takes a valid state at `arch`. The per-environment arrays ask for huge pages:
    /// a step touches one ring row per environment, scattered over the whole state
    /// (1.6 GB at 4096 x 50 x 1000), and with 4 KiB pages each row cost a TLB miss and
    /// a page walk (`docs/benchmarks.md`).
    fn hold(mut state: AcquisitionState, arch: Arch) -> Self {
        let s = &mut state;
        crate::memory::prefer_huge_pages(&mut s.values);
        crate::memory::prefer_huge_pages(&mut s.interventions);
        crate::memory::prefer_huge_pages(&mut s.targets);
        crate::memory::prefer_huge_pages(&mut s.prev_best_window);
        crate::memory::prefer_huge_pages(&mut s.mechanism_features);
        crate::memory::prefer_huge_pages(&mut s.policy_features);
        Self { state, arch }
    }

    /// The level a batch runs at unless pinned: [`SimdLevel::in_use`], at most AVX2.
    /// These kernels are short scalar loops per environment; at AVX-512 they measured
    /// no faster, and `select` twice as slow (`docs/benchmarks.md`).
    pub fn default_level() -> SimdLevel {
        SimdLevel::in_use().min(SimdLevel::Avx2)
    }

    /// Like [`CpuAcquisition::new`] but with SIMD dispatch disabled (the scalar code
    /// path of the same kernels): a baseline that shows what the SIMD path buys.
    pub fn new_scalar(config: &AcquisitionConfig) -> Result<Self> {
        Ok(Self::hold(AcquisitionState::new(config)?, Arch::Scalar))
    }

    /// The instruction set the kernels are dispatched to (`"scalar"`, `"V3"` for
    /// AVX2+FMA, `"V4"` for AVX-512, `"Neon"`, ...).
    pub fn simd_level(&self) -> String {
        let name = format!("{:?}", self.arch);
        name.split('(').next().unwrap_or("scalar").to_lowercase()
    }

    /// Switches SIMD dispatch off (`false`) or back to what the CPU supports.
    pub fn set_simd(&mut self, enabled: bool) {
        self.arch = if enabled {
            Self::default_level().arch()
        } else {
            Arch::Scalar
        };
    }

    /// Continues from an existing host state (a checkpoint, or one read back from
    /// another backend). Fails, naming the field, on a state that breaks an invariant
    /// ([`AcquisitionState::validate`]).
    pub fn from_state(state: AcquisitionState) -> Result<Self> {
        state.validate()?;
        Ok(Self::hold(state, Self::default_level().arch()))
    }

    /// The state, borrowed: no copy is made.
    pub fn state(&self) -> &AcquisitionState {
        &self.state
    }

    fn dims(&self) -> Dims {
        let c = &self.state.config;
        Dims {
            n: c.n_vars,
            cap: c.capacity,
            fd: c.feature_dim,
            width: c.policy_width(),
            objective: c.objective,
        }
    }

    /// Runs `op((env_index, env, args))` over every environment, in parallel when the
    /// batch holds enough work (`work_per_env` element-operations each), under SIMD
    /// dispatch. `op` is one of the `#[inline(always)]` functions of [`ops`].
    fn for_each_env<A, K>(&mut self, work_per_env: usize, args: A, op: K)
    where
        A: Copy + Send + Sync,
        K: for<'e> Fn((usize, EnvMut<'e>, A)) + Copy + Send + Sync,
    {
        let arch = self.arch;
        let batch = self.state.config.batch();
        if batch > 1 && batch * work_per_env >= PARALLEL_MIN_WORK {
            self.par_envs()
                .enumerate()
                .for_each(|(b, env)| arch.dispatch(Kernel(op, (b, env, args))));
        } else {
            // One dispatch for the whole batch: the feature check is paid once.
            let envs = self.split_envs();
            arch.dispatch(Kernel(ops::each, (envs, args, op)));
        }
    }

    /// One mutable view per environment as a parallel iterator over the state's
    /// arrays zipped together: nothing is allocated per call (collecting the views of
    /// 4096 environments took about 0.8 MB of fresh pages a step).
    fn par_envs(&mut self) -> impl IndexedParallelIterator<Item = EnvMut<'_>> {
        let d = self.dims();
        let s = &mut self.state;
        let ring = d.cap * d.n;
        (
            s.values.par_chunks_mut(ring),
            s.interventions.par_chunks_mut(ring),
            s.targets.par_chunks_mut(d.cap),
            s.scalars.par_iter_mut(),
            s.mechanism_features.par_chunks_mut(d.n * d.fd),
            s.marginal_probs.par_chunks_mut(d.n),
            s.confidence.par_chunks_mut(d.n),
            s.intervention_counts.par_chunks_mut(d.n),
            s.prev_best_window.par_chunks_mut(d.cap),
            s.summaries.par_iter_mut(),
            s.policy_features.par_chunks_mut(d.n * d.width),
            s.scores.par_chunks_mut(d.n),
        )
            .into_par_iter()
            .map(EnvMut::from)
    }

    /// Splits the state into one mutable view per environment.
    fn split_envs(&mut self) -> Vec<EnvMut<'_>> {
        let d = self.dims();
        let s = &mut self.state;
        let ring = d.cap * d.n;
        let mut values = s.values.chunks_mut(ring);
        let mut interventions = s.interventions.chunks_mut(ring);
        let mut targets = s.targets.chunks_mut(d.cap);
        let mut scalars = s.scalars.iter_mut();
        let mut features = s.mechanism_features.chunks_mut(d.n * d.fd);
        let mut marginal = s.marginal_probs.chunks_mut(d.n);
        let mut confidence = s.confidence.chunks_mut(d.n);
        let mut counts = s.intervention_counts.chunks_mut(d.n);
        let mut prev_window = s.prev_best_window.chunks_mut(d.cap);
        let mut summaries = s.summaries.iter_mut();
        let mut policy = s.policy_features.chunks_mut(d.n * d.width);
        let mut scores = s.scores.chunks_mut(d.n);
        (0..s.config.target_indices.len())
            .map(|_| {
                EnvMut::from((
                    next(&mut values),
                    next(&mut interventions),
                    next(&mut targets),
                    next(&mut scalars),
                    next(&mut features),
                    next(&mut marginal),
                    next(&mut confidence),
                    next(&mut counts),
                    next(&mut prev_window),
                    next(&mut summaries),
                    next(&mut policy),
                    next(&mut scores),
                ))
            })
            .collect()
    }
}

impl AcquisitionBackend for CpuAcquisition {
    fn config(&self) -> &AcquisitionConfig {
        &self.state.config
    }

    fn add_samples(&mut self, samples: &Samples<'_>) -> Result<()> {
        samples.validate(&self.state.config)?;
        let d = self.dims();
        self.for_each_env(d.n, (d, samples), ops::add_sample);
        Ok(())
    }

    fn set_posterior(&mut self, marginal_probs: &[f32], uncertainty_bits: &[f32]) -> Result<()> {
        validate_posterior(&self.state.config, marginal_probs, uncertainty_bits)?;
        self.state.marginal_probs.copy_from_slice(marginal_probs);
        for (s, &h) in self.state.scalars.iter_mut().zip(uncertainty_bits) {
            s.uncertainty_bits = h;
        }
        Ok(())
    }

    fn update_mechanism_features(&mut self, observed: &[f32], learning_rate: f32) -> Result<()> {
        validate_observed(&self.state.config, observed, learning_rate)?;
        let d = self.dims();
        let args = (d, observed, learning_rate);
        self.for_each_env(d.n * d.fd, args, ops::update_features);
        Ok(())
    }

    fn mechanism_confidence(&mut self) -> Result<()> {
        let d = self.dims();
        self.for_each_env(d.n, d, ops::confidence);
        Ok(())
    }

    fn optimization_progress(&mut self) -> Result<()> {
        let d = self.dims();
        self.for_each_env(16, d, ops::progress);
        Ok(())
    }

    fn exploration_coverage(&mut self) -> Result<()> {
        let d = self.dims();
        self.for_each_env(d.n, d, ops::coverage);
        Ok(())
    }

    fn policy_features(&mut self) -> Result<()> {
        let d = self.dims();
        self.for_each_env(d.n * d.width, d, ops::policy_features);
        Ok(())
    }

    fn acquisition_scores(&mut self, exploration_weight: f32) -> Result<()> {
        validate_exploration_weight(exploration_weight)?;
        let d = self.dims();
        let args = (d, exploration_weight);
        self.for_each_env(d.n, args, ops::scores);
        Ok(())
    }

    fn select_intervention(&mut self) -> Result<()> {
        let d = self.dims();
        self.for_each_env(d.n, (), ops::select);
        Ok(())
    }

    fn step(&mut self, input: &StepInput<'_>) -> Result<()> {
        input.validate(&self.state.config)?;
        let d = self.dims();
        // One pass per environment: its data stays in cache across all eight stages.
        let work = d.n * (d.width + d.fd + 4);
        let batch = self.state.config.batch();
        if batch > 1 && batch * work >= PARALLEL_MIN_WORK {
            // Runs of environments, so each can prefetch its successor's ring rows.
            let arch = self.arch;
            self.par_envs()
                .enumerate()
                .chunks(STEP_RUN)
                .for_each(|run| arch.dispatch(Kernel(ops::step_run, (run, (d, input)))));
        } else {
            self.for_each_env(work, (d, input), ops::step);
        }
        Ok(())
    }

    fn history_tensor(&mut self, t: usize) -> Result<Vec<f32>> {
        validate_history_len(&self.state.config, t)?;
        let d = self.dims();
        let per_env = t * d.n * HISTORY_CHANNELS;
        let mut out = vec![0.0; self.state.config.batch() * per_env];
        let arch = self.arch;
        let work = |(e, chunk): (EnvMut<'_>, &mut [f32])| {
            arch.dispatch(Kernel(ops::history, (d, e, t, chunk)))
        };
        if self.state.config.batch() > 1 && out.len() >= PARALLEL_MIN_WORK {
            self.par_envs()
                .zip(out.par_chunks_mut(per_env))
                .for_each(work);
        } else {
            let envs = self.split_envs();
            envs.into_iter().zip(out.chunks_mut(per_env)).for_each(work);
        }
        Ok(out)
    }

    fn read_confidence(&mut self) -> Result<Vec<f32>> {
        Ok(self.state.confidence.clone())
    }

    fn read_summaries(&mut self) -> Result<Vec<StepSummary>> {
        Ok(self.state.summaries.clone())
    }

    fn read_policy_features(&mut self) -> Result<Vec<f32>> {
        Ok(self.state.policy_features.clone())
    }

    fn read_scores(&mut self) -> Result<Vec<f32>> {
        Ok(self.state.scores.clone())
    }

    fn read_state(&mut self) -> Result<AcquisitionState> {
        Ok(self.state.clone())
    }
}
