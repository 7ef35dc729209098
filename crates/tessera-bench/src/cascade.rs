//! Cascade2 workloads: two-spirals trained to bit-fail 0, and hidden neurons
//! installed on a 2000 x 16 -> 4 classification set, on every backend beside libfann
//! 2.2's `fann_cascadetrain_on_data` (same nets, data and parameters; libfann draws
//! its candidates' weights from `rand()`, tessera from its seed); and RPROP epochs of
//! a grown shortcut net, every weight trained, beside libfann's `fann_train_epoch`
//! on the same `.net` file.

use std::path::PathBuf;

use tessera_cpu::CpuNn;
use tessera_gpu::GpuNn;
use tessera_nn::cascade::{
    CascadeConfig, CascadeNetwork, CascadeTrainer, ShortcutTrainer, StopFunction,
};
use tessera_nn::fann::{FannSettings, write_cascade_net, write_data};
use tessera_nn::{Algorithm, TrainConfig, TrainData, datasets};
use tessera_tensor::nn::{Activation, NnKernels};
use tessera_tensor::rng::Rng;

use crate::backends::{BackendKind, BenchBackend};
use crate::libfann::{FannRun, Libfann};
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// What a cascade workload trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CascadeKind {
    /// Two-spirals (194 points) from an empty shortcut net to bit-fail 0.
    Spirals,
    /// `neurons` hidden neurons installed on 2000 x 16 -> 4 (desired error 0).
    Classes {
        /// Neurons per training.
        neurons: usize,
    },
    /// RPROP epochs of a shortcut net with `hidden` single-neuron hidden layers (the
    /// shape Cascade2 grows) on 2000 x 16 -> 4, every weight trained.
    Shortcut {
        /// Hidden neurons.
        hidden: usize,
    },
}

/// One cascade workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeWorkload {
    /// What is trained.
    pub kind: CascadeKind,
}

/// Most neurons a two-spirals training may install.
const SPIRAL_NEURONS: usize = 40;
const CLASS_ROWS: usize = 2000;

/// The cascade workloads (`quick`: 5 neurons on the classification set, else 10),
/// and RPROP epochs of a 20-neuron shortcut net on the same set.
pub fn workloads(quick: bool) -> Vec<CascadeWorkload> {
    vec![
        CascadeWorkload {
            kind: CascadeKind::Spirals,
        },
        CascadeWorkload {
            kind: CascadeKind::Classes {
                neurons: if quick { 5 } else { 10 },
            },
        },
        CascadeWorkload {
            kind: CascadeKind::Shortcut { hidden: 20 },
        },
    ]
}

/// The classification set of the `cascade` workloads: 2000 points in [-1, 1]^16,
/// labelled by the largest output of a fixed random 16-8-4 tanh net, one-hot targets
/// in {-1, 1}.
pub fn classes() -> TrainData {
    let mut rng = Rng::new(0xca5cade);
    let w1: Vec<f32> = (0..16 * 8).map(|_| rng.range(-1.0, 1.0)).collect();
    let w2: Vec<f32> = (0..8 * 4).map(|_| rng.range(-1.0, 1.0)).collect();
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    for _ in 0..CLASS_ROWS {
        let x: Vec<f32> = (0..16).map(|_| rng.range(-1.0, 1.0)).collect();
        let h: Vec<f32> = (0..8)
            .map(|j| (0..16).map(|i| x[i] * w1[i * 8 + j]).sum::<f32>().tanh())
            .collect();
        let y: Vec<f32> = (0..4)
            .map(|k| (0..8).map(|j| h[j] * w2[j * 4 + k]).sum())
            .collect();
        let best = (1..4).fold(0, |b, k| if y[k] > y[b] { k } else { b });
        inputs.extend(x);
        outputs.extend((0..4).map(|k| if k == best { 1.0 } else { -1.0 }));
    }
    TrainData::new(16, 4, inputs, outputs).expect("valid data")
}

impl CascadeWorkload {
    fn data(&self) -> TrainData {
        match self.kind {
            CascadeKind::Spirals => datasets::two_spirals(),
            CascadeKind::Classes { .. } | CascadeKind::Shortcut { .. } => classes(),
        }
    }

    fn config(&self) -> CascadeConfig {
        CascadeConfig {
            stop: match self.kind {
                CascadeKind::Spirals => StopFunction::BitFail,
                CascadeKind::Classes { .. } | CascadeKind::Shortcut { .. } => StopFunction::Mse,
            },
            seed: 1,
            ..CascadeConfig::default()
        }
    }

    fn max_neurons(&self) -> usize {
        match self.kind {
            CascadeKind::Spirals => SPIRAL_NEURONS,
            CascadeKind::Classes { neurons } => neurons,
            CascadeKind::Shortcut { hidden } => hidden,
        }
    }
}

impl Workload for CascadeWorkload {
    fn id(&self) -> String {
        format!("cascade/{}", self.label())
    }
    fn group(&self) -> &'static str {
        "cascade"
    }
    fn label(&self) -> String {
        match self.kind {
            CascadeKind::Spirals => "two-spirals to bit-fail 0".into(),
            CascadeKind::Classes { neurons } => {
                format!("{CLASS_ROWS}x16->4, {neurons} neurons")
            }
            CascadeKind::Shortcut { hidden } => {
                format!("shortcut 16-{hidden}h-4 RPROP epoch, {CLASS_ROWS} rows")
            }
        }
    }
    fn x(&self) -> f64 {
        self.max_neurons() as f64
    }
    fn unit(&self) -> &'static str {
        match self.kind {
            CascadeKind::Spirals => "trainings",
            CascadeKind::Classes { .. } => "neurons",
            CascadeKind::Shortcut { .. } => "epochs",
        }
    }
    fn items_per_iteration(&self) -> f64 {
        match self.kind {
            CascadeKind::Spirals => 1.0,
            CascadeKind::Classes { neurons } => neurons as f64,
            CascadeKind::Shortcut { .. } => 1.0,
        }
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        let data = self.data();
        let sine = Activation::SigmoidSymmetric;
        let net = match self.kind {
            CascadeKind::Shortcut { hidden } => {
                let mut sizes = vec![data.n_inputs()];
                sizes.extend(std::iter::repeat_n(1, hidden));
                sizes.push(data.n_outputs());
                CascadeNetwork::shortcut(&sizes, sine, sine, 0.5, 1)
            }
            _ => CascadeNetwork::new(data.n_inputs(), data.n_outputs(), sine, 0.5, 1),
        }
        .expect("valid sizes");
        Box::new(CascadeFixture {
            w: *self,
            net,
            data,
        })
    }
}

struct CascadeFixture {
    w: CascadeWorkload,
    net: CascadeNetwork,
    data: TrainData,
}

/// One cascade training per iteration from the fixture's empty net.
struct KernelCascade<K: NnKernels, F: Fn() -> tessera_tensor::Result<K>> {
    make: F,
    fixture: (CascadeNetwork, TrainData, CascadeConfig, usize),
    note: String,
}

impl<K: NnKernels, F: Fn() -> tessera_tensor::Result<K>> KernelCascade<K, F> {
    /// Trains once; returns the hidden neurons and the last bit-fail count.
    fn train(&self) -> tessera_tensor::Result<(usize, u64, bool)> {
        let (net, data, config, max) = &self.fixture;
        let mut t = CascadeTrainer::new((self.make)()?, net.clone(), config.clone())?;
        let r = t.train(data, *max, 0.0, |_| true)?;
        Ok((t.network().hidden.len(), r.bit_fail, r.reached))
    }
}

impl<K: NnKernels, F: Fn() -> tessera_tensor::Result<K>> Runner for KernelCascade<K, F> {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.train().map(drop)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.note.clone())
    }
}

/// One RPROP epoch of a shortcut net per iteration (the MSE read back every epoch, as
/// libfann's `fann_train_epoch` returns it).
struct KernelShortcut<K: NnKernels> {
    trainer: ShortcutTrainer<K>,
    data: TrainData,
    note: String,
}

impl<K: NnKernels> Runner for KernelShortcut<K> {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        let stats = self.trainer.train_epoch(&self.data)?;
        self.note = format!("MSE {:.4}", stats.mse.unwrap_or(f64::NAN));
        Ok(())
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.note.clone())
    }
}

/// One `fann_train_epoch` per iteration on the same net and data.
struct LibfannShortcut {
    run: FannRun,
    dir: PathBuf,
    note: String,
}

impl Runner for LibfannShortcut {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        let mse = self.run.train_epoch();
        self.note = format!("MSE {mse:.4}");
        Ok(())
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.note.clone())
    }
}

impl Drop for LibfannShortcut {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// libfann cascade-training a fresh copy of the fixture's net per iteration.
struct LibfannCascade {
    lib: std::sync::Arc<Libfann>,
    files: (PathBuf, PathBuf),
    max: u32,
    bit_stop: bool,
    note: String,
}

impl LibfannCascade {
    fn train(&self) -> Result<(u32, u32), String> {
        let mut run: FannRun = self.lib.open(&self.files.0, &self.files.1)?;
        Ok(run.cascade(self.max, 0.0, self.bit_stop))
    }
}

impl Runner for LibfannCascade {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.train()
            .map(drop)
            .map_err(|e| tessera_tensor::TesseraError::Io {
                file: "libfann".into(),
                message: e,
            })
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.note.clone())
    }
}

impl Drop for LibfannCascade {
    fn drop(&mut self) {
        if let Some(dir) = self.files.0.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

impl CascadeFixture {
    fn kernel_runner<K: NnKernels + 'static>(
        &self,
        make: impl Fn() -> tessera_tensor::Result<K> + 'static,
    ) -> Result<Prepared, String> {
        let mut runner = KernelCascade {
            make,
            fixture: (
                self.net.clone(),
                self.data.clone(),
                self.w.config(),
                self.w.max_neurons(),
            ),
            note: String::new(),
        };
        let (neurons, bit_fail, reached) = runner.train().map_err(|e| e.to_string())?;
        if self.w.kind == CascadeKind::Spirals && !reached {
            return Err(format!(
                "two-spirals stopped at bit fail {bit_fail} with {neurons} neurons"
            ));
        }
        runner.note = format!("{neurons} neurons, bit fail {bit_fail}");
        let bytes = (self.data.inputs().len() + self.data.outputs().len()) as u64 * 4;
        Ok(Prepared::Ready(Box::new(runner), bytes))
    }

    fn shortcut_config() -> TrainConfig {
        TrainConfig::new(Algorithm::fann_rprop())
    }

    fn shortcut_runner<K: NnKernels + 'static>(&self, kernels: K) -> Result<Prepared, String> {
        let trainer = ShortcutTrainer::new(kernels, &self.net, Self::shortcut_config())
            .map_err(|e| e.to_string())?;
        let bytes = (self.data.inputs().len() + self.data.outputs().len()) as u64 * 4;
        let runner = KernelShortcut {
            trainer,
            data: self.data.clone(),
            note: String::new(),
        };
        Ok(Prepared::Ready(Box::new(runner), bytes))
    }

    fn libfann_shortcut_runner(&self, lib: &std::sync::Arc<Libfann>) -> Result<Prepared, String> {
        let dir =
            std::env::temp_dir().join(format!("tessera-bench-shortcut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let files = (dir.join("shortcut.net"), dir.join("shortcut.data"));
        let config = self.w.config();
        write_cascade_net(
            &files.0,
            &self.net,
            &FannSettings::default(),
            &config.params,
        )
        .map_err(|e| e.to_string())?;
        write_data(&files.1, &self.data).map_err(|e| e.to_string())?;
        let mut run = lib.open(&files.0, &files.1)?;
        // Same net, data and algorithm: libfann's first-epoch MSE must match ours.
        let fann = run.train_epoch() as f64;
        let mut ours = ShortcutTrainer::new(CpuNn::new(), &self.net, Self::shortcut_config())
            .map_err(|e| e.to_string())?;
        let mse = ours
            .train_epoch(&self.data)
            .map_err(|e| e.to_string())?
            .mse
            .unwrap_or(f64::NAN);
        if (fann - mse).abs() > 1e-4 * mse {
            return Err(format!(
                "libfann's first-epoch MSE {fann} differs from tessera's {mse}"
            ));
        }
        let runner = LibfannShortcut {
            run,
            dir,
            note: String::new(),
        };
        Ok(Prepared::Ready(Box::new(runner), 0))
    }

    fn libfann_runner(&self, lib: &std::sync::Arc<Libfann>) -> Result<Prepared, String> {
        let dir = std::env::temp_dir().join(format!(
            "tessera-bench-cascade-{}-{}",
            std::process::id(),
            self.w.max_neurons()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let files = (dir.join("cascade.net"), dir.join("cascade.data"));
        let config = self.w.config();
        let settings = FannSettings {
            train_stop_function: u32::from(config.stop == StopFunction::BitFail),
            ..FannSettings::default()
        };
        write_cascade_net(&files.0, &self.net, &settings, &config.params)
            .map_err(|e| e.to_string())?;
        write_data(&files.1, &self.data).map_err(|e| e.to_string())?;
        let mut runner = LibfannCascade {
            lib: lib.clone(),
            files,
            max: self.w.max_neurons() as u32,
            bit_stop: config.stop == StopFunction::BitFail,
            note: String::new(),
        };
        let (neurons, bit_fail) = runner.train()?;
        runner.note = format!("{neurons} neurons, bit fail {bit_fail} (after its last pass)");
        Ok(Prepared::Ready(Box::new(runner), 0))
    }
}

impl Fixture for CascadeFixture {
    fn prepare(&self, b: &BenchBackend) -> Result<Prepared, String> {
        if let CascadeKind::Shortcut { .. } = self.w.kind {
            // An epoch is six dispatches: it runs (and is timed) on any device.
            return match &b.kind {
                BackendKind::CpuSimd => self.shortcut_runner(CpuNn::new()),
                BackendKind::CpuScalar => self.shortcut_runner(CpuNn::new_scalar()),
                BackendKind::Gpu(ctx) => {
                    self.shortcut_runner(GpuNn::new(ctx).map_err(|e| e.to_string())?)
                }
                BackendKind::Libfann(lib) => self.libfann_shortcut_runner(lib),
                _ => Ok(Prepared::NotApplicable(
                    "no shortcut training on this backend",
                )),
            };
        }
        match &b.kind {
            BackendKind::CpuSimd => self.kernel_runner(|| Ok(CpuNn::new())),
            BackendKind::CpuScalar => self.kernel_runner(|| Ok(CpuNn::new_scalar())),
            // A whole training is thousands of small dispatches, each a fraction of
            // a millisecond on a software rasteriser: tested there, not timed.
            BackendKind::Gpu(ctx) if ctx.is_software() => Ok(Prepared::NotApplicable(
                "software rasteriser: cascade training is tested there, not timed",
            )),
            BackendKind::Gpu(ctx) => {
                let ctx = ctx.clone();
                self.kernel_runner(move || GpuNn::new(&ctx))
            }
            BackendKind::Libfann(lib) => self.libfann_runner(lib),
            _ => Ok(Prepared::NotApplicable(
                "no cascade training on this backend",
            )),
        }
    }
}
