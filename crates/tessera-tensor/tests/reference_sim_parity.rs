//! The simulator parity suite run against the f64 reference itself.

use tessera_tensor::reference::ReferenceSim;
use tessera_tensor::sim::ScmBatch;

fn reference() -> Option<fn(&ScmBatch) -> tessera_tensor::Result<ReferenceSim>> {
    Some(ReferenceSim::new)
}

tessera_tensor::sim_parity_suite!(reference());

mod posterior {
    use tessera_tensor::reference::ReferencePosterior;
    use tessera_tensor::sim::PosteriorConfig;

    fn reference() -> Option<fn(&PosteriorConfig) -> tessera_tensor::Result<ReferencePosterior>> {
        Some(ReferencePosterior::new)
    }

    tessera_tensor::posterior_parity_suite!(reference());
}
