//! Neural-network kernels: activations, losses, optimizer parameters and the kernel
//! contract every backend implements. Semantics: `docs/specs/neural.md`.
//!
//! Matrices are row-major f32. A layer computes `Z = X W + b` and `Y = f(s Z)` with
//! `X: [batch, in]`, `W: [in, out]`, `b: [out]`; training needs the three GEMM layouts
//! `X W`, `dZ W^T` and `X^T dZ`.

mod activation;
pub mod cascade;
mod contract;
pub mod dense;
pub mod shortcut;

pub use activation::{Activation, softmax_row};
pub use contract::{
    AdamParams, Derivative, ErrorSums, Gemm, Loss, NnKernels, QuickpropParams, RpropParams,
    SarpropParams, SgdParams, check_lens, fann_derivative,
};
