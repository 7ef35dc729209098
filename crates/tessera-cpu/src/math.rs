//! Elementary functions without libm calls, so loops over them vectorise.

/// `ln x` for a positive normal `x`: exponent and mantissa split, the mantissa reduced
/// to [sqrt(1/2), sqrt(2)), then `2 atanh t` to t^9 (relative error of the series
/// below 1e-8; tested against libm below).
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = (bits >> 23) as i32 - 127;
    let m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let (m, e) = if big { (m * 0.5, e + 1) } else { (m, e) };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series =
        t * (2.0 + t2 * (2.0 / 3.0 + t2 * (2.0 / 5.0 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0)))));
    e as f32 * std::f32::consts::LN_2 + series
}

/// `e^x` in f32: `x = n ln 2 + r` with `|r| <= ln 2 / 2` (Cody and Waite's two-part
/// `ln 2`), `e^r` by its Taylor polynomial to `r^7` (truncation below 1e-8
/// relative), scaled by `2^n` through the exponent bits. Arguments are clamped to
/// [-87, 88], so the result is always a normal float (`e^-87` for anything smaller,
/// where libm gives a subnormal or 0) and never infinite (`e^88` for anything larger);
/// a NaN stays a NaN. Within 2 ulp of libm over the clamped range (tested below).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUNDER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUNDER) - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // n is an integer in [-126, 127] here, so `n + 127` is a valid biased exponent.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `e^x` in f64 of every element `x <= 0` (below -708, where `e^x` leaves the normal range,
/// 0): `x = n ln 2 + r` with `|r| <= ln 2 / 2` (ln 2 in two parts, so `r` is exact),
/// `e^r` by its Taylor series to r^13 (below 2e-16 relative), scaled by `2^n` through
/// the exponent bits. A loop the compiler vectorises, unlike calls to libm: `n` is
/// rounded by adding and subtracting 1.5 · 2^52, which leaves it in the low bits of
/// the sum, so no float-to-integer conversion (scalar with Rust's saturating `as`)
/// is needed.
#[inline(always)]
pub(crate) fn exp_in_place(xs: &mut [f64]) {
    exp_in_place_with::<false>(xs)
}

/// `a * b + c`, fused into one rounding when `FUSED` (for code dispatched to a level
/// with FMA; elsewhere `mul_add` would be a slow libm call).
#[inline(always)]
pub(crate) fn mul_add<const FUSED: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// [`exp_in_place`] with its polynomial's multiply-adds fused when `FUSED`: half the
/// operations, and the same bound against libm (tested).
#[inline(always)]
pub(crate) fn exp_in_place_with<const FUSED: bool>(xs: &mut [f64]) {
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const ROUNDER: f64 = 6_755_399_441_055_744.0;
    for x in xs.iter_mut() {
        let v = x.max(-708.0);
        let shifted = v * std::f64::consts::LOG2_E + ROUNDER;
        let n = shifted - ROUNDER;
        let r = (v - n * LN2_HI) - n * LN2_LO;
        let mut p = 1.0 / 6_227_020_800.0;
        for k in [
            479_001_600.0,
            39_916_800.0,
            3_628_800.0,
            362_880.0,
            40_320.0,
            5040.0,
            720.0,
            120.0,
            24.0,
            6.0,
            2.0,
            1.0,
            1.0,
        ] {
            p = mul_add::<FUSED>(p, r, 1.0 / k);
        }
        // n is an integer in [-1022, 0] held in the low bits of `shifted`: adding the
        // bias there and shifting makes the biased exponent of 2^n.
        let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
        *x = if *x < -708.0 { 0.0 } else { p * scale };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_matches_libm_within_two_ulp() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = super::exp(x) as f64;
            assert!(
                (got - want).abs() <= 2.5e-7 * want,
                "exp({x}) = {got} vs {want}"
            );
            x += 0.0137;
        }
        assert_eq!(super::exp(0.0), 1.0);
        assert!(super::exp(f32::NAN).is_nan());
        assert!(super::exp(-1000.0) > 0.0 && super::exp(1000.0).is_finite());
    }

    #[test]
    fn ln_matches_libm_over_the_normal_range() {
        let mut x = f32::MIN_POSITIVE;
        while x < 1e38 {
            for scale in [1.0, 1.1, 1.37, 1.414, 1.4143, 1.9, 1.999_999] {
                let v = x * scale;
                let want = (v as f64).ln();
                let err = (super::ln(v) as f64 - want).abs();
                assert!(
                    err <= 4e-7 * want.abs().max(1.0),
                    "ln({v}) = {} vs {want}",
                    super::ln(v)
                );
            }
            x *= 2.0;
        }
        for d in [1e-7f32, -1e-7, 1e-3, -0.5, 0.9999, -0.9999] {
            let r = (1.0 + d) / (1.0 - d);
            let want = (r as f64).ln();
            assert!((super::ln(r) as f64 - want).abs() <= 1e-6 * want.abs().max(1e-6));
        }
    }

    #[test]
    fn polynomial_exp_agrees_with_libm() {
        let mut xs: Vec<f64> = (0..40_000).map(|i| -(i as f64) * 0.0177).collect();
        xs.extend([
            0.0,
            -1e-300,
            -0.5 * std::f64::consts::LN_2,
            -707.9,
            -708.0,
            -709.0,
        ]);
        xs.extend([-745.0, -1e10, f64::NEG_INFINITY]);
        let want: Vec<f64> = xs.iter().map(|x| x.exp()).collect();
        let mut fused = xs.clone();
        super::exp_in_place(&mut xs);
        super::exp_in_place_with::<true>(&mut fused);
        for (g, w) in xs.iter().chain(&fused).zip(want.iter().chain(&want)) {
            let tolerance = if *w < f64::MIN_POSITIVE * 4.0 {
                f64::MIN_POSITIVE * 4.0
            } else {
                4e-16 * w
            };
            assert!((g - w).abs() <= tolerance, "{g} vs {w}");
        }
    }
}
