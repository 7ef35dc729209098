//! The in-context parity suite on the CPU backend, with SIMD dispatch and pinned to
//! scalar code.

use tessera_cpu::CpuIcl;

mod dispatched {
    use super::*;
    tessera_tensor::icl_parity_suite!(Some(|| Ok(CpuIcl::new())), 32);
}

mod scalar {
    use super::*;
    tessera_tensor::icl_parity_suite!(Some(|| Ok(CpuIcl::scalar())), 12);
}
