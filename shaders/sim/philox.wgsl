// Philox4x32-10 (Salmon et al., Random123) and Box-Muller normals: the twin of
// `tessera_tensor::rng::{philox4x32_10, normals4}`. 32-bit integer operations only, so
// every backend draws the same bits; the normals agree to the precision of log/cos/sin.

// (hi, lo) of the 64-bit product a * b, from 16-bit halves (WGSL has no mul-hi).
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lolo = a_lo * b_lo;
    let lohi = a_lo * b_hi;
    let hilo = a_hi * b_lo;
    let mid = (lolo >> 16u) + (lohi & 0xffffu) + (hilo & 0xffffu);
    let hi = a_hi * b_hi + (lohi >> 16u) + (hilo >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let p0 = philox_mulhilo(0xD2511F53u, c.x);
        let p1 = philox_mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Two normals from two words: u1 in (0, 1], u2 in [0, 1), theta in [-pi, pi).
fn box_muller(a: u32, b: u32) -> vec2<f32> {
    let scale = 1.0 / 16777216.0;
    let u1 = f32((a >> 8u) + 1u) * scale;
    let u2 = f32(b >> 8u) * scale;
    let radius = sqrt(-2.0 * log(u1));
    let theta = 3.14159265358979 * (2.0 * u2 - 1.0);
    return vec2<f32>(radius * cos(theta), radius * sin(theta));
}

fn normals4(counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
    let w = philox4x32_10(counter, key);
    return vec4<f32>(box_muller(w.x, w.y), box_muller(w.z, w.w));
}
