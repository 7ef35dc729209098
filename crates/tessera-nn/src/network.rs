//! The host-side description of a layered network: sizes, activations and weights.

use tessera_tensor::error::{Result, TesseraError, check_finite};
use tessera_tensor::nn::Activation;
use tessera_tensor::rng::Rng;

use crate::limits::{MAX_LAYER_WIDTH, MAX_LAYERS, MAX_PARAMETERS};

/// One fully connected layer: `y = f(s (x W + b))`, `W: [inputs, outputs]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Inputs (the previous layer's width).
    pub inputs: usize,
    /// Outputs (neurons).
    pub outputs: usize,
    /// Activation function.
    pub activation: Activation,
    /// FANN steepness `s` (FANN's default is 0.5).
    pub steepness: f32,
    /// `[inputs, outputs]` weights.
    pub weights: Vec<f32>,
    /// `[outputs]` biases.
    pub bias: Vec<f32>,
}

/// How weights are initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// FANN's default: every weight and bias uniform in [-0.1, 0.1].
    FannUniform,
    /// Uniform in `[-limit, limit]`, biases too.
    Uniform(f32),
    /// FANN's Widrow-Nguyen (`fann_init_weights`) for inputs spanning `[min, max]`:
    /// bias weights uniform in [-f, f], the others in [0, f], with
    /// `f = (0.7 hidden)^(1 / inputs) / (max - min)`.
    WidrowNguyen {
        /// Smallest input value of the training data.
        min: f32,
        /// Largest input value of the training data.
        max: f32,
    },
    /// Xavier/Glorot uniform: `[-sqrt(6 / (in + out)), +]`, biases 0.
    Xavier,
    /// He normal: `N(0, 2 / in)`, biases 0.
    He,
}

/// A distribution initial values are drawn from.
enum Dist {
    Uniform(f32, f32),
    Normal(f32),
    Zero,
}

impl Dist {
    fn sample(&self, rng: &mut Rng) -> f32 {
        match *self {
            Dist::Uniform(lo, hi) => rng.range(lo, hi),
            Dist::Normal(sd) => sd * rng.normal(),
            Dist::Zero => 0.0,
        }
    }
}

/// A layered feed-forward network (FANN's "standard" nets).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The layers, input side first.
    pub layers: Vec<Layer>,
}

impl Network {
    /// A network with `sizes[0]` inputs and one layer per further size, every layer
    /// with `activation` and steepness 0.5 (FANN's defaults are sigmoid-symmetric for
    /// hidden layers in its examples; set per layer with [`Network::set_activation`]).
    /// Weights are initialised with `init` from `seed`.
    pub fn new(sizes: &[usize], activation: Activation, init: Init, seed: u64) -> Result<Self> {
        if sizes.len() < 2
            || sizes.len() > MAX_LAYERS + 1
            || sizes.iter().any(|s| !(1..=MAX_LAYER_WIDTH).contains(s))
        {
            return Err(TesseraError::InvalidConfig {
                field: "layer sizes",
                value: format!("{sizes:?}"),
                expected: format!(
                    "2..={} sizes (inputs, then each layer), each in 1..={MAX_LAYER_WIDTH}",
                    MAX_LAYERS + 1
                ),
            });
        }
        // Widths are bounded, so each product fits; the sum is checked.
        let parameters = sizes
            .windows(2)
            .try_fold(0usize, |n, w| n.checked_add((w[0] + 1) * w[1]))
            .filter(|&n| n <= MAX_PARAMETERS);
        if parameters.is_none() {
            return Err(TesseraError::InvalidConfig {
                field: "layer sizes",
                value: format!("{sizes:?}"),
                expected: format!("at most {MAX_PARAMETERS} weights and biases in all"),
            });
        }
        let layers = sizes
            .windows(2)
            .map(|w| Layer {
                inputs: w[0],
                outputs: w[1],
                activation,
                steepness: 0.5,
                weights: vec![0.0; w[0] * w[1]],
                bias: vec![0.0; w[1]],
            })
            .collect();
        let mut net = Self { layers };
        net.init(init, seed);
        Ok(net)
    }

    /// Sets the activation and steepness of layer `layer` (0 = first hidden layer).
    pub fn set_activation(
        &mut self,
        layer: usize,
        activation: Activation,
        steepness: f32,
    ) -> Result<()> {
        let count = self.layers.len();
        let l = self
            .layers
            .get_mut(layer)
            .ok_or(TesseraError::IndexOutOfRange {
                what: "layer",
                index: layer,
                bound: count,
            })?;
        if activation.is_rowwise() && layer + 1 != count {
            return Err(TesseraError::InvalidArgument {
                what: "softmax layer",
                value: layer as f64,
                expected: "softmax only on the output layer",
            });
        }
        if !steepness.is_finite() {
            return Err(TesseraError::InvalidArgument {
                what: "steepness",
                value: steepness as f64,
                expected: "a finite number",
            });
        }
        l.activation = activation;
        l.steepness = steepness;
        Ok(())
    }

    /// Checks what [`Model::new`](crate::Model::new) relies on: at least one layer,
    /// widths in 1..=[`MAX_LAYER_WIDTH`] that chain (each layer's inputs are the
    /// previous layer's outputs), weight and bias arrays of the right lengths, at most
    /// [`MAX_PARAMETERS`] of them, finite weights, biases and steepnesses, and softmax
    /// only on the output layer. The error names the layer (0 = first hidden layer).
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, value: String, expected: String| {
            Err(TesseraError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return invalid(
                "network layers",
                format!("{} layers", self.layers.len()),
                format!("1..={MAX_LAYERS} layers"),
            );
        }
        let mut parameters = 0usize;
        for (i, l) in self.layers.iter().enumerate() {
            for (field, width) in [("layer inputs", l.inputs), ("layer outputs", l.outputs)] {
                if !(1..=MAX_LAYER_WIDTH).contains(&width) {
                    return invalid(
                        field,
                        format!("layer {i}: {width}"),
                        format!("1..={MAX_LAYER_WIDTH}"),
                    );
                }
            }
            if i > 0 && l.inputs != self.layers[i - 1].outputs {
                return invalid(
                    "layer inputs",
                    format!("layer {i}: {}", l.inputs),
                    format!(
                        "the previous layer's {} outputs",
                        self.layers[i - 1].outputs
                    ),
                );
            }
            for (field, len, expected) in [
                ("layer weights", l.weights.len(), l.inputs * l.outputs),
                ("layer bias", l.bias.len(), l.outputs),
            ] {
                if len != expected {
                    return invalid(
                        field,
                        format!("layer {i}: {len} values"),
                        format!("{expected} (inputs x outputs, or outputs)"),
                    );
                }
            }
            parameters += l.weights.len() + l.bias.len();
            if parameters > MAX_PARAMETERS {
                return invalid(
                    "network parameters",
                    format!("{parameters} by layer {i}"),
                    format!("at most {MAX_PARAMETERS}"),
                );
            }
            for (field, values) in [("layer weights", &l.weights), ("layer bias", &l.bias)] {
                if let Err(TesseraError::NonFinite { index, value, .. }) =
                    check_finite(field, values)
                {
                    return invalid(
                        field,
                        format!("layer {i}, element {index}: {value}"),
                        "finite values".into(),
                    );
                }
            }
            if !l.steepness.is_finite() {
                return invalid(
                    "layer steepness",
                    format!("layer {i}: {}", l.steepness),
                    "a finite number".into(),
                );
            }
            if l.activation.is_rowwise() && i + 1 != self.layers.len() {
                return invalid(
                    "layer activation",
                    format!("layer {i}: {:?}", l.activation),
                    "softmax only on the output layer".into(),
                );
            }
        }
        Ok(())
    }

    /// Sets the activation of every hidden layer.
    pub fn set_hidden_activation(&mut self, activation: Activation, steepness: f32) -> Result<()> {
        for l in 0..self.layers.len().saturating_sub(1) {
            self.set_activation(l, activation, steepness)?;
        }
        Ok(())
    }

    /// Sets the activation of the output layer.
    pub fn set_output_activation(&mut self, activation: Activation, steepness: f32) -> Result<()> {
        self.set_activation(self.layers.len().wrapping_sub(1), activation, steepness)
    }

    /// Re-initialises every weight and bias.
    pub fn init(&mut self, init: Init, seed: u64) {
        let mut rng = Rng::new(seed);
        let hidden: usize = self.layers[..self.layers.len().saturating_sub(1)]
            .iter()
            .map(|l| l.outputs)
            .sum();
        let inputs = self.inputs();
        for l in &mut self.layers {
            let (fan_in, fan_out) = (l.inputs as f32, l.outputs as f32);
            let (weights, biases) = match init {
                Init::FannUniform => (Dist::Uniform(-0.1, 0.1), Dist::Uniform(-0.1, 0.1)),
                Init::Uniform(a) => (Dist::Uniform(-a, a), Dist::Uniform(-a, a)),
                Init::WidrowNguyen { min, max } => {
                    let f = (0.7 * hidden.max(1) as f64).powf(1.0 / inputs as f64)
                        / (max - min).max(f32::EPSILON) as f64;
                    (
                        Dist::Uniform(0.0, f as f32),
                        Dist::Uniform(-f as f32, f as f32),
                    )
                }
                Init::Xavier => {
                    let a = (6.0 / (fan_in + fan_out)).sqrt();
                    (Dist::Uniform(-a, a), Dist::Zero)
                }
                Init::He => (Dist::Normal((2.0 / fan_in).sqrt()), Dist::Zero),
            };
            l.weights
                .iter_mut()
                .for_each(|w| *w = weights.sample(&mut rng));
            l.bias.iter_mut().for_each(|b| *b = biases.sample(&mut rng));
        }
    }

    /// The layers as the kernel contract reads them (for a backend's own inference
    /// formats, e.g. `tessera_cpu::nn::Bf16Mlp::new(&net.dense_layers())`).
    pub fn dense_layers(&self) -> Vec<tessera_tensor::nn::dense::DenseLayerRef<'_, Vec<f32>>> {
        self.layers
            .iter()
            .map(|l| tessera_tensor::nn::dense::DenseLayerRef {
                w: &l.weights,
                b: &l.bias,
                inputs: l.inputs,
                outputs: l.outputs,
                activation: l.activation,
                steepness: l.steepness,
            })
            .collect()
    }

    /// Number of inputs (0 for a network without layers).
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Number of outputs (0 for a network without layers).
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Layer widths, inputs first.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.inputs())
            .chain(self.layers.iter().map(|l| l.outputs))
            .collect()
    }

    /// Trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weights.len() + l.bias.len())
            .sum()
    }
}
