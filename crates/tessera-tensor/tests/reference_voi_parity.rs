//! The VOI parity suite against the reference itself: the scenarios are consistent.

use tessera_tensor::reference::ReferenceVoi;

tessera_tensor::voi_parity_suite!(Some(|| Ok(ReferenceVoi::new())), 16);
