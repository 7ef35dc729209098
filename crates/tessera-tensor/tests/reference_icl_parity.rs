//! The in-context parity suite on the f64 reference itself.

use tessera_tensor::reference::ReferenceIcl;

tessera_tensor::icl_parity_suite!(Some(|| Ok(ReferenceIcl)), 24);
