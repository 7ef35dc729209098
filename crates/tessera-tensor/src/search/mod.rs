//! Exact top-k similarity search over an index of stored vectors (contract:
//! `docs/search.md`), and the in-context rank-1 update of a dense layer.

mod contract;

pub use contract::{
    Candidate, Hits, IndexConfig, MAX_DIM, MAX_K, MAX_MAGNITUDE, MAX_VECTORS, Metric, Prepared,
    Storage, VectorIndex, bf16_bits, bf16_round, check_add, check_search, exact_score,
    finish_query, prepare, push_exact, storage_words, words_per_vector,
};
