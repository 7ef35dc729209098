//! The backends a benchmark run can time: the f64 reference, the CPU kernels with
//! SIMD off and on, and every wgpu adapter on the machine.

use serde::{Deserialize, Serialize};
use tessera_gpu::GpuContext;

/// What kind of backend a column is.
#[derive(Debug, Clone)]
pub enum BackendKind {
    /// The f64 scalar reference (rescans the ring; only small workloads).
    Reference,
    /// The CPU kernels with SIMD dispatch off.
    CpuScalar,
    /// The CPU kernels with runtime SIMD dispatch and rayon.
    CpuSimd,
    /// A wgpu adapter.
    Gpu(GpuContext),
    /// The `gemm` crate (CPU GEMM workloads only): the comparison for tessera's CPU GEMM.
    GemmCrate,
    /// libfann 2.2 loaded at run time (FANN training workloads only).
    Libfann(std::sync::Arc<crate::libfann::Libfann>),
    /// OpenBLAS loaded at run time (CPU GEMM workloads only): the comparison for
    /// tessera's CPU SGEMM.
    OpenBlas(std::sync::Arc<crate::openblas::OpenBlas>),
}

/// A wgpu adapter as the report describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
    /// Graphics API (Vulkan, Metal, Dx12, Gl).
    pub api: String,
    /// Driver name and version.
    pub driver: String,
    /// Integrated, discrete, virtual or CPU.
    pub device_type: String,
    /// True for software rasterisers (lavapipe, llvmpipe, WARP): not GPU speed.
    pub software: bool,
    /// Its peak rates, where known (for the fraction-of-peak columns).
    #[serde(default)]
    pub peak: Option<crate::cost::Peak>,
}

/// One column of the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackendInfo {
    /// Stable identifier (`reference`, `cpu-scalar`, `cpu-simd`, `gpu-vulkan-0`, ...).
    pub id: String,
    /// Human-readable column title.
    pub label: String,
    /// The adapter, for GPU columns.
    pub adapter: Option<AdapterReport>,
}

/// A backend ready to run workloads.
#[derive(Debug, Clone)]
pub struct BenchBackend {
    /// How it appears in the report.
    pub info: BackendInfo,
    /// What runs the kernels.
    pub kind: BackendKind,
}

impl BenchBackend {
    /// Whether this column is a GPU (real or software).
    pub fn is_gpu(&self) -> bool {
        matches!(self.kind, BackendKind::Gpu(_))
    }
}

/// Every backend on this machine whose id contains one of `filters` (all when empty)
/// and, for GPUs, whose adapter name contains `adapter` (if given).
pub fn discover(filters: &[String], adapter: Option<&str>) -> Vec<BenchBackend> {
    let (widest, acquisition) = (
        tessera_cpu::SimdLevel::in_use(),
        tessera_cpu::CpuAcquisition::default_level(),
    );
    let simd = if acquisition < widest {
        format!("{widest:?}; acquisition and small-net epochs at {acquisition:?}")
    } else {
        format!("{widest:?}")
    };
    let mut all = vec![
        cpu(
            "reference",
            "CPU f64 reference".into(),
            BackendKind::Reference,
        ),
        cpu("cpu-scalar", "CPU scalar".into(), BackendKind::CpuScalar),
        cpu(
            "cpu-simd",
            format!("CPU SIMD ({simd})"),
            BackendKind::CpuSimd,
        ),
        cpu(
            "cpu-gemm-crate",
            "gemm crate 0.19 (CPU, GEMM only)".into(),
            BackendKind::GemmCrate,
        ),
    ];
    if let Some(lib) = crate::openblas::OpenBlas::load() {
        all.push(cpu(
            "cpu-openblas",
            format!("{} (CPU, GEMM only)", lib.description),
            BackendKind::OpenBlas(std::sync::Arc::new(lib)),
        ));
    }
    if let Some(lib) = crate::libfann::Libfann::load() {
        all.push(cpu(
            "libfann",
            "libfann 2.2 (CPU, FANN training only)".into(),
            BackendKind::Libfann(std::sync::Arc::new(lib)),
        ));
    }
    let adapters = pollster::block_on(GpuContext::enumerate_adapters());
    let mut per_api = std::collections::HashMap::<String, usize>::new();
    for a in adapters {
        let info = a.get_info();
        if adapter.is_some_and(|want| !info.name.to_lowercase().contains(&want.to_lowercase())) {
            continue;
        }
        let api = format!("{:?}", info.backend);
        let index = per_api.entry(api.clone()).or_default();
        let id = format!("gpu-{}-{index}", api.to_lowercase());
        *index += 1;
        match pollster::block_on(GpuContext::from_adapter(&a)) {
            Ok(ctx) => {
                let software = ctx.is_software();
                all.push(BenchBackend {
                    info: BackendInfo {
                        label: format!(
                            "{} [{api}]{}",
                            info.name,
                            if software { " (software)" } else { "" }
                        ),
                        id,
                        adapter: Some(AdapterReport {
                            name: info.name.clone(),
                            api,
                            driver: format!("{} {}", info.driver, info.driver_info)
                                .trim()
                                .to_owned(),
                            device_type: format!("{:?}", info.device_type),
                            software,
                            peak: None,
                        }),
                    },
                    kind: BackendKind::Gpu(ctx),
                });
            }
            Err(e) => tracing::warn!(adapter = %info.name, error = %e, "adapter skipped"),
        }
    }
    all.retain(|b| filters.is_empty() || filters.iter().any(|f| b.info.id.contains(f.as_str())));
    all
}

fn cpu(id: &str, label: String, kind: BackendKind) -> BenchBackend {
    BenchBackend {
        info: BackendInfo {
            id: id.into(),
            label,
            adapter: None,
        },
        kind,
    }
}
