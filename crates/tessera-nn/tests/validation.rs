//! Bad hyper-parameters, networks and data are typed errors that name what was wrong,
//! before anything is trained; training that diverges is reported, never a silent Ok.
//! Each case here once returned Ok (with NaN weights), panicked or misreported.

use tessera_cpu::CpuNn;
use tessera_nn::{Algorithm, Init, Model, Network, Sarprop, TrainConfig, TrainData, Trainer};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::{Activation, AdamParams, RpropParams, SgdParams};

fn net() -> Network {
    Network::new(
        &[2, 3, 1],
        Activation::SigmoidSymmetric,
        Init::FannUniform,
        1,
    )
    .unwrap()
}

fn trainer(config: TrainConfig) -> Result<Trainer<CpuNn>, TesseraError> {
    Trainer::new(Model::new(CpuNn::new(), &net()).unwrap(), config)
}

fn rejected_parameter(algorithm: Algorithm) -> &'static str {
    match trainer(TrainConfig::new(algorithm)) {
        Err(TesseraError::InvalidArgument { what, .. }) => what,
        other => panic!("{algorithm:?} was not refused: {other:?}"),
    }
}

#[test]
fn every_hyper_parameter_is_checked_before_training() {
    let sgd = |p: SgdParams| Algorithm::Sgd {
        params: p,
        batch_size: 4,
    };
    let base_sgd = SgdParams {
        learning_rate: 0.1,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    let adam = |p: AdamParams| Algorithm::Adam {
        params: p,
        batch_size: 4,
    };
    let rprop = |p: RpropParams| Algorithm::Rprop {
        params: p,
        delta_zero: 0.1,
    };
    for (algorithm, names) in [
        (
            Algorithm::Batch {
                learning_rate: f32::NAN,
            },
            "learning_rate",
        ),
        (
            Algorithm::Batch {
                learning_rate: -0.5,
            },
            "learning_rate",
        ),
        (
            Algorithm::Incremental {
                learning_rate: 0.7,
                momentum: f32::INFINITY,
            },
            "momentum",
        ),
        (
            Algorithm::Incremental {
                learning_rate: 0.7,
                momentum: 1.0,
            },
            "momentum",
        ),
        (
            sgd(SgdParams {
                learning_rate: f32::INFINITY,
                ..base_sgd
            }),
            "learning_rate",
        ),
        (
            sgd(SgdParams {
                weight_decay: -1.0,
                ..base_sgd
            }),
            "weight_decay",
        ),
        (
            Algorithm::Sgd {
                params: base_sgd,
                batch_size: 0,
            },
            "batch_size",
        ),
        (
            adam(AdamParams {
                beta1: 1.0,
                ..AdamParams::default()
            }),
            "beta1",
        ),
        (
            adam(AdamParams {
                beta2: f32::NAN,
                ..AdamParams::default()
            }),
            "beta2",
        ),
        (
            adam(AdamParams {
                epsilon: 0.0,
                ..AdamParams::default()
            }),
            "epsilon",
        ),
        (
            rprop(RpropParams {
                decrease_factor: 2.0,
                ..RpropParams::default()
            }),
            "decrease_factor",
        ),
        (
            rprop(RpropParams {
                increase_factor: 0.5,
                ..RpropParams::default()
            }),
            "increase_factor",
        ),
        (
            rprop(RpropParams {
                delta_min: 60.0,
                ..RpropParams::default()
            }),
            "delta_max",
        ),
        (
            Algorithm::Rprop {
                params: RpropParams::default(),
                delta_zero: f32::NAN,
            },
            "delta_zero",
        ),
        (
            Algorithm::Quickprop {
                learning_rate: 0.7,
                decay: f32::NAN,
                mu: 1.75,
            },
            "decay",
        ),
        (
            Algorithm::Quickprop {
                learning_rate: 0.7,
                decay: -1e-4,
                mu: 0.0,
            },
            "mu",
        ),
        (
            Algorithm::Sarprop {
                params: Sarprop {
                    temperature: f32::NAN,
                    ..Sarprop::default()
                },
            },
            "temperature",
        ),
    ] {
        assert_eq!(rejected_parameter(algorithm), names, "{algorithm:?}");
    }
    let nan_limit = TrainConfig {
        bit_fail_limit: f32::NAN,
        ..TrainConfig::new(Algorithm::fann_rprop())
    };
    assert!(matches!(
        trainer(nan_limit),
        Err(TesseraError::InvalidArgument {
            what: "bit_fail_limit",
            ..
        })
    ));
}

#[test]
fn empty_and_non_finite_networks_are_refused_naming_the_layer() {
    let empty = Network { layers: vec![] };
    assert!(matches!(
        Model::new(CpuNn::new(), &empty),
        Err(TesseraError::InvalidConfig {
            field: "network layers",
            ..
        })
    ));
    assert_eq!((empty.inputs(), empty.outputs()), (0, 0));
    let mut nan = net();
    nan.layers[1].bias[0] = f32::NAN;
    let e = Model::new(CpuNn::new(), &nan).unwrap_err();
    assert!(e.to_string().contains("layer 1"), "{e}");
    let mut short = net();
    short.layers[0].weights.pop();
    assert!(matches!(
        Model::new(CpuNn::new(), &short),
        Err(TesseraError::InvalidConfig {
            field: "layer weights",
            ..
        })
    ));
    let mut unchained = net();
    unchained.layers[1].inputs = 4;
    assert!(Model::new(CpuNn::new(), &unchained).is_err());
    let mut steep = net();
    steep.layers[0].steepness = f32::INFINITY;
    assert!(Model::new(CpuNn::new(), &steep).is_err());
    assert!(
        steep
            .set_activation(0, Activation::Sigmoid, f32::NAN)
            .is_err()
    );
    // Sizes whose weights cannot fit are refused before allocating them.
    assert!(Network::new(&[1 << 20, 1 << 20], Activation::Linear, Init::Xavier, 0).is_err());
    assert!(Network::new(&[usize::MAX, 2], Activation::Linear, Init::Xavier, 0).is_err());
}

#[test]
fn data_errors_say_what_was_expected() {
    let e = TrainData::new(0, 1, vec![], vec![]).unwrap_err();
    assert!(e.to_string().contains("n_inputs"), "{e}");
    let e = TrainData::new(2, 1, vec![0.0; 4], vec![0.0]).unwrap_err();
    assert!(e.to_string().contains("2 rows"), "{e}");
    assert!(TrainData::new(2, 1, vec![0.0, f32::INFINITY], vec![0.0]).is_err());
    let mut t = trainer(TrainConfig::new(Algorithm::fann_rprop())).unwrap();
    let wrong = TrainData::new(3, 1, vec![0.0; 3], vec![0.0]).unwrap();
    let e = t.train_epoch(&wrong).unwrap_err().to_string();
    assert!(
        e.contains("3 inputs") && e.contains("the model's 2 inputs"),
        "{e}"
    );
    let none = TrainData::new(2, 1, vec![], vec![]).unwrap();
    assert!(
        t.train_epoch(&none)
            .unwrap_err()
            .to_string()
            .contains("at least one sample")
    );
}

#[test]
fn diverging_training_is_an_error_not_nan_weights() {
    let data = tessera_nn::datasets::sine(16);
    let mut linear = Network::new(&[1, 8, 1], Activation::Linear, Init::FannUniform, 2).unwrap();
    linear
        .set_output_activation(Activation::Linear, 1.0)
        .unwrap();
    let config = TrainConfig::new(Algorithm::Batch {
        learning_rate: 1e30,
    });
    let mut t = Trainer::new(Model::new(CpuNn::new(), &linear).unwrap(), config).unwrap();
    let result = (0..20).try_for_each(|_| t.train_epoch(&data).map(drop));
    assert!(
        matches!(result, Err(TesseraError::Diverged { .. })),
        "{result:?}"
    );
}

#[test]
fn outputs_that_overflow_are_an_error_not_infinities() {
    let mut linear = Network::new(&[2, 2], Activation::Linear, Init::Uniform(1.0), 4).unwrap();
    linear.layers[0].weights = vec![1e30, 1e30, 1e30, 1e30];
    let mut model = Model::new(CpuNn::new(), &linear).unwrap();
    assert!(model.forward(&[1.0, 1.0]).is_ok());
    assert!(matches!(
        model.forward(&[3e38, 3e38]),
        Err(TesseraError::Diverged {
            what: "network outputs",
            ..
        })
    ));
}
