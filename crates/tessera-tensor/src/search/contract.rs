//! The index contract every similarity backend implements, and the validation,
//! rounding and ordering rules they share.

use std::cmp::Ordering;

use crate::error::{Result, TesseraError, check_magnitude};

/// Most results per query.
pub const MAX_K: usize = 1024;
/// Largest vector dimension.
pub const MAX_DIM: usize = 65_536;
/// Largest magnitude of a stored or query value: with [`MAX_DIM`] dimensions, every dot
/// product and squared distance stays far inside f32's range.
pub const MAX_MAGNITUDE: f32 = 1e15;
/// Most vectors an index holds (ids are `u32`; `u32::MAX` marks "no result").
pub const MAX_VECTORS: usize = u32::MAX as usize - 1;

/// How two vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Cosine similarity: vectors and queries are normalised to unit length on the way
    /// in (a zero vector is an error); higher is better.
    Cosine,
    /// Inner product `q · x`; higher is better.
    InnerProduct,
    /// Squared Euclidean distance `‖q − x‖²`; lower is better.
    L2,
}

impl Metric {
    /// Whether a higher score is a better match.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

/// How stored vectors are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// Single precision, 4 bytes a value.
    F32,
    /// bfloat16, 2 bytes a value: stored vectors *and queries* are rounded to bf16
    /// (nearest, ties to even), their products are exact in f32 and the sums are f32.
    Bf16,
}

impl Storage {
    /// Bytes a stored value takes.
    pub fn bytes_per_value(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::Bf16 => 2,
        }
    }

    /// `x` as this storage holds it.
    #[inline]
    pub fn round(self, x: f32) -> f32 {
        match self {
            Storage::F32 => x,
            Storage::Bf16 => bf16_round(x),
        }
    }
}

/// What an index holds: the dimension, the metric and the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexConfig {
    /// Values per vector.
    pub dim: usize,
    /// How vectors are compared.
    pub metric: Metric,
    /// How stored vectors are held.
    pub storage: Storage,
}

impl IndexConfig {
    /// An f32 index of `dim`-dimensional vectors under `metric`.
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self {
            dim,
            metric,
            storage: Storage::F32,
        }
    }

    /// The same index with `storage`.
    pub fn with_storage(self, storage: Storage) -> Self {
        Self { storage, ..self }
    }

    /// Fails unless `1 <= dim <= MAX_DIM`.
    pub fn check(&self) -> Result<()> {
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(TesseraError::InvalidConfig {
                field: "dim",
                value: self.dim.to_string(),
                expected: format!("1..={MAX_DIM}"),
            });
        }
        Ok(())
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), as its 16 bits. `x` is finite.
#[inline]
pub fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// `x` rounded to the nearest bfloat16 (ties to even), widened back to f32.
#[inline]
pub fn bf16_round(x: f32) -> f32 {
    f32::from_bits((bf16_bits(x) as u32) << 16)
}

/// Words per stored row: one per f32 value, or one per pair of bf16 values.
pub fn words_per_vector(storage: Storage, dim: usize) -> usize {
    match storage {
        Storage::F32 => dim,
        Storage::Bf16 => dim.div_ceil(2),
    }
}

/// Prepared rows (`dim` values each, exactly representable in `storage`) as the
/// 32-bit words backends store: f32 bits, or two bf16 values per word with the lower
/// dimension in the low half (an odd last dimension paired with zero), the layout
/// `vdpbf16ps` multiplies.
pub fn storage_words(storage: Storage, values: &[f32], dim: usize) -> Vec<u32> {
    match storage {
        Storage::F32 => values.iter().map(|v| v.to_bits()).collect(),
        Storage::Bf16 => values
            .chunks_exact(dim)
            .flat_map(|row| {
                row.chunks(2).map(|p| {
                    let hi = p.get(1).copied().unwrap_or(0.0);
                    (p[0].to_bits() >> 16) | (hi.to_bits() & 0xffff_0000)
                })
            })
            .collect(),
    }
}

/// Vectors as an index stores them: normalised (cosine), rounded to the storage's
/// precision, with their squared norms.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The vectors, row-major, each value exactly representable in the storage.
    pub values: Vec<f32>,
    /// `‖x‖²` of each stored vector, summed in f64 and rounded to f32.
    pub norms_sq: Vec<f32>,
}

/// Validates `vectors` (row-major, `config.dim` values each) and returns them as the
/// index stores them. `what` names them in errors.
///
/// Fails on a length that is not a multiple of the dimension, a NaN or infinity, a
/// magnitude beyond [`MAX_MAGNITUDE`], or a zero vector under [`Metric::Cosine`].
pub fn prepare(config: &IndexConfig, what: &'static str, vectors: &[f32]) -> Result<Prepared> {
    config.check()?;
    let dim = config.dim;
    if !vectors.len().is_multiple_of(dim) {
        return Err(TesseraError::ShapeMismatch {
            what,
            got: vectors.len(),
            expected: vectors.len() / dim * dim + dim,
        });
    }
    check_magnitude(what, vectors, MAX_MAGNITUDE)?;
    let mut values = Vec::with_capacity(vectors.len());
    let mut norms_sq = Vec::with_capacity(vectors.len() / dim);
    for (row, x) in vectors.chunks_exact(dim).enumerate() {
        let norm_sq: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
        let scale = match config.metric {
            Metric::Cosine if norm_sq == 0.0 => {
                return Err(TesseraError::InvalidArgument {
                    what,
                    value: row as f64,
                    expected: "no zero vector under the cosine metric (this row is all zeros)",
                });
            }
            Metric::Cosine => 1.0 / norm_sq.sqrt(),
            _ => 1.0,
        };
        let start = values.len();
        values.extend(
            x.iter()
                .map(|&v| config.storage.round((v as f64 * scale) as f32)),
        );
        let stored = &values[start..];
        norms_sq.push(stored.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32);
    }
    Ok(Prepared { values, norms_sq })
}

/// Checks that `added` more vectors fit an index of `len`.
pub fn check_add(len: usize, added: usize) -> Result<()> {
    match len.checked_add(added) {
        Some(total) if total <= MAX_VECTORS => Ok(()),
        _ => Err(TesseraError::InvalidArgument {
            what: "vectors in the index",
            value: len as f64 + added as f64,
            expected: "at most 2^32 - 2 (ids are u32)",
        }),
    }
}

/// Validates a search of `queries` for `k` results with an optional `threshold`
/// against an index of `len` vectors, and returns the prepared queries.
///
/// Fails on `k = 0`, `k > len` or `k > MAX_K`, a non-finite threshold, or queries
/// [`prepare`] refuses.
pub fn check_search(
    config: &IndexConfig,
    len: usize,
    queries: &[f32],
    k: usize,
    threshold: Option<f32>,
) -> Result<Prepared> {
    if k == 0 || k > MAX_K || k > len {
        return Err(TesseraError::InvalidArgument {
            what: "k",
            value: k as f64,
            expected: "1 <= k <= min(vectors in the index, 1024)",
        });
    }
    if let Some(t) = threshold
        && !t.is_finite()
    {
        return Err(TesseraError::NonFinite {
            what: "threshold",
            index: 0,
            value: t,
        });
    }
    prepare(config, "queries", queries)
}

/// One candidate result: the key a backend ranks by (higher is better) and the id.
///
/// The key is `q · x` under the cosine and inner-product metrics and `2 q · x − ‖x‖²`
/// under L2 (the squared distance is `‖q‖² − key`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Higher is better.
    pub key: f32,
    /// Position of the vector in the index.
    pub id: u32,
}

impl Candidate {
    /// The worst possible candidate (padding).
    pub const NONE: Self = Self {
        key: f32::NEG_INFINITY,
        id: u32::MAX,
    };

    /// The result order: higher key first, ties to the lower id.
    #[inline]
    pub fn order(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.id.cmp(&other.id))
    }

    /// Whether `self` comes strictly before `other` in the result order.
    #[inline]
    pub fn better(&self, other: &Self) -> bool {
        self.key > other.key || (self.key == other.key && self.id < other.id)
    }
}

/// Results of a search: up to `k` per query, best first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hits {
    k: usize,
    lens: Vec<u32>,
    ids: Vec<u32>,
    scores: Vec<f32>,
}

impl Hits {
    /// Room for `queries` queries of up to `k` results.
    pub fn with_capacity(queries: usize, k: usize) -> Self {
        Self {
            k,
            lens: Vec::with_capacity(queries),
            ids: Vec::with_capacity(queries * k),
            scores: Vec::with_capacity(queries * k),
        }
    }

    /// Appends one query's results (at most `k`, best first).
    pub fn push(&mut self, results: impl IntoIterator<Item = (u32, f32)>) {
        let start = self.ids.len();
        for (id, score) in results.into_iter().take(self.k) {
            self.ids.push(id);
            self.scores.push(score);
        }
        let len = self.ids.len() - start;
        self.lens.push(len as u32);
        self.ids.resize(start + self.k, u32::MAX);
        self.scores.resize(start + self.k, f32::NAN);
    }

    /// Number of queries.
    pub fn queries(&self) -> usize {
        self.lens.len()
    }

    /// Most results per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Query `q`'s result ids, best first (fewer than `k` when a threshold cut them).
    pub fn ids(&self, q: usize) -> &[u32] {
        &self.ids[q * self.k..q * self.k + self.lens[q] as usize]
    }

    /// Query `q`'s scores: similarities (cosine, inner product) in descending order,
    /// or squared distances (L2) in ascending order.
    pub fn scores(&self, q: usize) -> &[f32] {
        &self.scores[q * self.k..q * self.k + self.lens[q] as usize]
    }
}

/// The exact f64 score of `x` for `query` under `metric`, without normalising: the
/// squared distance under L2, else the inner product (a cosine once both are unit).
pub fn exact_score(metric: Metric, query: &[f32], x: &[f32]) -> f64 {
    let pairs = query
        .iter()
        .zip(x)
        .map(|(&q, &v)| (f64::from(q), f64::from(v)));
    match metric {
        Metric::L2 => pairs.map(|(q, v)| (q - v) * (q - v)).sum(),
        _ => pairs.map(|(q, v)| q * v).sum(),
    }
}

/// Appends one query's results from exact scores (any order): best first under
/// `metric`, ties to the lower id, at most `hits.k()`, those past `threshold` cut.
pub fn push_exact(
    hits: &mut Hits,
    metric: Metric,
    mut scored: Vec<(u32, f64)>,
    threshold: Option<f32>,
) {
    let higher = metric.higher_is_better();
    scored.sort_by(|a, b| {
        let by_score = if higher {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        by_score.then(a.0.cmp(&b.0))
    });
    // The cut compares the scores as reported (f32), so a result is kept exactly when
    // its reported score passes the threshold.
    hits.push(scored.into_iter().map(|(id, s)| (id, s as f32)).take_while(
        |&(_, s)| match threshold {
            None => true,
            Some(t) if higher => s >= t,
            Some(t) => s <= t,
        },
    ));
}

/// Turns one query's candidates (any order, possibly more than `k`) into its results:
/// the best `k` in the result order, their keys as scores, those past `threshold` cut.
pub fn finish_query(
    hits: &mut Hits,
    metric: Metric,
    query_norm_sq: f32,
    candidates: &mut [Candidate],
    threshold: Option<f32>,
) {
    let k = hits.k().min(candidates.len());
    if k < candidates.len() {
        candidates.select_nth_unstable_by(k, Candidate::order);
    }
    let best = &mut candidates[..k];
    best.sort_unstable_by(Candidate::order);
    hits.push(
        best.iter()
            .filter(|c| c.id != u32::MAX)
            .map(|c| {
                let score = match metric {
                    Metric::L2 => (query_norm_sq - c.key).max(0.0),
                    _ => c.key,
                };
                (c.id, score)
            })
            .take_while(|&(_, score)| match (threshold, metric) {
                (None, _) => true,
                (Some(t), Metric::L2) => score <= t,
                (Some(t), _) => score >= t,
            }),
    );
}

/// A similarity index on one backend: vectors appended, searched exactly.
///
/// Every implementation returns what an f64 brute force over the stored vectors
/// returns (`docs/search.md`): the ids identical except where scores tie within the
/// backend's precision, ties broken by the lower id. A call that fails leaves the
/// index unchanged.
pub trait VectorIndex {
    /// The index's dimension, metric and storage.
    fn config(&self) -> IndexConfig;

    /// Number of stored vectors.
    fn len(&self) -> usize;

    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `vectors` (row-major, `dim` values each); they get the next ids.
    fn add(&mut self, vectors: &[f32]) -> Result<()>;

    /// The best `k` stored vectors for each of `queries` (row-major, `dim` values each),
    /// keeping only scores at least `threshold` (similarities) or at most `threshold`
    /// (L2 distances) when one is given.
    fn search(&mut self, queries: &[f32], k: usize, threshold: Option<f32>) -> Result<Hits>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_round(1.0), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
        assert_eq!(bf16_round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(bf16_round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(bf16_round(-2.5), -2.5);
        assert_eq!(bf16_bits(1.0), 0x3f80);
    }

    #[test]
    fn cosine_normalises_and_refuses_zero_vectors() {
        let c = IndexConfig::new(2, Metric::Cosine);
        let p = prepare(&c, "v", &[3.0, 4.0]).unwrap();
        assert_eq!(p.values, vec![0.6, 0.8]);
        assert!((p.norms_sq[0] - 1.0).abs() < 1e-7);
        assert!(matches!(
            prepare(&c, "v", &[1.0, 0.0, 0.0, 0.0]),
            Err(TesseraError::InvalidArgument { value: 1.0, .. })
        ));
    }

    #[test]
    fn results_order_by_key_then_lowest_id() {
        let mut hits = Hits::with_capacity(1, 2);
        let mut c = [
            Candidate { key: 1.0, id: 5 },
            Candidate { key: 2.0, id: 9 },
            Candidate { key: 2.0, id: 3 },
        ];
        finish_query(&mut hits, Metric::InnerProduct, 0.0, &mut c, None);
        assert_eq!(hits.ids(0), &[3, 9]);
        let mut hits = Hits::with_capacity(1, 3);
        finish_query(&mut hits, Metric::InnerProduct, 0.0, &mut c, Some(1.5));
        assert_eq!(hits.ids(0), &[3, 9]);
    }
}
