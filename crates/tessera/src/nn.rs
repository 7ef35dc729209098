//! Dense feed-forward networks and FANN files on any [`Device`], with no generic
//! parameter at the call site.
//!
//! Everything of [`tessera_nn`] is re-exported here; [`Model`] and [`Trainer`] are the
//! device-agnostic forms of `tessera_nn::Model<K>` and `tessera_nn::Trainer<K>`: each
//! matches on the device once and runs the whole call (an epoch, `train_until`)
//! monomorphised for that backend.
//!
//! ```
//! use tessera::Device;
//! use tessera::nn::{Activation, Algorithm, Init, Model, Network, TrainConfig, Trainer, datasets};
//!
//! let device = Device::new_blocking(); // a hardware GPU, or the CPU
//! let net = Network::new(&[2, 3, 1], Activation::SigmoidSymmetric, Init::FannUniform, 7)?;
//! let mut trainer = Trainer::new(Model::on(&device, &net)?, TrainConfig::new(Algorithm::fann_rprop()))?;
//! let stats = trainer.train_until(&datasets::xor(), 1000, 0.001, |_| true)?;
//! assert!(stats.mse.is_some_and(|mse| mse <= 0.001));
//! # Ok::<(), tessera::TesseraError>(())
//! ```

use tessera_cpu::CpuNn;
#[cfg(feature = "gpu")]
use tessera_gpu::GpuNn;
use tessera_tensor::Result;

pub use tessera_nn::cascade::{
    CascadeConfig, CascadeNetwork, CascadeParams, CascadeReport, HiddenNeuron, StopFunction,
};
pub use tessera_nn::{
    Algorithm, EpochStats, Init, Layer, Network, Sarprop, TrainConfig, TrainData, datasets, fann,
    limits,
};
pub use tessera_tensor::nn::{
    Activation, AdamParams, Derivative, Loss, QuickpropParams, RpropParams, SgdParams,
};

use crate::{Backend, Device};

/// Matches a facade enum once and runs `$body` with `$inner` bound to the backend's
/// concrete value, in every arm.
macro_rules! dispatch {
    ($value:expr, $enum:ident, $inner:ident => $body:expr) => {
        match $value {
            $enum::Cpu($inner) => $body,
            #[cfg(feature = "gpu")]
            $enum::Gpu($inner) => $body,
        }
    };
}

/// Like [`dispatch!`], wrapping the result back into the same variant.
macro_rules! map_variant {
    ($value:expr, $from:ident => $to:ident, $inner:ident => $body:expr) => {
        match $value {
            $from::Cpu($inner) => $to::Cpu($body),
            #[cfg(feature = "gpu")]
            $from::Gpu($inner) => $to::Gpu($body),
        }
    };
}

/// The neural kernels of a CPU device (scalar where it asks for scalar).
fn cpu_kernels(cpu: &crate::device::CpuDevice) -> CpuNn {
    if cpu.is_scalar() {
        CpuNn::new_scalar()
    } else {
        CpuNn::new()
    }
}

// One per model, moved rarely: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum ModelInner {
    Cpu(tessera_nn::Model<CpuNn>),
    #[cfg(feature = "gpu")]
    Gpu(tessera_nn::Model<GpuNn>),
}

/// A [`Network`] resident on a [`Device`].
pub struct Model {
    inner: ModelInner,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        dispatch!(&self.inner, ModelInner, m => f
            .debug_struct("Model")
            .field("backend", &self.backend())
            .field("model", m)
            .finish())
    }
}

impl Model {
    /// Uploads `net` to `device`. Fails, with nothing uploaded, on a network that
    /// [`Network::validate`] rejects.
    pub fn on(device: &Device, net: &Network) -> Result<Self> {
        let inner = match device {
            Device::Cpu(cpu) => ModelInner::Cpu(tessera_nn::Model::new(cpu_kernels(cpu), net)?),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => ModelInner::Gpu(tessera_nn::Model::new(GpuNn::new(ctx)?, net)?),
        };
        Ok(Self { inner })
    }

    /// The backend the model lives on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            ModelInner::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            ModelInner::Gpu(_) => Backend::Gpu,
        }
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        dispatch!(&self.inner, ModelInner, m => m.inputs())
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        dispatch!(&self.inner, ModelInner, m => m.outputs())
    }

    /// Outputs for `inputs` (`[rows, inputs]` row-major), `[rows, outputs]`.
    pub fn forward(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        dispatch!(&mut self.inner, ModelInner, m => m.forward(inputs))
    }

    /// Copies the weights back into a host [`Network`] (e.g. to save it with
    /// [`fann::write_net`]).
    pub fn to_network(&self) -> Result<Network> {
        dispatch!(&self.inner, ModelInner, m => m.to_network())
    }
}

// One per model, moved rarely: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum TrainerInner {
    Cpu(tessera_nn::Trainer<CpuNn>),
    #[cfg(feature = "gpu")]
    Gpu(tessera_nn::Trainer<GpuNn>),
}

/// Trains a [`Model`] on its device.
pub struct Trainer {
    inner: TrainerInner,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        dispatch!(&self.inner, TrainerInner, t => t.fmt(f))
    }
}

impl Trainer {
    /// A trainer for `model`. Fails on a hyper-parameter that
    /// [`TrainConfig::validate`] rejects, an untrainable layer, or a loss that does not
    /// fit the output layer.
    pub fn new(model: Model, config: TrainConfig) -> Result<Self> {
        let inner = match model.inner {
            ModelInner::Cpu(m) => TrainerInner::Cpu(tessera_nn::Trainer::new(m, config)?),
            #[cfg(feature = "gpu")]
            ModelInner::Gpu(m) => TrainerInner::Gpu(tessera_nn::Trainer::new(m, config)?),
        };
        Ok(Self { inner })
    }

    /// One pass over `data`: FANN-style MSE and bit-fail count (when measured).
    pub fn train_epoch(&mut self, data: &TrainData) -> Result<EpochStats> {
        dispatch!(&mut self.inner, TrainerInner, t => t.train_epoch(data))
    }

    /// Trains until the MSE reaches `desired_error` or `max_epochs` pass; `callback`
    /// sees every epoch's stats and may stop training by returning false.
    pub fn train_until(
        &mut self,
        data: &TrainData,
        max_epochs: usize,
        desired_error: f64,
        callback: impl FnMut(&EpochStats) -> bool,
    ) -> Result<EpochStats> {
        dispatch!(&mut self.inner, TrainerInner, t => t.train_until(data, max_epochs, desired_error, callback))
    }

    /// Outputs of the model being trained for `inputs`.
    pub fn forward(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        dispatch!(&mut self.inner, TrainerInner, t => t.model_mut().forward(inputs))
    }

    /// The trained weights as a host [`Network`].
    pub fn to_network(&self) -> Result<Network> {
        dispatch!(&self.inner, TrainerInner, t => t.model().to_network())
    }

    /// Ends training and returns the model.
    pub fn into_model(self) -> Model {
        Model {
            inner: map_variant!(self.inner, TrainerInner => ModelInner, t => t.into_model()),
        }
    }
}

// One per training, never moved in a loop: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum CascadeInner {
    Cpu(tessera_nn::cascade::CascadeTrainer<CpuNn>),
    #[cfg(feature = "gpu")]
    Gpu(tessera_nn::cascade::CascadeTrainer<GpuNn>),
}

/// Cascade2 training ([`tessera_nn::cascade::CascadeTrainer`]) of a
/// [`CascadeNetwork`] on a [`Device`]: the candidate pool as one batched kernel per
/// epoch on the GPU, or spread over the CPU's cores.
///
/// ```
/// use tessera::Device;
/// use tessera::nn::{Activation, CascadeConfig, CascadeNetwork, CascadeTrainer, datasets};
///
/// let device = Device::cpu();
/// let net = CascadeNetwork::new(2, 1, Activation::SigmoidSymmetric, 0.5, 1)?;
/// let mut trainer = CascadeTrainer::on(&device, net, CascadeConfig::default())?;
/// let report = trainer.train(&datasets::xor(), 5, 0.01, |_| true)?;
/// assert!(report.reached);
/// let net = trainer.into_network(); // runs with net.run, saves with fann::write_cascade_net
/// # Ok::<(), tessera::TesseraError>(())
/// ```
pub struct CascadeTrainer {
    inner: CascadeInner,
}

impl std::fmt::Debug for CascadeTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        dispatch!(&self.inner, CascadeInner, t => f
            .debug_struct("CascadeTrainer")
            .field("trainer", t)
            .finish())
    }
}

impl CascadeTrainer {
    /// A trainer for `net` on `device` (see `tessera_nn`'s `CascadeTrainer::new`).
    pub fn on(device: &Device, net: CascadeNetwork, config: CascadeConfig) -> Result<Self> {
        use tessera_nn::cascade::CascadeTrainer as Inner;
        let inner = match device {
            Device::Cpu(cpu) => CascadeInner::Cpu(Inner::new(cpu_kernels(cpu), net, config)?),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => CascadeInner::Gpu(Inner::new(GpuNn::new(ctx)?, net, config)?),
        };
        Ok(Self { inner })
    }

    /// FANN's `fann_cascadetrain_on_data`; see `tessera_nn`'s `CascadeTrainer::train`.
    pub fn train(
        &mut self,
        data: &TrainData,
        max_neurons: usize,
        desired_error: f64,
        report: impl FnMut(&CascadeReport) -> bool,
    ) -> Result<CascadeReport> {
        dispatch!(&mut self.inner, CascadeInner, t => t.train(data, max_neurons, desired_error, report))
    }

    /// The network as trained so far.
    pub fn network(&self) -> &CascadeNetwork {
        dispatch!(&self.inner, CascadeInner, t => t.network())
    }

    /// Ends training and returns the network.
    pub fn into_network(self) -> CascadeNetwork {
        dispatch!(self.inner, CascadeInner, t => t.into_network())
    }
}

// One per training, never moved in a loop: the size gap between backends costs nothing.
#[allow(clippy::large_enum_variant)]
enum ShortcutInner {
    Cpu(tessera_nn::cascade::ShortcutTrainer<CpuNn>),
    #[cfg(feature = "gpu")]
    Gpu(tessera_nn::cascade::ShortcutTrainer<GpuNn>),
}

/// Training of every weight of a shortcut [`CascadeNetwork`]
/// ([`tessera_nn::cascade::ShortcutTrainer`], FANN's `fann_train_on_data` on a
/// shortcut net) on a [`Device`]: the whole net one forward and one backward kernel.
///
/// ```
/// use tessera::Device;
/// use tessera::nn::{Activation, Algorithm, CascadeNetwork, ShortcutTrainer, TrainConfig, datasets};
///
/// let sine = Activation::SigmoidSymmetric;
/// let net = CascadeNetwork::shortcut(&[2, 3, 1], sine, sine, 0.5, 3)?;
/// let config = TrainConfig::new(Algorithm::fann_rprop());
/// let mut trainer = ShortcutTrainer::on(&Device::cpu(), &net, config)?;
/// let stats = trainer.train_until(&datasets::xor(), 500, 0.001, |_| true)?;
/// assert_eq!(stats.bit_fail, Some(0));
/// let net = trainer.network()?; // saves with fann::write_cascade_net
/// # Ok::<(), tessera::TesseraError>(())
/// ```
pub struct ShortcutTrainer {
    inner: ShortcutInner,
}

impl std::fmt::Debug for ShortcutTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        dispatch!(&self.inner, ShortcutInner, t => f
            .debug_struct("ShortcutTrainer")
            .field("trainer", t)
            .finish())
    }
}

impl ShortcutTrainer {
    /// A trainer for `net` on `device` (see `tessera_nn`'s `ShortcutTrainer::new`).
    pub fn on(device: &Device, net: &CascadeNetwork, config: TrainConfig) -> Result<Self> {
        use tessera_nn::cascade::ShortcutTrainer as Inner;
        let inner = match device {
            Device::Cpu(cpu) => ShortcutInner::Cpu(Inner::new(cpu_kernels(cpu), net, config)?),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => ShortcutInner::Gpu(Inner::new(GpuNn::new(ctx)?, net, config)?),
        };
        Ok(Self { inner })
    }

    /// One pass over `data`; see `tessera_nn`'s `ShortcutTrainer::train_epoch`.
    pub fn train_epoch(&mut self, data: &TrainData) -> Result<EpochStats> {
        dispatch!(&mut self.inner, ShortcutInner, t => t.train_epoch(data))
    }

    /// Epochs until `desired_error` or `max_epochs`; see `tessera_nn`'s
    /// `ShortcutTrainer::train_until`.
    pub fn train_until(
        &mut self,
        data: &TrainData,
        max_epochs: usize,
        desired_error: f64,
        callback: impl FnMut(&EpochStats) -> bool,
    ) -> Result<EpochStats> {
        dispatch!(&mut self.inner, ShortcutInner, t => t.train_until(data, max_epochs, desired_error, callback))
    }

    /// The network with its current weights (read back from the device).
    pub fn network(&self) -> Result<CascadeNetwork> {
        dispatch!(&self.inner, ShortcutInner, t => t.network())
    }

    /// The outputs for `inputs` (`[rows, inputs]`), run on the device.
    pub fn run(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        dispatch!(&mut self.inner, ShortcutInner, t => t.run(inputs))
    }
}
