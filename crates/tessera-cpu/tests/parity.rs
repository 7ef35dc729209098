//! The shared acquisition parity suite, run against the CPU backend at its default
//! SIMD level, without SIMD, and pinned to every other level this CPU runs.

mod common;

use tessera_cpu::{CpuAcquisition, SimdLevel};
use tessera_tensor::acquisition::AcquisitionConfig;

fn cpu() -> Option<fn(&AcquisitionConfig) -> tessera_tensor::Result<CpuAcquisition>> {
    Some(CpuAcquisition::new)
}

tessera_tensor::acquisition_parity_suite!(cpu(), cases = 64);

/// The scalar code path (SIMD dispatch off) meets the same contract.
mod scalar {
    use tessera_cpu::CpuAcquisition;
    use tessera_tensor::acquisition::AcquisitionConfig;

    fn cpu_scalar() -> Option<fn(&AcquisitionConfig) -> tessera_tensor::Result<CpuAcquisition>> {
        Some(CpuAcquisition::new_scalar)
    }

    tessera_tensor::acquisition_parity_suite!(cpu_scalar(), cases = 16);

    #[test]
    fn reports_its_simd_level() {
        let cfg = AcquisitionConfig::single(2, 2, 0);
        assert_eq!(
            CpuAcquisition::new_scalar(&cfg).unwrap().simd_level(),
            "scalar"
        );
        assert!(!CpuAcquisition::new(&cfg).unwrap().simd_level().is_empty());
    }
}

fn pinned(
    level: SimdLevel,
) -> Option<impl Fn(&AcquisitionConfig) -> tessera_tensor::Result<CpuAcquisition>> {
    common::pinned(level, CpuAcquisition::default_level())
        .map(|l| move |config: &AcquisitionConfig| CpuAcquisition::with_level(config, l))
}

mod avx2 {
    use super::*;
    tessera_tensor::acquisition_parity_suite!(pinned(SimdLevel::Avx2), cases = 16);
}

mod avx512 {
    use super::*;
    tessera_tensor::acquisition_parity_suite!(pinned(SimdLevel::Avx512), cases = 16);
}

/// A corrupt checkpoint is refused by `from_state`, naming the field.
#[test]
fn corrupt_checkpoints_are_rejected() {
    tessera_tensor::reference::parity::check_checkpoint_rejection(|s| {
        CpuAcquisition::from_state(s.clone()).map(drop)
    });
}
