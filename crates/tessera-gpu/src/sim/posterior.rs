//! The GPU parent-set posterior: centred statistics resident on the device, one
//! invocation per (environment, set) to score, one workgroup per environment to
//! normalise; a posterior is one submission and one readback of the summary.

use bytemuck::{Pod, Zeroable};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::sim::posterior::{
    PosteriorBackend, PosteriorConfig, PosteriorSummary, evidence_constant, parent_sets,
    target_intervention, validate_rows,
};
use tessera_tensor::sim::{Interventions, MAX_PARENTS, NO_PARENT};

use super::Growable;
use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};
use crate::readback::read_buffers;

/// The posterior module in f32: the prelude, then the body.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "posterior_f32.wgsl",
        include_str!("../../shaders/sim/posterior_f32.wgsl"),
    ),
    (
        "posterior.wgsl",
        include_str!("../../shaders/sim/posterior.wgsl"),
    ),
];

/// The posterior module in f64 (devices with `SHADER_F64`).
pub const F64_SOURCES: &[(&str, &str)] = &[
    (
        "posterior_f64.wgsl",
        include_str!("../../shaders/sim/posterior_f64.wgsl"),
    ),
    (
        "posterior.wgsl",
        include_str!("../../shaders/sim/posterior.wgsl"),
    ),
];

/// Rows one `posterior_add_rows` dispatch takes. Measured on lavapipe: a single
/// invocation looping over 2000 rows returned wrong statistics (1000 were exact, and
/// 2000 as four calls of 500 exact to 1e-10 nats); the cause was not found, so longer
/// calls are split.
const MAX_ROWS_PER_DISPATCH: usize = 512;

/// `POST_UNRESOLVED` in the shader: the score of a set the precision cannot resolve.
const UNRESOLVED: f32 = 3.0e38;

/// The error for data whose scores the device's precision cannot resolve to 0.05 nats.
fn unresolved() -> TesseraError {
    TesseraError::Diverged {
        what: "GPU posterior: the data fit the target too tightly, or hold too many rows, for f32 scores good to 0.05 nats (this device has no f64); use CpuPosterior (f64)",
        step: 0,
        value: f64::INFINITY,
    }
}

const ENTRY_POINTS: [&str; 3] = ["posterior_add_rows", "posterior_score", "posterior_reduce"];

/// Mirrors `PostParams` in `shaders/sim/posterior.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Params {
    batch: u32,
    n_vars: u32,
    rows: u32,
    mode: u32,
    n_sets: u32,
    max_parents: u32,
    groups_x: u32,
    _pad: u32,
    lambda: f32,
    a0: f32,
    b0: f32,
    sparsity: f32,
}

/// The posterior's kernels in f64 where the device has `SHADER_F64`, else in f32,
/// compiled on first use and cached in the context.
fn pipelines(ctx: &GpuContext, f64: bool) -> Result<&KernelSet> {
    let (cell, sources, label) = if f64 {
        (
            &ctx.inner.posterior_f64,
            F64_SOURCES,
            "tessera posterior f64",
        )
    } else {
        (&ctx.inner.posterior, SOURCES, "tessera posterior")
    };
    cell.get_or_init(|| {
        KernelSet::build(
            ctx,
            KernelSetSpec {
                label,
                source: crate::kernels::join(sources),
                dynamic_uniform: false,
                storage_read_only: &[true, true, true, true, false, false, false],
                entry_points: &ENTRY_POINTS,
                workgroup_invocations: 64,
            },
        )
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The wgpu implementation of [`PosteriorBackend`]: in f64 on devices with
/// `SHADER_F64` (Vulkan and DX12 GPUs), in f32 elsewhere (Metal), where it refuses data
/// f32 cannot score (see `docs/sim.md`).
pub struct GpuPosterior {
    ctx: GpuContext,
    /// Whether the statistics and scores are f64.
    f64: bool,
    config: PosteriorConfig,
    sets: Vec<Vec<usize>>,
    /// Rows kept per environment (exact, counted on the host).
    rows: Vec<u64>,
    params: wgpu::Buffer,
    targets: wgpu::Buffer,
    set_table: wgpu::Buffer,
    stats: wgpu::Buffer,
    scores: wgpu::Buffer,
    summary: wgpu::Buffer,
    samples: Growable,
    interventions: Growable,
    bind_group: Option<wgpu::BindGroup>,
    scores_current: bool,
}

impl std::fmt::Debug for GpuPosterior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPosterior")
            .field("context", &self.ctx)
            .field("batch", &self.config.batch())
            .field("sets", &self.sets.len())
            .finish()
    }
}

impl GpuPosterior {
    /// An empty posterior on `ctx`'s device, in f64 where the device has
    /// `SHADER_F64`. Fails with `DeviceLimit` when the scores of every set
    /// (`B x sets x 4 or 8` bytes) do not fit one storage binding.
    pub fn new(ctx: &GpuContext, config: &PosteriorConfig) -> Result<Self> {
        config.validate()?;
        let f64 = ctx.device().features().contains(wgpu::Features::SHADER_F64);
        pipelines(ctx, f64)?;
        let real = if f64 { 8 } else { 4 };
        let (b, d) = (config.batch(), config.n_vars);
        let sets = parent_sets(d - 1, config.max_parents);
        let limit = ctx.max_binding_bytes();
        for (what, bytes) in [
            (
                "bytes of the per-set scores (B x parent sets x 4 or 8)",
                (b * sets.len() * real) as u64,
            ),
            (
                "bytes of the statistics (B x (1 + d + d^2) x 4 or 8)",
                (b * (1 + d + d * d) * real) as u64,
            ),
        ] {
            if bytes > limit {
                return Err(TesseraError::DeviceLimit {
                    what,
                    needed: bytes,
                    limit,
                });
            }
        }
        let table: Vec<u32> = sets
            .iter()
            .flat_map(|s| {
                let mut row = [0u32; 4];
                row[0] = s.len() as u32;
                for (slot, &c) in row[1..].iter_mut().zip(s) {
                    *slot = c as u32;
                }
                row
            })
            .collect();
        let device = ctx.device();
        let init = |label, contents: &[u8], usage| ctx.buffer_init(label, contents, usage);
        let zeroed = |label, bytes: usize, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let readable = storage | wgpu::BufferUsages::COPY_SRC;
        let writable = storage | wgpu::BufferUsages::COPY_DST;
        let posterior = Self {
            params: zeroed(
                "tessera posterior params",
                std::mem::size_of::<Params>(),
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            targets: init(
                "tessera posterior targets",
                bytemuck::cast_slice(&config.targets),
                storage,
            ),
            set_table: init(
                "tessera posterior sets",
                bytemuck::cast_slice(&table),
                storage,
            ),
            stats: zeroed(
                "tessera posterior stats",
                b * (1 + d + d * d) * real,
                readable | wgpu::BufferUsages::COPY_DST,
            ),
            scores: zeroed("tessera posterior scores", b * sets.len() * real, readable),
            summary: zeroed("tessera posterior summary", b * (d + 3) * 4, readable),
            samples: Growable::new(device, "tessera posterior samples", writable),
            interventions: Growable::new(device, "tessera posterior interventions", writable),
            bind_group: None,
            scores_current: false,
            rows: vec![0; b],
            f64,
            sets,
            config: config.clone(),
            ctx: ctx.clone(),
        };
        ctx.check()?;
        Ok(posterior)
    }

    /// The kernels' parameters. Every grid is laid out `groups_x` wide (the device's
    /// per-dimension limit; a smaller grid has one row), so every pass of a submission
    /// shares one uniform.
    fn params(&self, rows: usize, mode: u32) -> Params {
        let groups_x = self.ctx.limits().max_compute_workgroups_per_dimension;
        let c = &self.config;
        Params {
            batch: c.batch() as u32,
            n_vars: c.n_vars as u32,
            rows: rows as u32,
            mode,
            n_sets: self.sets.len() as u32,
            max_parents: c.max_parents as u32,
            groups_x,
            _pad: 0,
            lambda: c.lambda as f32,
            a0: c.a0 as f32,
            b0: c.b0 as f32,
            sparsity: c.sparsity as f32,
        }
    }

    fn bind_group(&mut self) -> Result<wgpu::BindGroup> {
        if self.bind_group.is_none() {
            let buffers = [
                &self.params,
                &self.samples.buffer,
                &self.interventions.buffer,
                &self.targets,
                &self.set_table,
                &self.stats,
                &self.scores,
                &self.summary,
            ];
            self.bind_group = Some(self.ctx.bind_buffers(
                "tessera posterior",
                &pipelines(&self.ctx, self.f64)?.layout,
                &buffers,
            ));
        }
        Ok(self.bind_group.clone().expect("just built"))
    }

    /// A 2D grid of 64-wide workgroups covering `groups`.
    fn grid(&self, groups: u64) -> Result<(u32, u32)> {
        let max = u64::from(self.ctx.limits().max_compute_workgroups_per_dimension);
        let (x, y) = if groups > max {
            (max, groups.div_ceil(max))
        } else {
            (groups.max(1), 1)
        };
        if y > max {
            return Err(TesseraError::DeviceLimit {
                what: "workgroups per dispatch dimension",
                needed: y,
                limit: max,
            });
        }
        Ok((x as u32, y as u32))
    }

    /// Records `passes` (entry point, grid) with `params` and submits them.
    fn run(&mut self, params: Params, passes: &[(&str, (u32, u32))]) -> Result<()> {
        self.ctx.check()?;
        self.ctx
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        self.record(&mut encoder, passes)?;
        self.ctx.submit(encoder.finish());
        Ok(())
    }

    /// Records `passes` (entry point, grid) as one compute pass.
    fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        passes: &[(&str, (u32, u32))],
    ) -> Result<()> {
        let bind_group = self.bind_group()?;
        let set = pipelines(&self.ctx, self.f64)?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("tessera posterior"),
            timestamp_writes: None,
        });
        self.ctx.count_pass();
        pass.set_bind_group(0, &bind_group, &[]);
        for (entry, (x, y)) in passes {
            self.ctx.count_dispatch();
            pass.set_pipeline(set.get(entry));
            pass.dispatch_workgroups(*x, *y, 1);
        }
        Ok(())
    }

    /// Scores every set (and, with `reduce`, normalises): one submission.
    fn score(&mut self, reduce: bool) -> Result<()> {
        let b = self.config.batch() as u64;
        let score_grid = self.grid((b * self.sets.len() as u64).div_ceil(64))?;
        let reduce_grid = self.grid(b)?;
        let mut passes = vec![("posterior_score", score_grid)];
        if reduce {
            passes.push(("posterior_reduce", reduce_grid));
        }
        self.run(self.params(0, 0), &passes)?;
        self.scores_current = true;
        Ok(())
    }
}

impl PosteriorBackend for GpuPosterior {
    fn config(&self) -> &PosteriorConfig {
        &self.config
    }

    fn add_rows(
        &mut self,
        samples: &[f32],
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<()> {
        validate_rows(&self.config, samples, rows, interventions)?;
        if rows <= MAX_ROWS_PER_DISPATCH {
            return self.add_chunk(samples, rows, interventions);
        }
        // Longer calls go in chunks of rows, repacked environment-major.
        let (b, d) = (self.config.batch(), self.config.n_vars);
        for first in (0..rows).step_by(MAX_ROWS_PER_DISPATCH) {
            let n = MAX_ROWS_PER_DISPATCH.min(rows - first);
            let rows_of = |data: &[f32]| -> Vec<f32> {
                (0..b)
                    .flat_map(|env| data[(env * rows + first) * d..][..n * d].iter().copied())
                    .collect()
            };
            let chunk = rows_of(samples);
            match interventions {
                Interventions::PerRow(ivs) => {
                    let ivs: Vec<_> = (0..b)
                        .flat_map(|env| ivs[(env * rows + first) * d..][..n * d].iter().copied())
                        .collect();
                    self.add_chunk(&chunk, n, &Interventions::PerRow(&ivs))?;
                }
                other => self.add_chunk(&chunk, n, other)?,
            }
        }
        Ok(())
    }

    fn posterior(&mut self) -> Result<PosteriorSummary> {
        self.summarize()
    }

    fn log_marginal_likelihoods(&mut self, env: usize) -> Result<Vec<f64>> {
        self.scores_of(env)
    }
}

impl GpuPosterior {
    /// One dispatch of `posterior_add_rows` over `rows` validated rows.
    fn add_chunk(
        &mut self,
        samples: &[f32],
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<()> {
        let sample_bytes: &[u8] = bytemuck::cast_slice(samples);
        let iv_bytes: &[u8] = bytemuck::cast_slice(interventions.as_slice());
        let limit = self.ctx.max_binding_bytes();
        if sample_bytes.len() as u64 > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one call's samples (one storage binding)",
                needed: sample_bytes.len() as u64,
                limit,
            });
        }
        let device = self.ctx.device().clone();
        if self.samples.ensure(&device, sample_bytes.len() as u64)
            | self
                .interventions
                .ensure(&device, iv_bytes.len().max(16) as u64)
        {
            self.bind_group = None;
        }
        let (b, d) = (self.config.batch(), self.config.n_vars);
        for env in 0..b {
            let target = self.config.targets[env] as usize;
            self.rows[env] += (0..rows)
                .filter(|&r| target_intervention(interventions, env, r, rows, d, target).kind != 1)
                .count() as u64;
        }
        self.ctx.write_buffer(&self.samples.buffer, 0, sample_bytes);
        if !iv_bytes.is_empty() {
            self.ctx
                .write_buffer(&self.interventions.buffer, 0, iv_bytes);
        }
        let grid = self.grid((b as u64).div_ceil(64))?;
        let _span = tracing::debug_span!("gpu_posterior_add_rows", batch = b, rows).entered();
        self.run(
            self.params(rows, interventions.mode()),
            &[("posterior_add_rows", grid)],
        )?;
        self.scores_current = false;
        Ok(())
    }

    fn summarize(&mut self) -> Result<PosteriorSummary> {
        let _span = tracing::debug_span!("gpu_posterior", batch = self.config.batch()).entered();
        self.score(true)?;
        self.read_summary()
    }

    /// Reads and decodes the summary the last `posterior_reduce` left on the device.
    pub(crate) fn read_summary(&self) -> Result<PosteriorSummary> {
        let (b, d) = (self.config.batch(), self.config.n_vars);
        let raw: Vec<f32> = read_buffers(&self.ctx, &[(&self.summary, (b * (d + 3) * 4) as u64)])?;
        if raw.chunks_exact(d + 3).any(|row| row[d + 2] >= UNRESOLVED) {
            return Err(unresolved());
        }
        let mut summary = PosteriorSummary {
            marginals: Vec::with_capacity(b * d),
            entropy_bits: Vec::with_capacity(b),
            map_sets: Vec::with_capacity(b),
            rows: self.rows.clone(),
        };
        for (env, row) in raw.chunks_exact(d + 3).enumerate() {
            summary.marginals.extend_from_slice(&row[..d]);
            summary.entropy_bits.push(row[d]);
            let target = self.config.targets[env] as usize;
            let set = &self.sets[(row[d + 1] as usize).min(self.sets.len() - 1)];
            let mut map = [NO_PARENT; MAX_PARENTS];
            for (slot, &c) in map.iter_mut().zip(set) {
                *slot = tessera_tensor::sim::posterior::candidate_variable(c, target);
            }
            summary.map_sets.push(map);
        }
        if summary
            .marginals
            .iter()
            .chain(&summary.entropy_bits)
            .any(|v| !v.is_finite())
        {
            return Err(TesseraError::Diverged {
                what: "posterior on the device",
                step: 0,
                value: f64::NAN,
            });
        }
        Ok(summary)
    }

    /// Sizes the input buffers for one row per environment under `[B, n_vars]`
    /// interventions and writes the params of such calls once, so that
    /// [`Self::record_single_row_update`] uploads nothing.
    pub(crate) fn prepare_single_rows(&mut self) -> Result<()> {
        let (b, d) = (self.config.batch() as u64, self.config.n_vars as u64);
        let limit = self.ctx.max_binding_bytes();
        if b * d * 8 > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one step's interventions (B x n_vars x 8, one storage binding)",
                needed: b * d * 8,
                limit,
            });
        }
        let device = self.ctx.device().clone();
        if self.samples.ensure(&device, b * d * 4) | self.interventions.ensure(&device, b * d * 8) {
            self.bind_group = None;
        }
        self.ctx
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&self.params(1, 1)));
        Ok(())
    }

    /// The samples and interventions buffers `posterior_add_rows` reads, and the
    /// `[B, n_vars + 3]` summary `posterior_reduce` writes.
    pub(crate) fn buffers(&self) -> (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer) {
        (
            &self.samples.buffer,
            &self.interventions.buffer,
            &self.summary,
        )
    }

    /// Records, in one pass, the addition of the row per environment the input buffers
    /// will hold, the scores and the summary (after [`Self::prepare_single_rows`]).
    /// Counts the row as kept in every environment: the caller never clamps a target.
    pub(crate) fn record_single_row_update(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<()> {
        let b = self.config.batch() as u64;
        let passes = [
            ("posterior_add_rows", self.grid(b.div_ceil(64))?),
            (
                "posterior_score",
                self.grid((b * self.sets.len() as u64).div_ceil(64))?,
            ),
            ("posterior_reduce", self.grid(b)?),
        ];
        self.record(encoder, &passes)?;
        self.rows.iter_mut().for_each(|r| *r += 1);
        self.scores_current = true;
        Ok(())
    }

    fn scores_of(&mut self, env: usize) -> Result<Vec<f64>> {
        let b = self.config.batch();
        self.config.check_env(env)?;
        if !self.scores_current {
            self.score(false)?;
        }
        let n_sets = self.sets.len();
        let all: Vec<f64> = if self.f64 {
            read_buffers(&self.ctx, &[(&self.scores, (b * n_sets * 8) as u64)])?
        } else {
            let f32s: Vec<f32> =
                read_buffers(&self.ctx, &[(&self.scores, (b * n_sets * 4) as u64)])?;
            f32s.into_iter().map(f64::from).collect()
        };
        let c = &self.config;
        let n = self.rows[env] as f64;
        // What every set of the environment shares, added back in f64.
        let shared = evidence_constant(c, n) + 0.5 * c.lambda.ln() - 0.5 * (n + c.lambda).ln();
        let scores = &all[env * n_sets..][..n_sets];
        if scores.iter().any(|&s| s >= f64::from(UNRESOLVED)) {
            return Err(unresolved());
        }
        Ok(scores
            .iter()
            .zip(&self.sets)
            .map(|(&s, set)| s + shared + c.sparsity * set.len() as f64)
            .collect())
    }
}
