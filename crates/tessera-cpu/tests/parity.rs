//! The shared acquisition parity suite, run against the CPU backend.

use tessera_cpu::CpuAcquisition;
use tessera_tensor::acquisition::AcquisitionConfig;

fn cpu() -> Option<fn(&AcquisitionConfig) -> tessera_tensor::Result<CpuAcquisition>> {
    Some(CpuAcquisition::new)
}

tessera_tensor::acquisition_parity_suite!(cpu(), cases = 64);
