//! The in-context parity suite on the CPU backend, with SIMD dispatch, pinned to
//! scalar code and pinned to every other level this CPU runs.

mod common;

use tessera_cpu::{CpuIcl, SimdLevel};

fn pinned(level: SimdLevel) -> Option<impl Fn() -> tessera_tensor::Result<CpuIcl>> {
    common::pinned(level, SimdLevel::in_use()).map(|l| move || CpuIcl::with_level(l))
}

mod dispatched {
    use super::*;
    tessera_tensor::icl_parity_suite!(Some(|| Ok(CpuIcl::new())), 32);
}

mod scalar {
    use super::*;
    tessera_tensor::icl_parity_suite!(Some(|| Ok(CpuIcl::scalar())), 12);
}

mod avx2 {
    use super::*;
    tessera_tensor::icl_parity_suite!(pinned(SimdLevel::Avx2), 12);
}

mod avx512 {
    use super::*;
    tessera_tensor::icl_parity_suite!(pinned(SimdLevel::Avx512), 12);
}
