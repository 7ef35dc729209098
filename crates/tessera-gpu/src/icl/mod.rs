//! The in-context kernels on the GPU in f32: the projections as strided GEMMs, the
//! attention mixtures in one workgroup per pair, the weight dynamics in one workgroup
//! per context; one submission and one readback per call. `v = A(x)/‖A(x)‖²`, the
//! norms and `A(C, x) = A(x) + ΔA` are formed on the host by the contract's
//! constructors from what is read back.

use bytemuck::{Pod, Zeroable};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::icl::{
    Contexts, ContextualBlock, Dynamics, DynamicsRun, IclBackend, RankOneUpdates, UpdateSequences,
    check_rank_one, validate_dynamics,
};

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};
use crate::readback::read_buffers;
use crate::sim::Growable;

/// The WGSL sources of the in-context module.
pub const WGSL_SOURCES: &[(&str, &str)] =
    &[("icl.wgsl", include_str!("../../shaders/icl/icl.wgsl"))];

/// The in-context module as one WGSL source.
pub fn wgsl_module_source() -> String {
    crate::kernels::join(WGSL_SOURCES)
}

/// `ICL_TILE` in the shader.
const TILE: usize = 16;
/// Iterations of the dynamics per dispatch: short dispatches, whatever the step cap.
const STEPS_PER_DISPATCH: usize = 64;

/// Operand selectors of the GEMM (the bindings, in order).
#[derive(Clone, Copy)]
enum Operand {
    Wq = 0,
    Wk = 1,
    Wv = 2,
    W = 3,
    Queries = 4,
    Work = 6,
}

/// Mirrors `IclParams` in `shaders/icl/icl.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    a_sel: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_sel: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    d: u32,
    pairs: u32,
    offsets_off: u32,
    qt_off: u32,
    diff_off: u32,
    sequence: u32,
    w_off: u32,
    r_off: u32,
    s_off: u32,
    scores_off: u32,
    history_off: u32,
    state_off: u32,
    max_steps: u32,
    steps: u32,
    pad0: u32,
    h: f32,
    lambda: f32,
    tolerance: f32,
    pad: u32,
}

/// One operand of a GEMM: binding, element offset, row and column strides.
type Matrix = (Operand, usize, usize, usize);

fn pipelines(ctx: &GpuContext) -> Result<&KernelSet> {
    ctx.inner
        .icl
        .get_or_init(|| {
            KernelSet::build(
                ctx,
                KernelSetSpec {
                    label: "tessera icl",
                    source: wgsl_module_source(),
                    dynamic_uniform: true,
                    storage_read_only: &[true, true, true, true, true, true, false],
                    entry_points: &["gemm", "mix_pairs", "dynamics"],
                    workgroup_invocations: 256,
                },
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The wgpu implementation of [`IclBackend`].
pub struct GpuIcl {
    ctx: GpuContext,
    params: Growable,
    /// Wq (or W_0), Wk, Wv, W, queries, tokens (or keys), work.
    buffers: [Growable; 7],
    bind_group: Option<wgpu::BindGroup>,
}

impl std::fmt::Debug for GpuIcl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuIcl")
            .field("context", &self.ctx)
            .finish()
    }
}

/// What a rank-1 call reads back.
struct Factors {
    /// `A(x)` per pair.
    alone: Vec<f32>,
    /// `ΔA` per mixture row.
    delta: Vec<f32>,
    /// `u` per mixture row.
    u: Vec<f32>,
}

/// A call's dispatches, recorded after their parameters are written.
struct Recording {
    dispatches: Vec<(&'static str, (u32, u32), Params)>,
}

impl Recording {
    fn gemm(
        &mut self,
        (m, n, k): (usize, usize, usize),
        a: Matrix,
        b: Matrix,
        c: usize,
        alpha: f32,
    ) {
        let p = Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            alpha,
            a_sel: a.0 as u32,
            a_off: a.1 as u32,
            a_rs: a.2 as u32,
            a_cs: a.3 as u32,
            b_sel: b.0 as u32,
            b_off: b.1 as u32,
            b_rs: b.2 as u32,
            b_cs: b.3 as u32,
            c_off: c as u32,
            ..Params::default()
        };
        self.dispatches.push((
            "gemm",
            (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32),
            p,
        ));
    }
}

impl GpuIcl {
    /// The kernels on `ctx`'s device (compiled once per device).
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        pipelines(ctx)?;
        let device = ctx.device();
        let read = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        Ok(Self {
            params: Growable::new(
                device,
                "tessera icl params",
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            buffers: ["wq", "wk", "wv", "w", "queries", "tokens", "work"]
                .map(|_| Growable::new(device, "tessera icl", read)),
            bind_group: None,
            ctx: ctx.clone(),
        })
    }

    /// Uploads `data` into buffer `i` (grown as needed).
    fn upload(&mut self, i: usize, data: &[f32]) -> Result<()> {
        self.reserve(i, data.len())?;
        if !data.is_empty() {
            self.ctx
                .write_buffer(&self.buffers[i].buffer, 0, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Grows buffer `i` to `floats` values, within one binding.
    fn reserve(&mut self, i: usize, floats: usize) -> Result<()> {
        let bytes = (floats as u64 * 4).max(16);
        let limit = self.ctx.max_binding_bytes();
        if bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one in-context operand (one storage binding)",
                needed: bytes,
                limit,
            });
        }
        if self.buffers[i].ensure(self.ctx.device(), bytes) {
            self.bind_group = None;
        }
        Ok(())
    }

    /// Writes the parameters, records every dispatch in one pass and submits, then
    /// reads back the first `floats` values of the work buffer.
    fn run(
        &mut self,
        rec: Recording,
        prepare: impl FnOnce(&mut wgpu::CommandEncoder, &wgpu::Buffer),
        floats: usize,
    ) -> Result<Vec<f32>> {
        let max = self.ctx.limits().max_compute_workgroups_per_dimension;
        if let Some((_, g, _)) = rec
            .dispatches
            .iter()
            .find(|(_, g, _)| g.0 > max || g.1 > max)
        {
            return Err(TesseraError::DeviceLimit {
                what: "workgroups per dimension of one in-context dispatch",
                needed: g.0.max(g.1).into(),
                limit: max.into(),
            });
        }
        let align = u64::from(self.ctx.limits().min_uniform_buffer_offset_alignment);
        let stride = (std::mem::size_of::<Params>() as u64).div_ceil(align) * align;
        let device = self.ctx.device().clone();
        if self
            .params
            .ensure(&device, stride * rec.dispatches.len().max(1) as u64)
        {
            self.bind_group = None;
        }
        let set = pipelines(&self.ctx)?;
        if self.bind_group.is_none() {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.params.buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            }];
            entries.extend(
                self.buffers
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: b.buffer.as_entire_binding(),
                    }),
            );
            self.bind_group = Some(self.ctx.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("tessera icl"),
                layout: &set.layout,
                entries: &entries,
            }));
        }
        let mut uniforms = vec![0u8; stride as usize * rec.dispatches.len()];
        for (i, (_, _, p)) in rec.dispatches.iter().enumerate() {
            let at = i * stride as usize;
            uniforms[at..at + std::mem::size_of::<Params>()].copy_from_slice(bytemuck::bytes_of(p));
        }
        if !uniforms.is_empty() {
            self.ctx.write_buffer(&self.params.buffer, 0, &uniforms);
        }
        let bind_group = self.bind_group.as_ref().expect("built above");
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tessera icl"),
        });
        prepare(&mut encoder, &self.buffers[6].buffer);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tessera icl"),
                timestamp_writes: None,
            });
            self.ctx.count_pass();
            for (i, (entry, groups, _)) in rec.dispatches.iter().enumerate() {
                if groups.0 == 0 || groups.1 == 0 {
                    continue;
                }
                pass.set_pipeline(set.get(entry));
                pass.set_bind_group(0, bind_group, &[(i as u64 * stride) as u32]);
                pass.dispatch_workgroups(groups.0, groups.1, 1);
                self.ctx.count_dispatch();
            }
        }
        self.ctx.submit(encoder.finish());
        read_buffers(&self.ctx, &[(&self.buffers[6].buffer, floats as u64 * 4)])
    }

    /// The shared part of both rank-1 calls: uploads, projections and mixtures, then
    /// `ΔA` and `u` of every mixture row.
    fn updates(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
        pairs: usize,
        sequence: bool,
    ) -> Result<Factors> {
        let (d, d_k, d_v, m) = (block.d_model(), block.d_k(), block.d_v(), block.m());
        let rows = if sequence {
            *contexts.offsets.last().unwrap_or(&0)
        } else {
            pairs
        };
        // Work: A(x) | ΔA | u (read back), then offsets, q, q̃, mixtures.
        let alone = 0;
        let delta = alone + pairs * d_v;
        let u = delta + rows * d_v;
        let offsets = u + rows * m;
        let q = offsets + pairs + 1;
        let qt = q + pairs * d_k;
        let diff = qt + pairs * d;
        let total = diff + rows * d;
        for (i, data) in [
            block.wq(),
            block.wk(),
            block.wv(),
            block.w(),
            contexts.queries,
            contexts.tokens,
        ]
        .into_iter()
        .enumerate()
        {
            self.upload(i, data)?;
        }
        self.reserve(6, total)?;
        let bits: Vec<u32> = contexts.offsets.iter().map(|&o| o as u32).collect();
        self.ctx.write_buffer(
            &self.buffers[6].buffer,
            offsets as u64 * 4,
            bytemuck::cast_slice(&bits),
        );
        let mut rec = Recording {
            dispatches: Vec::new(),
        };
        let queries = (Operand::Queries, 0, d, 1);
        rec.gemm((pairs, d_v, d), queries, (Operand::Wv, 0, 1, d), alone, 1.0);
        rec.gemm((pairs, d_k, d), queries, (Operand::Wq, 0, 1, d), q, 1.0);
        rec.gemm(
            (pairs, d, d_k),
            (Operand::Work, q, d_k, 1),
            (Operand::Wk, 0, d, 1),
            qt,
            block.scale(),
        );
        rec.dispatches.push((
            "mix_pairs",
            (pairs as u32, 1),
            Params {
                d: d as u32,
                pairs: pairs as u32,
                offsets_off: offsets as u32,
                qt_off: qt as u32,
                diff_off: diff as u32,
                sequence: sequence as u32,
                ..Params::default()
            },
        ));
        rec.gemm(
            (rows, d_v, d),
            (Operand::Work, diff, d, 1),
            (Operand::Wv, 0, 1, d),
            delta,
            1.0,
        );
        rec.gemm(
            (rows, m, d_v),
            (Operand::Work, delta, d_v, 1),
            (Operand::W, 0, 1, d_v),
            u,
            1.0,
        );
        let out = self.run(rec, |_, _| {}, offsets)?;
        let (a, rest) = out.split_at(delta);
        let (dl, uu) = rest.split_at(rows * d_v);
        Ok(Factors {
            alone: a.to_vec(),
            delta: dl.to_vec(),
            u: uu.to_vec(),
        })
    }
}

impl IclBackend for GpuIcl {
    fn rank_one_updates(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<RankOneUpdates> {
        let pairs = check_rank_one(block, contexts)?;
        let _span = tracing::debug_span!("gpu_rank_one_updates", pairs).entered();
        let Factors { alone, delta, u } = self.updates(block, contexts, pairs, false)?;
        RankOneUpdates::from_factors(block.m(), block.d_v(), alone, &delta, u)
    }

    fn update_sequences(
        &mut self,
        block: &ContextualBlock<'_>,
        contexts: &Contexts<'_>,
    ) -> Result<UpdateSequences> {
        let pairs = check_rank_one(block, contexts)?;
        let _span = tracing::debug_span!("gpu_update_sequences", pairs).entered();
        let Factors { alone, u, .. } = self.updates(block, contexts, pairs, true)?;
        UpdateSequences::new(block.m(), contexts.offsets, u, &alone, block.d_v())
    }

    fn weight_dynamics(&mut self, p: &Dynamics<'_>) -> Result<DynamicsRun> {
        let contexts = validate_dynamics(p)?;
        let _span = tracing::debug_span!("gpu_weight_dynamics", contexts, dim = p.dim).entered();
        let d = p.dim;
        let keys = *p.offsets.last().unwrap_or(&0);
        // Work: history | state | weights (read back), then offsets, r, s, scores.
        let history = 0;
        let state = history + contexts * p.max_steps;
        let weights = state + 2 * contexts;
        let offsets = weights + contexts * d * d;
        let r = offsets + contexts + 1;
        let s = r + contexts * d;
        let scores = s + contexts * d;
        let total = scores + keys;
        self.upload(0, p.initial.unwrap_or(&[]))?;
        self.upload(4, p.queries)?;
        self.upload(5, p.keys)?;
        self.reserve(6, total)?;
        let bits: Vec<u32> = p.offsets.iter().map(|&o| o as u32).collect();
        self.ctx.write_buffer(
            &self.buffers[6].buffer,
            offsets as u64 * 4,
            bytemuck::cast_slice(&bits),
        );
        let base = Params {
            d: d as u32,
            pairs: contexts as u32,
            offsets_off: offsets as u32,
            w_off: weights as u32,
            r_off: r as u32,
            s_off: s as u32,
            scores_off: scores as u32,
            history_off: history as u32,
            state_off: state as u32,
            max_steps: p.max_steps as u32,
            steps: STEPS_PER_DISPATCH as u32,
            h: p.step,
            lambda: p.decay,
            tolerance: p.tolerance,
            ..Params::default()
        };
        let rec = Recording {
            dispatches: (0..p.max_steps.div_ceil(STEPS_PER_DISPATCH))
                .map(|_| ("dynamics", (contexts as u32, 1), base))
                .collect(),
        };
        let initial = p.initial.is_some().then(|| self.buffers[0].buffer.clone());
        let matrix = (d * d * 4) as u64;
        let out = self.run(
            rec,
            |encoder, work| {
                // The state starts at zero; every context's W at W_0 (or zero).
                encoder.clear_buffer(work, state as u64 * 4, Some((2 * contexts) as u64 * 4));
                match &initial {
                    Some(w0) => {
                        for b in 0..contexts {
                            encoder.copy_buffer_to_buffer(
                                w0,
                                0,
                                work,
                                (weights as u64) * 4 + b as u64 * matrix,
                                matrix,
                            );
                        }
                    }
                    None => encoder.clear_buffer(
                        work,
                        weights as u64 * 4,
                        Some(contexts as u64 * matrix),
                    ),
                }
            },
            offsets,
        )?;
        let mut run = DynamicsRun {
            dim: d,
            max_steps: p.max_steps,
            weights: out[weights..offsets].to_vec(),
            steps: Vec::with_capacity(contexts),
            converged: Vec::with_capacity(contexts),
            history: out[history..state].to_vec(),
        };
        for b in 0..contexts {
            let steps = out[state + 2 * b].to_bits() as usize;
            run.steps.push(steps);
            run.converged.push(out[state + 2 * b + 1].to_bits() != 0);
            let row = &mut run.history[b * p.max_steps..(b + 1) * p.max_steps];
            row[steps.min(p.max_steps)..]
                .iter_mut()
                .for_each(|v| *v = 0.0);
            if let Some(t) = row[..steps].iter().position(|v| !v.is_finite()) {
                return Err(TesseraError::Diverged {
                    what: "weight dynamics |dW|",
                    step: t + 1,
                    value: row[t] as f64,
                });
            }
        }
        Ok(run)
    }
}
