//! The neural-kernel parity suite: every kernel of [`NnKernels`] run on a backend and
//! on the f64 [`ReferenceNn`] with the same inputs, over random shapes (1, tile
//! multiples and their neighbours included), every activation, loss and optimizer.
//! Instantiated per backend with [`nn_parity_suite!`](crate::nn_parity_suite).

use super::ReferenceNn;
use super::parity::Rng;
use crate::error::TesseraError;
use crate::nn::cascade::{
    CandidateEpoch, CandidateUnit, FANN_CANDIDATE_ACTIVATIONS, FANN_CANDIDATE_STEEPNESSES,
    clamp_candidate_sum,
};
use crate::nn::shortcut::{ShortcutPass, ShortcutUnit};
use crate::nn::{
    Activation, AdamParams, Derivative, Gemm, Loss, NnKernels, QuickpropParams, RpropParams,
    SarpropParams, SgdParams,
};

/// Relative tolerance of the neural kernels (the spec's 1e-4).
pub const NN_REL_TOL: f64 = 1e-4;

fn random(rng: &mut Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.range(lo, hi)).collect()
}

/// Checks `got` against `want` with per-element error bounds `bound` (the magnitude
/// the result's rounding scales with).
fn assert_close(what: &str, got: &[f32], want: &[f32], bound: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i] as f64).abs();
        let tol = NN_REL_TOL * bound[i].max(want[i].abs() as f64) + 1e-6;
        assert!(
            err <= tol,
            "{what}[{i}]: got {}, expected {} (tolerance {tol:e})",
            got[i],
            want[i]
        );
    }
}

fn plain<K: NnKernels>(k: &K, t: &K::Tensor) -> Vec<f32> {
    k.read(t).unwrap()
}

/// Runs one GEMM on both and compares; the bound is `|alpha| sum |a||b| + |beta c|`.
fn check_gemm<K: NnKernels>(k: &K, g: Gemm, rng: &mut Rng) {
    let r = ReferenceNn;
    let (a, b, c) = (
        random(rng, g.m * g.k, -1.0, 1.0),
        random(rng, g.k * g.n, -1.0, 1.0),
        random(rng, g.m * g.n, -1.0, 1.0),
    );
    let (ka, kb, mut kc) = (
        k.tensor(&a).unwrap(),
        k.tensor(&b).unwrap(),
        k.tensor(&c).unwrap(),
    );
    k.gemm(g, &ka, &kb, &mut kc).unwrap();
    let (ra, rb, mut rc) = (
        r.tensor(&a).unwrap(),
        r.tensor(&b).unwrap(),
        r.tensor(&c).unwrap(),
    );
    r.gemm(g, &ra, &rb, &mut rc).unwrap();
    let abs_a: Vec<f32> = a.iter().map(|v| v.abs()).collect();
    let abs_b: Vec<f32> = b.iter().map(|v| v.abs()).collect();
    let mut bound = r.tensor(&vec![0.0; g.m * g.n]).unwrap();
    r.gemm(
        Gemm {
            alpha: g.alpha.abs(),
            beta: 0.0,
            ..g
        },
        &r.tensor(&abs_a).unwrap(),
        &r.tensor(&abs_b).unwrap(),
        &mut bound,
    )
    .unwrap();
    let bound: Vec<f64> = bound
        .iter()
        .zip(&c)
        .map(|(s, c)| s + (g.beta as f64 * *c as f64).abs())
        .collect();
    assert_close(
        &format!("{g:?}"),
        &plain(k, &kc),
        &r.read(&rc).unwrap(),
        &bound,
    );
}

/// The three training layouts and the fourth, over edge and random shapes.
pub fn gemm_layouts<K: NnKernels>(k: &K) {
    let mut rng = Rng::new(17);
    let edge = [1, 2, 3, 4, 5, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129];
    let mut shapes: Vec<(usize, usize, usize)> = edge.iter().map(|&s| (s, s, s)).collect();
    shapes.extend([
        (1, 129, 63),
        (1, 10, 784),
        // Batch 1 (the GEMV path): every panel width, overlapping and masked tails.
        (1, 7, 50),
        (1, 200, 37),
        (1, 250, 3),
        (1, 1000, 20),
        (1, 128, 784),
        (65, 1, 33),
        (7, 130, 1),
        (128, 64, 256),
        (3, 200, 5),
    ]);
    for _ in 0..12 {
        let d = |rng: &mut Rng| 1 + (rng.next_u64() % 150) as usize;
        shapes.push((d(&mut rng), d(&mut rng), d(&mut rng)));
    }
    for (m, n, kd) in shapes {
        for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
            let (alpha, beta) = if rng.unit() < 0.5 {
                (1.0, 0.0)
            } else {
                (rng.range(-2.0, 2.0), rng.range(-1.0, 1.0))
            };
            check_gemm(
                k,
                Gemm {
                    m,
                    n,
                    k: kd,
                    trans_a,
                    trans_b,
                    alpha,
                    beta,
                },
                &mut rng,
            );
        }
    }
}

/// Products large enough for a backend's blocked path (the CPU's AVX-512 kernel starts
/// at 2^22 multiply-adds and 128 columns): tails in every dimension, more than one block of `k`, of
/// columns and of rows, each layout, and `beta = 0` over a `C` full of NaNs.
pub fn gemm_large<K: NnKernels>(k: &K) {
    let mut rng = Rng::new(29);
    let shapes = [
        // (m, n, k): a 513-deep product spans two of the CPU's blocks of 512.
        (257, 300, 513, false, false),
        (161, 1100, 97, false, true),
        (1400, 130, 100, true, false),
        (130, 131, 1000, true, true),
        // Few rows times a transposed B (the CPU computes `Cᵀ = Bᵀ Aᵀ`).
        (100, 700, 300, false, true),
        (40, 1300, 200, true, true),
        (64, 300, 1100, false, false),
    ];
    for (m, n, kd, trans_a, trans_b) in shapes {
        for (alpha, beta) in [(1.0, 0.0), (-0.75, 0.5)] {
            let g = Gemm {
                m,
                n,
                k: kd,
                trans_a,
                trans_b,
                alpha,
                beta,
            };
            check_gemm(k, g, &mut rng);
        }
    }
    let g = Gemm::new(300, 257, 260);
    let a = random(&mut rng, g.m * g.k, -1.0, 1.0);
    let b = random(&mut rng, g.k * g.n, -1.0, 1.0);
    let (ka, kb) = (k.tensor(&a).unwrap(), k.tensor(&b).unwrap());
    let mut kc = k.tensor(&vec![f32::NAN; g.m * g.n]).unwrap();
    k.gemm(g, &ka, &kb, &mut kc).unwrap();
    assert!(
        plain(k, &kc).iter().all(|v| v.is_finite()),
        "beta = 0 must overwrite C"
    );
}

/// Forward and backward of every activation on random sums.
pub fn activations<K: NnKernels>(k: &K) {
    let r = ReferenceNn;
    let mut rng = Rng::new(23);
    for a in Activation::ALL {
        for (rows, cols) in [(1, 1), (3, 7), (17, 65), (2, 300)] {
            let s = if a.is_rowwise() {
                1.0
            } else {
                rng.range(0.3, 1.5)
            };
            let z = random(&mut rng, rows * cols, -3.0, 3.0);
            let bias = random(&mut rng, cols, -0.5, 0.5);
            let dy = random(&mut rng, rows * cols, -1.0, 1.0);
            let (mut kz, kb, mut ky) = (
                k.tensor(&z).unwrap(),
                k.tensor(&bias).unwrap(),
                k.zeros(rows * cols).unwrap(),
            );
            k.bias_activation(&mut kz, &kb, &mut ky, rows, cols, a, s)
                .unwrap();
            let (mut rz, rb, mut ry) = (
                r.tensor(&z).unwrap(),
                r.tensor(&bias).unwrap(),
                r.zeros(rows * cols).unwrap(),
            );
            r.bias_activation(&mut rz, &rb, &mut ry, rows, cols, a, s)
                .unwrap();
            let ones = vec![1.0; rows * cols];
            assert_close(
                &format!("{a:?} z"),
                &plain(k, &kz),
                &r.read(&rz).unwrap(),
                &ones,
            );
            // Thresholds and clamps flip at their edges: compare away from them.
            let ry32 = r.read(&ry).unwrap();
            let ky32 = plain(k, &ky);
            let near_kink = |i: usize| {
                let u = s as f64 * rz[i];
                matches!(
                    a,
                    Activation::Threshold
                        | Activation::ThresholdSymmetric
                        | Activation::Relu
                        | Activation::LeakyRelu
                ) && u.abs() < 1e-5
                    || matches!(
                        a,
                        Activation::LinearPiece | Activation::LinearPieceSymmetric
                    ) && ((u.abs() - 1.0).abs() < 1e-5 || u.abs() < 1e-5)
            };
            let keep: Vec<usize> = (0..rows * cols).filter(|&i| !near_kink(i)).collect();
            let pick = |v: &[f32]| keep.iter().map(|&i| v[i]).collect::<Vec<_>>();
            assert_close(
                &format!("{a:?} y ({rows}x{cols})"),
                &pick(&ky32),
                &pick(&ry32),
                &vec![1.0; keep.len()],
            );
            let (kdy, rdy) = (k.tensor(&dy).unwrap(), r.tensor(&dy).unwrap());
            for derivative in [Derivative::Exact, Derivative::Fann, Derivative::FannCompat] {
                let mut kdz = k.zeros(rows * cols).unwrap();
                let result =
                    k.activation_backward(&kz, &ky, &kdy, &mut kdz, cols, a, s, derivative);
                if !a.has_gradient() {
                    assert!(
                        matches!(result, Err(TesseraError::InvalidArgument { .. })),
                        "{a:?} backward must refuse"
                    );
                    continue;
                }
                result.unwrap();
                let mut rdz = r.zeros(rows * cols).unwrap();
                r.activation_backward(&rz, &ry, &rdy, &mut rdz, cols, a, s, derivative)
                    .unwrap();
                // FANN's clip points are kinks too.
                let near_clip = |i: usize| {
                    derivative != Derivative::Exact
                        && [0.01, 0.99, -0.98, 0.98]
                            .iter()
                            .any(|c| (ry[i] - c).abs() < 1e-5)
                };
                let keep: Vec<usize> = keep.iter().copied().filter(|&i| !near_clip(i)).collect();
                let pick = |v: &[f32]| keep.iter().map(|&i| v[i]).collect::<Vec<_>>();
                assert_close(
                    &format!("{a:?} dz ({derivative:?})"),
                    &pick(&plain(k, &kdz)),
                    &pick(&r.read(&rdz).unwrap()),
                    &vec![1.0; keep.len()],
                );
            }
        }
    }
}

/// Output gradients and error metrics of every loss, symmetric outputs included.
pub fn losses<K: NnKernels>(k: &K) {
    let r = ReferenceNn;
    let mut rng = Rng::new(29);
    for loss in [
        Loss::MeanSquared,
        Loss::Fann { tanh: false },
        Loss::Fann { tanh: true },
        Loss::SoftmaxCrossEntropy,
    ] {
        for output in [
            Activation::Sigmoid,
            Activation::SigmoidSymmetric,
            Activation::Linear,
        ] {
            let len = 1 + (rng.next_u64() % 300) as usize;
            let y = random(&mut rng, len, -0.99, 0.99);
            let mut t = random(&mut rng, len, -1.0, 1.0);
            t[0] = y[0]; // an exact hit
            let scale = rng.range(0.1, 2.0);
            let (ky, kt, mut kg) = (
                k.tensor(&y).unwrap(),
                k.tensor(&t).unwrap(),
                k.zeros(len).unwrap(),
            );
            k.output_gradient(&ky, &kt, &mut kg, loss, output, 0.7, scale)
                .unwrap();
            let (ry, rt, mut rg) = (
                r.tensor(&y).unwrap(),
                r.tensor(&t).unwrap(),
                r.zeros(len).unwrap(),
            );
            r.output_gradient(&ry, &rt, &mut rg, loss, output, 0.7, scale)
                .unwrap();
            assert_close(
                &format!("{loss:?} {output:?} gradient"),
                &plain(k, &kg),
                &r.read(&rg).unwrap(),
                &vec![1.0; len],
            );
            let (ksse, kfail) = k.error_metrics(&ky, &kt, loss, output, 0.35).unwrap();
            let (rsse, rfail) = r.error_metrics(&ry, &rt, loss, output, 0.35).unwrap();
            assert!(
                (ksse - rsse).abs() <= NN_REL_TOL * rsse + 1e-6,
                "{loss:?} sse {ksse} vs {rsse}"
            );
            assert!(
                kfail.abs_diff(rfail) <= 1,
                "{loss:?} bit fails {kfail} vs {rfail}"
            );
            // Accumulated twice without a read, then read once: twice the sums, and
            // the accumulator is left at zero.
            let mut acc = k.metrics().unwrap();
            for _ in 0..2 {
                k.accumulate_error_metrics(&ky, &kt, loss, output, 0.35, &mut acc)
                    .unwrap();
            }
            let (sse2, fail2) = k.take_metrics(&mut acc).unwrap();
            assert!(
                (sse2 - 2.0 * ksse).abs() <= NN_REL_TOL * ksse + 1e-6,
                "{loss:?} accumulated sse {sse2} vs 2 x {ksse}"
            );
            assert_eq!(fail2, 2 * kfail, "{loss:?} accumulated bit fails");
            assert_eq!(k.take_metrics(&mut acc).unwrap(), (0.0, 0));
        }
    }
}

/// One layer's weights and biases (or their gradients) on the host.
type LayerParams = (Vec<f32>, Vec<f32>);

/// One net's tensors on a backend: weights, biases and gradient buffers per layer.
struct DenseNet<K: NnKernels> {
    w: Vec<K::Tensor>,
    b: Vec<K::Tensor>,
    gw: Vec<K::Tensor>,
    gb: Vec<K::Tensor>,
    work: [Vec<K::Tensor>; 4],
}

impl<K: NnKernels> DenseNet<K> {
    fn new(
        k: &K,
        sizes: &[usize],
        rows: usize,
        params: &[LayerParams],
        grads: &[LayerParams],
    ) -> Self {
        let t = |v: &Vec<f32>| k.tensor(v).unwrap();
        let work = || {
            sizes[1..]
                .iter()
                .map(|&o| k.zeros(rows * o).unwrap())
                .collect()
        };
        Self {
            w: params.iter().map(|(w, _)| t(w)).collect(),
            b: params.iter().map(|(_, b)| t(b)).collect(),
            gw: grads.iter().map(|(w, _)| t(w)).collect(),
            gb: grads.iter().map(|(_, b)| t(b)).collect(),
            work: [work(), work(), work(), work()],
        }
    }

    /// Runs [`NnKernels::dense_backprop`]; returns the gradients read back and the
    /// error sums (when measured).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        k: &K,
        p: crate::nn::dense::DenseBackprop,
        sizes: &[usize],
        acts: &[(Activation, f32)],
        x: &K::Tensor,
        t: &K::Tensor,
        measure: bool,
    ) -> crate::error::Result<(Vec<LayerParams>, (f64, u64))> {
        use crate::nn::dense::{DenseGrads, DenseLayerRef, DenseWork};
        let layers: Vec<DenseLayerRef<'_, K::Tensor>> = (0..acts.len())
            .map(|l| DenseLayerRef {
                w: &self.w[l],
                b: &self.b[l],
                inputs: sizes[l],
                outputs: sizes[l + 1],
                activation: acts[l].0,
                steepness: acts[l].1,
            })
            .collect();
        let mut grads: Vec<DenseGrads<'_, K::Tensor>> = self
            .gw
            .iter_mut()
            .zip(&mut self.gb)
            .map(|(w, b)| DenseGrads { w, b })
            .collect();
        let [z, a, dz, da] = &mut self.work;
        let work = DenseWork { z, a, dz, da };
        let mut acc = k.metrics()?;
        k.dense_backprop(
            p,
            &layers,
            x,
            t,
            work,
            &mut grads,
            measure.then_some(&mut acc),
        )?;
        let sums = k.take_metrics(&mut acc)?;
        let read = self
            .gw
            .iter()
            .zip(&self.gb)
            .map(|(w, b)| (k.read(w).unwrap(), k.read(b).unwrap()))
            .collect();
        Ok((read, sums))
    }
}

/// Forward and backward of whole nets ([`NnKernels::dense_backprop`]) against the
/// f64 composition of per-layer kernels: random depths, widths around the CPU's
/// register tiles (1, 7, 8, 9, 16, 17, ...), batches around its 128-row blocks and
/// beyond eight of them, every loss and derivative, with and without accumulation,
/// and nets too large for the CPU's fused pass.
pub fn dense_backprop<K: NnKernels>(k: &K) {
    use crate::nn::dense::DenseBackprop;
    let r = ReferenceNn;
    let mut rng = Rng::new(43);
    let widths = [1, 2, 3, 7, 8, 9, 16, 17, 19, 32, 33];
    let hidden = [
        Activation::SigmoidSymmetric,
        Activation::Sigmoid,
        Activation::Linear,
        Activation::Elliot,
        Activation::Gaussian,
    ];
    let rows_cases = [1, 5, 127, 128, 129, 300, 1100];
    for case in 0..28 {
        let rows = rows_cases[case % rows_cases.len()];
        let sizes: Vec<usize> = if case == 27 {
            // Past the CPU's fused limits: the per-layer path.
            vec![300, 70, 4]
        } else {
            (0..=1 + case % 3)
                .map(|_| widths[(rng.next_u64() % widths.len() as u64) as usize])
                .collect()
        };
        let depth = sizes.len() - 1;
        let (loss, output) = match case % 4 {
            0 => (Loss::MeanSquared, Activation::Linear),
            1 => (Loss::Fann { tanh: false }, Activation::Sigmoid),
            2 => (Loss::Fann { tanh: true }, Activation::SigmoidSymmetric),
            _ => (Loss::SoftmaxCrossEntropy, Activation::Softmax),
        };
        let acts: Vec<(Activation, f32)> = (0..depth)
            .map(|l| {
                let a = if l + 1 == depth {
                    output
                } else {
                    hidden[(rng.next_u64() % hidden.len() as u64) as usize]
                };
                (a, rng.range(0.3, 1.2))
            })
            .collect();
        let derivative = [Derivative::Exact, Derivative::Fann, Derivative::FannCompat][case % 3];
        let p = DenseBackprop {
            rows,
            loss,
            derivative,
            scale: if case % 3 == 0 {
                1.0 / rows as f32
            } else {
                1.0
            },
            accumulate: case % 5 == 1,
            bit_fail_limit: 0.35,
        };
        let params: Vec<(Vec<f32>, Vec<f32>)> = sizes
            .windows(2)
            .map(|w| {
                (
                    random(&mut rng, w[0] * w[1], -0.8, 0.8),
                    random(&mut rng, w[1], -0.3, 0.3),
                )
            })
            .collect();
        let grads0: Vec<(Vec<f32>, Vec<f32>)> = sizes
            .windows(2)
            .map(|w| {
                (
                    random(&mut rng, w[0] * w[1], -1.0, 1.0),
                    random(&mut rng, w[1], -1.0, 1.0),
                )
            })
            .collect();
        let x = random(&mut rng, rows * sizes[0], -1.0, 1.0);
        let n_out = sizes[depth];
        let t: Vec<f32> = if loss == Loss::SoftmaxCrossEntropy {
            (0..rows)
                .flat_map(|i| (0..n_out).map(move |o| f32::from(o == i % n_out)))
                .collect()
        } else {
            random(&mut rng, rows * n_out, -0.9, 0.9)
        };
        let measure = case % 7 != 3;
        let mut kn = DenseNet::new(k, &sizes, rows, &params, &grads0);
        let (kx, kt) = (k.tensor(&x).unwrap(), k.tensor(&t).unwrap());
        let (got, (ksse, kfail)) = kn.run(k, p, &sizes, &acts, &kx, &kt, measure).unwrap();
        let mut rn = DenseNet::new(&r, &sizes, rows, &params, &grads0);
        let (rx, rt) = (r.tensor(&x).unwrap(), r.tensor(&t).unwrap());
        let (want, (rsse, rfail)) = rn.run(&r, p, &sizes, &acts, &rx, &rt, measure).unwrap();
        let what = format!("dense_backprop {sizes:?} x {rows} {loss:?} {derivative:?}");
        for (l, ((gw, gb), (ww, wb))) in got.iter().zip(&want).enumerate() {
            // Each gradient is a sum over the rows: its rounding scales with the
            // tensor's largest entry and the rows summed.
            let scale = |v: &[f32]| v.iter().fold(1e-3f64, |m, x| m.max(x.abs() as f64));
            let bound = 10.0 * scale(ww).max(scale(wb));
            assert_close(
                &format!("{what} layer {l} w"),
                gw,
                ww,
                &vec![bound; gw.len()],
            );
            assert_close(
                &format!("{what} layer {l} b"),
                gb,
                wb,
                &vec![bound; gb.len()],
            );
        }
        if measure {
            assert!(
                (ksse - rsse).abs() <= 1e-3 * rsse + 1e-5,
                "{what}: sse {ksse} vs {rsse}"
            );
            assert!(
                kfail.abs_diff(rfail) <= 1 + rfail / 100,
                "{what}: bit fails {kfail} vs {rfail}"
            );
        } else {
            assert_eq!((ksse, kfail), (0.0, 0), "{what}: nothing measured");
        }
    }
}

/// A malformed [`NnKernels::dense_backprop`] call (a target of the wrong length,
/// layers that do not chain, a loss that does not fit) is a typed error that leaves
/// the gradients as they were.
pub fn dense_backprop_errors<K: NnKernels>(k: &K) {
    use crate::nn::dense::DenseBackprop;
    let mut rng = Rng::new(47);
    let sizes = [5, 9, 3];
    let rows = 40;
    let params: Vec<(Vec<f32>, Vec<f32>)> = sizes
        .windows(2)
        .map(|w| {
            (
                random(&mut rng, w[0] * w[1], -1.0, 1.0),
                random(&mut rng, w[1], -1.0, 1.0),
            )
        })
        .collect();
    let grads0 = params.clone();
    let acts = [
        (Activation::SigmoidSymmetric, 0.5),
        (Activation::Sigmoid, 0.5),
    ];
    let p = DenseBackprop {
        rows,
        loss: Loss::Fann { tanh: true },
        derivative: Derivative::Fann,
        scale: 1.0,
        accumulate: false,
        bit_fail_limit: 0.35,
    };
    let x = k.tensor(&random(&mut rng, rows * 5, -1.0, 1.0)).unwrap();
    let short = k.tensor(&random(&mut rng, rows * 3 - 1, 0.0, 1.0)).unwrap();
    let t = k.tensor(&random(&mut rng, rows * 3, 0.0, 1.0)).unwrap();
    let unchanged = |net: &DenseNet<K>| {
        for (l, (w, b)) in grads0.iter().enumerate() {
            assert_eq!(
                &k.read(&net.gw[l]).unwrap(),
                w,
                "weight gradient {l} written"
            );
            assert_eq!(&k.read(&net.gb[l]).unwrap(), b, "bias gradient {l} written");
        }
    };
    let mut net = DenseNet::new(k, &sizes, rows, &params, &grads0);
    let err = net.run(k, p, &sizes, &acts, &x, &short, true).unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    unchanged(&net);
    let softmax_loss = DenseBackprop {
        loss: Loss::SoftmaxCrossEntropy,
        ..p
    };
    let err = net
        .run(k, softmax_loss, &sizes, &acts, &x, &t, true)
        .unwrap_err();
    assert!(matches!(err, TesseraError::InvalidArgument { .. }), "{err}");
    unchanged(&net);
    let err = net.run(k, p, &[5, 8, 3], &acts, &x, &t, true).unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    unchanged(&net);
}

/// Bias gradients: column sums with and without accumulation.
pub fn column_sums<K: NnKernels>(k: &K) {
    let r = ReferenceNn;
    let mut rng = Rng::new(31);
    for (rows, cols) in [(1, 1), (1, 70), (256, 3), (33, 129), (1000, 10)] {
        for beta in [0.0, 1.0] {
            let m = random(&mut rng, rows * cols, -1.0, 1.0);
            let out = random(&mut rng, cols, -1.0, 1.0);
            let (km, mut ko) = (k.tensor(&m).unwrap(), k.tensor(&out).unwrap());
            k.column_sums(&km, &mut ko, rows, cols, beta).unwrap();
            let (rm, mut ro) = (r.tensor(&m).unwrap(), r.tensor(&out).unwrap());
            r.column_sums(&rm, &mut ro, rows, cols, beta).unwrap();
            assert_close(
                "column_sums",
                &plain(k, &ko),
                &r.read(&ro).unwrap(),
                &vec![rows as f64; cols],
            );
        }
    }
}

/// Five steps of every optimizer from the same start.
pub fn optimizers<K: NnKernels>(k: &K) {
    let r = ReferenceNn;
    let mut rng = Rng::new(37);
    let len = 517;
    let w0 = random(&mut rng, len, -1.0, 1.0);
    let grads: Vec<Vec<f32>> = (0..5).map(|_| random(&mut rng, len, -1.0, 1.0)).collect();
    let ones = vec![1.0; len];
    for momentum in [0.0, 0.9] {
        let p = SgdParams {
            learning_rate: 0.3,
            momentum,
            weight_decay: 0.01,
        };
        let (mut kw, mut kv) = (k.tensor(&w0).unwrap(), k.zeros(len).unwrap());
        let (mut rw, mut rv) = (r.tensor(&w0).unwrap(), r.zeros(len).unwrap());
        for g in &grads {
            k.sgd_update(&mut kw, &k.tensor(g).unwrap(), &mut kv, p)
                .unwrap();
            r.sgd_update(&mut rw, &r.tensor(g).unwrap(), &mut rv, p)
                .unwrap();
        }
        assert_close("sgd", &plain(k, &kw), &r.read(&rw).unwrap(), &ones);
    }
    {
        let p = RpropParams::default();
        let (mut kw, mut kp, mut ks) = (
            k.tensor(&w0).unwrap(),
            k.zeros(len).unwrap(),
            k.tensor(&vec![0.1; len]).unwrap(),
        );
        let (mut rw, mut rp, mut rs) = (
            r.tensor(&w0).unwrap(),
            r.zeros(len).unwrap(),
            r.tensor(&vec![0.1; len]).unwrap(),
        );
        for g in &grads {
            k.rprop_update(&mut kw, &k.tensor(g).unwrap(), &mut kp, &mut ks, p)
                .unwrap();
            r.rprop_update(&mut rw, &r.tensor(g).unwrap(), &mut rp, &mut rs, p)
                .unwrap();
        }
        assert_close(
            "rprop weights",
            &plain(k, &kw),
            &r.read(&rw).unwrap(),
            &ones,
        );
        assert_close("rprop steps", &plain(k, &ks), &r.read(&rs).unwrap(), &ones);
    }
    {
        // FANN's QUICKPROP divides by slope differences: three steps keep the f32 and
        // f64 trajectories comparable.
        let p = QuickpropParams {
            epsilon: 0.7 / 10.0,
            decay: -0.0001,
            mu: 1.75,
        };
        let (mut kw, mut ks, mut kp) = (
            k.tensor(&w0).unwrap(),
            k.zeros(len).unwrap(),
            k.zeros(len).unwrap(),
        );
        let (mut rw, mut rs, mut rp) = (
            r.tensor(&w0).unwrap(),
            r.zeros(len).unwrap(),
            r.zeros(len).unwrap(),
        );
        for g in &grads[..3] {
            k.quickprop_update(&mut kw, &k.tensor(g).unwrap(), &mut ks, &mut kp, p)
                .unwrap();
            r.quickprop_update(&mut rw, &r.tensor(g).unwrap(), &mut rs, &mut rp, p)
                .unwrap();
        }
        assert_close(
            "quickprop weights",
            &plain(k, &kw),
            &r.read(&rw).unwrap(),
            &ones,
        );
    }
    // SARPROP from FANN's zero start: the first step takes the zero-product branch,
    // later ones grow, or flip and shrink, with noise below the threshold (every step
    // of the first run, none of the second).
    for step_threshold in [10.0, 0.0] {
        let (mut kw, mut kp, mut ks) = (
            k.tensor(&w0).unwrap(),
            k.zeros(len).unwrap(),
            k.zeros(len).unwrap(),
        );
        let (mut rw, mut rp, mut rs) = (
            r.tensor(&w0).unwrap(),
            r.zeros(len).unwrap(),
            r.zeros(len).unwrap(),
        );
        for (t, g) in grads.iter().enumerate() {
            let p = SarpropParams {
                increase_factor: 1.2,
                decrease_factor: 0.5,
                delta_min: 1e-6,
                delta_max: 50.0,
                weight_decay: 0.01 * 0.9f32.powi(t as i32),
                step_threshold,
                noise_scale: 0.3,
                noise_seed: 1000 + t as u32,
            };
            k.sarprop_update(&mut kw, &k.tensor(g).unwrap(), &mut kp, &mut ks, p)
                .unwrap();
            r.sarprop_update(&mut rw, &r.tensor(g).unwrap(), &mut rp, &mut rs, p)
                .unwrap();
        }
        let what = format!("sarprop (threshold {step_threshold})");
        assert_close(&what, &plain(k, &kw), &r.read(&rw).unwrap(), &ones);
        assert_close(&what, &plain(k, &ks), &r.read(&rs).unwrap(), &ones);
        assert_close(&what, &plain(k, &kp), &r.read(&rp).unwrap(), &ones);
    }
    for decoupled in [false, true] {
        let p = AdamParams {
            learning_rate: 0.01,
            weight_decay: 0.05,
            decoupled,
            ..AdamParams::default()
        };
        let (mut kw, mut km, mut kv) = (
            k.tensor(&w0).unwrap(),
            k.zeros(len).unwrap(),
            k.zeros(len).unwrap(),
        );
        let (mut rw, mut rm, mut rv) = (
            r.tensor(&w0).unwrap(),
            r.zeros(len).unwrap(),
            r.zeros(len).unwrap(),
        );
        for (t, g) in grads.iter().enumerate() {
            k.adam_update(
                &mut kw,
                &k.tensor(g).unwrap(),
                &mut km,
                &mut kv,
                t as u32 + 1,
                p,
            )
            .unwrap();
            r.adam_update(
                &mut rw,
                &r.tensor(g).unwrap(),
                &mut rm,
                &mut rv,
                t as u32 + 1,
                p,
            )
            .unwrap();
        }
        assert_close(
            if decoupled { "adamw" } else { "adam" },
            &plain(k, &kw),
            &r.read(&rw).unwrap(),
            &ones,
        );
    }
}

/// The magnitudes the candidate kernel's rounding scales with: `Σ|terms|` of every
/// score and gradient, in f64 from the same inputs.
fn candidate_bounds(
    e: CandidateEpoch,
    units: &[CandidateUnit],
    [v, res, w_in, w_out]: [&[f32]; 4],
) -> [Vec<f64>; 3] {
    let (ni, no) = (e.inputs, e.outputs);
    let mut bounds = [
        vec![0.0; e.candidates * ni],
        vec![0.0; e.candidates * no],
        vec![e.sse.abs() as f64; e.candidates],
    ];
    for (c, u) in units.iter().enumerate() {
        let s = u.steepness as f64;
        for p in 0..e.rows {
            let row = &v[p * ni..(p + 1) * ni];
            let dot: f64 = (0..ni)
                .map(|i| (row[i] as f64 * w_in[c * ni + i] as f64).abs())
                .sum();
            let a = u
                .activation
                .apply(s * clamp_candidate_sum(dot, s))
                .abs()
                .max(1.0);
            let d = s * 4.0;
            let mut error = 0.0;
            for j in 0..no {
                let o = w_out[c * no + j].abs() as f64;
                let diff = a * o + res[p * no + j].abs() as f64;
                bounds[1][c * no + j] += 2.0 * diff * a;
                bounds[2][c] += diff * diff;
                error += diff * o;
            }
            for i in 0..ni {
                bounds[0][c * ni + i] += d * error * row[i].abs() as f64 + dot * d * error;
            }
        }
    }
    bounds
}

/// The Cascade2 candidate pool: scores and gradients over shapes from one sample
/// and one candidate to FANN's full pool of 80 on 1000 rows, every FANN candidate
/// activation at every FANN steepness, both derivative conventions, and sums large
/// enough to hit FANN's clamp.
pub fn cascade_candidates<K: NnKernels>(k: &K) {
    let r = ReferenceNn;
    let mut rng = Rng::new(43);
    let pool: Vec<CandidateUnit> = FANN_CANDIDATE_ACTIVATIONS
        .iter()
        .chain(&[Activation::Linear])
        .flat_map(|&activation| {
            FANN_CANDIDATE_STEEPNESSES
                .iter()
                .map(move |&steepness| CandidateUnit {
                    activation,
                    steepness,
                })
        })
        .collect();
    let shapes = [
        (0, 3, 2, 5, 1.0),
        (9, 0, 2, 3, 1.0),
        (1, 1, 1, 1, 1.0),
        (7, 3, 1, 8, 2.0),
        (194, 3, 1, 80, 4.0),
        (130, 20, 4, 33, 1.0),
        (1000, 17, 3, 80, 2.0),
        (65, 5, 2, 44, 300.0),
    ];
    for (rows, inputs, outputs, candidates, scale) in shapes {
        for derivative in [Derivative::Fann, Derivative::Exact, Derivative::FannCompat] {
            let units: Vec<CandidateUnit> = (0..candidates).map(|c| pool[c % pool.len()]).collect();
            let mut v = random(&mut rng, rows * inputs, -1.0, 1.0);
            // The bias column.
            for row in v.chunks_mut(inputs.max(1)) {
                row[inputs / 2] = 1.0;
            }
            let res = random(&mut rng, rows * outputs, -1.0, 1.0);
            let w_in = random(&mut rng, candidates * inputs, -scale, scale);
            let w_out = random(&mut rng, candidates * outputs, -1.0, 1.0);
            let e = CandidateEpoch {
                rows,
                inputs,
                outputs,
                candidates,
                sse: rows as f32 * 0.3,
                derivative,
            };
            let run = |gi: &mut Vec<f32>, go: &mut Vec<f32>, sc: &mut Vec<f32>, kernels: &K| {
                let (mut kgi, mut kgo, mut ksc) = (
                    kernels.zeros(gi.len()).unwrap(),
                    kernels.zeros(go.len()).unwrap(),
                    kernels.zeros(sc.len()).unwrap(),
                );
                kernels
                    .candidate_epoch(
                        e,
                        &units,
                        &kernels.tensor(&v).unwrap(),
                        &kernels.tensor(&res).unwrap(),
                        &kernels.tensor(&w_in).unwrap(),
                        &kernels.tensor(&w_out).unwrap(),
                        &mut kgi,
                        &mut kgo,
                        &mut ksc,
                    )
                    .unwrap();
                *gi = plain(kernels, &kgi);
                *go = plain(kernels, &kgo);
                *sc = plain(kernels, &ksc);
            };
            let (mut gi, mut go, mut sc) = (
                vec![0.0; candidates * inputs],
                vec![0.0; candidates * outputs],
                vec![0.0; candidates],
            );
            run(&mut gi, &mut go, &mut sc, k);
            let (mut rgi, mut rgo, mut rsc) = (gi.clone(), go.clone(), sc.clone());
            let (mut rgi_t, mut rgo_t, mut rsc_t) = (
                r.zeros(gi.len()).unwrap(),
                r.zeros(go.len()).unwrap(),
                r.zeros(sc.len()).unwrap(),
            );
            r.candidate_epoch(
                e,
                &units,
                &r.tensor(&v).unwrap(),
                &r.tensor(&res).unwrap(),
                &r.tensor(&w_in).unwrap(),
                &r.tensor(&w_out).unwrap(),
                &mut rgi_t,
                &mut rgo_t,
                &mut rsc_t,
            )
            .unwrap();
            rgi.copy_from_slice(&r.read(&rgi_t).unwrap());
            rgo.copy_from_slice(&r.read(&rgo_t).unwrap());
            rsc.copy_from_slice(&r.read(&rsc_t).unwrap());
            let [bi, bo, bs] = candidate_bounds(e, &units, [&v, &res, &w_in, &w_out]);
            let shape =
                format!("{rows}x{inputs}->{outputs}, {candidates} candidates, {derivative:?}");
            assert_close(&format!("candidate scores ({shape})"), &sc, &rsc, &bs);
            assert_close(
                &format!("candidate output gradients ({shape})"),
                &go,
                &rgo,
                &bo,
            );
            assert_close(
                &format!("candidate input gradients ({shape})"),
                &gi,
                &rgi,
                &bi,
            );
        }
    }
    // Bad input: a typed error, and the outputs keep their contents.
    let e = CandidateEpoch {
        rows: 2,
        inputs: 2,
        outputs: 1,
        candidates: 1,
        sse: 1.0,
        derivative: Derivative::Fann,
    };
    let unit = [pool[0]];
    let t = |n: usize| k.tensor(&vec![0.5; n]).unwrap();
    let (v, res, w_in, w_out) = (t(4), t(2), t(2), t(1));
    let (mut gi, mut go, mut sc) = (t(2), t(1), t(1));
    let mut attempt = |e: CandidateEpoch, units: &[CandidateUnit], v: &K::Tensor| {
        k.candidate_epoch(e, units, v, &res, &w_in, &w_out, &mut gi, &mut go, &mut sc)
            .unwrap_err()
    };
    let bad_units = [
        CandidateUnit {
            activation: Activation::Threshold,
            steepness: 1.0,
        },
        CandidateUnit {
            activation: Activation::Sigmoid,
            steepness: 0.0,
        },
        CandidateUnit {
            activation: Activation::Softmax,
            steepness: 1.0,
        },
    ];
    for u in bad_units {
        let err = attempt(e, &[u], &v);
        assert!(matches!(err, TesseraError::InvalidArgument { .. }), "{err}");
    }
    let err = attempt(e, &unit, &t(5));
    assert!(
        matches!(
            err,
            TesseraError::ShapeMismatch {
                what: "candidate values",
                ..
            }
        ),
        "{err}"
    );
    let err = attempt(CandidateEpoch { sse: f32::NAN, ..e }, &unit, &v);
    assert!(matches!(err, TesseraError::InvalidArgument { .. }), "{err}");
    let err = attempt(CandidateEpoch { candidates: 2, ..e }, &unit, &v);
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    for out in [&gi, &go, &sc] {
        assert!(plain(k, out).iter().all(|&x| x == 0.5));
    }
}

/// A random shortcut net: hidden neurons in layers of 1 to 3 (each reading everything
/// before its layer, as FANN builds them) or, with `prefix`, reading a random prefix;
/// weights scaled by `scale / sqrt(fan-in)`.
fn random_shortcut(
    rng: &mut Rng,
    p: ShortcutPass,
    prefix: bool,
    scale: f32,
) -> (Vec<ShortcutUnit>, Vec<f32>) {
    let hidden_acts: Vec<Activation> = FANN_CANDIDATE_ACTIVATIONS
        .iter()
        .copied()
        .chain([
            Activation::Linear,
            Activation::Relu,
            Activation::LinearPieceSymmetric,
        ])
        .collect();
    let output_acts = [
        Activation::Linear,
        Activation::Sigmoid,
        Activation::SigmoidSymmetric,
        Activation::Elliot,
    ];
    let mut units = Vec::with_capacity(p.units());
    let mut layer_start = 0;
    for k in 0..p.hidden {
        if k == 0 || rng.below(2) == 0 {
            layer_start = k;
        }
        let fan_in = if prefix {
            p.inputs + 1 + rng.below(k + 1)
        } else {
            p.inputs + 1 + layer_start
        };
        units.push(ShortcutUnit {
            activation: hidden_acts[rng.below(hidden_acts.len())],
            steepness: FANN_CANDIDATE_STEEPNESSES[rng.below(4)],
            fan_in,
        });
    }
    for _ in 0..p.outputs {
        units.push(ShortcutUnit {
            activation: output_acts[rng.below(output_acts.len())],
            steepness: [0.5f32, 1.0][rng.below(2)],
            fan_in: p.width(),
        });
    }
    let weights = units
        .iter()
        .flat_map(|u| {
            let r = scale / (u.fan_in as f32).sqrt();
            (0..u.fan_in).map(|_| rng.range(-r, r)).collect::<Vec<_>>()
        })
        .collect();
    (units, weights)
}

/// Shortcut networks: the forward pass (values, sums, outputs) and the backward pass
/// (deltas, weight gradients, overwritten and accumulated) against the reference,
/// over empty and one-row batches, rows around 64-row blocks, no hidden neuron to 40
/// of them, layered and arbitrary fan-ins, both derivative conventions, and sums past
/// FANN's clamp. The backward pass runs on the backend's own forward values, so each
/// pass is checked on its own.
pub fn shortcut<K: NnKernels>(k: &K) {
    let r = ReferenceNn;
    let mut rng = Rng::new(61);
    let shapes = [
        (0, 2, 1, 1, 1.0),
        (1, 1, 0, 1, 1.0),
        (1, 2, 1, 1, 1.0),
        (63, 3, 4, 2, 1.0),
        (64, 2, 9, 1, 2.0),
        (65, 16, 12, 4, 1.0),
        (194, 2, 11, 1, 4.0),
        (300, 21, 30, 3, 1.0),
        (1000, 16, 40, 4, 1.0),
        (129, 4, 6, 3, 400.0),
    ];
    let t = |kernels: &K, v: &[f32]| kernels.tensor(v).unwrap();
    for (case, (rows, inputs, hidden, outputs, scale)) in shapes.into_iter().enumerate() {
        let p = ShortcutPass {
            rows,
            inputs,
            hidden,
            outputs,
        };
        let (units, w) = random_shortcut(&mut rng, p, case % 2 == 1, scale);
        let x = random(&mut rng, rows * inputs, -1.0, 1.0);
        let (width, nu) = (p.width(), p.units());
        // Forward on both.
        let (kw, kx) = (t(k, &w), t(k, &x));
        let mut kv = k.zeros(rows * width).unwrap();
        let mut ks = k.zeros(rows * nu).unwrap();
        let mut ky = k.zeros(rows * outputs).unwrap();
        k.shortcut_forward(p, &units, &kw, &kx, &mut kv, &mut ks, &mut ky)
            .unwrap();
        let (rw, rx) = (r.tensor(&w).unwrap(), r.tensor(&x).unwrap());
        let mut rv = r.zeros(rows * width).unwrap();
        let mut rs = r.zeros(rows * nu).unwrap();
        let mut ry = r.zeros(rows * outputs).unwrap();
        r.shortcut_forward(p, &units, &rw, &rx, &mut rv, &mut rs, &mut ry)
            .unwrap();
        let offsets = p.offsets(&units, false).unwrap();
        // Each sum's rounding scales with Σ|v w|, each output's with s Σ|v w| too.
        let mut sum_bound = vec![0.0f64; rows * nu];
        let mut value_bound = vec![1.0f64; rows * width];
        let mut out_bound = vec![1.0f64; rows * outputs];
        for row in 0..rows {
            let v = &rv[row * width..(row + 1) * width];
            for (u, unit) in units.iter().enumerate() {
                let b: f64 = (0..unit.fan_in)
                    .map(|i| (v[i] * w[offsets[u] + i] as f64).abs())
                    .sum();
                sum_bound[row * nu + u] = b;
                let sb = (unit.steepness as f64 * b).max(1.0);
                if u < hidden {
                    value_bound[row * width + inputs + 1 + u] = sb;
                } else {
                    out_bound[row * outputs + u - hidden] = sb;
                }
            }
        }
        let shape = format!("{rows} rows, {inputs}-{hidden}h-{outputs}");
        let kvv = plain(k, &kv);
        let kss = plain(k, &ks);
        assert_close(
            &format!("shortcut values ({shape})"),
            &kvv,
            &r.read(&rv).unwrap(),
            &value_bound,
        );
        assert_close(
            &format!("shortcut sums ({shape})"),
            &kss,
            &r.read(&rs).unwrap(),
            &sum_bound,
        );
        assert_close(
            &format!("shortcut outputs ({shape})"),
            &plain(k, &ky),
            &r.read(&ry).unwrap(),
            &out_bound,
        );
        // Backward from the backend's own forward, overwriting and accumulating.
        let dy = random(&mut rng, rows * outputs, -1.0, 1.0);
        for (derivative, accumulate) in [
            (Derivative::Fann, false),
            (Derivative::Exact, true),
            (Derivative::FannCompat, false),
        ] {
            let g0 = random(&mut rng, w.len(), -1.0, 1.0);
            let mut kd = k.zeros(rows * nu).unwrap();
            let mut kg = t(k, &g0);
            k.shortcut_backward(
                p,
                &units,
                derivative,
                accumulate,
                &kw,
                &t(k, &kvv),
                &t(k, &kss),
                &t(k, &dy),
                &mut kd,
                &mut kg,
            )
            .unwrap();
            let rv = r.tensor(&kvv).unwrap();
            let mut rd = r.zeros(rows * nu).unwrap();
            let mut rg = r.tensor(&g0).unwrap();
            r.shortcut_backward(
                p,
                &units,
                derivative,
                accumulate,
                &rw,
                &rv,
                &r.tensor(&kss).unwrap(),
                &r.tensor(&dy).unwrap(),
                &mut rd,
                &mut rg,
            )
            .unwrap();
            // A delta's rounding scales with its upstream sum's magnitude times the
            // largest derivative (an f32 derivative near saturation, 1 - y², has only
            // absolute precision), propagated from the outputs down; a gradient's with
            // Σ_p |delta| |v|.
            let mut delta_bound = vec![0.0f64; rows * nu];
            let mut grad_bound: Vec<f64> = g0.iter().map(|g| g.abs() as f64).collect();
            for row in 0..rows {
                let v = &rv[row * width..(row + 1) * width];
                let db = &mut delta_bound[row * nu..(row + 1) * nu];
                for j in 0..outputs {
                    db[hidden + j] = dy[row * outputs + j].abs() as f64;
                }
                for (u, unit) in units.iter().enumerate().rev() {
                    db[u] *= 4.0 * (unit.steepness as f64).max(1.0);
                    db[u] = db[u].max(rd[row * nu + u].abs());
                    for i in 0..unit.fan_in {
                        grad_bound[offsets[u] + i] += db[u] * v[i].abs();
                        if i > inputs {
                            db[i - inputs - 1] += db[u] * (w[offsets[u] + i] as f64).abs();
                        }
                    }
                }
            }
            let what = format!("{shape}, {derivative:?}, accumulate {accumulate}");
            assert_close(
                &format!("shortcut deltas ({what})"),
                &plain(k, &kd),
                &r.read(&rd).unwrap(),
                &delta_bound,
            );
            assert_close(
                &format!("shortcut gradient ({what})"),
                &plain(k, &kg),
                &r.read(&rg).unwrap(),
                &grad_bound,
            );
        }
    }
}

/// Bad shortcut passes: typed errors, and the outputs keep their contents.
pub fn shortcut_errors<K: NnKernels>(k: &K) {
    let p = ShortcutPass {
        rows: 2,
        inputs: 2,
        hidden: 1,
        outputs: 1,
    };
    let unit = |activation, fan_in| ShortcutUnit {
        activation,
        steepness: 1.0,
        fan_in,
    };
    let good = [unit(Activation::Sigmoid, 3), unit(Activation::Linear, 4)];
    let t = |n: usize| k.tensor(&vec![0.5; n]).unwrap();
    let (w, x) = (t(7), t(4));
    let (mut v, mut s, mut y) = (t(8), t(4), t(2));
    let mut forward = |p: ShortcutPass, units: &[ShortcutUnit], w: &K::Tensor| {
        k.shortcut_forward(p, units, w, &x, &mut v, &mut s, &mut y)
            .unwrap_err()
    };
    let cases: Vec<(ShortcutPass, Vec<ShortcutUnit>, usize)> = vec![
        (p, good[..1].to_vec(), 7),
        (p, vec![unit(Activation::Sigmoid, 4), good[1]], 8),
        (p, vec![unit(Activation::Sigmoid, 2), good[1]], 6),
        (p, vec![good[0], unit(Activation::Linear, 3)], 6),
        (p, vec![unit(Activation::Softmax, 3), good[1]], 7),
        (
            p,
            vec![
                ShortcutUnit {
                    steepness: f32::NAN,
                    ..good[0]
                },
                good[1],
            ],
            7,
        ),
        (p, good.to_vec(), 6),
        (ShortcutPass { rows: 3, ..p }, good.to_vec(), 7),
        (
            ShortcutPass {
                rows: usize::MAX / 2 + 1,
                ..p
            },
            good.to_vec(),
            7,
        ),
    ];
    for (p, units, weights) in cases {
        let err = forward(p, &units, &t(weights));
        assert!(
            matches!(
                err,
                TesseraError::ShapeMismatch { .. }
                    | TesseraError::InvalidArgument { .. }
                    | TesseraError::IndexOutOfRange { .. }
            ),
            "{err}"
        );
    }
    for out in [&v, &s, &y] {
        assert!(plain(k, out).iter().all(|&x| x == 0.5));
    }
    // Thresholds run forward but cannot be trained.
    let step = [unit(Activation::Threshold, 3), good[1]];
    k.shortcut_forward(p, &step, &w, &x, &mut v, &mut s, &mut y)
        .unwrap();
    let (dy, mut d, mut g) = (t(2), t(4), t(7));
    let err = k
        .shortcut_backward(
            p,
            &step,
            Derivative::Fann,
            false,
            &w,
            &v,
            &s,
            &dy,
            &mut d,
            &mut g,
        )
        .unwrap_err();
    assert!(matches!(err, TesseraError::InvalidArgument { .. }), "{err}");
    let err = k
        .shortcut_backward(
            p,
            &good,
            Derivative::Fann,
            false,
            &w,
            &v,
            &s,
            &t(3),
            &mut d,
            &mut g,
        )
        .unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    for out in [&d, &g] {
        assert!(plain(k, out).iter().all(|&x| x == 0.5));
    }
}

/// Mismatched lengths are typed errors, and the output is left untouched.
pub fn shape_errors<K: NnKernels>(k: &K) {
    let a = k.tensor(&[1.0; 6]).unwrap();
    let b = k.tensor(&[1.0; 6]).unwrap();
    let mut c = k.tensor(&[7.0; 4]).unwrap();
    let err = k.gemm(Gemm::new(2, 2, 4), &a, &b, &mut c).unwrap_err();
    assert!(
        matches!(
            err,
            TesseraError::ShapeMismatch {
                what: "gemm A",
                got: 6,
                expected: 8
            }
        ),
        "{err}"
    );
    assert_eq!(k.read(&c).unwrap(), vec![7.0; 4]);
    let mut y = k.zeros(5).unwrap();
    let err = k
        .bias_activation(&mut c, &a, &mut y, 2, 2, Activation::Relu, 1.0)
        .unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    let mut v = k.zeros(3).unwrap();
    assert!(
        k.sgd_update(
            &mut c,
            &a,
            &mut v,
            SgdParams {
                learning_rate: 0.1,
                momentum: 0.0,
                weight_decay: 0.0
            }
        )
        .is_err()
    );
    assert_eq!(k.read(&c).unwrap(), vec![7.0; 4]);
}

/// Instantiates the neural-kernel parity suite for one backend. `$kernels` is an
/// expression of type `Option<K>` with `K:` [`NnKernels`]; `None` skips the tests.
#[macro_export]
macro_rules! nn_parity_suite {
    ($kernels:expr) => {
        $crate::nn_parity_suite!(@tests $kernels; gemm_layouts, gemm_large, activations, losses, column_sums, optimizers, cascade_candidates, shape_errors, dense_backprop, dense_backprop_errors, shortcut, shortcut_errors);
    };
    (@tests $kernels:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(k) = $kernels {
                    $crate::reference::nn_parity::$name(&k);
                }
            }
        )*
    };
}
