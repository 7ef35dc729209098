//! The shared neural-kernel parity suite, run against the CPU backend at its default
//! SIMD level, without SIMD, and pinned to every other level this CPU runs.

mod common;

use tessera_cpu::{CpuNn, SimdLevel};

fn pinned(level: SimdLevel) -> Option<CpuNn> {
    common::pinned(level, CpuNn::new().level()).map(|l| CpuNn::with_level(l).unwrap())
}

mod simd {
    tessera_tensor::nn_parity_suite!(Some(tessera_cpu::CpuNn::new()));
}

mod scalar {
    tessera_tensor::nn_parity_suite!(Some(tessera_cpu::CpuNn::new_scalar()));
}

mod avx2 {
    use super::*;
    tessera_tensor::nn_parity_suite!(pinned(SimdLevel::Avx2));
}

mod avx512 {
    use super::*;
    tessera_tensor::nn_parity_suite!(pinned(SimdLevel::Avx512));
}

/// Pinning a level this CPU lacks is a typed error naming the levels it has, from every
/// backend's `with_level`.
#[test]
fn a_level_the_cpu_lacks_is_a_typed_error() {
    use tessera_tensor::TesseraError;
    let missing = [SimdLevel::Neon, SimdLevel::Avx2, SimdLevel::Avx512]
        .into_iter()
        .find(|l| !l.is_available());
    let Some(level) = missing else {
        eprintln!("skipping: this CPU runs every level");
        return;
    };
    let check = |result: Result<(), TesseraError>| match result {
        Err(TesseraError::InvalidConfig {
            field, expected, ..
        }) => {
            assert_eq!(field, "simd level");
            assert!(expected.contains("Scalar"), "{expected}");
        }
        other => panic!("{level:?}: {other:?}"),
    };
    let config = tessera_tensor::acquisition::AcquisitionConfig::single(3, 10, 0);
    check(CpuNn::with_level(level).map(drop));
    check(tessera_cpu::CpuAcquisition::with_level(&config, level).map(drop));
    check(tessera_cpu::CpuVoi::with_level(level).map(drop));
    check(tessera_cpu::CpuIcl::with_level(level).map(drop));
    assert!(SimdLevel::available().contains(&SimdLevel::Scalar));
}
