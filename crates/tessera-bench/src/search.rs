//! Similarity workloads: exact top-10 of Q queries over N stored vectors (cosine,
//! f32 and bf16 storage), and the in-context kernels (the rank-1 updates of a batch of
//! pairs, the weight dynamics), on every backend through `tessera::search` and
//! `tessera::icl`, each with the machine's measured floor beside it.

use std::sync::OnceLock;

use rayon::prelude::*;
use tessera::icl::{Contexts, ContextualBlock, Dynamics, InContext};
use tessera::search::{Hits, Index, IndexConfig, Metric, Storage};
use tessera::{CpuDevice, Device};
use tessera_tensor::rng::Rng;

use crate::backends::{BackendKind, BenchBackend};
use crate::floors::Floors;
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// Results per query.
const K: usize = 10;
/// Cluster centres of the synthetic embeddings.
const CENTRES: usize = 1000;

/// One search workload.
#[derive(Debug, Clone, Copy)]
pub struct SearchWorkload {
    /// Report group.
    pub group: &'static str,
    /// Stored vectors.
    pub n: usize,
    /// Their dimension.
    pub dim: usize,
    /// Queries per search.
    pub queries: usize,
    /// f32 or bf16.
    pub storage: Storage,
    /// Candidates per result reranked exactly (`Index::with_refinement`), if any.
    pub refine: Option<usize>,
}

/// The sizes: Q = 1, 64, 1024 over 100K x 384, Q = 64 over 1M x 384 and
/// 100K x 1536, in f32 and bf16; the in-context kernels at d = 384, 1536, 3072.
pub fn workloads(quick: bool) -> Vec<Box<dyn Workload>> {
    let shapes: &[(usize, usize, usize)] = if quick {
        &[(100_000, 384, 64)]
    } else {
        &[
            (100_000, 384, 1),
            (100_000, 384, 64),
            (100_000, 384, 1024),
            (1_000_000, 384, 64),
            (100_000, 1536, 64),
        ]
    };
    let mut out: Vec<Box<dyn Workload>> = Vec::new();
    for (group, storage) in [("search-f32", Storage::F32), ("search-bf16", Storage::Bf16)] {
        for &(n, dim, queries) in shapes {
            out.push(Box::new(SearchWorkload {
                group,
                n,
                dim,
                queries,
                storage,
                refine: None,
            }));
        }
    }
    // bf16 storage with its best 4·k candidates reranked exactly from f32 copies.
    out.push(Box::new(SearchWorkload {
        group: "search-bf16",
        n: 100_000,
        dim: 384,
        queries: 64,
        storage: Storage::Bf16,
        refine: Some(2),
    }));
    let dims: &[usize] = if quick { &[384] } else { &[384, 1536, 3072] };
    for &dim in dims {
        out.push(Box::new(IclWorkload {
            kind: IclKind::Update,
            dim,
        }));
    }
    out.push(Box::new(IclWorkload {
        kind: IclKind::Dynamics,
        dim: 384,
    }));
    out
}

/// `n` synthetic embeddings of `dim`: one of 1000 centres plus noise, the way
/// real embeddings cluster; generated in parallel from `seed`.
pub fn embeddings(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(0xce17);
    let centres: Vec<f32> = (0..CENTRES * dim).map(|_| rng.normal()).collect();
    let mut out = vec![0.0f32; n * dim];
    out.par_chunks_mut(dim * 1024)
        .enumerate()
        .for_each(|(chunk, rows)| {
            let mut rng = Rng::new(seed ^ (chunk as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for row in rows.chunks_exact_mut(dim) {
                let c = rng.below(CENTRES);
                for (x, &m) in row.iter_mut().zip(&centres[c * dim..(c + 1) * dim]) {
                    *x = m + 0.7 * (rng.unit() * 2.0 - 1.0);
                }
            }
        });
    out
}

/// Fraction of `want`'s ids that `got` also returns, over every query.
fn recall(got: &Hits, want: &Hits) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for q in 0..want.queries() {
        total += want.ids(q).len();
        found += got
            .ids(q)
            .iter()
            .filter(|id| want.ids(q).contains(id))
            .count();
    }
    found as f64 / total.max(1) as f64
}

impl Workload for SearchWorkload {
    fn id(&self) -> String {
        format!("search/{}", self.label())
    }
    fn group(&self) -> &'static str {
        self.group
    }
    fn label(&self) -> String {
        let refined = self
            .refine
            .map_or(String::new(), |f| format!(" refined x{f}"));
        format!(
            "Q={} top-{K} over {} x {} {:?}{refined}",
            self.queries, self.n, self.dim, self.storage
        )
    }
    fn x(&self) -> f64 {
        self.queries as f64
    }
    fn unit(&self) -> &'static str {
        "queries"
    }
    fn items_per_iteration(&self) -> f64 {
        self.queries as f64
    }
    /// The stored vectors read once and one dot product per query and vector.
    fn cost(&self) -> Option<crate::cost::Cost> {
        let (n, d, q) = (self.n as f64, self.dim as f64, self.queries as f64);
        Some(crate::cost::Cost {
            bytes: n * d * self.storage.bytes_per_value() as f64,
            flops: 2.0 * q * n * d,
        })
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        Box::new(SearchFixture {
            w: *self,
            vectors: embeddings(self.n, self.dim, 1),
            queries: embeddings(self.queries, self.dim, 2),
            cpu: OnceLock::new(),
        })
    }
}

struct SearchFixture {
    w: SearchWorkload,
    vectors: Vec<f32>,
    queries: Vec<f32>,
    /// The CPU SIMD backend's results, and (bf16) the f32 results for recall.
    cpu: OnceLock<Result<(Hits, Option<Hits>), String>>,
}

impl SearchFixture {
    fn config(&self, storage: Storage) -> IndexConfig {
        IndexConfig::new(self.w.dim, Metric::Cosine).with_storage(storage)
    }

    fn build(&self, device: &Device, storage: Storage) -> Result<Index, String> {
        let mut index = Index::on(device, self.config(storage)).map_err(|e| e.to_string())?;
        if let (Some(factor), Storage::Bf16) = (self.w.refine, storage) {
            index = index.with_refinement(factor).map_err(|e| e.to_string())?;
        }
        index.add(&self.vectors).map_err(|e| e.to_string())?;
        Ok(index)
    }

    fn cpu_results(&self) -> Result<&(Hits, Option<Hits>), String> {
        self.cpu
            .get_or_init(|| {
                let search = |storage| -> Result<Hits, String> {
                    self.build(&Device::cpu(), storage)?
                        .search(&self.queries, K, None)
                        .map_err(|e| e.to_string())
                };
                let own = search(self.w.storage)?;
                let exact = match self.w.storage {
                    Storage::F32 => None,
                    Storage::Bf16 => Some(search(Storage::F32)?),
                };
                Ok((own, exact))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn note(&self, hits: &Hits) -> Result<String, String> {
        let (n, d, q) = (self.w.n as f64, self.w.dim as f64, self.w.queries as f64);
        let bytes = n * d * self.w.storage.bytes_per_value() as f64;
        let bf16 = self.w.storage == Storage::Bf16;
        let floor = Floors::get().seconds(bytes, 2.0 * q * n * d, bf16);
        let mut note = format!("CPU floor {:.2} ms", floor * 1e3);
        if let (_, Some(exact)) = self.cpu_results()? {
            note += &format!(", recall@{K} vs f32 {:.4}", recall(hits, exact));
        }
        Ok(note)
    }
}

impl Fixture for SearchFixture {
    fn prepare(&self, backend: &BenchBackend) -> Result<Prepared, String> {
        let large = self.w.n * self.w.dim * self.w.queries > 100_000 * 384 * 64;
        let device = match &backend.kind {
            BackendKind::CpuSimd => Device::cpu(),
            BackendKind::CpuScalar if large => {
                return Ok(Prepared::NotApplicable(
                    "scalar code beyond Q = 64 over 100K x 384 (minutes per run)",
                ));
            }
            BackendKind::CpuScalar => Device::Cpu(CpuDevice::scalar()),
            // Thousands of sorting barriers per search on a software rasteriser: the
            // kernels are tested there, not timed.
            BackendKind::Gpu(ctx) if ctx.is_software() => {
                return Ok(Prepared::NotApplicable(
                    "software rasteriser: search is tested there, not timed",
                ));
            }
            BackendKind::Gpu(ctx) => Device::from_context(ctx.clone()),
            _ => return Ok(Prepared::NotApplicable("no search on this backend")),
        };
        let (want, _) = self.cpu_results()?;
        let mut index = self.build(&device, self.w.storage)?;
        let got = index
            .search(&self.queries, K, None)
            .map_err(|e| e.to_string())?;
        // Every backend ranks exactly: only near-ties may swap.
        let agreement = recall(&got, want);
        if agreement < 0.995 {
            return Err(format!("only {agreement:.4} of the CPU's ids returned"));
        }
        let note = self.note(&got)?;
        let bytes = (self.w.n * self.w.dim * self.w.storage.bytes_per_value()) as u64;
        Ok(Prepared::Ready(
            Box::new(SearchRunner {
                index,
                queries: self.queries.clone(),
                note,
            }),
            bytes,
        ))
    }
}

struct SearchRunner {
    index: Index,
    queries: Vec<f32>,
    note: String,
}

impl Runner for SearchRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        // A search returns its k results per query on the host: that is its contract.
        self.index.search(&self.queries, K, None).map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.note.clone())
    }
}

/// What an in-context workload times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IclKind {
    /// The rank-1 updates of 64 pairs with 32-token contexts, `d_k = d_v = m = d`.
    Update,
    /// 64 contexts of 16 keys iterated to `‖ΔW‖ < 1e-4` (at most 100 steps).
    Dynamics,
}

/// Pairs (or contexts) per call.
const PAIRS: usize = 64;
/// Tokens per context of the update workload.
const CONTEXT: usize = 32;
/// Keys per context of the dynamics workload.
const KEYS: usize = 16;

/// One in-context workload.
#[derive(Debug, Clone, Copy)]
pub struct IclWorkload {
    /// What it times.
    pub kind: IclKind,
    /// Token (and weight) dimension.
    pub dim: usize,
}

impl Workload for IclWorkload {
    fn id(&self) -> String {
        format!("icl/{}", self.label())
    }
    fn group(&self) -> &'static str {
        match self.kind {
            IclKind::Update => "icl-update",
            IclKind::Dynamics => "icl-dynamics",
        }
    }
    fn label(&self) -> String {
        match self.kind {
            IclKind::Update => format!("{PAIRS} pairs x {CONTEXT} tokens, d = {}", self.dim),
            IclKind::Dynamics => format!("{PAIRS} contexts x {KEYS} keys, d = {}", self.dim),
        }
    }
    fn x(&self) -> f64 {
        self.dim as f64
    }
    fn unit(&self) -> &'static str {
        match self.kind {
            IclKind::Update => "pairs",
            IclKind::Dynamics => "contexts",
        }
    }
    fn items_per_iteration(&self) -> f64 {
        PAIRS as f64
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        let d = self.dim;
        let mut rng = Rng::new(0x1c1 + d as u64);
        let s = 1.0 / (d as f32).sqrt();
        let mut matrix =
            |n: usize, scale: f32| -> Vec<f32> { (0..n).map(|_| scale * rng.normal()).collect() };
        Box::new(IclFixture {
            w: *self,
            weights: [0; 4].map(|_| matrix(d * d, s)),
            queries: matrix(PAIRS * d, 1.0),
            tokens: matrix(PAIRS * CONTEXT.max(KEYS) * d, 1.0),
        })
    }
}

struct IclFixture {
    w: IclWorkload,
    /// Wq, Wk, Wv, W.
    weights: [Vec<f32>; 4],
    queries: Vec<f32>,
    tokens: Vec<f32>,
}

impl IclFixture {
    /// The workload's result (the u of every pair, or the final weights).
    fn compute(&self, icl: &mut InContext) -> tessera_tensor::Result<Vec<f32>> {
        let d = self.w.dim;
        match self.w.kind {
            IclKind::Update => {
                let [wq, wk, wv, w] = &self.weights;
                let block = ContextualBlock::new(d, d, d, d, wq, wk, wv, w)?;
                let offsets: Vec<usize> = (0..=PAIRS).map(|b| b * CONTEXT).collect();
                let contexts = Contexts {
                    queries: &self.queries,
                    tokens: &self.tokens[..PAIRS * CONTEXT * d],
                    offsets: &offsets,
                };
                Ok(icl.rank_one_updates(&block, &contexts)?.u)
            }
            IclKind::Dynamics => {
                let offsets: Vec<usize> = (0..=PAIRS).map(|b| b * KEYS).collect();
                let keys: Vec<f32> = self.tokens[..PAIRS * KEYS * d]
                    .iter()
                    .map(|v| v / (d as f32).sqrt())
                    .collect();
                let run = icl.weight_dynamics(&Dynamics {
                    dim: d,
                    queries: &self.queries,
                    keys: &keys,
                    offsets: &offsets,
                    initial: None,
                    step: 0.5,
                    decay: 0.3,
                    tolerance: 1e-4,
                    max_steps: 100,
                })?;
                Ok(run.weights)
            }
        }
    }

    /// Bytes read and FLOPs of one call.
    fn cost(&self) -> (f64, f64) {
        let (d, b) = (self.w.dim as f64, PAIRS as f64);
        match self.w.kind {
            // Five products of the pairs with a d x d matrix, two dot products per
            // token; the four weight matrices read once.
            IclKind::Update => (
                4.0 * d * d * 4.0,
                2.0 * (5.0 * b * d * d + 2.0 * b * CONTEXT as f64 * d),
            ),
            // Per step: Wᵀq and the update sweep W (2 d² each), the scores and the mix.
            IclKind::Dynamics => {
                let steps = 100.0;
                (
                    b * d * d * 4.0 * 2.0 * steps,
                    steps * b * (5.0 * d * d + 4.0 * KEYS as f64 * d),
                )
            }
        }
    }
}

impl Fixture for IclFixture {
    fn prepare(&self, backend: &BenchBackend) -> Result<Prepared, String> {
        let e = |e: tessera_tensor::TesseraError| e.to_string();
        let device = match &backend.kind {
            BackendKind::CpuSimd => Device::cpu(),
            BackendKind::CpuScalar => Device::Cpu(CpuDevice::scalar()),
            BackendKind::Gpu(ctx) if ctx.is_software() => {
                return Ok(Prepared::NotApplicable(
                    "software rasteriser: the in-context kernels are tested there, not timed",
                ));
            }
            BackendKind::Gpu(ctx) => Device::from_context(ctx.clone()),
            _ => return Ok(Prepared::NotApplicable("no in-context kernels here")),
        };
        let want = self
            .compute(&mut InContext::on(&Device::cpu()).map_err(e)?)
            .map_err(e)?;
        let mut icl = InContext::on(&device).map_err(e)?;
        let got = self.compute(&mut icl).map_err(e)?;
        crate::workload::check_close("value", &got, &want, 1e-3)?;
        let (bytes, flops) = self.cost();
        let floor = Floors::get().seconds(bytes, flops, false);
        let note = format!("CPU floor {:.2} ms", floor * 1e3);
        Ok(Prepared::Ready(
            Box::new(IclRunner {
                fixture: IclFixture {
                    w: self.w,
                    weights: self.weights.clone(),
                    queries: self.queries.clone(),
                    tokens: self.tokens.clone(),
                },
                icl,
                note,
            }),
            (self.weights.iter().map(Vec::len).sum::<usize>() * 4) as u64,
        ))
    }
}

struct IclRunner {
    fixture: IclFixture,
    icl: InContext,
    note: String,
}

impl Runner for IclRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.fixture.compute(&mut self.icl).map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.note.clone())
    }
}
