//! The GPU value-of-information reductions in f32: one dispatch and one readback of
//! per-workgroup partials per call, the partials added in f64 on the host; the
//! regression design stays resident between its cross-products and its fitted
//! reductions.

use bytemuck::{Pod, Zeroable};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::voi::{
    Decision, DecisionSums, DesignShape, FittedLayout, Gram, Table, VoiBackend, no_design,
    validate_decision, validate_design, validate_fitted,
};

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};
use crate::readback::read_buffers;
use crate::sim::Growable;

/// The WGSL sources of the VOI module.
pub const WGSL_SOURCES: &[(&str, &str)] = &[(
    "decision.wgsl",
    include_str!("../../shaders/voi/decision.wgsl"),
)];

/// The VOI module as one WGSL source.
pub fn wgsl_module_source() -> String {
    crate::kernels::join(WGSL_SOURCES)
}

/// `VOI_WORKGROUP` in the shader.
const WORKGROUP: u32 = 128;
/// `GRAM_TILE` in the shader.
const TILE: u32 = 16;
/// Most row blocks per reduction: bounds the partials read back.
const MAX_BLOCKS: usize = 256;
/// Rows per chunk of the cross-products (a multiple of the tile).
const GRAM_CHUNK: usize = 1024;
/// Largest magnitude of a value the f32 kernels take (net benefits, costs, products
/// with the grid): far from f32's overflow, for sums over millions of rows.
const F32_LIMIT: f64 = 1e30;

/// Mirrors `VoiParams` in `shaders/voi/decision.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    strategies: u32,
    mode: u32,
    rows_per_thread: u32,
    groups_x: u32,
    grid: u32,
    p: u32,
    m: u32,
    stride: u32,
    _pad: [u32; 3],
}

fn pipelines(ctx: &GpuContext) -> Result<&KernelSet> {
    ctx.inner
        .voi
        .get_or_init(|| {
            KernelSet::build(
                ctx,
                KernelSetSpec {
                    label: "tessera voi",
                    source: wgsl_module_source(),
                    dynamic_uniform: false,
                    storage_read_only: &[true, true, true, true, false],
                    entry_points: &["decision_sums", "gram"],
                    workgroup_invocations: 256,
                },
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The wgpu implementation of [`VoiBackend`], in f32 (inputs are converted on
/// upload; the partials are added in f64).
pub struct GpuVoi {
    ctx: GpuContext,
    params: wgpu::Buffer,
    a: Growable,
    b: Growable,
    wtp: Growable,
    reference: Growable,
    partials: Growable,
    /// The resident design `Z = [X | Y]`, its rows, `X`'s columns and `Z`'s.
    design: Option<(wgpu::Buffer, usize, usize, usize)>,
    /// Bind groups of the last two buffer sets (the table's and the design's), made
    /// again only when a buffer is replaced.
    bind_groups: Vec<(Vec<wgpu::Buffer>, wgpu::BindGroup)>,
    /// The resident design's shape and largest magnitude.
    design_shape: Option<DesignShape>,
    /// The host buffer the resident design was uploaded from, handed back by
    /// `release_design` for reuse.
    design_host: Option<Vec<f64>>,
}

impl std::fmt::Debug for GpuVoi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuVoi")
            .field("context", &self.ctx)
            .field("design", &self.design.as_ref().map(|d| (d.1, d.2)))
            .finish()
    }
}

fn to_f32(t: &Table<'_>) -> Vec<f32> {
    (0..t.rows() * t.cols())
        .map(|i| t.values().get(i) as f32)
        .collect()
}

/// `v` as u32, saturated (the dispatch-limit check then refuses it).
fn saturate(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn check_rows(rows: usize) -> Result<()> {
    if rows > u32::MAX as usize {
        return Err(TesseraError::DeviceLimit {
            what: "rows",
            needed: rows as u64,
            limit: u32::MAX.into(),
        });
    }
    Ok(())
}

fn too_large(what: &'static str, value: f64) -> TesseraError {
    TesseraError::TooLarge {
        what,
        index: 0,
        value: value as f32,
        limit: F32_LIMIT as f32,
    }
}

impl GpuVoi {
    /// A backend on `ctx`'s device (the kernels are compiled once per device).
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        pipelines(ctx)?;
        let device = ctx.device();
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        Ok(Self {
            params: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera voi params"),
                size: std::mem::size_of::<Params>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            a: Growable::new(device, "tessera voi table a", storage),
            b: Growable::new(device, "tessera voi table b", storage),
            wtp: Growable::new(device, "tessera voi wtp", storage),
            reference: Growable::new(device, "tessera voi reference", storage),
            partials: Growable::new(
                device,
                "tessera voi partials",
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            ),
            design: None,
            design_shape: None,
            design_host: None,
            bind_groups: Vec::new(),
            ctx: ctx.clone(),
        })
    }

    fn check_bytes(&self, what: &'static str, bytes: u64) -> Result<()> {
        let limit = self.ctx.max_binding_bytes();
        if bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what,
                needed: bytes,
                limit,
            });
        }
        Ok(())
    }

    /// Uploads `data` into `buffer` (grown as needed), counted.
    fn upload(ctx: &GpuContext, buffer: &mut Growable, data: &[u8]) {
        buffer.ensure(ctx.device(), data.len().max(4) as u64);
        if !data.is_empty() {
            ctx.write_buffer(&buffer.buffer, 0, data);
        }
    }

    /// Runs one dispatch of `entry` over `groups` with `a` as binding 1, and reads
    /// back `floats` partials.
    fn run(
        &mut self,
        entry: &str,
        params: Params,
        a: Option<&wgpu::Buffer>,
        groups: (u32, u32, u32),
        floats: usize,
    ) -> Result<Vec<f32>> {
        let max = self.ctx.limits().max_compute_workgroups_per_dimension;
        for (what, n) in [
            ("workgroups in x", groups.0),
            ("reductions per call (workgroups in y)", groups.1),
            ("row chunks (workgroups in z)", groups.2),
        ] {
            if n > max {
                return Err(TesseraError::DeviceLimit {
                    what,
                    needed: n.into(),
                    limit: max.into(),
                });
            }
        }
        let bytes = (floats * 4) as u64;
        self.check_bytes("bytes of the partial sums", bytes)?;
        self.partials.ensure(self.ctx.device(), bytes.max(4));
        self.ctx
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        let set = pipelines(&self.ctx)?;
        let a = a.unwrap_or(&self.a.buffer).clone();
        let buffers = vec![
            self.params.clone(),
            a,
            self.b.buffer.clone(),
            self.wtp.buffer.clone(),
            self.reference.buffer.clone(),
            self.partials.buffer.clone(),
        ];
        let cached = self.bind_groups.iter().position(|(b, _)| *b == buffers);
        let slot = match cached {
            Some(slot) => slot,
            None => {
                let refs: Vec<&wgpu::Buffer> = buffers.iter().collect();
                let group = self.ctx.bind_buffers("tessera voi", &set.layout, &refs);
                // Two sets in use (the table's and the design's); an older one names
                // buffers since replaced, and dropping it frees them.
                if self.bind_groups.len() == 2 {
                    self.bind_groups.remove(0);
                }
                self.bind_groups.push((buffers, group));
                self.bind_groups.len() - 1
            }
        };
        let bind_group = &self.bind_groups[slot].1;
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tessera voi"),
                timestamp_writes: None,
            });
            self.ctx.count_pass();
            self.ctx.count_dispatch();
            pass.set_pipeline(set.get(entry));
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
        self.ctx.submit(encoder.finish());
        read_buffers(&self.ctx, &[(&self.partials.buffer, bytes)])
    }

    /// Blocks of rows and rows per invocation for `rows`.
    fn blocks(rows: usize) -> (u32, u32) {
        let per_thread = rows.div_ceil(WORKGROUP as usize * MAX_BLOCKS).max(1);
        let blocks = rows.div_ceil(WORKGROUP as usize * per_thread);
        (blocks as u32, per_thread as u32)
    }

    /// Uploads the references, runs `decision_sums` with `params` (its rows, strategies,
    /// mode and layout set; `a` in binding 1, else the table buffer) over one
    /// reduction per reference, and adds the partials in f64.
    fn decision_pass(
        &mut self,
        mut params: Params,
        a: Option<wgpu::Buffer>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        let (n, d, combos) = (
            params.rows as usize,
            params.strategies as usize,
            reference.len(),
        );
        let (blocks, per_thread) = Self::blocks(n);
        params.rows_per_thread = per_thread;
        params.groups_x = blocks;
        Self::upload(
            &self.ctx,
            &mut self.reference,
            bytemuck::cast_slice(reference),
        );
        let floats = combos * blocks as usize * (1 + 2 * d);
        let partials = self.run(
            "decision_sums",
            params,
            a.as_ref(),
            (blocks, saturate(combos), 1),
            floats,
        )?;
        Ok(Self::combine(
            &partials,
            combos,
            blocks as usize,
            d,
            n,
            reference,
        ))
    }

    /// Adds the partials of `combos` reductions over `blocks` blocks in f64.
    fn combine(
        partials: &[f32],
        combos: usize,
        blocks: usize,
        d: usize,
        rows: usize,
        reference: &[u32],
    ) -> Vec<DecisionSums> {
        let q = 1 + 2 * d;
        (0..combos)
            .map(|c| {
                let mut s = DecisionSums::zero(d, reference[c] as usize);
                s.rows = rows as u64;
                for g in 0..blocks {
                    let part = &partials[(c * blocks + g) * q..][..q];
                    s.sum_max += part[0] as f64;
                    for j in 0..d {
                        s.sum_inc[j] += part[1 + j] as f64;
                        s.optimal[j] += part[1 + d + j] as u64;
                    }
                }
                s
            })
            .collect()
    }
}

impl VoiBackend for GpuVoi {
    fn decision_sums(
        &mut self,
        decision: &Decision<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        validate_decision(decision, reference)?;
        let (n, d, combos) = (decision.rows(), decision.strategies(), decision.combos());
        check_rows(n)?;
        let (mode, a, b, wtp) = match decision {
            Decision::NetBenefit(t) => {
                if t.max_abs() > F32_LIMIT {
                    return Err(too_large("net benefits (GPU, f32)", t.max_abs()));
                }
                (0, to_f32(t), Vec::new(), Vec::new())
            }
            Decision::CostEffect {
                costs,
                effects,
                wtp,
            } => {
                let kmax = wtp.iter().fold(0.0f64, |m, k| m.max(k.abs()));
                let bound = kmax * effects.max_abs() + costs.max_abs();
                if bound > F32_LIMIT {
                    return Err(too_large(
                        "willingness-to-pay x effects - costs (GPU, f32)",
                        bound,
                    ));
                }
                let w: Vec<f32> = wtp.iter().map(|&k| k as f32).collect();
                (1, to_f32(costs), to_f32(effects), w)
            }
        };
        self.check_bytes("bytes of the net benefits or costs", (a.len() * 4) as u64)?;
        let _span = tracing::debug_span!("gpu_voi_decision", rows = n, combos).entered();
        Self::upload(&self.ctx, &mut self.a, bytemuck::cast_slice(&a));
        Self::upload(&self.ctx, &mut self.b, bytemuck::cast_slice(&b));
        Self::upload(&self.ctx, &mut self.wtp, bytemuck::cast_slice(&wtp));
        let params = Params {
            rows: n as u32,
            strategies: d as u32,
            mode,
            grid: 1,
            ..Params::zeroed()
        };
        self.decision_pass(params, None, reference)
    }

    fn load_design(&mut self, x: Vec<f64>, p: usize, y: &Table<'_>) -> Result<Gram> {
        let shape = validate_design(&x, p, y)?;
        let (n, m) = (y.rows(), y.cols());
        let q = p + m;
        let big = shape.max_abs.max(y.max_abs());
        if big > 1e15 {
            return Err(too_large(
                "design and responses (GPU, f32 cross-products)",
                big,
            ));
        }
        self.check_bytes("bytes of the design [X | Y]", (n * q * 4) as u64)?;
        check_rows(n)?;
        let _span = tracing::debug_span!("gpu_voi_gram", rows = n, p, m).entered();
        let mut z = Vec::with_capacity(n * q);
        for i in 0..n {
            z.extend((0..p).map(|j| x[j * n + i] as f32));
            z.extend((0..m).map(|k| y.get(i, k) as f32));
        }
        let chunk = GRAM_CHUNK.max(
            n.div_ceil(u16::MAX as usize)
                .next_multiple_of(TILE as usize),
        );
        let chunks = n.div_ceil(chunk);
        let tiles = q.div_ceil(TILE as usize) as u32;
        // Z stays resident: the fitted reductions read X as its first p columns.
        let z_buffer = self.ctx.buffer_init(
            "tessera voi design",
            bytemuck::cast_slice(&z),
            wgpu::BufferUsages::STORAGE,
        );
        let params = Params {
            rows: n as u32,
            strategies: 0,
            mode: 0,
            rows_per_thread: chunk as u32,
            groups_x: tiles,
            grid: 1,
            p: q as u32,
            ..Params::zeroed()
        };
        let partials = self.run(
            "gram",
            params,
            Some(&z_buffer),
            (tiles, tiles, chunks as u32),
            chunks * q * q,
        )?;
        let mut ztz = vec![0.0f64; q * q];
        for part in partials.chunks_exact(q * q) {
            ztz.iter_mut().zip(part).for_each(|(s, &v)| *s += v as f64);
        }
        self.design = Some((z_buffer, n, p, q));
        self.design_host = Some(x);
        self.design_shape = Some(shape);
        Ok(Gram { p, m, rows: n, ztz })
    }

    fn fitted_decision_sums(
        &mut self,
        coefs: &[f64],
        sets: usize,
        layout: &FittedLayout<'_>,
        reference: &[u32],
    ) -> Result<Vec<DecisionSums>> {
        let ((n, p, stride), shape) = match (&self.design, &self.design_shape) {
            (Some((_, n, p, q)), Some(shape)) => ((*n, *p, *q), *shape),
            _ => return Err(no_design()),
        };
        validate_fitted(coefs, sets, &shape, layout, reference)?;
        let (d, m, grid) = (layout.strategies(), layout.columns(), layout.grid());
        let (mode, wtp) = match layout {
            FittedLayout::NetBenefit { .. } => (2, Vec::new()),
            FittedLayout::CostEffect { wtp, .. } => {
                (3, wtp.iter().map(|&k| k as f32).collect::<Vec<f32>>())
            }
        };
        let kmax = match layout {
            FittedLayout::NetBenefit { .. } => 1.0,
            FittedLayout::CostEffect { wtp, .. } => wtp.iter().fold(1.0f64, |m, k| m.max(k.abs())),
        };
        let cmax = coefs.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        let bound = cmax * shape.max_abs * p as f64 * (kmax + 1.0);
        if bound > F32_LIMIT {
            return Err(too_large(
                "fitted values |X| |beta| p (1 + |k|) (GPU, f32)",
                bound,
            ));
        }
        let c: Vec<f32> = coefs.iter().map(|&v| v as f32).collect();
        let _span = tracing::debug_span!("gpu_voi_fitted", rows = n, p, sets, grid).entered();
        Self::upload(&self.ctx, &mut self.b, bytemuck::cast_slice(&c));
        Self::upload(&self.ctx, &mut self.wtp, bytemuck::cast_slice(&wtp));
        let params = Params {
            rows: n as u32,
            strategies: d as u32,
            mode,
            grid: grid as u32,
            p: p as u32,
            m: m as u32,
            stride: stride as u32,
            ..Params::zeroed()
        };
        let design = self.design.as_ref().map(|(b, ..)| b.clone());
        self.decision_pass(params, design, reference)
    }

    fn release_design(&mut self) -> Option<Vec<f64>> {
        self.design = None;
        self.design_shape = None;
        self.design_host.take()
    }
}
