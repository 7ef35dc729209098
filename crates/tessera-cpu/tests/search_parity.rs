//! The similarity parity suite on the CPU backend at every SIMD level this CPU runs
//! (a level it lacks is skipped, saying so).

use tessera_cpu::{CpuIndex, SimdLevel};
use tessera_tensor::search::IndexConfig;

fn at(level: SimdLevel) -> Option<impl Fn(IndexConfig) -> tessera_tensor::Result<CpuIndex>> {
    if !level.is_available() {
        eprintln!("skipping {level:?}: this CPU lacks it");
        return None;
    }
    Some(move |config| CpuIndex::with_level(config, level))
}

mod scalar {
    use super::*;
    tessera_tensor::search_parity_suite!(at(SimdLevel::Scalar), 24);
}

mod avx2 {
    use super::*;
    tessera_tensor::search_parity_suite!(at(SimdLevel::Avx2), 24);
}

mod avx512 {
    use super::*;
    tessera_tensor::search_parity_suite!(at(SimdLevel::Avx512), 48);
}

#[test]
fn the_widest_level_is_chosen_unless_capped() {
    let index = CpuIndex::new(IndexConfig::new(8, tessera_tensor::search::Metric::L2)).unwrap();
    let widest = *SimdLevel::available().last().unwrap();
    match std::env::var("TESSERA_SIMD") {
        Err(_) => assert_eq!(index.level(), widest),
        Ok(_) => assert!(index.level() <= widest),
    }
}
