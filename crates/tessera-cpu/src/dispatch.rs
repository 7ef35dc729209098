//! Running loops under pulp's runtime SIMD dispatch so that they actually compile for
//! the dispatched instruction set.

use pulp::{Arch, Simd, WithSimd};

use crate::SimdLevel;

/// `kernel(args)` as a pulp operation. Run through `Arch::dispatch`, the whole call is
/// compiled for the dispatched instruction set when `kernel` is an `#[inline(always)]`
/// function item, as every loop of this crate is. A closure handed to `dispatch`
/// instead is compiled for the baseline set whenever its body is too big to inline:
/// measured here, Adam's update ran 4x and an acquisition step 1.7x slower under AVX2
/// dispatch than without it that way.
pub(crate) struct Kernel<F, A>(pub F, pub A);

impl<F: FnOnce(A) -> R, A, R> WithSimd for Kernel<F, A> {
    type Output = R;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> R {
        (self.0)(self.1)
    }
}

/// The pulp dispatch the families start with: runtime detection (AVX2/FMA, NEON), or
/// scalar code when `TESSERA_SIMD=scalar`, read once per process. These constructors
/// cannot fail, so an unknown `TESSERA_SIMD` is reported as a warning here (and
/// refused by [`crate::CpuIndex::new`]).
pub(crate) fn arch() -> Arch {
    static ARCH: std::sync::OnceLock<Arch> = std::sync::OnceLock::new();
    *ARCH.get_or_init(|| match SimdLevel::from_env() {
        Ok(SimdLevel::Scalar) => Arch::Scalar,
        Ok(_) => Arch::new(),
        Err(error) => {
            tracing::warn!(%error, "ignoring TESSERA_SIMD");
            Arch::new()
        }
    })
}
