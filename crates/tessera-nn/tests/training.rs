//! Gradients against finite differences, backends against each other and the f64
//! reference, every optimizer, determinism and errors.

use tessera_cpu::CpuNn;
use tessera_gpu::{GpuNn, testing};
use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::{Activation, AdamParams, Loss, NnKernels, SgdParams};
use tessera_tensor::reference::ReferenceNn;
use tessera_tensor::rng::Rng;

fn gpu() -> Option<GpuNn> {
    testing::shared_context().map(|c| GpuNn::new(&c).unwrap())
}

/// A 3-layer net (4-5-6-3) with mixed smooth activations and random data.
fn fixture(output: Activation, seed: u64) -> (Network, TrainData) {
    let mut net = Network::new(
        &[4, 5, 6, 3],
        Activation::SigmoidSymmetric,
        Init::Xavier,
        seed,
    )
    .unwrap();
    net.set_activation(1, Activation::Gelu, 0.8).unwrap();
    net.set_output_activation(output, 0.7).unwrap();
    let mut rng = Rng::new(seed + 1);
    let samples = 7;
    let inputs = (0..samples * 4).map(|_| rng.range(-1.0, 1.0)).collect();
    let outputs = (0..samples)
        .flat_map(|_| {
            if output == Activation::Softmax {
                let hot = rng.below(3);
                (0..3).map(|j| f32::from(j == hot)).collect::<Vec<_>>()
            } else {
                (0..3).map(|_| rng.range(-0.8, 0.8)).collect()
            }
        })
        .collect();
    (net, TrainData::new(4, 3, inputs, outputs).unwrap())
}

fn loss_f64(out: &[f64], target: &[f32], loss: Loss) -> f64 {
    out.iter()
        .zip(target)
        .map(|(&y, &t)| match loss {
            Loss::SoftmaxCrossEntropy => -(t as f64) * y.ln(),
            _ => 0.5 * (y - t as f64).powi(2),
        })
        .sum()
}

#[test]
fn gradients_match_central_finite_differences_in_f64() {
    for (output, loss) in [
        (Activation::Sigmoid, Loss::MeanSquared),
        (Activation::Softmax, Loss::SoftmaxCrossEntropy),
    ] {
        let (net, data) = fixture(output, 3);
        let model = Model::new(ReferenceNn, &net).unwrap();
        let config = TrainConfig {
            loss,
            ..TrainConfig::new(Algorithm::Sgd {
                params: SgdParams {
                    learning_rate: 0.1,
                    momentum: 0.0,
                    weight_decay: 0.0,
                },
                batch_size: 7,
            })
        };
        let mut trainer = Trainer::new(model, config).unwrap();
        trainer.compute_gradients(&data).unwrap();
        let grads = trainer.gradients().unwrap();
        let h = 1e-6;
        for (l, (gw, _)) in grads.iter().enumerate() {
            for (i, &g) in gw.iter().enumerate() {
                let mut eval = |delta: f64| {
                    trainer.model_mut().weights_mut(l)[i] += delta;
                    let out = trainer
                        .model_mut()
                        .forward_on_device(data.inputs())
                        .unwrap()
                        .clone();
                    trainer.model_mut().weights_mut(l)[i] -= delta;
                    loss_f64(&out, data.outputs(), loss)
                };
                let fd = (eval(h) - eval(-h)) / (2.0 * h);
                assert!(
                    (fd - g as f64).abs() <= 1e-6 * fd.abs() + 1e-7,
                    "{output:?} layer {l} weight {i}: {g} vs {fd}"
                );
            }
        }
    }
}

/// Per layer: (weight gradients, bias gradients).
type Gradients = Vec<(Vec<f32>, Vec<f32>)>;

fn close(what: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * (w.abs() as f64 + 1e-2 * scale) + 1e-7;
        assert!(((g - w) as f64).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

fn forward_and_gradients<K: NnKernels>(
    k: K,
    net: &Network,
    data: &TrainData,
    loss: Loss,
) -> (Vec<f32>, Gradients) {
    let mut model = Model::new(k, net).unwrap();
    let out = model.forward(data.inputs()).unwrap();
    let config = TrainConfig {
        loss,
        ..TrainConfig::new(Algorithm::fann_rprop())
    };
    let mut trainer = Trainer::new(model, config).unwrap();
    trainer.compute_gradients(data).unwrap();
    (out, trainer.gradients().unwrap())
}

#[test]
fn cpu_and_gpu_agree_with_the_reference_on_a_three_layer_net() {
    for (output, loss) in [
        (Activation::Sigmoid, Loss::MeanSquared),
        (Activation::SigmoidSymmetric, Loss::Fann { tanh: true }),
        (Activation::Softmax, Loss::SoftmaxCrossEntropy),
    ] {
        let (net, data) = fixture(output, 11);
        let (want_out, want_grads) = forward_and_gradients(ReferenceNn, &net, &data, loss);
        let mut backends: Vec<(&str, (Vec<f32>, Gradients))> = vec![(
            "cpu",
            forward_and_gradients(CpuNn::new(), &net, &data, loss),
        )];
        if let Some(g) = gpu() {
            backends.push(("gpu", forward_and_gradients(g, &net, &data, loss)));
        }
        for (name, (out, grads)) in backends {
            close(&format!("{name} {output:?} forward"), &out, &want_out);
            for (l, ((gw, gb), (ww, wb))) in grads.iter().zip(&want_grads).enumerate() {
                close(
                    &format!("{name} {output:?} layer {l} weight gradient"),
                    gw,
                    ww,
                );
                close(
                    &format!("{name} {output:?} layer {l} bias gradient"),
                    gb,
                    wb,
                );
            }
        }
    }
}

fn algorithms() -> Vec<Algorithm> {
    vec![
        Algorithm::Incremental {
            learning_rate: 0.7,
            momentum: 0.1,
        },
        Algorithm::Batch { learning_rate: 0.7 },
        Algorithm::fann_rprop(),
        Algorithm::fann_quickprop(),
        Algorithm::fann_sarprop(),
        Algorithm::Sgd {
            params: SgdParams {
                learning_rate: 0.2,
                momentum: 0.9,
                weight_decay: 1e-4,
            },
            batch_size: 3,
        },
        Algorithm::Adam {
            params: AdamParams {
                learning_rate: 0.01,
                ..AdamParams::default()
            },
            batch_size: 4,
        },
        Algorithm::Adam {
            params: AdamParams {
                learning_rate: 0.01,
                weight_decay: 0.01,
                decoupled: true,
                ..AdamParams::default()
            },
            batch_size: 7,
        },
    ]
}

fn train_three_epochs<K: NnKernels>(
    k: K,
    net: &Network,
    data: &TrainData,
    algorithm: Algorithm,
) -> (Vec<f64>, Network) {
    let mut trainer =
        Trainer::new(Model::new(k, net).unwrap(), TrainConfig::new(algorithm)).unwrap();
    let mses = (0..3)
        .map(|_| trainer.train_epoch(data).unwrap().mse.unwrap())
        .collect();
    (mses, trainer.model().to_network().unwrap())
}

#[test]
fn every_optimizer_agrees_across_backends_for_a_few_epochs() {
    let (net, data) = fixture(Activation::SigmoidSymmetric, 5);
    for algorithm in algorithms() {
        let (want_mse, want_net) = train_three_epochs(ReferenceNn, &net, &data, algorithm);
        let mut runs = vec![(
            "cpu",
            train_three_epochs(CpuNn::new(), &net, &data, algorithm),
        )];
        if let Some(g) = gpu() {
            runs.push(("gpu", train_three_epochs(g, &net, &data, algorithm)));
        }
        for (name, (mse, trained)) in runs {
            for (m, w) in mse.iter().zip(&want_mse) {
                assert!(
                    (m - w).abs() <= 1e-4 * w + 1e-7,
                    "{name} {algorithm:?}: mse {m} vs {w}"
                );
            }
            for (l, (a, b)) in trained.layers.iter().zip(&want_net.layers).enumerate() {
                close(
                    &format!("{name} {algorithm:?} layer {l} weights"),
                    &a.weights,
                    &b.weights,
                );
            }
        }
    }
}

#[test]
fn same_seed_gives_the_same_weights_bit_for_bit() {
    for init in [
        Init::FannUniform,
        Init::Xavier,
        Init::He,
        Init::WidrowNguyen {
            min: -1.0,
            max: 1.0,
        },
    ] {
        let a = Network::new(&[3, 8, 2], Activation::Relu, init, 42).unwrap();
        assert_eq!(
            a,
            Network::new(&[3, 8, 2], Activation::Relu, init, 42).unwrap()
        );
        assert_ne!(
            a,
            Network::new(&[3, 8, 2], Activation::Relu, init, 43).unwrap()
        );
    }
    let (net, data) = fixture(Activation::Sigmoid, 9);
    let config = TrainConfig {
        shuffle_seed: Some(5),
        ..TrainConfig::new(Algorithm::Sgd {
            params: SgdParams {
                learning_rate: 0.1,
                momentum: 0.5,
                weight_decay: 0.0,
            },
            batch_size: 2,
        })
    };
    let run = || {
        let mut t = Trainer::new(Model::new(CpuNn::new(), &net).unwrap(), config).unwrap();
        for _ in 0..4 {
            t.train_epoch(&data).unwrap();
        }
        t.model().to_network().unwrap()
    };
    assert_eq!(run(), run());
}

/// The CPU's fused pass gives the same weights whatever the thread count and
/// wherever it runs: on its own, and as one of several trainings running as rayon
/// tasks, where a thread waiting in one call's parallel loop may run another call.
#[test]
fn fused_training_is_the_same_alone_and_inside_rayon_tasks() {
    use rayon::prelude::*;
    let mut rng = Rng::new(17);
    // 1100 samples: nine blocks in eight parallel parts.
    let rows = 1100;
    let inputs: Vec<f32> = (0..rows * 6).map(|_| rng.range(-1.0, 1.0)).collect();
    let targets: Vec<f32> = (0..rows * 2).map(|_| rng.range(0.0, 1.0)).collect();
    let data = TrainData::new(6, 2, inputs, targets).unwrap();
    let run = |seed: u64| {
        let net = Network::new(
            &[6, 24, 2],
            Activation::SigmoidSymmetric,
            Init::FannUniform,
            seed,
        )
        .unwrap();
        let mut t = Trainer::new(
            Model::new(CpuNn::new(), &net).unwrap(),
            TrainConfig::new(Algorithm::fann_rprop()),
        )
        .unwrap();
        for _ in 0..5 {
            t.train_epoch(&data).unwrap();
        }
        t.model().to_network().unwrap()
    };
    let alone: Vec<Network> = (0..16).map(run).collect();
    let in_tasks: Vec<Network> = (0..16u64).into_par_iter().map(run).collect();
    assert_eq!(alone, in_tasks);
}

#[test]
fn bad_setups_are_typed_errors() {
    let mut net = Network::new(&[2, 3, 1], Activation::Threshold, Init::FannUniform, 1).unwrap();
    let model = Model::new(CpuNn::new(), &net).unwrap();
    assert!(matches!(
        Trainer::new(model, TrainConfig::new(Algorithm::fann_rprop())),
        Err(TesseraError::InvalidArgument { .. })
    ));
    net.set_hidden_activation(Activation::Sigmoid, 0.5).unwrap();
    net.set_output_activation(Activation::Sigmoid, 0.5).unwrap();
    let config = TrainConfig {
        loss: Loss::SoftmaxCrossEntropy,
        ..TrainConfig::new(Algorithm::fann_rprop())
    };
    assert!(Trainer::new(Model::new(CpuNn::new(), &net).unwrap(), config).is_err());
    assert!(net.set_activation(0, Activation::Softmax, 1.0).is_err());
    assert!(Network::new(&[2], Activation::Linear, Init::Xavier, 0).is_err());
    let mut model = Model::new(CpuNn::new(), &net).unwrap();
    assert!(matches!(
        model.forward(&[1.0, 2.0, 3.0]),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        model.forward(&[1.0, f32::NAN]),
        Err(TesseraError::NonFinite { .. })
    ));
    let mut t = Trainer::new(model, TrainConfig::new(Algorithm::fann_rprop())).unwrap();
    let wrong = TrainData::new(3, 1, vec![0.0; 3], vec![0.0]).unwrap();
    assert!(t.train_epoch(&wrong).is_err());
    assert!(TrainData::new(2, 1, vec![0.0; 3], vec![0.0]).is_err());
}

/// Four RPROP epochs reading metrics every `every` epochs, on `k`.
fn four_epochs<K: NnKernels>(
    k: K,
    net: &Network,
    data: &TrainData,
    every: usize,
) -> (Vec<tessera_nn::EpochStats>, Network) {
    let config = TrainConfig {
        metrics_every: every,
        ..TrainConfig::new(Algorithm::fann_rprop())
    };
    let mut t = Trainer::new(Model::new(k, net).unwrap(), config).unwrap();
    let stats = (0..4).map(|_| t.train_epoch(data).unwrap()).collect();
    (stats, t.model().to_network().unwrap())
}

#[test]
fn metrics_are_read_back_only_when_asked_and_do_not_change_training() {
    let (net, data) = fixture(Activation::SigmoidSymmetric, 13);
    let mut runs = vec![[0, 1, 2].map(|every| four_epochs(CpuNn::new(), &net, &data, every))];
    if gpu().is_some() {
        runs.push([0, 1, 2].map(|every| four_epochs(gpu().unwrap(), &net, &data, every)));
    }
    for [(never, net_never), (every, net_every), (second, _)] in runs {
        assert!(
            every
                .iter()
                .all(|s| s.mse.is_some() && s.bit_fail.is_some())
        );
        assert!(
            never
                .iter()
                .all(|s| s.mse.is_none() && s.bit_fail.is_none())
        );
        let read: Vec<bool> = second.iter().map(|s| s.mse.is_some()).collect();
        assert_eq!(read, [false, true, false, true]);
        assert_eq!(
            net_every, net_never,
            "reading metrics must not change training"
        );
    }
}

/// The launch structure of a training step on the GPU, pinned by the context's launch
/// counters: one submission of one compute pass, no bind group created and nothing
/// uploaded but the parameters after the first step, and nothing read back unless the
/// step measures its error (then one readback, one host sync).
#[test]
fn a_gpu_training_step_is_one_submission_of_one_pass() {
    if tessera_gpu::testing::shared_context().is_none() {
        return;
    }
    // A context of its own: the counters of the shared one would see other tests.
    let ctx = tessera_gpu::GpuContext::new_blocking().unwrap();
    let (net, data) = fixture(Activation::Linear, 4);
    for metrics_every in [0, 1] {
        let model = Model::new(GpuNn::new(&ctx).unwrap(), &net).unwrap();
        let config = TrainConfig {
            metrics_every,
            ..TrainConfig::new(Algorithm::Adam {
                params: AdamParams::default(),
                batch_size: data.len(),
            })
        };
        let mut trainer = Trainer::new(model, config).unwrap();
        trainer.train_epoch(&data).unwrap();
        trainer.model().kernels().flush().unwrap();
        let before = ctx.counters();
        let stats = trainer.train_epoch(&data).unwrap();
        trainer.model().kernels().flush().unwrap();
        let c = ctx.counters().since(&before);
        assert_eq!(stats.mse.is_some(), metrics_every == 1);
        let reads = u64::from(metrics_every == 1);
        // The 4-5-6-3 net: forward, loss, backward and 6 Adam updates, 24 dispatches
        // (25 with the error metrics).
        assert_eq!(
            (c.dispatches, c.bind_groups, c.host_syncs),
            (24 + reads, 0, reads),
            "{c:?}"
        );
        // Measuring reads the partials: their copy is a submission of its own, after
        // the step's.
        assert_eq!((c.submissions, c.passes), (1 + reads, 1), "{c:?}");
        assert_eq!(
            c.bytes_read_back,
            reads * 8,
            "one workgroup's partials: {c:?}"
        );
        // Only the dispatches' parameter slots are uploaded; the samples stay resident.
        let slot = 256; // wgpu's default min_uniform_buffer_offset_alignment
        assert!(c.bytes_uploaded <= c.dispatches * slot, "{c:?}");
    }
}
