//! FANN 2.2 file formats: `.net` networks (FANN_FLO_2.1, layered, fully connected)
//! and `.data` training files. Malformed input is a [`TesseraError::Format`] naming
//! the line.
//!
//! FANN stores one weight per connection, each neuron listing its inputs (the previous
//! layer's neurons, then that layer's bias neuron). tessera's `W[i, j]` is the
//! connection from neuron `i` of the previous layer to neuron `j`, and `b[j]` the one
//! from the bias neuron.

use std::fmt::Write as _;
use std::path::Path;

use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::{Activation, RpropParams};

use crate::data::TrainData;
use crate::network::{Layer, Network};

/// The training settings a `.net` file carries besides the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FannSettings {
    /// `learning_rate` (FANN default 0.7).
    pub learning_rate: f32,
    /// `learning_momentum` (default 0).
    pub learning_momentum: f32,
    /// `training_algorithm`: 0 incremental, 1 batch, 2 RPROP, 3 quickprop, 4 SARPROP.
    pub training_algorithm: u32,
    /// `train_error_function`: 0 linear, 1 tanh.
    pub train_error_function: u32,
    /// `bit_fail_limit` (default 0.35).
    pub bit_fail_limit: f32,
    /// RPROP parameters.
    pub rprop: RpropParams,
    /// `rprop_delta_zero` (default 0.1).
    pub rprop_delta_zero: f32,
}

impl Default for FannSettings {
    fn default() -> Self {
        Self {
            learning_rate: 0.7,
            learning_momentum: 0.0,
            training_algorithm: 2,
            train_error_function: 1,
            bit_fail_limit: 0.35,
            rprop: RpropParams::default(),
            rprop_delta_zero: 0.1,
        }
    }
}

fn format_err(file: &str, line: usize, message: impl Into<String>) -> TesseraError {
    TesseraError::Format {
        file: file.to_owned(),
        line,
        message: message.into(),
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| TesseraError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| TesseraError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Parses `(a, b, c) (a, b, c) ...` tuples of `arity` numbers.
fn tuples(file: &str, line: usize, text: &str, arity: usize) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let open = rest
            .strip_prefix('(')
            .ok_or_else(|| format_err(file, line, format!("expected `(` at `{}`", head(rest))))?;
        let close = open
            .find(')')
            .ok_or_else(|| format_err(file, line, "unclosed `(`"))?;
        let values: Vec<f64> = open[..close]
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| format_err(file, line, format!("`{}` is not a number", v.trim())))
            })
            .collect::<Result<_>>()?;
        if values.len() != arity {
            return Err(format_err(
                file,
                line,
                format!("expected {arity} numbers in `({})`", &open[..close]),
            ));
        }
        out.push(values);
        rest = open[close + 1..].trim_start();
    }
    Ok(out)
}

fn head(s: &str) -> &str {
    &s[..s.len().min(20)]
}

/// Parses a FANN `.net` text. `file` names the source in errors.
pub fn parse_net(text: &str, file: &str) -> Result<(Network, FannSettings)> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, first) = lines
        .next()
        .ok_or_else(|| format_err(file, 1, "empty file"))?;
    if first.trim() != "FANN_FLO_2.1" {
        return Err(format_err(
            file,
            1,
            format!(
                "expected the header `FANN_FLO_2.1`, found `{}`",
                head(first.trim())
            ),
        ));
    }
    let mut settings = FannSettings::default();
    let mut sizes: Option<(usize, Vec<usize>)> = None;
    let mut neurons: Option<(usize, Vec<Vec<f64>>)> = None;
    let mut connections: Option<(usize, Vec<Vec<f64>>)> = None;
    for (n, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            format_err(
                file,
                n,
                format!("expected `key=value`, found `{}`", head(line)),
            )
        })?;
        let num = |v: &str| {
            v.trim().parse::<f64>().map_err(|_| {
                format_err(
                    file,
                    n,
                    format!("`{}` is not a number for `{key}`", v.trim()),
                )
            })
        };
        match key {
            "learning_rate" => settings.learning_rate = num(value)? as f32,
            "learning_momentum" => settings.learning_momentum = num(value)? as f32,
            "training_algorithm" => settings.training_algorithm = num(value)? as u32,
            "train_error_function" => settings.train_error_function = num(value)? as u32,
            "bit_fail_limit" => settings.bit_fail_limit = num(value)? as f32,
            "rprop_increase_factor" => settings.rprop.increase_factor = num(value)? as f32,
            "rprop_decrease_factor" => settings.rprop.decrease_factor = num(value)? as f32,
            "rprop_delta_min" => settings.rprop.delta_min = num(value)? as f32,
            "rprop_delta_max" => settings.rprop.delta_max = num(value)? as f32,
            "rprop_delta_zero" => settings.rprop_delta_zero = num(value)? as f32,
            "network_type" if num(value)? != 0.0 => {
                return Err(format_err(
                    file,
                    n,
                    "only layered networks (network_type=0) are supported, not shortcut ones",
                ));
            }
            "connection_rate" if num(value)? != 1.0 => {
                return Err(format_err(
                    file,
                    n,
                    "only fully connected networks (connection_rate=1) are supported",
                ));
            }
            "scale_included" if num(value)? != 0.0 => {
                return Err(format_err(
                    file,
                    n,
                    "networks with scaling parameters (scale_included=1) are not supported",
                ));
            }
            "layer_sizes" => {
                let s: Vec<usize> = value
                    .split_whitespace()
                    .map(|v| {
                        v.parse::<usize>()
                            .map_err(|_| format_err(file, n, format!("`{v}` is not a layer size")))
                    })
                    .collect::<Result<_>>()?;
                sizes = Some((n, s));
            }
            k if k.starts_with("neurons") => neurons = Some((n, tuples(file, n, value, 3)?)),
            k if k.starts_with("connections") => {
                connections = Some((n, tuples(file, n, value, 2)?))
            }
            _ => {}
        }
    }
    let (size_line, sizes) = sizes.ok_or_else(|| format_err(file, 1, "no `layer_sizes` line"))?;
    let (neuron_line, neurons) =
        neurons.ok_or_else(|| format_err(file, size_line, "no `neurons` line"))?;
    let (conn_line, connections) =
        connections.ok_or_else(|| format_err(file, neuron_line, "no `connections` line"))?;
    // Every FANN layer size counts its bias neuron.
    if sizes.len() < 2 || sizes.iter().any(|&s| s < 2) {
        return Err(format_err(
            file,
            size_line,
            "expected at least 2 layers of at least 1 neuron plus the bias neuron",
        ));
    }
    let total: usize = sizes.iter().sum();
    if neurons.len() != total {
        return Err(format_err(
            file,
            neuron_line,
            format!(
                "{} neurons listed, layer_sizes adds up to {total}",
                neurons.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    let mut first_neuron = sizes[0];
    let mut conn = connections.iter();
    let mut prev_first = 0;
    for w in sizes.windows(2) {
        let (inputs, outputs) = (w[0] - 1, w[1] - 1);
        let group = &neurons[first_neuron..first_neuron + outputs];
        let (act_id, steepness) = (group[0][1], group[0][2]);
        if group
            .iter()
            .any(|nrn| nrn[1] != act_id || nrn[2] != steepness)
        {
            return Err(format_err(
                file,
                neuron_line,
                "neurons of one layer must share activation and steepness",
            ));
        }
        if group.iter().any(|nrn| nrn[0] as usize != inputs + 1) {
            return Err(format_err(
                file,
                neuron_line,
                format!(
                    "a neuron's input count differs from the previous layer's {}",
                    inputs + 1
                ),
            ));
        }
        let activation = Activation::from_fann_id(act_id as u32)
            .map_err(|e| format_err(file, neuron_line, e.to_string()))?;
        let mut weights = vec![0.0; inputs * outputs];
        let mut bias = vec![0.0; outputs];
        for j in 0..outputs {
            for i in 0..=inputs {
                let c = conn.next().ok_or_else(|| {
                    format_err(file, conn_line, "fewer connections than the layers need")
                })?;
                if c[0] as usize != prev_first + i {
                    return Err(format_err(
                        file,
                        conn_line,
                        format!(
                            "connection to neuron {} where {} was expected",
                            c[0],
                            prev_first + i
                        ),
                    ));
                }
                if i == inputs {
                    bias[j] = c[1] as f32;
                } else {
                    weights[i * outputs + j] = c[1] as f32;
                }
            }
        }
        layers.push(Layer {
            inputs,
            outputs,
            activation,
            steepness: steepness as f32,
            weights,
            bias,
        });
        prev_first = first_neuron;
        first_neuron += w[1];
    }
    if conn.next().is_some() {
        return Err(format_err(
            file,
            conn_line,
            "more connections than the layers need",
        ));
    }
    Ok((Network { layers }, settings))
}

/// Reads a FANN `.net` file.
pub fn read_net(path: impl AsRef<Path>) -> Result<(Network, FannSettings)> {
    let path = path.as_ref();
    parse_net(&read_text(path)?, &path.display().to_string())
}

/// The FANN `.net` text of `net`, in FANN 2.2's field order.
pub fn format_net(net: &Network, s: &FannSettings) -> Result<String> {
    if let Some(l) = net.layers.iter().find(|l| l.activation.fann_id().is_none()) {
        return Err(TesseraError::InvalidArgument {
            what: "activation not in FANN",
            value: l.activation.code() as f64,
            expected: "FANN 2.2 activations only (ReLU, GELU, SiLU and softmax have no FANN id)",
        });
    }
    let mut t = String::new();
    let sizes: Vec<usize> = net.sizes().iter().map(|s| s + 1).collect();
    let _ = writeln!(t, "FANN_FLO_2.1\nnum_layers={}", sizes.len());
    let _ = writeln!(
        t,
        "learning_rate={:.6}\nconnection_rate=1.000000\nnetwork_type=0",
        s.learning_rate
    );
    let _ = writeln!(
        t,
        "learning_momentum={:.6}\ntraining_algorithm={}",
        s.learning_momentum, s.training_algorithm
    );
    let _ = writeln!(
        t,
        "train_error_function={}\ntrain_stop_function=0\ncascade_output_change_fraction=0.010000",
        s.train_error_function
    );
    let _ = writeln!(t, "quickprop_decay=-0.000100\nquickprop_mu=1.750000");
    let _ = writeln!(
        t,
        "rprop_increase_factor={:.6}\nrprop_decrease_factor={:.6}",
        s.rprop.increase_factor, s.rprop.decrease_factor
    );
    let _ = writeln!(
        t,
        "rprop_delta_min={:.6}\nrprop_delta_max={:.6}\nrprop_delta_zero={:.6}",
        s.rprop.delta_min, s.rprop.delta_max, s.rprop_delta_zero
    );
    t.push_str(
        "cascade_output_stagnation_epochs=12\ncascade_candidate_change_fraction=0.010000\n\
         cascade_candidate_stagnation_epochs=12\ncascade_max_out_epochs=150\ncascade_min_out_epochs=50\n\
         cascade_max_cand_epochs=150\ncascade_min_cand_epochs=50\ncascade_num_candidate_groups=2\n",
    );
    let _ = writeln!(t, "bit_fail_limit={:.20e}", s.bit_fail_limit);
    t.push_str(
        "cascade_candidate_limit=1.00000000000000000000e+03\ncascade_weight_multiplier=4.00000005960464477539e-01\n\
         cascade_activation_functions_count=10\ncascade_activation_functions=3 5 7 8 10 11 14 15 16 17 \n\
         cascade_activation_steepnesses_count=4\ncascade_activation_steepnesses=2.50000000000000000000e-01 \
         5.00000000000000000000e-01 7.50000000000000000000e-01 1.00000000000000000000e+00 \n",
    );
    t.push_str("layer_sizes=");
    for s in &sizes {
        let _ = write!(t, "{s} ");
    }
    t.push_str(
        "\nscale_included=0\nneurons (num_inputs, activation_function, activation_steepness)=",
    );
    for _ in 0..sizes[0] {
        t.push_str("(0, 0, 0.00000000000000000000e+00) ");
    }
    for l in &net.layers {
        let id = l.activation.fann_id().expect("checked above");
        for _ in 0..l.outputs {
            let _ = write!(t, "({}, {id}, {:.20e}) ", l.inputs + 1, l.steepness);
        }
        let _ = write!(t, "(0, {id}, 0.00000000000000000000e+00) ");
    }
    t.push_str("\nconnections (connected_to_neuron, weight)=");
    let mut prev_first = 0;
    for l in &net.layers {
        for j in 0..l.outputs {
            for i in 0..=l.inputs {
                let w = if i == l.inputs {
                    l.bias[j]
                } else {
                    l.weights[i * l.outputs + j]
                };
                let _ = write!(t, "({}, {:.20e}) ", prev_first + i, w);
            }
        }
        prev_first += l.inputs + 1;
    }
    t.push('\n');
    Ok(t)
}

/// Writes a FANN `.net` file.
pub fn write_net(path: impl AsRef<Path>, net: &Network, settings: &FannSettings) -> Result<()> {
    write_text(path.as_ref(), &format_net(net, settings)?)
}

/// Parses a FANN `.data` text: `samples inputs outputs`, then for each sample a line
/// of inputs and a line of outputs.
pub fn parse_data(text: &str, file: &str) -> Result<TrainData> {
    let mut tokens = text
        .lines()
        .enumerate()
        .flat_map(|(i, l)| l.split_whitespace().map(move |tok| (i + 1, tok)));
    let mut header = [0usize; 3];
    for (h, name) in header
        .iter_mut()
        .zip(["number of samples", "inputs", "outputs"])
    {
        let (line, tok) = tokens
            .next()
            .ok_or_else(|| format_err(file, 1, format!("missing the {name} in the header")))?;
        *h = tok
            .parse()
            .map_err(|_| format_err(file, line, format!("`{tok}` is not a count of {name}")))?;
    }
    let [samples, n_in, n_out] = header;
    let mut values = |count: usize, what: &str| -> Result<Vec<f32>> {
        (0..count)
            .map(|_| {
                let (line, tok) = tokens.next().ok_or_else(|| {
                    format_err(
                        file,
                        text.lines().count(),
                        format!("file ends before all {what}"),
                    )
                })?;
                tok.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        format_err(file, line, format!("`{tok}` is not a finite number"))
                    })
            })
            .collect()
    };
    let mut inputs = Vec::with_capacity(samples * n_in);
    let mut outputs = Vec::with_capacity(samples * n_out);
    for _ in 0..samples {
        inputs.extend(values(n_in, "inputs")?);
        outputs.extend(values(n_out, "outputs")?);
    }
    if let Some((line, tok)) = tokens.next() {
        return Err(format_err(
            file,
            line,
            format!("unexpected `{tok}` after {samples} samples"),
        ));
    }
    TrainData::new(n_in, n_out, inputs, outputs)
}

/// Reads a FANN `.data` file.
pub fn read_data(path: impl AsRef<Path>) -> Result<TrainData> {
    let path = path.as_ref();
    parse_data(&read_text(path)?, &path.display().to_string())
}

/// The FANN `.data` text of `data`.
pub fn format_data(data: &TrainData) -> String {
    let mut t = format!("{} {} {}\n", data.len(), data.n_inputs, data.n_outputs);
    for i in 0..data.len() {
        for row in [
            &data.inputs[i * data.n_inputs..][..data.n_inputs],
            &data.outputs[i * data.n_outputs..][..data.n_outputs],
        ] {
            let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            t.push_str(&line.join(" "));
            t.push('\n');
        }
    }
    t
}

/// Writes a FANN `.data` file.
pub fn write_data(path: impl AsRef<Path>, data: &TrainData) -> Result<()> {
    write_text(path.as_ref(), &format_data(data))
}
