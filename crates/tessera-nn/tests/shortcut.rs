//! Shortcut networks trained by backpropagation through every connection, on every
//! backend: the same trajectory on the f64 reference, the CPU and the GPU; a net
//! without hidden neurons trains exactly as the equivalent layered net; nets
//! round-trip through the backend; bad input is a typed error.

use tessera_cpu::CpuNn;
use tessera_gpu::{GpuNn, testing};
use tessera_nn::cascade::{CascadeNetwork, ShortcutTrainer};
use tessera_nn::datasets::two_spirals;
use tessera_nn::{Algorithm, Layer, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::{Activation, Loss, NnKernels};
use tessera_tensor::reference::ReferenceNn;

fn gpu() -> Option<GpuNn> {
    testing::shared_context().map(|c| GpuNn::new(&c).unwrap())
}

const SINE: Activation = Activation::SigmoidSymmetric;

/// A FANN-shaped shortcut net for two-spirals: hidden layers of 3, 2 and 4.
fn spirals_net() -> CascadeNetwork {
    CascadeNetwork::shortcut(&[2, 3, 2, 4, 1], SINE, SINE, 0.5, 11).unwrap()
}

/// The MSE of each of `epochs` epochs of `config` on `data` from `net`.
fn trajectory<K: NnKernels>(
    kernels: K,
    net: &CascadeNetwork,
    data: &TrainData,
    config: TrainConfig,
    epochs: usize,
) -> Vec<f64> {
    let mut trainer = ShortcutTrainer::new(kernels, net, config).unwrap();
    (0..epochs)
        .map(|_| trainer.train_epoch(data).unwrap().mse.unwrap())
        .collect()
}

fn assert_same(what: &str, got: &[f64], want: &[f64], rel: f64) {
    for (e, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * w.abs(),
            "{what}, epoch {e}: {g} against {w}"
        );
    }
}

#[test]
fn every_backend_follows_the_reference() {
    let data = two_spirals();
    let net = spirals_net();
    let configs = [
        TrainConfig::new(Algorithm::fann_rprop()),
        TrainConfig::new(Algorithm::fann_quickprop()),
        TrainConfig::new(Algorithm::Incremental {
            learning_rate: 0.01,
            momentum: 0.1,
        }),
    ];
    for config in configs {
        let epochs = 12;
        let want = trajectory(ReferenceNn, &net, &data, config, epochs);
        if matches!(config.algorithm, Algorithm::Rprop { .. }) {
            assert!(want[epochs - 1] < want[0], "{config:?}: {want:?}");
        }
        let what = format!("{:?}", config.algorithm);
        assert_same(
            &format!("cpu {what}"),
            &trajectory(CpuNn::new(), &net, &data, config, epochs),
            &want,
            1e-4,
        );
        assert_same(
            &format!("cpu scalar {what}"),
            &trajectory(CpuNn::new_scalar(), &net, &data, config, epochs),
            &want,
            1e-4,
        );
        if let Some(gpu) = gpu() {
            assert_same(
                &format!("gpu {what}"),
                &trajectory(gpu, &net, &data, config, epochs),
                &want,
                1e-4,
            );
        }
    }
}

/// Without hidden neurons a shortcut net is one dense layer: its training is the
/// layered trainer's, epoch for epoch.
#[test]
fn a_net_without_hidden_neurons_trains_as_the_layered_net() {
    let data = two_spirals();
    let net = CascadeNetwork::new(2, 1, SINE, 0.5, 4).unwrap();
    let layered = Network {
        layers: vec![Layer {
            ..net.output.clone()
        }],
    };
    for config in [
        TrainConfig::new(Algorithm::fann_rprop()),
        TrainConfig {
            loss: Loss::MeanSquared,
            ..TrainConfig::new(Algorithm::fann_quickprop())
        },
    ] {
        let ours = trajectory(CpuNn::new(), &net, &data, config, 30);
        let mut trainer =
            Trainer::new(Model::new(CpuNn::new(), &layered).unwrap(), config).unwrap();
        let dense: Vec<f64> = (0..30)
            .map(|_| trainer.train_epoch(&data).unwrap().mse.unwrap())
            .collect();
        assert_same("shortcut against layered", &ours, &dense, 1e-5);
    }
}

/// 300 RPROP epochs take a shortcut net with 9 hidden neurons well down on
/// two-spirals on the CPU, and the GPU ends close to it.
#[test]
fn rprop_drives_a_shortcut_net_down_on_two_spirals() {
    let data = two_spirals();
    let net = spirals_net();
    let config = TrainConfig::new(Algorithm::fann_rprop());
    let mut cpu = ShortcutTrainer::new(CpuNn::new(), &net, config).unwrap();
    let first = cpu.train_epoch(&data).unwrap().mse.unwrap();
    let last = cpu.train_until(&data, 300, 0.0, |_| true).unwrap();
    assert!(last.mse.unwrap() < 0.75 * first, "{first} -> {last:?}");
    // The trained weights read back give the backend's outputs on the host.
    let trained = cpu.network().unwrap();
    let host = trained.run(data.inputs()).unwrap();
    let device = cpu.run(data.inputs()).unwrap();
    for (h, d) in host.iter().zip(&device) {
        assert!((h - d).abs() <= 1e-4, "{h} vs {d}");
    }
    if let Some(gpu) = gpu() {
        let mut g = ShortcutTrainer::new(gpu, &net, config).unwrap();
        let glast = g.train_until(&data, 301, 0.0, |_| true).unwrap();
        let rel = (glast.mse.unwrap() - last.mse.unwrap()).abs() / last.mse.unwrap();
        // 300 RPROP epochs amplify f32 differences; the two stay close.
        assert!(rel < 0.2, "gpu {glast:?}, cpu {last:?}");
    }
}

#[test]
fn a_net_round_trips_through_the_backend_unchanged() {
    let net = spirals_net();
    let mut trainer = ShortcutTrainer::new(
        CpuNn::new(),
        &net,
        TrainConfig::new(Algorithm::fann_rprop()),
    )
    .unwrap();
    assert_eq!(trainer.network().unwrap(), net);
    let inputs = two_spirals().inputs().to_vec();
    let host = net.run(&inputs).unwrap();
    for (h, d) in host.iter().zip(trainer.run(&inputs).unwrap()) {
        assert!((h - d).abs() <= 1e-5);
    }
}

#[test]
fn bad_nets_configs_and_data_are_typed_errors() {
    let net = spirals_net();
    let rprop = TrainConfig::new(Algorithm::fann_rprop());
    let softmax = TrainConfig {
        loss: Loss::SoftmaxCrossEntropy,
        ..rprop
    };
    let err = ShortcutTrainer::new(CpuNn::new(), &net, softmax).unwrap_err();
    assert!(matches!(err, TesseraError::InvalidArgument { .. }), "{err}");
    let mut step = net.clone();
    step.hidden[0].activation = Activation::Threshold;
    let err = ShortcutTrainer::new(CpuNn::new(), &step, rprop).unwrap_err();
    assert!(matches!(err, TesseraError::InvalidArgument { .. }), "{err}");
    let mut broken = net.clone();
    broken.hidden[1].weights.pop();
    assert!(ShortcutTrainer::new(CpuNn::new(), &broken, rprop).is_err());
    assert!(CascadeNetwork::shortcut(&[2], SINE, SINE, 0.5, 1).is_err());
    assert!(CascadeNetwork::shortcut(&[2, 0, 1], SINE, SINE, 0.5, 1).is_err());
    let mut trainer = ShortcutTrainer::new(CpuNn::new(), &net, rprop).unwrap();
    let wide = TrainData::new(3, 1, vec![0.0; 3], vec![0.0]).unwrap();
    let err = trainer.train_epoch(&wide).unwrap_err();
    assert!(matches!(err, TesseraError::InvalidConfig { .. }), "{err}");
    assert!(trainer.run(&[0.0, f32::NAN]).is_err());
    assert!(trainer.run(&[0.0, 1.0, 2.0]).is_err());
    // Nothing changed: the net is as it was.
    assert_eq!(trainer.network().unwrap(), net);
}
