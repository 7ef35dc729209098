//! The tile kernels of the search: `R` queries against one panel of [`PANEL`] stored
//! vectors, over the whole dimension, at each SIMD level.
//!
//! A panel holds its vectors transposed, so that one load brings one dimension of 16
//! (AVX-512) or 8 (AVX2) vectors and the query value is broadcast: the accumulators are
//! the scores themselves, with no horizontal sum. f32 panels are `[dim][PANEL]`; bf16
//! panels are `[ceil(dim / 2)][PANEL]` of `u32` words, each holding two consecutive
//! dimensions of one vector (the lower dimension in the low half), which is the pair
//! layout `vdpbf16ps` multiplies.

// The tile loops index accumulators, keys, norms and floors by the same row and lane.
#![allow(clippy::needless_range_loop)]

/// Vectors per panel.
pub(crate) const PANEL: usize = 32;

use crate::dispatch::SimdLevel;

/// Queries per tile at `level`: as many accumulators as the registers hold.
pub(crate) fn tile_rows(level: SimdLevel) -> usize {
    match level {
        SimdLevel::Scalar | SimdLevel::Neon => 4,
        SimdLevel::Avx2 => 3,
        SimdLevel::Avx512 => 8,
    }
}

/// Whether the CPU multiplies bf16 pairs in one instruction.
pub(crate) fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What a tile produces: the keys of `R` queries against one panel (`keys[r][j]` for
/// query `r` and vector `j`) and, per query, the lanes whose key reaches its floor.
pub(crate) struct Tile<const R: usize> {
    pub keys: [[f32; PANEL]; R],
    pub hits: [u32; R],
}

impl<const R: usize> Tile<R> {
    pub(crate) fn new() -> Self {
        Self {
            keys: [[0.0; PANEL]; R],
            hits: [0; R],
        }
    }
}

/// What a tile reads beside the queries and the panel.
#[derive(Clone, Copy)]
pub(crate) struct TileArgs<'a, const R: usize> {
    /// `‖x‖²` of the panel's vectors (read under L2).
    pub norms: &'a [f32; PANEL],
    /// Whether the key is `2 q·x − ‖x‖²` (L2) rather than `q·x`.
    pub l2: bool,
    /// Each query's floor: keys below it are not reported in `hits`.
    pub floors: [f32; R],
}

/// `R` f32 queries, packed `[dim][R]`, against an f32 panel.
///
/// # Safety
/// `q` holds `dim * R` values, `panel` holds `dim * PANEL`; `level` runs on this CPU.
#[inline]
pub(crate) unsafe fn tile_f32<const R: usize>(
    level: SimdLevel,
    q: &[f32],
    dim: usize,
    panel: &[f32],
    args: TileArgs<'_, R>,
    out: &mut Tile<R>,
) {
    debug_assert!(q.len() >= R * dim && panel.len() >= dim * PANEL);
    match level {
        // SAFETY: the caller checked the level and the lengths.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { x86::f32_avx512::<R>(q, dim, panel, args, out) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => unsafe { x86::f32_avx2::<R>(q, dim, panel, args, out) },
        _ => f32_scalar::<R>(q, dim, panel, args, out),
    }
}

/// `R` bf16-pair queries, packed `[pairs][R]`, against a bf16 panel.
///
/// # Safety
/// `q` holds `pairs * R` words, `panel` holds `pairs * PANEL`; `level` runs on this
/// CPU, and `bf16_dot` only where [`has_avx512_bf16`].
#[inline]
pub(crate) unsafe fn tile_bf16<const R: usize>(
    level: SimdLevel,
    bf16_dot: bool,
    q: &[u32],
    pairs: usize,
    panel: &[u32],
    args: TileArgs<'_, R>,
    out: &mut Tile<R>,
) {
    debug_assert!(q.len() >= R * pairs && panel.len() >= pairs * PANEL);
    // Only x86-64 has a bf16 dot-product instruction to choose.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bf16_dot;
    match level {
        // SAFETY: the caller checked the level, the bf16 feature and the lengths.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 if bf16_dot => unsafe {
            x86::bf16_avx512::<R>(q, pairs, panel, args, out)
        },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Avx2 => unsafe {
            x86::bf16_avx2::<R>(q, pairs, panel, args, out)
        },
        _ => bf16_scalar::<R>(q, pairs, panel, args, out),
    }
}

/// Turns dot products into keys and marks those at the floors (the scalar twin of
/// the SIMD epilogues).
#[inline(always)]
fn finish_scalar<const R: usize>(
    acc: &[[f32; PANEL]; R],
    args: TileArgs<'_, R>,
    out: &mut Tile<R>,
) {
    for r in 0..R {
        let mut hits = 0u32;
        for j in 0..PANEL {
            let dot = acc[r][j];
            let key = if args.l2 {
                2.0 * dot - args.norms[j]
            } else {
                dot
            };
            out.keys[r][j] = key;
            hits |= ((key >= args.floors[r]) as u32) << j;
        }
        out.hits[r] = hits;
    }
}

#[inline(always)]
fn f32_scalar<const R: usize>(
    q: &[f32],
    dim: usize,
    panel: &[f32],
    args: TileArgs<'_, R>,
    out: &mut Tile<R>,
) {
    let mut acc = [[0.0f32; PANEL]; R];
    for (row, b) in panel.chunks_exact(PANEL).zip(q.chunks_exact(R)).take(dim) {
        for r in 0..R {
            for (a, &x) in acc[r].iter_mut().zip(row) {
                *a += b[r] * x;
            }
        }
    }
    finish_scalar(&acc, args, out);
}

/// The two bf16 halves of a pair word, as f32.
#[inline(always)]
fn unpack(word: u32) -> (f32, f32) {
    (
        f32::from_bits(word << 16),
        f32::from_bits(word & 0xffff_0000),
    )
}

#[inline(always)]
fn bf16_scalar<const R: usize>(
    q: &[u32],
    pairs: usize,
    panel: &[u32],
    args: TileArgs<'_, R>,
    out: &mut Tile<R>,
) {
    let mut acc = [[0.0f32; PANEL]; R];
    for (row, b) in panel.chunks_exact(PANEL).zip(q.chunks_exact(R)).take(pairs) {
        for r in 0..R {
            let (b0, b1) = unpack(b[r]);
            for (a, &w) in acc[r].iter_mut().zip(row) {
                let (x0, x1) = unpack(w);
                *a += b0 * x0 + b1 * x1;
            }
        }
    }
    finish_scalar(&acc, args, out);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{PANEL, Tile, TileArgs};

    /// Values ahead the memory-bound tiles (one or two queries) prefetch.
    const PREFETCH: usize = 2048;

    /// Keys and floor masks from 16-lane accumulators.
    #[target_feature(enable = "avx512f")]
    fn finish_avx512<const R: usize>(
        acc: &[[__m512; 2]; R],
        args: TileArgs<'_, R>,
        out: &mut Tile<R>,
    ) {
        let two = _mm512_set1_ps(2.0);
        // SAFETY: the norms and each key row hold PANEL = 32 floats.
        unsafe {
            let norms = [0, 16].map(|c| _mm512_loadu_ps(args.norms.as_ptr().add(c)));
            for r in 0..R {
                let floor = _mm512_set1_ps(args.floors[r]);
                let mut hits = 0u32;
                for c in 0..2 {
                    let key = if args.l2 {
                        _mm512_fmsub_ps(two, acc[r][c], norms[c])
                    } else {
                        acc[r][c]
                    };
                    _mm512_storeu_ps(out.keys[r].as_mut_ptr().add(16 * c), key);
                    hits |= (_mm512_cmp_ps_mask::<_CMP_GE_OQ>(key, floor) as u32) << (16 * c);
                }
                out.hits[r] = hits;
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn f32_avx512<const R: usize>(
        q: &[f32],
        dim: usize,
        panel: &[f32],
        args: TileArgs<'_, R>,
        out: &mut Tile<R>,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let (q, p) = (q.as_ptr(), panel.as_ptr());
        for t in 0..dim {
            // SAFETY: t < dim, r < R: inside the lengths the caller checked; a
            // prefetch of an address past the panel is harmless.
            unsafe {
                if R <= 2 {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(t * PANEL + PREFETCH).cast());
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(t * PANEL + PREFETCH + 16).cast());
                }
                let x0 = _mm512_loadu_ps(p.add(t * PANEL));
                let x1 = _mm512_loadu_ps(p.add(t * PANEL + 16));
                for (r, a) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*q.add(t * R + r));
                    a[0] = _mm512_fmadd_ps(b, x0, a[0]);
                    a[1] = _mm512_fmadd_ps(b, x1, a[1]);
                }
            }
        }
        finish_avx512(&acc, args, out);
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn bf16_avx512<const R: usize>(
        q: &[u32],
        pairs: usize,
        panel: &[u32],
        args: TileArgs<'_, R>,
        out: &mut Tile<R>,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let (q, p) = (q.as_ptr(), panel.as_ptr());
        for t in 0..pairs {
            // SAFETY: t < pairs, r < R: inside the lengths the caller checked; the
            // transmutes reinterpret 512 bits as 32 bf16 values.
            unsafe {
                let x0: __m512bh = std::mem::transmute(_mm512_loadu_si512(p.add(t * PANEL).cast()));
                let x1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(p.add(t * PANEL + 16).cast()));
                for (r, a) in acc.iter_mut().enumerate() {
                    let b: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*q.add(t * R + r) as i32));
                    a[0] = _mm512_dpbf16_ps(a[0], x0, b);
                    a[1] = _mm512_dpbf16_ps(a[1], x1, b);
                }
            }
        }
        finish_avx512(&acc, args, out);
    }

    /// Keys and floor masks from 8-lane accumulators.
    #[target_feature(enable = "avx2,fma")]
    fn finish_avx2<const R: usize>(
        acc: &[[__m256; 4]; R],
        args: TileArgs<'_, R>,
        out: &mut Tile<R>,
    ) {
        let two = _mm256_set1_ps(2.0);
        // SAFETY: the norms and each key row hold PANEL = 32 floats.
        unsafe {
            for r in 0..R {
                let floor = _mm256_set1_ps(args.floors[r]);
                let mut hits = 0u32;
                for c in 0..4 {
                    let key = if args.l2 {
                        let norms = _mm256_loadu_ps(args.norms.as_ptr().add(8 * c));
                        _mm256_fmsub_ps(two, acc[r][c], norms)
                    } else {
                        acc[r][c]
                    };
                    _mm256_storeu_ps(out.keys[r].as_mut_ptr().add(8 * c), key);
                    let ge = _mm256_cmp_ps::<_CMP_GE_OQ>(key, floor);
                    hits |= (_mm256_movemask_ps(ge) as u32) << (8 * c);
                }
                out.hits[r] = hits;
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn f32_avx2<const R: usize>(
        q: &[f32],
        dim: usize,
        panel: &[f32],
        args: TileArgs<'_, R>,
        out: &mut Tile<R>,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        let (q, p) = (q.as_ptr(), panel.as_ptr());
        for t in 0..dim {
            // SAFETY: t < dim, r < R: inside the lengths the caller checked.
            unsafe {
                let x = [0, 8, 16, 24].map(|c| _mm256_loadu_ps(p.add(t * PANEL + c)));
                for (r, a) in acc.iter_mut().enumerate() {
                    let b = _mm256_set1_ps(*q.add(t * R + r));
                    for c in 0..4 {
                        a[c] = _mm256_fmadd_ps(b, x[c], a[c]);
                    }
                }
            }
        }
        finish_avx2(&acc, args, out);
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn bf16_avx2<const R: usize>(
        q: &[u32],
        pairs: usize,
        panel: &[u32],
        args: TileArgs<'_, R>,
        out: &mut Tile<R>,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        let (q, p) = (q.as_ptr(), panel.as_ptr());
        let high = _mm256_set1_epi32(0xffff_0000_u32 as i32);
        for t in 0..pairs {
            // SAFETY: t < pairs, r < R: inside the lengths the caller checked.
            unsafe {
                let mut b = [[_mm256_setzero_ps(); 2]; R];
                for (r, br) in b.iter_mut().enumerate() {
                    let w = *q.add(t * R + r);
                    *br = [
                        _mm256_set1_ps(f32::from_bits(w << 16)),
                        _mm256_set1_ps(f32::from_bits(w & 0xffff_0000)),
                    ];
                }
                for c in 0..4 {
                    let w = _mm256_loadu_si256(p.add(t * PANEL + 8 * c).cast());
                    let x0 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w));
                    let x1 = _mm256_castsi256_ps(_mm256_and_si256(w, high));
                    for (a, br) in acc.iter_mut().zip(&b) {
                        a[c] = _mm256_fmadd_ps(br[1], x1, _mm256_fmadd_ps(br[0], x0, a[c]));
                    }
                }
            }
        }
        finish_avx2(&acc, args, out);
    }
}
