//! The VOI parity suite on the CPU backend, with SIMD dispatch, pinned to scalar code
//! and pinned to every other level this CPU runs, on f64 input (the suite's tables
//! are f64).

mod common;

use tessera_cpu::{CpuVoi, SimdLevel};

fn pinned(level: SimdLevel) -> Option<impl Fn() -> tessera_tensor::Result<CpuVoi>> {
    common::pinned(level, SimdLevel::in_use()).map(|l| move || CpuVoi::with_level(l))
}

mod dispatched {
    use super::*;
    tessera_tensor::voi_parity_suite!(Some(|| Ok(CpuVoi::new())), 48);
}

mod scalar {
    use super::*;
    tessera_tensor::voi_parity_suite!(Some(|| Ok(CpuVoi::scalar())), 16);
}

mod avx2 {
    use super::*;
    tessera_tensor::voi_parity_suite!(pinned(SimdLevel::Avx2), 16);
}

mod avx512 {
    use super::*;
    tessera_tensor::voi_parity_suite!(pinned(SimdLevel::Avx512), 16);
}
