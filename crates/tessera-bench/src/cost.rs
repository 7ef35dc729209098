//! The cost model of GPU workloads: the bytes an iteration must move through device
//! memory and the FLOPs it must do, at least, so the report gives achieved GB/s and
//! GFLOP/s and, where the adapter's peak is known (a table of vendor figures, or
//! `--peak-gflops` and `--peak-gbps`), the fraction of that peak. On a software
//! rasteriser these columns only prove the accounting.

use serde::{Deserialize, Serialize};

/// What one iteration must move and compute at least.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Bytes read from and written to device memory (each input read once, each
    /// output written once).
    pub bytes: f64,
    /// Floating-point operations (a multiply-add counts 2).
    pub flops: f64,
}

/// A GPU's peak rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// f32 FLOP/s without tensor cores or matrix units, in GFLOP/s.
    pub gflops: Option<f64>,
    /// Memory bandwidth, in GB/s.
    pub gbps: Option<f64>,
    /// Where the figures come from.
    pub source: String,
}

/// Vendor figures (f32 non-tensor GFLOP/s, GB/s) for GPUs whose adapter name
/// contains the key, most specific first. Spec-sheet peaks, not measurements.
const KNOWN: &[(&str, f64, f64)] = &[
    ("H200", 67_000.0, 4_800.0),
    ("H100 PCIe", 51_000.0, 2_000.0),
    ("H100", 67_000.0, 3_350.0),
    ("A100 80GB", 19_500.0, 2_039.0),
    ("A100", 19_500.0, 1_555.0),
    ("L40S", 91_600.0, 864.0),
    ("RTX 4090", 82_600.0, 1_008.0),
    ("Apple M1 Max", 10_400.0, 400.0),
    ("Apple M1 Pro", 5_200.0, 200.0),
    ("Apple M1", 2_600.0, 68.0),
    ("Apple M2 Max", 13_600.0, 400.0),
    ("Apple M2 Pro", 6_800.0, 200.0),
    ("Apple M2", 3_600.0, 100.0),
];

/// The peak of the adapter called `name`: the command line's figures where given,
/// else the vendor table's, else none.
pub fn peak_for(name: &str, gflops: Option<f64>, gbps: Option<f64>) -> Option<Peak> {
    if gflops.is_some() || gbps.is_some() {
        return Some(Peak {
            gflops,
            gbps,
            source: "--peak-gflops / --peak-gbps".into(),
        });
    }
    KNOWN
        .iter()
        .find(|(key, _, _)| name.contains(key))
        .map(|&(key, gflops, gbps)| Peak {
            gflops: Some(gflops),
            gbps: Some(gbps),
            source: format!("vendor figures for {key}"),
        })
}

/// Cost of `C = A B` for `[m, k] x [k, n]`: A and B read once, C written once.
pub fn gemm(m: usize, n: usize, k: usize) -> Cost {
    Cost {
        bytes: 4.0 * (m * k + k * n + m * n) as f64,
        flops: 2.0 * (m * n * k) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_known_name_wins_and_the_command_line_beats_the_table() {
        let pcie = peak_for("NVIDIA H100 PCIe", None, None).unwrap();
        assert_eq!(pcie.gbps, Some(2_000.0));
        let max = peak_for("Apple M1 Max", None, None).unwrap();
        assert_eq!(max.gflops, Some(10_400.0));
        assert!(peak_for("llvmpipe (LLVM 15.0.6, 256 bits)", None, None).is_none());
        let given = peak_for("NVIDIA H100", Some(1.0), None).unwrap();
        assert_eq!((given.gflops, given.gbps), (Some(1.0), None));
    }

    #[test]
    fn gemm_counts_each_matrix_once() {
        let c = gemm(2, 3, 4);
        assert_eq!(c.bytes, 4.0 * (8 + 12 + 6) as f64);
        assert_eq!(c.flops, 48.0);
    }
}
