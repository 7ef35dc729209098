//! Exact top-k similarity search on the CPU: stored vectors in transposed panels, a
//! register-tiled product of queries and panels at the widest SIMD level the CPU has
//! (AVX-512 with `vdpbf16ps` for bf16, AVX2 and FMA, or plain loops), each tile's
//! scores filtered into a running top-k per query at once, rayon over blocks of
//! panels. The score matrix is never formed.

mod kernels;
mod topk;

use rayon::prelude::*;
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::search::{
    Hits, IndexConfig, Metric, Prepared, Storage, VectorIndex, check_add, check_search,
    finish_query, prepare, storage_words, words_per_vector,
};

use crate::SimdLevel;
use kernels::{PANEL, Tile, TileArgs, has_avx512_bf16, tile_bf16, tile_f32};
use topk::TopK;

/// Panels per rayon task: 1024 vectors.
const BLOCK_PANELS: usize = 32;
/// Queries whose rows stay in L2 while a block's panels go past.
const QUERY_CHUNK: usize = 64;

/// The panels, in the storage's layout.
#[derive(Debug, Clone)]
enum Panels {
    F32(Vec<f32>),
    Bf16(Vec<u32>),
}

/// An exact similarity index in host memory (see [`VectorIndex`]).
#[derive(Debug, Clone)]
pub struct CpuIndex {
    config: IndexConfig,
    level: SimdLevel,
    bf16_dot: bool,
    len: usize,
    panels: Panels,
    /// `‖x‖²` per stored vector, padded to whole panels.
    norms_sq: Vec<f32>,
}

fn out_of_memory(what: &'static str, values: usize) -> TesseraError {
    TesseraError::InvalidArgument {
        what,
        value: values as f64,
        expected: "an index that fits in host memory",
    }
}

impl CpuIndex {
    /// An empty index at the widest SIMD level this CPU has, capped by
    /// `TESSERA_SIMD` (see [`SimdLevel::from_env`]).
    pub fn new(config: IndexConfig) -> Result<Self> {
        Self::with_level(config, SimdLevel::from_env()?)
    }

    /// An empty index pinned to scalar code.
    pub fn scalar(config: IndexConfig) -> Result<Self> {
        Self::with_level(config, SimdLevel::Scalar)
    }

    /// An empty index at `level`; an error if this CPU lacks it.
    pub fn with_level(config: IndexConfig, level: SimdLevel) -> Result<Self> {
        config.check()?;
        level.check_available()?;
        Ok(Self {
            config,
            level,
            bf16_dot: level == SimdLevel::Avx512 && has_avx512_bf16(),
            len: 0,
            panels: match config.storage {
                Storage::F32 => Panels::F32(Vec::new()),
                Storage::Bf16 => Panels::Bf16(Vec::new()),
            },
            norms_sq: Vec::new(),
        })
    }

    /// The SIMD level the search runs at.
    pub fn level(&self) -> SimdLevel {
        self.level
    }

    /// Bytes the stored vectors take (whole panels, padding included).
    pub fn stored_bytes(&self) -> usize {
        match &self.panels {
            Panels::F32(p) => p.len() * 4,
            Panels::Bf16(p) => p.len() * 4,
        }
    }

    fn panel_words(&self) -> usize {
        match self.config.storage {
            Storage::F32 => self.config.dim * PANEL,
            Storage::Bf16 => words_per_vector(Storage::Bf16, self.config.dim) * PANEL,
        }
    }

    /// Writes prepared rows into the panels, from vector `self.len` on.
    fn write_rows(&mut self, p: &Prepared) {
        let dim = self.config.dim;
        let words = self.panel_words();
        let start = self.len;
        match &mut self.panels {
            Panels::F32(panels) => {
                for (i, row) in p.values.chunks_exact(dim).enumerate() {
                    let (panel, lane) = ((start + i) / PANEL, (start + i) % PANEL);
                    let base = panel * words + lane;
                    for (t, &v) in row.iter().enumerate() {
                        panels[base + t * PANEL] = v;
                    }
                }
            }
            Panels::Bf16(panels) => {
                let packed = storage_words(Storage::Bf16, &p.values, dim);
                let np = words_per_vector(Storage::Bf16, dim);
                for (i, row) in packed.chunks_exact(np).enumerate() {
                    let (panel, lane) = ((start + i) / PANEL, (start + i) % PANEL);
                    let base = panel * words + lane;
                    for (t, &w) in row.iter().enumerate() {
                        panels[base + t * PANEL] = w;
                    }
                }
            }
        }
        self.norms_sq[start..start + p.norms_sq.len()].copy_from_slice(&p.norms_sq);
    }

    /// Scores one block of panels against every query, feeding the top-ks.
    fn search_block(&self, block: usize, queries: &QueryRows, tops: &mut [TopK]) {
        let first = block * BLOCK_PANELS;
        let panels = self.len.div_ceil(PANEL);
        for chunk in queries
            .groups
            .chunk_by(|a, b| a.first / QUERY_CHUNK == b.first / QUERY_CHUNK)
        {
            for panel in first..(first + BLOCK_PANELS).min(panels) {
                for g in chunk {
                    match g.rows {
                        8 => self.tile::<8>(panel, g, queries, tops),
                        4 => self.tile::<4>(panel, g, queries, tops),
                        3 => self.tile::<3>(panel, g, queries, tops),
                        2 => self.tile::<2>(panel, g, queries, tops),
                        _ => self.tile::<1>(panel, g, queries, tops),
                    }
                }
            }
        }
    }

    /// Scores the queries of group `g` against `panel` and keeps what reaches their
    /// floors.
    #[inline(always)]
    fn tile<const R: usize>(&self, panel: usize, g: &Group, q: &QueryRows, tops: &mut [TopK]) {
        let mut tile = Tile::<R>::new();
        let words = self.panel_words();
        let base = panel * PANEL;
        let args = TileArgs {
            norms: self.norms_sq[base..base + PANEL]
                .try_into()
                .expect("whole panels"),
            l2: self.config.metric == Metric::L2,
            floors: std::array::from_fn(|r| tops[g.first + r].floor_key()),
        };
        let (width, at) = (q.width, g.offset..g.offset + q.width * R);
        match (&self.panels, &q.packed) {
            (Panels::F32(p), Packed::F32(rows)) => {
                // SAFETY: the level was checked at construction; the slices hold R packed
                // query rows and one whole panel.
                unsafe {
                    tile_f32::<R>(
                        self.level,
                        &rows[at],
                        width,
                        &p[panel * words..(panel + 1) * words],
                        args,
                        &mut tile,
                    )
                }
            }
            (Panels::Bf16(p), Packed::Bf16(rows)) => {
                // SAFETY: as above; `bf16_dot` was set only where the CPU has it.
                unsafe {
                    tile_bf16::<R>(
                        self.level,
                        self.bf16_dot,
                        &rows[at],
                        width,
                        &p[panel * words..(panel + 1) * words],
                        args,
                        &mut tile,
                    )
                }
            }
            _ => unreachable!("queries are packed in the index's storage"),
        }
        let valid = (self.len - base).min(PANEL);
        let lanes = if valid == PANEL {
            u32::MAX
        } else {
            (1u32 << valid) - 1
        };
        for (r, keys) in tile.keys.iter().enumerate() {
            let mut hits = tile.hits[r] & lanes;
            let top = &mut tops[g.first + r];
            while hits != 0 {
                let j = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                top.insert(keys[j], (base + j) as u32);
            }
        }
    }
}

/// Queries packed for the tiles: groups of up to the level's tile height, each group
/// transposed (`[width][rows]`) so that a tile broadcasts from one running address.
struct QueryRows {
    /// Values (f32) or pair words (bf16) per query.
    width: usize,
    packed: Packed,
    groups: Vec<Group>,
}

enum Packed {
    F32(Vec<f32>),
    Bf16(Vec<u32>),
}

/// Queries `first..first + rows`, packed from `offset`.
struct Group {
    first: usize,
    rows: usize,
    offset: usize,
}

/// Packs row-major `values` (`width` per query) into groups of the tallest tile not
/// above `level_rows`, never straddling a [`QUERY_CHUNK`].
fn pack_groups<T: Copy>(values: &[T], width: usize, level_rows: usize) -> (Vec<T>, Vec<Group>) {
    let count = values.len() / width.max(1);
    let mut packed = Vec::with_capacity(values.len());
    let mut groups = Vec::new();
    let mut first = 0;
    while first < count {
        let chunk_end = (first / QUERY_CHUNK + 1) * QUERY_CHUNK;
        let left = count.min(chunk_end) - first;
        let rows = [8, 4, 3, 2, 1]
            .into_iter()
            .find(|&r| r <= level_rows && r <= left)
            .unwrap_or(1);
        groups.push(Group {
            first,
            rows,
            offset: packed.len(),
        });
        for t in 0..width {
            packed.extend((first..first + rows).map(|r| values[r * width + t]));
        }
        first += rows;
    }
    (packed, groups)
}

impl VectorIndex for CpuIndex {
    fn config(&self) -> IndexConfig {
        self.config
    }

    fn len(&self) -> usize {
        self.len
    }

    fn add(&mut self, vectors: &[f32]) -> Result<()> {
        let _span = tracing::debug_span!("cpu_index_add", values = vectors.len()).entered();
        let p = prepare(&self.config, "vectors", vectors)?;
        let added = p.norms_sq.len();
        check_add(self.len, added)?;
        let panels = (self.len + added).div_ceil(PANEL);
        let words = panels
            .checked_mul(self.panel_words())
            .ok_or_else(|| out_of_memory("vectors", vectors.len()))?;
        // Reserve first, so that running out of memory leaves the index as it was.
        match &mut self.panels {
            Panels::F32(v) => v.try_reserve_exact(words.saturating_sub(v.len())),
            Panels::Bf16(v) => v.try_reserve_exact(words.saturating_sub(v.len())),
        }
        .and_then(|_| {
            self.norms_sq
                .try_reserve_exact((panels * PANEL).saturating_sub(self.norms_sq.len()))
        })
        .map_err(|_| out_of_memory("vectors", vectors.len()))?;
        match &mut self.panels {
            Panels::F32(v) => v.resize(words, 0.0),
            Panels::Bf16(v) => v.resize(words, 0),
        }
        self.norms_sq.resize(panels * PANEL, 0.0);
        self.write_rows(&p);
        self.len += added;
        Ok(())
    }

    fn search(&mut self, queries: &[f32], k: usize, threshold: Option<f32>) -> Result<Hits> {
        let q = check_search(&self.config, self.len, queries, k, threshold)?;
        let count = q.norms_sq.len();
        let _span =
            tracing::debug_span!("cpu_search", queries = count, k, vectors = self.len).entered();
        let metric = self.config.metric;
        // The threshold as a floor on keys, so the tile loop drops what it would cut
        // (loosened under L2, where the key is a difference; the exact cut is final).
        let floors: Vec<f32> = q
            .norms_sq
            .iter()
            .map(|&qn| match (threshold, metric) {
                (None, _) => f32::NEG_INFINITY,
                (Some(t), Metric::L2) => (qn - t) - 1e-5 * (qn.abs() + t.abs()) - f32::MIN_POSITIVE,
                (Some(t), _) => t,
            })
            .collect();
        let level_rows = kernels::tile_rows(self.level);
        let rows = match self.config.storage {
            Storage::F32 => {
                let (packed, groups) = pack_groups(&q.values, self.config.dim, level_rows);
                QueryRows {
                    width: self.config.dim,
                    packed: Packed::F32(packed),
                    groups,
                }
            }
            Storage::Bf16 => {
                let width = words_per_vector(Storage::Bf16, self.config.dim);
                let words = storage_words(Storage::Bf16, &q.values, self.config.dim);
                let (packed, groups) = pack_groups(&words, width, level_rows);
                QueryRows {
                    width,
                    packed: Packed::Bf16(packed),
                    groups,
                }
            }
        };
        let fresh = || -> Vec<TopK> { floors.iter().map(|&f| TopK::new(k, f)).collect() };
        let blocks = self.len.div_ceil(PANEL).div_ceil(BLOCK_PANELS);
        let mut tops = if count == 0 {
            Vec::new()
        } else {
            (0..blocks)
                .into_par_iter()
                .fold(fresh, |mut tops, block| {
                    self.search_block(block, &rows, &mut tops);
                    tops
                })
                .reduce(fresh, |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        x.merge(y);
                    }
                    a
                })
        };
        let mut hits = Hits::with_capacity(count, k);
        for (top, &qn) in tops.iter_mut().zip(&q.norms_sq) {
            finish_query(&mut hits, metric, qn, top.candidates(), threshold);
        }
        Ok(hits)
    }
}
