//! Cascade2 (FANN 2.2's cascade-correlation variant): shortcut networks grown one
//! hidden neuron at a time, the candidate pool trained as one batched kernel on any
//! [`NnKernels`](tessera_tensor::nn::NnKernels) backend. Semantics and the choices
//! that differ from libfann: `docs/nn.md`, "Cascade2".

mod network;
mod shortcut;
mod train;

pub use network::{CascadeNetwork, HiddenNeuron};
pub use shortcut::ShortcutTrainer;
pub use train::{
    CascadeConfig, CascadeParams, CascadeReport, CascadeTrainer, MAX_CANDIDATES, StopFunction,
};
