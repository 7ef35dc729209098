//! The neural parity suite run against the f64 reference itself.

tessera_tensor::nn_parity_suite!(Some(tessera_tensor::reference::ReferenceNn));
