//! The shared simulator and posterior parity suites, run against the CPU backend at
//! its default SIMD level and pinned to every other level this CPU runs.

mod common;

use tessera_cpu::{CpuPosterior, CpuSim, SimdLevel};
use tessera_tensor::Result;
use tessera_tensor::sim::{PosteriorConfig, ScmBatch};

fn sim(level: Option<SimdLevel>) -> Option<impl Fn(&ScmBatch) -> Result<CpuSim>> {
    level.map(|l| move |scm: &ScmBatch| CpuSim::with_level(scm, l))
}

fn posterior(
    level: Option<SimdLevel>,
) -> Option<impl Fn(&PosteriorConfig) -> Result<CpuPosterior>> {
    level.map(|l| move |config: &PosteriorConfig| CpuPosterior::with_level(config, l))
}

fn pinned(level: SimdLevel) -> Option<SimdLevel> {
    common::pinned(level, SimdLevel::in_use())
}

mod dispatched {
    use super::*;
    tessera_tensor::sim_parity_suite!(sim(Some(SimdLevel::in_use())));
    mod posterior {
        use super::*;
        tessera_tensor::posterior_parity_suite!(posterior(Some(SimdLevel::in_use())));
    }
}

mod scalar {
    use super::*;
    tessera_tensor::sim_parity_suite!(sim(Some(SimdLevel::Scalar)));
    mod posterior {
        use super::*;
        tessera_tensor::posterior_parity_suite!(posterior(Some(SimdLevel::Scalar)));
    }
}

mod avx2 {
    use super::*;
    tessera_tensor::sim_parity_suite!(sim(pinned(SimdLevel::Avx2)));
    mod posterior {
        use super::*;
        tessera_tensor::posterior_parity_suite!(posterior(pinned(SimdLevel::Avx2)));
    }
}

mod avx512 {
    use super::*;
    tessera_tensor::sim_parity_suite!(sim(pinned(SimdLevel::Avx512)));
    mod posterior {
        use super::*;
        tessera_tensor::posterior_parity_suite!(posterior(pinned(SimdLevel::Avx512)));
    }
}
