//! FANN `.net` and `.data` files: a net written by libfann 2.2 runs here with the
//! output libfann computed, files round-trip, and malformed ones name the line.

use tessera_cpu::CpuNn;
use tessera_nn::fann::{FannSettings, format_data, format_net, parse_data, parse_net, read_net};
use tessera_nn::{Init, Model, Network, TrainData};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::Activation;

const PROBE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/libfann-2.2-2-3-1.net"
);

#[test]
fn a_net_saved_by_libfann_gives_libfanns_output() {
    // Written by libfann 2.2's fann_save for fann_create_standard(3, 2, 3, 1) with
    // sigmoid-symmetric hidden and sigmoid output layers; fann_run on (0.5, -1)
    // printed 0.522666514.
    let (net, settings) = read_net(PROBE).unwrap();
    assert_eq!(net.sizes(), vec![2, 3, 1]);
    assert_eq!(net.layers[0].activation, Activation::SigmoidSymmetric);
    assert_eq!(net.layers[1].activation, Activation::Sigmoid);
    assert_eq!(settings, FannSettings::default());
    let out = Model::new(CpuNn::new(), &net)
        .unwrap()
        .forward(&[0.5, -1.0])
        .unwrap();
    assert!((out[0] - 0.522_666_5).abs() < 1e-5, "{out:?}");
}

#[test]
fn nets_round_trip_through_the_fann_format() {
    let (probe, _) = read_net(PROBE).unwrap();
    let mut net =
        Network::new(&[5, 7, 4, 3], Activation::ElliotSymmetric, Init::Xavier, 3).unwrap();
    net.set_activation(1, Activation::Gaussian, 0.25).unwrap();
    net.set_output_activation(Activation::Linear, 1.0).unwrap();
    let settings = FannSettings {
        learning_rate: 0.3,
        bit_fail_limit: 0.1,
        ..FannSettings::default()
    };
    for net in [probe, net] {
        let text = format_net(&net, &settings).unwrap();
        let (back, s) = parse_net(&text, "round trip").unwrap();
        assert_eq!(back, net);
        assert!((s.learning_rate - settings.learning_rate).abs() < 1e-6);
    }
    let modern = Network::new(&[2, 2], Activation::Relu, Init::He, 1).unwrap();
    assert!(format_net(&modern, &settings).is_err());
}

#[test]
fn data_files_round_trip() {
    let data = TrainData::new(2, 1, vec![0.0, 1.0, -0.5, 2.25], vec![1.0, -1.0]).unwrap();
    assert_eq!(parse_data(&format_data(&data), "x").unwrap(), data);
    assert_eq!(
        parse_data("2 2 1\n0 1\n1\n-0.5 2.25\n-1\n", "x").unwrap(),
        data
    );
}

fn line_of(e: TesseraError) -> usize {
    match e {
        TesseraError::Format { line, .. } => line,
        other => panic!("expected a format error, got {other}"),
    }
}

#[test]
fn malformed_files_name_the_line() {
    let good = std::fs::read_to_string(PROBE).unwrap();
    assert_eq!(line_of(parse_net("FANN_FIX_2.0\n", "x").unwrap_err()), 1);
    let bad_number = good.replace("layer_sizes=3 4 2", "layer_sizes=3 four 2");
    assert_eq!(line_of(parse_net(&bad_number, "x").unwrap_err()), 33);
    let bad_tuple = good.replace("(4, 3, 5.0", "(4, 3 5.0");
    let e = parse_net(&bad_tuple, "x").unwrap_err();
    assert_eq!(line_of(e.clone()), 35, "{e}");
    let short = good.replace("(6, 9.61810424923896789551e-02) ", "");
    assert_eq!(line_of(parse_net(&short, "x").unwrap_err()), 36);
    let shortcut = good.replace("network_type=0", "network_type=1");
    assert_eq!(line_of(parse_net(&shortcut, "x").unwrap_err()), 5);
    assert_eq!(
        line_of(parse_data("2 2 1\n0 1\n1\n-0.5 x\n-1\n", "x").unwrap_err()),
        4
    );
    assert_eq!(
        line_of(parse_data("1 2 1\n0 1\n1\n7\n", "x").unwrap_err()),
        4
    );
    assert_eq!(line_of(parse_data("1 2\n", "x").unwrap_err()), 1);
    assert!(matches!(
        read_net("/nonexistent/file.net"),
        Err(TesseraError::Io { .. })
    ));
}
