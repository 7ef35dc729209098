//! Cascade2 training (FANN 2.2's `fann_cascadetrain_on_data`): output phases on the
//! model's backend through [`Trainer`], candidate phases as one batched
//! [`NnKernels::candidate_epoch`] per epoch over the whole pool.

use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::cascade::{
    CandidateEpoch, CandidateUnit, FANN_CANDIDATE_ACTIVATIONS, FANN_CANDIDATE_STEEPNESSES,
};
use tessera_tensor::nn::{Derivative, Loss, NnKernels};
use tessera_tensor::rng::Rng;

use super::network::{CascadeNetwork, HiddenNeuron, neuron_output};
use crate::data::TrainData;
use crate::fann::FannSettings;
use crate::limits::MAX_CASCADE_HIDDEN;
use crate::model::Model;
use crate::network::Network;
use crate::train::{Algorithm, TrainConfig, Trainer, apply_update, fresh_optimizer_state};

/// When training has reached its target (FANN's `train_stop_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopFunction {
    /// The MSE is at most the desired error (FANN_STOPFUNC_MSE, the default).
    #[default]
    Mse,
    /// The bit-fail count is at most the desired error (FANN_STOPFUNC_BIT).
    BitFail,
}

/// FANN 2.2's cascade parameters (`fann_set_cascade_*`), with FANN's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeParams {
    /// `cascade_output_change_fraction` (0.01).
    pub output_change_fraction: f32,
    /// `cascade_output_stagnation_epochs` (12).
    pub output_stagnation_epochs: usize,
    /// `cascade_candidate_change_fraction` (0.01).
    pub candidate_change_fraction: f32,
    /// `cascade_candidate_stagnation_epochs` (12).
    pub candidate_stagnation_epochs: usize,
    /// `cascade_min_out_epochs` (50).
    pub min_out_epochs: usize,
    /// `cascade_max_out_epochs` (150).
    pub max_out_epochs: usize,
    /// `cascade_min_cand_epochs` (50).
    pub min_cand_epochs: usize,
    /// `cascade_max_cand_epochs` (150).
    pub max_cand_epochs: usize,
    /// `cascade_weight_multiplier` (0.4): scale of the installed output weights.
    pub weight_multiplier: f32,
    /// `cascade_candidate_limit` (1000): a score this many times the SSE ends a
    /// candidate phase.
    pub candidate_limit: f32,
    /// `cascade_num_candidate_groups` (2).
    pub candidate_groups: usize,
    /// `cascade_activation_functions` (FANN's ten).
    pub activations: Vec<tessera_tensor::nn::Activation>,
    /// `cascade_activation_steepnesses` (0.25, 0.5, 0.75, 1).
    pub steepnesses: Vec<f32>,
}

impl Default for CascadeParams {
    fn default() -> Self {
        Self {
            output_change_fraction: 0.01,
            output_stagnation_epochs: 12,
            candidate_change_fraction: 0.01,
            candidate_stagnation_epochs: 12,
            min_out_epochs: 50,
            max_out_epochs: 150,
            min_cand_epochs: 50,
            max_cand_epochs: 150,
            weight_multiplier: 0.4,
            candidate_limit: 1000.0,
            candidate_groups: 2,
            activations: FANN_CANDIDATE_ACTIVATIONS.to_vec(),
            steepnesses: FANN_CANDIDATE_STEEPNESSES.to_vec(),
        }
    }
}

/// The largest candidate pool tessera trains.
pub const MAX_CANDIDATES: usize = 1 << 16;

impl CascadeParams {
    /// The candidate pool in FANN's order: activations outermost, then
    /// steepnesses, then groups.
    pub fn pool(&self) -> Vec<CandidateUnit> {
        let mut pool = Vec::new();
        for &activation in &self.activations {
            for &steepness in &self.steepnesses {
                for _ in 0..self.candidate_groups {
                    pool.push(CandidateUnit {
                        activation,
                        steepness,
                    });
                }
            }
        }
        pool
    }

    /// Checks every parameter: fractions in [0, 1), epoch bounds with
    /// `1 <= min <= max`, a finite multiplier, a positive candidate limit, and a pool
    /// of 1..=[`MAX_CANDIDATES`] candidates with differentiable element-wise
    /// activations and finite positive steepnesses.
    pub fn validate(&self) -> Result<()> {
        let arg = |what, value: f64, expected| {
            Err(TesseraError::InvalidArgument {
                what,
                value,
                expected,
            })
        };
        for (what, f) in [
            (
                "cascade output_change_fraction",
                self.output_change_fraction,
            ),
            (
                "cascade candidate_change_fraction",
                self.candidate_change_fraction,
            ),
        ] {
            if !(f.is_finite() && (0.0..1.0).contains(&f)) {
                return arg(what, f as f64, "a finite number in [0, 1)");
            }
        }
        for (what, min, max) in [
            (
                "cascade out epochs (min, max)",
                self.min_out_epochs,
                self.max_out_epochs,
            ),
            (
                "cascade candidate epochs (min, max)",
                self.min_cand_epochs,
                self.max_cand_epochs,
            ),
        ] {
            if max == 0 || min > max {
                return arg(what, max as f64, "max >= 1 and min <= max");
            }
        }
        if !self.weight_multiplier.is_finite() {
            return arg(
                "cascade weight_multiplier",
                self.weight_multiplier as f64,
                "a finite number",
            );
        }
        if !(self.candidate_limit.is_finite() && self.candidate_limit > 0.0) {
            return arg(
                "cascade candidate_limit",
                self.candidate_limit as f64,
                "a finite number > 0",
            );
        }
        let count = self
            .activations
            .len()
            .checked_mul(self.steepnesses.len())
            .and_then(|n| n.checked_mul(self.candidate_groups))
            .filter(|n| (1..=MAX_CANDIDATES).contains(n));
        if count.is_none() {
            return arg(
                "cascade candidates (activations x steepnesses x groups)",
                self.candidate_groups as f64,
                "a pool of 1..=65536 candidates",
            );
        }
        if let Some(a) = self
            .activations
            .iter()
            .find(|a| !a.has_gradient() || a.is_rowwise())
        {
            return arg(
                "cascade candidate activation",
                a.code() as f64,
                "a differentiable element-wise activation",
            );
        }
        if let Some(&s) = self
            .steepnesses
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            return arg(
                "cascade candidate steepness",
                s as f64,
                "a finite number > 0",
            );
        }
        Ok(())
    }
}

/// How to cascade-train.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeConfig {
    /// The inner training: RPROP (FANN's default), QUICKPROP or SARPROP, with the
    /// loss, derivatives and bit-fail limit of both phases. Its `metrics_every` is
    /// ignored: the stop rules read the error of every output epoch.
    pub train: TrainConfig,
    /// What "the desired error is reached" means.
    pub stop: StopFunction,
    /// FANN's cascade parameters.
    pub params: CascadeParams,
    /// Reproduce libfann where tessera's default differs: output `k` of an installed
    /// neuron gets candidate output weight `outputs - 1 - k` (libfann's reversed
    /// order), and a last output phase always runs after the loop (it can undo a net
    /// that met the target). By default the order is correct, and a net that met the
    /// target is kept with the weights that met it. With FANN's derivatives
    /// (`Derivative::Fann`) it also takes libfann's verbatim
    /// (`Derivative::FannCompat`: its Elliot candidates' form on the sum without the
    /// steepness).
    pub fann_compat: bool,
    /// Seed of the candidates' initial weights (the only random draws).
    pub seed: u64,
}

impl CascadeConfig {
    /// The derivative convention of both phases: the inner training's, made
    /// libfann's verbatim by [`CascadeConfig::fann_compat`].
    fn derivative(&self) -> Derivative {
        match self.train.derivative {
            Derivative::Fann if self.fann_compat => Derivative::FannCompat,
            d => d,
        }
    }
}

impl Default for CascadeConfig {
    fn default() -> Self {
        Self {
            train: TrainConfig::new(Algorithm::fann_rprop()),
            stop: StopFunction::Mse,
            params: CascadeParams::default(),
            fann_compat: false,
            seed: 0,
        }
    }
}

impl CascadeConfig {
    /// What libfann does when it cascade-trains a net read from a `.net` file: its
    /// training settings ([`TrainConfig::from_fann`]), its `train_stop_function` and
    /// its cascade parameters, in libfann's arithmetic otherwise (`fann_compat`
    /// off: see [`CascadeConfig::fann_compat`]). Fails on a setting out of range.
    pub fn from_fann(settings: &FannSettings, params: &CascadeParams) -> Result<Self> {
        let stop = match settings.train_stop_function {
            0 => StopFunction::Mse,
            1 => StopFunction::BitFail,
            other => {
                return Err(TesseraError::InvalidConfig {
                    field: "train_stop_function",
                    value: other.to_string(),
                    expected: "0 (MSE) or 1 (bit fail)".into(),
                });
            }
        };
        let config = Self {
            train: TrainConfig::from_fann(settings)?,
            stop,
            params: params.clone(),
            ..Self::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the inner training configuration (RPROP, QUICKPROP or SARPROP only,
    /// as libfann, and a loss other than softmax cross-entropy) and the parameters.
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        if !matches!(
            self.train.algorithm,
            Algorithm::Rprop { .. } | Algorithm::Quickprop { .. } | Algorithm::Sarprop { .. }
        ) {
            return Err(TesseraError::InvalidConfig {
                field: "cascade training algorithm",
                value: format!("{:?}", self.train.algorithm),
                expected: "RPROP, QUICKPROP or SARPROP (libfann refuses the others)".into(),
            });
        }
        if self.train.loss == Loss::SoftmaxCrossEntropy {
            return Err(TesseraError::InvalidConfig {
                field: "cascade loss",
                value: "softmax cross-entropy".into(),
                expected: "mean squared error or FANN's error".into(),
            });
        }
        self.params.validate()
    }
}

/// Where cascade training stands, after an output phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeReport {
    /// Hidden neurons installed.
    pub neurons: usize,
    /// Epochs of both phases so far.
    pub epochs: usize,
    /// MSE measured in the output phase's last epoch (before its update).
    pub mse: f64,
    /// Bit-fail count of that epoch.
    pub bit_fail: u64,
    /// Whether it met the desired error.
    pub reached: bool,
}

/// FANN's stagnation rule, shared by both phases: a value outside the window
/// `[backslide, target]` (set from the last such value `v` as `v (1 ∓ fraction)`)
/// opens a new window and moves the deadline to `epoch + patience`; the phase ends at
/// the deadline once `min_epochs` have passed. libfann's output phase also handles a
/// negative target (`signed`), its candidate phase does not.
struct Stagnation {
    target: f64,
    backslide: f64,
    deadline: usize,
    fraction: f64,
    patience: usize,
    min_epochs: usize,
    signed: bool,
}

impl Stagnation {
    fn new(
        fraction: f64,
        patience: usize,
        (min_epochs, max_epochs): (usize, usize),
        signed: bool,
    ) -> Self {
        Self {
            target: 0.0,
            backslide: -1.0e20,
            deadline: max_epochs,
            fraction,
            patience,
            min_epochs,
            signed,
        }
    }

    /// Records epoch `epoch`'s value; true when the phase ends there.
    fn ends_at(&mut self, epoch: usize, value: f64) -> bool {
        let moved = if self.signed && self.target < 0.0 {
            value < self.target || value > self.backslide
        } else {
            value > self.target || value < self.backslide
        };
        if moved {
            self.target = value * (1.0 + self.fraction);
            self.backslide = value * (1.0 - self.fraction);
            self.deadline = epoch + self.patience;
        }
        epoch >= self.deadline && epoch >= self.min_epochs
    }
}

/// Cascade-trains a [`CascadeNetwork`] on a backend: output phases through a
/// [`Trainer`] on the output layer (the frozen hidden values computed once per
/// neuron, not every epoch), candidate phases as one batched kernel per epoch.
pub struct CascadeTrainer<K: NnKernels> {
    trainer: Trainer<K>,
    net: CascadeNetwork,
    config: CascadeConfig,
    rng: Rng,
    epochs: usize,
}

impl<K: NnKernels> std::fmt::Debug for CascadeTrainer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CascadeTrainer")
            .field("hidden", &self.net.hidden.len())
            .field("config", &self.config)
            .finish()
    }
}

/// The outcome of one output phase.
struct OutputPhase {
    mse: f64,
    bit_fail: u64,
    sse: f64,
    reached: bool,
}

/// What a candidate phase installs.
struct Installed {
    unit: CandidateUnit,
    weights_in: Vec<f32>,
    weights_out: Vec<f32>,
}

impl<K: NnKernels> CascadeTrainer<K> {
    /// A trainer for `net` on `kernels`. Fails on a network that
    /// [`CascadeNetwork::validate`] rejects or a configuration that
    /// [`CascadeConfig::validate`] rejects.
    pub fn new(kernels: K, net: CascadeNetwork, config: CascadeConfig) -> Result<Self> {
        net.validate()?;
        config.validate()?;
        let model = Model::new(kernels, &output_network(&net))?;
        // FANN's stop rules read the error of every output epoch.
        let train = TrainConfig {
            metrics_every: 1,
            derivative: config.derivative(),
            ..config.train
        };
        let trainer = Trainer::new(model, train)?;
        Ok(Self {
            trainer,
            rng: Rng::new(config.seed),
            net,
            config,
            epochs: 0,
        })
    }

    /// The network as trained so far.
    pub fn network(&self) -> &CascadeNetwork {
        &self.net
    }

    /// Ends training and returns the network.
    pub fn into_network(self) -> CascadeNetwork {
        self.net
    }

    /// Ends training and returns the network and the backend (for a
    /// [`ShortcutTrainer`](super::ShortcutTrainer) of every weight, say).
    pub fn into_parts(self) -> (CascadeNetwork, K) {
        (self.net, self.trainer.into_model().into_kernels())
    }

    /// FANN's `fann_cascadetrain_on_data`: up to `max_neurons` times, train the
    /// outputs, stop if `desired_error` is reached, report, then train the candidate
    /// pool and install its best candidate; then (see
    /// [`CascadeConfig::fann_compat`]) a last output phase. `report` sees every
    /// output phase and may stop training by returning false. Returns the last
    /// report. Fails, with the network unchanged, on data of the wrong width, no
    /// samples, a negative or non-finite desired error, or more than
    /// [`MAX_CASCADE_HIDDEN`] hidden neurons in all.
    pub fn train(
        &mut self,
        data: &TrainData,
        max_neurons: usize,
        desired_error: f64,
        mut report: impl FnMut(&CascadeReport) -> bool,
    ) -> Result<CascadeReport> {
        if data.n_inputs() != self.net.inputs || data.n_outputs() != self.net.outputs() {
            return Err(TesseraError::InvalidConfig {
                field: "training data width",
                value: format!("{} inputs, {} outputs", data.n_inputs(), data.n_outputs()),
                expected: format!(
                    "the network's {} inputs and {} outputs",
                    self.net.inputs,
                    self.net.outputs()
                ),
            });
        }
        if data.is_empty() {
            return Err(TesseraError::InvalidConfig {
                field: "training data",
                value: "0 samples".into(),
                expected: "at least one sample".into(),
            });
        }
        if self.net.hidden.len().saturating_add(max_neurons) > MAX_CASCADE_HIDDEN {
            return Err(TesseraError::InvalidArgument {
                what: "max_neurons",
                value: max_neurons as f64,
                expected: "at most 1024 hidden neurons in all (tessera_nn::limits::MAX_CASCADE_HIDDEN)",
            });
        }
        if !desired_error.is_finite() || desired_error < 0.0 {
            return Err(TesseraError::InvalidArgument {
                what: "desired_error",
                value: desired_error,
                expected: "a finite number >= 0",
            });
        }
        let mut values = self.net.values(data.inputs())?;
        let mut last = None;
        let mut stopped = false;
        for _ in 0..max_neurons {
            let phase = self.train_outputs(data, &values, desired_error)?;
            let r = CascadeReport {
                neurons: self.net.hidden.len(),
                epochs: self.epochs,
                mse: phase.mse,
                bit_fail: phase.bit_fail,
                reached: phase.reached,
            };
            last = Some(r);
            if !report(&r) || phase.reached {
                stopped = true;
                break;
            }
            let best = self.train_candidates(data, &values, phase.sse)?;
            self.install(best, &mut values);
        }
        if self.config.fann_compat || !stopped {
            // The last installed neuron's output weights are trained here.
            let phase = self.train_outputs(data, &values, 0.0)?;
            let r = CascadeReport {
                neurons: self.net.hidden.len(),
                epochs: self.epochs,
                mse: phase.mse,
                bit_fail: phase.bit_fail,
                reached: self.reached(phase.mse, phase.bit_fail, desired_error),
            };
            report(&r);
            last = Some(r);
        }
        last.ok_or(TesseraError::InvalidArgument {
            what: "max_neurons",
            value: 0.0,
            expected: ">= 1",
        })
    }

    fn reached(&self, mse: f64, bit_fail: u64, desired_error: f64) -> bool {
        match self.config.stop {
            StopFunction::Mse => mse <= desired_error,
            // FANN compares with the desired error cast to an unsigned integer.
            StopFunction::BitFail => bit_fail <= desired_error as u64,
        }
    }

    /// FANN's `fann_train_outputs`: RPROP state reset, an initial epoch, then epochs
    /// until the improvement stagnates for `output_stagnation_epochs` (after at least
    /// `min_out_epochs`), `max_out_epochs` pass, or the desired error is reached.
    fn train_outputs(
        &mut self,
        data: &TrainData,
        values: &[f32],
        desired_error: f64,
    ) -> Result<OutputPhase> {
        let p = &self.config.params;
        let (max_epochs, min_epochs) = (p.max_out_epochs, p.min_out_epochs);
        let (stagnation_epochs, fraction) =
            (p.output_stagnation_epochs, p.output_change_fraction as f64);
        let keep_best = !self.config.fann_compat;
        self.trainer.reset(&output_network(&self.net))?;
        let features = TrainData::new(
            self.net.output.inputs,
            self.net.outputs(),
            self.net.features(values),
            data.outputs().to_vec(),
        )?;
        let denominator = (data.len() * data.n_outputs()) as f64;
        let epoch = |this: &mut Self| -> Result<(f64, u64, Option<Network>)> {
            // The weights this epoch measures (it updates them after measuring).
            let before = if keep_best {
                Some(this.trainer.model().to_network()?)
            } else {
                None
            };
            let stats = this.trainer.train_epoch(&features)?;
            this.epochs += 1;
            Ok((
                stats.mse.unwrap_or(f64::INFINITY),
                stats.bit_fail.unwrap_or(u64::MAX),
                before,
            ))
        };
        let finish = |this: &mut Self, mse: f64, bit_fail, before: Option<Network>| {
            let reached = this.reached(mse, bit_fail, desired_error);
            // Keep the weights that met the target rather than one update past them.
            let net = match before.filter(|_| reached) {
                Some(net) => net,
                None => this.trainer.model().to_network()?,
            };
            this.net.output = net.layers.into_iter().next().expect("one layer");
            Ok(OutputPhase {
                mse,
                bit_fail,
                sse: mse * denominator,
                reached,
            })
        };
        let (initial, bit_fail, before) = epoch(self)?;
        if self.reached(initial, bit_fail, desired_error) {
            return finish(self, initial, bit_fail, before);
        }
        let mut stagnation =
            Stagnation::new(fraction, stagnation_epochs, (min_epochs, max_epochs), true);
        let mut last = (initial, bit_fail);
        for i in 1..max_epochs {
            let (mse, bit_fail, before) = epoch(self)?;
            if self.reached(mse, bit_fail, desired_error) {
                return finish(self, mse, bit_fail, before);
            }
            last = (mse, bit_fail);
            if stagnation.ends_at(i, initial - mse) {
                break;
            }
        }
        finish(self, last.0, last.1, None)
    }

    /// FANN's `fann_initialize_candidates` and `fann_train_candidates`: the pool
    /// initialised in order from the seed, then trained one batched epoch at a time
    /// until the best score stagnates, exceeds `candidate_limit` times the SSE, or
    /// `max_cand_epochs` pass. Returns the best candidate (the first strict maximum of
    /// the last epoch's scores) with its weights after that epoch's update.
    fn train_candidates(
        &mut self,
        data: &TrainData,
        values: &[f32],
        sse: f64,
    ) -> Result<Installed> {
        let pool = self.config.params.pool();
        let (nc, ni, no, rows) = (
            pool.len(),
            self.net.candidate_inputs(),
            self.net.outputs(),
            data.len(),
        );
        // Semi Widrow-Nguyen: libfann counts the bias neuron as a hidden one.
        let hidden = (self.net.hidden.len() + 1) as f64;
        let scale =
            (2.0 * (0.7 * hidden).powf(1.0 / self.net.inputs as f64)).clamp(0.5, 8.0) as f32;
        let (mut w_in, mut w_out) = (Vec::with_capacity(nc * ni), Vec::with_capacity(nc * no));
        for _ in 0..nc {
            for i in 0..ni {
                let lo = if i == self.net.inputs { -scale } else { 0.0 };
                w_in.push(self.rng.range(lo, scale));
            }
            for _ in 0..no {
                w_out.push(self.rng.range(0.0, scale));
            }
        }
        let algorithm = self.config.train.algorithm;
        let k = self.trainer.model().kernels();
        let v = k.tensor(values)?;
        let residuals = self.residuals(data, values)?;
        let k = self.trainer.model().kernels();
        let (mut kw_in, mut kw_out) = (k.tensor(&w_in)?, k.tensor(&w_out)?);
        let (mut g_in, mut g_out, mut scores) =
            (k.zeros(nc * ni)?, k.zeros(nc * no)?, k.zeros(nc)?);
        let mut state_in = fresh_optimizer_state(k, algorithm, nc * ni)?;
        let mut state_out = fresh_optimizer_state(k, algorithm, nc * no)?;
        let epoch = CandidateEpoch {
            rows,
            inputs: ni,
            outputs: no,
            candidates: nc,
            sse: sse as f32,
            derivative: self.config.derivative(),
        };
        let p = &self.config.params;
        let (max_epochs, min_epochs) = (p.max_cand_epochs, p.min_cand_epochs);
        let (stagnation_epochs, fraction, limit) = (
            p.candidate_stagnation_epochs,
            p.candidate_change_fraction as f64,
            p.candidate_limit as f64,
        );
        let mut stagnation =
            Stagnation::new(fraction, stagnation_epochs, (min_epochs, max_epochs), false);
        let mut best = 0;
        let mut epochs = 0;
        for i in 0..max_epochs {
            k.candidate_epoch(
                epoch,
                &pool,
                &v,
                &residuals,
                &kw_in,
                &kw_out,
                &mut g_in,
                &mut g_out,
                &mut scores,
            )?;
            let [a, b] = &mut state_in;
            apply_update(
                k,
                algorithm,
                (i as u32 + 1, rows, None, 1),
                &mut kw_in,
                &g_in,
                [a, b],
            )?;
            let [a, b] = &mut state_out;
            apply_update(
                k,
                algorithm,
                (i as u32 + 1, rows, None, 2),
                &mut kw_out,
                &g_out,
                [a, b],
            )?;
            let s = k.read(&scores)?;
            // FANN's rule: the first strict maximum.
            best = (1..nc).fold(0, |b, c| if s[c] > s[b] { c } else { b });
            let best_score = s[best] as f64;
            epochs = i + 1;
            if !best_score.is_finite() {
                return Err(TesseraError::Diverged {
                    what: "cascade candidate scores",
                    step: self.epochs + epochs,
                    value: best_score,
                });
            }
            if best_score / sse > limit || stagnation.ends_at(i, best_score) {
                break;
            }
        }
        self.epochs += epochs;
        let (w_in, w_out) = (k.read(&kw_in)?, k.read(&kw_out)?);
        Ok(Installed {
            unit: pool[best],
            weights_in: w_in[best * ni..(best + 1) * ni].to_vec(),
            weights_out: w_out[best * no..(best + 1) * no].to_vec(),
        })
    }

    /// The residuals the candidates fit, `diff_scale (t - y)` with the current output
    /// weights, as a backend tensor.
    fn residuals(&mut self, data: &TrainData, values: &[f32]) -> Result<K::Tensor> {
        let features = self.net.features(values);
        let o = self.net.output.clone();
        let model = self.trainer.model_mut();
        model.forward_on_device(&features)?;
        let k = model.kernels();
        let y = model.output_tensor().expect("forward ran");
        let t = k.tensor(data.outputs())?;
        let mut e = k.zeros(data.outputs().len())?;
        let loss = Loss::Fann { tanh: false };
        k.output_gradient(y, &t, &mut e, loss, o.activation, o.steepness, -1.0)?;
        Ok(e)
    }

    /// FANN's `fann_install_candidate`: the candidate becomes a hidden neuron in a new
    /// layer before the outputs, each output gets one connection from it.
    fn install(&mut self, c: Installed, values: &mut Vec<f32>) {
        let neuron = HiddenNeuron {
            activation: c.unit.activation,
            steepness: c.unit.steepness,
            weights: c.weights_in,
        };
        let (width, rows) = (
            self.net.candidate_inputs(),
            values.len() / self.net.candidate_inputs(),
        );
        let mut grown = Vec::with_capacity(rows * (width + 1));
        for row in values.chunks_exact(width) {
            grown.extend_from_slice(row);
            grown.push(neuron_output(&neuron, row));
        }
        *values = grown;
        let no = self.net.outputs();
        let m = self.config.params.weight_multiplier;
        let o = &mut self.net.output;
        for k in 0..no {
            let from = if self.config.fann_compat {
                no - 1 - k
            } else {
                k
            };
            o.weights.push(m * c.weights_out[from]);
        }
        o.inputs += 1;
        self.net.hidden.push(neuron);
    }
}

/// The output layer as a one-layer [`Network`] over the features.
fn output_network(net: &CascadeNetwork) -> Network {
    Network {
        layers: vec![net.output.clone()],
    }
}
