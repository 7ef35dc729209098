//! Matrix transposes in 8x8 blocks of AVX shuffles where the CPU has AVX: the
//! sampler's chunk from planes (`[d][chunk]`, each variable's values contiguous over
//! the rows) to rows, and the shortcut networks' blocks both ways. A pure data
//! movement, so every path gives the same bits.

use std::ops::Range;

/// `rows_out[r * d + v] = planes[v * chunk + r]` for every row `r < rows_out.len() / d`
/// and variable `v < d`.
pub(crate) fn planes_to_rows(planes: &[f32], chunk: usize, d: usize, rows_out: &mut [f32]) {
    let rows = rows_out.len() / d;
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        let (row_blocks, var_blocks) = (rows / 8 * 8, d / 8 * 8);
        for r0 in (0..row_blocks).step_by(8) {
            for v0 in (0..var_blocks).step_by(8) {
                // SAFETY: AVX is available (checked above).
                unsafe { block8(planes, chunk, d, rows_out, v0, r0) };
            }
        }
        copy(planes, chunk, d, rows_out, 0..row_blocks, var_blocks..d);
        copy(planes, chunk, d, rows_out, row_blocks..rows, 0..d);
        return;
    }
    copy(planes, chunk, d, rows_out, 0..rows, 0..d);
}

/// The plain loop over `rows` x `vars`.
fn copy(
    planes: &[f32],
    chunk: usize,
    d: usize,
    rows_out: &mut [f32],
    rows: Range<usize>,
    vars: Range<usize>,
) {
    for r in rows {
        let row = &mut rows_out[r * d..][..d];
        for v in vars.clone() {
            row[v] = planes[v * chunk + r];
        }
    }
}

/// Whether the CPU has AVX (detected once).
#[cfg(target_arch = "x86_64")]
fn has_avx() -> bool {
    static AVX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX.get_or_init(|| is_x86_feature_detected!("avx"))
}

/// Variables `v0..v0 + 8` of rows `r0..r0 + 8`: eight plane loads, the classic
/// unpack / shuffle / permute transpose, eight row stores. The slicing checks every
/// bound before the unaligned loads and stores.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn block8(
    planes: &[f32],
    chunk: usize,
    d: usize,
    rows_out: &mut [f32],
    v0: usize,
    r0: usize,
) {
    use std::arch::x86_64::*;
    let load = |i: usize| {
        let src = &planes[(v0 + i) * chunk + r0..][..8];
        // SAFETY: `src` holds 8 floats; loadu has no alignment requirement.
        unsafe { _mm256_loadu_ps(src.as_ptr()) }
    };
    let a: [__m256; 8] = std::array::from_fn(load);
    let t0 = _mm256_unpacklo_ps(a[0], a[1]);
    let t1 = _mm256_unpackhi_ps(a[0], a[1]);
    let t2 = _mm256_unpacklo_ps(a[2], a[3]);
    let t3 = _mm256_unpackhi_ps(a[2], a[3]);
    let t4 = _mm256_unpacklo_ps(a[4], a[5]);
    let t5 = _mm256_unpackhi_ps(a[4], a[5]);
    let t6 = _mm256_unpacklo_ps(a[6], a[7]);
    let t7 = _mm256_unpackhi_ps(a[6], a[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let rows = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    for (j, row) in rows.into_iter().enumerate() {
        let dst = &mut rows_out[(r0 + j) * d + v0..][..8];
        // SAFETY: `dst` holds 8 floats; storeu has no alignment requirement.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), row) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shape_matches_the_plain_loop() {
        for d in [1, 3, 7, 8, 9, 16, 20, 33] {
            for chunk in [1, 5, 8, 13, 64] {
                for rows in [0, 1, chunk / 2, chunk] {
                    let planes: Vec<f32> = (0..d * chunk).map(|i| i as f32 * 0.5 - 7.0).collect();
                    let mut got = vec![f32::NAN; rows * d];
                    super::planes_to_rows(&planes, chunk, d, &mut got);
                    let mut want = vec![f32::NAN; rows * d];
                    super::copy(&planes, chunk, d, &mut want, 0..rows, 0..d);
                    assert_eq!(
                        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "d = {d}, chunk = {chunk}, rows = {rows}"
                    );
                }
            }
        }
    }
}
