// Known-answer check of Philox on the device: block k of `philox_in` (four counter
// words, two key words) gives four words of `philox_out`. Built only by tests.

@group(0) @binding(0) var<uniform> philox_count: vec4<u32>;
@group(0) @binding(1) var<storage, read> philox_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> philox_out: array<u32>;

@compute @workgroup_size(64)
fn philox_blocks(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    if (k >= philox_count.x) {
        return;
    }
    let c = vec4<u32>(philox_in[6u * k], philox_in[6u * k + 1u], philox_in[6u * k + 2u], philox_in[6u * k + 3u]);
    let w = philox4x32_10(c, vec2<u32>(philox_in[6u * k + 4u], philox_in[6u * k + 5u]));
    philox_out[4u * k] = w.x;
    philox_out[4u * k + 1u] = w.y;
    philox_out[4u * k + 2u] = w.z;
    philox_out[4u * k + 3u] = w.w;
}
