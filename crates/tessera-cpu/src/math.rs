//! Elementary functions in f32 without libm calls, so loops over them vectorise.

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
}
