//! The GPU simulator: the models resident on the device, one invocation per
//! (environment, row), one submission and one readback per sampling call.

mod closed_loop;
mod pipelines;
mod posterior;

use bytemuck::{Pod, Zeroable};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::sim::{Interventions, ScmBatch, SimBackend, check_samples, validate_sample};

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};
use crate::readback::read_buffers;

pub use closed_loop::{
    GpuClosedLoop, OUTCOME_SOURCES as WGSL_LOOP_OUTCOME_SOURCES,
    PREPARE_SOURCES as WGSL_LOOP_PREPARE_SOURCES,
};
pub use pipelines::{
    SOURCES as WGSL_SOURCES, TEST_SOURCES as WGSL_TEST_SOURCES, module_source as wgsl_module_source,
};
pub use posterior::{
    F64_SOURCES as WGSL_POSTERIOR_F64_SOURCES, GpuPosterior, SOURCES as WGSL_POSTERIOR_SOURCES,
};

/// Invocations per workgroup of the sampling kernel.
const WORKGROUP: u32 = 64;

/// Mirrors `SimParams` in `shaders/sim/sample.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Params {
    batch: u32,
    n_vars: u32,
    rows: u32,
    draw: u32,
    key0: u32,
    key1: u32,
    mode: u32,
    groups_x: u32,
}

/// A device buffer that grows (to powers of two) when a call needs more.
pub(crate) struct Growable {
    pub(crate) buffer: wgpu::Buffer,
    bytes: u64,
    label: &'static str,
}

impl Growable {
    pub(crate) fn new(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
    ) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: 16,
            usage,
            mapped_at_creation: false,
        });
        Self {
            buffer,
            bytes: 16,
            label,
        }
    }

    /// Grows to hold `bytes`; true if a new buffer was made.
    pub(crate) fn ensure(&mut self, device: &wgpu::Device, bytes: u64) -> bool {
        if self.bytes >= bytes {
            return false;
        }
        self.bytes = bytes.next_power_of_two();
        self.buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(self.label),
            size: self.bytes,
            usage: self.buffer.usage(),
            mapped_at_creation: false,
        });
        true
    }
}

/// The wgpu implementation of [`SimBackend`]: the models live on the device; a call
/// uploads its interventions (if any), runs one dispatch and reads the samples back.
pub struct GpuSim {
    ctx: GpuContext,
    scm: ScmBatch,
    params: wgpu::Buffer,
    models: [wgpu::Buffer; 4],
    interventions: Growable,
    samples: Growable,
    bind_group: Option<wgpu::BindGroup>,
}

impl std::fmt::Debug for GpuSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSim")
            .field("context", &self.ctx)
            .field("batch", &self.scm.batch())
            .field("n_vars", &self.scm.n_vars())
            .finish()
    }
}

impl GpuSim {
    /// Uploads `scm` to `ctx`'s device. Fails with `DeviceLimit` when the weights do
    /// not fit one storage binding (`B x n_vars^2 x 4` bytes).
    pub fn new(ctx: &GpuContext, scm: &ScmBatch) -> Result<Self> {
        pipelines::pipelines(ctx)?;
        let limit = ctx.max_binding_bytes();
        let weight_bytes = std::mem::size_of_val(scm.weights()) as u64;
        if weight_bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of the batch's weights (B x n_vars^2 x 4, one storage binding)",
                needed: weight_bytes,
                limit,
            });
        }
        let device = ctx.device();
        let upload =
            |label, contents: &[u8]| ctx.buffer_init(label, contents, wgpu::BufferUsages::STORAGE);
        let models = [
            upload("tessera sim order", bytemuck::cast_slice(scm.order())),
            upload("tessera sim weights", bytemuck::cast_slice(scm.weights())),
            upload("tessera sim bias", bytemuck::cast_slice(scm.bias())),
            upload("tessera sim noise", bytemuck::cast_slice(scm.noise())),
        ];
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tessera sim params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.check()?;
        Ok(Self {
            ctx: ctx.clone(),
            scm: scm.clone(),
            params,
            models,
            interventions: Growable::new(
                device,
                "tessera sim interventions",
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
            ),
            samples: Growable::new(
                device,
                "tessera sim samples",
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            ),
            bind_group: None,
        })
    }

    /// Sizes the interventions and samples buffers for a call, dropping the cached
    /// bind group when one grew; each must fit one storage binding.
    fn ensure(&mut self, intervention_bytes: u64, sample_bytes: u64) -> Result<()> {
        let limit = self.ctx.max_binding_bytes();
        let needed = intervention_bytes.max(sample_bytes);
        if needed > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one call's samples or interventions (one storage binding)",
                needed,
                limit,
            });
        }
        let device = self.ctx.device();
        let grew = self.interventions.ensure(device, intervention_bytes)
            | self.samples.ensure(device, sample_bytes);
        if grew {
            self.bind_group = None;
        }
        Ok(())
    }

    fn bind_group(&mut self) -> Result<&wgpu::BindGroup> {
        if self.bind_group.is_none() {
            let layout = &pipelines::pipelines(&self.ctx)?.layout;
            let buffers = [
                &self.params,
                &self.models[0],
                &self.models[1],
                &self.models[2],
                &self.models[3],
                &self.interventions.buffer,
                &self.samples.buffer,
            ];
            self.bind_group = Some(self.ctx.bind_buffers("tessera sim", layout, &buffers));
        }
        Ok(self.bind_group.as_ref().expect("just built"))
    }

    /// The 2D grid of 64-wide workgroups covering `threads` invocations.
    fn grid(&self, threads: u32) -> Result<(u32, u32)> {
        let groups = threads.div_ceil(WORKGROUP);
        let max = self.ctx.limits().max_compute_workgroups_per_dimension;
        let (x, y) = if groups > max {
            (max, groups.div_ceil(max))
        } else {
            (groups, 1)
        };
        if y > max {
            return Err(TesseraError::DeviceLimit {
                what: "workgroups per dispatch dimension",
                needed: y.into(),
                limit: max.into(),
            });
        }
        Ok((x, y))
    }

    /// Records one sampling pass over `grid` into `encoder`, with whatever params,
    /// interventions and samples buffers hold when it runs.
    pub(crate) fn record_sample(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        (x, y): (u32, u32),
    ) -> Result<()> {
        let pipeline = pipelines::pipelines(&self.ctx)?.get("sample").clone();
        let bind_group = self.bind_group()?.clone();
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("tessera sim sample"),
            timestamp_writes: None,
        });
        self.ctx.count_pass();
        self.ctx.count_dispatch();
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
        Ok(())
    }

    /// Sizes the buffers for one row per environment under `[B, n_vars]`
    /// interventions (the closed loop's draws) and returns the grid of that call; the
    /// caller writes the params (`SimParams`, 8 words) itself.
    pub(crate) fn prepare_single_rows(&mut self) -> Result<(u32, u32)> {
        let (b, d) = (self.scm.batch(), self.scm.n_vars());
        self.ensure((b * d * 8) as u64, (b * d * 4) as u64)?;
        let threads = u32::try_from(b).map_err(|_| TesseraError::DeviceLimit {
            what: "environments of one sampling call",
            needed: b as u64,
            limit: u32::MAX.into(),
        })?;
        self.grid(threads)
    }

    /// The params uniform, the `[B, n_vars]` interventions and the samples buffer.
    pub(crate) fn buffers(&self) -> (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer) {
        (
            &self.params,
            &self.interventions.buffer,
            &self.samples.buffer,
        )
    }
}

impl SimBackend for GpuSim {
    fn scm(&self) -> &ScmBatch {
        &self.scm
    }

    fn sample(
        &mut self,
        draw: u32,
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<Vec<f32>> {
        validate_sample(&self.scm, rows, interventions)?;
        self.ctx.check()?;
        let (b, d) = (self.scm.batch(), self.scm.n_vars());
        let threads = u32::try_from(b * rows).map_err(|_| TesseraError::DeviceLimit {
            what: "samples per call (B x rows invocations)",
            needed: (b * rows) as u64,
            limit: u32::MAX.into(),
        })?;
        let sample_bytes = (b * rows * d * 4) as u64;
        let ivs: &[u8] = bytemuck::cast_slice(interventions.as_slice());
        self.ensure(ivs.len() as u64, sample_bytes)?;
        let (x, y) = self.grid(threads)?;
        let key = self.scm.noise_key();
        let params = Params {
            batch: b as u32,
            n_vars: d as u32,
            rows: rows as u32,
            draw,
            key0: key[0],
            key1: key[1],
            mode: interventions.mode(),
            groups_x: x,
        };
        let _span = tracing::debug_span!("gpu_sim_sample", batch = b, rows, x, y).entered();
        self.ctx
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        if !ivs.is_empty() {
            self.ctx.write_buffer(&self.interventions.buffer, 0, ivs);
        }
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        self.record_sample(&mut encoder, (x, y))?;
        self.ctx.submit(encoder.finish());
        let out: Vec<f32> = read_buffers(&self.ctx, &[(&self.samples.buffer, sample_bytes)])?;
        check_samples(&out)?;
        Ok(out)
    }
}

/// Runs Philox4x32-10 on the device for each `(counter, key)`: the GPU half of the
/// known-answer test (the CPU half is `tessera_tensor::rng::philox4x32_10`). Builds a
/// small test module on every call.
pub fn philox_blocks(ctx: &GpuContext, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>> {
    let set = KernelSet::build(
        ctx,
        KernelSetSpec {
            label: "tessera philox test",
            source: crate::kernels::join(pipelines::TEST_SOURCES),
            dynamic_uniform: false,
            storage_read_only: &[true, false],
            entry_points: &["philox_blocks"],
            workgroup_invocations: 64,
        },
    )?;
    let words: Vec<u32> = inputs
        .iter()
        .flat_map(|(c, k)| c.iter().chain(k).copied())
        .collect();
    let device = ctx.device();
    let count = [inputs.len() as u32, 0, 0, 0];
    let uniform = ctx.buffer_init(
        "philox count",
        bytemuck::cast_slice(&count),
        wgpu::BufferUsages::UNIFORM,
    );
    let input = ctx.buffer_init(
        "philox in",
        bytemuck::cast_slice(&words),
        wgpu::BufferUsages::STORAGE,
    );
    let out_bytes = (inputs.len() * 16) as u64;
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("philox out"),
        size: out_bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let bind_group = ctx.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("philox test"),
        layout: &set.layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: output.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        ctx.count_pass();
        ctx.count_dispatch();
        pass.set_pipeline(set.get("philox_blocks"));
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups((inputs.len() as u32).div_ceil(64), 1, 1);
    }
    ctx.submit(encoder.finish());
    let flat: Vec<u32> = read_buffers(ctx, &[(&output, out_bytes)])?;
    Ok(flat
        .chunks_exact(4)
        .map(|w| [w[0], w[1], w[2], w[3]])
        .collect())
}
