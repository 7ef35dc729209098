//! The shared neural-kernel parity suite, run against the CPU backend.

tessera_tensor::nn_parity_suite!(Some(tessera_cpu::CpuNn::new()));
