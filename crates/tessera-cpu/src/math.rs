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

#[cfg(test)]
mod tests {
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
