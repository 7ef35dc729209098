//! Interop with the real libfann 2.2, loaded at run time: a net trained by libfann
//! runs in tessera with the same outputs, and a net trained in tessera runs in
//! libfann with the same outputs (1e-5); RPROP and SARPROP follow libfann's training
//! trajectory. Skips with one line where libfann is not installed;
//! `TESSERA_REQUIRE_FANN=1` (set by `.ci/run`) makes that a failure.

use std::ffi::{CString, c_char, c_float, c_uint, c_void};
use std::path::{Path, PathBuf};

use libloading::{Library, Symbol};
use tessera_cpu::CpuNn;
use tessera_nn::fann::{FannSettings, read_net, write_data, write_net};
use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::nn::{Activation, Derivative, RpropParams};

type Fann = *mut c_void;

fn libfann() -> Option<Library> {
    for name in ["libfloatfann.so.2", "libfloatfann.so", "libfloatfann.dylib"] {
        // SAFETY: loading libfann runs no initialisation code with preconditions.
        if let Ok(lib) = unsafe { Library::new(name) } {
            return Some(lib);
        }
    }
    let required = std::env::var("TESSERA_REQUIRE_FANN").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "TESSERA_REQUIRE_FANN=1 but libfloatfann could not be loaded (apt-get install libfann-dev)"
    );
    eprintln!(
        "skipping libfann interop: libfloatfann is not installed (apt-get install libfann-dev)"
    );
    None
}

fn xor() -> TrainData {
    TrainData::new(
        2,
        1,
        vec![-1., -1., -1., 1., 1., -1., 1., 1.],
        vec![-1., 1., 1., -1.],
    )
    .unwrap()
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tessera-fann-{}-{name}", std::process::id()))
}

fn c_path(p: &std::path::Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// Runs `inputs` (rows of 2) through a libfann net and returns the outputs.
fn fann_outputs(lib: &Library, ann: Fann, inputs: &[f32], n_out: usize) -> Vec<f32> {
    // SAFETY: the symbols have FANN 2.2's C signatures (fann.h); `ann` is a live net
    // with 2 inputs and `n_out` outputs, and fann_run's result holds n_out floats.
    unsafe {
        let run: Symbol<unsafe extern "C" fn(Fann, *const c_float) -> *const c_float> =
            lib.get(b"fann_run").unwrap();
        inputs
            .chunks(2)
            .flat_map(|x| std::slice::from_raw_parts(run(ann, x.as_ptr()), n_out).to_vec())
            .collect()
    }
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5, "{a:?} vs {b:?}");
    }
}

#[test]
fn a_net_trained_by_libfann_runs_in_tessera() {
    let Some(lib) = libfann() else { return };
    let (data_path, net_path) = (temp("xor.data"), temp("libfann.net"));
    write_data(&data_path, &xor()).unwrap();
    // SAFETY: FANN 2.2's C API with its documented signatures; every pointer passed
    // is valid for the call and the nets are destroyed exactly once.
    let fann_out = unsafe {
        let create: Symbol<unsafe extern "C" fn(c_uint, *const c_uint) -> Fann> =
            lib.get(b"fann_create_standard_array").unwrap();
        let hidden: Symbol<unsafe extern "C" fn(Fann, c_uint)> =
            lib.get(b"fann_set_activation_function_hidden").unwrap();
        let output: Symbol<unsafe extern "C" fn(Fann, c_uint)> =
            lib.get(b"fann_set_activation_function_output").unwrap();
        let read: Symbol<unsafe extern "C" fn(*const c_char) -> *mut c_void> =
            lib.get(b"fann_read_train_from_file").unwrap();
        let epoch: Symbol<unsafe extern "C" fn(Fann, *mut c_void) -> c_float> =
            lib.get(b"fann_train_epoch").unwrap();
        let save: Symbol<unsafe extern "C" fn(Fann, *const c_char) -> i32> =
            lib.get(b"fann_save").unwrap();
        let destroy: Symbol<unsafe extern "C" fn(Fann)> = lib.get(b"fann_destroy").unwrap();
        let destroy_train: Symbol<unsafe extern "C" fn(*mut c_void)> =
            lib.get(b"fann_destroy_train").unwrap();
        let ann = create(3, [2u32, 4, 1].as_ptr());
        hidden(ann, 5); // FANN_SIGMOID_SYMMETRIC
        output(ann, 5);
        let train = read(c_path(&data_path).as_ptr());
        assert!(
            !train.is_null(),
            "libfann could not read the .data file tessera wrote"
        );
        for _ in 0..60 {
            epoch(ann, train);
        }
        assert_eq!(save(ann, c_path(&net_path).as_ptr()), 0);
        let out = fann_outputs(&lib, ann, xor().inputs(), 1);
        destroy_train(train);
        destroy(ann);
        out
    };
    let (net, _) = read_net(&net_path).unwrap();
    let ours = Model::new(CpuNn::new(), &net)
        .unwrap()
        .forward(xor().inputs())
        .unwrap();
    assert_close(&ours, &fann_out);
    std::fs::remove_file(data_path).ok();
    std::fs::remove_file(net_path).ok();
}

#[test]
fn a_net_trained_in_tessera_runs_in_libfann() {
    let Some(lib) = libfann() else { return };
    let net = Network::new(
        &[2, 3, 1],
        Activation::SigmoidSymmetric,
        Init::FannUniform,
        11,
    )
    .unwrap();
    let mut trainer = Trainer::new(
        Model::new(CpuNn::new(), &net).unwrap(),
        TrainConfig::new(Algorithm::fann_rprop()),
    )
    .unwrap();
    trainer.train_until(&xor(), 300, 0.001, |_| true).unwrap();
    let trained = trainer.model().to_network().unwrap();
    let ours = Model::new(CpuNn::new(), &trained)
        .unwrap()
        .forward(xor().inputs())
        .unwrap();
    let path = temp("tessera.net");
    write_net(&path, &trained, &FannSettings::default()).unwrap();
    // SAFETY: as above.
    let fann_out = unsafe {
        let load: Symbol<unsafe extern "C" fn(*const c_char) -> Fann> =
            lib.get(b"fann_create_from_file").unwrap();
        let destroy: Symbol<unsafe extern "C" fn(Fann)> = lib.get(b"fann_destroy").unwrap();
        let ann = load(c_path(&path).as_ptr());
        assert!(
            !ann.is_null(),
            "libfann rejected the .net file tessera wrote"
        );
        let out = fann_outputs(&lib, ann, xor().inputs(), 1);
        destroy(ann);
        out
    };
    assert_close(&fann_out, &ours);
    std::fs::remove_file(path).ok();
}

/// A `.net` file written by libfann's own `fann_save`: `net` loaded into libfann,
/// then `settings` applied through libfann's setters.
fn libfann_saved(lib: &Library, net: &Network, settings: &FannSettings, name: &str) -> PathBuf {
    let (draft, saved) = (
        temp(&format!("{name}-draft.net")),
        temp(&format!("{name}.net")),
    );
    write_net(&draft, net, &FannSettings::default()).unwrap();
    // SAFETY: FANN 2.2's C API with its documented signatures (fann_train.h); the net
    // is live from create to destroy.
    unsafe {
        let load: Symbol<unsafe extern "C" fn(*const c_char) -> Fann> =
            lib.get(b"fann_create_from_file").unwrap();
        let save: Symbol<unsafe extern "C" fn(Fann, *const c_char) -> i32> =
            lib.get(b"fann_save").unwrap();
        let destroy: Symbol<unsafe extern "C" fn(Fann)> = lib.get(b"fann_destroy").unwrap();
        let ann = load(c_path(&draft).as_ptr());
        assert!(!ann.is_null());
        let set_uint = |name: &[u8], v: u32| {
            let f: Symbol<unsafe extern "C" fn(Fann, c_uint)> = lib.get(name).unwrap();
            f(ann, v)
        };
        set_uint(b"fann_set_training_algorithm", settings.training_algorithm);
        set_uint(
            b"fann_set_train_error_function",
            settings.train_error_function,
        );
        let set_float = |name: &[u8], v: f32| {
            let f: Symbol<unsafe extern "C" fn(Fann, c_float)> = lib.get(name).unwrap();
            f(ann, v)
        };
        set_float(b"fann_set_learning_rate", settings.learning_rate);
        set_float(b"fann_set_learning_momentum", settings.learning_momentum);
        set_float(b"fann_set_quickprop_decay", settings.quickprop_decay);
        set_float(b"fann_set_quickprop_mu", settings.quickprop_mu);
        set_float(
            b"fann_set_rprop_increase_factor",
            settings.rprop.increase_factor,
        );
        set_float(
            b"fann_set_rprop_decrease_factor",
            settings.rprop.decrease_factor,
        );
        set_float(b"fann_set_rprop_delta_min", settings.rprop.delta_min);
        set_float(b"fann_set_rprop_delta_max", settings.rprop.delta_max);
        set_float(b"fann_set_rprop_delta_zero", settings.rprop_delta_zero);
        set_float(b"fann_set_bit_fail_limit", settings.bit_fail_limit);
        assert_eq!(save(ann, c_path(&saved).as_ptr()), 0);
        destroy(ann);
    }
    std::fs::remove_file(draft).ok();
    saved
}

/// MSE of each of `epochs` epochs when libfann and tessera each train the net of the
/// libfann-saved file `net_path` on `data` with the file's own settings (tessera
/// through [`TrainConfig::from_fann`]): `(libfann, tessera)`.
fn mse_per_epoch(
    lib: &Library,
    net_path: &Path,
    data: &TrainData,
    epochs: usize,
) -> (Vec<f32>, Vec<f64>) {
    let fann_mse = libfann_epochs(lib, net_path, data, epochs);
    let (net, settings) = read_net(net_path).unwrap();
    let mut trainer = Trainer::new(
        Model::new(CpuNn::new(), &net).unwrap(),
        TrainConfig::from_fann(&settings).unwrap(),
    )
    .unwrap();
    let ours = (0..epochs)
        .map(|_| trainer.train_epoch(data).unwrap().mse.unwrap())
        .collect();
    (fann_mse, ours)
}

/// The MSE of each of `epochs` calls of libfann's `fann_train_epoch` on `data`, from
/// the net of the file `net_path` with the file's settings.
fn libfann_epochs(lib: &Library, net_path: &Path, data: &TrainData, epochs: usize) -> Vec<f32> {
    let data_path = net_path.with_extension(format!("{}.data", std::process::id()));
    write_data(&data_path, data).unwrap();
    // SAFETY: as above.
    let fann_mse = unsafe {
        let load: Symbol<unsafe extern "C" fn(*const c_char) -> Fann> =
            lib.get(b"fann_create_from_file").unwrap();
        let read: Symbol<unsafe extern "C" fn(*const c_char) -> *mut c_void> =
            lib.get(b"fann_read_train_from_file").unwrap();
        let epoch: Symbol<unsafe extern "C" fn(Fann, *mut c_void) -> c_float> =
            lib.get(b"fann_train_epoch").unwrap();
        let destroy: Symbol<unsafe extern "C" fn(Fann)> = lib.get(b"fann_destroy").unwrap();
        let destroy_train: Symbol<unsafe extern "C" fn(*mut c_void)> =
            lib.get(b"fann_destroy_train").unwrap();
        let ann = load(c_path(net_path).as_ptr());
        let train = read(c_path(&data_path).as_ptr());
        assert!(!ann.is_null() && !train.is_null());
        let mse = (0..epochs).map(|_| epoch(ann, train)).collect();
        destroy_train(train);
        destroy(ann);
        mse
    };
    std::fs::remove_file(data_path).ok();
    fann_mse
}

/// Asserts the first `epochs` MSEs agree to `rel`.
fn assert_same_trajectory(fann: &[f32], ours: &[f64], epochs: usize, rel: f64) {
    for (e, (&f, &t)) in fann.iter().zip(ours).enumerate().take(epochs) {
        assert!(
            (f as f64 - t).abs() <= rel * t,
            "epoch {e}: libfann MSE {f}, tessera {t}"
        );
    }
}

/// SARPROP from the same `.net` in libfann and in tessera: the MSE of each epoch.
/// libfann's noise comes from `rand()`, but it only enters after a slope changes sign;
/// until then the runs must agree epoch for epoch.
/// A net with `sizes`, FANN's uniform initialisation from `seed`.
fn sine_net(sizes: &[usize], seed: u64) -> Network {
    Network::new(sizes, Activation::SigmoidSymmetric, Init::FannUniform, seed).unwrap()
}

/// SARPROP from the same libfann-saved `.net` in libfann and in tessera: the MSE of
/// each epoch. libfann's noise comes from `rand()`, but it only enters after a slope
/// changes sign; until then the runs must agree epoch for epoch.
#[test]
fn sarprop_follows_libfann_until_its_noise_starts() {
    let Some(lib) = libfann() else { return };
    let settings = FannSettings {
        training_algorithm: 4,
        ..FannSettings::default()
    };
    let path = libfann_saved(&lib, &sine_net(&[1, 6, 1], 3), &settings, "sarprop");
    let (fann, ours) = mse_per_epoch(&lib, &path, &tessera_nn::datasets::sine(32), 60);
    // On this fixture the first sign change comes at epoch 50 (the steps start at
    // 1e-6 and grow by 1.2 per epoch); the first 45 epochs are noise-free.
    assert_same_trajectory(&fann, &ours, 45, 1e-5);
    assert!(ours[59] < ours[0], "SARPROP made no progress: {ours:?}");
    std::fs::remove_file(path).ok();
}

/// RPROP with every FANN default (the TANH error function included) from a
/// libfann-saved `.net`: the MSE of every epoch agrees.
#[test]
fn rprop_with_fann_defaults_follows_libfann_epoch_by_epoch() {
    let Some(lib) = libfann() else { return };
    let path = libfann_saved(
        &lib,
        &sine_net(&[1, 8, 1], 5),
        &FannSettings::default(),
        "rprop",
    );
    let (_, settings) = read_net(&path).unwrap();
    assert_eq!(settings, FannSettings::default());
    assert_eq!(
        TrainConfig::from_fann(&settings).unwrap(),
        TrainConfig::new(Algorithm::fann_rprop())
    );
    let (fann, ours) = mse_per_epoch(&lib, &path, &tessera_nn::datasets::sine(32), 40);
    assert_same_trajectory(&fann, &ours, 40, 1e-4);
    std::fs::remove_file(path).ok();
}

/// Settings libfann saved (QUICKPROP with its own decay and mu, a learning rate, RPROP
/// factors, the linear error function) read back exactly, and QUICKPROP trained from
/// them follows libfann.
#[test]
fn libfann_saved_settings_are_read_and_followed() {
    let Some(lib) = libfann() else { return };
    let settings = FannSettings {
        learning_rate: 0.5,
        learning_momentum: 0.25,
        training_algorithm: 3,
        train_error_function: 0,
        quickprop_decay: -0.001,
        quickprop_mu: 1.5,
        bit_fail_limit: 0.125,
        rprop: RpropParams {
            increase_factor: 1.1,
            decrease_factor: 0.25,
            delta_min: 0.001,
            delta_max: 20.0,
        },
        rprop_delta_zero: 0.05,
        ..FannSettings::default()
    };
    let path = libfann_saved(&lib, &sine_net(&[1, 6, 1], 9), &settings, "quickprop");
    let (_, read) = read_net(&path).unwrap();
    assert_eq!(read, settings, "the settings libfann saved");
    let config = TrainConfig::from_fann(&read).unwrap();
    assert_eq!(
        config.algorithm,
        Algorithm::Quickprop {
            learning_rate: 0.5,
            decay: -0.001,
            mu: 1.5
        }
    );
    let (fann, ours) = mse_per_epoch(&lib, &path, &tessera_nn::datasets::sine(32), 30);
    assert_same_trajectory(&fann, &ours, 30, 1e-4);
    std::fs::remove_file(path).ok();
}

/// Outputs of the `.net` file at `path` run by libfann on `inputs` (rows of 2).
fn libfann_file_outputs(lib: &Library, path: &Path, inputs: &[f32], n_out: usize) -> Vec<f32> {
    // SAFETY: FANN 2.2's C API with its documented signatures; the net is checked
    // for null and destroyed once.
    unsafe {
        let load: Symbol<unsafe extern "C" fn(*const c_char) -> Fann> =
            lib.get(b"fann_create_from_file").unwrap();
        let destroy: Symbol<unsafe extern "C" fn(Fann)> = lib.get(b"fann_destroy").unwrap();
        let ann = load(c_path(path).as_ptr());
        assert!(!ann.is_null(), "libfann rejected {}", path.display());
        let out = fann_outputs(lib, ann, inputs, n_out);
        destroy(ann);
        out
    }
}

/// Cascade nets chain their neurons (up to 9 deep here, weights up to 9), so
/// libfann's f32 activations and tessera's f64 sums drift further apart than in a
/// two-layer net: 1e-4.
fn assert_cascade_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4, "output {i}: {x} vs {y}");
    }
}

fn cascade_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/libfann-2.2-cascade-spirals.net")
}

/// A shortcut net that libfann 2.2's `fann_cascadetrain_on_data` grew on two-spirals
/// (9 hidden neurons, saved by `fann_save`) runs in tessera with libfann's outputs,
/// and the file tessera writes for it runs in libfann with the same outputs.
#[test]
fn a_libfann_cascade_net_round_trips() {
    use tessera_nn::cascade::{CascadeConfig, StopFunction};
    use tessera_nn::fann::{format_cascade_net, read_cascade_net, write_cascade_net};
    let (net, settings, params) = read_cascade_net(cascade_fixture()).unwrap();
    assert_eq!((net.inputs, net.hidden.len(), net.outputs()), (2, 9, 1));
    assert_eq!(params, tessera_nn::cascade::CascadeParams::default());
    let data = tessera_nn::datasets::two_spirals();
    let ours = net.run(data.inputs()).unwrap();
    // The training settings carry over: RPROP, the bit-fail stop function.
    let config = CascadeConfig::from_fann(&settings, &params).unwrap();
    assert_eq!(config.stop, StopFunction::BitFail);
    assert_eq!(config.train, TrainConfig::from_fann(&settings).unwrap());
    // tessera's own text of it reads back to the same network.
    let text = format_cascade_net(&net, &settings, &params).unwrap();
    let again = tessera_nn::fann::parse_cascade_net(&text, "again").unwrap();
    assert_eq!(again, (net.clone(), settings, params.clone()));
    let Some(lib) = libfann() else { return };
    assert_cascade_close(
        &ours,
        &libfann_file_outputs(&lib, &cascade_fixture(), data.inputs(), 1),
    );
    let path = temp("cascade.net");
    write_cascade_net(&path, &net, &settings, &params).unwrap();
    assert_cascade_close(&ours, &libfann_file_outputs(&lib, &path, data.inputs(), 1));
    std::fs::remove_file(path).ok();
}

/// Cascade training continues a net read from a libfann file with the file's
/// settings, and libfann runs the grown net with tessera's outputs.
#[test]
fn cascade_training_continues_a_libfann_net() {
    use tessera_nn::cascade::{CascadeConfig, CascadeTrainer};
    use tessera_nn::fann::{read_cascade_net, write_cascade_net};
    let (net, settings, params) = read_cascade_net(cascade_fixture()).unwrap();
    let config = CascadeConfig::from_fann(&settings, &params).unwrap();
    let data = tessera_nn::datasets::two_spirals();
    let mut trainer = CascadeTrainer::new(CpuNn::new(), net, config).unwrap();
    let report = trainer.train(&data, 30, 0.0, |_| true).unwrap();
    assert!(report.reached, "{report:?}");
    let grown = trainer.into_network();
    assert!(grown.hidden.len() >= 9);
    let Some(lib) = libfann() else { return };
    let path = temp("grown.net");
    write_cascade_net(&path, &grown, &settings, &params).unwrap();
    assert_cascade_close(
        &grown.run(data.inputs()).unwrap(),
        &libfann_file_outputs(&lib, &path, data.inputs(), 1),
    );
    std::fs::remove_file(path).ok();
}

/// libfann's `fann_train_epoch` on a shortcut net (every weight trained, no
/// cascade): the libfann-grown fixture trained with its file's settings (RPROP, the
/// TANH error function; sine, cosine, sigmoid and Gaussian neurons at steepnesses
/// 0.5 to 1, with libfann's own derivatives of them, `Derivative::FannCompat`)
/// follows libfann epoch by epoch.
/// RPROP's first step of 0.1 on every weight throws this trained net from MSE 0.0028
/// to 0.26, and after five epochs slopes near zero change sign on f32 rounding, so the
/// two runs part there (measured: the same to 5 digits up to epoch 5, then within
/// 25% of each other).
#[test]
fn shortcut_training_follows_libfann_epoch_by_epoch() {
    use tessera_nn::cascade::ShortcutTrainer;
    use tessera_nn::fann::read_cascade_net;
    let Some(lib) = libfann() else { return };
    let data = tessera_nn::datasets::two_spirals();
    let fann = libfann_epochs(&lib, &cascade_fixture(), &data, 5);
    let (net, settings, _) = read_cascade_net(cascade_fixture()).unwrap();
    let config = TrainConfig {
        derivative: Derivative::FannCompat,
        ..TrainConfig::from_fann(&settings).unwrap()
    };
    let mut trainer = ShortcutTrainer::new(CpuNn::new(), &net, config).unwrap();
    let ours: Vec<f64> = (0..5)
        .map(|_| trainer.train_epoch(&data).unwrap().mse.unwrap())
        .collect();
    assert_same_trajectory(&fann, &ours, 5, 1e-4);
}
