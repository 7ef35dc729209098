//! What the report says about the machine it ran on.

use serde::{Deserialize, Serialize};

/// The host: CPU model, threads and OS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MachineInfo {
    /// CPU model name as the OS reports it.
    pub cpu_model: String,
    /// Hardware threads available to the process.
    pub threads: usize,
    /// Operating system and architecture.
    pub os: String,
    /// The SIMD extensions the CPU kernels can dispatch to (x86-64: AVX2, FMA and the
    /// AVX-512 subsets; empty elsewhere).
    #[serde(default)]
    pub simd: Vec<String>,
}

impl MachineInfo {
    /// Reads the current machine.
    pub fn current() -> Self {
        Self {
            cpu_model: cpu_model(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            simd: simd_flags(),
        }
    }
}

fn cpu_model() -> String {
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo")
        && let Some(name) = info
            .lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split(':').nth(1))
    {
        return name.trim().to_owned();
    }
    std::process::Command::new("sysctl")
        .args(["-n", "machdep.cpu.brand_string"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The SIMD extensions detected at run time.
pub fn simd_flags() -> Vec<String> {
    let mut flags = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => {
                $(if is_x86_feature_detected!($f) {
                    flags.push($f.to_owned());
                })*
            };
        }
        detect!(
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512bf16"
        );
    }
    flags
}
