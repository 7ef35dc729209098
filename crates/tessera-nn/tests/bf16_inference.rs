//! Batch-1 inference with bf16 weights (`tessera_cpu::nn::Bf16Mlp`) against the f32
//! forward of the same net: within 1e-2 relative on random nets, every activation
//! family, odd and even widths, at every SIMD level this CPU runs; bad nets and inputs
//! are typed errors.

use proptest::prelude::*;
use tessera_cpu::nn::{Bf16Mlp, bf16_bits};
use tessera_cpu::{CpuNn, SimdLevel};
use tessera_nn::{Init, Model, Network};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::Activation;
use tessera_tensor::rng::Rng;

/// Outputs agree to 1e-2 of the larger of the output and `floor` or the largest
/// output: an output near zero is a cancellation of terms of the layer's typical
/// size, each rounded to 2^-9 relative, so its error scales with them, not with it.
fn assert_close(got: &[f32], want: &[f32], floor: f32, what: &str) {
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-2 * w.abs().max(scale),
            "{what}: output {i} is {g}, f32 gives {w}"
        );
    }
}

fn check(sizes: &[usize], hidden: Activation, output: Activation, seed: u64, floor: f32) {
    let mut net = Network::new(sizes, hidden, Init::Xavier, seed).unwrap();
    net.set_output_activation(output, 0.7).unwrap();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut f32_model = Model::new(CpuNn::new(), &net).unwrap();
    // Every SIMD level this CPU runs.
    let mut nets: Vec<_> = SimdLevel::available()
        .into_iter()
        .map(|level| {
            (
                level,
                Bf16Mlp::with_level(&net.dense_layers(), level).unwrap(),
            )
        })
        .collect();
    for (_, bf16) in &nets {
        assert_eq!(
            (bf16.inputs(), bf16.outputs()),
            (sizes[0], sizes[sizes.len() - 1])
        );
    }
    for _ in 0..3 {
        let x: Vec<f32> = (0..sizes[0]).map(|_| rng.range(-1.0, 1.0)).collect();
        let want = f32_model.forward(&x).unwrap();
        for (level, bf16) in &mut nets {
            let got = bf16.forward(&x).unwrap().to_vec();
            assert_close(
                &got,
                &want,
                floor,
                &format!("{sizes:?} {hidden:?} {output:?} at {level:?}"),
            );
        }
    }
}

#[test]
fn mnist_sized_net_matches_f32() {
    check(
        &[784, 128, 10],
        Activation::SigmoidSymmetric,
        Activation::Linear,
        1,
        0.1,
    );
    check(
        &[784, 128, 10],
        Activation::Relu,
        Activation::Softmax,
        2,
        0.1,
    );
}

#[test]
fn odd_widths_and_every_tail() {
    for (i, sizes) in [[1, 1, 1], [3, 5, 7], [17, 9, 33], [65, 129, 3], [2, 64, 1]]
        .iter()
        .enumerate()
    {
        // Sigmoid hidden units are all about 0.5: the output sums cancel terms of
        // that size.
        check(
            sizes,
            Activation::Sigmoid,
            Activation::SigmoidSymmetric,
            i as u64,
            0.5,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_nets_match_f32(
        sizes in proptest::collection::vec(1usize..90, 2..5),
        seed in 0u64..1000,
    ) {
        check(&sizes, Activation::SigmoidSymmetric, Activation::Sigmoid, seed, 0.1);
    }
}

#[test]
fn rounding_is_to_nearest_even() {
    assert_eq!(bf16_bits(1.0), 0x3f80);
    // 1 + 2^-8 is halfway between two bf16s: ties go to the even one (1.0).
    assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
    // 1 + 3 * 2^-8 is halfway between mantissas 1 and 2: ties go to the even 2.
    assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(bf16_bits(-2.5), 0xc020);
    assert_eq!(
        f32::from_bits(u32::from(bf16_bits(0.1)) << 16),
        0.100_097_656
    );
}

#[test]
fn bad_nets_and_inputs_are_typed_errors() {
    let net = Network::new(&[4, 3, 2], Activation::Sigmoid, Init::Xavier, 3).unwrap();
    let mut layers = net.dense_layers();
    let err = Bf16Mlp::new(&[]).unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    layers[1].inputs = 4;
    let err = Bf16Mlp::new(&layers).unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    let nan = vec![f32::NAN; 12];
    let mut layers = net.dense_layers();
    layers[0].w = &nan;
    let err = Bf16Mlp::new(&layers).unwrap_err();
    assert!(matches!(err, TesseraError::NonFinite { .. }), "{err}");
    let mut layers = net.dense_layers();
    layers[0].activation = Activation::Softmax;
    assert!(Bf16Mlp::new(&layers).is_err());
    let mut bf16 = Bf16Mlp::new(&net.dense_layers()).unwrap();
    let err = bf16.forward(&[0.0; 3]).unwrap_err();
    assert!(matches!(err, TesseraError::ShapeMismatch { .. }), "{err}");
    let err = bf16.forward(&[0.0, f32::INFINITY, 0.0, 0.0]).unwrap_err();
    assert!(matches!(err, TesseraError::NonFinite { .. }), "{err}");
    // Still usable after refusing bad input.
    assert_eq!(bf16.forward(&[0.5; 4]).unwrap().len(), 2);
}
