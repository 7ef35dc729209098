//! What the CPU parity suites share: which SIMD levels to pin beside the default.

use tessera_cpu::SimdLevel;

/// `Some(level)` when this CPU runs `level` and the backend's unpinned default is
/// another level (the suite's unpinned module tests that one); `None`, saying why,
/// otherwise.
pub fn pinned(level: SimdLevel, default: SimdLevel) -> Option<SimdLevel> {
    if !level.is_available() {
        eprintln!("skipping {level:?}: this CPU lacks it");
        None
    } else if level == default {
        eprintln!("skipping {level:?}: the unpinned module runs it");
        None
    } else {
        Some(level)
    }
}
