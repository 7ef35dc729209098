//! FANN 2.2 file formats: `.net` networks (FANN_FLO_2.1, layered, fully connected)
//! and `.data` training files.
//!
//! Both parsers treat their input as hostile. Every count is bounded by a documented
//! maximum ([`crate::limits`]) and checked against the bytes actually present before
//! anything is allocated, integers are parsed as integers, activation ids and
//! connection indices are range-checked, and every weight, steepness and value must be
//! a finite `f32`. Malformed input is a [`TesseraError::Format`] naming the file, the
//! line and what was expected; a parser never panics, and its memory and time grow
//! linearly with the input.
//!
//! FANN stores one weight per connection, each neuron listing its inputs (the previous
//! layer's neurons, then that layer's bias neuron). tessera's `W[i, j]` is the
//! connection from neuron `i` of the previous layer to neuron `j`, and `b[j]` the one
//! from the bias neuron.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::{Activation, RpropParams};

use crate::cascade::{CascadeNetwork, CascadeParams, HiddenNeuron, MAX_CANDIDATES};
use crate::data::TrainData;
use crate::limits::{
    MAX_CASCADE_HIDDEN, MAX_EPOCHS, MAX_FILE_BYTES, MAX_LAYER_WIDTH, MAX_LAYERS, MAX_PARAMETERS,
};
use crate::network::{Layer, Network};

/// The training settings a `.net` file carries besides the network, as FANN 2.2 saves
/// them. [`TrainConfig::from_fann`](crate::TrainConfig::from_fann) turns them into a
/// training configuration that does what libfann does with the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FannSettings {
    /// `learning_rate` (FANN default 0.7).
    pub learning_rate: f32,
    /// `learning_momentum` (default 0).
    pub learning_momentum: f32,
    /// `training_algorithm`: 0 incremental, 1 batch, 2 RPROP, 3 quickprop, 4 SARPROP.
    pub training_algorithm: u32,
    /// `train_error_function`: 0 linear, 1 tanh (FANN's default).
    pub train_error_function: u32,
    /// `train_stop_function`: 0 MSE (FANN's default), 1 bit fail. Kept for the round
    /// trip; `Trainer::train_until` stops on the MSE.
    pub train_stop_function: u32,
    /// `quickprop_decay` (default -0.0001).
    pub quickprop_decay: f32,
    /// `quickprop_mu` (default 1.75).
    pub quickprop_mu: f32,
    /// `bit_fail_limit` (default 0.35).
    pub bit_fail_limit: f32,
    /// RPROP parameters (shared with SARPROP, except SARPROP's fixed `delta_min`).
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
            train_stop_function: 0,
            quickprop_decay: -0.0001,
            quickprop_mu: 1.75,
            bit_fail_limit: 0.35,
            rprop: RpropParams::default(),
            rprop_delta_zero: 0.1,
        }
    }
}

/// Which range a numeric setting must lie in.
#[derive(Clone, Copy)]
enum Range {
    /// A finite number.
    Finite,
    /// A finite number >= 0.
    NonNegative,
    /// A finite number > 0.
    Positive,
    /// A finite number in (0, 1].
    Fraction,
    /// A finite number >= 1.
    AtLeastOne,
    /// An integer in `0..=max`.
    Code(u32),
}

impl Range {
    fn describe(self) -> String {
        match self {
            Range::Finite => "a finite number".into(),
            Range::NonNegative => "a finite number >= 0".into(),
            Range::Positive => "a finite number > 0".into(),
            Range::Fraction => "a finite number in (0, 1]".into(),
            Range::AtLeastOne => "a finite number >= 1".into(),
            Range::Code(max) => format!("an integer in 0..={max}"),
        }
    }

    fn admits(self, v: f32) -> bool {
        v.is_finite()
            && match self {
                Range::Finite => true,
                Range::NonNegative => v >= 0.0,
                Range::Positive => v > 0.0,
                Range::Fraction => v > 0.0 && v <= 1.0,
                Range::AtLeastOne => v >= 1.0,
                Range::Code(_) => true,
            }
    }
}

/// A setting of a `.net` file: its key, range and where it lives in [`FannSettings`].
type Setting = (
    &'static str,
    Range,
    fn(&mut FannSettings) -> SettingSlot<'_>,
);

/// A mutable reference to one field of [`FannSettings`].
enum SettingSlot<'a> {
    Float(&'a mut f32),
    Code(&'a mut u32),
}

/// Every training setting of a FANN 2.2 `.net` file that tessera uses.
const SETTINGS: &[Setting] = &[
    ("learning_rate", Range::NonNegative, |s| {
        SettingSlot::Float(&mut s.learning_rate)
    }),
    ("learning_momentum", Range::NonNegative, |s| {
        SettingSlot::Float(&mut s.learning_momentum)
    }),
    ("training_algorithm", Range::Code(4), |s| {
        SettingSlot::Code(&mut s.training_algorithm)
    }),
    ("train_error_function", Range::Code(1), |s| {
        SettingSlot::Code(&mut s.train_error_function)
    }),
    ("train_stop_function", Range::Code(1), |s| {
        SettingSlot::Code(&mut s.train_stop_function)
    }),
    ("quickprop_decay", Range::Finite, |s| {
        SettingSlot::Float(&mut s.quickprop_decay)
    }),
    ("quickprop_mu", Range::Positive, |s| {
        SettingSlot::Float(&mut s.quickprop_mu)
    }),
    ("bit_fail_limit", Range::Positive, |s| {
        SettingSlot::Float(&mut s.bit_fail_limit)
    }),
    ("rprop_increase_factor", Range::AtLeastOne, |s| {
        SettingSlot::Float(&mut s.rprop.increase_factor)
    }),
    ("rprop_decrease_factor", Range::Fraction, |s| {
        SettingSlot::Float(&mut s.rprop.decrease_factor)
    }),
    ("rprop_delta_min", Range::NonNegative, |s| {
        SettingSlot::Float(&mut s.rprop.delta_min)
    }),
    ("rprop_delta_max", Range::Positive, |s| {
        SettingSlot::Float(&mut s.rprop.delta_max)
    }),
    ("rprop_delta_zero", Range::Positive, |s| {
        SettingSlot::Float(&mut s.rprop_delta_zero)
    }),
];

fn format_err(file: &str, line: usize, message: impl Into<String>) -> TesseraError {
    TesseraError::Format {
        file: file.to_owned(),
        line,
        message: message.into(),
    }
}

fn read_text(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| TesseraError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(format_err(
            &path.display().to_string(),
            1,
            format!("the file has {len} bytes, more than the {MAX_FILE_BYTES} tessera reads"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format_err(
            &path.display().to_string(),
            line,
            "the file is not UTF-8 text",
        )
    })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| TesseraError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// At most the first 24 characters of `s` (whole characters, never a byte offset),
/// for quoting input in an error message.
fn head(s: &str) -> String {
    let mut chars = s.chars();
    let quoted: String = chars.by_ref().take(24).collect();
    if chars.next().is_some() {
        quoted + "…"
    } else {
        quoted
    }
}

/// Where a token came from, for error messages.
#[derive(Clone, Copy)]
struct At<'a> {
    file: &'a str,
    line: usize,
}

impl At<'_> {
    fn err(self, message: impl Into<String>) -> TesseraError {
        format_err(self.file, self.line, message)
    }

    /// `tok` as an unsigned integer (no sign, fraction or exponent) no larger than `max`.
    fn integer(self, tok: &str, what: &str, max: u64) -> Result<u64> {
        tok.parse::<u64>()
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| {
                self.err(format!(
                    "`{}` is not a valid {what}: expected an integer in 0..={max}",
                    head(tok)
                ))
            })
    }

    /// `tok` as a finite `f32` (values beyond f32's range are rejected, not rounded to
    /// infinity).
    fn finite(self, tok: &str, what: &str) -> Result<f32> {
        tok.parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                self.err(format!(
                    "`{}` is not a valid {what}: expected a finite 32-bit float",
                    head(tok)
                ))
            })
    }
}

/// The `(a, b, c) (a, b, c) ...` tuples of one line, parsed lazily so that nothing is
/// allocated before their number has been checked.
struct Tuples<'a, const N: usize> {
    at: At<'a>,
    rest: &'a str,
}

impl<'a, const N: usize> Tuples<'a, N> {
    fn new(at: At<'a>, text: &'a str) -> Self {
        Self {
            at,
            rest: text.trim_start(),
        }
    }

    /// The next tuple's `N` fields (trimmed), or `None` at the end of the line.
    fn next(&mut self) -> Result<Option<[&'a str; N]>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let open = self.rest.strip_prefix('(').ok_or_else(|| {
            self.at
                .err(format!("expected `(` at `{}`", head(self.rest)))
        })?;
        let (inside, after) = open
            .split_once(')')
            .ok_or_else(|| self.at.err("a `(` is never closed"))?;
        let mut fields = [""; N];
        let mut parts = inside.split(',');
        for f in &mut fields {
            *f = parts.next().unwrap_or("").trim();
        }
        if parts.next().is_some() || fields.iter().any(|f| f.is_empty()) {
            return Err(self.at.err(format!(
                "expected {N} comma-separated numbers in `({})`",
                head(inside)
            )));
        }
        self.rest = after.trim_start();
        Ok(Some(fields))
    }
}

/// The lines of a `.net` file that describe the network, kept as text until the layer
/// sizes say how much they must hold.
struct NetLines<'a> {
    network_type: Option<(usize, &'a str)>,
    /// `cascade_*` settings: line, key and value.
    cascade: Vec<(usize, &'a str, &'a str)>,
    num_layers: Option<(usize, &'a str)>,
    sizes: Option<(usize, &'a str)>,
    neurons: Option<(usize, &'a str)>,
    connections: Option<(usize, &'a str)>,
}

/// Checks a `key=value` line that must hold `expected` (an unsupported feature
/// otherwise).
fn require(at: At<'_>, value: &str, expected: &str, message: &str) -> Result<()> {
    let ok = match expected {
        "1" => value.parse::<f64>().is_ok_and(|v| v == 1.0),
        _ => value == expected,
    };
    if ok {
        Ok(())
    } else {
        Err(at.err(format!("{message}, found `{}`", head(value))))
    }
}

/// The header, the training settings and the network lines of a `.net` text.
fn parse_fields<'a>(text: &'a str, file: &str) -> Result<(FannSettings, NetLines<'a>)> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let first = lines.next().map_or("", |(_, l)| l);
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
    let mut net = NetLines {
        network_type: None,
        cascade: Vec::new(),
        num_layers: None,
        sizes: None,
        neurons: None,
        connections: None,
    };
    let mut seen = HashSet::new();
    for (line, raw) in lines {
        let at = At { file, line };
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let (key, value) = raw
            .split_once('=')
            .ok_or_else(|| at.err(format!("expected `key=value`, found `{}`", head(raw))))?;
        let (key, value) = (key.trim(), value.trim());
        // FANN writes `neurons (num_inputs, ...)=` with the tuple layout in the key.
        let key = key.split_once(' ').map_or(key, |(k, _)| k);
        if !seen.insert(key) {
            return Err(at.err(format!("`{}` appears twice", head(key))));
        }
        if let Some((_, range, slot)) = SETTINGS.iter().find(|(k, ..)| *k == key) {
            let wrong = || {
                at.err(format!(
                    "`{}` is not a valid {key}: expected {}",
                    head(value),
                    range.describe()
                ))
            };
            match (slot(&mut settings), *range) {
                (SettingSlot::Code(field), Range::Code(max)) => {
                    *field = at.integer(value, key, max.into()).map_err(|_| wrong())? as u32;
                }
                (SettingSlot::Float(field), range) => {
                    *field = at
                        .finite(value, key)
                        .ok()
                        .filter(|&v| range.admits(v))
                        .ok_or_else(wrong)?;
                }
                (SettingSlot::Code(_), _) => unreachable!("code settings have a Code range"),
            }
            continue;
        }
        match key {
            "network_type" => net.network_type = Some((line, value)),
            "connection_rate" => require(
                at,
                value,
                "1",
                "only fully connected networks (connection_rate=1) are supported",
            )?,
            "scale_included" => require(
                at,
                value,
                "0",
                "networks with scaling parameters (scale_included=1) are not supported",
            )?,
            "num_layers" => net.num_layers = Some((line, value)),
            "layer_sizes" => net.sizes = Some((line, value)),
            "neurons" => net.neurons = Some((line, value)),
            "connections" => net.connections = Some((line, value)),
            _ if key.starts_with("cascade_") => net.cascade.push((line, key, value)),
            // Any other key: not used by tessera.
            _ => {}
        }
    }
    Ok((settings, net))
}

/// Checks the `network_type` line: `expected` (0 layered, 1 shortcut), FANN's default
/// 0 when the line is absent.
fn require_type(file: &str, net: &NetLines<'_>, expected: &str, message: &str) -> Result<()> {
    match net.network_type {
        Some((line, value)) => require(At { file, line }, value, expected, message),
        None if expected == "0" => Ok(()),
        None => Err(format_err(
            file,
            1,
            format!("{message}, found no `network_type`"),
        )),
    }
}

/// Parses a FANN `.net` text. `file` names the source in errors.
///
/// Accepts the layered, fully connected, unscaled networks FANN 2.2 writes
/// (`FANN_FLO_2.1`), up to [`MAX_LAYERS`] layers of [`MAX_LAYER_WIDTH`] neurons and
/// [`MAX_PARAMETERS`] connections. Shortcut networks (`network_type=1`) are read by
/// [`parse_cascade_net`].
pub fn parse_net(text: &str, file: &str) -> Result<(Network, FannSettings)> {
    let (settings, net) = parse_fields(text, file)?;
    require_type(
        file,
        &net,
        "0",
        "a layered network (network_type=0) was expected; read shortcut ones with parse_cascade_net",
    )?;
    let network = build_network(file, &net)?;
    Ok((network, settings))
}

/// Parses a FANN `.net` text holding a shortcut network (`network_type=1`, what
/// libfann's cascade training writes) and its cascade settings. The same bounds and
/// checks as [`parse_net`] apply; the output neurons must share one activation and
/// steepness, and the cascade lists (activations, steepnesses) their counts.
pub fn parse_cascade_net(
    text: &str,
    file: &str,
) -> Result<(CascadeNetwork, FannSettings, CascadeParams)> {
    let (settings, net) = parse_fields(text, file)?;
    require_type(
        file,
        &net,
        "1",
        "a shortcut network (network_type=1) was expected; read layered ones with parse_net",
    )?;
    let params = cascade_params(file, &net)?;
    let network = build_shortcut(file, &net)?;
    Ok((network, settings, params))
}

/// Layer sizes as FANN writes them, checked: each counting its bias neuron in a
/// layered net, only the input layer's in a `shortcut` one.
fn layer_sizes(file: &str, net: &NetLines<'_>, shortcut: bool) -> Result<(usize, Vec<usize>)> {
    let (line, text) = net
        .sizes
        .ok_or_else(|| format_err(file, 1, "no `layer_sizes` line"))?;
    let at = At { file, line };
    let mut sizes = Vec::new();
    for tok in text.split_whitespace() {
        if sizes.len() == MAX_LAYERS + 1 {
            return Err(at.err(format!(
                "more than {} layers (tessera's maximum is {MAX_LAYERS} besides the input layer)",
                MAX_LAYERS + 1
            )));
        }
        let size = at.integer(tok, "layer size", (MAX_LAYER_WIDTH + 1) as u64)? as usize;
        if shortcut && !sizes.is_empty() && size < 1 {
            return Err(at.err(format!(
                "layer size {size}: every layer after the input layer needs a neuron"
            )));
        }
        if (!shortcut || sizes.is_empty()) && size < 2 {
            return Err(at.err(format!(
                "layer size {size}: every layer needs at least 1 neuron plus its bias neuron"
            )));
        }
        sizes.push(size);
    }
    if sizes.len() < 2 {
        return Err(at.err("expected at least 2 layers (inputs and outputs)"));
    }
    if let Some((nl_line, nl)) = net.num_layers {
        let at = At {
            file,
            line: nl_line,
        };
        let n = at.integer(nl, "num_layers", (MAX_LAYERS + 1) as u64)?;
        if n as usize != sizes.len() {
            return Err(at.err(format!(
                "num_layers={n} but layer_sizes lists {} layers",
                sizes.len()
            )));
        }
    }
    Ok((line, sizes))
}

/// Checks the tuple of a neuron without inputs (an input or a bias neuron): no inputs,
/// an integer activation id and a finite steepness, neither of which is used.
fn unconnected_neuron(at: At<'_>, n_in: &str, act: &str, steep: &str) -> Result<()> {
    at.integer(n_in, "input or bias neuron's input count", 0)?;
    at.integer(act, "activation id", u32::MAX.into())?;
    at.finite(steep, "activation steepness")?;
    Ok(())
}

/// The `neurons` and `connections` lines of a network needing `connections`
/// connections (checked against [`MAX_PARAMETERS`] and the bytes present before
/// anything is allocated), with the `inputs` unconnected neurons of the input layer
/// (its bias included) already read. Returns the two lines' tuples and the `neurons`
/// line number.
fn network_lines<'a>(
    file: &'a str,
    net: &NetLines<'a>,
    size_line: usize,
    connections: u64,
    inputs: usize,
) -> Result<(Tuples<'a, 3>, Tuples<'a, 2>, usize)> {
    let (neuron_line, neuron_text) = net
        .neurons
        .ok_or_else(|| format_err(file, size_line, "no `neurons` line"))?;
    let (conn_line, conn_text) = net
        .connections
        .ok_or_else(|| format_err(file, neuron_line, "no `connections` line"))?;
    if connections > MAX_PARAMETERS as u64 {
        return Err(format_err(
            file,
            size_line,
            format!(
                "the layers need {connections} connections, more than tessera's maximum of {MAX_PARAMETERS}"
            ),
        ));
    }
    // The shortest tuple is `(0,0)`: a line too short to hold every connection is
    // rejected before a weight is allocated.
    if (conn_text.len() / 5) < connections as usize {
        return Err(format_err(
            file,
            conn_line,
            format!(
                "the layers need {connections} connections but the line has only {} bytes",
                conn_text.len()
            ),
        ));
    }
    let neuron_at = At {
        file,
        line: neuron_line,
    };
    let conn_at = At {
        file,
        line: conn_line,
    };
    let mut neurons = Tuples::<3>::new(neuron_at, neuron_text);
    for _ in 0..inputs {
        let [n_in, act, steep] = neurons
            .next()?
            .ok_or_else(|| neuron_at.err("fewer neurons than layer_sizes needs (input layer)"))?;
        unconnected_neuron(neuron_at, n_in, act, steep)?;
    }
    Ok((neurons, Tuples::<2>::new(conn_at, conn_text), neuron_line))
}

/// Builds the network from the `layer_sizes`, `neurons` and `connections` lines.
fn build_network(file: &str, net: &NetLines<'_>) -> Result<Network> {
    let (size_line, sizes) = layer_sizes(file, net, false)?;
    // Sizes are bounded above, so this sum cannot overflow.
    let connections: usize = sizes.windows(2).map(|w| w[0] * (w[1] - 1)).sum();
    let (mut neurons, mut conns, neuron_line) =
        network_lines(file, net, size_line, connections as u64, sizes[0])?;
    let (neuron_at, conn_at) = (neurons.at, conns.at);
    let fewer =
        |what: &str| neuron_at.err(format!("fewer neurons than layer_sizes needs ({what})"));
    let mut layers = Vec::with_capacity(sizes.len() - 1);
    let mut prev_first = 0;
    let mut first_neuron = sizes[0];
    for (index, w) in sizes.windows(2).enumerate() {
        let (inputs, outputs) = (w[0] - 1, w[1] - 1);
        let mut shared: Option<(u64, f32)> = None;
        for _ in 0..outputs {
            let [n_in, act, steep] = neurons
                .next()?
                .ok_or_else(|| fewer("a hidden or output layer"))?;
            let got = neuron_at.integer(n_in, "neuron input count", u32::MAX.into())?;
            if got != (inputs + 1) as u64 {
                return Err(neuron_at.err(format!(
                    "a neuron of layer {} has {n_in} inputs, expected {} (the previous layer and its bias)",
                    index + 1,
                    inputs + 1
                )));
            }
            let id = neuron_at.integer(act, "activation id", 17)?;
            let steepness = neuron_at.finite(steep, "activation steepness")?;
            match shared {
                None => shared = Some((id, steepness)),
                Some(s) if s == (id, steepness) => {}
                Some(_) => {
                    return Err(neuron_at.err(format!(
                        "the neurons of layer {} differ in activation or steepness; tessera needs one per layer",
                        index + 1
                    )));
                }
            }
        }
        // The layer's bias neuron.
        let [n_in, act, steep] = neurons.next()?.ok_or_else(|| fewer("a bias neuron"))?;
        unconnected_neuron(neuron_at, n_in, act, steep)?;
        let (id, steepness) = shared.expect("every layer has at least one neuron");
        let activation = Activation::from_fann_id(id as u32)
            .map_err(|e| neuron_at.err(format!("layer {}: {e}", index + 1)))?;
        let mut weights = vec![0.0; inputs * outputs];
        let mut bias = vec![0.0; outputs];
        for j in 0..outputs {
            for i in 0..=inputs {
                let [to, weight] = conns.next()?.ok_or_else(|| {
                    conn_at.err(format!("fewer connections than the layers' {connections}"))
                })?;
                let expected = prev_first + i;
                if to.parse::<usize>() != Ok(expected) {
                    return Err(conn_at.err(format!(
                        "connection to neuron `{}` where neuron {expected} was expected",
                        head(to)
                    )));
                }
                let weight = conn_at.finite(weight, "weight")?;
                if i == inputs {
                    bias[j] = weight;
                } else {
                    weights[i * outputs + j] = weight;
                }
            }
        }
        layers.push(Layer {
            inputs,
            outputs,
            activation,
            steepness,
            weights,
            bias,
        });
        prev_first = first_neuron;
        first_neuron += w[1];
    }
    if neurons.next()?.is_some() {
        return Err(neuron_at.err("more neurons than layer_sizes needs"));
    }
    if conns.next()?.is_some() {
        return Err(conn_at.err(format!("more connections than the layers' {connections}")));
    }
    let network = Network { layers };
    network
        .validate()
        .map_err(|e| format_err(file, neuron_line, e.to_string()))?;
    Ok(network)
}

/// The `cascade_*` settings of a `.net` file, FANN's defaults where absent.
fn cascade_params(file: &str, net: &NetLines<'_>) -> Result<CascadeParams> {
    let mut p = CascadeParams::default();
    let mut counts = (None, None);
    let mut lists = (None, None);
    for &(line, key, value) in &net.cascade {
        let at = At { file, line };
        let int = |max: u64| at.integer(value, key, max).map(|v| v as usize);
        let epochs = MAX_EPOCHS as u64;
        match key {
            "cascade_output_change_fraction" => p.output_change_fraction = at.finite(value, key)?,
            "cascade_candidate_change_fraction" => {
                p.candidate_change_fraction = at.finite(value, key)?
            }
            "cascade_output_stagnation_epochs" => p.output_stagnation_epochs = int(epochs)?,
            "cascade_candidate_stagnation_epochs" => p.candidate_stagnation_epochs = int(epochs)?,
            "cascade_max_out_epochs" => p.max_out_epochs = int(epochs)?,
            "cascade_min_out_epochs" => p.min_out_epochs = int(epochs)?,
            "cascade_max_cand_epochs" => p.max_cand_epochs = int(epochs)?,
            "cascade_min_cand_epochs" => p.min_cand_epochs = int(epochs)?,
            "cascade_num_candidate_groups" => p.candidate_groups = int(MAX_CANDIDATES as u64)?,
            "cascade_candidate_limit" => p.candidate_limit = at.finite(value, key)?,
            "cascade_weight_multiplier" => p.weight_multiplier = at.finite(value, key)?,
            "cascade_activation_functions_count" => counts.0 = Some(int(MAX_CANDIDATES as u64)?),
            "cascade_activation_steepnesses_count" => counts.1 = Some(int(MAX_CANDIDATES as u64)?),
            "cascade_activation_functions" => lists.0 = Some((line, value)),
            "cascade_activation_steepnesses" => lists.1 = Some((line, value)),
            _ => {}
        }
    }
    if let Some((line, text)) = lists.0 {
        let at = At { file, line };
        let ids: Vec<&str> = text.split_whitespace().take(MAX_CANDIDATES + 1).collect();
        p.activations = ids
            .iter()
            .map(|tok| {
                let id = at.integer(tok, "cascade activation id", 17)? as u32;
                Activation::from_fann_id(id).map_err(|e| at.err(e.to_string()))
            })
            .collect::<Result<_>>()?;
    }
    if let Some((line, text)) = lists.1 {
        let at = At { file, line };
        p.steepnesses = text
            .split_whitespace()
            .take(MAX_CANDIDATES + 1)
            .map(|tok| at.finite(tok, "cascade steepness"))
            .collect::<Result<_>>()?;
    }
    for (count, got, what) in [
        (
            counts.0,
            p.activations.len(),
            "cascade_activation_functions",
        ),
        (
            counts.1,
            p.steepnesses.len(),
            "cascade_activation_steepnesses",
        ),
    ] {
        if let Some(count) = count.filter(|&c| c != got) {
            return Err(format_err(
                file,
                net.cascade.first().map_or(1, |c| c.0),
                format!("{what}_count={count} but {what} lists {got} values"),
            ));
        }
    }
    p.validate().map_err(|e| {
        format_err(
            file,
            net.cascade.first().map_or(1, |c| c.0),
            format!("cascade settings: {e}"),
        )
    })?;
    Ok(p)
}

/// Builds a shortcut network from the `layer_sizes`, `neurons` and `connections`
/// lines: the input layer counts its bias neuron, the other layers have none.
fn build_shortcut(file: &str, net: &NetLines<'_>) -> Result<CascadeNetwork> {
    let (size_line, sizes) = layer_sizes(file, net, true)?;
    let at = At {
        file,
        line: size_line,
    };
    let n_in = sizes[0] - 1;
    let hidden_sizes = &sizes[1..sizes.len() - 1];
    let n_out = sizes[sizes.len() - 1];
    let hidden_total: usize = hidden_sizes.iter().sum();
    if hidden_total > MAX_CASCADE_HIDDEN {
        return Err(at.err(format!(
            "{hidden_total} hidden neurons, more than tessera's maximum of {MAX_CASCADE_HIDDEN}"
        )));
    }
    // Fan-ins: each hidden layer reads everything before it, the outputs everything.
    let mut fan_ins = Vec::with_capacity(hidden_total + 1);
    let mut before = n_in + 1;
    for &h in hidden_sizes {
        fan_ins.extend(std::iter::repeat_n(before, h));
        before += h;
    }
    // Sizes are bounded, so these products fit in a u64.
    let connections = fan_ins.iter().map(|&f| f as u64).sum::<u64>() + (before * n_out) as u64;
    let (mut neurons, mut conns, neuron_line) =
        network_lines(file, net, size_line, connections, sizes[0])?;
    let (neuron_at, conn_at) = (neurons.at, conns.at);
    let fewer =
        |what: &str| neuron_at.err(format!("fewer neurons than layer_sizes needs ({what})"));
    // Every connected neuron: its declared fan-in, activation and steepness.
    let mut specs = Vec::with_capacity(fan_ins.len() + n_out);
    for (k, &fan_in) in fan_ins
        .iter()
        .chain(std::iter::repeat_n(&before, n_out))
        .enumerate()
    {
        let [n, act, steep] = neurons
            .next()?
            .ok_or_else(|| fewer("a hidden or output neuron"))?;
        let got = neuron_at.integer(n, "neuron input count", u32::MAX.into())?;
        if got != fan_in as u64 {
            return Err(neuron_at.err(format!(
                "connected neuron {k} has {n} inputs, expected {fan_in} (every neuron of the earlier layers and the bias)"
            )));
        }
        let id = neuron_at.integer(act, "activation id", 17)? as u32;
        let activation = Activation::from_fann_id(id)
            .map_err(|e| neuron_at.err(format!("connected neuron {k}: {e}")))?;
        let steepness = neuron_at.finite(steep, "activation steepness")?;
        specs.push((activation, steepness));
    }
    if neurons.next()?.is_some() {
        return Err(neuron_at.err("more neurons than layer_sizes needs"));
    }
    let (out_act, out_steep) = specs[fan_ins.len()];
    if specs[fan_ins.len()..]
        .iter()
        .any(|&s| s != (out_act, out_steep))
    {
        return Err(neuron_at.err(
            "the output neurons differ in activation or steepness; tessera needs one per layer",
        ));
    }
    let mut weights_of = |fan_in: usize| -> Result<Vec<f32>> {
        let mut w = Vec::with_capacity(fan_in);
        for i in 0..fan_in {
            let [to, weight] = conns.next()?.ok_or_else(|| {
                conn_at.err(format!("fewer connections than the layers' {connections}"))
            })?;
            if to.parse::<usize>() != Ok(i) {
                return Err(conn_at.err(format!(
                    "connection to neuron `{}` where neuron {i} was expected",
                    head(to)
                )));
            }
            w.push(conn_at.finite(weight, "weight")?);
        }
        Ok(w)
    };
    let mut hidden = Vec::with_capacity(fan_ins.len());
    for (&fan_in, &(activation, steepness)) in fan_ins.iter().zip(&specs) {
        hidden.push(HiddenNeuron {
            activation,
            steepness,
            weights: weights_of(fan_in)?,
        });
    }
    let features = n_in + hidden.len();
    let mut output = Layer {
        inputs: features,
        outputs: n_out,
        activation: out_act,
        steepness: out_steep,
        weights: vec![0.0; features * n_out],
        bias: vec![0.0; n_out],
    };
    for j in 0..n_out {
        for (i, w) in weights_of(before)?.into_iter().enumerate() {
            // Neuron i: an input, the bias (n_in), or hidden neuron i - n_in - 1.
            match i.cmp(&n_in) {
                std::cmp::Ordering::Less => output.weights[i * n_out + j] = w,
                std::cmp::Ordering::Equal => output.bias[j] = w,
                std::cmp::Ordering::Greater => output.weights[(i - 1) * n_out + j] = w,
            }
        }
    }
    if conns.next()?.is_some() {
        return Err(conn_at.err(format!("more connections than the layers' {connections}")));
    }
    let network = CascadeNetwork {
        inputs: n_in,
        hidden,
        output,
    };
    network
        .validate()
        .map_err(|e| format_err(file, neuron_line, e.to_string()))?;
    Ok(network)
}

/// Reads a FANN `.net` file holding a shortcut network (at most [`MAX_FILE_BYTES`]).
pub fn read_cascade_net(
    path: impl AsRef<Path>,
) -> Result<(CascadeNetwork, FannSettings, CascadeParams)> {
    let path = path.as_ref();
    parse_cascade_net(&read_text(path)?, &path.display().to_string())
}

/// The FANN `.net` text of a shortcut network, with its training and cascade
/// settings, in FANN 2.2's field order (weights with `%.20e`, as libfann writes
/// them), which libfann reads back.
pub fn format_cascade_net(
    net: &CascadeNetwork,
    s: &FannSettings,
    params: &CascadeParams,
) -> Result<String> {
    net.validate()?;
    params.validate()?;
    let ids = std::iter::once(net.output.activation)
        .chain(net.hidden.iter().map(|h| h.activation))
        .chain(params.activations.iter().copied())
        .map(|a| {
            a.fann_id().ok_or(TesseraError::InvalidArgument {
                what: "activation not in FANN",
                value: a.code() as f64,
                expected: "FANN 2.2 activations only (ReLU, GELU, SiLU and softmax have no FANN id)",
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    // Layers: runs of hidden neurons with the same fan-in.
    let mut layers: Vec<usize> = Vec::new();
    for (k, h) in net.hidden.iter().enumerate() {
        if k > 0 && h.weights.len() == net.hidden[k - 1].weights.len() {
            *layers.last_mut().expect("a layer is open") += 1;
        } else {
            layers.push(1);
        }
    }
    let mut t = String::new();
    write_header(&mut t, layers.len() + 2, 1, s, params);
    let _ = write!(t, "layer_sizes={} ", net.inputs + 1);
    for l in &layers {
        let _ = write!(t, "{l} ");
    }
    let _ = write!(t, "{} ", net.outputs());
    t.push_str(
        "\nscale_included=0\nneurons (num_inputs, activation_function, activation_steepness)=",
    );
    for _ in 0..=net.inputs {
        t.push_str("(0, 0, 0.00000000000000000000e+00) ");
    }
    for (h, id) in net.hidden.iter().zip(&ids[1..]) {
        let _ = write!(t, "({}, {id}, {:.20e}) ", h.weights.len(), h.steepness);
    }
    let fan_in = net.candidate_inputs();
    for _ in 0..net.outputs() {
        let _ = write!(t, "({fan_in}, {}, {:.20e}) ", ids[0], net.output.steepness);
    }
    t.push_str("\nconnections (connected_to_neuron, weight)=");
    for h in &net.hidden {
        for (i, w) in h.weights.iter().enumerate() {
            let _ = write!(t, "({i}, {w:.20e}) ");
        }
    }
    let (n, o) = (net.inputs, &net.output);
    for j in 0..o.outputs {
        for i in 0..fan_in {
            let w = match i.cmp(&n) {
                std::cmp::Ordering::Less => o.weights[i * o.outputs + j],
                std::cmp::Ordering::Equal => o.bias[j],
                std::cmp::Ordering::Greater => o.weights[(i - 1) * o.outputs + j],
            };
            let _ = write!(t, "({i}, {w:.20e}) ");
        }
    }
    t.push('\n');
    Ok(t)
}

/// Writes a FANN `.net` file holding a shortcut network.
pub fn write_cascade_net(
    path: impl AsRef<Path>,
    net: &CascadeNetwork,
    settings: &FannSettings,
    params: &CascadeParams,
) -> Result<()> {
    write_text(path.as_ref(), &format_cascade_net(net, settings, params)?)
}

/// The settings lines of a `.net` file, FANN 2.2's order, up to `layer_sizes`.
fn write_header(
    t: &mut String,
    num_layers: usize,
    network_type: u32,
    s: &FannSettings,
    c: &CascadeParams,
) {
    let _ = writeln!(t, "FANN_FLO_2.1\nnum_layers={num_layers}");
    let _ = writeln!(
        t,
        "learning_rate={}\nconnection_rate=1.000000\nnetwork_type={network_type}",
        s.learning_rate
    );
    let _ = writeln!(
        t,
        "learning_momentum={}\ntraining_algorithm={}",
        s.learning_momentum, s.training_algorithm
    );
    let _ = writeln!(
        t,
        "train_error_function={}\ntrain_stop_function={}\ncascade_output_change_fraction={}",
        s.train_error_function, s.train_stop_function, c.output_change_fraction
    );
    let _ = writeln!(
        t,
        "quickprop_decay={}\nquickprop_mu={}",
        s.quickprop_decay, s.quickprop_mu
    );
    let _ = writeln!(
        t,
        "rprop_increase_factor={}\nrprop_decrease_factor={}",
        s.rprop.increase_factor, s.rprop.decrease_factor
    );
    let _ = writeln!(
        t,
        "rprop_delta_min={}\nrprop_delta_max={}\nrprop_delta_zero={}",
        s.rprop.delta_min, s.rprop.delta_max, s.rprop_delta_zero
    );
    let _ = writeln!(
        t,
        "cascade_output_stagnation_epochs={}\ncascade_candidate_change_fraction={}\n\
         cascade_candidate_stagnation_epochs={}\ncascade_max_out_epochs={}\ncascade_min_out_epochs={}\n\
         cascade_max_cand_epochs={}\ncascade_min_cand_epochs={}\ncascade_num_candidate_groups={}",
        c.output_stagnation_epochs,
        c.candidate_change_fraction,
        c.candidate_stagnation_epochs,
        c.max_out_epochs,
        c.min_out_epochs,
        c.max_cand_epochs,
        c.min_cand_epochs,
        c.candidate_groups
    );
    let _ = writeln!(t, "bit_fail_limit={:.20e}", s.bit_fail_limit);
    let _ = writeln!(
        t,
        "cascade_candidate_limit={:.20e}\ncascade_weight_multiplier={:.20e}",
        c.candidate_limit, c.weight_multiplier
    );
    let _ = write!(
        t,
        "cascade_activation_functions_count={}\ncascade_activation_functions=",
        c.activations.len()
    );
    for a in &c.activations {
        let _ = write!(t, "{} ", a.fann_id().unwrap_or(0));
    }
    let _ = write!(
        t,
        "\ncascade_activation_steepnesses_count={}\ncascade_activation_steepnesses=",
        c.steepnesses.len()
    );
    for st in &c.steepnesses {
        let _ = write!(t, "{st:.20e} ");
    }
    t.push('\n');
}

/// Reads a FANN `.net` file (at most [`MAX_FILE_BYTES`]).
pub fn read_net(path: impl AsRef<Path>) -> Result<(Network, FannSettings)> {
    let path = path.as_ref();
    parse_net(&read_text(path)?, &path.display().to_string())
}

/// The FANN `.net` text of `net`, in FANN 2.2's field order. Settings are written at
/// full precision (the shortest text that reads back to the same `f32`).
pub fn format_net(net: &Network, s: &FannSettings) -> Result<String> {
    net.validate()?;
    if let Some(l) = net.layers.iter().find(|l| l.activation.fann_id().is_none()) {
        return Err(TesseraError::InvalidArgument {
            what: "activation not in FANN",
            value: l.activation.code() as f64,
            expected: "FANN 2.2 activations only (ReLU, GELU, SiLU and softmax have no FANN id)",
        });
    }
    let mut t = String::new();
    let sizes: Vec<usize> = net.sizes().iter().map(|s| s + 1).collect();
    write_header(&mut t, sizes.len(), 0, s, &CascadeParams::default());
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
/// of inputs and a line of outputs (FANN reads them as whitespace-separated numbers,
/// and so does this parser).
///
/// The header's counts are checked against [`MAX_LAYER_WIDTH`],
/// [`MAX_DATA_VALUES`](crate::limits::MAX_DATA_VALUES) and against the number of values
/// the rest of the text can hold before anything is allocated.
pub fn parse_data(text: &str, file: &str) -> Result<TrainData> {
    let mut tokens = text
        .lines()
        .enumerate()
        .flat_map(|(i, l)| l.split_whitespace().map(move |tok| (i + 1, tok)));
    let mut header = [0u64; 3];
    let mut last_line = 1;
    for (h, (name, max)) in header.iter_mut().zip([
        ("number of samples", u64::MAX),
        ("number of inputs", MAX_LAYER_WIDTH as u64),
        ("number of outputs", MAX_LAYER_WIDTH as u64),
    ]) {
        let (line, tok) = tokens
            .next()
            .ok_or_else(|| format_err(file, last_line, format!("the header lacks the {name}")))?;
        last_line = line;
        *h = At { file, line }.integer(tok, name, max)?;
    }
    let [samples, n_in, n_out] = header;
    let at = At {
        file,
        line: last_line,
    };
    if n_in == 0 || n_out == 0 {
        return Err(at.err("a sample needs at least one input and one output"));
    }
    // Every value is at least one character and one separator.
    let room = (text.len() as u64).div_ceil(2);
    samples
        .checked_mul(n_in + n_out)
        .filter(|&v| v <= room && v <= crate::limits::MAX_DATA_VALUES as u64)
        .ok_or_else(|| {
            at.err(format!(
                "the header promises {samples} samples of {n_in} inputs and {n_out} outputs, \
                 more values than the file's {} bytes can hold (or than tessera's maximum of {})",
                text.len(),
                crate::limits::MAX_DATA_VALUES
            ))
        })?;
    let (samples, n_in, n_out) = (samples as usize, n_in as usize, n_out as usize);
    let mut inputs = Vec::with_capacity(samples * n_in);
    let mut outputs = Vec::with_capacity(samples * n_out);
    for s in 0..samples {
        for (buf, count, what) in [
            (&mut inputs, n_in, "inputs"),
            (&mut outputs, n_out, "outputs"),
        ] {
            for _ in 0..count {
                let (line, tok) = tokens.next().ok_or_else(|| {
                    format_err(
                        file,
                        last_line,
                        format!(
                            "the file ends inside the {what} of sample {} of {samples}",
                            s + 1
                        ),
                    )
                })?;
                last_line = line;
                buf.push(At { file, line }.finite(tok, "value")?);
            }
        }
    }
    if let Some((line, tok)) = tokens.next() {
        return Err(format_err(
            file,
            line,
            format!(
                "unexpected `{}` after the {samples} samples the header promised",
                head(tok)
            ),
        ));
    }
    TrainData::new(n_in, n_out, inputs, outputs)
}

/// Reads a FANN `.data` file (at most [`MAX_FILE_BYTES`]).
pub fn read_data(path: impl AsRef<Path>) -> Result<TrainData> {
    let path = path.as_ref();
    parse_data(&read_text(path)?, &path.display().to_string())
}

/// The FANN `.data` text of `data`.
pub fn format_data(data: &TrainData) -> String {
    let mut t = format!("{} {} {}\n", data.len(), data.n_inputs(), data.n_outputs());
    for i in 0..data.len() {
        for row in [data.input(i), data.output(i)] {
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
