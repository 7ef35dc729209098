//! Dense linear algebra shared by the families.

/// `C = A B` with explicit strides (`matrixmultiply`'s packed, threaded SGEMM).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
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
    // SAFETY: the assertions above keep every index the strides reach inside `a`,
    // `b` and `c` (C is dense `[m, n]`), and `c` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
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
