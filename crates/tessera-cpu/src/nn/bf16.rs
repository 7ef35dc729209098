//! Batch-1 inference with bf16 weights: half the bytes of f32 to stream per sample.
//!
//! At batch 1 a dense layer's forward is a matrix-vector product whose time is the
//! weights' bytes over the cache bandwidth (`gemv.rs`). Stored as bf16 (the top half
//! of an f32: 8 exponent bits, 7 mantissa bits, round to nearest even), the weights
//! are half the bytes. A bf16 becomes an f32 by a 16-bit shift, so no special
//! instruction is needed: the weights of input rows `2p` and `2p + 1` are packed in
//! one 32-bit word per output, the low half shifted up and the high half masked, and
//! both multiplied in f32 with f32 sums. Inputs, biases, sums and activations stay
//! f32; only the weights are rounded (relative error up to 2^-8 each), so outputs
//! agree with the f32 forward to about 1e-2 relative (the tests' bound) or better.

use pulp::{Arch, Simd, WithSimd};
use tessera_tensor::error::{Result, TesseraError};
use tessera_tensor::nn::Activation;
use tessera_tensor::nn::dense::DenseLayerRef;

use super::gemv::Offer;
use crate::dispatch::SimdLevel;

/// `x` rounded to the nearest bf16 (ties to even), as its 16 bits. `x` is finite.
pub fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// One layer: weights as bf16 pairs of input rows, `[inputs.div_ceil(2), outputs]`.
#[derive(Debug, Clone)]
struct Layer {
    inputs: usize,
    outputs: usize,
    pairs: Vec<u32>,
    bias: Vec<f32>,
    activation: Activation,
    steepness: f32,
}

/// A dense net for batch-1 inference on the CPU with bf16 weights (opt-in: the
/// f32 [`Model`](https://docs.rs/tessera-nn) is the default). Built from the layers
/// of a trained net; its outputs are within about 1e-2 relative of the f32 forward.
#[derive(Debug, Clone)]
pub struct Bf16Mlp {
    arch: Arch,
    layers: Vec<Layer>,
    /// Activations of the current and the next layer.
    buffers: [Vec<f32>; 2],
    sums: Vec<f32>,
    /// The far half's sums when a layer is split over two cores.
    far: Vec<f32>,
}

impl Bf16Mlp {
    /// Rounds `layers`' weights to bf16. Fails on an empty net, layers that do not
    /// chain, weight or bias lengths that do not match the shapes, non-finite
    /// parameters, or a softmax layer anywhere but last.
    pub fn new(layers: &[DenseLayerRef<'_, Vec<f32>>]) -> Result<Self> {
        Self::with_level(layers, SimdLevel::in_use())
    }

    /// Like [`Bf16Mlp::new`], pinned to SIMD `level`; also an error if this CPU lacks
    /// it.
    pub fn with_level(layers: &[DenseLayerRef<'_, Vec<f32>>], level: SimdLevel) -> Result<Self> {
        let arch = level.check_available()?.arch();
        if layers.is_empty() {
            return Err(TesseraError::ShapeMismatch {
                what: "bf16 net layers",
                got: 0,
                expected: 1,
            });
        }
        let mut out = Vec::with_capacity(layers.len());
        for (i, l) in layers.iter().enumerate() {
            if i > 0 && l.inputs != layers[i - 1].outputs {
                return Err(TesseraError::ShapeMismatch {
                    what: "bf16 net layer inputs",
                    got: l.inputs,
                    expected: layers[i - 1].outputs,
                });
            }
            tessera_tensor::nn::check_lens("bf16 net weights", &[l.w.len()], l.inputs * l.outputs)?;
            tessera_tensor::nn::check_lens("bf16 net biases", &[l.b.len()], l.outputs)?;
            tessera_tensor::error::check_finite("bf16 net weights", l.w)?;
            tessera_tensor::error::check_finite("bf16 net biases", l.b)?;
            if l.activation.is_rowwise() && i + 1 != layers.len() {
                return Err(TesseraError::InvalidArgument {
                    what: "softmax layer",
                    value: i as f64,
                    expected: "softmax only in the output layer",
                });
            }
            let mut pairs = vec![0u32; l.inputs.div_ceil(2) * l.outputs];
            for (p, row) in pairs.chunks_exact_mut(l.outputs).enumerate() {
                let low = &l.w[2 * p * l.outputs..][..l.outputs];
                let high = l.w.get((2 * p + 1) * l.outputs..(2 * p + 2) * l.outputs);
                for (o, word) in row.iter_mut().enumerate() {
                    let hi = high.map_or(0, |h| bf16_bits(h[o]));
                    *word = u32::from(bf16_bits(low[o])) | (u32::from(hi) << 16);
                }
            }
            out.push(Layer {
                inputs: l.inputs,
                outputs: l.outputs,
                pairs,
                bias: l.b.to_vec(),
                activation: l.activation,
                steepness: l.steepness,
            });
        }
        let widest = out
            .iter()
            .map(|l| l.outputs.max(l.inputs))
            .max()
            .unwrap_or(0);
        Ok(Self {
            arch,
            layers: out,
            buffers: [vec![0.0; widest + 1], vec![0.0; widest + 1]],
            sums: vec![0.0; widest],
            far: vec![0.0; widest],
        })
    }

    /// Inputs per sample.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Outputs per sample.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// The outputs for one sample `x` (finite, `inputs()` values).
    pub fn forward(&mut self, x: &[f32]) -> Result<&[f32]> {
        tessera_tensor::nn::check_lens("bf16 forward input", &[x.len()], self.inputs())?;
        tessera_tensor::error::check_finite("inputs", x)?;
        let _span = tracing::trace_span!("cpu_bf16_forward", layers = self.layers.len()).entered();
        let [current, next] = &mut self.buffers;
        current[..x.len()].copy_from_slice(x);
        for l in &self.layers {
            // An odd input count reads one zero past the inputs (its weight is 0).
            current[l.inputs] = 0.0;
            let z = &mut self.sums[..l.outputs];
            let x = &current[..l.inputs.div_ceil(2) * 2];
            if l.pairs.len() * 4 >= SPLIT_MIN_BYTES && rayon::current_num_threads() > 1 {
                // Two cores each stream half the pair rows from their own cache.
                let half = x.len() / 4 * 2;
                let (x_near, x_far) = x.split_at(half);
                let (p_near, p_far) = l.pairs.split_at(half / 2 * l.outputs);
                let far = &mut self.far[..l.outputs];
                let offer = Offer::post_bf16(self.arch, x_far, p_far, far);
                paired_gemv(self.arch, x_near, p_near, z);
                offer.finish();
                for (zj, f) in z.iter_mut().zip(&self.far[..l.outputs]) {
                    *zj += f;
                }
            } else {
                paired_gemv(self.arch, x, &l.pairs, z);
            }
            let y = &mut next[..l.outputs];
            let args = (
                &mut z[..],
                &mut y[..],
                &l.bias[..],
                l.activation,
                l.steepness,
            );
            self.arch
                .dispatch(super::activation::BiasActivationRows(args));
            std::mem::swap(current, next);
        }
        let out = &self.buffers[0][..self.outputs()];
        tessera_tensor::error::check_network_outputs(out)?;
        Ok(out)
    }
}

/// Packed weights at least this large are streamed by two cores (as the f32 GEMV
/// does from 256 KiB: the hand-over costs about a microsecond).
const SPLIT_MIN_BYTES: usize = 128 << 10;

/// `z = x W` over bf16 pair rows (`x` has two values per row of `pairs`).
pub(super) fn paired_gemv(arch: Arch, x: &[f32], pairs: &[u32], z: &mut [f32]) {
    arch.dispatch(PairedGemv { x, pairs, z });
}

/// `z = x W` with `W` as bf16 pairs of rows: panels of up to 4 vectors of outputs in
/// registers (8 sums) while the pair rows stream past, two FMAs per word.
struct PairedGemv<'a> {
    x: &'a [f32],
    pairs: &'a [u32],
    z: &'a mut [f32],
}

impl WithSimd for PairedGemv<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { x, pairs, z } = self;
        let n = z.len();
        let mut j = 0;
        j = paired_panels::<S, 4>(simd, x, pairs, z, j);
        j = paired_panels::<S, 2>(simd, x, pairs, z, j);
        j = paired_panels::<S, 1>(simd, x, pairs, z, j);
        if j < n {
            // Fewer columns than a vector: masked loads.
            let sixteen = simd.splat_u32s(16);
            let high = simd.splat_u32s(0xffff_0000);
            let mut acc = simd.splat_f32s(0.0);
            for (xs, row) in x.chunks_exact(2).zip(pairs.chunks_exact(n)) {
                let w = simd.partial_load_u32s(&row[j..]);
                let lo = simd.transmute_f32s_u32s(simd.wrapping_dyn_shl_u32s(w, sixteen));
                let hi = simd.transmute_f32s_u32s(simd.and_u32s(w, high));
                acc = simd.mul_add_e_f32s(simd.splat_f32s(xs[0]), lo, acc);
                acc = simd.mul_add_e_f32s(simd.splat_f32s(xs[1]), hi, acc);
            }
            simd.partial_store_f32s(&mut z[j..], acc);
        }
    }
}

/// Every whole panel of `P` vectors of outputs from `j0`; returns the first output
/// not done.
#[inline(always)]
fn paired_panels<S: Simd, const P: usize>(
    simd: S,
    x: &[f32],
    pairs: &[u32],
    z: &mut [f32],
    j0: usize,
) -> usize {
    let n = z.len();
    let width = P * S::F32_LANES;
    let sixteen = simd.splat_u32s(16);
    let high = simd.splat_u32s(0xffff_0000);
    let mut j = j0;
    while j + width <= n {
        // Separate sums for the low and high rows of each pair: two independent FMA
        // chains per vector, so the FMA latency is covered.
        let mut acc = [[simd.splat_f32s(0.0); P]; 2];
        for (xs, row) in x.chunks_exact(2).zip(pairs.chunks_exact(n)) {
            let (x0, x1) = (simd.splat_f32s(xs[0]), simd.splat_f32s(xs[1]));
            let (words, _) = S::as_simd_u32s(&row[j..j + width]);
            let [acc_lo, acc_hi] = &mut acc;
            for ((lo_sum, hi_sum), &w) in acc_lo.iter_mut().zip(acc_hi.iter_mut()).zip(words) {
                let lo = simd.transmute_f32s_u32s(simd.wrapping_dyn_shl_u32s(w, sixteen));
                let hi = simd.transmute_f32s_u32s(simd.and_u32s(w, high));
                *lo_sum = simd.mul_add_e_f32s(x0, lo, *lo_sum);
                *hi_sum = simd.mul_add_e_f32s(x1, hi, *hi_sum);
            }
        }
        let [acc_lo, acc_hi] = acc;
        let acc: [S::f32s; P] = std::array::from_fn(|v| simd.add_f32s(acc_lo[v], acc_hi[v]));
        let (out, _) = S::as_mut_simd_f32s(&mut z[j..j + width]);
        out.copy_from_slice(&acc);
        j += width;
    }
    j
}
