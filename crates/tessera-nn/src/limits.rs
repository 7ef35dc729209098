//! The largest sizes tessera-nn accepts from a caller or a file. Every size is checked
//! against these before anything is allocated, so a hostile file or argument gets a
//! typed error instead of an abort on an impossible allocation.

/// Neurons in one layer (inputs count as a layer).
pub const MAX_LAYER_WIDTH: usize = 1 << 20;
/// Layers of weights (hidden and output layers).
pub const MAX_LAYERS: usize = 1024;
/// Weights and biases of one network: 2^28, 1 GiB of `f32`.
pub const MAX_PARAMETERS: usize = 1 << 28;
/// Input and output values of one training set: 2^30, 4 GiB of `f32`.
pub const MAX_DATA_VALUES: usize = 1 << 30;
/// Bytes of a `.net` or `.data` file that [`read_net`](crate::fann::read_net) and
/// [`read_data`](crate::fann::read_data) will read: 8 GiB.
pub const MAX_FILE_BYTES: u64 = 1 << 33;
/// Epoch counts a cascade setting may hold (`cascade_max_out_epochs` and the like).
pub const MAX_EPOCHS: usize = 1 << 24;
/// Hidden neurons of a shortcut (cascade) network.
pub const MAX_CASCADE_HIDDEN: usize = 1024;
