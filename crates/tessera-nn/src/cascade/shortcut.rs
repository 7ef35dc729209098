//! Training a shortcut network by backpropagation through every connection (FANN's
//! `fann_train_on_data` on a `FANN_NETTYPE_SHORTCUT` net), on any backend: the whole
//! net is one forward and one backward kernel
//! ([`NnKernels::shortcut_forward`]/[`NnKernels::shortcut_backward`]) on weights
//! resident as one flat tensor, updated by the same optimizer kernels and epoch loop as
//! a layered net.

use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::shortcut::{ShortcutPass, ShortcutUnit};
use tessera_tensor::nn::{Activation, Loss, NnKernels};

use super::CascadeNetwork;
use crate::data::{TrainData, check_input_rows};
use crate::train::{
    EpochState, EpochStats, EpochSteps, TrainConfig, apply_update, fresh_optimizer_state,
    run_epoch, run_until,
};

/// The units of `net` (hidden neurons, then outputs) and its weights in the
/// kernels' flat order: each hidden neuron's weights as stored, then each output's
/// over the inputs, the bias and every hidden neuron.
pub(crate) fn pack(net: &CascadeNetwork) -> (Vec<ShortcutUnit>, Vec<f32>) {
    let (n, o) = (net.inputs, &net.output);
    let width = net.candidate_inputs();
    let mut units: Vec<ShortcutUnit> = net
        .hidden
        .iter()
        .map(|h| ShortcutUnit {
            activation: h.activation,
            steepness: h.steepness,
            fan_in: h.weights.len(),
        })
        .collect();
    let mut weights: Vec<f32> = net.hidden.iter().flat_map(|h| h.weights.clone()).collect();
    for j in 0..o.outputs {
        units.push(ShortcutUnit {
            activation: o.activation,
            steepness: o.steepness,
            fan_in: width,
        });
        weights.extend((0..width).map(|i| match i.cmp(&n) {
            std::cmp::Ordering::Less => o.weights[i * o.outputs + j],
            std::cmp::Ordering::Equal => o.bias[j],
            std::cmp::Ordering::Greater => o.weights[(i - 1) * o.outputs + j],
        }));
    }
    (units, weights)
}

/// `net` with the flat `weights` of [`pack`]'s order written back.
pub(crate) fn unpack(net: &CascadeNetwork, weights: &[f32]) -> CascadeNetwork {
    let mut out = net.clone();
    let mut at = 0;
    for h in &mut out.hidden {
        let len = h.weights.len();
        h.weights.copy_from_slice(&weights[at..at + len]);
        at += len;
    }
    let (n, width) = (net.inputs, net.candidate_inputs());
    let o = &mut out.output;
    for j in 0..o.outputs {
        let w = &weights[at + j * width..at + (j + 1) * width];
        for (i, &x) in w.iter().enumerate() {
            match i.cmp(&n) {
                std::cmp::Ordering::Less => o.weights[i * o.outputs + j] = x,
                std::cmp::Ordering::Equal => o.bias[j] = x,
                std::cmp::Ordering::Greater => o.weights[(i - 1) * o.outputs + j] = x,
            }
        }
    }
    out
}

/// A batch's tensors: samples, values, sums, outputs and their gradients.
struct Work<K: NnKernels> {
    rows: usize,
    /// The [`TrainData`] whose samples, all of them in order, `x` and `target` hold.
    samples: Option<u64>,
    x: K::Tensor,
    target: K::Tensor,
    values: K::Tensor,
    sums: K::Tensor,
    y: K::Tensor,
    dy: K::Tensor,
    deltas: K::Tensor,
}

/// Trains a [`CascadeNetwork`] with every weight free (not Cascade2's frozen
/// hidden neurons) on a backend, with the algorithms, losses and epoch semantics of
/// [`Trainer`](crate::Trainer). The network stays on the backend until
/// [`ShortcutTrainer::network`] reads it back.
///
/// ```
/// use tessera_nn::cascade::{CascadeNetwork, ShortcutTrainer};
/// use tessera_nn::{Algorithm, TrainConfig, TrainData};
/// use tessera_tensor::nn::Activation;
///
/// let xor = TrainData::new(2, 1, vec![-1., -1., -1., 1., 1., -1., 1., 1.], vec![-1., 1., 1., -1.])?;
/// // 2 inputs, a hidden layer of 3 and one output, every neuron reading all before it.
/// let sine = Activation::SigmoidSymmetric;
/// let net = CascadeNetwork::shortcut(&[2, 3, 1], sine, sine, 0.5, 3)?;
/// let config = TrainConfig::new(Algorithm::fann_rprop());
/// let mut trainer = ShortcutTrainer::new(tessera_cpu::CpuNn::new(), &net, config)?;
/// let stats = trainer.train_until(&xor, 500, 0.001, |_| true)?;
/// assert_eq!(stats.bit_fail, Some(0));
/// let trained = trainer.network()?;
/// # Ok::<(), tessera_tensor::TesseraError>(())
/// ```
pub struct ShortcutTrainer<K: NnKernels> {
    kernels: K,
    net: CascadeNetwork,
    pass: ShortcutPass,
    units: Vec<ShortcutUnit>,
    weights: K::Tensor,
    grad: K::Tensor,
    state: [K::Tensor; 2],
    work: Option<Work<K>>,
    metrics: K::Metrics,
    updates: u32,
    epochs: EpochState,
}

impl<K: NnKernels> std::fmt::Debug for ShortcutTrainer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShortcutTrainer")
            .field("pass", &self.pass)
            .field("config", &self.epochs.config)
            .field("epoch", &self.epochs.epoch)
            .finish()
    }
}

impl<K: NnKernels> ShortcutTrainer<K> {
    /// Uploads `net` to `kernels`' backend for training with `config`. Fails, with
    /// nothing uploaded, on a network [`CascadeNetwork::validate`] rejects, on
    /// activations without a gradient, on softmax cross-entropy (a shortcut net's
    /// outputs are element-wise) and on a configuration [`TrainConfig::validate`]
    /// rejects.
    pub fn new(kernels: K, net: &CascadeNetwork, config: TrainConfig) -> Result<Self> {
        net.validate()?;
        config.validate()?;
        if config.loss == Loss::SoftmaxCrossEntropy || net.output.activation.is_rowwise() {
            return Err(TesseraError::InvalidArgument {
                what: "shortcut network loss",
                value: config.loss.code() as f64,
                expected: "a loss on element-wise outputs (mean squared or FANN's)",
            });
        }
        let (units, weights) = pack(net);
        let pass = ShortcutPass {
            rows: 0,
            inputs: net.inputs,
            hidden: net.hidden.len(),
            outputs: net.outputs(),
        };
        pass.offsets(&units, true)?;
        let len = weights.len();
        Ok(Self {
            weights: kernels.tensor(&weights)?,
            grad: kernels.zeros(len)?,
            state: fresh_optimizer_state(&kernels, config.algorithm, len)?,
            metrics: kernels.metrics()?,
            kernels,
            net: net.clone(),
            pass,
            units,
            work: None,
            updates: 0,
            epochs: EpochState::new(config),
        })
    }

    /// One pass over `data`: FANN-style MSE and bit-fail count, as
    /// [`Trainer::train_epoch`](crate::Trainer::train_epoch).
    pub fn train_epoch(&mut self, data: &TrainData) -> Result<EpochStats> {
        run_epoch(self, data)
    }

    /// Trains until the MSE reaches `desired_error` (checked on epochs that read it)
    /// or `max_epochs` pass; `callback` sees every epoch's stats and may stop training
    /// by returning false.
    pub fn train_until(
        &mut self,
        data: &TrainData,
        max_epochs: usize,
        desired_error: f64,
        callback: impl FnMut(&EpochStats) -> bool,
    ) -> Result<EpochStats> {
        run_until(self, data, max_epochs, desired_error, callback)
    }

    /// The network with its current weights (read back from the backend).
    pub fn network(&self) -> Result<CascadeNetwork> {
        let weights = self.kernels.read(&self.weights)?;
        Ok(unpack(&self.net, &weights))
    }

    /// The outputs for `inputs` (`[rows, inputs]`), run on the backend.
    pub fn run(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        let rows = check_input_rows("shortcut network inputs", inputs, self.pass.inputs)?;
        self.ensure_work(rows)?;
        let work = self.work.as_mut().expect("work allocated");
        work.samples = None;
        self.kernels.write(&mut work.x, inputs)?;
        self.forward()?;
        let work = self.work.as_ref().expect("work allocated");
        self.kernels.read(&work.y)
    }

    /// Epochs trained so far.
    pub fn epoch(&self) -> usize {
        self.epochs.epoch
    }

    fn ensure_work(&mut self, rows: usize) -> Result<()> {
        if self.work.as_ref().is_some_and(|w| w.rows == rows) {
            return Ok(());
        }
        let p = ShortcutPass { rows, ..self.pass };
        let k = &self.kernels;
        self.work = Some(Work {
            rows,
            samples: None,
            x: k.zeros(rows * p.inputs)?,
            target: k.zeros(rows * p.outputs)?,
            values: k.zeros(rows * p.width())?,
            sums: k.zeros(rows * p.units())?,
            y: k.zeros(rows * p.outputs)?,
            dy: k.zeros(rows * p.outputs)?,
            deltas: k.zeros(rows * p.units())?,
        });
        Ok(())
    }

    /// The forward pass on the work's samples.
    fn forward(&mut self) -> Result<()> {
        let work = self.work.as_mut().expect("work allocated");
        let p = ShortcutPass {
            rows: work.rows,
            ..self.pass
        };
        self.kernels.shortcut_forward(
            p,
            &self.units,
            &self.weights,
            &work.x,
            &mut work.values,
            &mut work.sums,
            &mut work.y,
        )
    }

    fn output(&self) -> (Activation, f32) {
        (self.net.output.activation, self.net.output.steepness)
    }
}

impl<K: NnKernels> EpochSteps for ShortcutTrainer<K> {
    fn epochs(&mut self) -> &mut EpochState {
        &mut self.epochs
    }

    fn widths(&self) -> (usize, usize) {
        (self.pass.inputs, self.pass.outputs)
    }

    fn holds(&self, rows: usize, samples: Option<u64>) -> bool {
        samples.is_some()
            && self
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
            self.ensure_work(rows)?;
            let work = self.work.as_mut().expect("work allocated");
            work.samples = None;
            self.kernels.write(&mut work.x, &self.epochs.x)?;
            self.kernels.write(&mut work.target, &self.epochs.t)?;
            work.samples = samples;
        }
        self.forward()?;
        let (activation, steepness) = self.output();
        let config = self.epochs.config;
        let k = &self.kernels;
        let work = self.work.as_mut().expect("work allocated");
        if measure {
            k.accumulate_error_metrics(
                &work.y,
                &work.target,
                config.loss,
                activation,
                config.bit_fail_limit,
                &mut self.metrics,
            )?;
        }
        k.output_gradient(
            &work.y,
            &work.target,
            &mut work.dy,
            config.loss,
            activation,
            steepness,
            scale,
        )?;
        let p = ShortcutPass { rows, ..self.pass };
        k.shortcut_backward(
            p,
            &self.units,
            config.derivative,
            accumulate,
            &self.weights,
            &work.values,
            &work.sums,
            &work.dy,
            &mut work.deltas,
            &mut self.grad,
        )
    }

    fn take_sums(&mut self) -> Result<(f64, u64)> {
        self.kernels.take_metrics(&mut self.metrics)
    }

    fn update(&mut self, samples: usize, mse: Option<f64>) -> Result<()> {
        self.updates += 1;
        let [s0, s1] = &mut self.state;
        apply_update(
            &self.kernels,
            self.epochs.config.algorithm,
            (self.updates, samples, mse, 1),
            &mut self.weights,
            &self.grad,
            [s0, s1],
        )
    }
}
