//! The device handle: which backend runs the kernels of every family.

use std::sync::Arc;

#[cfg(feature = "gpu")]
use tessera_gpu::GpuContext;
use tessera_tensor::{Result, TesseraError};

/// Which backend a [`Device`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The CPU SIMD backend (`tessera-cpu`).
    Cpu,
    /// The wgpu backend (`tessera-gpu`).
    Gpu,
}

/// The CPU backend's settings, and why the CPU was chosen when it was a fallback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuDevice {
    scalar: bool,
    fallback: Option<Arc<str>>,
}

impl CpuDevice {
    /// The CPU with the SIMD instruction set detected at run time (AVX2/FMA, AVX-512,
    /// NEON) and rayon across cores.
    pub fn new() -> Self {
        Self::default()
    }

    /// The CPU with SIMD dispatch off: the scalar code path of the same kernels, a
    /// baseline that shows what SIMD buys.
    pub fn scalar() -> Self {
        Self {
            scalar: true,
            fallback: None,
        }
    }

    /// Whether SIMD dispatch is off.
    pub fn is_scalar(&self) -> bool {
        self.scalar
    }

    /// Why [`Device::new`] fell back to the CPU, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

/// How [`Device::with_preference`] chooses a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// A hardware GPU when one works; otherwise the CPU, which is faster than a
    /// software rasteriser (lavapipe, llvmpipe, WARP).
    #[default]
    Auto,
    /// Any GPU adapter, software rasterisers included; the CPU if there is none.
    Gpu,
    /// The CPU.
    Cpu,
}

impl Preference {
    /// The preference named by `TESSERA_DEVICE` (`auto`, `gpu` or `cpu`, any case);
    /// [`Preference::Auto`] when it is unset or empty. An unknown value is an error.
    pub fn from_env() -> Result<Self> {
        match std::env::var("TESSERA_DEVICE") {
            Err(_) => Ok(Self::Auto),
            Ok(v) => Self::parse(&v),
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(TesseraError::InvalidConfig {
                field: "TESSERA_DEVICE",
                value: value.to_owned(),
                expected: "`auto`, `gpu` or `cpu`".into(),
            }),
        }
    }
}

/// Where tessera's kernels run, for every family (acquisition, neural networks, ...):
/// a GPU context, or the CPU.
///
/// Each family's constructor (`Acquisition::new`, `nn::Model::on`, ...) matches on
/// the device once and holds the backend's concrete type, so no call site needs a
/// generic parameter or a `match`.
#[derive(Debug, Clone)]
pub enum Device {
    /// The CPU backend.
    Cpu(CpuDevice),
    /// A wgpu device (Metal, Vulkan, DX12 or GL).
    #[cfg(feature = "gpu")]
    Gpu(GpuContext),
}

impl Device {
    /// The device `TESSERA_DEVICE` asks for (see [`Preference::from_env`]), by default
    /// [`Preference::Auto`]: a hardware GPU if one works, otherwise the CPU. When the
    /// CPU is a fallback, [`Device::fallback_reason`] says why (and a `tracing`
    /// warning is emitted). Honours `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
    /// `WGPU_POWER_PREF`.
    pub async fn new() -> Self {
        match Preference::from_env() {
            Ok(preference) => Self::with_preference(preference).await,
            Err(e) => Self::fallback(format!("{e}; using the CPU")),
        }
    }

    /// [`Device::new`], blocking the calling thread.
    pub fn new_blocking() -> Self {
        pollster::block_on(Self::new())
    }

    /// The device `preference` asks for, ignoring `TESSERA_DEVICE`.
    pub async fn with_preference(preference: Preference) -> Self {
        match preference {
            Preference::Cpu => Self::cpu(),
            #[cfg(feature = "gpu")]
            Preference::Auto => Self::gpu_or_cpu(GpuContext::new_hardware().await),
            #[cfg(feature = "gpu")]
            Preference::Gpu => Self::gpu_or_cpu(GpuContext::new().await),
            #[cfg(not(feature = "gpu"))]
            Preference::Auto | Preference::Gpu => {
                Self::fallback("tessera was built without its `gpu` feature".into())
            }
        }
    }

    /// [`Device::with_preference`], blocking the calling thread.
    pub fn with_preference_blocking(preference: Preference) -> Self {
        pollster::block_on(Self::with_preference(preference))
    }

    /// The CPU backend with runtime SIMD dispatch.
    pub fn cpu() -> Self {
        Self::Cpu(CpuDevice::new())
    }

    /// Any GPU adapter (software rasterisers included), or an error saying why there
    /// is none.
    #[cfg(feature = "gpu")]
    pub async fn gpu() -> Result<Self> {
        Ok(Self::from_context(GpuContext::new().await?))
    }

    /// [`Device::gpu`], blocking the calling thread.
    #[cfg(feature = "gpu")]
    pub fn gpu_blocking() -> Result<Self> {
        pollster::block_on(Self::gpu())
    }

    /// A device on a GPU context, e.g. one built with
    /// [`GpuContext::from_device`] on the application's own wgpu device.
    #[cfg(feature = "gpu")]
    pub fn from_context(ctx: GpuContext) -> Self {
        Self::Gpu(ctx)
    }

    /// The CPU, remembering why it was chosen.
    fn fallback(reason: String) -> Self {
        tracing::warn!(%reason, "tessera falls back to the CPU backend");
        Self::Cpu(CpuDevice {
            scalar: false,
            fallback: Some(reason.into()),
        })
    }

    /// The fallback rule: the GPU when there is one, else the CPU with the reason.
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_or_cpu(gpu: Result<GpuContext>) -> Self {
        match gpu {
            Ok(ctx) => Self::from_context(ctx),
            Err(e) => Self::fallback(format!(
                "{e}; set TESSERA_DEVICE=gpu (or call Device::gpu) to use a software adapter"
            )),
        }
    }

    /// Which backend this device runs.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Self::Gpu(_) => Backend::Gpu,
        }
    }

    /// The GPU context, if this is a GPU device.
    #[cfg(feature = "gpu")]
    pub fn gpu_context(&self) -> Option<&GpuContext> {
        match self {
            Self::Gpu(ctx) => Some(ctx),
            Self::Cpu(_) => None,
        }
    }

    /// Why [`Device::new`] chose the CPU instead of a GPU (`None` for a GPU, or a CPU
    /// asked for explicitly).
    pub fn fallback_reason(&self) -> Option<&str> {
        match self {
            Self::Cpu(cpu) => cpu.fallback_reason(),
            #[cfg(feature = "gpu")]
            Self::Gpu(_) => None,
        }
    }

    /// A one-line description: the adapter's name and API, or the CPU (with the
    /// reason it was chosen, when it was a fallback).
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "gpu")]
            Self::Gpu(ctx) => {
                let i = ctx.adapter_info();
                let software = if ctx.is_software() {
                    ", software rasteriser"
                } else {
                    ""
                };
                format!("{} ({:?}{software})", i.name, i.backend)
            }
            Self::Cpu(cpu) => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let simd = if cpu.scalar { ", scalar" } else { "" };
                match &cpu.fallback {
                    Some(reason) => {
                        format!("CPU ({threads} threads{simd}; chosen because {reason})")
                    }
                    None => format!("CPU ({threads} threads{simd})"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_parse_from_their_names() {
        assert_eq!(Preference::parse("").unwrap(), Preference::Auto);
        assert_eq!(Preference::parse("GPU").unwrap(), Preference::Gpu);
        assert_eq!(Preference::parse(" cpu ").unwrap(), Preference::Cpu);
        assert!(matches!(
            Preference::parse("tpu"),
            Err(TesseraError::InvalidConfig {
                field: "TESSERA_DEVICE",
                ..
            })
        ));
    }

    #[test]
    fn the_cpu_asked_for_has_no_fallback_reason() {
        let d = Device::with_preference_blocking(Preference::Cpu);
        assert_eq!(d.backend(), Backend::Cpu);
        assert_eq!(d.fallback_reason(), None);
        assert!(d.describe().starts_with("CPU ("));
    }

    #[cfg(feature = "gpu")]
    #[test]
    fn no_adapter_falls_back_to_the_cpu_and_says_why() {
        let d = Device::gpu_or_cpu(Err(TesseraError::NoAdapter("none in this test".into())));
        assert_eq!(d.backend(), Backend::Cpu);
        assert!(d.fallback_reason().unwrap().contains("none in this test"));
        assert!(
            d.describe().contains("none in this test"),
            "{}",
            d.describe()
        );
    }
}
