//! The parity suite run against the f64 reference itself: checks the scenarios' own
//! expectations (the spec's test vector, ties, empty buffers) hold for the reference.

use tessera_tensor::acquisition::AcquisitionConfig;
use tessera_tensor::reference::ReferenceAcquisition;

fn reference() -> Option<fn(&AcquisitionConfig) -> tessera_tensor::Result<ReferenceAcquisition>> {
    Some(ReferenceAcquisition::new)
}

tessera_tensor::acquisition_parity_suite!(reference(), cases = 16);

/// The checkpoint check itself: a valid state passes, each corruption names its field.
#[test]
fn corrupt_checkpoints_are_rejected() {
    tessera_tensor::reference::parity::check_checkpoint_rejection(|s| s.validate());
}
