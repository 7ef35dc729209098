//! The GPU neural kernels. Tensors stay on the device; operations are recorded into
//! one compute pass of one pending command encoder, their parameters staged on the
//! host for a ring of uniform slots, and submitted together (the parameters in one
//! write) when a result is read, a tensor is overwritten from the host, the ring
//! fills, or [`GpuNn::flush`] is called: a training step is one submission of one pass.
//! Bind groups are cached per tuple of tensors, so a repeated step creates none, and
//! error metrics accumulate on the device until read.

mod pipelines;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytemuck::{Pod, Zeroable};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::cascade::{CandidateEpoch, CandidateUnit};
use tessera_tensor::nn::shortcut::{ShortcutPass, ShortcutUnit};
use tessera_tensor::nn::{
    Activation, AdamParams, Derivative, Gemm, Loss, NnKernels, QuickpropParams, RpropParams,
    SarpropParams, SgdParams, check_lens,
};

pub use pipelines::{SOURCES as WGSL_SOURCES, module_source as wgsl_module_source};

use crate::GpuContext;
use crate::readback::read_buffers;
use crate::timer::KernelTimer;

/// Mirrors `NnParams` in `shaders/nn/common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    len: u32,
    rows: u32,
    cols: u32,
    activation: u32,
    loss: u32,
    step: u32,
    decoupled: u32,
    alpha: f32,
    beta: f32,
    steepness: f32,
    scale: f32,
    diff_scale: f32,
    bit_fail_limit: f32,
    learning_rate: f32,
    momentum: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    bias_correction1: f32,
    bias_correction2: f32,
    increase: f32,
    decrease: f32,
    delta_min: f32,
    delta_max: f32,
    step_threshold: f32,
    noise_scale: f32,
    noise_seed: u32,
    derivative: u32,
    /// First partial written by `error_metrics` (in pairs).
    offset: u32,
    /// Split-K GEMM: K slices (0 or 1: none) and the K length of each.
    splits: u32,
    k_chunk: u32,
    _pad: [u32; 3],
}

/// Which GEMM kernel [`GpuNn`] runs. `Auto` (the default) picks by shape; the others
/// pin one kernel for every shape, so the parity suite checks each on every layout
/// and edge shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GemmKernel {
    /// GEMV for one row; 128x128 tiles with 8x8 results per thread when the product
    /// has at least [`GEMM_TARGET_WORKGROUPS`] such tiles; otherwise 64x64 tiles,
    /// split over K (up to 16 ways) when that is what fills the GPU.
    #[default]
    Auto,
    /// 64x64 tiles, 4x4 results per thread, no split.
    Tile64,
    /// 128x128 tiles, 8x8 results per thread, double-buffered.
    Tile128,
    /// 64x64 tiles with K split this many ways (at most 64), summed by a second
    /// dispatch.
    SplitK(u32),
}

/// Workgroups `GemmKernel::Auto` aims for: enough to occupy every core of a large
/// GPU (an H100 has 132, an M2 Max 38) a few tiles deep.
pub const GEMM_TARGET_WORKGROUPS: usize = 64;

/// Parameter slots in the ring before a submission is forced.
const RING_SLOTS: u64 = 256;
/// Threads of the element-wise kernels' workgroups.
const EW: u32 = 256;

/// Pairs of error partials in the first segment of a [`GpuMetrics`].
const METRIC_SEGMENT_PAIRS: usize = 4096;

/// A device-resident f32 tensor.
#[derive(Debug)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    len: usize,
    /// The tensor's key in the bind-group cache: the cache holds weak handles to it,
    /// which keep the address from being reused while an entry names it.
    identity: Arc<()>,
}

impl GpuTensor {
    fn key(&self) -> usize {
        Arc::as_ptr(&self.identity) as usize
    }
}

impl GpuTensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying buffer (its size is rounded up to at least 4 bytes).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

/// Scratch of the candidate pool, kept between epochs: the sums (then activations)
/// and the input-side error terms, `[rows, candidates]`, and the packed units.
struct CandidateScratch {
    sums: GpuTensor,
    deriv: GpuTensor,
    units: GpuTensor,
    packed: Vec<f32>,
}

/// Shortcut units as last packed on the host, and their device copy.
type PackedUnits = (Vec<f32>, GpuTensor);

/// Sums of squared errors and bit fails on the device, as per-workgroup partials in
/// segments filled in order; [`NnKernels::take_metrics`] reads the used parts in one
/// readback and sums them in f64. Segments are kept, so a repeated epoch allocates
/// nothing and reuses its bind groups.
#[derive(Debug, Default)]
pub struct GpuMetrics {
    /// Each segment and the pairs of it used.
    segments: Vec<(GpuTensor, usize)>,
    /// The segment being filled.
    cursor: usize,
}

/// A cached bind group and the tensors it binds.
struct CachedBindGroup {
    tensors: Vec<Weak<()>>,
    group: wgpu::BindGroup,
}

struct Pending {
    /// The open compute pass of `encoder` (declared first: dropped first).
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    /// Uniform slots recorded since the last submission, written in one upload.
    params: Vec<u8>,
    slot: u64,
    /// Timestamp queries around dispatches, when kernel timing is on.
    timer: Option<KernelTimer>,
    /// Bind groups by the keys of their tensors (t0..t5).
    bind_groups: HashMap<[usize; pipelines::TENSOR_BINDINGS as usize], CachedBindGroup>,
}

/// The wgpu implementation of [`NnKernels`].
pub struct GpuNn {
    ctx: GpuContext,
    ring: wgpu::Buffer,
    slot_stride: u64,
    placeholder: GpuTensor,
    pending: Mutex<Pending>,
    cascade: Mutex<Option<CandidateScratch>>,
    /// The packed units of the last shortcut pass, and their tensor.
    shortcut_units: Mutex<Option<PackedUnits>>,
    gemm_kernel: GemmKernel,
    /// Split-K partial products, grown to the largest split GEMM so far.
    split_scratch: Mutex<Option<GpuTensor>>,
}

impl std::fmt::Debug for GpuNn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuNn").field("context", &self.ctx).finish()
    }
}

impl GpuNn {
    /// Neural kernels on `ctx` (pipelines are built once per context).
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        pipelines::pipelines(ctx)?;
        let align = u64::from(ctx.limits().min_uniform_buffer_offset_alignment);
        let slot_stride = (std::mem::size_of::<Params>() as u64).div_ceil(align) * align;
        let device = ctx.device();
        let placeholder = GpuTensor {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera nn placeholder"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }),
            len: 0,
            identity: Arc::new(()),
        };
        Ok(Self {
            ring: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera nn params"),
                size: slot_stride * RING_SLOTS,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            slot_stride,
            placeholder,
            pending: Mutex::new(Pending {
                pass: None,
                encoder: None,
                params: Vec::new(),
                slot: 0,
                timer: None,
                bind_groups: HashMap::new(),
            }),
            cascade: Mutex::new(None),
            shortcut_units: Mutex::new(None),
            gemm_kernel: GemmKernel::Auto,
            split_scratch: Mutex::new(None),
            ctx: ctx.clone(),
        })
    }

    /// These kernels with `kernel` for every GEMM (see [`GemmKernel`]).
    pub fn with_gemm_kernel(mut self, kernel: GemmKernel) -> Self {
        self.gemm_kernel = kernel;
        self
    }

    /// The context the kernels run on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Submits every recorded operation.
    pub fn flush(&self) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.submit(&mut pending);
        self.ctx.check()
    }

    fn submit(&self, pending: &mut Pending) {
        pending.pass = None;
        if let Some(encoder) = pending.encoder.take() {
            let _span = tracing::debug_span!("nn_submit", ops = pending.slot).entered();
            // Queue writes land before the next submission's commands.
            self.ctx.write_buffer(&self.ring, 0, &pending.params);
            self.ctx.submit(encoder.finish());
        }
        pending.params.clear();
        pending.slot = 0;
        // Entries naming a dropped tensor would keep its memory alive.
        pending
            .bind_groups
            .retain(|_, e| e.tensors.iter().all(|t| t.strong_count() > 0));
    }

    fn check_binding(&self, len: usize) -> Result<()> {
        let bytes = len as u64 * 4;
        let limit = self.ctx.max_binding_bytes();
        if bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one tensor (one storage binding)",
                needed: bytes,
                limit,
            });
        }
        Ok(())
    }

    /// Records one dispatch of `entry` over `groups` workgroups (laid out 2D when
    /// over the per-dimension limit) with `params` and tensors bound to t0..t5, into
    /// the open compute pass (a pass of its own when it is timed).
    fn record(
        &self,
        entry: &str,
        params: Params,
        tensors: &[&GpuTensor],
        (x, y): (u32, u32),
    ) -> Result<()> {
        self.record_grid(entry, params, tensors, [x, y, 1])
    }

    /// [`Self::record`] over a 3D grid (the z axis: split-K slices).
    fn record_grid(
        &self,
        entry: &str,
        params: Params,
        tensors: &[&GpuTensor],
        [mut x, mut y, z]: [u32; 3],
    ) -> Result<()> {
        self.ctx.check()?;
        let pipelines = pipelines::pipelines(&self.ctx)?;
        if x == 0 || y == 0 || z == 0 {
            return Ok(());
        }
        let max = self.ctx.limits().max_compute_workgroups_per_dimension;
        if y == 1 && x > max {
            y = x.div_ceil(max);
            x = max;
        }
        if x > max || y > max || z > max {
            return Err(TesseraError::DeviceLimit {
                what: "workgroups per dispatch dimension",
                needed: x.max(y).max(z).into(),
                limit: max.into(),
            });
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.slot == RING_SLOTS {
            self.submit(&mut pending);
        }
        let offset = pending.slot * self.slot_stride;
        pending.slot += 1;
        pending.params.resize(offset as usize, 0);
        pending
            .params
            .extend_from_slice(bytemuck::bytes_of(&params));
        let bound: [&GpuTensor; pipelines::TENSOR_BINDINGS as usize] =
            std::array::from_fn(|b| tensors.get(b).copied().unwrap_or(&self.placeholder));
        let key = bound.map(GpuTensor::key);
        let Pending {
            pass,
            encoder,
            timer,
            bind_groups,
            ..
        } = &mut *pending;
        let bind_group = &bind_groups
            .entry(key)
            .or_insert_with(|| {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.ring,
                        offset: 0,
                        size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                    }),
                }];
                entries.extend(bound.iter().enumerate().map(|(b, t)| wgpu::BindGroupEntry {
                    binding: b as u32 + 1,
                    resource: t.buffer.as_entire_binding(),
                }));
                CachedBindGroup {
                    tensors: bound.iter().map(|t| Arc::downgrade(&t.identity)).collect(),
                    group: self.ctx.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("tessera nn"),
                        layout: &pipelines.layout,
                        entries: &entries,
                    }),
                }
            })
            .group;
        let _span = tracing::trace_span!("nn_dispatch", kernel = entry, x, y).entered();
        let timed = timer.as_ref().and_then(KernelTimer::next_writes);
        if timed.is_some() {
            *pass = None;
        }
        if pass.is_none() {
            let encoder = encoder.get_or_insert_with(|| {
                self.ctx
                    .device()
                    .create_command_encoder(&Default::default())
            });
            let label = if timed.is_some() { entry } else { "tessera nn" };
            *pass = Some(
                encoder
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(label),
                        timestamp_writes: timed.clone(),
                    })
                    .forget_lifetime(),
            );
            self.ctx.count_pass();
        }
        let open = pass.as_mut().expect("a pass was opened");
        self.ctx.count_dispatch();
        open.set_pipeline(pipelines.get(entry));
        open.set_bind_group(0, bind_group, &[offset as u32]);
        open.dispatch_workgroups(x, y, z);
        if timed.is_some() {
            // A timed dispatch's timestamps bracket its pass alone.
            *pass = None;
        }
        Ok(())
    }

    /// Records `C = alpha op(A) op(B) + beta C` on buffers at least as long as the
    /// shapes need (checked by the caller).
    fn record_gemm(&self, g: Gemm, a: &GpuTensor, b: &GpuTensor, c: &GpuTensor) -> Result<()> {
        let params = Params {
            m: g.m as u32,
            n: g.n as u32,
            k: g.k as u32,
            trans_a: g.trans_a.into(),
            trans_b: g.trans_b.into(),
            alpha: g.alpha,
            beta: g.beta,
            ..Params::default()
        };
        let (m, n, k) = (g.m, g.n, g.k);
        let tiles = |t: usize| m.div_ceil(t) * n.div_ceil(t);
        let splits = match self.gemm_kernel {
            GemmKernel::Auto if m == 1 => {
                return self.record("gemv", params, &[a, b, c], ((n as u32).div_ceil(EW), 1));
            }
            GemmKernel::Auto if m >= 128 && n >= 128 && tiles(128) >= GEMM_TARGET_WORKGROUPS => {
                return self.record_gemm_128(params, [a, b, c]);
            }
            GemmKernel::Tile128 => return self.record_gemm_128(params, [a, b, c]),
            GemmKernel::Auto if k >= 256 => GEMM_TARGET_WORKGROUPS
                .div_ceil(tiles(64))
                .min(k / 128)
                .min(16),
            GemmKernel::SplitK(s) => (s as usize).clamp(1, 64),
            _ => 1,
        };
        // Chunks of whole 16-deep steps, so no step straddles two splits.
        let k_chunk = k.div_ceil(splits.max(1)).next_multiple_of(16).max(16);
        let splits = k.div_ceil(k_chunk).max(1);
        // 16-byte global loads need every stored row (of A, B and C) to be a whole
        // number of vec4s.
        let row_a = if g.trans_a { m } else { k };
        let row_b = if g.trans_b { k } else { n };
        let vec4 = [row_a, row_b, n].iter().all(|d| d.is_multiple_of(4));
        let entry = if vec4 { "gemm_vec4" } else { "gemm" };
        let grid = [(n as u32).div_ceil(64), (m as u32).div_ceil(64)];
        let partials = splits * m * n;
        if splits == 1 || self.check_binding(partials).is_err() {
            return self.record(entry, params, &[a, b, c], (grid[0], grid[1]));
        }
        let mut scratch = self.split_scratch.lock().unwrap_or_else(|p| p.into_inner());
        if scratch.as_ref().is_none_or(|t| t.len < partials) {
            *scratch = Some(self.zeros(partials)?);
        }
        let t3 = scratch.as_ref().expect("scratch allocated");
        let params = Params {
            splits: splits as u32,
            k_chunk: k_chunk as u32,
            ..params
        };
        let _span = tracing::trace_span!("split_k_gemm", m, n, k, splits).entered();
        self.record_grid(
            entry,
            params,
            &[a, b, c, t3],
            [grid[0], grid[1], splits as u32],
        )?;
        self.elementwise("gemm_reduce", params, &[a, b, c, t3], m * n)
    }

    /// Records the 128x128-tile GEMM of `params` on `[a, b, c]`.
    fn record_gemm_128(&self, params: Params, tensors: [&GpuTensor; 3]) -> Result<()> {
        let grid = ((params.n).div_ceil(128), (params.m).div_ceil(128));
        self.record("gemm_128", params, &tensors, grid)
    }

    /// The candidate pool's scratch tensors for `len` (rows x candidates) elements and
    /// its units, reallocated or rewritten only when they change.
    fn candidate_scratch(
        &self,
        len: usize,
        units: &[CandidateUnit],
    ) -> Result<std::sync::MutexGuard<'_, Option<CandidateScratch>>> {
        let packed: Vec<f32> = units
            .iter()
            .flat_map(|u| [f32::from_bits(u.activation.code()), u.steepness])
            .collect();
        let mut scratch = self.cascade.lock().unwrap_or_else(|p| p.into_inner());
        let fits = scratch
            .as_ref()
            .is_some_and(|s| s.sums.len == len && s.units.len == packed.len());
        if !fits {
            *scratch = Some(CandidateScratch {
                sums: self.zeros(len)?,
                deriv: self.zeros(len)?,
                units: self.tensor(&packed)?,
                packed,
            });
        } else if let Some(s) = scratch.as_mut().filter(|s| s.packed != packed) {
            // Recorded work may still read the old units.
            self.flush()?;
            self.ctx
                .write_buffer(&s.units.buffer, 0, bytemuck::cast_slice(&packed));
            s.packed = packed;
        }
        Ok(scratch)
    }

    /// The units of a shortcut pass on the device (four words each: activation
    /// code, steepness, fan-in, first weight), uploaded only when they change.
    fn shortcut_units(
        &self,
        units: &[ShortcutUnit],
        offsets: &[usize],
    ) -> Result<std::sync::MutexGuard<'_, Option<PackedUnits>>> {
        let packed: Vec<f32> = units
            .iter()
            .zip(offsets)
            .flat_map(|(u, &off)| {
                [
                    f32::from_bits(u.activation.code()),
                    u.steepness,
                    f32::from_bits(u.fan_in as u32),
                    f32::from_bits(off as u32),
                ]
            })
            .collect();
        let mut cached = self
            .shortcut_units
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match cached.as_mut() {
            Some((old, t)) if t.len == packed.len() => {
                if *old != packed {
                    // Recorded work may still read the old units.
                    self.flush()?;
                    self.ctx
                        .write_buffer(&t.buffer, 0, bytemuck::cast_slice(&packed));
                    *old = packed;
                }
            }
            _ => {
                let t = self.tensor(&packed)?;
                *cached = Some((packed, t));
            }
        }
        Ok(cached)
    }

    /// Checks that a shortcut pass's indices fit the kernels' 32-bit arithmetic.
    fn check_shortcut_size(p: ShortcutPass, weights: usize) -> Result<()> {
        let largest = [
            p.rows * p.width(),
            p.rows * p.units(),
            weights,
            p.units() * p.width(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if largest > u32::MAX as usize {
            return Err(TesseraError::DeviceLimit {
                what: "elements of one shortcut tensor (32-bit indices)",
                needed: largest as u64,
                limit: u32::MAX.into(),
            });
        }
        Ok(())
    }

    fn elementwise(
        &self,
        entry: &str,
        params: Params,
        tensors: &[&GpuTensor],
        len: usize,
    ) -> Result<()> {
        self.record(entry, params, tensors, ((len as u32).div_ceil(EW), 1))
    }

    /// An optimizer update `entry` of `w` with gradient `g` and two state tensors,
    /// all of `w`'s length (t0 = w, t1 = g, t2, t3 = state).
    fn update(
        &self,
        entry: &'static str,
        w: &GpuTensor,
        g: &GpuTensor,
        [s0, s1]: [&GpuTensor; 2],
        params: Params,
    ) -> Result<()> {
        check_lens(entry, &[g.len, s0.len, s1.len], w.len)?;
        let params = Params {
            len: w.len as u32,
            ..params
        };
        let tensors = [w, g, s0, s1];
        self.elementwise(entry, params, &tensors, w.len)
    }
}

/// A shortcut pass's shape in the kernels' parameters: rows, k = inputs, m = hidden,
/// n = outputs.
fn shortcut_params(p: ShortcutPass) -> Params {
    Params {
        rows: p.rows as u32,
        k: p.inputs as u32,
        m: p.hidden as u32,
        n: p.outputs as u32,
        ..Params::default()
    }
}

fn no_gradient(activation: Activation) -> TesseraError {
    TesseraError::InvalidArgument {
        what: "activation without a gradient",
        value: activation.code() as f64,
        expected: "a differentiable activation (thresholds are inference-only)",
    }
}

impl NnKernels for GpuNn {
    type Tensor = GpuTensor;
    type Metrics = GpuMetrics;

    fn tensor(&self, data: &[f32]) -> Result<GpuTensor> {
        self.check_binding(data.len())?;
        let contents: &[u8] = if data.is_empty() {
            &[0; 4]
        } else {
            bytemuck::cast_slice(data)
        };
        let buffer = self.ctx.buffer_init(
            "tessera tensor",
            contents,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        );
        Ok(GpuTensor {
            buffer,
            len: data.len(),
            identity: Arc::new(()),
        })
    }

    fn zeros(&self, len: usize) -> Result<GpuTensor> {
        self.check_binding(len)?;
        let buffer = self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("tessera tensor"),
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuTensor {
            buffer,
            len,
            identity: Arc::new(()),
        })
    }

    fn write(&self, t: &mut GpuTensor, data: &[f32]) -> Result<()> {
        check_lens("write", &[data.len()], t.len)?;
        // Recorded work that reads `t` must see its old contents.
        self.flush()?;
        self.ctx
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    fn read(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        self.flush()?;
        read_buffers(&self.ctx, &[(&t.buffer, t.len as u64 * 4)])
    }

    fn len(&self, t: &GpuTensor) -> usize {
        t.len
    }

    /// Times the next `dispatches` kernels with GPU timestamp queries (every kernel
    /// call is one dispatch; a training step is several). Returns false, and times
    /// nothing, when the device lacks `TIMESTAMP_QUERY`.
    fn enable_kernel_timing(&self, dispatches: u32) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.timer = KernelTimer::new(&self.ctx, dispatches);
        pending.timer.is_some()
    }

    /// Device time of each timed dispatch since timing was enabled or last taken, in
    /// nanoseconds, in recording order (empty when timing is off). Submits pending work.
    fn take_kernel_times(&self) -> Result<Vec<f64>> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.submit(&mut pending);
        match &pending.timer {
            Some(t) => t.take(&self.ctx),
            None => Ok(Vec::new()),
        }
    }

    fn synchronize(&self) -> Result<()> {
        self.flush()?;
        self.ctx.wait_idle()
    }

    fn gemm(&self, g: Gemm, a: &GpuTensor, b: &GpuTensor, c: &mut GpuTensor) -> Result<()> {
        g.check(a.len, b.len, c.len)?;
        self.record_gemm(g, a, b, c)
    }

    fn bias_activation(
        &self,
        z: &mut GpuTensor,
        bias: &GpuTensor,
        y: &mut GpuTensor,
        rows: usize,
        cols: usize,
        activation: Activation,
        steepness: f32,
    ) -> Result<()> {
        check_lens("bias_activation z, y", &[z.len, y.len], rows * cols)?;
        check_lens("bias_activation bias", &[bias.len], cols)?;
        let params = Params {
            rows: rows as u32,
            cols: cols as u32,
            activation: activation.code(),
            steepness,
            ..Params::default()
        };
        let tensors = [&*z, bias, &*y];
        if activation.is_rowwise() {
            self.record("bias_softmax", params, &tensors, (rows as u32, 1))
        } else {
            self.elementwise("bias_activation", params, &tensors, rows * cols)
        }
    }

    fn activation_backward(
        &self,
        z: &GpuTensor,
        y: &GpuTensor,
        dy: &GpuTensor,
        dz: &mut GpuTensor,
        cols: usize,
        activation: Activation,
        steepness: f32,
        derivative: Derivative,
    ) -> Result<()> {
        check_lens("activation_backward", &[y.len, dy.len, dz.len], z.len)?;
        if cols == 0 || !z.len.is_multiple_of(cols) {
            return Err(TesseraError::ShapeMismatch {
                what: "activation_backward cols",
                got: cols,
                expected: z.len,
            });
        }
        if !activation.has_gradient() {
            return Err(no_gradient(activation));
        }
        let params = Params {
            len: z.len as u32,
            rows: (z.len / cols) as u32,
            cols: cols as u32,
            activation: activation.code(),
            steepness,
            derivative: derivative.code(),
            ..Params::default()
        };
        let tensors = [z, y, dy, &*dz];
        if activation.is_rowwise() {
            self.record(
                "softmax_backward",
                params,
                &tensors,
                ((z.len / cols) as u32, 1),
            )
        } else {
            self.elementwise("activation_backward", params, &tensors, z.len)
        }
    }

    fn output_gradient(
        &self,
        y: &GpuTensor,
        target: &GpuTensor,
        grad: &mut GpuTensor,
        loss: Loss,
        output: Activation,
        steepness: f32,
        scale: f32,
    ) -> Result<()> {
        check_lens("output_gradient", &[target.len, grad.len], y.len)?;
        let params = Params {
            len: y.len as u32,
            loss: loss.code(),
            diff_scale: loss.diff_scale(output),
            steepness,
            scale,
            ..Params::default()
        };
        self.elementwise("output_gradient", params, &[y, target, &*grad], y.len)
    }

    fn metrics(&self) -> Result<GpuMetrics> {
        Ok(GpuMetrics::default())
    }

    fn accumulate_error_metrics(
        &self,
        y: &GpuTensor,
        target: &GpuTensor,
        loss: Loss,
        output: Activation,
        bit_fail_limit: f32,
        acc: &mut GpuMetrics,
    ) -> Result<()> {
        check_lens("error_metrics", &[target.len], y.len)?;
        let groups = y.len.div_ceil(EW as usize);
        if groups == 0 {
            return Ok(());
        }
        while acc
            .segments
            .get(acc.cursor)
            .is_some_and(|(t, used)| t.len / 2 - used < groups)
        {
            acc.cursor += 1;
        }
        if acc.cursor == acc.segments.len() {
            let last = acc.segments.last().map_or(0, |(t, _)| t.len / 2);
            let pairs = groups.max(2 * last).max(METRIC_SEGMENT_PAIRS);
            acc.segments.push((self.zeros(2 * pairs)?, 0));
        }
        let (partials, used) = &mut acc.segments[acc.cursor];
        let params = Params {
            len: y.len as u32,
            diff_scale: loss.diff_scale(output),
            bit_fail_limit,
            offset: *used as u32,
            ..Params::default()
        };
        self.elementwise("error_metrics", params, &[y, target, partials], y.len)?;
        *used += groups;
        Ok(())
    }

    fn take_metrics(&self, acc: &mut GpuMetrics) -> Result<(f64, u64)> {
        self.flush()?;
        let parts: Vec<(&wgpu::Buffer, u64)> = acc
            .segments
            .iter()
            .filter(|(_, used)| *used > 0)
            .map(|(t, used)| (&t.buffer, *used as u64 * 8))
            .collect();
        let partials: Vec<f32> = read_buffers(&self.ctx, &parts)?;
        for (_, used) in &mut acc.segments {
            *used = 0;
        }
        acc.cursor = 0;
        // Each partial is a workgroup's (sse, bit fails); fails are exact integers.
        Ok(partials.chunks_exact(2).fold((0.0, 0), |(sse, fails), p| {
            (sse + f64::from(p[0]), fails + p[1] as u64)
        }))
    }

    fn column_sums(
        &self,
        m: &GpuTensor,
        out: &mut GpuTensor,
        rows: usize,
        cols: usize,
        beta: f32,
    ) -> Result<()> {
        check_lens("column_sums m", &[m.len], rows * cols)?;
        check_lens("column_sums out", &[out.len], cols)?;
        let params = Params {
            rows: rows as u32,
            cols: cols as u32,
            beta,
            ..Params::default()
        };
        self.elementwise("column_sums", params, &[m, &*out], cols)
    }

    fn sgd_update(
        &self,
        w: &mut GpuTensor,
        g: &GpuTensor,
        v: &mut GpuTensor,
        p: SgdParams,
    ) -> Result<()> {
        check_lens("sgd_update", &[g.len, v.len], w.len)?;
        let params = Params {
            len: w.len as u32,
            learning_rate: p.learning_rate,
            momentum: p.momentum,
            weight_decay: p.weight_decay,
            ..Params::default()
        };
        self.elementwise("sgd_update", params, &[&*w, g, &*v], w.len)
    }

    fn rprop_update(
        &self,
        w: &mut GpuTensor,
        g: &GpuTensor,
        prev_g: &mut GpuTensor,
        step: &mut GpuTensor,
        p: RpropParams,
    ) -> Result<()> {
        let params = Params {
            increase: p.increase_factor,
            decrease: p.decrease_factor,
            delta_min: p.delta_min,
            delta_max: p.delta_max,
            ..Params::default()
        };
        self.update("rprop_update", w, g, [prev_g, step], params)
    }

    fn quickprop_update(
        &self,
        w: &mut GpuTensor,
        g: &GpuTensor,
        prev_slope: &mut GpuTensor,
        prev_step: &mut GpuTensor,
        p: QuickpropParams,
    ) -> Result<()> {
        let params = Params {
            learning_rate: p.epsilon,
            weight_decay: p.decay,
            momentum: p.mu,
            ..Params::default()
        };
        self.update("quickprop_update", w, g, [prev_slope, prev_step], params)
    }

    fn sarprop_update(
        &self,
        w: &mut GpuTensor,
        g: &GpuTensor,
        prev_slope: &mut GpuTensor,
        step: &mut GpuTensor,
        p: SarpropParams,
    ) -> Result<()> {
        let params = Params {
            increase: p.increase_factor,
            decrease: p.decrease_factor,
            delta_min: p.delta_min,
            delta_max: p.delta_max,
            weight_decay: p.weight_decay,
            step_threshold: p.step_threshold,
            noise_scale: p.noise_scale,
            noise_seed: p.noise_seed,
            ..Params::default()
        };
        self.update("sarprop_update", w, g, [prev_slope, step], params)
    }

    fn adam_update(
        &self,
        w: &mut GpuTensor,
        g: &GpuTensor,
        m: &mut GpuTensor,
        v: &mut GpuTensor,
        t: u32,
        p: AdamParams,
    ) -> Result<()> {
        let params = Params {
            step: t,
            decoupled: p.decoupled.into(),
            learning_rate: p.learning_rate,
            weight_decay: p.weight_decay,
            beta1: p.beta1,
            beta2: p.beta2,
            epsilon: p.epsilon,
            bias_correction1: 1.0 - p.beta1.powi(t as i32),
            bias_correction2: 1.0 - p.beta2.powi(t as i32),
            ..Params::default()
        };
        self.update("adam_update", w, g, [m, v], params)
    }

    fn candidate_epoch(
        &self,
        e: CandidateEpoch,
        units: &[CandidateUnit],
        values: &GpuTensor,
        residuals: &GpuTensor,
        weights_in: &GpuTensor,
        weights_out: &GpuTensor,
        grad_in: &mut GpuTensor,
        grad_out: &mut GpuTensor,
        scores: &mut GpuTensor,
    ) -> Result<()> {
        e.check(
            units,
            [
                values.len,
                residuals.len,
                weights_in.len,
                weights_out.len,
                grad_in.len,
                grad_out.len,
                scores.len,
            ],
        )?;
        let (rows, ni, no, nc) = (e.rows, e.inputs, e.outputs, e.candidates);
        if nc == 0 {
            return Ok(());
        }
        let len = rows
            .checked_mul(nc)
            .filter(|&l| l <= u32::MAX as usize)
            .ok_or(TesseraError::DeviceLimit {
                what: "rows x candidates of one candidate epoch",
                needed: (rows as u64).saturating_mul(nc as u64),
                limit: u32::MAX.into(),
            })?;
        let _span = tracing::debug_span!("gpu_candidate_epoch", rows, candidates = nc).entered();
        let scratch = self.candidate_scratch(len.max(1), units)?;
        let s = scratch.as_ref().expect("scratch allocated");
        // S = V W_in^T: [rows, candidates].
        let sums = Gemm {
            m: rows,
            n: nc,
            k: ni,
            trans_a: false,
            trans_b: true,
            alpha: 1.0,
            beta: 0.0,
        };
        self.record_gemm(sums, values, weights_in, &s.sums)?;
        let params = Params {
            rows: rows as u32,
            cols: nc as u32,
            n: no as u32,
            scale: e.sse,
            derivative: e.derivative.code(),
            ..Params::default()
        };
        self.elementwise(
            "candidate_activation",
            params,
            &[&s.sums, residuals, weights_out, &s.deriv, &s.units],
            len,
        )?;
        self.record(
            "candidate_reduce",
            params,
            &[&s.sums, residuals, weights_out, &*grad_out, &*scores],
            (nc as u32, 1),
        )?;
        // grad_in = D^T V: [candidates, inputs]; D is stored [rows, candidates].
        let grads = Gemm {
            m: nc,
            n: ni,
            k: rows,
            trans_a: true,
            trans_b: false,
            alpha: 1.0,
            beta: 0.0,
        };
        self.record_gemm(grads, &s.deriv, values, grad_in)
    }

    fn shortcut_forward(
        &self,
        p: ShortcutPass,
        units: &[ShortcutUnit],
        weights: &GpuTensor,
        x: &GpuTensor,
        values: &mut GpuTensor,
        sums: &mut GpuTensor,
        y: &mut GpuTensor,
    ) -> Result<()> {
        let offsets = p.check_forward(units, [weights.len, x.len, values.len, sums.len, y.len])?;
        Self::check_shortcut_size(p, weights.len)?;
        if p.rows == 0 {
            return Ok(());
        }
        let _span =
            tracing::debug_span!("gpu_shortcut_forward", rows = p.rows, units = units.len())
                .entered();
        let packed = self.shortcut_units(units, &offsets)?;
        let (_, units_t) = packed.as_ref().expect("units uploaded");
        self.elementwise(
            "shortcut_forward",
            shortcut_params(p),
            &[weights, x, &*values, &*sums, &*y, units_t],
            p.rows,
        )
    }

    fn shortcut_backward(
        &self,
        p: ShortcutPass,
        units: &[ShortcutUnit],
        derivative: Derivative,
        accumulate: bool,
        weights: &GpuTensor,
        values: &GpuTensor,
        sums: &GpuTensor,
        dy: &GpuTensor,
        deltas: &mut GpuTensor,
        grad: &mut GpuTensor,
    ) -> Result<()> {
        let offsets = p.check_backward(
            units,
            [
                weights.len,
                values.len,
                sums.len,
                dy.len,
                deltas.len,
                grad.len,
            ],
        )?;
        Self::check_shortcut_size(p, weights.len)?;
        let _span =
            tracing::debug_span!("gpu_shortcut_backward", rows = p.rows, units = units.len())
                .entered();
        let packed = self.shortcut_units(units, &offsets)?;
        let (_, units_t) = packed.as_ref().expect("units uploaded");
        let params = Params {
            derivative: derivative.code(),
            beta: if accumulate { 1.0 } else { 0.0 },
            ..shortcut_params(p)
        };
        let ph = &self.placeholder;
        self.elementwise(
            "shortcut_delta",
            params,
            &[weights, values, sums, dy, &*deltas, units_t],
            p.rows,
        )?;
        let groups = (p.units() * p.width()) as u32;
        self.record(
            "shortcut_gradient",
            params,
            &[&*deltas, values, &*grad, ph, ph, units_t],
            (groups, 1),
        )
    }
}
