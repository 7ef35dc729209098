//! The similarity parity suite: scenarios written once against [`VectorIndex`] and run,
//! through [`search_parity_suite!`](crate::search_parity_suite), against the reference,
//! the CPU backend (each SIMD level) and the GPU backend.

use proptest::prelude::*;

use super::ReferenceIndex;
use crate::error::{Result, TesseraError};
use crate::rng::Rng;
use crate::search::{Hits, IndexConfig, MAX_K, Metric, Storage, VectorIndex, prepare};

/// Builds an empty index of a backend for a configuration.
pub trait IndexFactory {
    /// The index it builds.
    type Index: VectorIndex;
    /// A fresh, empty index.
    fn create(&self, config: IndexConfig) -> Result<Self::Index>;
}

impl<I: VectorIndex, F: Fn(IndexConfig) -> Result<I>> IndexFactory for F {
    type Index = I;
    fn create(&self, config: IndexConfig) -> Result<I> {
        self(config)
    }
}

/// Error of an f32 score, relative to its scale, per square root of the dimension.
const TOLERANCE: f64 = 1e-6;

const METRICS: [Metric; 3] = [Metric::Cosine, Metric::InnerProduct, Metric::L2];
const STORAGES: [Storage; 2] = [Storage::F32, Storage::Bf16];

fn tolerance(reference: &ReferenceIndex, query: &[f32], id: usize) -> f64 {
    let dim = reference.config().dim as f64;
    TOLERANCE * dim.sqrt().max(1.0) * reference.score_scale(query, id) + 1e-30
}

/// Checks a backend's results against the reference's, query by query: each hit's
/// score is its exact score within tolerance, the order is the result order, and an
/// id differs from the reference's only where their exact scores tie within tolerance.
pub fn compare_hits(
    reference: &ReferenceIndex,
    queries: &[f32],
    got: &Hits,
    want: &Hits,
    threshold: Option<f32>,
) -> std::result::Result<(), String> {
    let config = reference.config();
    let prepared = prepare(&config, "queries", queries).map_err(|e| e.to_string())?;
    let higher = config.metric.higher_is_better();
    if got.queries() != want.queries() || got.k() != want.k() {
        return Err(format!(
            "{} queries of k = {}, expected {} of k = {}",
            got.queries(),
            got.k(),
            want.queries(),
            want.k()
        ));
    }
    for (qi, query) in prepared.values.chunks_exact(config.dim).enumerate() {
        let (ids, scores) = (got.ids(qi), got.scores(qi));
        let want_ids = want.ids(qi);
        let exact = |id: u32| reference.exact_score(query, id as usize);
        let tol = |id: u32| tolerance(reference, query, id as usize);
        let context = || format!("query {qi}: got {ids:?} {scores:?}, expected {want_ids:?}");
        let mut seen = std::collections::HashSet::new();
        for (i, (&id, &score)) in ids.iter().zip(scores).enumerate() {
            if id as usize >= reference.len() || !seen.insert(id) {
                return Err(format!("hit {i} has a bad or repeated id; {}", context()));
            }
            if (score as f64 - exact(id)).abs() > tol(id) {
                return Err(format!(
                    "hit {i} (id {id}) scores {score}, exactly {}; {}",
                    exact(id),
                    context()
                ));
            }
            if i > 0 {
                // Equal f32 scores may round different keys, so their ids may come in
                // either order here; `ties_go_to_the_lowest_index` checks exact ties.
                let prev_score = scores[i - 1];
                let in_order = if higher {
                    prev_score >= score
                } else {
                    prev_score <= score
                };
                if !in_order {
                    return Err(format!(
                        "hits {} and {i} out of order; {}",
                        i - 1,
                        context()
                    ));
                }
            }
            if let Some(&w) = want_ids.get(i)
                && w != id
                && (exact(w) - exact(id)).abs() > tol(w).max(tol(id))
            {
                return Err(format!(
                    "hit {i} is id {id} (exactly {}), expected id {w} (exactly {}); {}",
                    exact(id),
                    exact(w),
                    context()
                ));
            }
            if let Some(t) = threshold {
                let past = if higher {
                    exact(id) < t as f64 - tol(id)
                } else {
                    exact(id) > t as f64 + tol(id)
                };
                if past {
                    return Err(format!("hit {i} is past the threshold {t}; {}", context()));
                }
            }
        }
        // Fewer hits than the reference only where the missing ones sit on the
        // threshold within tolerance.
        if ids.len() != want_ids.len() {
            let near_threshold =
                |id: u32| threshold.is_some_and(|t| (exact(id) - t as f64).abs() <= tol(id));
            let extra = if ids.len() < want_ids.len() {
                &want_ids[ids.len()..]
            } else {
                &ids[want_ids.len()..]
            };
            if !extra.iter().all(|&id| near_threshold(id)) {
                return Err(format!(
                    "{} hits, expected {}; {}",
                    ids.len(),
                    want_ids.len(),
                    context()
                ));
            }
        }
    }
    Ok(())
}

/// One scenario: a configuration, vectors added in chunks, queries and a search.
#[derive(Debug, Clone)]
pub struct Case {
    /// Dimension.
    pub dim: usize,
    /// Metric.
    pub metric: Metric,
    /// Storage.
    pub storage: Storage,
    /// Vectors of each `add` call.
    pub chunks: Vec<usize>,
    /// Queries.
    pub queries: usize,
    /// Results per query (clamped to the index size).
    pub k: usize,
    /// Whether to cut at the median score of the reference's hits.
    pub threshold: bool,
    /// Scale of the values.
    pub scale: f32,
    /// Seed of the values.
    pub seed: u64,
}

/// Random cases: dimensions from 1 to past a few SIMD widths, 1 to several blocks of
/// vectors added in up to three calls, 0 to 19 queries, k up to 1024.
pub fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop_oneof![1usize..=5, 1usize..=70, Just(384)],
        0usize..3,
        0usize..2,
        prop::collection::vec(prop_oneof![1usize..=40, 1usize..=2500], 1..=3),
        0usize..20,
        prop_oneof![1usize..=12, 1usize..=MAX_K],
        any::<bool>(),
        prop_oneof![Just(1.0f32), Just(1e-3), Just(1e4)],
        any::<u64>(),
    )
        .prop_map(
            |(dim, metric, storage, chunks, queries, k, threshold, scale, seed)| Case {
                dim,
                metric: METRICS[metric],
                storage: STORAGES[storage],
                chunks,
                queries,
                k,
                threshold,
                scale,
                seed,
            },
        )
}

fn normals(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| scale * rng.normal()).collect()
}

/// Runs one case on `f`'s backend and the reference.
pub fn run_case<F: IndexFactory>(f: &F, c: &Case) -> std::result::Result<(), String> {
    let config = IndexConfig::new(c.dim, c.metric).with_storage(c.storage);
    let mut rng = Rng::new(c.seed);
    let mut index = f.create(config).map_err(|e| e.to_string())?;
    let mut reference = ReferenceIndex::new(config).unwrap();
    for &n in &c.chunks {
        let v = normals(&mut rng, n * c.dim, c.scale);
        index.add(&v).map_err(|e| format!("add: {e}"))?;
        reference.add(&v).unwrap();
    }
    if index.len() != reference.len() {
        return Err(format!(
            "{} vectors, expected {}",
            index.len(),
            reference.len()
        ));
    }
    let queries = normals(&mut rng, c.queries * c.dim, c.scale);
    let k = c.k.min(reference.len());
    let threshold = if c.threshold && c.queries > 0 {
        let probe = reference.search(&queries, k, None).unwrap();
        let s = probe.scores(0);
        Some(s[s.len() / 2])
    } else {
        None
    };
    let want = reference.search(&queries, k, threshold).unwrap();
    let got = index
        .search(&queries, k, threshold)
        .map_err(|e| format!("search: {e}"))?;
    compare_hits(&reference, &queries, &got, &want, threshold)
}

/// `cases` random cases through proptest (which shrinks a failure).
pub fn random_cases<F: IndexFactory>(f: &F, cases: u32) {
    super::run_cases(case_strategy(), cases, |c| run_case(f, c));
}

fn run(f: &impl IndexFactory, c: Case) {
    if let Err(e) = run_case(f, &c) {
        panic!("{c:?}: {e}");
    }
}

/// Sizes at and around every tile: one vector, k = N, dimension 1, N and Q just below
/// and above multiples of 8, 12, 16, 32, 64 and 1024, k = 1024, no queries.
pub fn edge_cases<F: IndexFactory>(f: &F) {
    let base = Case {
        dim: 3,
        metric: Metric::InnerProduct,
        storage: Storage::F32,
        chunks: vec![1],
        queries: 1,
        k: 1,
        threshold: false,
        scale: 1.0,
        seed: 7,
    };
    for metric in METRICS {
        for storage in STORAGES {
            let c = Case {
                metric,
                storage,
                ..base.clone()
            };
            run(f, c.clone());
            for (dim, n, queries, k) in [
                (1, 33, 9, 33),
                (17, 31, 7, 31),
                (16, 32, 8, 5),
                (33, 1023, 3, 10),
                (2, 1025, 1, MAX_K),
                (5, 1500, 2, MAX_K),
                (4, 64, 0, 3),
                // Query counts past whole tiles of 8 and 12, and a batch across the
                // CPU's 64-query chunks.
                (2, 100, 13, 7),
                (9, 70, 25, 4),
                (5, 40, 65, 3),
            ] {
                run(
                    f,
                    Case {
                        dim,
                        chunks: vec![n],
                        queries,
                        k,
                        ..c.clone()
                    },
                );
            }
        }
    }
}

/// The dimensions of common embedding models, every metric and storage.
pub fn embedding_dimensions<F: IndexFactory>(f: &F) {
    for dim in [384, 768, 1536, 3072] {
        for metric in METRICS {
            for storage in STORAGES {
                run(
                    f,
                    Case {
                        dim,
                        metric,
                        storage,
                        chunks: vec![150, 70],
                        queries: 3,
                        k: 10,
                        threshold: false,
                        scale: 1.0,
                        seed: dim as u64,
                    },
                );
            }
        }
    }
}

/// Exact ties (small integers, whose products and sums f32 holds exactly, and repeated
/// vectors) go to the lowest id on every backend, with no tolerance.
pub fn ties_go_to_the_lowest_index<F: IndexFactory>(f: &F) {
    let mut rng = Rng::new(11);
    for metric in METRICS {
        for storage in STORAGES {
            // Under the cosine metric, entries of +-1 in 4 dimensions normalise to +-0.5
            // exactly, so distinct vectors tie exactly too.
            let (dim, spread) = match metric {
                Metric::Cosine => (4, 1),
                _ => (6, 2),
            };
            let config = IndexConfig::new(dim, metric).with_storage(storage);
            // 700 vectors from 40 distinct ones, so most scores tie many times over.
            let distinct: Vec<f32> = (0..40 * dim)
                .map(|_| rng.below(2 * spread + 1) as f32 - spread as f32)
                .map(|v| if v == 0.0 { 1.0 } else { v })
                .collect();
            let vectors: Vec<f32> = (0..700)
                .flat_map(|_| {
                    let i = rng.below(40);
                    distinct[i * dim..(i + 1) * dim].to_vec()
                })
                .collect();
            let queries: Vec<f32> = (0..5 * dim).map(|_| rng.below(3) as f32 + 1.0).collect();
            let mut index = f.create(config).unwrap();
            index.add(&vectors).unwrap();
            let mut reference = ReferenceIndex::new(config).unwrap();
            reference.add(&vectors).unwrap();
            for k in [1, 7, 100, 700] {
                let got = index.search(&queries, k, None).unwrap();
                let want = reference.search(&queries, k, None).unwrap();
                for q in 0..5 {
                    assert_eq!(
                        got.ids(q),
                        want.ids(q),
                        "{metric:?} {storage:?} k = {k} query {q}"
                    );
                }
            }
        }
    }
}

/// Vectors added in several calls, with searches between them, give what one call
/// gives; a search sees every vector added before it.
pub fn appends_match_one_add<F: IndexFactory>(f: &F) {
    let mut rng = Rng::new(5);
    for storage in STORAGES {
        let dim = 20;
        let config = IndexConfig::new(dim, Metric::L2).with_storage(storage);
        let vectors = normals(&mut rng, 1100 * dim, 1.0);
        let queries = normals(&mut rng, 6 * dim, 1.0);
        let mut whole = f.create(config).unwrap();
        whole.add(&vectors).unwrap();
        let mut pieces = f.create(config).unwrap();
        let mut reference = ReferenceIndex::new(config).unwrap();
        let mut start = 0;
        for n in [1, 30, 3, 1000, 66] {
            let piece = &vectors[start * dim..(start + n) * dim];
            pieces.add(piece).unwrap();
            reference.add(piece).unwrap();
            start += n;
            let k = 5.min(start);
            let got = pieces.search(&queries, k, None).unwrap();
            let want = reference.search(&queries, k, None).unwrap();
            compare_hits(&reference, &queries, &got, &want, None)
                .unwrap_or_else(|e| panic!("{storage:?} after {start} vectors: {e}"));
        }
        assert_eq!(
            pieces.search(&queries, 9, None).unwrap(),
            whole.search(&queries, 9, None).unwrap()
        );
    }
}

/// Every bad input is a typed error that leaves the index as it was.
pub fn bad_input_is_typed<F: IndexFactory>(f: &F) {
    let config = IndexConfig::new(4, Metric::Cosine);
    assert!(matches!(
        f.create(IndexConfig::new(0, Metric::L2)),
        Err(TesseraError::InvalidConfig { field: "dim", .. })
    ));
    let mut index = f.create(config).unwrap();
    let good = [1.0, 2.0, 3.0, 4.0, 0.5, -1.0, 0.0, 2.0];
    let q = [1.0, 0.0, 0.0, 1.0];
    // An empty index has nothing to return.
    assert!(matches!(
        index.search(&q, 1, None),
        Err(TesseraError::InvalidArgument { what: "k", .. })
    ));
    index.add(&good).unwrap();
    let before = index.search(&q, 2, None).unwrap();
    type Expect = fn(&TesseraError) -> bool;
    let refused: [(&[f32], Expect); 5] = [
        (&[1.0, 2.0, 3.0], |e| {
            matches!(
                e,
                TesseraError::ShapeMismatch {
                    what: "vectors",
                    ..
                }
            )
        }),
        (&[1.0, f32::NAN, 3.0, 4.0], |e| {
            matches!(e, TesseraError::NonFinite { index: 1, .. })
        }),
        (&[1.0, 2.0, f32::INFINITY, 4.0], |e| {
            matches!(e, TesseraError::NonFinite { index: 2, .. })
        }),
        (&[1.0, 2.0, 3.0, 1e30], |e| {
            matches!(e, TesseraError::TooLarge { index: 3, .. })
        }),
        // The second row is all zeros: no direction to compare under the cosine metric.
        (&[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], |e| {
            matches!(
                e,
                TesseraError::InvalidArgument {
                    what: "vectors",
                    value: 1.0,
                    ..
                }
            )
        }),
    ];
    for (vectors, is_expected) in refused {
        let e = index.add(vectors).unwrap_err();
        assert!(is_expected(&e), "{vectors:?}: {e}");
        assert_eq!(index.len(), 2);
        assert_eq!(index.search(&q, 2, None).unwrap(), before);
    }
    for (queries, k, threshold) in [
        (&q[..3], 1, None),
        (&[0.0; 4][..], 1, None),
        (&[f32::NAN, 0.0, 0.0, 1.0][..], 1, None),
        (&q[..], 0, None),
        (&q[..], 3, None),
        (&q[..], 1, Some(f32::NAN)),
        (&q[..], 1, Some(f32::INFINITY)),
    ] {
        assert!(
            index.search(queries, k, threshold).is_err(),
            "{queries:?} k = {k} threshold {threshold:?}"
        );
        assert_eq!(index.search(&q, 2, None).unwrap(), before);
    }
    let mut big = f.create(IndexConfig::new(4, Metric::InnerProduct)).unwrap();
    big.add(&good).unwrap();
    assert!(matches!(
        big.search(&q, 1025, None),
        Err(TesseraError::InvalidArgument { what: "k", .. })
    ));
}

/// The similarity parity suite as `#[test]` functions, for an expression that
/// evaluates to `Option<impl IndexFactory>` (`None` skips: a GPU that is not there) and
/// a number of random cases.
#[macro_export]
macro_rules! search_parity_suite {
    ($factory:expr, $cases:expr) => {
        #[test]
        fn random_cases() {
            if let Some(f) = $factory {
                $crate::reference::search_parity::random_cases(&f, $cases);
            }
        }
        $crate::search_parity_suite!(@tests $factory; edge_cases, embedding_dimensions,
            ties_go_to_the_lowest_index, appends_match_one_add, bad_input_is_typed);
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $factory {
                    $crate::reference::search_parity::$name(&f);
                }
            }
        )*
    };
}
