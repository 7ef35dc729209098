//! The f64 brute force every similarity backend is held to.

use crate::error::Result;
use crate::search::{
    Hits, IndexConfig, Metric, Prepared, VectorIndex, check_add, check_search, exact_score,
    prepare, push_exact,
};

/// Exact search in f64 over the stored vectors: every score computed, every query
/// sorted in full.
#[derive(Debug, Clone)]
pub struct ReferenceIndex {
    config: IndexConfig,
    stored: Prepared,
}

impl ReferenceIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.check()?;
        Ok(Self {
            config,
            stored: Prepared {
                values: Vec::new(),
                norms_sq: Vec::new(),
            },
        })
    }

    /// Stored vector `id` as the index holds it.
    pub fn vector(&self, id: usize) -> &[f32] {
        &self.stored.values[id * self.config.dim..(id + 1) * self.config.dim]
    }

    /// The exact score of stored vector `id` for a prepared query: the similarity, or
    /// the squared distance under L2.
    pub fn exact_score(&self, query: &[f32], id: usize) -> f64 {
        exact_score(self.config.metric, query, self.vector(id))
    }

    /// The magnitude an f32 score of `id` is computed at: `‖q‖‖x‖` for similarities,
    /// `(‖q‖ + ‖x‖)²` for distances.
    pub fn score_scale(&self, query: &[f32], id: usize) -> f64 {
        let qn = query
            .iter()
            .map(|&v| v as f64 * v as f64)
            .sum::<f64>()
            .sqrt();
        let xn = (self.stored.norms_sq[id] as f64).sqrt();
        match self.config.metric {
            Metric::L2 => (qn + xn).powi(2),
            _ => qn * xn,
        }
    }
}

impl VectorIndex for ReferenceIndex {
    fn config(&self) -> IndexConfig {
        self.config
    }

    fn len(&self) -> usize {
        self.stored.norms_sq.len()
    }

    fn add(&mut self, vectors: &[f32]) -> Result<()> {
        let p = prepare(&self.config, "vectors", vectors)?;
        check_add(self.len(), p.norms_sq.len())?;
        self.stored.values.extend(p.values);
        self.stored.norms_sq.extend(p.norms_sq);
        Ok(())
    }

    fn search(&mut self, queries: &[f32], k: usize, threshold: Option<f32>) -> Result<Hits> {
        let q = check_search(&self.config, self.len(), queries, k, threshold)?;
        let dim = self.config.dim;
        let metric = self.config.metric;
        let mut hits = Hits::with_capacity(q.norms_sq.len(), k);
        for query in q.values.chunks_exact(dim) {
            let scored: Vec<(u32, f64)> = (0..self.len())
                .map(|id| (id as u32, self.exact_score(query, id)))
                .collect();
            push_exact(&mut hits, metric, scored, threshold);
        }
        Ok(hits)
    }
}
