//! In-context learning as an implicit weight update (contract: `docs/icl.md`): the
//! rank-1 update of a dense layer that reproduces, without the context, what an
//! attention layer computes with it (Dherin et al. 2025), token by token, and the
//! iterative weight dynamics `ΔW = h Σ α_i q k_iᵀ − λW` batched over contexts.

mod contract;

pub use contract::{
    Contexts, ContextualBlock, Dynamics, DynamicsRun, IclBackend, MAX_DIM, MAX_MAGNITUDE,
    MAX_STEPS, RankOneUpdates, UpdateSequences, check_rank_one, update_vectors, validate_dynamics,
    zero_attention,
};
