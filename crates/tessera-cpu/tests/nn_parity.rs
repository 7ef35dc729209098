//! The shared neural-kernel parity suite, run against the CPU backend at its best SIMD
//! level and without SIMD.

mod simd {
    tessera_tensor::nn_parity_suite!(Some(tessera_cpu::CpuNn::new()));
}

mod scalar {
    tessera_tensor::nn_parity_suite!(Some(tessera_cpu::CpuNn::new_scalar()));
}
