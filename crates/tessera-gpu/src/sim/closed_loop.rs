//! The closed loop resident on one device: a step is one submission that chooses the
//! interventions (`loop_prepare`), samples them ([`GpuSim`]), updates and summarises
//! the posterior ([`GpuPosterior`]), turns the summary into the acquisition state's
//! inputs (`loop_outcome`), sets the posterior and runs the fused acquisition step
//! ([`GpuAcquisition`]), with nothing uploaded (unless the caller gives the values)
//! and nothing read back. Faults a host step would refuse (a sample beyond f32 or
//! [`MAX_MAGNITUDE`], a posterior the precision cannot score) are recorded on the
//! device and reported by the next read.

use bytemuck::{Pod, Zeroable};
use tessera_tensor::acquisition::{AcquisitionBackend, AcquisitionConfig, MAX_MAGNITUDE};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::sim::closed_loop::{
    ClosedLoopBackend, LoopConfig, PolicyKeys, Selection, ValuePolicy, empty_summary,
    random_choices, validate_values,
};
use tessera_tensor::sim::{PosteriorConfig, PosteriorSummary, ScmBatch};

use super::{GpuPosterior, GpuSim};
use crate::kernels::{KernelSet, KernelSetSpec};
use crate::readback::read_buffers;
use crate::{DeviceStepInputs, GpuAcquisition, GpuContext};

/// WGSL sources of the loop's first stage.
pub const PREPARE_SOURCES: &[(&str, &str)] = &[
    ("philox.wgsl", include_str!("../../shaders/sim/philox.wgsl")),
    (
        "loop_params.wgsl",
        include_str!("../../shaders/sim/loop_params.wgsl"),
    ),
    (
        "loop_prepare.wgsl",
        include_str!("../../shaders/sim/loop_prepare.wgsl"),
    ),
];

/// WGSL sources of the loop's outcome stage.
pub const OUTCOME_SOURCES: &[(&str, &str)] = &[
    (
        "loop_params.wgsl",
        include_str!("../../shaders/sim/loop_params.wgsl"),
    ),
    (
        "loop_outcome.wgsl",
        include_str!("../../shaders/sim/loop_outcome.wgsl"),
    ),
];

/// Invocations per workgroup of both loop kernels.
const WORKGROUP: u32 = 64;

/// Fault bits of `loop_outcome.wgsl`.
const FAULT_SAMPLES: u32 = 1;
const FAULT_UNRESOLVED: u32 = 2;

/// Mirrors `LoopParams` in `shaders/sim/loop_params.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct LoopParams {
    batch: u32,
    n_vars: u32,
    flag_words: u32,
    selection: u32,
    value_policy: u32,
    first_env: u32,
    shard_envs: u32,
    sim_groups_x: u32,
    sim_key0: u32,
    sim_key1: u32,
    choice_key0: u32,
    choice_key1: u32,
    value_key0: u32,
    value_key1: u32,
    lo: f32,
    hi_below: f32,
    hi: f32,
    fixed_value: f32,
    _pad: [u32; 2],
}

/// `value_policy` of [`LoopParams`] for the caller's values.
const CALLER_VALUES: u32 = 2;

fn kernel_set<'a>(
    ctx: &'a GpuContext,
    cell: &'a std::sync::OnceLock<Result<KernelSet>>,
    label: &'static str,
    sources: &[(&str, &str)],
    storage_read_only: &[bool],
    entry: &'static str,
) -> Result<&'a KernelSet> {
    cell.get_or_init(|| {
        KernelSet::build(
            ctx,
            KernelSetSpec {
                label,
                source: crate::kernels::join(sources),
                dynamic_uniform: false,
                storage_read_only,
                entry_points: &[entry],
                workgroup_invocations: WORKGROUP,
            },
        )
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn prepare_kernels(ctx: &GpuContext) -> Result<&KernelSet> {
    kernel_set(
        ctx,
        &ctx.inner.loop_prepare,
        "tessera loop prepare",
        PREPARE_SOURCES,
        &[true, true, true, true, false, false, false],
        "loop_prepare",
    )
}

fn outcome_kernels(ctx: &GpuContext) -> Result<&KernelSet> {
    kernel_set(
        ctx,
        &ctx.inner.loop_outcome,
        "tessera loop outcome",
        OUTCOME_SOURCES,
        &[
            true, true, true, true, false, false, false, false, false, false, false,
        ],
        "loop_outcome",
    )
}

/// The loop's own device buffers.
struct LoopBuffers {
    target_vars: wgpu::Buffer,
    clock: wgpu::Buffer,
    caller_values: wgpu::Buffer,
    flags: wgpu::Buffer,
    sim_params: wgpu::Buffer,
    fault: wgpu::Buffer,
    outcomes: wgpu::Buffer,
    best: wgpu::Buffer,
    marginals: wgpu::Buffer,
    entropy: wgpu::Buffer,
    observed: wgpu::Buffer,
}

/// The GPU implementation of [`ClosedLoopBackend`], resident on one device.
pub struct GpuClosedLoop {
    ctx: GpuContext,
    config: LoopConfig,
    keys: PolicyKeys,
    sim: GpuSim,
    posterior: GpuPosterior,
    acquisition: GpuAcquisition,
    buffers: LoopBuffers,
    /// Per acquisition shard: `(environments, [policy values, caller's values])`.
    prepare_groups: Vec<(u32, [wgpu::BindGroup; 2])>,
    outcome_group: wgpu::BindGroup,
    sim_grid: (u32, u32),
    step: u32,
}

impl std::fmt::Debug for GpuClosedLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuClosedLoop")
            .field("context", &self.ctx)
            .field("batch", &self.scm().batch())
            .field("n_vars", &self.scm().n_vars())
            .field("step", &self.step)
            .finish()
    }
}

impl GpuClosedLoop {
    /// The loop for `scm`'s environments on `ctx`'s device: the simulator, the
    /// posterior (f64 where the device has `SHADER_F64`), the acquisition state
    /// maximising each environment's target and a first choice of interventions, and
    /// the loop's buffers, all uploaded once.
    pub fn new(ctx: &GpuContext, scm: &ScmBatch, config: &LoopConfig) -> Result<Self> {
        config.validate()?;
        let (b, d) = (scm.batch(), scm.n_vars());
        let mut posterior =
            GpuPosterior::new(ctx, &PosteriorConfig::for_scm(scm, config.max_parents))?;
        let mut acquisition = GpuAcquisition::new(
            ctx,
            &AcquisitionConfig::batched(d, config.capacity, scm.targets().to_vec()),
        )?;
        acquisition.optimization_progress()?;
        acquisition.exploration_coverage()?;
        acquisition.policy_features()?;
        acquisition.acquisition_scores(config.exploration_weight)?;
        acquisition.select_intervention()?;
        let mut sim = GpuSim::new(ctx, scm)?;
        let sim_grid = sim.prepare_single_rows()?;
        posterior.prepare_single_rows()?;
        if (b as u64).div_ceil(u64::from(WORKGROUP))
            > u64::from(ctx.limits().max_compute_workgroups_per_dimension)
        {
            return Err(TesseraError::DeviceLimit {
                what: "environments of the closed loop (64 per workgroup, one dispatch row)",
                needed: b as u64,
                limit: u64::from(ctx.limits().max_compute_workgroups_per_dimension)
                    * u64::from(WORKGROUP),
            });
        }

        let words = d.div_ceil(32);
        let storage = wgpu::BufferUsages::STORAGE;
        let copied = storage | wgpu::BufferUsages::COPY_SRC;
        let zeroed = |label, bytes: usize, usage| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let init = |label, contents: &[u8], usage| ctx.buffer_init(label, contents, usage);
        let buffers = LoopBuffers {
            target_vars: init(
                "tessera loop targets",
                bytemuck::cast_slice(scm.targets()),
                storage,
            ),
            clock: zeroed("tessera loop clock", 4, storage),
            caller_values: zeroed(
                "tessera loop values",
                b * 4,
                storage | wgpu::BufferUsages::COPY_DST,
            ),
            flags: zeroed("tessera loop flags", b * words * 4, copied),
            sim_params: zeroed("tessera loop sim params", 32, copied),
            fault: init(
                "tessera loop fault",
                bytemuck::cast_slice(&[0u32, u32::MAX, 0, 0]),
                copied,
            ),
            outcomes: zeroed("tessera loop outcomes", b * 4, copied),
            best: init(
                "tessera loop best",
                bytemuck::cast_slice(&vec![f32::NEG_INFINITY; b]),
                copied,
            ),
            marginals: zeroed("tessera loop marginals", b * d * 4, copied),
            entropy: zeroed("tessera loop entropy", b * 4, copied),
            observed: zeroed("tessera loop observed", b * d * 3 * 4, copied),
        };

        let (lo, hi, fixed_value, value_policy) = match config.values {
            ValuePolicy::Fixed(v) => (0.0, 0.0, v, 0),
            ValuePolicy::Uniform { lo, hi, .. } => (lo, hi, 0.0, 1),
        };
        let sim_key = scm.noise_key();
        let keys = PolicyKeys::new(config, scm);
        let params = LoopParams {
            batch: b as u32,
            n_vars: d as u32,
            flag_words: words as u32,
            selection: match config.selection {
                Selection::Acquisition => 0,
                Selection::Random { .. } => 1,
            },
            value_policy,
            first_env: 0,
            shard_envs: b as u32,
            sim_groups_x: sim_grid.0,
            sim_key0: sim_key[0],
            sim_key1: sim_key[1],
            choice_key0: keys.choice[0],
            choice_key1: keys.choice[1],
            value_key0: keys.value[0],
            value_key1: keys.value[1],
            lo,
            hi_below: hi.next_down(),
            hi,
            fixed_value,
            _pad: [0; 2],
        };
        let uniform = |p: &LoopParams| {
            init(
                "tessera loop params",
                bytemuck::bytes_of(p),
                wgpu::BufferUsages::UNIFORM,
            )
        };
        let (_, sim_interventions, sim_samples) = sim.buffers();
        let prepare_layout = &prepare_kernels(ctx)?.layout;
        let mut outcome_params = None;
        let prepare_groups = acquisition
            .shard_summaries()
            .map(|(first_env, envs, summaries)| {
                let shard = LoopParams {
                    first_env: first_env as u32,
                    shard_envs: envs as u32,
                    ..params
                };
                let caller = LoopParams {
                    value_policy: CALLER_VALUES,
                    ..shard
                };
                let groups = [shard, caller].map(|p| {
                    let p = uniform(&p);
                    let group = ctx.bind_buffers(
                        "tessera loop prepare",
                        prepare_layout,
                        &[
                            &p,
                            summaries,
                            &buffers.target_vars,
                            &buffers.clock,
                            &buffers.caller_values,
                            sim_interventions,
                            &buffers.flags,
                            &buffers.sim_params,
                        ],
                    );
                    outcome_params.get_or_insert(p);
                    group
                });
                (envs as u32, groups)
            })
            .collect();
        let (_, _, post_summary) = posterior.buffers();
        // loop_outcome reads only the batch and the variable count of its params, which
        // every shard's uniform holds: it shares the first one.
        let outcome_group = ctx.bind_buffers(
            "tessera loop outcome",
            &outcome_kernels(ctx)?.layout,
            &[
                outcome_params.as_ref().expect("a batch has a shard"),
                sim_samples,
                &buffers.target_vars,
                post_summary,
                &buffers.sim_params,
                &buffers.clock,
                &buffers.fault,
                &buffers.outcomes,
                &buffers.best,
                &buffers.marginals,
                &buffers.entropy,
                &buffers.observed,
            ],
        );
        ctx.check()?;
        Ok(Self {
            ctx: ctx.clone(),
            config: config.clone(),
            keys,
            sim,
            posterior,
            acquisition,
            buffers,
            prepare_groups,
            outcome_group,
            sim_grid,
            step: 0,
        })
    }

    /// Records and submits one step; `caller_values` selects the prepare bind groups
    /// that read the values the caller uploaded.
    fn run_step(&mut self, caller_values: bool) -> Result<()> {
        self.ctx.check()?;
        let (b, d) = (self.scm().batch() as u64, self.scm().n_vars() as u64);
        let _span =
            tracing::debug_span!("gpu_closed_loop_step", batch = b, step = self.step).entered();
        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("tessera closed loop step"),
                });
        {
            let prepare = prepare_kernels(&self.ctx)?.get("loop_prepare");
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tessera loop prepare"),
                timestamp_writes: None,
            });
            self.ctx.count_pass();
            pass.set_pipeline(prepare);
            for (envs, groups) in &self.prepare_groups {
                self.ctx.count_dispatch();
                pass.set_bind_group(0, &groups[usize::from(caller_values)], &[]);
                pass.dispatch_workgroups(envs.div_ceil(WORKGROUP), 1, 1);
            }
        }
        // The sampling kernel's params for this step's draw, written by loop_prepare.
        encoder.copy_buffer_to_buffer(&self.buffers.sim_params, 0, self.sim.buffers().0, 0, 32);
        self.sim.record_sample(&mut encoder, self.sim_grid)?;
        {
            let (_, sim_interventions, sim_samples) = self.sim.buffers();
            let (post_samples, post_interventions, _) = self.posterior.buffers();
            encoder.copy_buffer_to_buffer(sim_samples, 0, post_samples, 0, b * d * 4);
            encoder.copy_buffer_to_buffer(sim_interventions, 0, post_interventions, 0, b * d * 8);
        }
        self.posterior.record_single_row_update(&mut encoder)?;
        {
            let outcome = outcome_kernels(&self.ctx)?.get("loop_outcome");
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tessera loop outcome"),
                timestamp_writes: None,
            });
            self.ctx.count_pass();
            self.ctx.count_dispatch();
            pass.set_pipeline(outcome);
            pass.set_bind_group(0, &self.outcome_group, &[]);
            pass.dispatch_workgroups((b as u32).div_ceil(WORKGROUP), 1, 1);
        }
        let buffers = &self.buffers;
        self.acquisition.record_set_posterior_on_device(
            &mut encoder,
            &buffers.marginals,
            &buffers.entropy,
        )?;
        self.acquisition.record_step_on_device(
            &mut encoder,
            &DeviceStepInputs {
                values: self.sim.buffers().2,
                intervened: &buffers.flags,
                targets: &buffers.outcomes,
                observed: &buffers.observed,
                learning_rate: self.config.learning_rate,
                exploration_weight: self.config.exploration_weight,
            },
        )?;
        self.ctx.submit(encoder.finish());
        self.step += 1;
        Ok(())
    }

    /// The error for a fault a step recorded on the device, if any.
    fn check_fault(&self) -> Result<()> {
        let fault: Vec<u32> = read_buffers(&self.ctx, &[(&self.buffers.fault, 8)])?;
        // The device records the draw number (from 0); errors count steps from 1.
        let step = fault[1] as usize + 1;
        if fault[0] & FAULT_SAMPLES != 0 {
            return Err(TesseraError::Diverged {
                what: "closed-loop samples (a value overflowed f32 or passed the acquisition bound MAX_MAGNITUDE; the state after that step is not meaningful)",
                step,
                value: f64::from(MAX_MAGNITUDE),
            });
        }
        if fault[0] & FAULT_UNRESOLVED != 0 {
            return Err(TesseraError::Diverged {
                what: "closed-loop posterior: scores this device's f32 cannot resolve to 0.05 nats (no SHADER_F64); run the loop on the CPU",
                step,
                value: f64::INFINITY,
            });
        }
        Ok(())
    }

    /// Reads a `[B]` buffer of the loop after checking for faults.
    fn read_batch<T: Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>> {
        self.check_fault()?;
        let bytes = (self.scm().batch() * std::mem::size_of::<T>()) as u64;
        read_buffers(&self.ctx, &[(buffer, bytes)])
    }
}

impl ClosedLoopBackend for GpuClosedLoop {
    fn scm(&self) -> &ScmBatch {
        use tessera_tensor::sim::SimBackend;
        self.sim.scm()
    }

    fn steps(&self) -> u32 {
        self.step
    }

    fn step(&mut self) -> Result<()> {
        self.run_step(false)
    }

    fn step_with_values(&mut self, values: &[f32]) -> Result<()> {
        validate_values(self.scm(), values)?;
        self.ctx
            .write_buffer(&self.buffers.caller_values, 0, bytemuck::cast_slice(values));
        self.run_step(true)
    }

    fn chosen(&mut self) -> Result<Vec<u32>> {
        match self.config.selection {
            Selection::Acquisition => {
                self.check_fault()?;
                Ok(self
                    .acquisition
                    .read_summaries()?
                    .iter()
                    .map(|s| s.selected)
                    .collect())
            }
            // The draw of the next step, computed on the host as loop_prepare will.
            Selection::Random { .. } => Ok(random_choices(self.keys.choice, self.scm(), self.step)),
        }
    }

    fn posterior(&mut self) -> Result<PosteriorSummary> {
        self.check_fault()?;
        if self.step == 0 {
            return Ok(empty_summary(self.scm().batch(), self.scm().n_vars()));
        }
        self.posterior.read_summary()
    }

    fn best_values(&mut self) -> Result<Vec<f32>> {
        self.read_batch(&self.buffers.best)
    }

    fn sync(&mut self) -> Result<()> {
        self.ctx.wait_idle()
    }
}
