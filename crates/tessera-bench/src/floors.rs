//! The physical floors of this machine, measured once per run: read bandwidth over
//! all threads and the peak rate of f32 FMAs (and of bf16 dot products where the CPU
//! has `vdpbf16ps`). A search's floor is the larger of its bytes over the bandwidth
//! and its FLOPs over the peak.

use std::sync::OnceLock;
use std::time::Instant;

use rayon::prelude::*;

/// What this machine can do at most.
#[derive(Debug, Clone, Copy)]
pub struct Floors {
    /// Read bandwidth with every thread streaming, in bytes per second.
    pub read_bytes_per_s: f64,
    /// f32 multiply-adds at the widest SIMD width on every thread, in FLOP/s.
    pub f32_flops: f64,
    /// bf16 pair dot products (`vdpbf16ps`), in FLOP/s, where the CPU has them.
    pub bf16_flops: Option<f64>,
}

impl Floors {
    /// The machine's floors, measured on first use (about a second).
    pub fn get() -> &'static Floors {
        static FLOORS: OnceLock<Floors> = OnceLock::new();
        FLOORS.get_or_init(measure)
    }

    /// Seconds a kernel reading `bytes` and doing `flops` (at the bf16 rate when
    /// `bf16`) needs at least.
    pub fn seconds(&self, bytes: f64, flops: f64, bf16: bool) -> f64 {
        let rate = if bf16 {
            self.bf16_flops.unwrap_or(self.f32_flops)
        } else {
            self.f32_flops
        };
        (bytes / self.read_bytes_per_s).max(flops / rate)
    }
}

fn measure() -> Floors {
    Floors {
        read_bytes_per_s: bandwidth(),
        f32_flops: best_of(3, || all_threads(fma_rate)),
        bf16_flops: has_bf16().then(|| best_of(3, || all_threads(bf16_rate))),
    }
}

fn best_of(n: usize, f: impl Fn() -> f64) -> f64 {
    (0..n).map(|_| f()).fold(0.0, f64::max)
}

/// Sums the rate `f` gives on every rayon thread at once.
fn all_threads(f: fn() -> f64) -> f64 {
    rayon::broadcast(|_| f()).into_iter().sum()
}

fn bandwidth() -> f64 {
    // 512 MiB: far past every cache.
    let data = vec![1.0f32; 128 << 20];
    best_of(3, || {
        let t = Instant::now();
        let sum: f32 = data
            .par_chunks(1 << 16)
            .map(|c| {
                let mut acc = [0.0f32; 16];
                for x in c.chunks_exact(16) {
                    for (a, &v) in acc.iter_mut().zip(x) {
                        *a += v;
                    }
                }
                acc.iter().sum::<f32>()
            })
            .sum();
        std::hint::black_box(sum);
        (data.len() * 4) as f64 / t.elapsed().as_secs_f64()
    })
}

fn has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Iterations of each rate loop: about 0.1 s at a few GHz.
const ITERS: usize = 10_000_000;

/// f32 FLOP/s of one thread: 16 independent FMA chains at the widest width.
fn fma_rate() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            let t = Instant::now();
            // SAFETY: AVX-512 F was detected.
            std::hint::black_box(unsafe { x86::fma512(ITERS) });
            return (ITERS * 16 * 32) as f64 / t.elapsed().as_secs_f64();
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            let t = Instant::now();
            // SAFETY: AVX2 and FMA were detected.
            std::hint::black_box(unsafe { x86::fma256(ITERS) });
            return (ITERS * 16 * 16) as f64 / t.elapsed().as_secs_f64();
        }
    }
    let t = Instant::now();
    let mut acc = [1.0f32; 16];
    for _ in 0..ITERS / 4 {
        for a in acc.iter_mut() {
            *a = *a * 0.999_999 + 1e-7;
        }
    }
    std::hint::black_box(acc);
    (ITERS / 4 * 16 * 2) as f64 / t.elapsed().as_secs_f64()
}

fn bf16_rate() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        let t = Instant::now();
        // SAFETY: called only where `has_bf16` found AVX-512 BF16.
        std::hint::black_box(unsafe { x86::dpbf16(ITERS) });
        (ITERS * 16 * 64) as f64 / t.elapsed().as_secs_f64()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma512(n: usize) -> f32 {
        let mut a = [_mm512_set1_ps(1.0); 16];
        let (b, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..n {
            for x in a.iter_mut() {
                *x = _mm512_fmadd_ps(*x, b, c);
            }
        }
        a.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma256(n: usize) -> f32 {
        let mut a = [_mm256_set1_ps(1.0); 16];
        let (b, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..n {
            for x in a.iter_mut() {
                *x = _mm256_fmadd_ps(*x, b, c);
            }
        }
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe {
            _mm256_storeu_ps(
                out.as_mut_ptr(),
                a.iter()
                    .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x)),
            )
        };
        out.iter().sum()
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn dpbf16(n: usize) -> f32 {
        let mut a = [_mm512_set1_ps(1.0); 16];
        // SAFETY: reinterpreting 512 bits as 32 bf16 values (1.0 and 2^-25).
        let (b, c): (__m512bh, __m512bh) = unsafe {
            (
                std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(0x3f80_3f80u32 as i32)),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(0x3300_3300u32 as i32)),
            )
        };
        for _ in 0..n {
            for x in a.iter_mut() {
                *x = _mm512_dpbf16_ps(*x, b, c);
            }
        }
        a.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }
}
