//! The shared simulator parity suite, run against the CPU backend.

use tessera_cpu::CpuSim;
use tessera_tensor::sim::ScmBatch;

fn cpu() -> Option<fn(&ScmBatch) -> tessera_tensor::Result<CpuSim>> {
    Some(CpuSim::new)
}

tessera_tensor::sim_parity_suite!(cpu());
