//! Dense linear algebra shared by the families.

#[cfg(target_arch = "x86_64")]
mod avx512;

use pulp::Arch;

/// `C = alpha A B + beta C` with explicit strides for `A` (`m × k`) and `B` (`k × n`),
/// `C` dense row-major `m × n`. Large products at `arch`'s AVX-512 level run tessera's
/// own AVX-512 kernel ([`avx512`]); the rest run `matrixmultiply`'s packed, threaded
/// SGEMM (with its own AVX-512, AVX2 and NEON kernels chosen at run time). With
/// `beta = 0`, `C` is overwritten (NaNs included).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    arch: Arch,
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(
        m * k == 0 || last(m, k, rsa, csa) < a.len(),
        "sgemm A out of range"
    );
    assert!(
        k * n == 0 || last(k, n, rsb, csb) < b.len(),
        "sgemm B out of range"
    );
    assert!(m * n <= c.len(), "sgemm C out of range");
    if m * n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Arch::V4(_) = arch
        && avx512::worth_it((m, k, n))
    {
        let operand = |s: &[f32], (rs, cs): (usize, usize)| avx512::Operand {
            ptr: s.as_ptr(),
            rs,
            cs,
        };
        // SAFETY: `Arch::V4` exists only where the CPU runs AVX-512 F; the assertions
        // above keep every index the strides reach inside `a`, `b` and `c` (dense
        // `[m, n]`), which is borrowed mutably and so aliases neither input.
        unsafe {
            avx512::gemm(
                (m, k, n),
                alpha,
                operand(a, (rsa, csa)),
                operand(b, (rsb, csb)),
                beta,
                c.as_mut_ptr(),
                n,
            )
        };
        return;
    }
    // SAFETY: the assertions above keep every index the strides reach inside `a`,
    // `b` and `c` (C is dense `[m, n]`), and `c` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `C = A B` with explicit strides (see [`gemm`]).
pub(crate) fn sgemm(
    arch: Arch,
    dims: (usize, usize, usize),
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
) {
    gemm(arch, dims, 1.0, a, a_strides, b, b_strides, 0.0, c);
}

/// Rows summed in f32 before a partial sum joins the f64 total.
const BLOCK: usize = 256;
/// Lanes of the f32 partial sums (one AVX2 register).
const LANES: usize = 8;

/// `Σ_p x[p] y[p]` in f32 lanes, blocks of [`BLOCK`] rows added up in f64.
#[inline(always)]
pub(crate) fn dot((x, y): (&[f32], &[f32])) -> f64 {
    let mut total = 0.0f64;
    for (x, y) in x.chunks(BLOCK).zip(y.chunks(BLOCK)) {
        let mut acc = [0.0f32; LANES];
        for (x, y) in x.chunks_exact(LANES).zip(y.chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        let tail = x.len() - x.len() % LANES;
        for p in tail..x.len() {
            acc[0] += x[p] * y[p];
        }
        total += acc.iter().map(|&a| a as f64).sum::<f64>();
    }
    total
}
