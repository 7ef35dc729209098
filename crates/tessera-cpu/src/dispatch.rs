//! The SIMD levels the CPU backend runs at, chosen at run time, and running loops under
//! pulp's dispatch so that they actually compile for the chosen instruction set.

use pulp::{Arch, Simd, WithSimd};
use tessera_tensor::error::{Result, TesseraError};

/// A SIMD instruction set the CPU backend can run at, narrowest first. Every family
/// dispatches to the widest one the CPU runs unless `TESSERA_SIMD` caps it
/// ([`SimdLevel::from_env`]) or a constructor pins one (`with_level`), which is how the
/// parity suites test each level the machine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Plain Rust loops (auto-vectorised for the baseline target: SSE2, NEON).
    Scalar,
    /// AArch64 NEON (Apple Silicon), 4 f32 lanes, as pulp dispatches it.
    Neon,
    /// x86-64-v3: AVX2 and FMA, 8 f32 lanes.
    Avx2,
    /// x86-64-v4: AVX-512 F, BW, CD, DQ and VL, 16 f32 lanes; bf16 storage uses
    /// `vdpbf16ps` where AVX-512 BF16 is there too.
    Avx512,
}

impl SimdLevel {
    /// The widest level this CPU runs.
    pub fn detect() -> Self {
        Self::available().pop().unwrap_or(Self::Scalar)
    }

    /// The widest level this CPU runs, capped by `TESSERA_SIMD` when it is set:
    /// `scalar`, `neon`, `v3` (AVX2 and FMA) or `v4` (AVX-512), any case. An unknown
    /// value is an error; a cap above what the CPU has leaves the widest it has below
    /// the cap (`v3` on Apple Silicon leaves NEON).
    pub fn from_env() -> Result<Self> {
        match std::env::var("TESSERA_SIMD") {
            Err(_) => Ok(Self::detect()),
            Ok(value) => Ok(Self::capped(Self::parse_cap(&value)?)),
        }
    }

    /// A `TESSERA_SIMD` value as the level it caps at (`None`: no cap).
    fn parse_cap(value: &str) -> Result<Option<Self>> {
        Ok(Some(match value.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(None),
            "scalar" => Self::Scalar,
            "neon" => Self::Neon,
            "v3" | "avx2" => Self::Avx2,
            "v4" | "avx512" => Self::Avx512,
            _ => {
                return Err(TesseraError::InvalidConfig {
                    field: "TESSERA_SIMD",
                    value: value.to_string(),
                    expected: "`scalar`, `neon`, `v3` or `v4`".into(),
                });
            }
        }))
    }

    /// The widest level this CPU runs at or below `cap` (all of them without one).
    fn capped(cap: Option<Self>) -> Self {
        Self::available()
            .into_iter()
            .rfind(|&l| cap.is_none_or(|cap| l <= cap))
            .unwrap_or(Self::Scalar)
    }

    /// Every level this CPU runs, narrowest first.
    pub fn available() -> Vec<Self> {
        let mut levels = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V3::try_new().is_some() {
                levels.push(Self::Avx2);
            }
            if pulp::x86::V4::try_new().is_some() {
                levels.push(Self::Avx512);
            }
        }
        #[cfg(target_arch = "aarch64")]
        if !matches!(Arch::new(), Arch::Scalar) {
            levels.push(Self::Neon);
        }
        levels
    }

    /// Whether this CPU runs the level.
    pub fn is_available(self) -> bool {
        Self::available().contains(&self)
    }

    /// The level the CPU families dispatch to when not pinned: [`SimdLevel::from_env`],
    /// read once per process (an unknown `TESSERA_SIMD` is ignored with a warning).
    pub fn in_use() -> Self {
        level()
    }

    /// The level, or an error naming the levels this CPU runs when it lacks it.
    pub(crate) fn check_available(self) -> Result<Self> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(TesseraError::InvalidConfig {
                field: "simd level",
                value: format!("{self:?}"),
                expected: format!("one this CPU runs: {:?}", Self::available()),
            })
        }
    }

    /// pulp's dispatch at this level; scalar where the CPU lacks it (callers check
    /// first).
    pub(crate) fn arch(self) -> Arch {
        match self {
            Self::Scalar => Arch::Scalar,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => pulp::x86::V3::try_new().map_or(Arch::Scalar, Arch::V3),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => pulp::x86::V4::try_new().map_or(Arch::Scalar, Arch::V4),
            #[cfg(target_arch = "aarch64")]
            Self::Neon => Arch::new(),
            #[allow(unreachable_patterns)]
            _ => Arch::Scalar,
        }
    }

    /// The level a pulp dispatch runs at (the inverse of [`SimdLevel::arch`]).
    pub(crate) fn of(arch: Arch) -> Self {
        match arch {
            Arch::Scalar => Self::Scalar,
            #[cfg(target_arch = "x86_64")]
            Arch::V3(_) => Self::Avx2,
            #[cfg(target_arch = "x86_64")]
            Arch::V4(_) => Self::Avx512,
            #[allow(unreachable_patterns)]
            _ => Self::Neon,
        }
    }
}

/// Declares `$name`, a pulp operation that calls `$kernel(args)` by name:
/// `direct_kernel!(Name((A, B)) -> R => kernel)`, then `arch.dispatch(Name((a, b)))`.
/// Dispatched, the call is compiled for the dispatched instruction set whatever the
/// kernel's size. [`Kernel`] instead reaches its function through `FnOnce::call_once`,
/// a shim the compiler stops inlining once a large `#[inline(always)]` kernel has been
/// inlined into it, which leaves the kernel compiled for the baseline set (SSE2).
/// Measured: the simulator's sampling loop spent 85% of its time in such a shim, and
/// took 2.4 to 2.6 ms instead of 4.2 to 4.4 ms once called by name.
macro_rules! direct_kernel {
    (
        $(#[$meta:meta])*
        $vis:vis $name:ident $(<$($g:ident),+>)?($args:ty) -> $out:ty => $kernel:path
        $(where $($bounds:tt)+)?
    ) => {
        $(#[$meta])*
        $vis struct $name<A>(pub A);

        impl$(<$($g),+>)? pulp::WithSimd for $name<$args> $(where $($bounds)+)? {
            type Output = $out;

            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _simd: S) -> $out {
                $kernel(self.0)
            }
        }
    };
}
pub(crate) use direct_kernel;

/// `kernel(args)` as a pulp operation, for kernels passed as values (the element-wise
/// maps and optimizer updates of `CpuNn`, the acquisition operations). Run through
/// `Arch::dispatch`, the call is compiled for the dispatched instruction set as long as
/// the compiler inlines `FnOnce::call_once` with the `#[inline(always)]` kernel in it,
/// which it does for small bodies (measured: Adam's update 4x faster than a closure
/// handed to `dispatch`). A kernel with a large body is declared with
/// [`direct_kernel!`] instead.
pub(crate) struct Kernel<F, A>(pub F, pub A);

impl<F: FnOnce(A) -> R, A, R> WithSimd for Kernel<F, A> {
    type Output = R;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> R {
        (self.0)(self.1)
    }
}

/// The level the families start with: the widest this CPU runs (AVX-512, AVX2/FMA,
/// NEON), capped by `TESSERA_SIMD`, read once per process. These constructors cannot
/// fail, so an unknown `TESSERA_SIMD` is reported as a warning here (and refused by
/// [`crate::CpuIndex::new`]).
pub(crate) fn level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        SimdLevel::from_env().unwrap_or_else(|error| {
            tracing::warn!(%error, "ignoring TESSERA_SIMD");
            SimdLevel::detect()
        })
    })
}

/// pulp's dispatch at [`level`].
pub(crate) fn arch() -> Arch {
    level().arch()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_caps_parse_and_bad_values_are_typed_errors() {
        assert_eq!(SimdLevel::parse_cap(" V3 ").unwrap(), Some(SimdLevel::Avx2));
        assert_eq!(
            SimdLevel::parse_cap("avx512").unwrap(),
            Some(SimdLevel::Avx512)
        );
        assert_eq!(SimdLevel::parse_cap("").unwrap(), None);
        for bad in ["v5", "sse2", "v3,v4", "\u{0}", "ä"] {
            match SimdLevel::parse_cap(bad) {
                Err(TesseraError::InvalidConfig { field, value, .. }) => {
                    assert_eq!((field, value.as_str()), ("TESSERA_SIMD", bad));
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_cap_never_exceeds_the_cpu_and_scalar_is_always_there() {
        assert_eq!(SimdLevel::capped(None), SimdLevel::detect());
        assert_eq!(
            SimdLevel::capped(Some(SimdLevel::Scalar)),
            SimdLevel::Scalar
        );
        for cap in [SimdLevel::Neon, SimdLevel::Avx2, SimdLevel::Avx512] {
            let level = SimdLevel::capped(Some(cap));
            assert!(level <= cap && level.is_available(), "{cap:?} -> {level:?}");
        }
    }
}
