//! The simulator parity suite run against the f64 reference itself.

use tessera_tensor::reference::ReferenceSim;
use tessera_tensor::sim::ScmBatch;

fn reference() -> Option<fn(&ScmBatch) -> tessera_tensor::Result<ReferenceSim>> {
    Some(ReferenceSim::new)
}

tessera_tensor::sim_parity_suite!(reference());
