//! The shared simulator parity suite, run against the CPU backend.

use tessera_cpu::CpuSim;
use tessera_tensor::sim::ScmBatch;

fn cpu() -> Option<fn(&ScmBatch) -> tessera_tensor::Result<CpuSim>> {
    Some(CpuSim::new)
}

tessera_tensor::sim_parity_suite!(cpu());

mod posterior {
    use tessera_cpu::CpuPosterior;
    use tessera_tensor::sim::PosteriorConfig;

    fn cpu() -> Option<fn(&PosteriorConfig) -> tessera_tensor::Result<CpuPosterior>> {
        Some(CpuPosterior::new)
    }

    tessera_tensor::posterior_parity_suite!(cpu());
}
