//! The similarity parity suite on the f64 reference itself (it must pass its own
//! checks, ties and bad input included).

use tessera_tensor::reference::ReferenceIndex;

tessera_tensor::search_parity_suite!(Some(ReferenceIndex::new), 24);
