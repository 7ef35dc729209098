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
