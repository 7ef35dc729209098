//! The sampling contract every simulator backend implements, and its inputs.

use bytemuck::{Pod, Zeroable};

use super::scm::ScmBatch;
use crate::acquisition::MAX_MAGNITUDE;
use crate::error::{Result, TesseraError};

/// What an intervention does to one variable of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum InterventionKind {
    /// No intervention: the variable follows its mechanism.
    Observe = 0,
    /// A perfect intervention `do(x = value)`: the incoming edges are cut and the
    /// variable is clamped to `value`.
    Do = 1,
    /// A shift intervention: `value` is added to the variable's mechanism.
    Shift = 2,
}

/// One variable's intervention in one sample. Mirrors `Intervention` in
/// `shaders/sim/sample.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default, Pod, Zeroable)]
pub struct Intervention {
    /// An [`InterventionKind`] as its code (0 observe, 1 do, 2 shift).
    pub kind: u32,
    /// The clamped value (do) or the shift (shift); ignored when observing.
    pub value: f32,
}

impl Intervention {
    /// No intervention.
    pub const OBSERVE: Self = Self {
        kind: 0,
        value: 0.0,
    };

    /// `do(x = value)`.
    pub fn clamp(value: f32) -> Self {
        Self {
            kind: InterventionKind::Do as u32,
            value,
        }
    }

    /// `x += delta` on the variable's mechanism.
    pub fn shift(delta: f32) -> Self {
        Self {
            kind: InterventionKind::Shift as u32,
            value: delta,
        }
    }
}

/// The interventions of one sampling call.
#[derive(Debug, Clone, Copy)]
pub enum Interventions<'a> {
    /// Observational samples.
    None,
    /// `[B, n_vars]`: the same interventions for every row of an environment (the
    /// closed loop's case: one chosen intervention per environment and step).
    PerEnv(&'a [Intervention]),
    /// `[B, rows, n_vars]`: interventions chosen per row.
    PerRow(&'a [Intervention]),
}

impl Interventions<'_> {
    /// The code the kernels use: 0 none, 1 per environment, 2 per row.
    pub fn mode(&self) -> u32 {
        match self {
            Interventions::None => 0,
            Interventions::PerEnv(_) => 1,
            Interventions::PerRow(_) => 2,
        }
    }

    /// The intervention array (empty for [`Interventions::None`]).
    pub fn as_slice(&self) -> &[Intervention] {
        match self {
            Interventions::None => &[],
            Interventions::PerEnv(s) | Interventions::PerRow(s) => s,
        }
    }

    /// The intervention on variable `v` of row `r` (of `rows`) in environment `env`,
    /// for `d` variables.
    pub fn at(&self, env: usize, r: usize, rows: usize, d: usize, v: usize) -> Intervention {
        match self {
            Interventions::None => Intervention::OBSERVE,
            Interventions::PerEnv(ivs) => ivs[env * d + v],
            Interventions::PerRow(ivs) => ivs[(env * rows + r) * d + v],
        }
    }

    /// Checks the shape, the kinds and the values (finite, within [`MAX_MAGNITUDE`]).
    pub fn validate(&self, scm: &ScmBatch, rows: usize) -> Result<()> {
        let (b, d) = (scm.batch(), scm.n_vars());
        let expected = match self {
            Interventions::None => return Ok(()),
            Interventions::PerEnv(_) => b * d,
            Interventions::PerRow(_) => b * rows * d,
        };
        let s = self.as_slice();
        if s.len() != expected {
            return Err(TesseraError::ShapeMismatch {
                what: "interventions",
                got: s.len(),
                expected,
            });
        }
        if let Some(i) = s.iter().position(|iv| iv.kind > 2) {
            return Err(TesseraError::InvalidArgument {
                what: "intervention kind",
                value: s[i].kind as f64,
                expected: "0 (observe), 1 (do) or 2 (shift)",
            });
        }
        if let Some(index) = s
            .iter()
            .position(|iv| !(iv.value.is_finite() && iv.value.abs() <= MAX_MAGNITUDE))
        {
            let value = s[index].value;
            return Err(if value.is_finite() {
                TesseraError::TooLarge {
                    what: "intervention values",
                    index,
                    value,
                    limit: MAX_MAGNITUDE,
                }
            } else {
                TesseraError::NonFinite {
                    what: "intervention values",
                    index,
                    value,
                }
            });
        }
        Ok(())
    }
}

/// Purpose tag of the sampling noise stream (other streams: the SCM's generation).
const SAMPLE_NOISE: u32 = 0x5A4D_0001;

/// The Philox key of the sampling noise of a batch generated from `seed`.
pub fn noise_key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32 ^ SAMPLE_NOISE]
}

/// Checks a sampling call's shape: `rows >= 1`, the output within the batch's memory
/// limit, and the interventions.
pub fn validate_sample(
    scm: &ScmBatch,
    rows: usize,
    interventions: &Interventions<'_>,
) -> Result<()> {
    if rows == 0 || u32::try_from(rows).is_err() {
        return Err(TesseraError::InvalidArgument {
            what: "rows",
            value: rows as f64,
            expected: "1..2^32 rows per environment",
        });
    }
    let bytes = (scm.batch() as u64)
        .checked_mul(rows as u64)
        .and_then(|v| v.checked_mul(scm.n_vars() as u64 * 4));
    match bytes {
        Some(b) if b <= scm.config().memory_limit => {}
        _ => {
            return Err(TesseraError::DeviceLimit {
                what: "bytes of the samples (B x rows x n_vars x 4)",
                needed: bytes.unwrap_or(u64::MAX),
                limit: scm.config().memory_limit,
            });
        }
    }
    interventions.validate(scm, rows)
}

/// The error for samples that overflowed f32 (a model whose effects grow along long
/// chains), if any: samples are never returned with an infinity or NaN in them.
pub fn check_samples(samples: &[f32]) -> Result<()> {
    match samples.iter().find(|v| !v.is_finite()) {
        Some(&value) => Err(TesseraError::Diverged {
            what: "simulated samples (the model's effects overflow f32 along its chains)",
            step: 0,
            value: value.into(),
        }),
        None => Ok(()),
    }
}

/// A backend that samples from an [`ScmBatch`].
///
/// Sample `r` of draw `draw` in environment `e` is, in topological order
/// (`i = 0..n_vars`, variable `v = order[i]`):
/// `x_v = value` under `do`, else
/// `x_v = bias_i + sum_{j<i} W[i, j] x_{order[j]} + noise_i z + shift`, where `z` is
/// the standard normal of position `i` from the Philox block with counter
/// `[i / 4, r, e, draw]` and key [`noise_key`]`(seed)` ([`crate::rng::normals4`]).
pub trait SimBackend {
    /// The models being sampled.
    fn scm(&self) -> &ScmBatch;

    /// `rows` samples per environment for draw number `draw` (a draw is a pure
    /// function of the seed and its number), `[B, rows, n_vars]` in variable order.
    /// Fails, with nothing changed, on bad interventions, zero rows or an output
    /// beyond the memory limit, and with `Diverged` if a sample overflows f32.
    fn sample(
        &mut self,
        draw: u32,
        rows: usize,
        interventions: &Interventions<'_>,
    ) -> Result<Vec<f32>>;
}
