//! Exact top-k similarity search on the GPU: the index resident in panels split across
//! as many storage bindings as it needs, one submission per search (block selection,
//! a merge tree of sorted lists, the copy of the k best) and one readback of k results
//! per query.

use bytemuck::{Pod, Zeroable};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::search::{
    Candidate, Hits, IndexConfig, MAX_K, Metric, Storage, VectorIndex, check_add, check_search,
    finish_query, prepare, storage_words, words_per_vector,
};

use crate::GpuContext;
use crate::kernels::{KernelSet, KernelSetSpec};
use crate::readback::read_buffers;
use crate::sim::Growable;

/// The WGSL sources of the search module.
pub const WGSL_SOURCES: &[(&str, &str)] =
    &[("topk.wgsl", include_str!("../../shaders/search/topk.wgsl"))];

/// The search module as one WGSL source.
pub fn wgsl_module_source() -> String {
    crate::kernels::join(WGSL_SOURCES)
}

/// `SEARCH_PANEL` in the shader.
const PANEL: usize = 64;
/// `SEARCH_BLOCK` in the shader: vectors a workgroup of `select_blocks` scores.
const BLOCK: usize = 1024;
/// `SEARCH_QUERIES` in the shader.
const QUERIES_PER_GROUP: usize = 4;
/// `SEARCH_WORKGROUP` in the shader.
const WORKGROUP: u32 = 256;
/// Workgroup memory of the sort: 2048 keys and ids.
const SORT_BYTES: u32 = 2048 * 8;
/// Largest list buffer a search allocates (smaller where the device's bindings are).
const LIST_BYTES: u64 = 256 << 20;
/// Bytes of one candidate (key bits, id).
const CANDIDATE_BYTES: u64 = 8;

/// Mirrors `SearchParams` in `shaders/search/topk.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct Params {
    words: u32,
    bf16: u32,
    l2: u32,
    queries: u32,
    query_base: u32,
    len: u32,
    id_base: u32,
    block_base: u32,
    slot_base: u32,
    lists: u32,
    slots: u32,
    keep: u32,
    k: u32,
    result_base: u32,
    pad: [u32; 2],
}

fn pipelines(ctx: &GpuContext) -> Result<&KernelSet> {
    ctx.inner
        .search
        .get_or_init(|| {
            let limit = ctx.limits().max_compute_workgroup_storage_size;
            if SORT_BYTES > limit {
                return Err(TesseraError::DeviceLimit {
                    what: "workgroup memory bytes of the top-k sort",
                    needed: SORT_BYTES.into(),
                    limit: limit.into(),
                });
            }
            KernelSet::build(
                ctx,
                KernelSetSpec {
                    label: "tessera search",
                    source: wgsl_module_source(),
                    dynamic_uniform: true,
                    storage_read_only: &[true, true, true, false, false, false],
                    entry_points: &["select_blocks", "merge_lists", "finish"],
                    workgroup_invocations: WORKGROUP,
                },
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One storage binding's share of the index: whole blocks of vectors.
struct Chunk {
    data: wgpu::Buffer,
    norms: wgpu::Buffer,
    /// Vectors the buffers have room for (whole blocks).
    capacity: usize,
}

/// Where a search's lists go and how many blocks a round takes.
#[derive(Debug, Clone, Copy)]
struct Plan {
    keep: usize,
    batch: usize,
    blocks_per_round: usize,
}

/// An exact similarity index resident on a GPU (see [`VectorIndex`]).
pub struct GpuIndex {
    ctx: GpuContext,
    config: IndexConfig,
    words: usize,
    len: usize,
    /// Most vectors one chunk (one binding) holds.
    chunk_vectors: usize,
    chunks: Vec<Chunk>,
    /// The packed words of the last, partly filled panel (re-sent whole on append).
    tail: Vec<u32>,
    /// The norms of the vectors in `tail`.
    tail_norms: Vec<f32>,
    params: Growable,
    queries: Growable,
    lists: [Growable; 2],
    results: Growable,
    /// Two bind groups per chunk (lists 0 → 1 and 1 → 0), rebuilt when a buffer changes.
    bind_groups: Vec<[wgpu::BindGroup; 2]>,
    stale: bool,
}

impl std::fmt::Debug for GpuIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuIndex")
            .field("context", &self.ctx)
            .field("config", &self.config)
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

fn storage_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC
}

impl GpuIndex {
    /// An empty index on `ctx`'s device (the kernels are compiled once per device).
    ///
    /// Fails with [`TesseraError::DeviceLimit`] when one block of 1024 vectors does not
    /// fit one storage binding of this device.
    pub fn new(ctx: &GpuContext, config: IndexConfig) -> Result<Self> {
        config.check()?;
        pipelines(ctx)?;
        let words = words_per_vector(config.storage, config.dim);
        let block_bytes = (BLOCK * words * 4) as u64;
        let limit = ctx.max_binding_bytes();
        if block_bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of one block of 1024 vectors (one storage binding)",
                needed: block_bytes,
                limit,
            });
        }
        let chunk_vectors = ((limit / block_bytes) as usize * BLOCK).min(1 << 31);
        let device = ctx.device();
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        Ok(Self {
            config,
            words,
            len: 0,
            chunk_vectors,
            chunks: Vec::new(),
            tail: Vec::new(),
            tail_norms: Vec::new(),
            params: Growable::new(
                device,
                "tessera search params",
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            queries: Growable::new(device, "tessera search queries", storage),
            lists: [
                Growable::new(
                    device,
                    "tessera search lists a",
                    wgpu::BufferUsages::STORAGE,
                ),
                Growable::new(
                    device,
                    "tessera search lists b",
                    wgpu::BufferUsages::STORAGE,
                ),
            ],
            results: Growable::new(
                device,
                "tessera search results",
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            ),
            bind_groups: Vec::new(),
            stale: true,
            ctx: ctx.clone(),
        })
    }

    /// The context the index lives on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Storage bindings the index is split across.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Makes room for `total` vectors: grows the last chunk (copying it on the device)
    /// and adds chunks, each of whole blocks, up to one binding each.
    fn reserve(&mut self, total: usize) -> Result<()> {
        let device = self.ctx.device().clone();
        let mut encoder = None;
        let mut start = 0;
        for i in 0.. {
            if start >= total {
                break;
            }
            let wanted = (total - start).min(self.chunk_vectors);
            let capacity = wanted
                .next_power_of_two()
                .max(BLOCK)
                .min(self.chunk_vectors);
            if i < self.chunks.len() {
                if self.chunks[i].capacity < wanted {
                    let grown = self.allocate(&device, capacity)?;
                    let old = &self.chunks[i];
                    let enc = encoder.get_or_insert_with(|| {
                        device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("tessera search grow"),
                        })
                    });
                    enc.copy_buffer_to_buffer(&old.data, 0, &grown.data, 0, old.data.size());
                    enc.copy_buffer_to_buffer(&old.norms, 0, &grown.norms, 0, old.norms.size());
                    self.chunks[i] = grown;
                    self.stale = true;
                }
            } else {
                let chunk = self.allocate(&device, capacity)?;
                self.chunks.push(chunk);
                self.stale = true;
            }
            start += self.chunks[i].capacity.min(self.chunk_vectors);
        }
        if let Some(enc) = encoder {
            self.ctx.submit(enc.finish());
        }
        Ok(())
    }

    fn allocate(&self, device: &wgpu::Device, capacity: usize) -> Result<Chunk> {
        let data_bytes = (capacity * self.words * 4) as u64;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let chunk = Chunk {
            data: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera search index"),
                size: data_bytes,
                usage: storage_usage(),
                mapped_at_creation: false,
            }),
            norms: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera search norms"),
                size: (capacity * 4) as u64,
                usage: storage_usage(),
                mapped_at_creation: false,
            }),
            capacity,
        };
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(TesseraError::Device(format!(
                "the index does not fit the device's memory: {error}"
            )));
        }
        Ok(chunk)
    }

    /// Writes packed panels of vectors `first..` (whose words are `rows`, `first` a
    /// multiple of the panel width) into the chunks, and their norms.
    fn write_panels(&self, first: usize, rows: &[u32], norms: &[f32]) {
        let words = self.words;
        let count = norms.len();
        let mut done = 0;
        while done < count {
            let v = first + done;
            let (chunk, local) = (v / self.chunk_vectors, v % self.chunk_vectors);
            let n = (count - done).min(self.chunk_vectors - local);
            let panels = n.div_ceil(PANEL);
            let mut packed = vec![0u32; panels * PANEL * words];
            for i in 0..n {
                let (p, lane) = (i / PANEL, i % PANEL);
                let row = &rows[(done + i) * words..(done + i + 1) * words];
                for (t, &w) in row.iter().enumerate() {
                    packed[(p * words + t) * PANEL + lane] = w;
                }
            }
            let c = &self.chunks[chunk];
            self.ctx.write_buffer(
                &c.data,
                (local * words * 4) as u64,
                bytemuck::cast_slice(&packed),
            );
            self.ctx.write_buffer(
                &c.norms,
                (local * 4) as u64,
                bytemuck::cast_slice(&norms[done..done + n]),
            );
            done += n;
        }
    }

    /// How a search of `count` queries for `k` results lays out its lists.
    fn plan(&self, count: usize, k: usize) -> Plan {
        let keep = k.next_power_of_two();
        let cap = LIST_BYTES.min(self.ctx.max_binding_bytes());
        let per_list = keep as u64 * CANDIDATE_BYTES;
        let max_groups = self.ctx.limits().max_compute_workgroups_per_dimension as usize;
        // Two slots per query at least (the running list and one block), and the
        // grids' limits.
        let batch = count
            .min((cap / (2 * per_list)) as usize)
            .min(max_groups)
            .min(max_groups * WORKGROUP as usize / k)
            .max(1);
        // No more slots than the largest chunk has blocks.
        let blocks = self.len.min(self.chunk_vectors).div_ceil(BLOCK).max(1);
        let blocks_per_round = ((cap / (batch as u64 * per_list)) as usize)
            .saturating_sub(1)
            .clamp(1, max_groups)
            .min(blocks);
        Plan {
            keep,
            batch,
            blocks_per_round,
        }
    }

    fn rebuild_bind_groups(&mut self) -> Result<()> {
        let set = pipelines(&self.ctx)?;
        let params = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.params.buffer,
            offset: 0,
            size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
        });
        self.bind_groups = self
            .chunks
            .iter()
            .map(|c| {
                [0, 1].map(|from| {
                    let buffers = [
                        &c.data,
                        &c.norms,
                        &self.queries.buffer,
                        &self.lists[from].buffer,
                        &self.lists[1 - from].buffer,
                        &self.results.buffer,
                    ];
                    let entries: Vec<wgpu::BindGroupEntry<'_>> =
                        std::iter::once(wgpu::BindGroupEntry {
                            binding: 0,
                            resource: params.clone(),
                        })
                        .chain(
                            buffers
                                .iter()
                                .enumerate()
                                .map(|(i, b)| wgpu::BindGroupEntry {
                                    binding: i as u32 + 1,
                                    resource: b.as_entire_binding(),
                                }),
                        )
                        .collect();
                    self.ctx.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("tessera search"),
                        layout: &set.layout,
                        entries: &entries,
                    })
                })
            })
            .collect();
        self.stale = false;
        Ok(())
    }
}

/// One dispatch of a search, recorded after its parameters are written.
struct Dispatch {
    entry: &'static str,
    chunk: usize,
    /// Which list buffer binds as `src` (the other as `dst`).
    from: usize,
    groups: (u32, u32),
    params: Params,
}

impl VectorIndex for GpuIndex {
    fn config(&self) -> IndexConfig {
        self.config
    }

    fn len(&self) -> usize {
        self.len
    }

    fn add(&mut self, vectors: &[f32]) -> Result<()> {
        let _span = tracing::debug_span!("gpu_index_add", values = vectors.len()).entered();
        let p = prepare(&self.config, "vectors", vectors)?;
        let added = p.norms_sq.len();
        check_add(self.len, added)?;
        if added == 0 {
            return Ok(());
        }
        self.ctx.check()?;
        self.reserve(self.len + added)?;
        // Re-send the partly filled last panel with the new rows after it.
        let first = self.len / PANEL * PANEL;
        let mut rows = std::mem::take(&mut self.tail);
        rows.extend(storage_words(
            self.config.storage,
            &p.values,
            self.config.dim,
        ));
        let mut norms = std::mem::take(&mut self.tail_norms);
        norms.extend(&p.norms_sq);
        self.write_panels(first, &rows, &norms);
        self.len += added;
        let kept = self.len % PANEL;
        self.tail = rows[rows.len() - kept * self.words..].to_vec();
        self.tail_norms = norms[norms.len() - kept..].to_vec();
        self.ctx.check()
    }

    fn search(&mut self, queries: &[f32], k: usize, threshold: Option<f32>) -> Result<Hits> {
        let q = check_search(&self.config, self.len, queries, k, threshold)?;
        let count = q.norms_sq.len();
        let _span =
            tracing::debug_span!("gpu_search", queries = count, k, vectors = self.len).entered();
        let mut hits = Hits::with_capacity(count, k);
        if count == 0 {
            return Ok(hits);
        }
        debug_assert!(k <= MAX_K);
        let words = storage_words(self.config.storage, &q.values, self.config.dim);
        let query_bytes = (words.len() * 4) as u64;
        let limit = self.ctx.max_binding_bytes();
        if query_bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of the queries of one search (one storage binding)",
                needed: query_bytes,
                limit,
            });
        }
        let result_bytes = (count * k) as u64 * CANDIDATE_BYTES;
        if result_bytes > limit {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of the results of one search (one storage binding)",
                needed: result_bytes,
                limit,
            });
        }
        self.ctx.check()?;
        let plan = self.plan(count, k);
        let slots = plan.blocks_per_round + 1;
        let list_bytes = (plan.batch * slots * plan.keep) as u64 * CANDIDATE_BYTES;
        let device = self.ctx.device().clone();
        let mut grown = self.queries.ensure(&device, query_bytes);
        for l in &mut self.lists {
            grown |= l.ensure(&device, list_bytes);
        }
        grown |= self.results.ensure(&device, result_bytes);

        // The dispatches: per batch of queries, per chunk, rounds of blocks each
        // selected then merged down to one list, then the copy of the k best.
        let base = Params {
            words: self.words as u32,
            bf16: (self.config.storage == Storage::Bf16) as u32,
            l2: (self.config.metric == Metric::L2) as u32,
            slots: slots as u32,
            keep: plan.keep as u32,
            k: k as u32,
            ..Params::default()
        };
        let mut dispatches = Vec::new();
        for batch_start in (0..count).step_by(plan.batch) {
            let batch = plan.batch.min(count - batch_start);
            let batch_params = Params {
                queries: batch as u32,
                query_base: batch_start as u32,
                result_base: batch_start as u32,
                ..base
            };
            let mut current = 0;
            let mut running = false;
            for c in 0..self.chunks.len() {
                let chunk_start = c * self.chunk_vectors;
                if chunk_start >= self.len {
                    break;
                }
                let chunk_len = (self.len - chunk_start).min(self.chunk_vectors);
                let blocks = chunk_len.div_ceil(BLOCK);
                for round_start in (0..blocks).step_by(plan.blocks_per_round) {
                    let round = plan.blocks_per_round.min(blocks - round_start);
                    let slot_base = running as usize;
                    let chunk_params = Params {
                        len: chunk_len as u32,
                        id_base: chunk_start as u32,
                        block_base: round_start as u32,
                        slot_base: slot_base as u32,
                        ..batch_params
                    };
                    dispatches.push(Dispatch {
                        entry: "select_blocks",
                        chunk: c,
                        from: 1 - current,
                        groups: (round as u32, batch.div_ceil(QUERIES_PER_GROUP) as u32),
                        params: chunk_params,
                    });
                    let mut lists = round + slot_base;
                    while lists > 1 {
                        dispatches.push(Dispatch {
                            entry: "merge_lists",
                            chunk: c,
                            from: current,
                            groups: (lists.div_ceil(2) as u32, batch as u32),
                            params: Params {
                                lists: lists as u32,
                                ..chunk_params
                            },
                        });
                        current = 1 - current;
                        lists = lists.div_ceil(2);
                    }
                    running = true;
                }
            }
            dispatches.push(Dispatch {
                entry: "finish",
                chunk: 0,
                from: current,
                groups: ((batch * k).div_ceil(WORKGROUP as usize) as u32, 1),
                params: batch_params,
            });
        }
        let max_groups = self.ctx.limits().max_compute_workgroups_per_dimension;
        if let Some(d) = dispatches
            .iter()
            .find(|d| d.groups.0 > max_groups || d.groups.1 > max_groups)
        {
            return Err(TesseraError::DeviceLimit {
                what: "workgroups per dimension of one search dispatch",
                needed: d.groups.0.max(d.groups.1).into(),
                limit: max_groups.into(),
            });
        }
        let align = u64::from(self.ctx.limits().min_uniform_buffer_offset_alignment);
        let stride = (std::mem::size_of::<Params>() as u64).div_ceil(align) * align;
        grown |= self
            .params
            .ensure(&device, stride * dispatches.len() as u64);
        if grown || self.stale {
            self.rebuild_bind_groups()?;
        }
        let mut uniforms = vec![0u8; (stride as usize) * dispatches.len()];
        for (i, d) in dispatches.iter().enumerate() {
            let at = i * stride as usize;
            uniforms[at..at + std::mem::size_of::<Params>()]
                .copy_from_slice(bytemuck::bytes_of(&d.params));
        }
        self.ctx.write_buffer(&self.params.buffer, 0, &uniforms);
        self.ctx
            .write_buffer(&self.queries.buffer, 0, bytemuck::cast_slice(&words));
        let set = pipelines(&self.ctx)?;
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tessera search"),
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tessera search"),
                timestamp_writes: None,
            });
            self.ctx.count_pass();
            for (i, d) in dispatches.iter().enumerate() {
                pass.set_pipeline(set.get(d.entry));
                pass.set_bind_group(
                    0,
                    &self.bind_groups[d.chunk][d.from],
                    &[(i as u64 * stride) as u32],
                );
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
                self.ctx.count_dispatch();
            }
        }
        self.ctx.submit(encoder.finish());
        let raw: Vec<[u32; 2]> = read_buffers(&self.ctx, &[(&self.results.buffer, result_bytes)])?;
        for (row, &qn) in raw.chunks_exact(k).zip(&q.norms_sq) {
            let mut candidates: Vec<Candidate> = row
                .iter()
                .map(|&[key, id]| Candidate {
                    key: f32::from_bits(key),
                    id,
                })
                .collect();
            finish_query(
                &mut hits,
                self.config.metric,
                qn,
                &mut candidates,
                threshold,
            );
        }
        Ok(hits)
    }
}
