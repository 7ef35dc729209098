//! SGEMM with an AVX-512 register-blocked micro-kernel, for large products on CPUs
//! with AVX-512 F (`matrixmultiply`, used below this size and on other CPUs, stops
//! near 90% of OpenBLAS above 1024³ on Zen 4; see `docs/benchmarks.md`).
//!
//! The layout is BLIS's, transposed to a row-major `C` so that the 16 lanes run along
//! `C`'s rows: a micro-tile is [`MR`] rows by [`NR`] columns (24 accumulators); per
//! step of `k` it loads two vectors of packed `B` and broadcasts [`MR`] values of
//! packed `A`. A's micro-panel (`MR × KC`, 24 KiB) stays in L1 while the micro-kernel
//! walks the packed block of `B` (`KC × NC`, 768 KiB) in L2. The threads split `C`
//! into pieces of whole micro-tiles; each packs its own operands.

use std::arch::x86_64::{
    _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_loadu_ps, _mm512_mask_storeu_ps, _mm512_mul_ps,
    _mm512_set1_ps, _mm512_setzero_ps,
};
use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

/// Rows of `C` per micro-tile: values of `A` broadcast per step.
const MR: usize = 12;
/// Columns of `C` per micro-tile: two 16-lane registers.
const NR: usize = 32;
/// Depth of a packed block: `MR × KC` of `A` fills three quarters of a 32 KiB L1
/// (deeper blocks update `C` less often: 512 measured 2 to 10% faster than 384).
const KC: usize = 512;
/// Columns of `B` packed at once: `KC × NC` floats fill three quarters of a 1 MiB L2.
const NC: usize = 384;
/// Rows of `A` packed at once (a multiple of [`MR`]): 2 MiB at `KC`.
const MC: usize = 1008;
/// Rows of `C` up to which a product with a transposed `B` runs as `Cᵀ = Bᵀ Aᵀ`
/// (measured faster up to 128 rows, slower at 512).
const SWAP_ROWS: usize = 128;
/// Depth from which a product of few rows with a row-major `B` runs as `Cᵀ = Bᵀ Aᵀ`
/// too, when its rows fill whole tiles of 32 as well as tiles of 12: below it,
/// transposing `C` back costs more than packing `B` (128 x 784 x 256 measured 18%
/// slower swapped, 64 x 1536 x 1536 19% faster, 100 x 1000 x 1100 9% slower).
const SWAP_DEPTH: usize = 1024;
/// Floats per cache line: packed buffers start on one.
const LINE: usize = 16;
/// Steps of `k` per block of a transposing pack: one cache line of each column.
const PACK_STEPS: usize = 16;

/// An operand in memory: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(super) struct Operand {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// `C`'s storage shared by the threads, each writing its own piece.
#[derive(Clone, Copy)]
struct Output {
    ptr: *mut f32,
    /// Row stride (`C` is row-major with unit column stride).
    ld: usize,
}

// SAFETY: the operands are read-only for the duration of the call, and the pieces of
// `C` the threads write are disjoint (see `gemm`).
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

thread_local! {
    /// Each thread's packing buffers, kept between calls so large products do not
    /// fault in fresh pages every time.
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `C = alpha A B + beta C` for `A` `m × k`, `B` `k × n`, `C` row-major `m × n`
/// with row stride `ldc` (`beta = 0` overwrites `C`, NaNs included).
///
/// # Safety
/// The CPU runs AVX-512 F; every element the strides reach for `i < m`, `p < k`,
/// `j < n` lies inside its allocation; `C` is valid for writes over `m` rows of
/// `ldc ≥ n` and aliases neither input.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    let transposed_b = b.rs == 1 && b.cs != 1;
    // Swapped, C's rows become tile columns (32 a tile) instead of tile rows (12).
    let tiles_fit = m.div_ceil(NR) * NR <= m.div_ceil(MR) * MR;
    if m <= SWAP_ROWS && (transposed_b || (b.cs == 1 && k >= SWAP_DEPTH && tiles_fit)) {
        // Few rows times a large B (`x Wᵀ` or `x W` of a batch of tokens): packing B
        // would copy (or transpose) all of it for a few rows' use. `Cᵀ = Bᵀ Aᵀ`
        // instead reads `Bᵀ` in place, packs only the small `Aᵀ`, and is transposed
        // back.
        let mut ct = vec![0.0f32; n * m];
        let bt = Operand {
            ptr: b.ptr,
            rs: b.cs,
            cs: b.rs,
        };
        let at = Operand {
            ptr: a.ptr,
            rs: a.cs,
            cs: a.rs,
        };
        // SAFETY: the transposed operands reach the same elements; `ct` is `n × m`.
        unsafe { blocked((n, k, m), alpha, bt, at, 0.0, ct.as_mut_ptr(), m, true) };
        if beta == 0.0 && ldc == n {
            // SAFETY: C is dense `m × n` here.
            let c = unsafe { std::slice::from_raw_parts_mut(c, m * n) };
            crate::transpose::planes_to_rows(&ct, m, n, c);
            return;
        }
        let mut rows = vec![0.0f32; m * n];
        crate::transpose::planes_to_rows(&ct, m, n, &mut rows);
        for (i, src) in rows.chunks_exact(n).enumerate() {
            // SAFETY: row `i` of C holds `n ≤ ldc` floats.
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), n) };
            if beta == 0.0 {
                row.copy_from_slice(src);
            } else {
                row.iter_mut()
                    .zip(src)
                    .for_each(|(d, &v)| *d = v + beta * *d);
            }
        }
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { blocked((m, k, n), alpha, a, b, beta, c, ldc, false) }
}

/// [`gemm`] by the blocked loops, `A` read in place (`direct_a`: unit stride along
/// its rows or its columns) or packed.
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn blocked(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    direct_a: bool,
) {
    let out = Output { ptr: c, ld: ldc };
    let pieces = split(m, n, rayon::current_num_threads());
    let _span = tracing::trace_span!("sgemm_avx512", m, k, n, pieces = pieces.len()).entered();
    let run = |(rows, cols): &(Range<usize>, Range<usize>)| {
        PACKED.with(|cell| {
            // A thread that re-enters (work stolen while it waits) packs into fresh
            // buffers rather than sharing its own.
            let mut spare = (Vec::new(), Vec::new());
            let mut held = cell.try_borrow_mut();
            let (pa, pb) = match held.as_deref_mut() {
                Ok(buffers) => buffers,
                Err(_) => &mut spare,
            };
            // SAFETY: the caller's contract covers every piece, and `split` hands each
            // piece a disjoint block of `C`.
            unsafe {
                piece(
                    rows.clone(),
                    cols.clone(),
                    k,
                    alpha,
                    a,
                    b,
                    beta,
                    out,
                    direct_a,
                    pa,
                    pb,
                )
            };
        });
    };
    if pieces.len() == 1 {
        run(&pieces[0]);
    } else {
        pieces.par_iter().for_each(run);
    }
}

/// `C` cut into up to `threads` blocks of whole micro-tiles along its longer side,
/// none thinner than four micro-tiles, so the packing stays a small share of each.
fn split(m: usize, n: usize, threads: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let cut = |len: usize, tile: usize| {
        let most = len.div_ceil(4 * tile).max(1);
        let parts = threads.clamp(1, most);
        let step = len.div_ceil(parts).div_ceil(tile) * tile;
        (0..len)
            .step_by(step)
            .map(|s| s..(s + step).min(len))
            .collect::<Vec<_>>()
    };
    if n >= m {
        cut(n, NR).into_iter().map(|cols| (0..m, cols)).collect()
    } else {
        cut(m, MR).into_iter().map(|rows| (rows, 0..n)).collect()
    }
}

/// A buffer of `len` floats starting on a cache line, inside `store`.
fn aligned(store: &mut Vec<f32>, len: usize) -> &mut [f32] {
    store.resize(len + LINE, 0.0);
    let offset = store
        .as_ptr()
        .align_offset(LINE * size_of::<f32>())
        .min(LINE);
    &mut store[offset..offset + len]
}

/// One thread's block of `C`: rows `rows`, columns `cols`, blocked for the caches.
///
/// # Safety
/// As [`gemm`], for this block.
#[allow(clippy::too_many_arguments)]
unsafe fn piece(
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    c: Output,
    direct_a: bool,
    pa: &mut Vec<f32>,
    pb: &mut Vec<f32>,
) {
    debug_assert!(
        !direct_a || a.cs == 1 || a.rs == 1,
        "A read in place has unit stride one way"
    );
    // Buffers no larger than this product needs: each thread keeps its own.
    let depth = KC.min(k);
    let packed_a = aligned(pa, rows.len().min(MC).div_ceil(MR) * MR * depth);
    let packed_b = aligned(pb, cols.len().min(NC).div_ceil(NR) * NR * depth);
    for i0 in rows.clone().step_by(MC) {
        let mc = MC.min(rows.end - i0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let panels = mc.div_ceil(MR);
            // Read in place, only a last partial panel is packed (its missing rows
            // must read as zeros).
            let packed_rows = if direct_a {
                (i0 + mc / MR * MR)..(i0 + mc)
            } else {
                i0..i0 + mc
            };
            // SAFETY: these rows and columns `p0..p0 + kc` of A are in range.
            unsafe { pack_a(packed_a, a, packed_rows, p0..p0 + kc) };
            // The first block of `k` applies beta; the others add to it.
            let beta = (p0 == 0).then_some(beta);
            for j0 in cols.clone().step_by(NC) {
                let nc = NC.min(cols.end - j0);
                // SAFETY: rows `p0..p0 + kc` and columns `j0..j0 + nc` of B are in range.
                unsafe { pack_b(packed_b, b, p0..p0 + kc, j0..j0 + nc) };
                for q in 0..panels {
                    let i = i0 + q * MR;
                    let tile_rows = MR.min(i0 + mc - i);
                    let in_place = direct_a && tile_rows == MR;
                    let panel_a = if in_place {
                        // SAFETY: row `i`, column `p0` of A is in range.
                        unsafe { a.ptr.add(i * a.rs + p0 * a.cs) }
                    } else if direct_a {
                        packed_a.as_ptr()
                    } else {
                        packed_a[q * MR * kc..].as_ptr()
                    };
                    for (s, panel_b) in packed_b
                        .chunks_exact(NR * kc)
                        .take(nc.div_ceil(NR))
                        .enumerate()
                    {
                        let j = j0 + s * NR;
                        let tile_cols = NR.min(j0 + nc - j);
                        let dst = c.ptr.wrapping_add(i * c.ld + j);
                        let b_panel = panel_b.as_ptr();
                        let (kernel, strides): (TileFn, _) = if in_place {
                            (tile::<true>, (a.rs, a.cs))
                        } else {
                            (tile::<false>, (1, MR))
                        };
                        // SAFETY: the tile `i.., j..` of `tile_rows × tile_cols` lies
                        // in this block of C; the panels hold `kc` steps.
                        unsafe {
                            kernel(
                                kc, panel_a, strides, b_panel, dst, c.ld, tile_rows, tile_cols,
                                alpha, beta,
                            )
                        };
                    }
                }
            }
        }
    }
}

/// Packs rows `rows` by columns `ks` of `A` as micro-panels of [`MR`] rows, each
/// step of `k` holding [`MR`] consecutive values (rows past the end are zeros).
///
/// # Safety
/// Every element of the block is in range.
unsafe fn pack_a(dst: &mut [f32], a: Operand, rows: Range<usize>, ks: Range<usize>) {
    let kc = ks.len();
    let panels = rows.len().div_ceil(MR);
    for (q, panel) in dst.chunks_exact_mut(MR * kc).take(panels).enumerate() {
        let r0 = rows.start + q * MR;
        let valid = MR.min(rows.end - r0);
        if a.cs == 1 {
            // Row-major A: read each row along k, write with a stride of MR.
            for r in 0..valid {
                // SAFETY: row `r0 + r`, columns `ks`, are in range.
                let src = unsafe {
                    std::slice::from_raw_parts(a.ptr.add((r0 + r) * a.rs + ks.start), kc)
                };
                for (p, &v) in src.iter().enumerate() {
                    panel[p * MR + r] = v;
                }
            }
        } else {
            for (p, step) in panel.chunks_exact_mut(MR).enumerate() {
                for (r, slot) in step[..valid].iter_mut().enumerate() {
                    // SAFETY: element `(r0 + r, ks.start + p)` is in range.
                    *slot = unsafe { *a.ptr.add((r0 + r) * a.rs + (ks.start + p) * a.cs) };
                }
            }
        }
        if valid < MR {
            for step in panel.chunks_exact_mut(MR) {
                step[valid..].fill(0.0);
            }
        }
    }
}

/// Packs rows `ks` by columns `cols` of `B` as micro-panels of [`NR`] columns, each
/// step of `k` holding [`NR`] consecutive values (columns past the end are zeros).
///
/// # Safety
/// Every element of the block is in range.
unsafe fn pack_b(dst: &mut [f32], b: Operand, ks: Range<usize>, cols: Range<usize>) {
    let kc = ks.len();
    let panels = cols.len().div_ceil(NR);
    for (s, panel) in dst.chunks_exact_mut(NR * kc).take(panels).enumerate() {
        let c0 = cols.start + s * NR;
        let valid = NR.min(cols.end - c0);
        if b.cs == 1 {
            for (p, step) in panel.chunks_exact_mut(NR).enumerate() {
                // SAFETY: row `ks.start + p`, columns `c0..c0 + valid`, are in range.
                let src = unsafe {
                    std::slice::from_raw_parts(b.ptr.add((ks.start + p) * b.rs + c0), valid)
                };
                step[..valid].copy_from_slice(src);
                step[valid..].fill(0.0);
            }
        } else {
            // Column-major B (a transposed operand): a transpose in blocks of
            // `PACK_STEPS` steps, so the writes stay within a few KiB of L1 while each
            // column is read along k a cache line at a time.
            for p0 in (0..kc).step_by(PACK_STEPS) {
                let steps = PACK_STEPS.min(kc - p0);
                for col in 0..valid {
                    for t in 0..steps {
                        // SAFETY: element `(ks.start + p0 + t, c0 + col)` is in range.
                        panel[(p0 + t) * NR + col] =
                            unsafe { *b.ptr.add((ks.start + p0 + t) * b.rs + (c0 + col) * b.cs) };
                    }
                }
            }
            if valid < NR {
                for step in panel.chunks_exact_mut(NR) {
                    step[valid..].fill(0.0);
                }
            }
        }
    }
}

/// [`tile`] read in place or packed.
type TileFn = unsafe fn(
    usize,
    *const f32,
    (usize, usize),
    *const f32,
    *mut f32,
    usize,
    usize,
    usize,
    f32,
    Option<f32>,
);

/// One micro-tile: `C[..rows, ..cols] = alpha Â B̂ + beta C` over `kc` steps, or
/// `+= alpha Â B̂` when `beta` is `None` (a later block of `k`). `Â` is a packed
/// micro-panel, or with `DIRECT` [`MR`] rows of a row-major `A` read in place at row
/// stride `lda`.
///
/// # Safety
/// AVX-512 F; `a` holds `kc · MR` floats (or [`MR`] rows of `kc` at stride `lda`),
/// `b` `kc · NR`; `c` is valid for `rows` rows of `cols ≤ NR` floats at stride `ldc`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const DIRECT: bool>(
    kc: usize,
    a: *const f32,
    (row_stride, step_stride): (usize, usize),
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    alpha: f32,
    beta: Option<f32>,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: step `p < kc` of both panels is in range.
        let (b0, b1, a_step) = unsafe {
            let bp = b.add(p * NR);
            (
                _mm512_loadu_ps(bp),
                _mm512_loadu_ps(bp.add(16)),
                a.add(if DIRECT { p * step_stride } else { p * MR }),
            )
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: `r < MR` rows per step, at stride `lda` in place or 1 packed.
            let x = _mm512_set1_ps(unsafe { *a_step.add(if DIRECT { r * row_stride } else { r }) });
            row[0] = _mm512_fmadd_ps(x, b0, row[0]);
            row[1] = _mm512_fmadd_ps(x, b1, row[1]);
        }
    }
    let lanes = |n: usize| if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
    let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
    let alpha = _mm512_set1_ps(alpha);
    for (r, row) in acc.iter().enumerate().take(rows) {
        for (half, &sum) in row.iter().enumerate() {
            // SAFETY: the masked lanes are the tile's columns of row `r < rows`.
            unsafe {
                let dst = c.add(r * ldc + 16 * half);
                let mask = masks[half];
                let scaled = _mm512_mul_ps(alpha, sum);
                let value = match beta {
                    Some(0.0) => scaled,
                    Some(beta) => _mm512_fmadd_ps(
                        _mm512_set1_ps(beta),
                        _mm512_mask_loadu_ps(_mm512_setzero_ps(), mask, dst),
                        scaled,
                    ),
                    None => _mm512_fmadd_ps(
                        alpha,
                        sum,
                        _mm512_mask_loadu_ps(_mm512_setzero_ps(), mask, dst),
                    ),
                };
                _mm512_mask_storeu_ps(dst, mask, value);
            }
        }
    }
}

/// Whether a product this shape goes to this kernel. Measured against
/// `matrixmultiply` on Zen 4 (`docs/benchmarks.md`): from about 2^22 multiply-adds it
/// is 1.0 to 2.2x as fast when `C` has at least 128 columns, and up to 10% slower when
/// `C` is narrower than its micro-tiles use well (64 columns or fewer).
pub(super) fn worth_it((m, k, n): (usize, usize, usize)) -> bool {
    n >= 128 && m >= 32 && k >= 32 && m.saturating_mul(k).saturating_mul(n) >= 1 << 22
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `C = alpha A B + beta C` in f64 over the same strides.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        (m, k, n): (usize, usize, usize),
        alpha: f32,
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        (rsb, csb): (usize, usize),
        beta: f32,
        c: &[f32],
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k)
                    .map(|p| a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64)
                    .sum();
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c[i * n + j] as f64
                };
                out[i * n + j] = alpha as f64 * sum + old;
            }
        }
        out
    }

    /// Every shape through the kernel directly (below the size it is chosen at): tails
    /// of rows and columns, depths across a block, both layouts of each operand.
    fn check(m: usize, k: usize, n: usize, seed: u64) {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipping: no AVX-512 F");
            return;
        }
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
        let c0: Vec<f32> = (0..m * n).map(|_| next()).collect();
        for (a_strides, b_strides) in [((k, 1), (n, 1)), ((1, m), (1, k)), ((k, 1), (1, k))] {
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 0.75), (2.0, 1.0)] {
                let mut c = c0.clone();
                if beta == 0.0 {
                    c.fill(f32::NAN);
                }
                let want = reference((m, k, n), alpha, &a, a_strides, &b, b_strides, beta, &c0);
                let op = |s: &[f32], (rs, cs)| Operand {
                    ptr: s.as_ptr(),
                    rs,
                    cs,
                };
                // SAFETY: AVX-512 F checked above; the strides cover the vectors exactly.
                unsafe {
                    gemm(
                        (m, k, n),
                        alpha,
                        op(&a, a_strides),
                        op(&b, b_strides),
                        beta,
                        c.as_mut_ptr(),
                        n,
                    )
                };
                for (idx, (&got, &want)) in c.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (k as f64 + 1.0) * (1.0 + want.abs());
                    assert!(
                        (got as f64 - want).abs() <= tol,
                        "{m}x{k}x{n} {a_strides:?} {b_strides:?} alpha {alpha} beta {beta}: C[{idx}] = {got}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn edge_shapes_match_f64() {
        let sizes = [1, 2, 11, 12, 13, 16, 31, 32, 33, 47];
        for (t, &m) in sizes.iter().enumerate() {
            for &n in &sizes {
                check(m, 1 + (m * 7 + n) % 40, n, (t * 31 + n) as u64);
            }
        }
    }

    #[test]
    fn blocks_of_every_loop_match_f64() {
        // Past KC in depth, NC in columns and MC in rows (split over the threads).
        check(50, KC + 1, 2 * NC + 3, 1);
        check(MC + 13, 2 * KC + 5, 40, 2);
        // One thread: a piece that spans two blocks of rows, packed and (through
        // `Cᵀ = Bᵀ Aᵀ`, a few rows times a transposed B) read in place.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| check(MC + 13, 20, 45, 3));
        pool.install(|| check(40, 100, MC + 29, 4));
        // A few rows times a deep row-major B, swapped too.
        check(64, SWAP_DEPTH + 76, 70, 5);
    }

    #[test]
    fn split_covers_c_with_whole_tiles() {
        for (m, n, threads) in [
            (1, 1, 2),
            (100, 1000, 2),
            (1000, 100, 3),
            (5000, 64, 8),
            (64, 5000, 16),
        ] {
            let pieces = split(m, n, threads);
            assert!(pieces.len() <= threads.max(1));
            let covered: usize = pieces.iter().map(|(r, c)| r.len() * c.len()).sum();
            assert_eq!(covered, m * n);
            for (r, c) in &pieces[..pieces.len() - 1] {
                assert!(r.len() % MR == 0 || c.len() % NR == 0);
            }
        }
    }
}
