//! Batch-1 GEMM (`m == 1`): `c = alpha a op(B) + beta c` for one row `a`, written on
//! pulp's portable SIMD types so it compiles to fused multiply-adds at every level
//! (AVX2/FMA, AVX-512, NEON).
//!
//! A packed GEMM would repack all of B for one row; these kernels stream B once, which
//! is the whole cost: at batch 1 the time is B's bytes over the cache bandwidth. Large
//! B is therefore split over two cores (`split_rows`), each streaming its half.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pulp::{Arch, Simd, WithSimd};
use tessera_tensor::nn::Gemm;

/// Runs the batch-1 product under `arch`'s best SIMD level. Lengths were checked.
pub(super) fn gemv(arch: Arch, g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    if g.beta == 0.0 {
        c.fill(0.0);
    } else if g.beta != 1.0 {
        c.iter_mut().for_each(|v| *v *= g.beta);
    }
    if g.k == 0 {
        return;
    }
    if g.trans_b {
        arch.dispatch(RowDots { g, a, b, c });
    } else if g.k >= 2 && g.k * g.n * 4 >= SPLIT_MIN_BYTES && rayon::current_num_threads() > 1 {
        split_rows(arch, g, a, b, c);
    } else {
        arch.dispatch(RowAxpys { g, a, b, c });
    }
}

/// B at least this large is streamed by two cores: each reads its half from its own
/// cache, which is worth the hand-over (about a microsecond) from here on.
const SPLIT_MIN_BYTES: usize = 256 << 10;

/// `c += alpha a B` with B's rows in two halves: this thread does the first into `c`,
/// the second is offered to another rayon worker and added after it. Whoever claims
/// the second half first runs it, so nothing waits on a busy or sleeping pool, and the
/// result is the same bits either way.
fn split_rows(arch: Arch, g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let half = g.k / 2;
    let (a_near, a_far) = a.split_at(half);
    let (b_near, b_far) = b.split_at(half * g.n);
    let mut far = vec![0.0f32; g.n];
    let far_g = Gemm {
        k: g.k - half,
        alpha: 1.0,
        beta: 0.0,
        ..g
    };
    let offer = Offer::post(arch, far_g, a_far, b_far, &mut far);
    let near_g = Gemm { k: half, ..g };
    arch.dispatch(RowAxpys {
        g: near_g,
        a: a_near,
        b: b_near,
        c: &mut *c,
    });
    offer.finish();
    for (cj, f) in c.iter_mut().zip(&far) {
        *cj += g.alpha * f;
    }
}

/// The offered half: raw parts of its slices, so the job can be `'static`.
#[derive(Clone, Copy)]
pub(super) enum FarHalf {
    /// `c = a B` over f32 rows of B ([`RowAxpys`]).
    F32 {
        arch: Arch,
        g: Gemm,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
    },
    /// `z = x W` over bf16 pair rows of W (`super::bf16`): `x` has `2 rows` values,
    /// `pairs` `rows * n` words, `z` `n`.
    Bf16 {
        arch: Arch,
        rows: usize,
        n: usize,
        x: *const f32,
        pairs: *const u32,
        z: *mut f32,
    },
}

// SAFETY: the pointers are only dereferenced by the one party that claims the job,
// while the `Offer` that borrows the slices is still alive (see `Offer`).
unsafe impl Send for FarHalf {}

impl FarHalf {
    /// # Safety
    /// The slices it was made from must be alive and not otherwise accessed.
    unsafe fn run(&self) {
        match *self {
            FarHalf::F32 { arch, g, a, b, c } => {
                // SAFETY: per the contract above, with the lengths `Offer::post` took.
                let (a, b, c) = unsafe {
                    (
                        std::slice::from_raw_parts(a, g.k),
                        std::slice::from_raw_parts(b, g.k * g.n),
                        std::slice::from_raw_parts_mut(c, g.n),
                    )
                };
                arch.dispatch(RowAxpys { g, a, b, c });
            }
            FarHalf::Bf16 {
                arch,
                rows,
                n,
                x,
                pairs,
                z,
            } => {
                // SAFETY: per the contract above, with the lengths the poster gave.
                let (x, pairs, z) = unsafe {
                    (
                        std::slice::from_raw_parts(x, 2 * rows),
                        std::slice::from_raw_parts(pairs, rows * n),
                        std::slice::from_raw_parts_mut(z, n),
                    )
                };
                super::bf16::paired_gemv(arch, x, pairs, z);
            }
        }
    }
}

#[derive(Default)]
struct OfferState {
    claimed: AtomicBool,
    done: AtomicBool,
}

/// A [`FarHalf`] posted to the rayon pool. It borrows the slices for `'a`, and neither
/// [`Offer::finish`] nor its drop returns before the job is either claimed here (so the
/// pool's copy will never touch them) or finished by the pool.
pub(super) struct Offer<'a> {
    half: FarHalf,
    state: Arc<OfferState>,
    _borrows: PhantomData<&'a mut [f32]>,
}

impl<'a> Offer<'a> {
    fn post(arch: Arch, g: Gemm, a: &'a [f32], b: &'a [f32], c: &'a mut [f32]) -> Self {
        // SAFETY: the pointers come from slices borrowed for 'a with the lengths the
        // job reads.
        unsafe {
            Self::post_half(FarHalf::F32 {
                arch,
                g,
                a: a.as_ptr(),
                b: b.as_ptr(),
                c: c.as_mut_ptr(),
            })
        }
    }

    /// Offers `z = x W` over bf16 pair rows: `x` holds `2 rows` values, `pairs`
    /// `rows * z.len()` words.
    pub(super) fn post_bf16(arch: Arch, x: &'a [f32], pairs: &'a [u32], z: &'a mut [f32]) -> Self {
        let n = z.len();
        let rows = x.len() / 2;
        assert!(pairs.len() >= rows * n, "bf16 offer: pairs out of range");
        // SAFETY: as in `post`; the assertion keeps the job's reads in `pairs`.
        unsafe {
            Self::post_half(FarHalf::Bf16 {
                arch,
                rows,
                n,
                x: x.as_ptr(),
                pairs: pairs.as_ptr(),
                z: z.as_mut_ptr(),
            })
        }
    }

    /// # Safety
    /// `half`'s pointers must come from slices borrowed for `'a`.
    unsafe fn post_half(half: FarHalf) -> Self {
        let state = Arc::new(OfferState::default());
        let job_state = state.clone();
        rayon::spawn(move || {
            if !job_state.claimed.swap(true, Ordering::AcqRel) {
                // SAFETY: claimed first, so the `Offer` is still waiting for `done`.
                unsafe { half.run() };
                job_state.done.store(true, Ordering::Release);
            }
        });
        Self {
            half,
            state,
            _borrows: PhantomData,
        }
    }

    /// Runs the half here if no worker has taken it, else waits for the worker.
    pub(super) fn finish(self) {
        if !self.state.claimed.swap(true, Ordering::AcqRel) {
            // SAFETY: claimed here, so the pool's copy will not run; the slices are
            // borrowed for as long as `self` lives.
            unsafe { self.half.run() };
            self.state.done.store(true, Ordering::Release);
        }
        // Drop waits for `done`.
    }
}

impl Drop for Offer<'_> {
    fn drop(&mut self) {
        // On unwinding before `finish`: take the job back without running it.
        if !self.state.claimed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut spins = 0u32;
        while !self.state.done.load(Ordering::Acquire) {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// B stored `[k, n]`: `c += alpha sum_i a[i] B[i, :]`. Panels of up to 16 vectors of
/// columns stay in registers while every row of B streams past them, so each weight
/// costs one load and one FMA. 16 AVX2 vectors are all 128 columns of a 784-128 layer:
/// B is read in one contiguous pass.
struct RowAxpys<'a> {
    g: Gemm,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

impl WithSimd for RowAxpys<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { g, a, b, c } = self;
        let mut j = 0;
        j = axpy_panels::<S, 16>(simd, g, a, b, c, j);
        j = axpy_panels::<S, 8>(simd, g, a, b, c, j);
        j = axpy_panels::<S, 4>(simd, g, a, b, c, j);
        j = axpy_panels::<S, 2>(simd, g, a, b, c, j);
        j = axpy_panels::<S, 1>(simd, g, a, b, c, j);
        let lanes = S::F32_LANES;
        if j < g.n && g.n >= lanes {
            // The last columns: one full vector ending at n (full loads in the loop),
            // of which only the lanes from column j are added to c.
            let start = g.n - lanes;
            let mut acc = simd.splat_f32s(0.0);
            for (&x, row) in a.iter().zip(b.chunks_exact(g.n)) {
                let (w, _) = S::as_simd_f32s(&row[start..]);
                acc = simd.mul_add_e_f32s(simd.splat_f32s(x), w[0], acc);
            }
            let mut lanes_out = [0.0f32; 64];
            simd.partial_store_f32s(&mut lanes_out[..lanes], acc);
            for (cj, v) in c[j..].iter_mut().zip(&lanes_out[j - start..lanes]) {
                *cj += g.alpha * v;
            }
        } else if j < g.n {
            // Fewer columns than one vector: masked loads and one masked store.
            let mut acc = simd.splat_f32s(0.0);
            for (&x, row) in a.iter().zip(b.chunks_exact(g.n)) {
                let w = simd.partial_load_f32s(&row[j..]);
                acc = simd.mul_add_e_f32s(simd.splat_f32s(x), w, acc);
            }
            let tail = &mut c[j..];
            let old = simd.partial_load_f32s(tail);
            let alpha = simd.splat_f32s(g.alpha);
            simd.partial_store_f32s(tail, simd.mul_add_e_f32s(alpha, acc, old));
        }
    }
}

/// Every whole panel of `P` vectors of columns from column `j0`; returns the first
/// column not done.
#[inline(always)]
fn axpy_panels<S: Simd, const P: usize>(
    simd: S,
    g: Gemm,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    j0: usize,
) -> usize {
    let width = P * S::F32_LANES;
    let mut j = j0;
    while j + width <= g.n {
        let mut acc = [simd.splat_f32s(0.0); P];
        for (&x, row) in a.iter().zip(b.chunks_exact(g.n)) {
            let x = simd.splat_f32s(x);
            let (vecs, _) = S::as_simd_f32s(&row[j..j + width]);
            for (acc, &w) in acc.iter_mut().zip(vecs) {
                *acc = simd.mul_add_e_f32s(x, w, *acc);
            }
        }
        let alpha = simd.splat_f32s(g.alpha);
        let (out, _) = S::as_mut_simd_f32s(&mut c[j..j + width]);
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = simd.mul_add_e_f32s(alpha, acc, *o);
        }
        j += width;
    }
    j
}

/// B stored `[n, k]`: `c[j] += alpha dot(a, B[j, :])`, four vector accumulators per
/// dot product to cover the FMA latency.
struct RowDots<'a> {
    g: Gemm,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

impl WithSimd for RowDots<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { g, a, b, c } = self;
        let (a_vecs, a_tail) = S::as_simd_f32s(a);
        for (cj, row) in c.iter_mut().zip(b.chunks_exact(g.k)) {
            let (b_vecs, b_tail) = S::as_simd_f32s(row);
            let mut acc = [simd.splat_f32s(0.0); 4];
            let (a4, a_rest) = a_vecs.split_at(a_vecs.len() / 4 * 4);
            let (b4, b_rest) = b_vecs.split_at(a4.len());
            for (x, w) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
                for i in 0..4 {
                    acc[i] = simd.mul_add_e_f32s(x[i], w[i], acc[i]);
                }
            }
            for (&x, &w) in a_rest.iter().zip(b_rest) {
                acc[0] = simd.mul_add_e_f32s(x, w, acc[0]);
            }
            if !a_tail.is_empty() {
                let (x, w) = (
                    simd.partial_load_f32s(a_tail),
                    simd.partial_load_f32s(b_tail),
                );
                acc[1] = simd.mul_add_e_f32s(x, w, acc[1]);
            }
            let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
            *cj += g.alpha * simd.reduce_sum_f32s(sum);
        }
    }
}
