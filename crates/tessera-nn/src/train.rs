//! Training: FANN's INCREMENTAL, BATCH, RPROP, QUICKPROP and SARPROP with FANN's
//! semantics, and mini-batch SGD with momentum, Adam and AdamW. The whole step runs on
//! the model's backend; only the error metrics are read back, once per batch, when
//! asked for (SARPROP's update needs the epoch's MSE, so it always reads them).

use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::dense::{DenseBackprop, DenseGrads, DenseWork};
use tessera_tensor::nn::{
    AdamParams, Derivative, Loss, NnKernels, QuickpropParams, RpropParams, SarpropParams, SgdParams,
};
use tessera_tensor::rng::Rng;

use crate::data::TrainData;
use crate::fann::FannSettings;
use crate::model::Model;
use crate::network::Network;

/// A training algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    /// FANN_TRAIN_INCREMENTAL: an update after every sample,
    /// `w += lr * slope + momentum * previous delta`.
    Incremental {
        /// FANN default 0.7.
        learning_rate: f32,
        /// FANN default 0.
        momentum: f32,
    },
    /// FANN_TRAIN_BATCH: one update per epoch with the summed gradient scaled by
    /// `learning_rate / samples`.
    Batch {
        /// FANN default 0.7.
        learning_rate: f32,
    },
    /// FANN_TRAIN_RPROP (iRPROP-): one update per epoch, per-weight steps.
    Rprop {
        /// Step factors and bounds (FANN defaults by `Default`).
        params: RpropParams,
        /// Initial step (FANN default 0.1).
        delta_zero: f32,
    },
    /// FANN_TRAIN_QUICKPROP: one update per epoch, Fahlman's quadratic step.
    Quickprop {
        /// FANN default 0.7 (divided by the number of samples).
        learning_rate: f32,
        /// FANN default -0.0001.
        decay: f32,
        /// FANN default 1.75.
        mu: f32,
    },
    /// FANN_TRAIN_SARPROP: iRPROP with a decaying weight term and step noise
    /// (simulated annealing), one update per epoch. See [`Sarprop`].
    Sarprop {
        /// FANN's parameters by `Default`, and the noise seed.
        params: Sarprop,
    },
    /// Mini-batch SGD with momentum on the mean gradient.
    Sgd {
        /// Learning rate, momentum and weight decay.
        params: SgdParams,
        /// Samples per update.
        batch_size: usize,
    },
    /// Adam (or AdamW with `params.decoupled`) on the mean mini-batch gradient.
    Adam {
        /// Adam's hyper-parameters.
        params: AdamParams,
        /// Samples per update.
        batch_size: usize,
    },
}

/// One hyper-parameter check of [`Algorithm::validate`]: the value must be finite and
/// pass `ok`.
struct Check {
    what: &'static str,
    value: f32,
    ok: bool,
    expected: &'static str,
}

impl Check {
    fn new(what: &'static str, value: f32, ok: bool, expected: &'static str) -> Self {
        Self {
            what,
            value,
            ok,
            expected,
        }
    }

    fn finite(what: &'static str, value: f32) -> Self {
        Self::new(what, value, true, "a finite number")
    }

    fn non_negative(what: &'static str, value: f32) -> Self {
        Self::new(what, value, value >= 0.0, "a finite number >= 0")
    }

    fn positive(what: &'static str, value: f32) -> Self {
        Self::new(what, value, value > 0.0, "a finite number > 0")
    }

    fn unit(what: &'static str, value: f32) -> Self {
        Self::new(
            what,
            value,
            (0.0..1.0).contains(&value),
            "a finite number in [0, 1)",
        )
    }

    fn batch_size(size: usize) -> Self {
        Self::new("batch_size", size as f32, size >= 1, ">= 1")
    }

    /// The step factors and bounds RPROP and SARPROP share.
    fn steps(increase: f32, decrease: f32, min: f32, max: f32) -> Vec<Self> {
        vec![
            Self::new(
                "increase_factor",
                increase,
                increase >= 1.0,
                "a finite number >= 1",
            ),
            Self::new(
                "decrease_factor",
                decrease,
                decrease > 0.0 && decrease <= 1.0,
                "a finite number in (0, 1]",
            ),
            Self::non_negative("delta_min", min),
            Self::new(
                "delta_max",
                max,
                max > 0.0 && max >= min,
                "a finite number > 0 and >= delta_min",
            ),
        ]
    }
}

impl Algorithm {
    /// FANN's QUICKPROP with FANN's defaults.
    pub fn fann_quickprop() -> Self {
        Algorithm::Quickprop {
            learning_rate: 0.7,
            decay: -0.0001,
            mu: 1.75,
        }
    }

    /// FANN's default algorithm: RPROP with FANN's parameters.
    pub fn fann_rprop() -> Self {
        Algorithm::Rprop {
            params: RpropParams::default(),
            delta_zero: 0.1,
        }
    }

    /// FANN's SARPROP with FANN's defaults and noise seed 0.
    pub fn fann_sarprop() -> Self {
        Algorithm::Sarprop {
            params: Sarprop::default(),
        }
    }

    pub(crate) fn is_fann(&self) -> bool {
        matches!(
            self,
            Algorithm::Incremental { .. }
                | Algorithm::Batch { .. }
                | Algorithm::Rprop { .. }
                | Algorithm::Quickprop { .. }
                | Algorithm::Sarprop { .. }
        )
    }

    /// Checks every hyper-parameter: finite, and in the range the algorithm needs
    /// (learning rates and decays >= 0, momentum and Adam's betas in [0, 1), step
    /// factors >= 1 and in (0, 1], step bounds with `0 <= delta_min <= delta_max`,
    /// batch sizes >= 1). The error names the parameter.
    pub fn validate(&self) -> Result<()> {
        use Check as C;
        let checks: Vec<Check> = match *self {
            Algorithm::Incremental {
                learning_rate,
                momentum,
            } => vec![
                C::non_negative("learning_rate", learning_rate),
                C::unit("momentum", momentum),
            ],
            Algorithm::Batch { learning_rate } => {
                vec![C::non_negative("learning_rate", learning_rate)]
            }
            Algorithm::Rprop {
                params: p,
                delta_zero,
            } => {
                let mut c = C::steps(
                    p.increase_factor,
                    p.decrease_factor,
                    p.delta_min,
                    p.delta_max,
                );
                c.push(C::positive("delta_zero", delta_zero));
                c
            }
            Algorithm::Quickprop {
                learning_rate,
                decay,
                mu,
            } => vec![
                C::non_negative("learning_rate", learning_rate),
                C::finite("decay", decay),
                C::positive("mu", mu),
            ],
            Algorithm::Sarprop { params: p } => {
                let mut c = C::steps(
                    p.increase_factor,
                    p.decrease_factor,
                    p.delta_min,
                    p.delta_max,
                );
                c.extend([
                    C::finite("weight_decay_shift", p.weight_decay_shift),
                    C::non_negative("step_error_threshold_factor", p.step_error_threshold_factor),
                    C::finite("step_error_shift", p.step_error_shift),
                    C::non_negative("temperature", p.temperature),
                ]);
                c
            }
            Algorithm::Sgd {
                params: p,
                batch_size,
            } => vec![
                C::non_negative("learning_rate", p.learning_rate),
                C::unit("momentum", p.momentum),
                C::non_negative("weight_decay", p.weight_decay),
                C::batch_size(batch_size),
            ],
            Algorithm::Adam {
                params: p,
                batch_size,
            } => vec![
                C::non_negative("learning_rate", p.learning_rate),
                C::unit("beta1", p.beta1),
                C::unit("beta2", p.beta2),
                C::positive("epsilon", p.epsilon),
                C::non_negative("weight_decay", p.weight_decay),
                C::batch_size(batch_size),
            ],
        };
        match checks.into_iter().find(|c| !(c.value.is_finite() && c.ok)) {
            Some(c) => Err(TesseraError::InvalidArgument {
                what: c.what,
                value: c.value as f64,
                expected: c.expected,
            }),
            None => Ok(()),
        }
    }

    /// Samples per update, or `None` for full-batch algorithms.
    pub(crate) fn batch_size(&self) -> Option<usize> {
        match self {
            Algorithm::Incremental { .. } => Some(1),
            Algorithm::Batch { .. }
            | Algorithm::Rprop { .. }
            | Algorithm::Quickprop { .. }
            | Algorithm::Sarprop { .. } => None,
            Algorithm::Sgd { batch_size, .. } | Algorithm::Adam { batch_size, .. } => {
                Some(*batch_size)
            }
        }
    }
}

/// SARPROP's parameters, as FANN 2.2 names them (`fann_set_sarprop_*`, and the RPROP
/// factors it shares), plus the seed of its step noise.
///
/// Epoch `e` (from 0) of SARPROP is one [`NnKernels::sarprop_update`] per tensor with
/// `weight_decay = 2^(-temperature e + weight_decay_shift)`,
/// `step_threshold = step_error_threshold_factor MSE` and
/// `noise_scale = sqrt(MSE) 2^(-temperature e + step_error_shift)`, where MSE is the
/// epoch's (FANN's) mean squared error. FANN draws its noise from libc `rand()`;
/// tessera draws it from a counter-based hash of (`seed`, epoch, tensor, index), so a
/// run is reproducible and the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sarprop {
    /// Step growth (FANN `rprop_increase_factor`: 1.2).
    pub increase_factor: f32,
    /// Step shrink (FANN `rprop_decrease_factor`: 0.5).
    pub decrease_factor: f32,
    /// Smallest step (FANN hard-codes 1e-6 for SARPROP).
    pub delta_min: f32,
    /// Largest step (FANN `rprop_delta_max`: 50).
    pub delta_max: f32,
    /// FANN `sarprop_weight_decay_shift`: -6.644 (log2 0.01).
    pub weight_decay_shift: f32,
    /// FANN `sarprop_step_error_threshold_factor`: 0.1.
    pub step_error_threshold_factor: f32,
    /// FANN `sarprop_step_error_shift`: 1.385.
    pub step_error_shift: f32,
    /// FANN `sarprop_temperature`: 0.015.
    pub temperature: f32,
    /// Seed of the step noise.
    pub seed: u64,
}

impl Default for Sarprop {
    fn default() -> Self {
        Self {
            increase_factor: 1.2,
            decrease_factor: 0.5,
            delta_min: 1e-6,
            delta_max: 50.0,
            weight_decay_shift: -6.644,
            step_error_threshold_factor: 0.1,
            step_error_shift: 1.385,
            temperature: 0.015,
            seed: 0,
        }
    }
}

impl Sarprop {
    /// The kernel parameters of epoch `epoch` (from 0) for tensor number `tensor`,
    /// after an epoch with mean squared error `mse`.
    pub fn params(&self, epoch: u32, mse: f64, tensor: u32) -> SarpropParams {
        let cooling = -f64::from(self.temperature) * f64::from(epoch);
        let key = self.seed ^ (u64::from(epoch) << 32 | u64::from(tensor));
        SarpropParams {
            increase_factor: self.increase_factor,
            decrease_factor: self.decrease_factor,
            delta_min: self.delta_min,
            delta_max: self.delta_max,
            weight_decay: (cooling + f64::from(self.weight_decay_shift)).exp2() as f32,
            step_threshold: (f64::from(self.step_error_threshold_factor) * mse) as f32,
            noise_scale: (mse.sqrt() * (cooling + f64::from(self.step_error_shift)).exp2()) as f32,
            noise_seed: (Rng::new(key).next_u64() >> 32) as u32,
        }
    }
}

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The loss. FANN algorithms default to FANN's default error function,
    /// `Loss::Fann { tanh: true }` (FANN_ERRORFUNC_TANH).
    pub loss: Loss,
    /// Activation derivatives in the backward pass: FANN algorithms default to
    /// FANN's (clipped for the sigmoids, see [`Derivative`]), the others to exact.
    pub derivative: Derivative,
    /// FANN's bit-fail limit (default 0.35).
    pub bit_fail_limit: f32,
    /// Shuffle the samples every epoch with this seed (FANN does not shuffle).
    pub shuffle_seed: Option<u64>,
    /// Rows per forward/backward pass of full-batch algorithms (bounds memory).
    pub chunk_rows: usize,
    /// Read the MSE and bit-fail count back every this many epochs (1, the default:
    /// every epoch; 0: never). Between readings an epoch on the GPU reads nothing
    /// back, and its [`EpochStats`] carry `None`. SARPROP reads them every epoch
    /// regardless: its update uses the MSE.
    pub metrics_every: usize,
}

impl TrainConfig {
    /// `algorithm` with FANN's loss and derivatives for FANN algorithms, and mean
    /// squared error with exact derivatives otherwise; bit-fail limit 0.35, no
    /// shuffling.
    pub fn new(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            derivative: if algorithm.is_fann() {
                Derivative::Fann
            } else {
                Derivative::Exact
            },
            loss: if algorithm.is_fann() {
                Loss::Fann { tanh: true }
            } else {
                Loss::MeanSquared
            },
            bit_fail_limit: 0.35,
            shuffle_seed: None,
            chunk_rows: 4096,
            metrics_every: 1,
        }
    }

    /// What libfann does with a network read from a `.net` file: its
    /// `training_algorithm` with the file's learning rate and momentum, QUICKPROP decay
    /// and mu, RPROP factors, step bounds and initial step (SARPROP shares the RPROP
    /// factors and `delta_max`; FANN 2.2 files hold no other SARPROP setting, so the rest
    /// keep FANN's defaults), its `train_error_function` (FANN's default is TANH) and
    /// `bit_fail_limit`, with FANN's activation derivatives. Fails on a setting out of
    /// range.
    pub fn from_fann(settings: &FannSettings) -> Result<Self> {
        let s = settings;
        let algorithm = match s.training_algorithm {
            0 => Algorithm::Incremental {
                learning_rate: s.learning_rate,
                momentum: s.learning_momentum,
            },
            1 => Algorithm::Batch {
                learning_rate: s.learning_rate,
            },
            2 => Algorithm::Rprop {
                params: s.rprop,
                delta_zero: s.rprop_delta_zero,
            },
            3 => Algorithm::Quickprop {
                learning_rate: s.learning_rate,
                decay: s.quickprop_decay,
                mu: s.quickprop_mu,
            },
            4 => Algorithm::Sarprop {
                params: Sarprop {
                    increase_factor: s.rprop.increase_factor,
                    decrease_factor: s.rprop.decrease_factor,
                    delta_max: s.rprop.delta_max,
                    ..Sarprop::default()
                },
            },
            other => {
                return Err(TesseraError::InvalidConfig {
                    field: "training_algorithm",
                    value: other.to_string(),
                    expected: "0..=4 (incremental, batch, RPROP, QUICKPROP, SARPROP)".into(),
                });
            }
        };
        let tanh = match s.train_error_function {
            0 => false,
            1 => true,
            other => {
                return Err(TesseraError::InvalidConfig {
                    field: "train_error_function",
                    value: other.to_string(),
                    expected: "0 (linear) or 1 (tanh)".into(),
                });
            }
        };
        let config = Self {
            loss: Loss::Fann { tanh },
            bit_fail_limit: s.bit_fail_limit,
            ..Self::new(algorithm)
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the algorithm's hyper-parameters ([`Algorithm::validate`]), the bit-fail
    /// limit (finite, > 0) and `chunk_rows` (>= 1). [`Trainer::new`] calls it.
    pub fn validate(&self) -> Result<()> {
        self.algorithm.validate()?;
        if !(self.bit_fail_limit.is_finite() && self.bit_fail_limit > 0.0) {
            return Err(TesseraError::InvalidArgument {
                what: "bit_fail_limit",
                value: self.bit_fail_limit as f64,
                expected: "a finite number > 0",
            });
        }
        if self.chunk_rows == 0 {
            return Err(TesseraError::InvalidArgument {
                what: "chunk_rows",
                value: 0.0,
                expected: ">= 1",
            });
        }
        Ok(())
    }
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean squared error as FANN reports it: SSE / (outputs x samples), measured
    /// during the epoch's forward passes (`None` on epochs that skip the readback,
    /// see [`TrainConfig::metrics_every`]).
    pub mse: Option<f64>,
    /// Outputs whose error reached the bit-fail limit (`None` likewise).
    pub bit_fail: Option<u64>,
}

struct LayerState<K: NnKernels> {
    gw: K::Tensor,
    gb: K::Tensor,
    /// Optimizer state: velocity (SGD), previous gradient (RPROP), first moment (Adam).
    sw: [K::Tensor; 2],
    sb: [K::Tensor; 2],
}

/// The two optimizer-state tensors of `len` weights as `algorithm` starts them
/// (RPROP's steps at `delta_zero`, everything else 0).
pub(crate) fn fresh_optimizer_state<K: NnKernels>(
    k: &K,
    algorithm: Algorithm,
    len: usize,
) -> Result<[K::Tensor; 2]> {
    let init_step = match algorithm {
        Algorithm::Rprop { delta_zero, .. } => delta_zero,
        _ => 0.0,
    };
    Ok([k.zeros(len)?, k.tensor(&vec![init_step; len])?])
}

/// Gradients and optimizer state for every layer of `model`, as `config`'s algorithm
/// starts them.
fn fresh_state<K: NnKernels>(model: &Model<K>, config: &TrainConfig) -> Result<Vec<LayerState<K>>> {
    let k = &model.kernels;
    model
        .layers
        .iter()
        .map(|l| {
            let (nw, nb) = (l.spec.weights.len(), l.spec.bias.len());
            Ok(LayerState {
                gw: k.zeros(nw)?,
                gb: k.zeros(nb)?,
                sw: fresh_optimizer_state(k, config.algorithm, nw)?,
                sb: fresh_optimizer_state(k, config.algorithm, nb)?,
            })
        })
        .collect()
}

/// One update of `w` by `algorithm` with gradient `g` and state `[s0, s1]`: update
/// number `updates` (from 1), over `samples` samples with mean squared error `mse`,
/// of tensor number `tensor` (SARPROP's noise key).
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_update<K: NnKernels>(
    k: &K,
    algorithm: Algorithm,
    (updates, samples, mse, tensor): (u32, usize, Option<f64>, u32),
    w: &mut K::Tensor,
    g: &K::Tensor,
    [s0, s1]: [&mut K::Tensor; 2],
) -> Result<()> {
    match algorithm {
        Algorithm::Incremental {
            learning_rate,
            momentum,
        } => k.sgd_update(
            w,
            g,
            s0,
            SgdParams {
                learning_rate,
                momentum,
                weight_decay: 0.0,
            },
        ),
        Algorithm::Batch { learning_rate } => {
            let p = SgdParams {
                learning_rate: learning_rate / samples as f32,
                momentum: 0.0,
                weight_decay: 0.0,
            };
            k.sgd_update(w, g, s0, p)
        }
        Algorithm::Rprop { params, .. } => k.rprop_update(w, g, s0, s1, params),
        Algorithm::Quickprop {
            learning_rate,
            decay,
            mu,
        } => {
            let p = QuickpropParams {
                epsilon: learning_rate / samples as f32,
                decay,
                mu,
            };
            k.quickprop_update(w, g, s0, s1, p)
        }
        Algorithm::Sarprop { params } => {
            // FANN's SARPROP epoch counter starts at 0.
            let p = params.params(updates - 1, mse.unwrap_or(0.0), tensor);
            k.sarprop_update(w, g, s0, s1, p)
        }
        Algorithm::Sgd { params, .. } => k.sgd_update(w, g, s0, params),
        Algorithm::Adam { params, .. } => k.adam_update(w, g, s0, s1, updates, params),
    }
}

/// Trains a [`Model`] on its backend.
pub struct Trainer<K: NnKernels> {
    model: Model<K>,
    state: Vec<LayerState<K>>,
    updates: u32,
    /// The epoch's squared errors and bit fails, summed where the backend computes
    /// them (on the device for a GPU) and read once per measured epoch.
    metrics: K::Metrics,
    epochs: EpochState,
}

/// What every trainer's epoch loop keeps between epochs: the configuration, the
/// epoch count, the shuffle and the gathered samples of the current batch.
#[derive(Debug)]
pub(crate) struct EpochState {
    pub(crate) config: TrainConfig,
    pub(crate) epoch: usize,
    rng: Rng,
    order: Vec<usize>,
    pub(crate) x: Vec<f32>,
    pub(crate) t: Vec<f32>,
    /// Whether the trainer's metrics hold sums not yet taken (an epoch that failed
    /// midway).
    metrics_pending: bool,
}

impl EpochState {
    pub(crate) fn new(config: TrainConfig) -> Self {
        Self {
            rng: Rng::new(config.shuffle_seed.unwrap_or(0)),
            config,
            epoch: 0,
            order: Vec::new(),
            x: Vec::new(),
            t: Vec::new(),
            metrics_pending: false,
        }
    }
}

/// The steps an epoch is made of, implemented by each kind of trainer; the loop that
/// orders them (chunks, mini-batches, shuffling, metrics) is [`run_epoch`].
pub(crate) trait EpochSteps {
    /// The loop's state.
    fn epochs(&mut self) -> &mut EpochState;
    /// The trained net's inputs and outputs per sample.
    fn widths(&self) -> (usize, usize);
    /// Whether the backend already holds `rows` rows of the samples `samples` names.
    fn holds(&self, rows: usize, samples: Option<u64>) -> bool;
    /// Forward and backward on `rows` samples, in the state's `x`/`t` unless
    /// [`Self::holds`] them: gradients overwritten, or added to when `accumulate`,
    /// scaled by `scale`; the batch's error sums added to the metrics when `measure`.
    fn backprop(
        &mut self,
        rows: usize,
        samples: Option<u64>,
        accumulate: bool,
        scale: f32,
        measure: bool,
    ) -> Result<()>;
    /// The error sums accumulated since the last call (a host sync on a GPU).
    fn take_sums(&mut self) -> Result<(f64, u64)>;
    /// One update with the gradients of `samples` samples of mean squared error `mse`.
    fn update(&mut self, samples: usize, mse: Option<f64>) -> Result<()>;
}

fn take_metrics(steps: &mut impl EpochSteps) -> Result<(f64, u64)> {
    steps.epochs().metrics_pending = false;
    steps.take_sums()
}

/// The error for an epoch whose measured MSE is not finite: training diverged (the
/// inputs are finite, so the weights or their products overflowed).
fn check_diverged(epoch: usize, mse: Option<f64>) -> Result<()> {
    match mse {
        Some(mse) if !mse.is_finite() => Err(TesseraError::Diverged {
            what: "training diverged: the mean squared error (lower the learning rate or rescale the data)",
            step: epoch,
            value: mse,
        }),
        _ => Ok(()),
    }
}

/// One pass over `data` by `steps`: FANN-style MSE and bit-fail count.
pub(crate) fn run_epoch(steps: &mut impl EpochSteps, data: &TrainData) -> Result<EpochStats> {
    let (inputs, outputs) = steps.widths();
    if data.n_inputs() != inputs || data.n_outputs() != outputs {
        return Err(TesseraError::InvalidConfig {
            field: "training data width",
            value: format!(
                "{} inputs and {} outputs per sample",
                data.n_inputs(),
                data.n_outputs()
            ),
            expected: format!("the model's {inputs} inputs and {outputs} outputs"),
        });
    }
    if data.is_empty() {
        return Err(TesseraError::InvalidConfig {
            field: "training data",
            value: "0 samples".into(),
            expected: "at least one sample".into(),
        });
    }
    let st = steps.epochs();
    st.epoch += 1;
    let n = data.len();
    let config = st.config;
    let epoch = st.epoch;
    st.order = (0..n).collect();
    if config.shuffle_seed.is_some() {
        let mut order = std::mem::take(&mut st.order);
        st.rng.shuffle(&mut order);
        st.order = order;
    }
    let measure = matches!(config.algorithm, Algorithm::Sarprop { .. })
        || config.metrics_every > 0 && epoch.is_multiple_of(config.metrics_every);
    if st.metrics_pending {
        // An earlier epoch failed midway: its partial sums are not this epoch's.
        take_metrics(steps)?;
    }
    let order = std::mem::take(&mut steps.epochs().order);
    let scale = (n * data.n_outputs()) as f64;
    let mut measured = None;
    let batch = config.algorithm.batch_size();
    // An epoch that is one batch of the samples in order keeps them on the
    // backend from one epoch to the next, uploaded once.
    let one_batch = batch.unwrap_or(config.chunk_rows) >= n;
    let resident = (one_batch && config.shuffle_seed.is_none()).then(|| data.id());
    let backprop = |steps: &mut _, chunk: &[usize], accumulate, scale| {
        if !EpochSteps::holds(steps, chunk.len(), resident) {
            let st = EpochSteps::epochs(steps);
            data.gather(chunk, &mut st.x, &mut st.t);
        }
        EpochSteps::epochs(steps).metrics_pending |= measure;
        EpochSteps::backprop(steps, chunk.len(), resident, accumulate, scale, measure)
    };
    match batch {
        None => {
            for (c, chunk) in order.chunks(config.chunk_rows).enumerate() {
                backprop(steps, chunk, c > 0, 1.0)?;
            }
            measured = measure.then(|| take_metrics(steps)).transpose()?;
            let mse = measured.map(|(sse, _)| sse / scale);
            // Checked before the update, so the weights that diverged stay as they were.
            check_diverged(epoch, mse)?;
            steps.update(n, mse)?;
        }
        Some(batch) => {
            let fann = config.algorithm.is_fann();
            for chunk in order.chunks(batch) {
                let scale = if fann { 1.0 } else { 1.0 / chunk.len() as f32 };
                backprop(steps, chunk, false, scale)?;
                steps.update(chunk.len(), None)?;
            }
        }
    }
    steps.epochs().order = order;
    if measure && measured.is_none() {
        measured = Some(take_metrics(steps)?);
    }
    let mse = measured.map(|(sse, _)| sse / scale);
    check_diverged(epoch, mse)?;
    Ok(EpochStats {
        epoch,
        mse,
        bit_fail: measured.map(|(_, fails)| fails),
    })
}

/// Epochs by `steps` until the MSE reaches `desired_error` (checked on epochs that
/// read it) or `max_epochs` pass; `callback` sees every epoch's stats and may stop
/// training by returning false.
pub(crate) fn run_until(
    steps: &mut impl EpochSteps,
    data: &TrainData,
    max_epochs: usize,
    desired_error: f64,
    mut callback: impl FnMut(&EpochStats) -> bool,
) -> Result<EpochStats> {
    let mut last = None;
    for _ in 0..max_epochs {
        let stats = run_epoch(steps, data)?;
        last = Some(stats);
        if !callback(&stats) || stats.mse.is_some_and(|mse| mse <= desired_error) {
            break;
        }
    }
    last.ok_or(TesseraError::InvalidArgument {
        what: "max_epochs",
        value: 0.0,
        expected: ">= 1",
    })
}

impl<K: NnKernels> std::fmt::Debug for Trainer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model)
            .field("config", &self.epochs.config)
            .field("epoch", &self.epochs.epoch)
            .finish()
    }
}

impl<K: NnKernels> Trainer<K> {
    /// A trainer for `model`. Fails if a layer cannot be trained (thresholds), if the
    /// loss does not fit the output layer, or on a hyper-parameter that
    /// [`TrainConfig::validate`] rejects.
    pub fn new(model: Model<K>, config: TrainConfig) -> Result<Self> {
        if let Some(l) = model
            .layers
            .iter()
            .find(|l| !l.spec.activation.has_gradient())
        {
            return Err(TesseraError::InvalidArgument {
                what: "untrainable activation",
                value: l.spec.activation.code() as f64,
                expected: "differentiable activations in every layer (thresholds are inference-only)",
            });
        }
        let output = model.layers[model.layers.len() - 1].spec.activation;
        if output.is_rowwise() != (config.loss == Loss::SoftmaxCrossEntropy) {
            return Err(TesseraError::InvalidArgument {
                what: "loss and output activation",
                value: config.loss.code() as f64,
                expected: "softmax cross-entropy exactly when the output layer is softmax",
            });
        }
        config.validate()?;
        let state = fresh_state(&model, &config)?;
        let metrics = model.kernels.metrics()?;
        Ok(Self {
            model,
            state,
            updates: 0,
            metrics,
            epochs: EpochState::new(config),
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &Model<K> {
        &self.model
    }

    /// The model, mutably (e.g. to run it between epochs).
    pub fn model_mut(&mut self) -> &mut Model<K> {
        &mut self.model
    }

    /// Ends training and returns the model.
    pub fn into_model(self) -> Model<K> {
        self.model
    }

    /// Replaces the model's network with `net` (uploaded anew) and restarts the
    /// optimizer's state and epoch count, as FANN's `fann_clear_train_arrays` does.
    pub(crate) fn reset(&mut self, net: &Network) -> Result<()> {
        let layers = Model::upload(&self.model.kernels, net)?;
        self.model.layers = layers;
        self.model.work = None;
        self.state = fresh_state(&self.model, &self.epochs.config)?;
        self.updates = 0;
        self.epochs.epoch = 0;
        Ok(())
    }

    /// One pass over `data`. Returns FANN-style MSE and bit-fail count.
    pub fn train_epoch(&mut self, data: &TrainData) -> Result<EpochStats> {
        run_epoch(self, data)
    }

    /// Trains until the MSE reaches `desired_error` (checked on epochs that read it)
    /// or `max_epochs` pass. `callback`
    /// sees every epoch's stats and may stop training by returning false.
    pub fn train_until(
        &mut self,
        data: &TrainData,
        max_epochs: usize,
        desired_error: f64,
        callback: impl FnMut(&EpochStats) -> bool,
    ) -> Result<EpochStats> {
        run_until(self, data, max_epochs, desired_error, callback)
    }

    /// The gradients of the last backward pass: `(weights, biases)` per layer.
    pub fn gradients(&self) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let k = &self.model.kernels;
        self.state
            .iter()
            .map(|s| Ok((k.read(&s.gw)?, k.read(&s.gb)?)))
            .collect()
    }

    /// Computes gradients for `data` (summed over samples, scale 1) without updating.
    pub fn compute_gradients(&mut self, data: &TrainData) -> Result<(f64, u64)> {
        let idx: Vec<usize> = (0..data.len()).collect();
        data.gather(&idx, &mut self.epochs.x, &mut self.epochs.t);
        if self.epochs.metrics_pending {
            take_metrics(self)?;
        }
        self.epochs.metrics_pending = true;
        self.backprop(data.len(), None, false, 1.0, true)?;
        take_metrics(self)
    }
}

impl<K: NnKernels> EpochSteps for Trainer<K> {
    fn epochs(&mut self) -> &mut EpochState {
        &mut self.epochs
    }

    fn widths(&self) -> (usize, usize) {
        (self.model.inputs(), self.model.outputs())
    }

    fn holds(&self, rows: usize, samples: Option<u64>) -> bool {
        samples.is_some()
            && self
                .model
                .work
                .as_ref()
                .is_some_and(|w| w.rows == rows && w.samples == samples)
    }

    fn backprop(
        &mut self,
        rows: usize,
        samples: Option<u64>,
        accumulate: bool,
        scale: f32,
        measure: bool,
    ) -> Result<()> {
        if !self.holds(rows, samples) {
            self.model.ensure_workspace(rows)?;
            let k = &self.model.kernels;
            let work = self.model.work.as_mut().expect("workspace allocated");
            work.samples = None;
            k.write(&mut work.x, &self.epochs.x)?;
            k.write(&mut work.target, &self.epochs.t)?;
            work.samples = samples;
        }
        let k = &self.model.kernels;
        let work = self.model.work.as_mut().expect("workspace allocated");
        let layers = Model::dense_layers(&self.model.layers);
        let mut grads: Vec<DenseGrads<'_, K::Tensor>> = self
            .state
            .iter_mut()
            .map(|st| DenseGrads {
                w: &mut st.gw,
                b: &mut st.gb,
            })
            .collect();
        let config = &self.epochs.config;
        let p = DenseBackprop {
            rows,
            loss: config.loss,
            derivative: config.derivative,
            scale,
            accumulate,
            bit_fail_limit: config.bit_fail_limit,
        };
        let scratch = DenseWork {
            z: &mut work.z,
            a: &mut work.a,
            dz: &mut work.dz,
            da: &mut work.da,
        };
        let metrics = measure.then_some(&mut self.metrics);
        k.dense_backprop(
            p,
            &layers,
            &work.x,
            &work.target,
            scratch,
            &mut grads,
            metrics,
        )
    }

    fn take_sums(&mut self) -> Result<(f64, u64)> {
        self.model.kernels.take_metrics(&mut self.metrics)
    }

    fn update(&mut self, samples: usize, mse: Option<f64>) -> Result<()> {
        self.updates += 1;
        let k = &self.model.kernels;
        let mut tensor = 0u32;
        for (layer, st) in self.model.layers.iter_mut().zip(&mut self.state) {
            let pairs = [
                (&mut layer.w, &st.gw, &mut st.sw),
                (&mut layer.b, &st.gb, &mut st.sb),
            ];
            for (w, g, [s0, s1]) in pairs {
                tensor += 1;
                let at = (self.updates, samples, mse, tensor);
                apply_update(k, self.epochs.config.algorithm, at, w, g, [s0, s1])?;
            }
        }
        Ok(())
    }
}
