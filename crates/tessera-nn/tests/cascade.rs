//! Cascade2 training on every backend: two-spirals solved, the same candidates
//! installed on CPU and GPU from one seed, libfann's compatibility choices, files
//! and bad input.

use tessera_cpu::CpuNn;
use tessera_gpu::{GpuNn, testing};
use tessera_nn::cascade::{
    CascadeConfig, CascadeNetwork, CascadeReport, CascadeTrainer, StopFunction,
};
use tessera_nn::datasets::two_spirals;
use tessera_nn::{Algorithm, TrainConfig, TrainData};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::{Activation, NnKernels};

fn gpu() -> Option<GpuNn> {
    testing::shared_context().map(|c| GpuNn::new(&c).unwrap())
}

fn spirals_config(seed: u64) -> CascadeConfig {
    let mut config = CascadeConfig {
        stop: StopFunction::BitFail,
        seed,
        ..CascadeConfig::default()
    };
    // Ignored: cascade training reads the error of every output epoch.
    config.train.metrics_every = 0;
    config
}

fn spirals_net() -> CascadeNetwork {
    CascadeNetwork::new(2, 1, Activation::SigmoidSymmetric, 0.5, 1).unwrap()
}

/// FANN's bit fails of `net` on `data` (symmetric outputs: half the difference).
fn bit_fails(net: &CascadeNetwork, data: &TrainData) -> usize {
    let out = net.run(data.inputs()).unwrap();
    out.iter()
        .zip(data.outputs())
        .filter(|(y, t)| ((*t - *y) / 2.0).abs() >= 0.35)
        .count()
}

/// Cascade-trains two-spirals to bit-fail 0 and checks the returned net on the host.
fn solve_spirals<K: NnKernels>(kernels: K) -> (CascadeNetwork, Vec<CascadeReport>) {
    let data = two_spirals();
    let mut trainer = CascadeTrainer::new(kernels, spirals_net(), spirals_config(1)).unwrap();
    let mut reports = Vec::new();
    let last = trainer
        .train(&data, 40, 0.0, |r| {
            reports.push(*r);
            true
        })
        .unwrap();
    assert!(last.reached, "{last:?}");
    let net = trainer.into_network();
    assert_eq!(bit_fails(&net, &data), 0, "{last:?}");
    (net, reports)
}

#[test]
fn two_spirals_reach_bit_fail_zero_on_the_cpu() {
    let (net, reports) = solve_spirals(CpuNn::new());
    assert!(net.hidden.len() <= 25, "{} neurons", net.hidden.len());
    // Reports come once per output phase, one more neuron each time.
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.neurons, i);
    }
    let (scalar, _) = solve_spirals(CpuNn::new_scalar());
    assert!(scalar.hidden.len() <= 25);
}

#[test]
fn two_spirals_reach_bit_fail_zero_on_the_gpu() {
    if let Some(k) = gpu() {
        solve_spirals(k);
    }
}

#[test]
fn cpu_and_gpu_install_the_same_candidates() {
    let Some(k) = gpu() else { return };
    let data = two_spirals();
    let mut cpu = CascadeTrainer::new(CpuNn::new(), spirals_net(), spirals_config(5)).unwrap();
    let mut gpu = CascadeTrainer::new(k, spirals_net(), spirals_config(5)).unwrap();
    cpu.train(&data, 3, 0.0, |_| true).unwrap();
    gpu.train(&data, 3, 0.0, |_| true).unwrap();
    let (c, g) = (cpu.into_network(), gpu.into_network());
    assert_eq!(c.hidden.len(), 3);
    for (a, b) in c.hidden.iter().zip(&g.hidden) {
        assert_eq!((a.activation, a.steepness), (b.activation, b.steepness));
        for (x, y) in a.weights.iter().zip(&b.weights) {
            assert!((x - y).abs() <= 1e-2 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
}

#[test]
fn fann_compat_reverses_output_weights_and_always_runs_the_last_phase() {
    // Two outputs, so the order of the installed output weights shows.
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for i in 0..64 {
        let x = i as f32 / 32.0 - 1.0;
        inputs.push(x);
        outputs.extend([(3.0 * x).sin(), (2.0 * x).cos() * 0.8]);
    }
    let data = TrainData::new(1, 2, inputs, outputs).unwrap();
    let run = |fann_compat: bool| {
        let net = CascadeNetwork::new(1, 2, Activation::Linear, 1.0, 3).unwrap();
        let config = CascadeConfig {
            fann_compat,
            seed: 9,
            ..CascadeConfig::default()
        };
        let mut t = CascadeTrainer::new(CpuNn::new(), net, config).unwrap();
        let mut phases = 0;
        t.train(&data, 1, 0.0, |_| {
            phases += 1;
            true
        })
        .unwrap();
        (t.into_network(), phases)
    };
    let (default, phases) = run(false);
    let (compat, compat_phases) = run(true);
    // One neuron installed, then the last output phase trains its weights, in both.
    assert_eq!((phases, compat_phases), (2, 2));
    assert_eq!(default.hidden.len(), 1);
    assert_eq!(
        default.hidden, compat.hidden,
        "the same candidate is installed"
    );
    // Before the last phase the installed row is m * w_c in order, or reversed;
    // afterwards training has moved them, but the two nets differ.
    assert_ne!(default.output.weights, compat.output.weights);
}

#[test]
fn a_met_target_keeps_the_weights_that_met_it() {
    // XOR with a desired MSE the first output phase reaches.
    let data = tessera_nn::datasets::xor();
    let net = CascadeNetwork::new(2, 1, Activation::SigmoidSymmetric, 0.5, 2).unwrap();
    let mut t = CascadeTrainer::new(CpuNn::new(), net, CascadeConfig::default()).unwrap();
    let report = t.train(&data, 10, 0.9, |_| true).unwrap();
    assert!(report.reached);
    let net = t.into_network();
    let out = net.run(data.inputs()).unwrap();
    let mse: f64 = out
        .iter()
        .zip(data.outputs())
        .map(|(y, t)| (((t - y) / 2.0) as f64).powi(2))
        .sum::<f64>()
        / 4.0;
    assert!((mse - report.mse).abs() <= 1e-5, "{mse} vs {}", report.mse);
}

#[test]
fn bad_configurations_and_data_are_typed_errors() {
    let net = spirals_net();
    let c = CascadeConfig {
        train: TrainConfig::new(Algorithm::Batch { learning_rate: 0.7 }),
        ..CascadeConfig::default()
    };
    let err = CascadeTrainer::new(CpuNn::new(), net.clone(), c).unwrap_err();
    assert!(matches!(err, TesseraError::InvalidConfig { .. }), "{err}");
    let mut c = CascadeConfig::default();
    c.params.steepnesses = vec![0.5, f32::NAN];
    assert!(CascadeTrainer::new(CpuNn::new(), net.clone(), c).is_err());
    let mut c = CascadeConfig::default();
    c.params.activations = vec![Activation::Threshold];
    assert!(CascadeTrainer::new(CpuNn::new(), net.clone(), c).is_err());
    let mut c = CascadeConfig::default();
    c.params.min_out_epochs = 200;
    assert!(CascadeTrainer::new(CpuNn::new(), net.clone(), c).is_err());
    let mut c = CascadeConfig::default();
    c.params.candidate_groups = 1 << 40;
    assert!(CascadeTrainer::new(CpuNn::new(), net.clone(), c).is_err());
    let mut t = CascadeTrainer::new(CpuNn::new(), net.clone(), CascadeConfig::default()).unwrap();
    let wrong = TrainData::new(3, 1, vec![0.0; 3], vec![0.0]).unwrap();
    assert!(t.train(&wrong, 5, 0.0, |_| true).is_err());
    assert!(t.train(&two_spirals(), 5, f64::NAN, |_| true).is_err());
    assert!(t.train(&two_spirals(), 5, -1.0, |_| true).is_err());
    let err = t
        .train(&two_spirals(), usize::MAX, 0.0, |_| true)
        .unwrap_err();
    assert!(
        matches!(
            err,
            TesseraError::InvalidArgument {
                what: "max_neurons",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        t.network(),
        &net,
        "a refused call leaves the network as it was"
    );
    // No neuron allowed: libfann's last output phase alone.
    let r = t.train(&two_spirals(), 0, 0.0, |_| true).unwrap();
    assert_eq!((r.neurons, t.network().hidden.len()), (0, 0));
    let mut bad = net.clone();
    bad.hidden.push(tessera_nn::cascade::HiddenNeuron {
        activation: Activation::Sigmoid,
        steepness: 0.5,
        weights: vec![0.0; 7],
    });
    assert!(CascadeTrainer::new(CpuNn::new(), bad, CascadeConfig::default()).is_err());
}
