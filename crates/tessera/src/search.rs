//! Exact top-k similarity search over an index resident on the device.
//!
//! ```
//! use tessera::Device;
//! use tessera::search::{Index, IndexConfig, Metric};
//!
//! let device = Device::new_blocking();
//! let mut index = Index::on(&device, IndexConfig::new(3, Metric::Cosine))?;
//! index.add(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.7, 0.7, 0.0])?;
//! let hits = index.search(&[1.0, 0.1, 0.0], 2, None)?;
//! assert_eq!(hits.ids(0), &[0, 2]); // most similar first
//! # Ok::<(), tessera::TesseraError>(())
//! ```

use tessera_cpu::{CpuIndex, SimdLevel};
#[cfg(feature = "gpu")]
use tessera_gpu::GpuIndex;
pub use tessera_tensor::search::{
    Hits, IndexConfig, MAX_DIM, MAX_K, MAX_MAGNITUDE, MAX_VECTORS, Metric, Storage, VectorIndex,
};
use tessera_tensor::search::{check_search, exact_score, push_exact};

use crate::{Backend, Device, Result, TesseraError};

/// Largest number of candidates per result a refined index reranks.
pub const MAX_REFINE_FACTOR: usize = 64;

// One per index: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Cpu(CpuIndex),
    #[cfg(feature = "gpu")]
    Gpu(GpuIndex),
}

/// An exact similarity index on one device: vectors appended and held there (the GPU
/// keeps them resident, split across storage bindings as needed), searched for the
/// best `k` of each query, exactly as an f64 brute force ranks them.
pub struct Index {
    inner: Inner,
    refine: Option<Refine>,
}

/// What a refined index keeps on the host to rerank candidates exactly.
struct Refine {
    /// Candidates per result.
    factor: usize,
    /// The vectors as added, row-major.
    originals: Vec<f32>,
    /// `1 / ‖x‖` of each, in f64 (kept under the cosine metric only).
    inv_norms: Vec<f64>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("backend", &self.backend())
            .field("config", &self.config())
            .field("len", &self.len())
            .finish()
    }
}

impl Index {
    /// An empty index on `device`.
    pub fn on(device: &Device, config: IndexConfig) -> Result<Self> {
        let inner = match device {
            Device::Cpu(cpu) if cpu.is_scalar() => {
                Inner::Cpu(CpuIndex::with_level(config, SimdLevel::Scalar)?)
            }
            Device::Cpu(_) => Inner::Cpu(CpuIndex::new(config)?),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => Inner::Gpu(GpuIndex::new(ctx, config)?),
        };
        Ok(Self {
            inner,
            refine: None,
        })
    }

    /// The same (empty) index, keeping an f32 copy of every vector added on the host
    /// and answering each search by reranking the best `factor · k` candidates of
    /// the stored precision (at most 1024, at most the index) by exact scores,
    /// computed in f64 from the copies: the reduced-precision storage still sets the
    /// search's bandwidth, and the results are those of an f64 brute force whenever
    /// the true best `k` are among the candidates (faiss's `IndexRefineFlat` does the
    /// same). Meant for [`Storage::Bf16`]; the copy costs 4 bytes a value of host
    /// memory. `factor` is 1 to [`MAX_REFINE_FACTOR`]; the index must be empty.
    pub fn with_refinement(mut self, factor: usize) -> Result<Self> {
        if factor == 0 || factor > MAX_REFINE_FACTOR {
            return Err(TesseraError::InvalidConfig {
                field: "refinement factor",
                value: factor.to_string(),
                expected: format!("1..={MAX_REFINE_FACTOR} candidates per result"),
            });
        }
        if !self.is_empty() {
            return Err(TesseraError::InvalidConfig {
                field: "refinement",
                value: format!("an index of {} vectors", self.len()),
                expected: "an empty index (the copies must cover every vector)".into(),
            });
        }
        self.refine = Some(Refine {
            factor,
            originals: Vec::new(),
            inv_norms: Vec::new(),
        });
        Ok(self)
    }

    /// Candidates per result when the index is refined.
    pub fn refinement(&self) -> Option<usize> {
        self.refine.as_ref().map(|r| r.factor)
    }

    /// The backend the index lives on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => Backend::Gpu,
        }
    }

    fn index(&self) -> &dyn VectorIndex {
        match &self.inner {
            Inner::Cpu(i) => i,
            #[cfg(feature = "gpu")]
            Inner::Gpu(i) => i,
        }
    }

    fn index_mut(&mut self) -> &mut dyn VectorIndex {
        match &mut self.inner {
            Inner::Cpu(i) => i,
            #[cfg(feature = "gpu")]
            Inner::Gpu(i) => i,
        }
    }

    /// The dimension, metric and storage.
    pub fn config(&self) -> IndexConfig {
        self.index().config()
    }

    /// Number of stored vectors.
    pub fn len(&self) -> usize {
        self.index().len()
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `vectors` (row-major, `dim` values each); they get the next ids. Bad
    /// input (a length that is not a multiple of `dim`, NaN, infinity, a value beyond
    /// [`MAX_MAGNITUDE`], a zero vector under [`Metric::Cosine`]) is a typed error that
    /// leaves the index unchanged.
    pub fn add(&mut self, vectors: &[f32]) -> Result<()> {
        let config = self.config();
        if let Some(refine) = &mut self.refine {
            // Room first, so a failed reservation leaves both copies as they were.
            let rows = vectors.len() / config.dim;
            refine
                .originals
                .try_reserve(vectors.len())
                .and_then(|()| refine.inv_norms.try_reserve(rows))
                .map_err(|_| TesseraError::InvalidArgument {
                    what: "vectors (host copy for refinement)",
                    value: vectors.len() as f64,
                    expected: "a copy that fits in host memory",
                })?;
        }
        self.index_mut().add(vectors)?;
        if let Some(refine) = &mut self.refine {
            refine.originals.extend_from_slice(vectors);
            if config.metric == Metric::Cosine {
                let inv_norm = |v: &[f32]| 1.0 / exact_score(Metric::InnerProduct, v, v).sqrt();
                let rows = vectors.chunks_exact(config.dim);
                refine.inv_norms.extend(rows.map(inv_norm));
            }
        }
        Ok(())
    }

    /// The best `k` stored vectors for each of `queries` (row-major), best first: the
    /// highest similarity, or the lowest squared distance under [`Metric::L2`], ties
    /// to the lower id. With a `threshold`, only similarities at least it (distances
    /// at most it) are kept.
    ///
    /// A refined index ([`Index::with_refinement`]) ranks by exact scores from its f32
    /// copies.
    pub fn search(&mut self, queries: &[f32], k: usize, threshold: Option<f32>) -> Result<Hits> {
        let Some(factor) = self.refinement() else {
            return self.index_mut().search(queries, k, threshold);
        };
        let config = self.config();
        check_search(&config, self.len(), queries, k, threshold)?;
        let candidates = k.saturating_mul(factor).min(MAX_K).min(self.len());
        let found = self.index_mut().search(queries, candidates, None)?;
        match &self.refine {
            Some(refine) => Ok(refine.rerank(config, queries, &found, k, threshold)),
            None => Ok(found),
        }
    }
}

impl Refine {
    /// Each query's results: its candidates in `found` ranked by exact f64 scores
    /// from the copies, the best `k`, those past `threshold` cut.
    fn rerank(
        &self,
        config: IndexConfig,
        queries: &[f32],
        found: &Hits,
        k: usize,
        threshold: Option<f32>,
    ) -> Hits {
        let _span = tracing::debug_span!("refine", queries = found.queries(), k).entered();
        let dim = config.dim;
        let mut hits = Hits::with_capacity(found.queries(), k);
        for (q, query) in queries.chunks_exact(dim).enumerate() {
            let query_inv_norm = 1.0 / exact_score(Metric::InnerProduct, query, query).sqrt();
            let scored: Vec<(u32, f64)> = found
                .ids(q)
                .iter()
                .map(|&id| {
                    let i = id as usize;
                    let v = &self.originals[i * dim..(i + 1) * dim];
                    let score = exact_score(config.metric, query, v);
                    match config.metric {
                        Metric::Cosine => (id, score * query_inv_norm * self.inv_norms[i]),
                        _ => (id, score),
                    }
                })
                .collect();
            push_exact(&mut hits, config.metric, scored, threshold);
        }
        hits
    }
}
