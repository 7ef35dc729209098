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
