//! The facade gives the same answers on the CPU and the GPU, moves state between
//! them, and reports bad input as typed errors.

use tessera::{Acquisition, AcquisitionConfig, Backend, Device, Objective, TesseraError};
use tessera_tensor::reference::parity::{OwnedStep, Rng, compare_state};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    if let Some(ctx) = tessera_gpu::testing::shared_context() {
        d.push(Device::from_context(ctx));
    }
    d
}

#[test]
fn cpu_and_gpu_agree_through_the_facade() {
    let cfg =
        AcquisitionConfig::batched(7, 20, vec![0, 3, 6, 2]).with_objective(Objective::Minimize);
    let mut runs: Vec<Acquisition> = devices()
        .iter()
        .map(|d| Acquisition::new(d, &cfg).unwrap())
        .collect();
    let mut rng = Rng::new(99);
    for _ in 0..45 {
        let input = OwnedStep::random(&cfg, &mut rng);
        for acq in &mut runs {
            acq.step(&input.input()).unwrap();
        }
    }
    let states: Vec<_> = runs
        .iter_mut()
        .map(|a| a.state_blocking().unwrap())
        .collect();
    let selected: Vec<_> = runs
        .iter_mut()
        .map(|a| a.selected_blocking().unwrap())
        .collect();
    for (s, sel) in states.iter().zip(&selected).skip(1) {
        compare_state(s, &states[0]).unwrap();
        assert_eq!(sel, &selected[0]);
    }
}

#[test]
fn state_moves_between_devices() {
    let cfg = AcquisitionConfig::batched(4, 6, vec![1, 2]);
    let mut rng = Rng::new(5);
    for from in devices() {
        let mut a = Acquisition::new(&from, &cfg).unwrap();
        for _ in 0..9 {
            a.step(&OwnedStep::random(&cfg, &mut rng).input()).unwrap();
        }
        let checkpoint = a.state_blocking().unwrap();
        for to in devices() {
            let mut b = Acquisition::from_state(&to, &checkpoint).unwrap();
            assert_eq!(b.state_blocking().unwrap(), checkpoint);
            let step = OwnedStep::random(&cfg, &mut rng);
            a.step(&step.input()).unwrap();
            b.step(&step.input()).unwrap();
            compare_state(&b.state_blocking().unwrap(), &a.state_blocking().unwrap()).unwrap();
            a = Acquisition::from_state(&from, &checkpoint).unwrap();
        }
    }
}

#[test]
fn bad_input_is_a_typed_error_on_every_device() {
    for device in devices() {
        assert!(matches!(
            Acquisition::new(&device, &AcquisitionConfig::single(3, 10, 5)),
            Err(TesseraError::IndexOutOfRange {
                index: 5,
                bound: 3,
                ..
            })
        ));
        let mut malformed =
            tessera::AcquisitionState::new(&AcquisitionConfig::single(3, 10, 0)).unwrap();
        malformed.values.truncate(5);
        assert!(matches!(
            Acquisition::from_state(&device, &malformed),
            Err(TesseraError::ShapeMismatch { what: "values", .. })
        ));
    }
}

#[test]
fn async_reads_match_blocking_ones() {
    for device in devices() {
        let cfg = AcquisitionConfig::single(5, 8, 4);
        let mut a = Acquisition::new(&device, &cfg).unwrap();
        a.step(&OwnedStep::random(&cfg, &mut Rng::new(1)).input())
            .unwrap();
        let blocking = a.summaries_blocking().unwrap();
        let awaited = pollster::block_on(a.summaries()).unwrap();
        assert_eq!(blocking, awaited);
        assert_eq!(
            a.backend() == Backend::Gpu,
            device.backend() == Backend::Gpu
        );
    }
}

#[test]
fn device_new_never_picks_a_software_rasteriser_by_default() {
    let d = tessera::Device::with_preference_blocking(tessera::Preference::Auto);
    if let Some(ctx) = d.gpu_context() {
        assert!(!ctx.is_software(), "{}", d.describe());
    } else {
        // No hardware GPU here (CI runs lavapipe): the CPU, and the caller is told why.
        let reason = d.fallback_reason().expect("a fallback reason");
        assert!(!reason.is_empty());
        assert!(d.describe().contains(reason), "{}", d.describe());
    }
    // Asking for any GPU takes the software one.
    if tessera_gpu::testing::shared_context().is_some() {
        let any = tessera::Device::with_preference_blocking(tessera::Preference::Gpu);
        assert_eq!(any.backend(), Backend::Gpu, "{}", any.describe());
    }
}

/// One dependency, one `Device`: a FANN net trained with its file's settings gives
/// the same weights on every device, with no generic parameter at the call site.
#[test]
fn a_fann_net_trains_the_same_on_every_device() {
    use tessera::nn::{Activation, Init, Model, Network, TrainConfig, Trainer, datasets, fann};
    let net = Network::new(
        &[2, 4, 1],
        Activation::SigmoidSymmetric,
        Init::FannUniform,
        3,
    )
    .unwrap();
    let text = fann::format_net(&net, &fann::FannSettings::default()).unwrap();
    let (net, settings) = fann::parse_net(&text, "xor.net").unwrap();
    let mut trained = Vec::new();
    for device in devices() {
        let model = Model::on(&device, &net).unwrap();
        assert_eq!(model.backend(), device.backend());
        let mut trainer = Trainer::new(model, TrainConfig::from_fann(&settings).unwrap()).unwrap();
        let stats = trainer
            .train_until(&datasets::xor(), 20, 0.0, |_| true)
            .unwrap();
        assert_eq!(stats.epoch, 20);
        let out = trainer.forward(datasets::xor().inputs()).unwrap();
        trained.push((trainer.to_network().unwrap(), out));
    }
    for (net, out) in &trained[1..] {
        for (a, b) in net.layers.iter().zip(&trained[0].0.layers) {
            for (x, y) in a.weights.iter().zip(&b.weights) {
                assert!((x - y).abs() <= 1e-4, "weights differ: {x} vs {y}");
            }
        }
        for (x, y) in out.iter().zip(&trained[0].1) {
            assert!((x - y).abs() <= 1e-4);
        }
    }
}

#[test]
fn bad_networks_and_hyper_parameters_are_typed_errors_on_every_device() {
    use tessera::nn::{Activation, Algorithm, Init, Model, Network, TrainConfig, Trainer};
    let good = Network::new(
        &[2, 3, 1],
        Activation::SigmoidSymmetric,
        Init::FannUniform,
        1,
    )
    .unwrap();
    for device in devices() {
        let mut nan = good.clone();
        nan.layers[1].weights[2] = f32::NAN;
        assert!(matches!(
            Model::on(&device, &nan),
            Err(TesseraError::InvalidConfig {
                field: "layer weights",
                ..
            })
        ));
        assert!(Model::on(&device, &Network { layers: vec![] }).is_err());
        let bad_lr = TrainConfig::new(Algorithm::Batch {
            learning_rate: f32::NAN,
        });
        assert!(matches!(
            Trainer::new(Model::on(&device, &good).unwrap(), bad_lr),
            Err(TesseraError::InvalidArgument {
                what: "learning_rate",
                ..
            })
        ));
    }
}

/// The simulator draws the same samples (to f32 tolerance) on every device.
#[test]
fn the_simulator_agrees_on_every_device() {
    use tessera::sim::{Intervention, Interventions, ScmBatch, ScmConfig, Simulator};
    let scm = ScmBatch::generate(&ScmConfig::new(16, 12, 3)).unwrap();
    let mut ivs = vec![Intervention::OBSERVE; 16 * 12];
    (0..16).for_each(|e| ivs[e * 12 + (e % 12)] = Intervention::shift(0.5));
    let runs: Vec<Vec<f32>> = devices()
        .iter()
        .map(|d| {
            let mut sim = Simulator::on(d, &scm).unwrap();
            assert_eq!(sim.backend(), d.backend());
            sim.sample(4, 32, &Interventions::PerEnv(&ivs)).unwrap()
        })
        .collect();
    for run in &runs[1..] {
        for (a, b) in run.iter().zip(&runs[0]) {
            assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

/// The closed loop chooses the same interventions on every device for a fixed seed
/// (near-ties in the scores may break differently: the samples agree to f32
/// rounding, not bit for bit), and its posterior finds true parent sets.
#[test]
fn the_closed_loop_agrees_across_devices() {
    use tessera::causal::{ClosedLoop, LoopConfig};
    use tessera::sim::{ScmBatch, ScmConfig};
    let scm = ScmBatch::generate(&ScmConfig::new(32, 6, 12)).unwrap();
    let mut runs: Vec<ClosedLoop> = devices()
        .iter()
        .map(|d| ClosedLoop::on(d, &scm, &LoopConfig::default()).unwrap())
        .collect();
    let (mut same, mut total) = (0, 0);
    for _ in 0..20 {
        let chosen: Vec<Vec<u32>> = runs
            .iter_mut()
            .map(|r| {
                r.step().unwrap();
                r.chosen().unwrap()
            })
            .collect();
        for c in &chosen[1..] {
            same += c.iter().zip(&chosen[0]).filter(|(a, b)| a == b).count();
            total += c.len();
        }
    }
    assert!(same * 10 >= total * 9, "{same} of {total} choices agree");
    for r in &mut runs {
        assert_eq!(r.steps(), 20);
        assert!(r.map_matches_truth().unwrap().iter().any(|&m| m));
        assert!(r.best_values().unwrap().iter().all(|v| v.is_finite()));
    }
}

/// With random choices and uniform values, every device draws the same choices (the
/// same Philox words) and the same values, so the samples, the best values and the
/// posterior agree to f32 rounding, step by step.
#[test]
fn random_policies_draw_the_same_on_every_device() {
    use tessera::causal::{ClosedLoop, LoopConfig, Selection};
    use tessera::sim::{ScmBatch, ScmConfig};
    let scm = ScmBatch::generate(&ScmConfig::new(40, 7, 3)).unwrap();
    let config = LoopConfig {
        selection: Selection::Random { seed: 9 },
        ..LoopConfig::default()
    };
    let mut runs: Vec<ClosedLoop> = devices()
        .iter()
        .map(|d| ClosedLoop::on(d, &scm, &config).unwrap())
        .collect();
    for _ in 0..20 {
        let chosen: Vec<Vec<u32>> = runs
            .iter_mut()
            .map(|r| {
                let next = r.chosen().unwrap();
                r.step().unwrap();
                next
            })
            .collect();
        assert!(chosen.iter().all(|c| c == &chosen[0]));
        assert!(
            chosen[0]
                .iter()
                .enumerate()
                .all(|(e, &v)| v != scm.targets()[e])
        );
    }
    let best: Vec<Vec<f32>> = runs.iter_mut().map(|r| r.best_values().unwrap()).collect();
    let posteriors: Vec<_> = runs.iter_mut().map(|r| r.posterior().unwrap()).collect();
    for (b, p) in best.iter().zip(&posteriors).skip(1) {
        for (x, y) in b.iter().zip(&best[0]) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
        for (x, y) in p.marginals.iter().zip(&posteriors[0].marginals) {
            assert!((x - y).abs() <= 1e-3, "marginal {x} vs {y}");
        }
        assert_eq!(p.rows, posteriors[0].rows);
    }
    assert!(posteriors[0].rows.iter().all(|&r| r == 20));
}

/// A value the acquisition state must refuse (its children pass MAX_MAGNITUDE): the
/// CPU refuses the step with nothing changed; the GPU, which reads nothing back in a
/// step, reports it on the next read instead of returning silent garbage.
#[test]
fn a_loop_whose_samples_pass_the_bound_is_refused_or_reported() {
    use tessera::causal::{ClosedLoop, LoopConfig, Selection, ValuePolicy};
    use tessera::sim::Graph;
    use tessera::sim::{ScmBatch, ScmConfig};
    let mut sc = ScmConfig::new(8, 6, 4);
    sc.graph = Graph::ErdosRenyi {
        expected_degree: 5.0,
    };
    sc.weight_range = (1.5, 2.0);
    let scm = ScmBatch::generate(&sc).unwrap();
    let config = LoopConfig {
        selection: Selection::Random { seed: 1 },
        values: ValuePolicy::Fixed(1e15),
        ..LoopConfig::default()
    };
    for device in devices() {
        let mut run = ClosedLoop::on(&device, &scm, &config).unwrap();
        let outcome = (0..4)
            .try_for_each(|_| run.step())
            .and_then(|()| run.best_values());
        match outcome {
            Err(TesseraError::TooLarge { .. }) => {
                assert_eq!(device.backend(), tessera::Backend::Cpu);
                assert!(run.steps() < 4, "the refused step was not counted");
            }
            Err(TesseraError::Diverged { .. }) => {
                assert_eq!(device.backend(), tessera::Backend::Gpu)
            }
            other => panic!("{other:?} on {:?}", device.backend()),
        }
    }
}

#[test]
fn closed_loop_bad_input_is_typed() {
    use tessera::causal::{ClosedLoop, LoopConfig, ValuePolicy};
    use tessera::sim::{ScmBatch, ScmConfig};
    let scm = ScmBatch::generate(&ScmConfig::new(4, 5, 2)).unwrap();
    let device = Device::cpu();
    let backwards = LoopConfig {
        values: ValuePolicy::Uniform {
            lo: 1.0,
            hi: -1.0,
            seed: 0,
        },
        ..LoopConfig::default()
    };
    assert!(matches!(
        ClosedLoop::on(&device, &scm, &backwards),
        Err(TesseraError::InvalidConfig {
            field: "values",
            ..
        })
    ));
    let too_many = LoopConfig {
        max_parents: 9,
        ..LoopConfig::default()
    };
    assert!(ClosedLoop::on(&device, &scm, &too_many).is_err());
    let bad_rate = LoopConfig {
        learning_rate: 0.0,
        ..LoopConfig::default()
    };
    assert!(matches!(
        ClosedLoop::on(&device, &scm, &bad_rate),
        Err(TesseraError::InvalidConfig {
            field: "learning_rate",
            ..
        })
    ));
    let mut run = ClosedLoop::on(&device, &scm, &LoopConfig::default()).unwrap();
    assert!(matches!(
        run.step_with_values(&[0.0; 3]),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        run.step_with_values(&[0.0, f32::NAN, 0.0, 0.0]),
        Err(TesseraError::NonFinite { .. })
    ));
    assert_eq!(run.steps(), 0, "a refused step changed nothing");
    run.step_with_values(&[1.0; 4]).unwrap();
    assert_eq!(run.steps(), 1);
}

#[test]
fn cascade_training_solves_two_spirals_on_every_device() {
    use tessera::nn::{
        Activation, CascadeConfig, CascadeNetwork, CascadeTrainer, StopFunction, datasets,
    };
    for device in devices() {
        let net = CascadeNetwork::new(2, 1, Activation::SigmoidSymmetric, 0.5, 1).unwrap();
        let config = CascadeConfig {
            stop: StopFunction::BitFail,
            seed: 1,
            ..CascadeConfig::default()
        };
        let mut trainer = CascadeTrainer::on(&device, net, config).unwrap();
        let data = datasets::two_spirals();
        let report = trainer.train(&data, 40, 0.0, |_| true).unwrap();
        assert!(report.reached && report.bit_fail == 0, "{report:?}");
        let net = trainer.into_network();
        let accuracy = datasets::sign_accuracy(&net.run(data.inputs()).unwrap(), data.outputs());
        assert_eq!(accuracy, 1.0);
    }
}

/// On a device without `SHADER_F64` (as Metal and GL are) the loop runs the f32
/// posterior: with random choices it follows the CPU's f64 loop to f32 tolerance, and
/// a long run on models whose targets f32 cannot score is reported as `Diverged` (from
/// the first step that faulted, on every later read), never as a wrong posterior.
#[test]
fn the_loop_without_f64_follows_the_cpu_or_says_it_cannot() {
    use tessera::causal::{ClosedLoop, LoopConfig, Selection};
    use tessera::sim::{ScmBatch, ScmConfig};
    let Some(ctx) = tessera_gpu::testing::f32_context() else {
        return;
    };
    let f32_device = Device::from_context(ctx);
    let mut config = ScmConfig::new(40, 10, 21);
    config.scale_by_in_degree = true;
    let scm = ScmBatch::generate(&config).unwrap();
    let random = LoopConfig {
        selection: Selection::Random { seed: 4 },
        ..LoopConfig::default()
    };
    let mut cpu = ClosedLoop::on(&Device::cpu(), &scm, &random).unwrap();
    let mut gpu = ClosedLoop::on(&f32_device, &scm, &random).unwrap();
    for _ in 0..20 {
        assert_eq!(cpu.chosen().unwrap(), gpu.chosen().unwrap());
        cpu.step().unwrap();
        gpu.step().unwrap();
    }
    let (want, got) = (cpu.posterior().unwrap(), gpu.posterior().unwrap());
    for (g, w) in got.marginals.iter().zip(&want.marginals) {
        assert!((g - w).abs() <= 2e-3, "marginal {g} vs {w}");
    }
    for (g, w) in gpu
        .best_values()
        .unwrap()
        .iter()
        .zip(cpu.best_values().unwrap())
    {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "best {g} vs {w}");
    }

    // Unscaled weights: targets fitted ever more tightly as rows accumulate.
    let scm = ScmBatch::generate(&ScmConfig::new(256, 20, 3)).unwrap();
    let mut run = ClosedLoop::on(&f32_device, &scm, &LoopConfig::default()).unwrap();
    let mut first_fault = None;
    for step in 1..=250u32 {
        run.step().unwrap();
        if step % 25 != 0 {
            continue;
        }
        match (run.posterior(), first_fault) {
            (Ok(p), None) => {
                assert!(p.marginals.iter().all(|m| (0.0..=1.0).contains(m)));
                assert!(p.rows.iter().all(|&r| r == u64::from(step)));
            }
            (Err(TesseraError::Diverged { step: at, .. }), None) => {
                assert!((1..=step as usize).contains(&at), "fault at {at} by {step}");
                first_fault = Some(at);
            }
            (Err(TesseraError::Diverged { step: at, .. }), Some(first)) => assert_eq!(at, first),
            (other, _) => panic!("step {step}: {other:?} after {first_fault:?}"),
        }
    }
    eprintln!("f32 loop, 256 x 20 unscaled: first fault at {first_fault:?}");
}
