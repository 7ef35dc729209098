//! Shortcut ("cascade") networks: every hidden neuron reads the inputs, the bias and
//! every hidden neuron of the earlier layers; the output layer reads all of them.

use tessera_tensor::error::{Result, TesseraError, check_finite};
use tessera_tensor::nn::Activation;
use tessera_tensor::nn::cascade::clamp_candidate_sum;
use tessera_tensor::rng::Rng;

use crate::data::check_input_rows;
use crate::limits::{MAX_CASCADE_HIDDEN, MAX_LAYER_WIDTH, MAX_PARAMETERS};
use crate::network::Layer;

/// One hidden neuron of a shortcut network.
#[derive(Debug, Clone, PartialEq)]
pub struct HiddenNeuron {
    /// Activation function.
    pub activation: Activation,
    /// Steepness `s`.
    pub steepness: f32,
    /// Input weights in FANN's neuron order: the network's inputs, the bias, then the
    /// hidden neurons of the earlier layers. The length fixes the neuron's layer.
    pub weights: Vec<f32>,
}

/// A shortcut network (FANN's `FANN_NETTYPE_SHORTCUT`), the shape cascade training
/// grows: hidden neuron `k` computes `f(s clamp(v · w))` from the values
/// `v = [inputs, 1, h_0 .. h_{m-1}]` of the neurons before its layer (FANN's clamp of
/// the sum to `±150 / s`), and the output layer reads `[inputs, h_0 .. h_{H-1}]`
/// with its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeNetwork {
    /// Number of inputs.
    pub inputs: usize,
    /// Hidden neurons in order; a layer is a run of neurons with the same fan-in.
    pub hidden: Vec<HiddenNeuron>,
    /// The output layer: `weights` is `[inputs + hidden, outputs]`, the inputs'
    /// rows first, then one row per hidden neuron.
    pub output: Layer,
}

fn invalid<T>(field: &'static str, value: String, expected: String) -> Result<T> {
    Err(TesseraError::InvalidConfig {
        field,
        value,
        expected,
    })
}

impl CascadeNetwork {
    /// A shortcut network without hidden neurons (FANN's
    /// `fann_create_shortcut(2, inputs, outputs)`): the output layer's weights and
    /// biases uniform in [-0.1, 0.1] from `seed`.
    pub fn new(
        inputs: usize,
        outputs: usize,
        activation: Activation,
        steepness: f32,
        seed: u64,
    ) -> Result<Self> {
        if inputs == 0 || outputs == 0 || inputs > MAX_LAYER_WIDTH || outputs > MAX_LAYER_WIDTH {
            return invalid(
                "cascade network size",
                format!("{inputs} inputs, {outputs} outputs"),
                format!("1..={MAX_LAYER_WIDTH} of each"),
            );
        }
        let mut rng = Rng::new(seed);
        let mut draw = |n: usize| (0..n).map(|_| rng.range(-0.1, 0.1)).collect::<Vec<_>>();
        let net = Self {
            inputs,
            hidden: Vec::new(),
            output: Layer {
                inputs,
                outputs,
                activation,
                steepness,
                weights: draw(inputs * outputs),
                bias: draw(outputs),
            },
        };
        net.validate()?;
        Ok(net)
    }

    /// A shortcut network with hidden layers (FANN's `fann_create_shortcut(sizes)`):
    /// `sizes` is `[inputs, hidden layer sizes.., outputs]`, each hidden neuron reading
    /// the inputs, the bias and every neuron of the earlier hidden layers; every weight
    /// uniform in [-0.1, 0.1] from `seed`, one steepness for all.
    pub fn shortcut(
        sizes: &[usize],
        hidden: Activation,
        output: Activation,
        steepness: f32,
        seed: u64,
    ) -> Result<Self> {
        let (&inputs, rest) = sizes.split_first().unwrap_or((&0, &[]));
        let Some((&outputs, layers)) = rest.split_last() else {
            return invalid(
                "shortcut layer sizes",
                format!("{sizes:?}"),
                "[inputs, hidden.., outputs]".into(),
            );
        };
        let total: usize = layers.iter().sum();
        if layers.contains(&0) || total > MAX_CASCADE_HIDDEN {
            return invalid(
                "shortcut hidden layers",
                format!("{layers:?}"),
                format!("non-empty layers of at most {MAX_CASCADE_HIDDEN} neurons in all"),
            );
        }
        let mut net = Self::new(inputs, outputs, output, steepness, seed)?;
        let mut rng = Rng::new(seed ^ 0x5107_c0de);
        for &size in layers {
            let fan_in = inputs + 1 + net.hidden.len();
            for _ in 0..size {
                net.hidden.push(HiddenNeuron {
                    activation: hidden,
                    steepness,
                    weights: (0..fan_in).map(|_| rng.range(-0.1, 0.1)).collect(),
                });
            }
        }
        let features = inputs + total;
        net.output.inputs = features;
        net.output.weights = (0..features * outputs)
            .map(|_| rng.range(-0.1, 0.1))
            .collect();
        net.validate()?;
        Ok(net)
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.output.outputs
    }

    /// Values each candidate reads: inputs, the bias and every hidden neuron.
    pub fn candidate_inputs(&self) -> usize {
        self.inputs + 1 + self.hidden.len()
    }

    /// Weights and biases in all.
    pub fn parameter_count(&self) -> usize {
        self.hidden.iter().map(|h| h.weights.len()).sum::<usize>()
            + self.output.weights.len()
            + self.output.bias.len()
    }

    /// Checks the shape (each hidden neuron reads the inputs, the bias and the hidden
    /// neurons of the earlier layers; the output layer reads the inputs and every
    /// hidden neuron), the sizes against [`crate::limits`], finite weights and
    /// steepnesses, differentiable-or-threshold element-wise activations (no softmax
    /// in a hidden neuron).
    pub fn validate(&self) -> Result<()> {
        let n = self.inputs;
        if n == 0 || n > MAX_LAYER_WIDTH {
            return invalid(
                "cascade inputs",
                n.to_string(),
                format!("1..={MAX_LAYER_WIDTH}"),
            );
        }
        if self.hidden.len() > MAX_CASCADE_HIDDEN {
            return invalid(
                "cascade hidden neurons",
                self.hidden.len().to_string(),
                format!("at most {MAX_CASCADE_HIDDEN}"),
            );
        }
        let mut layer_start = 0;
        let mut parameters = 0usize;
        for (k, h) in self.hidden.iter().enumerate() {
            let fan_in = h.weights.len();
            // Same layer as the previous neuron, or a new layer reading all before it.
            if k == 0 || fan_in != self.hidden[k - 1].weights.len() {
                layer_start = k;
            }
            if fan_in != n + 1 + layer_start {
                return invalid(
                    "hidden neuron weights",
                    format!("neuron {k}: {fan_in} weights"),
                    format!(
                        "{} (the inputs, the bias and the hidden neurons of earlier layers)",
                        n + 1 + layer_start
                    ),
                );
            }
            if let Err(TesseraError::NonFinite { index, value, .. }) =
                check_finite("hidden weights", &h.weights)
            {
                return invalid(
                    "hidden neuron weights",
                    format!("neuron {k}, weight {index}: {value}"),
                    "finite values".into(),
                );
            }
            if !h.steepness.is_finite() || h.activation.is_rowwise() {
                return invalid(
                    "hidden neuron activation",
                    format!("neuron {k}: {:?}, steepness {}", h.activation, h.steepness),
                    "an element-wise activation with a finite steepness".into(),
                );
            }
            parameters += fan_in;
        }
        let o = &self.output;
        let features = n + self.hidden.len();
        if o.inputs != features || o.outputs == 0 || o.outputs > MAX_LAYER_WIDTH {
            return invalid(
                "cascade output layer",
                format!("{} inputs, {} outputs", o.inputs, o.outputs),
                format!(
                    "{features} inputs (inputs and hidden neurons), 1..={MAX_LAYER_WIDTH} outputs"
                ),
            );
        }
        if o.weights.len() != o.inputs * o.outputs || o.bias.len() != o.outputs {
            return invalid(
                "cascade output weights",
                format!("{} weights, {} biases", o.weights.len(), o.bias.len()),
                format!("{} weights, {} biases", o.inputs * o.outputs, o.outputs),
            );
        }
        parameters += o.weights.len() + o.bias.len();
        if parameters > MAX_PARAMETERS {
            return invalid(
                "cascade parameters",
                parameters.to_string(),
                format!("at most {MAX_PARAMETERS}"),
            );
        }
        for (what, values) in [("output weights", &o.weights), ("output bias", &o.bias)] {
            if let Err(TesseraError::NonFinite { index, value, .. }) = check_finite(what, values) {
                return invalid(
                    "cascade output weights",
                    format!("{what}, element {index}: {value}"),
                    "finite values".into(),
                );
            }
        }
        if !o.steepness.is_finite() {
            return invalid(
                "cascade output steepness",
                o.steepness.to_string(),
                "a finite number".into(),
            );
        }
        Ok(())
    }

    /// The values the candidates read, `[rows, inputs + 1 + hidden]` row-major
    /// (inputs, a 1 for the bias, then each hidden neuron's output), for `inputs`
    /// `[rows, inputs]`. Sums are accumulated in f64 and stored as f32.
    pub fn values(&self, inputs: &[f32]) -> Result<Vec<f32>> {
        let n = self.inputs;
        let rows = check_input_rows("cascade inputs", inputs, n)?;
        let width = self.candidate_inputs();
        let mut v = vec![0.0f32; rows * width];
        for (row, x) in v.chunks_exact_mut(width).zip(inputs.chunks_exact(n)) {
            row[..n].copy_from_slice(x);
            row[n] = 1.0;
            for (k, h) in self.hidden.iter().enumerate() {
                row[n + 1 + k] = neuron_output(h, &row[..h.weights.len()]);
            }
        }
        Ok(v)
    }

    /// Outputs for `inputs` (`[rows, inputs]`), `[rows, outputs]`, on the host (f64
    /// sums). Overflowing arithmetic is [`TesseraError::Diverged`].
    pub fn run(&self, inputs: &[f32]) -> Result<Vec<f32>> {
        let v = self.values(inputs)?;
        let width = self.candidate_inputs();
        let (n, o) = (self.inputs, &self.output);
        let s = o.steepness as f64;
        let mut out = Vec::with_capacity(v.len() / width * o.outputs);
        for row in v.chunks_exact(width) {
            for j in 0..o.outputs {
                let mut sum = o.bias[j] as f64;
                for i in 0..o.inputs {
                    // Feature i: an input, or hidden neuron i - n (after the bias).
                    let x = if i < n { row[i] } else { row[i + 1] };
                    sum += x as f64 * o.weights[i * o.outputs + j] as f64;
                }
                out.push(o.activation.apply(s * sum) as f32);
            }
        }
        if let Some(&value) = out.iter().find(|v| !v.is_finite()) {
            return Err(TesseraError::Diverged {
                what: "cascade network outputs",
                step: 0,
                value: value as f64,
            });
        }
        Ok(out)
    }

    /// The output layer's inputs from the candidates' values: `[rows, inputs +
    /// hidden]`, the bias column dropped.
    pub(crate) fn features(&self, values: &[f32]) -> Vec<f32> {
        let (n, width) = (self.inputs, self.candidate_inputs());
        let mut f = Vec::with_capacity(values.len() / width * (width - 1));
        for row in values.chunks_exact(width) {
            f.extend_from_slice(&row[..n]);
            f.extend_from_slice(&row[n + 1..]);
        }
        f
    }
}

/// One hidden neuron's output from the values before its layer.
pub(crate) fn neuron_output(h: &HiddenNeuron, values: &[f32]) -> f32 {
    let s = h.steepness as f64;
    let sum: f64 = values
        .iter()
        .zip(&h.weights)
        .map(|(&v, &w)| v as f64 * w as f64)
        .sum();
    h.activation.apply(s * clamp_candidate_sum(sum, s)) as f32
}
