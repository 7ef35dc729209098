//! Neural workloads: SGEMM (against the `gemm` crate on the CPU), forward passes at
//! batch 1 and 256, an Adam training step, and RPROP epochs against libfann 2.2: one
//! of a 784-128-10 net, and one per FANN benchmark dataset with 32 hidden neurons.

use tessera_cpu::CpuNn;
use tessera_gpu::GpuNn;
use tessera_nn::fann::{FannSettings, write_data, write_net};
use tessera_nn::{Algorithm, Init, Model, Network, TrainConfig, TrainData, Trainer};
use tessera_tensor::nn::{Activation, AdamParams, Gemm, Loss, NnKernels};
use tessera_tensor::rng::Rng;

use crate::backends::{BackendKind, BenchBackend};
use crate::libfann::FannRun;
use crate::workload::{Fixture, Prepared, Runner, Workload};

/// Work per iteration above which software rasterisers are not run (they manage
/// about 1 GFLOP/s, so larger workloads would take minutes and prove nothing);
/// `--quick` keeps them to the smallest workloads.
const SOFTWARE_MAX_FLOP: f64 = 1e9;
const SOFTWARE_MAX_FLOP_QUICK: f64 = 1e8;

/// What a neural workload times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NnKind {
    /// `C = A B` with `n x n` matrices.
    Gemm {
        /// Matrix size.
        n: usize,
    },
    /// A forward pass of a net of these layer sizes (input upload included).
    Forward {
        /// Layer sizes, inputs first.
        sizes: &'static [usize],
        /// Samples per pass.
        batch: usize,
    },
    /// A batch-1 forward pass with bf16 weights (`tessera_cpu::nn::Bf16Mlp`, CPU only).
    ForwardBf16 {
        /// Layer sizes, inputs first.
        sizes: &'static [usize],
    },
    /// One Adam step on one batch: forward, backward, update, metrics read back.
    TrainStep {
        /// Layer sizes, inputs first.
        sizes: &'static [usize],
        /// Samples per step.
        batch: usize,
    },
    /// One FANN RPROP epoch of a 784-128-10 net on 1000 samples.
    FannEpoch,
    /// One FANN RPROP epoch of an `inputs`-32-`outputs` net on one of FANN's benchmark
    /// datasets.
    FannDataset(&'static FannDataset),
}

/// One of the benchmark datasets of the FANN repository (`datasets/<name>.train`,
/// from PROBEN1). The bench reads the file from the folder named by the
/// `TESSERA_FANN_DATASETS` environment variable; without it, it trains on synthetic
/// data of the same shape (the epoch's cost depends on the shape alone).
#[derive(Debug, PartialEq, Eq)]
pub struct FannDataset {
    /// File stem, e.g. `building`.
    pub name: &'static str,
    /// Inputs per sample.
    pub inputs: usize,
    /// Outputs per sample.
    pub outputs: usize,
    /// Samples in the training file.
    pub samples: usize,
}

/// Hidden neurons of the nets trained on [`FANN_DATASETS`].
pub const FANN_DATASET_HIDDEN: usize = 32;

/// The FANN benchmark datasets, with the shapes of their `.train` files.
pub const FANN_DATASETS: &[FannDataset] = &[
    FannDataset {
        name: "building",
        inputs: 14,
        outputs: 3,
        samples: 2104,
    },
    FannDataset {
        name: "robot",
        inputs: 48,
        outputs: 3,
        samples: 374,
    },
    FannDataset {
        name: "soybean",
        inputs: 82,
        outputs: 19,
        samples: 342,
    },
    FannDataset {
        name: "thyroid",
        inputs: 21,
        outputs: 3,
        samples: 3600,
    },
    FannDataset {
        name: "gene",
        inputs: 120,
        outputs: 3,
        samples: 1588,
    },
    FannDataset {
        name: "mushroom",
        inputs: 125,
        outputs: 2,
        samples: 4062,
    },
];

/// The environment variable naming the folder of FANN's dataset files.
pub const FANN_DATASETS_ENV: &str = "TESSERA_FANN_DATASETS";

impl FannDataset {
    /// Layer sizes of the net trained on it.
    pub fn sizes(&self) -> [usize; 3] {
        [self.inputs, FANN_DATASET_HIDDEN, self.outputs]
    }

    /// The dataset's training file from the folder `TESSERA_FANN_DATASETS` names, or
    /// `None` (with the reason) where it is unset, missing or of another shape.
    pub fn load(&self) -> Result<TrainData, String> {
        let dir = std::env::var_os(FANN_DATASETS_ENV)
            .ok_or_else(|| format!("{FANN_DATASETS_ENV} is not set"))?;
        let path = std::path::Path::new(&dir).join(format!("{}.train", self.name));
        let data = tessera_nn::fann::read_data(&path).map_err(|e| e.to_string())?;
        if (data.len(), data.n_inputs(), data.n_outputs())
            != (self.samples, self.inputs, self.outputs)
        {
            return Err(format!(
                "{} holds {} samples of {} inputs and {} outputs, not FANN's {} x {} x {}",
                path.display(),
                data.len(),
                data.n_inputs(),
                data.n_outputs(),
                self.samples,
                self.inputs,
                self.outputs
            ));
        }
        Ok(data)
    }

    /// Synthetic data of the dataset's shape: inputs uniform in [0, 1], targets a
    /// random teacher's sigmoid outputs.
    pub fn synthetic(&self, seed: u64) -> TrainData {
        let mut rng = Rng::new(seed);
        let inputs: Vec<f32> = (0..self.samples * self.inputs)
            .map(|_| rng.range(0.0, 1.0))
            .collect();
        let teacher: Vec<f32> = (0..self.inputs * self.outputs)
            .map(|_| rng.range(-1.0, 1.0))
            .collect();
        let targets = inputs
            .chunks(self.inputs)
            .flat_map(|x| {
                let teacher = &teacher;
                (0..self.outputs).map(move |o| {
                    let z: f32 = x
                        .iter()
                        .zip(&teacher[o * self.inputs..])
                        .map(|(x, w)| x * w)
                        .sum();
                    1.0 / (1.0 + (-z).exp())
                })
            })
            .collect();
        TrainData::new(self.inputs, self.outputs, inputs, targets).expect("valid shape")
    }

    /// The net FANN's quality benchmark trains: symmetric sigmoid hidden neurons, a
    /// sigmoid output (the targets are in [0, 1]), steepness 0.5, FANN's uniform
    /// initialisation from `seed`.
    pub fn net(&self, seed: u64) -> Network {
        let mut net = Network::new(&self.sizes(), Activation::Sigmoid, Init::FannUniform, seed)
            .expect("valid sizes");
        net.set_hidden_activation(Activation::SigmoidSymmetric, 0.5)
            .expect("valid layer");
        net.set_output_activation(Activation::Sigmoid, 0.5)
            .expect("valid layer");
        net
    }
}

impl NnKind {
    /// Whether libfann runs it (the FANN RPROP epochs).
    fn is_fann(self) -> bool {
        matches!(self, NnKind::FannEpoch | NnKind::FannDataset(_))
    }
}

/// One neural workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NnWorkload {
    /// Table it belongs to.
    pub group: &'static str,
    /// What is timed.
    pub kind: NnKind,
    /// Work per iteration above which software rasterisers are not run.
    pub software_max_flop: f64,
}

const MNIST: &[usize] = &[784, 128, 10];
const MID: &[usize] = &[2048, 512, 100];
const LARGE: &[usize] = &[4096, 1024, 1000];
const WIDE: &[usize] = &[1024, 1024, 1024, 10];
const FANN_SAMPLES: usize = 1000;

/// The neural workloads of a run (`quick`: the smaller ones).
pub fn workloads(quick: bool) -> Vec<NnWorkload> {
    let software_max_flop = if quick {
        SOFTWARE_MAX_FLOP_QUICK
    } else {
        SOFTWARE_MAX_FLOP
    };
    let sizes: &[usize] = if quick {
        &[256, 512, 1024]
    } else {
        &[256, 512, 1024, 2048, 4096]
    };
    let mut out: Vec<NnWorkload> = sizes
        .iter()
        .map(|&n| NnWorkload {
            group: "gemm",
            software_max_flop,
            kind: NnKind::Gemm { n },
        })
        .collect();
    let nets: &[&'static [usize]] = if quick {
        &[MNIST, MID]
    } else {
        &[MNIST, MID, LARGE]
    };
    for &sizes in nets {
        for batch in [1, 256] {
            out.push(NnWorkload {
                group: "nn-forward",
                software_max_flop,
                kind: NnKind::Forward { sizes, batch },
            });
        }
    }
    out.push(NnWorkload {
        group: "nn-forward",
        software_max_flop,
        kind: NnKind::ForwardBf16 { sizes: MNIST },
    });
    out.push(NnWorkload {
        group: "nn-train",
        software_max_flop,
        kind: NnKind::TrainStep {
            sizes: MNIST,
            batch: 256,
        },
    });
    if !quick {
        out.push(NnWorkload {
            group: "nn-train",
            software_max_flop,
            kind: NnKind::TrainStep {
                sizes: WIDE,
                batch: 256,
            },
        });
    }
    out.push(NnWorkload {
        group: "fann",
        software_max_flop,
        kind: NnKind::FannEpoch,
    });
    out.extend(FANN_DATASETS.iter().map(|d| NnWorkload {
        group: "fann-datasets",
        software_max_flop,
        kind: NnKind::FannDataset(d),
    }));
    out
}

fn sizes_label(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

fn net_flops(sizes: &[usize], batch: usize) -> f64 {
    sizes
        .windows(2)
        .map(|w| 2.0 * (batch * w[0] * w[1]) as f64)
        .sum()
}

impl NnWorkload {
    fn flops(&self) -> f64 {
        match self.kind {
            NnKind::Gemm { n } => Gemm::new(n, n, n).flops(),
            NnKind::Forward { sizes, batch } => net_flops(sizes, batch),
            NnKind::ForwardBf16 { sizes } => net_flops(sizes, 1),
            NnKind::TrainStep { sizes, batch } => 3.0 * net_flops(sizes, batch),
            NnKind::FannEpoch => 3.0 * net_flops(MNIST, FANN_SAMPLES),
            NnKind::FannDataset(d) => 3.0 * net_flops(&d.sizes(), d.samples),
        }
    }
}

impl NnWorkload {
    /// A Xavier-initialised tanh net of `sizes` with `batch` random samples.
    fn random_net(
        &self,
        sizes: &[usize],
        batch: usize,
        random: &mut impl FnMut(usize, f32, f32) -> Vec<f32>,
    ) -> Box<dyn Fixture + '_> {
        let net = Network::new(sizes, Activation::SigmoidSymmetric, Init::Xavier, 1)
            .expect("valid sizes");
        let n_out = sizes[sizes.len() - 1];
        let data = TrainData::new(
            sizes[0],
            n_out,
            random(batch * sizes[0], 0.0, 1.0),
            random(batch * n_out, -0.9, 0.9),
        )
        .expect("valid data");
        Box::new(NetFixture {
            w: *self,
            net,
            data,
            source: None,
        })
    }
}

impl Workload for NnWorkload {
    fn id(&self) -> String {
        format!("nn/{}/{}", self.group, self.label())
    }
    fn group(&self) -> &'static str {
        self.group
    }
    fn label(&self) -> String {
        match self.kind {
            NnKind::Gemm { n } => format!("sgemm {n}x{n}x{n}"),
            NnKind::Forward { sizes, batch } => {
                format!("forward {} batch {batch}", sizes_label(sizes))
            }
            NnKind::ForwardBf16 { sizes } => {
                format!("forward {} batch 1, bf16 weights", sizes_label(sizes))
            }
            NnKind::TrainStep { sizes, batch } => {
                format!("Adam step {} batch {batch}", sizes_label(sizes))
            }
            NnKind::FannEpoch => format!("RPROP epoch 784-128-10, {FANN_SAMPLES} samples"),
            NnKind::FannDataset(d) => format!(
                "RPROP epoch {} {}, {} samples",
                d.name,
                sizes_label(&d.sizes()),
                d.samples
            ),
        }
    }
    fn x(&self) -> f64 {
        match self.kind {
            NnKind::Gemm { n } => n as f64,
            NnKind::Forward { batch, .. } | NnKind::TrainStep { batch, .. } => batch as f64,
            NnKind::ForwardBf16 { .. } => 1.0,
            NnKind::FannEpoch => FANN_SAMPLES as f64,
            NnKind::FannDataset(d) => d.samples as f64,
        }
    }
    fn unit(&self) -> &'static str {
        match self.kind {
            NnKind::Gemm { .. } => "FLOP",
            _ => "samples",
        }
    }
    /// GEMM: each matrix once. A forward pass: the input, every weight and bias and
    /// the output, once. An Adam step adds the gradients written and the weights
    /// written and both moments read and written (6 more passes over the parameters).
    fn cost(&self) -> Option<crate::cost::Cost> {
        let params = |sizes: &[usize]| -> f64 {
            sizes.windows(2).map(|w| (w[0] * w[1] + w[1]) as f64).sum()
        };
        let io =
            |sizes: &[usize], batch: usize| (batch * (sizes[0] + sizes[sizes.len() - 1])) as f64;
        let bytes = match self.kind {
            NnKind::Gemm { n } => return Some(crate::cost::gemm(n, n, n)),
            NnKind::Forward { sizes, batch } => 4.0 * (params(sizes) + io(sizes, batch)),
            NnKind::ForwardBf16 { sizes } => 2.0 * params(sizes) + 4.0 * io(sizes, 1),
            NnKind::TrainStep { sizes, batch } => 4.0 * (7.0 * params(sizes) + io(sizes, batch)),
            NnKind::FannEpoch | NnKind::FannDataset(_) => return None,
        };
        Some(crate::cost::Cost {
            bytes,
            flops: self.flops(),
        })
    }
    fn items_per_iteration(&self) -> f64 {
        match self.kind {
            NnKind::Gemm { .. } => self.flops(),
            NnKind::Forward { batch, .. } | NnKind::TrainStep { batch, .. } => batch as f64,
            NnKind::ForwardBf16 { .. } => 1.0,
            NnKind::FannEpoch => FANN_SAMPLES as f64,
            NnKind::FannDataset(d) => d.samples as f64,
        }
    }
    fn fixture(&self) -> Box<dyn Fixture + '_> {
        let mut rng = Rng::new(0xbe7c4);
        let mut random = |len: usize, lo: f32, hi: f32| {
            (0..len).map(|_| rng.range(lo, hi)).collect::<Vec<f32>>()
        };
        match self.kind {
            NnKind::Gemm { n } => {
                let (a, b) = (random(n * n, -1.0, 1.0), random(n * n, -1.0, 1.0));
                let k = CpuNn::new();
                let mut c = vec![0.0; n * n];
                k.gemm(Gemm::new(n, n, n), &a, &b, &mut c)
                    .expect("valid gemm");
                Box::new(GemmFixture {
                    w: *self,
                    n,
                    a,
                    b,
                    c_ref: c,
                })
            }
            NnKind::ForwardBf16 { sizes } => self.random_net(sizes, 1, &mut random),
            NnKind::Forward { sizes, batch } | NnKind::TrainStep { sizes, batch } => {
                self.random_net(sizes, batch, &mut random)
            }
            NnKind::FannEpoch => {
                let mut net =
                    Network::new(MNIST, Activation::SigmoidSymmetric, Init::FannUniform, 1)
                        .expect("valid sizes");
                net.set_hidden_activation(Activation::SigmoidSymmetric, 0.5)
                    .expect("valid layer");
                let classes: Vec<usize> = (0..FANN_SAMPLES).map(|i| i % 10).collect();
                let targets = classes
                    .iter()
                    .flat_map(|&c| (0..10).map(move |j| if j == c { 1.0 } else { -1.0 }))
                    .collect();
                let data = TrainData::new(784, 10, random(FANN_SAMPLES * 784, 0.0, 1.0), targets)
                    .expect("valid data");
                Box::new(NetFixture {
                    w: *self,
                    net,
                    data,
                    source: None,
                })
            }
            NnKind::FannDataset(d) => {
                let (data, source) = match d.load() {
                    Ok(data) => (data, format!("FANN's {}.train", d.name)),
                    Err(why) => (d.synthetic(1), format!("synthetic data ({why})")),
                };
                Box::new(NetFixture {
                    w: *self,
                    net: d.net(1),
                    data,
                    source: Some(source),
                })
            }
        }
    }
}

fn software_too_big(b: &BenchBackend, w: &NnWorkload) -> bool {
    matches!(&b.kind, BackendKind::Gpu(ctx) if ctx.is_software()) && w.flops() > w.software_max_flop
}

const SOFTWARE_SKIP: &str = "software rasteriser: large workloads are not run (above 1 GFLOP per iteration, 0.1 with --quick)";

struct GemmFixture {
    w: NnWorkload,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c_ref: Vec<f32>,
}

fn check_gemm(n: usize, c: &[f32], c_ref: &[f32]) -> Result<(), String> {
    // Entries are dot products of n terms in [-1, 1]: f32 rounding grows with n.
    let tol = 1e-5 * n as f32;
    match c.iter().zip(c_ref).position(|(x, y)| (x - y).abs() > tol) {
        Some(i) => Err(format!(
            "sgemm {n}: C[{i}] = {} but the CPU gives {}",
            c[i], c_ref[i]
        )),
        None => Ok(()),
    }
}

/// A GEMM on one of tessera's kernel backends.
struct KernelGemm<K: NnKernels> {
    k: K,
    g: Gemm,
    a: K::Tensor,
    b: K::Tensor,
    c: K::Tensor,
}

impl<K: NnKernels> Runner for KernelGemm<K> {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.k.gemm(self.g, &self.a, &self.b, &mut self.c)
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        self.k.synchronize()
    }
    fn kernel_time_ns(&mut self, iters: u32) -> tessera_tensor::Result<Option<f64>> {
        device_time_per_iteration(
            self,
            iters,
            |r| &r.k,
            |r| r.k.gemm(r.g, &r.a, &r.b, &mut r.c),
        )
    }
}

/// Launches a timestamp query set holds (`wgpu::QUERY_SET_MAX_QUERIES / 2`).
const MAX_TIMED_LAUNCHES: u32 = 2048;

/// Mean device time per iteration of `run` from timestamp queries, summed over every
/// kernel launch of an iteration: one iteration counts the launches, then up to
/// `iters` are timed. `None` where the backend has no device timer.
fn device_time_per_iteration<T, K: NnKernels>(
    owner: &mut T,
    iters: u32,
    kernels: impl Fn(&T) -> &K,
    mut run: impl FnMut(&mut T) -> tessera_tensor::Result<()>,
) -> tessera_tensor::Result<Option<f64>> {
    if !kernels(owner).enable_kernel_timing(MAX_TIMED_LAUNCHES) {
        return Ok(None);
    }
    run(owner)?;
    let launches = kernels(owner).take_kernel_times()?.len() as u32;
    if launches == 0 || launches >= MAX_TIMED_LAUNCHES {
        kernels(owner).enable_kernel_timing(0);
        return Ok(None);
    }
    let n = iters.clamp(1, MAX_TIMED_LAUNCHES / launches);
    kernels(owner).enable_kernel_timing(n * launches);
    for _ in 0..n {
        run(owner)?;
    }
    let times = kernels(owner).take_kernel_times()?;
    kernels(owner).enable_kernel_timing(0);
    Ok(Some(times.iter().sum::<f64>() / f64::from(n)))
}

/// OpenBLAS's `cblas_sgemm` on the same matrices.
struct OpenBlasGemm {
    lib: std::sync::Arc<crate::openblas::OpenBlas>,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Runner for OpenBlasGemm {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.lib.sgemm_square(self.n, &self.a, &self.b, &mut self.c);
        Ok(())
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}

/// A GEMM with the `gemm` crate, for comparison.
struct CrateGemm {
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Runner for CrateGemm {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        let n = self.n;
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        // SAFETY: all three matrices are n x n row-major (column stride 1, row stride
        // n) and `c` does not alias `a` or `b`. With read_dst = false, c = beta a b.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                self.c.as_mut_ptr(),
                1,
                n as isize,
                false,
                self.a.as_ptr(),
                1,
                n as isize,
                self.b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            );
        }
        Ok(())
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}

impl GemmFixture {
    fn kernel_runner<K: NnKernels + 'static>(&self, k: K) -> Result<Prepared, String> {
        let e = |err: tessera_tensor::TesseraError| err.to_string();
        let n = self.n;
        let mut r = KernelGemm {
            g: Gemm::new(n, n, n),
            a: k.tensor(&self.a).map_err(e)?,
            b: k.tensor(&self.b).map_err(e)?,
            c: k.zeros(n * n).map_err(e)?,
            k,
        };
        r.run_once().map_err(e)?;
        check_gemm(n, &r.k.read(&r.c).map_err(e)?, &self.c_ref)?;
        Ok(Prepared::Ready(Box::new(r), 3 * (n * n * 4) as u64))
    }
}

impl Fixture for GemmFixture {
    fn prepare(&self, b: &BenchBackend) -> Result<Prepared, String> {
        if software_too_big(b, &self.w) {
            return Ok(Prepared::NotApplicable(SOFTWARE_SKIP));
        }
        match &b.kind {
            BackendKind::CpuSimd => self.kernel_runner(CpuNn::new()),
            BackendKind::Gpu(ctx) => {
                self.kernel_runner(GpuNn::new(ctx).map_err(|e| e.to_string())?)
            }
            BackendKind::GemmCrate => {
                let n = self.n;
                let mut r = CrateGemm {
                    n,
                    a: self.a.clone(),
                    b: self.b.clone(),
                    c: vec![0.0; n * n],
                };
                r.run_once().map_err(|e| e.to_string())?;
                check_gemm(n, &r.c, &self.c_ref)?;
                Ok(Prepared::Ready(Box::new(r), 3 * (n * n * 4) as u64))
            }
            BackendKind::OpenBlas(lib) => {
                let n = self.n;
                let mut r = OpenBlasGemm {
                    lib: lib.clone(),
                    n,
                    a: self.a.clone(),
                    b: self.b.clone(),
                    c: vec![0.0; n * n],
                };
                r.run_once().map_err(|e| e.to_string())?;
                check_gemm(n, &r.c, &self.c_ref)?;
                Ok(Prepared::Ready(Box::new(r), 3 * (n * n * 4) as u64))
            }
            _ => Ok(Prepared::NotApplicable("no GEMM kernel on this backend")),
        }
    }
}

/// A network workload: a forward pass, a training step or a FANN epoch.
struct NetFixture {
    w: NnWorkload,
    net: Network,
    data: TrainData,
    /// Where the data came from, where the note should say (FANN's datasets).
    source: Option<String>,
}

fn config_for(kind: NnKind, samples: usize) -> TrainConfig {
    match kind {
        NnKind::FannEpoch | NnKind::FannDataset(_) => TrainConfig {
            loss: Loss::Fann { tanh: true },
            ..TrainConfig::new(Algorithm::fann_rprop())
        },
        _ => TrainConfig::new(Algorithm::Adam {
            params: AdamParams::default(),
            batch_size: samples,
        }),
    }
}

/// Trains `epochs` epochs on a fresh copy of the fixture's net; returns every MSE.
fn epochs<K: NnKernels>(k: K, f: &NetFixture, epochs: usize) -> tessera_tensor::Result<Vec<f64>> {
    let mut t = Trainer::new(Model::new(k, &f.net)?, config_for(f.w.kind, f.data.len()))?;
    (0..epochs)
        .map(|_| {
            t.train_epoch(&f.data)
                .map(|s| s.mse.expect("metrics are read every epoch"))
        })
        .collect()
}

enum NetRunner<K: NnKernels> {
    Forward(Model<K>, Vec<f32>),
    Train(Box<Trainer<K>>, TrainData, String),
}

impl<K: NnKernels> Runner for NetRunner<K> {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        match self {
            NetRunner::Forward(m, x) => m.forward_on_device(x).map(|_| ()),
            NetRunner::Train(t, d, _) => t.train_epoch(d).map(|_| ()),
        }
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        match self {
            NetRunner::Forward(m, _) => m.kernels().synchronize(),
            NetRunner::Train(t, _, _) => t.model().kernels().synchronize(),
        }
    }
    fn kernel_time_ns(&mut self, iters: u32) -> tessera_tensor::Result<Option<f64>> {
        match self {
            NetRunner::Forward(m, x) => device_time_per_iteration(
                m,
                iters,
                |m| m.kernels(),
                |m| m.forward_on_device(x).map(|_| ()),
            ),
            NetRunner::Train(t, d, _) => device_time_per_iteration(
                t,
                iters,
                |t| t.model().kernels(),
                |t| t.train_epoch(d).map(|_| ()),
            ),
        }
    }
    fn note(&mut self) -> Option<String> {
        match self {
            NetRunner::Train(_, _, note) if !note.is_empty() => Some(note.clone()),
            _ => None,
        }
    }
}

/// Batch-1 inference with bf16 weights.
struct Bf16Runner(tessera_cpu::nn::Bf16Mlp, Vec<f32>);

impl Runner for Bf16Runner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.0.forward(&self.1).map(|_| ())
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
}

struct LibfannRunner(FannRun, String);

impl Runner for LibfannRunner {
    fn run_once(&mut self) -> tessera_tensor::Result<()> {
        self.0.train_epoch();
        Ok(())
    }
    fn sync(&mut self) -> tessera_tensor::Result<()> {
        Ok(())
    }
    fn note(&mut self) -> Option<String> {
        Some(self.1.clone())
    }
}

/// Epochs run before timing to compare the MSE reached with libfann's.
const QUALITY_EPOCHS: usize = 10;

impl NetFixture {
    /// The quality note of a FANN epoch: the MSE after [`QUALITY_EPOCHS`], and the
    /// data's source.
    fn note(&self, mse: f64) -> String {
        let note = format!("MSE after {QUALITY_EPOCHS} epochs {mse:.5}");
        match &self.source {
            Some(source) => format!("{note}; {source}"),
            None => note,
        }
    }

    fn kernel_runner<K: NnKernels + 'static>(
        &self,
        make: impl Fn() -> tessera_tensor::Result<K>,
    ) -> Result<Prepared, String> {
        let e = |err: tessera_tensor::TesseraError| err.to_string();
        let bytes = (self.net.parameter_count() * 4 * 4 + self.data.inputs().len() * 4) as u64;
        match self.w.kind {
            NnKind::Forward { .. } => {
                let mut model = Model::new(make().map_err(e)?, &self.net).map_err(e)?;
                let got = model.forward(self.data.inputs()).map_err(e)?;
                self.check_outputs(&got, (1e-4, 1.0), "the CPU")?;
                Ok(Prepared::Ready(
                    Box::new(NetRunner::Forward(model, self.data.inputs().to_vec())),
                    bytes,
                ))
            }
            _ => {
                let quality = if self.w.kind.is_fann() {
                    QUALITY_EPOCHS
                } else {
                    1
                };
                let got = epochs(make().map_err(e)?, self, quality).map_err(e)?;
                let want = epochs(CpuNn::new(), self, 1).map_err(e)?;
                if (got[0] - want[0]).abs() > 1e-4 * want[0] {
                    return Err(format!(
                        "{}: first-epoch MSE {} but the CPU gives {}",
                        self.w.label(),
                        got[0],
                        want[0]
                    ));
                }
                let note = if quality > 1 {
                    self.note(got[quality - 1])
                } else {
                    String::new()
                };
                let trainer = Trainer::new(
                    Model::new(make().map_err(e)?, &self.net).map_err(e)?,
                    config_for(self.w.kind, self.data.len()),
                )
                .map_err(e)?;
                Ok(Prepared::Ready(
                    Box::new(NetRunner::Train(Box::new(trainer), self.data.clone(), note)),
                    bytes,
                ))
            }
        }
    }

    /// Checks `got`, a forward pass of the fixture's inputs, against the f32 CPU
    /// forward: each output within `rel` of the larger of itself and `floor`.
    fn check_outputs(
        &self,
        got: &[f32],
        (rel, floor): (f32, f32),
        against: &str,
    ) -> Result<(), String> {
        let want = Model::new(CpuNn::new(), &self.net)
            .and_then(|mut m| m.forward(self.data.inputs()))
            .map_err(|e| e.to_string())?;
        match got
            .iter()
            .zip(&want)
            .position(|(g, w)| (g - w).abs() > rel * w.abs().max(floor))
        {
            Some(i) => Err(format!(
                "{}: output {i} is {} but {against} gives {}",
                self.w.label(),
                got[i],
                want[i]
            )),
            None => Ok(()),
        }
    }

    /// The bf16 net, checked against the f32 forward (1e-2 of the larger of the output
    /// and 0.1) before it is timed.
    fn bf16_runner(&self) -> Result<Prepared, String> {
        let e = |err: tessera_tensor::TesseraError| err.to_string();
        let x = self.data.inputs().to_vec();
        let mut bf16 = tessera_cpu::nn::Bf16Mlp::new(&self.net.dense_layers()).map_err(e)?;
        let got = bf16.forward(&x).map_err(e)?.to_vec();
        self.check_outputs(&got, (1e-2, 0.1), "the f32 forward")?;
        let bytes = (self.net.parameter_count() * 2) as u64;
        Ok(Prepared::Ready(Box::new(Bf16Runner(bf16, x)), bytes))
    }

    fn libfann_runner(
        &self,
        lib: &std::sync::Arc<crate::libfann::Libfann>,
    ) -> Result<Prepared, String> {
        let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let (net_path, data_path) = (dir.join("bench.net"), dir.join("bench.data"));
        write_net(&net_path, &self.net, &FannSettings::default()).map_err(|e| e.to_string())?;
        write_data(&data_path, &self.data).map_err(|e| e.to_string())?;
        let mut run = lib.open(&net_path, &data_path)?;
        run.set_algorithm(2);
        let mses: Vec<f32> = (0..QUALITY_EPOCHS).map(|_| run.train_epoch()).collect();
        let ours = epochs(CpuNn::new(), self, 1).map_err(|e| e.to_string())?;
        // Same net, data and algorithm: libfann's first-epoch MSE must match ours.
        if (mses[0] as f64 - ours[0]).abs() > 1e-3 * ours[0] {
            return Err(format!(
                "libfann's first-epoch MSE {} differs from tessera's {}",
                mses[0], ours[0]
            ));
        }
        let note = self.note(mses[QUALITY_EPOCHS - 1] as f64);
        let fresh = lib.open(&net_path, &data_path)?;
        let mut fresh = fresh;
        fresh.set_algorithm(2);
        std::fs::remove_dir_all(&dir).ok();
        Ok(Prepared::Ready(
            Box::new(LibfannRunner(fresh, note)),
            (self.net.parameter_count() * 4 * 4) as u64,
        ))
    }
}

impl Fixture for NetFixture {
    fn prepare(&self, b: &BenchBackend) -> Result<Prepared, String> {
        if software_too_big(b, &self.w) {
            return Ok(Prepared::NotApplicable(SOFTWARE_SKIP));
        }
        if matches!(self.w.kind, NnKind::ForwardBf16 { .. }) {
            return match &b.kind {
                BackendKind::CpuSimd => self.bf16_runner(),
                _ => Ok(Prepared::NotApplicable("bf16 inference is CPU-only")),
            };
        }
        match &b.kind {
            BackendKind::CpuSimd => self.kernel_runner(|| Ok(CpuNn::new())),
            // Scalar element-wise kernels and GEMV; the GEMM runs `matrixmultiply`
            // (the AVX-512 kernel needs the SIMD level).
            BackendKind::CpuScalar => self.kernel_runner(|| Ok(CpuNn::new_scalar())),
            BackendKind::Gpu(ctx) => self.kernel_runner(|| GpuNn::new(ctx)),
            BackendKind::Libfann(lib) if self.w.kind.is_fann() => self.libfann_runner(lib),
            _ => Ok(Prepared::NotApplicable(
                "no network kernels on this backend",
            )),
        }
    }
}
