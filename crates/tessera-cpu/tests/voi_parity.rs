//! The VOI parity suite on the CPU backend, with SIMD dispatch and pinned to scalar
//! code, on f64 input (the suite's tables are f64).

use tessera_cpu::CpuVoi;

mod dispatched {
    use super::*;
    tessera_tensor::voi_parity_suite!(Some(|| Ok(CpuVoi::new())), 48);
}

mod scalar {
    use super::*;
    tessera_tensor::voi_parity_suite!(Some(|| Ok(CpuVoi::scalar())), 16);
}
