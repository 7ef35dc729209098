//! The GPU acquisition backend: the batch's state stays resident in device buffers,
//! each operation is one submission for the whole batch, and data comes back only
//! through the `read_*` methods.
//!
//! A step's inputs go up in four planes per shard (values, intervention flags as
//! bits, targets, observed features), each written straight from the caller's slice
//! (the flags packed into the mapped upload), with no host packing buffer; or, from
//! [`GpuAcquisition::step_on_device`], copied on the device from buffers a simulator
//! or a policy network left there, with nothing uploaded at all.

mod pipelines;

use bytemuck::{Pod, Zeroable};
use tessera_tensor::acquisition::{
    AcquisitionBackend, AcquisitionConfig, AcquisitionState, EnvScalars, HISTORY_CHANNELS, Samples,
    StepInput, StepSummary, validate_exploration_weight, validate_history_len,
    validate_learning_rate, validate_observed, validate_posterior,
};
use tessera_tensor::error::{Result, TesseraError};

use crate::kernels::KernelSet;
use pipelines::{Kernel, pipelines};
pub use pipelines::{SOURCES as WGSL_SOURCES, module_source as wgsl_module_source};

use crate::GpuContext;
use crate::readback::read_buffers;
use crate::timer::KernelTimer;

/// Mirrors `Params` in `shaders/acquisition/common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Params {
    n_vars: u32,
    capacity: u32,
    feature_dim: u32,
    policy_width: u32,
    input_stride: u32,
    objective: u32,
    history_len: u32,
    env_offset: u32,
    learning_rate: f32,
    exploration_weight: f32,
    neg_inf: f32,
    shard_envs: u32,
}

/// Binding numbers of the acquisition bind group (see common.wgsl).
mod binding {
    pub const SCALARS: usize = 1;
    pub const VALUES: usize = 2;
    pub const INTERVENTIONS: usize = 3;
    pub const TARGETS: usize = 4;
    pub const WINDOW: usize = 5;
    pub const FEATURES: usize = 6;
    pub const MARGINAL: usize = 7;
    pub const CONFIDENCE: usize = 8;
    pub const COUNTS: usize = 9;
    pub const INPUTS: usize = 10;
    pub const SUMMARIES: usize = 11;
    pub const POLICY: usize = 12;
    pub const SCORES: usize = 13;
    pub const HISTORY: usize = 14;
}

/// The planes of a step's inputs (see `inputs` in common.wgsl), each holding
/// `shard_envs` environments.
#[derive(Debug, Clone, Copy)]
enum Plane {
    /// `[E, n]` values (set_posterior: marginal probabilities).
    Values,
    /// `[E, w]` intervention flags, 32 per word.
    Flags,
    /// `[E]` targets (set_posterior: entropies).
    Targets,
    /// `[E, n, fd]` observed mechanism features.
    Observed,
}

/// Words of intervention flags per environment: one bit per variable.
fn flag_words(n_vars: usize) -> usize {
    n_vars.div_ceil(32)
}

/// The flag words of `[envs, n_vars]` intervention flags, in order: variable `j` of an
/// environment in bit `j % 32` of its word `j / 32`.
fn flag_bits(intervened: &[bool], n_vars: usize) -> impl Iterator<Item = u32> + '_ {
    intervened.chunks(n_vars.max(1)).flat_map(|env| {
        env.chunks(32).map(|bits| {
            bits.iter()
                .enumerate()
                .fold(0u32, |word, (i, &b)| word | (u32::from(b) << i))
        })
    })
}

/// `[B, n_vars]` intervention flags as the bit words [`GpuAcquisition::step_on_device`]
/// reads: `[B, ceil(n_vars / 32)]`, variable `j` in bit `j % 32` of word `j / 32`.
pub fn pack_intervention_flags(intervened: &[bool], n_vars: usize) -> Vec<u32> {
    flag_bits(intervened, n_vars).collect()
}

/// A step's inputs already on the device that holds the state, each a buffer of the
/// whole batch (usage `COPY_SRC`): what a simulator or a policy network on the same
/// device produced. The values are not checked (reading them would cost the round
/// trip this avoids): they must be finite and within
/// [`MAX_MAGNITUDE`](tessera_tensor::acquisition::MAX_MAGNITUDE), as the host path
/// enforces.
#[derive(Debug, Clone, Copy)]
pub struct DeviceStepInputs<'a> {
    /// `[B, n_vars]` f32 sample values.
    pub values: &'a wgpu::Buffer,
    /// `[B, ceil(n_vars / 32)]` u32 words of intervention flags
    /// ([`pack_intervention_flags`]).
    pub intervened: &'a wgpu::Buffer,
    /// `[B]` f32 outcomes.
    pub targets: &'a wgpu::Buffer,
    /// `[B, n_vars, feature_dim]` f32 observed mechanism features.
    pub observed: &'a wgpu::Buffer,
    /// Mechanism-feature learning rate, as in [`StepInput`].
    pub learning_rate: f32,
    /// Exploration weight, as in [`StepInput`].
    pub exploration_weight: f32,
}

/// A contiguous range of environments with its own buffers: a batch larger than the
/// device's binding limits is split into shards, all dispatched in one submission.
struct Shard {
    first_env: usize,
    envs: usize,
    /// Indexed by binding number; index 0 (the uniform) is unused.
    buffers: Vec<wgpu::Buffer>,
    bind_group: wgpu::BindGroup,
    /// Bytes the history buffer was allocated with.
    history_bytes: u64,
}

/// A batch of acquisition environments resident on a GPU.
pub struct GpuAcquisition {
    ctx: GpuContext,
    config: AcquisitionConfig,
    params: Params,
    /// The params the device holds (uploaded again only when they change).
    uploaded_params: Params,
    params_buffer: wgpu::Buffer,
    shards: Vec<Shard>,
    /// Timestamp queries around dispatches, when kernel timing is on.
    timer: Option<KernelTimer>,
}

impl std::fmt::Debug for GpuAcquisition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuAcquisition")
            .field("config", &self.config)
            .field("shards", &self.shards.len())
            .field("context", &self.ctx)
            .finish()
    }
}

/// Elements of one array per environment.
fn per_env_elems(c: &AcquisitionConfig, input_stride: usize, b: usize) -> usize {
    let (n, cap) = (c.n_vars, c.capacity);
    match b {
        binding::SCALARS | binding::SUMMARIES => 8,
        binding::VALUES | binding::INTERVENTIONS => cap * n,
        binding::TARGETS | binding::WINDOW => cap,
        binding::FEATURES => n * c.feature_dim,
        binding::MARGINAL | binding::CONFIDENCE | binding::COUNTS | binding::SCORES => n,
        binding::INPUTS => input_stride,
        binding::POLICY => n * c.policy_width(),
        _ => 0,
    }
}

impl GpuAcquisition {
    /// A fresh batch with the spec's defaults, uploaded to the device. Fails on an
    /// invalid config, or when one environment does not fit the device's limits.
    pub fn new(ctx: &GpuContext, config: &AcquisitionConfig) -> Result<Self> {
        // A fresh state holds its invariants by construction: no rescan needed.
        Self::upload(ctx, &AcquisitionState::new(config)?)
    }

    /// Uploads an existing host state (a checkpoint, or a state built on the CPU),
    /// refused with `InvalidState` naming the field if it breaks an invariant.
    pub fn from_state(ctx: &GpuContext, state: &AcquisitionState) -> Result<Self> {
        state.validate()?;
        Self::upload(ctx, state)
    }

    /// Uploads a state whose invariants hold.
    fn upload(ctx: &GpuContext, state: &AcquisitionState) -> Result<Self> {
        let config = state.config.clone();
        let _span = tracing::info_span!(
            "gpu_acquisition_new",
            batch = config.batch(),
            n_vars = config.n_vars,
            capacity = config.capacity
        )
        .entered();
        let pipelines = pipelines(ctx)?;
        let n = config.n_vars;
        let input_stride = n + flag_words(n) + 1 + n * config.feature_dim;
        let params = Params {
            n_vars: config.n_vars as u32,
            capacity: config.capacity as u32,
            feature_dim: config.feature_dim as u32,
            policy_width: config.policy_width() as u32,
            input_stride: input_stride as u32,
            objective: config.objective.code(),
            history_len: 1,
            env_offset: 0,
            learning_rate: 1.0,
            exploration_weight: 0.1,
            neg_inf: f32::NEG_INFINITY,
            shard_envs: 0,
        };

        // Shard size: the largest per-environment array must fit one binding, and one
        // dispatch dimension holds at most max_compute_workgroups_per_dimension groups.
        let largest = (1..binding::HISTORY)
            .map(|b| per_env_elems(&config, input_stride, b) as u64 * 4)
            .max()
            .unwrap_or(4);
        let max_binding = ctx.max_binding_bytes();
        if largest > max_binding {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one environment's largest array (capacity x n_vars x 4)",
                needed: largest,
                limit: max_binding,
            });
        }
        let per_shard = ((max_binding / largest) as usize)
            .min(ctx.limits().max_compute_workgroups_per_dimension as usize)
            .max(1);
        let params = Params {
            shard_envs: per_shard.min(config.batch()) as u32,
            ..params
        };

        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let params_buffer = ctx.buffer_init(
            "tessera acquisition params",
            bytemuck::bytes_of(&params),
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let mut shards = Vec::new();
        let mut first_env = 0;
        while first_env < config.batch() {
            let envs = per_shard.min(config.batch() - first_env);
            shards.push(Self::upload_shard(
                ctx,
                pipelines,
                &params_buffer,
                state,
                params.shard_envs as usize * input_stride,
                first_env,
                envs,
            ));
            first_env += envs;
        }
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(TesseraError::Device(format!(
                "could not allocate the acquisition state: {error}"
            )));
        }
        ctx.check()?;
        Ok(Self {
            ctx: ctx.clone(),
            config,
            params,
            uploaded_params: params,
            params_buffer,
            shards,
            timer: None,
        })
    }

    fn upload_shard(
        ctx: &GpuContext,
        pipelines: &KernelSet,
        params_buffer: &wgpu::Buffer,
        s: &AcquisitionState,
        input_words: usize,
        first: usize,
        envs: usize,
    ) -> Shard {
        let c = &s.config;
        let range = |b: usize| {
            let per = per_env_elems(c, 0, b);
            first * per..(first + envs) * per
        };
        let scalars: &[u32] = bytemuck::cast_slice(&s.scalars);
        let summaries: &[u32] = bytemuck::cast_slice(&s.summaries);
        let contents: Vec<&[u8]> = vec![
            &[],
            bytemuck::cast_slice(&scalars[range(binding::SCALARS)]),
            bytemuck::cast_slice(&s.values[range(binding::VALUES)]),
            bytemuck::cast_slice(&s.interventions[range(binding::INTERVENTIONS)]),
            bytemuck::cast_slice(&s.targets[range(binding::TARGETS)]),
            bytemuck::cast_slice(&s.prev_best_window[range(binding::WINDOW)]),
            bytemuck::cast_slice(&s.mechanism_features[range(binding::FEATURES)]),
            bytemuck::cast_slice(&s.marginal_probs[range(binding::MARGINAL)]),
            bytemuck::cast_slice(&s.confidence[range(binding::CONFIDENCE)]),
            bytemuck::cast_slice(&s.intervention_counts[range(binding::COUNTS)]),
            &[],
            bytemuck::cast_slice(&summaries[range(binding::SUMMARIES)]),
            bytemuck::cast_slice(&s.policy_features[range(binding::POLICY)]),
            bytemuck::cast_slice(&s.scores[range(binding::SCORES)]),
            &[0u8; 16],
        ];
        let buffers: Vec<wgpu::Buffer> = contents
            .iter()
            .enumerate()
            .map(|(b, bytes)| {
                if b == binding::INPUTS {
                    // Written before every use; wgpu zero-fills it on the device.
                    return ctx.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("tessera acquisition inputs"),
                        size: (input_words.max(1) * 4) as u64,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                }
                ctx.buffer_init(
                    "tessera acquisition state",
                    if b == 0 { &[0u8; 16] } else { bytes },
                    wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                )
            })
            .collect();
        let bind_group = Self::bind_group(ctx, pipelines, params_buffer, &buffers);
        Shard {
            first_env: first,
            envs,
            buffers,
            bind_group,
            history_bytes: 0,
        }
    }

    fn bind_group(
        ctx: &GpuContext,
        pipelines: &KernelSet,
        params_buffer: &wgpu::Buffer,
        buffers: &[wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(wgpu::BindGroupEntry {
            binding: 0,
            resource: params_buffer.as_entire_binding(),
        })
        .chain(
            buffers
                .iter()
                .enumerate()
                .skip(1)
                .map(|(b, buffer)| wgpu::BindGroupEntry {
                    binding: b as u32,
                    resource: buffer.as_entire_binding(),
                }),
        )
        .collect();
        ctx.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("tessera acquisition"),
            layout: &pipelines.layout,
            entries: &entries,
        })
    }

    /// The context the state lives on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Times the next `dispatches` operations with GPU timestamp queries (each
    /// operation is one dispatch, so this times kernels without submission or readback
    /// overhead). Returns false, and times nothing, when the device lacks
    /// `TIMESTAMP_QUERY`.
    pub fn enable_kernel_timing(&mut self, dispatches: u32) -> bool {
        self.timer = KernelTimer::new(&self.ctx, dispatches);
        self.timer.is_some()
    }

    /// Device time of each timed operation since timing was enabled or last taken,
    /// in nanoseconds (empty when timing is off).
    pub fn take_kernel_times(&mut self) -> Result<Vec<f64>> {
        match &self.timer {
            Some(t) => t.take(&self.ctx),
            None => Ok(Vec::new()),
        }
    }

    /// Number of shards the batch was split into to respect the device's limits.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Bytes of device memory the state holds (history buffers included).
    pub fn device_bytes(&self) -> u64 {
        self.shards
            .iter()
            .flat_map(|s| &s.buffers)
            .map(|b| b.size())
            .sum::<u64>()
            + self.params_buffer.size()
    }

    /// Word offset of `plane` in every shard's input buffer, and its words per
    /// environment.
    fn plane(&self, plane: Plane) -> (usize, usize) {
        let (n, fd) = (self.config.n_vars, self.config.feature_dim);
        let (w, e) = (flag_words(n), self.params.shard_envs as usize);
        match plane {
            Plane::Values => (0, n),
            Plane::Flags => (e * n, w),
            Plane::Targets => (e * (n + w), 1),
            Plane::Observed => (e * (n + w + 1), n * fd),
        }
    }

    /// Uploads `data`, `[B, per_env]` 4-byte words, into `plane` of every shard,
    /// straight from the caller's slice.
    fn upload_plane<T: Pod>(&self, plane: Plane, data: &[T]) {
        let (offset, per_env) = self.plane(plane);
        for shard in &self.shards {
            let part = &data[shard.first_env * per_env..(shard.first_env + shard.envs) * per_env];
            self.ctx.write_buffer(
                &shard.buffers[binding::INPUTS],
                offset as u64 * 4,
                bytemuck::cast_slice(part),
            );
        }
    }

    /// Uploads the intervention flags as bits, packed straight into each shard's
    /// mapped upload.
    fn upload_flags(&self, intervened: &[bool]) {
        let n = self.config.n_vars;
        let (offset, words) = self.plane(Plane::Flags);
        for shard in &self.shards {
            let flags = &intervened[shard.first_env * n..(shard.first_env + shard.envs) * n];
            self.ctx.write_buffer_with(
                &shard.buffers[binding::INPUTS],
                offset as u64 * 4,
                shard.envs * words,
                flag_bits(flags, n),
            );
        }
    }

    /// Uploads a host step's samples: values, flags and targets.
    fn upload_samples(&self, samples: &Samples<'_>) {
        self.upload_plane(Plane::Values, samples.values);
        self.upload_flags(samples.intervened);
        self.upload_plane(Plane::Targets, samples.targets);
    }

    /// Records one dispatch of `kernel` per shard into a single submission.
    fn run(&mut self, kernel: Kernel) -> Result<()> {
        self.run_after(kernel, |_| {})
    }

    /// [`Self::run`] after `before`'s commands, in the same submission.
    fn run_after(
        &mut self,
        kernel: Kernel,
        before: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<()> {
        let work: Vec<(usize, usize)> = self.shards.iter().map(|s| s.envs).enumerate().collect();
        self.dispatch(kernel, &work, before)
    }

    /// Dispatches `kernel` with `workgroups` groups on each listed `(shard,
    /// workgroups)`, in one submission after `before`'s commands.
    fn dispatch(
        &mut self,
        kernel: Kernel,
        work: &[(usize, usize)],
        before: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<()> {
        self.ctx.check()?;
        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some(kernel.entry_point()),
                });
        before(&mut encoder);
        self.record(&mut encoder, kernel, work)?;
        self.ctx.submit(encoder.finish());
        Ok(())
    }

    /// Records `kernel`'s pass into `encoder` (with `workgroups` groups on each listed
    /// `(shard, workgroups)`), uploading the params first if they changed: the upload
    /// lands before the submission that carries the pass.
    fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: Kernel,
        work: &[(usize, usize)],
    ) -> Result<()> {
        let _span = tracing::debug_span!(
            "dispatch",
            kernel = kernel.entry_point(),
            shards = self.shards.len(),
            batch = self.config.batch()
        )
        .entered();
        let pipelines = pipelines(&self.ctx)?;
        if bytemuck::bytes_of(&self.params) != bytemuck::bytes_of(&self.uploaded_params) {
            self.ctx
                .write_buffer(&self.params_buffer, 0, bytemuck::bytes_of(&self.params));
            self.uploaded_params = self.params;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(kernel.entry_point()),
            timestamp_writes: self.timer.as_ref().and_then(KernelTimer::next_writes),
        });
        self.ctx.count_pass();
        pass.set_pipeline(pipelines.get(kernel.entry_point()));
        for &(shard, workgroups) in work {
            pass.set_bind_group(0, &self.shards[shard].bind_group, &[]);
            self.ctx.count_dispatch();
            pass.dispatch_workgroups(workgroups as u32, 1, 1);
        }
        Ok(())
    }

    /// Records `kernel` over every shard after copying each `(plane, buffer)` of the
    /// whole batch into the shards' input planes, all on the device.
    fn record_from_device(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: Kernel,
        planes: &[(Plane, &wgpu::Buffer)],
    ) -> Result<()> {
        for &(plane, buffer) in planes {
            let (offset, per_env) = self.plane(plane);
            for s in &self.shards {
                let bytes = (s.envs * per_env * 4) as u64;
                if bytes > 0 {
                    encoder.copy_buffer_to_buffer(
                        buffer,
                        (s.first_env * per_env * 4) as u64,
                        &s.buffers[binding::INPUTS],
                        offset as u64 * 4,
                        bytes,
                    );
                }
            }
        }
        let work: Vec<(usize, usize)> = self.shards.iter().map(|s| s.envs).enumerate().collect();
        self.record(encoder, kernel, &work)
    }

    /// Checks that `buffer` holds `plane` for the whole batch and can be copied from.
    fn check_device_input(
        &self,
        plane: Plane,
        buffer: &wgpu::Buffer,
        what: &'static str,
    ) -> Result<()> {
        let needed = (self.config.batch() * self.plane(plane).1 * 4) as u64;
        if buffer.size() < needed {
            return Err(TesseraError::ShapeMismatch {
                what,
                got: buffer.size() as usize,
                expected: needed as usize,
            });
        }
        if !buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(TesseraError::InvalidConfig {
                field: what,
                value: format!("a buffer with usage {:?}", buffer.usage()),
                expected: "a buffer with COPY_SRC usage".into(),
            });
        }
        Ok(())
    }

    /// Reads one array of every shard, `elems_per_env` elements of `T` per environment.
    fn read<T: Pod>(&self, b: usize, elems_per_env: usize) -> Result<Vec<T>> {
        let bytes = (elems_per_env * std::mem::size_of::<T>()) as u64;
        let parts: Vec<_> = self
            .shards
            .iter()
            .map(|s| (&s.buffers[b], bytes * s.envs as u64))
            .collect();
        read_buffers(&self.ctx, &parts)
    }

    fn per_env(&self, b: usize) -> usize {
        per_env_elems(&self.config, self.params.input_stride as usize, b)
    }

    /// One fused pipeline step, as [`AcquisitionBackend::step`], whose inputs are
    /// already on this device: they are copied into the state's input planes on the
    /// device, in the step's one submission, and nothing is uploaded but the params
    /// when the learning rate or exploration weight changed. Fails, with the state
    /// unchanged, on a buffer too small for the batch or without `COPY_SRC`, or on a
    /// rate or weight the host step would refuse.
    pub fn step_on_device(&mut self, inputs: &DeviceStepInputs<'_>) -> Result<()> {
        self.ctx.check()?;
        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("tessera acquisition step on device"),
                });
        self.record_step_on_device(&mut encoder, inputs)?;
        self.ctx.submit(encoder.finish());
        Ok(())
    }

    /// [`Self::step_on_device`] recorded into `encoder` (a caller's submission).
    pub(crate) fn record_step_on_device(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &DeviceStepInputs<'_>,
    ) -> Result<()> {
        let planes = [
            (Plane::Values, inputs.values, "values"),
            (Plane::Flags, inputs.intervened, "intervened"),
            (Plane::Targets, inputs.targets, "targets"),
            (Plane::Observed, inputs.observed, "observed"),
        ];
        for (plane, buffer, what) in planes {
            self.check_device_input(plane, buffer, what)?;
        }
        validate_learning_rate(inputs.learning_rate)?;
        validate_exploration_weight(inputs.exploration_weight)?;
        self.params.learning_rate = inputs.learning_rate;
        self.params.exploration_weight = inputs.exploration_weight;
        let _span = tracing::debug_span!(
            "gpu_acquisition_step_on_device",
            batch = self.config.batch()
        )
        .entered();
        let planes: Vec<_> = planes.iter().map(|&(p, b, _)| (p, b)).collect();
        self.record_from_device(encoder, Kernel::PipelineStep, &planes)
    }

    /// `set_posterior` from device buffers, recorded into `encoder`: `[B, n_vars]`
    /// marginal probabilities and `[B]` entropies in bits, as the host path takes them
    /// (not checked: the caller's kernel must keep them in range).
    pub(crate) fn record_set_posterior_on_device(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        marginals: &wgpu::Buffer,
        entropy_bits: &wgpu::Buffer,
    ) -> Result<()> {
        self.check_device_input(Plane::Values, marginals, "marginal_probs")?;
        self.check_device_input(Plane::Targets, entropy_bits, "uncertainty_bits")?;
        self.record_from_device(
            encoder,
            Kernel::SetPosterior,
            &[(Plane::Values, marginals), (Plane::Targets, entropy_bits)],
        )
    }

    /// Each shard's first environment, environment count and `[envs]` step summaries
    /// (the last selection in `StepSummary::selected`), for kernels that read the
    /// choice on the device.
    pub(crate) fn shard_summaries(&self) -> impl Iterator<Item = (usize, usize, &wgpu::Buffer)> {
        self.shards
            .iter()
            .map(|s| (s.first_env, s.envs, &s.buffers[binding::SUMMARIES]))
    }

    /// Environments per history chunk for `t` rows, growing the shards' history
    /// buffers to hold one chunk. A chunk is as many environments as fit one binding.
    fn prepare_history(&mut self, t: usize) -> Result<usize> {
        let per_env = (t * self.config.n_vars * HISTORY_CHANNELS * 4) as u64;
        let max_binding = self.ctx.max_binding_bytes();
        if per_env > max_binding {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one environment's history tensor (T x n_vars x 5 x 4)",
                needed: per_env,
                limit: max_binding,
            });
        }
        let chunk = (max_binding / per_env) as usize;
        let pipelines = pipelines(&self.ctx)?;
        for shard in &mut self.shards {
            let bytes = per_env * chunk.min(shard.envs) as u64;
            if shard.history_bytes >= bytes {
                continue;
            }
            shard.buffers[binding::HISTORY] =
                self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tessera history tensor"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
            shard.bind_group =
                Self::bind_group(&self.ctx, pipelines, &self.params_buffer, &shard.buffers);
            shard.history_bytes = bytes;
        }
        Ok(chunk)
    }
}

impl AcquisitionBackend for GpuAcquisition {
    fn config(&self) -> &AcquisitionConfig {
        &self.config
    }

    fn add_samples(&mut self, samples: &Samples<'_>) -> Result<()> {
        samples.validate(&self.config)?;
        self.upload_samples(samples);
        self.run(Kernel::AddSample)
    }

    fn set_posterior(&mut self, marginal_probs: &[f32], uncertainty_bits: &[f32]) -> Result<()> {
        validate_posterior(&self.config, marginal_probs, uncertainty_bits)?;
        self.upload_plane(Plane::Values, marginal_probs);
        self.upload_plane(Plane::Targets, uncertainty_bits);
        self.run(Kernel::SetPosterior)
    }

    fn update_mechanism_features(&mut self, observed: &[f32], learning_rate: f32) -> Result<()> {
        validate_observed(&self.config, observed, learning_rate)?;
        self.upload_plane(Plane::Observed, observed);
        self.params.learning_rate = learning_rate;
        self.run(Kernel::UpdateMechanismFeatures)
    }

    fn mechanism_confidence(&mut self) -> Result<()> {
        self.run(Kernel::MechanismConfidence)
    }

    fn optimization_progress(&mut self) -> Result<()> {
        self.run(Kernel::OptimizationProgress)
    }

    fn exploration_coverage(&mut self) -> Result<()> {
        self.run(Kernel::ExplorationCoverage)
    }

    fn policy_features(&mut self) -> Result<()> {
        self.run(Kernel::PolicyFeatures)
    }

    fn acquisition_scores(&mut self, exploration_weight: f32) -> Result<()> {
        validate_exploration_weight(exploration_weight)?;
        self.params.exploration_weight = exploration_weight;
        self.run(Kernel::AcquisitionScores)
    }

    fn select_intervention(&mut self) -> Result<()> {
        self.run(Kernel::SelectIntervention)
    }

    fn step(&mut self, input: &StepInput<'_>) -> Result<()> {
        input.validate(&self.config)?;
        self.upload_samples(&input.samples);
        self.upload_plane(Plane::Observed, input.observed);
        self.params.learning_rate = input.learning_rate;
        self.params.exploration_weight = input.exploration_weight;
        self.run(Kernel::PipelineStep)
    }

    fn history_tensor(&mut self, t: usize) -> Result<Vec<f32>> {
        validate_history_len(&self.config, t)?;
        let chunk = self.prepare_history(t)?;
        let per_env = t * self.config.n_vars * HISTORY_CHANNELS;
        let mut out = Vec::with_capacity(self.config.batch() * per_env);
        for i in 0..self.shards.len() {
            let envs = self.shards[i].envs;
            for offset in (0..envs).step_by(chunk) {
                let len = chunk.min(envs - offset);
                self.params.history_len = t as u32;
                self.params.env_offset = offset as u32;
                self.dispatch(Kernel::HistoryTensor, &[(i, len)], |_| {})?;
                let bytes = (len * per_env * 4) as u64;
                out.extend(read_buffers::<f32>(
                    &self.ctx,
                    &[(&self.shards[i].buffers[binding::HISTORY], bytes)],
                )?);
            }
        }
        self.params.env_offset = 0;
        Ok(out)
    }

    fn read_confidence(&mut self) -> Result<Vec<f32>> {
        self.read(binding::CONFIDENCE, self.per_env(binding::CONFIDENCE))
    }

    fn read_summaries(&mut self) -> Result<Vec<StepSummary>> {
        self.read(binding::SUMMARIES, 1)
    }

    fn read_policy_features(&mut self) -> Result<Vec<f32>> {
        self.read(binding::POLICY, self.per_env(binding::POLICY))
    }

    fn read_scores(&mut self) -> Result<Vec<f32>> {
        self.read(binding::SCORES, self.per_env(binding::SCORES))
    }

    fn read_state(&mut self) -> Result<AcquisitionState> {
        let mut s = AcquisitionState::new(&self.config)?;
        s.scalars = self.read::<EnvScalars>(binding::SCALARS, 1)?;
        s.values = self.read(binding::VALUES, self.per_env(binding::VALUES))?;
        s.interventions =
            self.read(binding::INTERVENTIONS, self.per_env(binding::INTERVENTIONS))?;
        s.targets = self.read(binding::TARGETS, self.per_env(binding::TARGETS))?;
        s.prev_best_window = self.read(binding::WINDOW, self.per_env(binding::WINDOW))?;
        s.mechanism_features = self.read(binding::FEATURES, self.per_env(binding::FEATURES))?;
        s.marginal_probs = self.read(binding::MARGINAL, self.per_env(binding::MARGINAL))?;
        s.confidence = self.read_confidence()?;
        s.intervention_counts = self.read(binding::COUNTS, self.per_env(binding::COUNTS))?;
        s.summaries = self.read_summaries()?;
        s.policy_features = self.read_policy_features()?;
        s.scores = self.read_scores()?;
        Ok(s)
    }
}
