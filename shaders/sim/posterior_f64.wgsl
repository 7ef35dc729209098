// The f64 prelude of `posterior.wgsl`: devices with SHADER_F64 (Vulkan and DX12 GPUs,
// not Metal). SPIR-V's GLSL.std.450 has no f64 logarithm, so `ln_real` is written out.
alias real = f64;

// f64's unit roundoff, doubled.
const REAL_EPS: real = 2.3e-16;

// ln x for x > 0 within f32's range: the exponent from an f32 log2 (exact powers of
// two scale x to [sqrt(1/2), sqrt(2))), then 2 atanh t to t^19 (below 1e-16 relative).
fn ln_real(x: real) -> real {
    var e = floor(log2(f32(min(x, 1e38))));
    var m = x * f64(exp2(-e));
    if (m > 1.4142135623730951) {
        m = m * 0.5;
        e = e + 1.0;
    } else if (m < 0.7071067811865476) {
        m = m * 2.0;
        e = e - 1.0;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    var series: real = 1.0 / 19.0;
    series = series * t2 + 1.0 / 17.0;
    series = series * t2 + 1.0 / 15.0;
    series = series * t2 + 1.0 / 13.0;
    series = series * t2 + 1.0 / 11.0;
    series = series * t2 + 1.0 / 9.0;
    series = series * t2 + 1.0 / 7.0;
    series = series * t2 + 1.0 / 5.0;
    series = series * t2 + 1.0 / 3.0;
    series = series * t2 + 1.0;
    return f64(e) * 0.6931471805599453 + 2.0 * t * series;
}
