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

use crate::{Backend, Device, Result};

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
        Ok(Self { inner })
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
        self.index_mut().add(vectors)
    }

    /// The best `k` stored vectors for each of `queries` (row-major), best first: the
    /// highest similarity, or the lowest squared distance under [`Metric::L2`], ties
    /// to the lower id. With a `threshold`, only similarities at least it (distances
    /// at most it) are kept.
    pub fn search(&mut self, queries: &[f32], k: usize, threshold: Option<f32>) -> Result<Hits> {
        self.index_mut().search(queries, k, threshold)
    }
}
