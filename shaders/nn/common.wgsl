// Shared declarations of the neural kernels. Every file in this folder is
// concatenated after this one into a single module (tessera-gpu's nn/pipelines.rs).
// All kernels use one bind group: a dynamic-offset uniform slot of parameters and six
// storage tensors t0..t5 whose roles each kernel documents.

struct NnParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    len: u32,
    rows: u32,
    cols: u32,
    // Activation code (tessera_tensor::nn::Activation::code).
    activation: u32,
    // Loss code (tessera_tensor::nn::Loss::code).
    loss: u32,
    step: u32,
    decoupled: u32,
    alpha: f32,
    beta: f32,
    steepness: f32,
    scale: f32,
    // FANN's factor on t - y (0.5 for symmetric outputs under the FANN loss).
    diff_scale: f32,
    bit_fail_limit: f32,
    learning_rate: f32,
    momentum: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    bias_correction1: f32,
    bias_correction2: f32,
    increase: f32,
    decrease: f32,
    delta_min: f32,
    delta_max: f32,
    // SARPROP: steps below step_threshold gain noise_scale * noise_unit(noise_seed, i).
    step_threshold: f32,
    noise_scale: f32,
    noise_seed: u32,
    // Derivative code (tessera_tensor::nn::Derivative::code): 0 exact, 1 FANN's
    // choices, 2 libfann verbatim.
    derivative: u32,
    // error_metrics: the pair of t2 its first workgroup writes.
    offset: u32,
    // Split-K GEMM: number of K slices (1: none) and the K length of each.
    splits: u32,
    k_chunk: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: NnParams;
@group(0) @binding(1) var<storage, read_write> t0: array<f32>;
@group(0) @binding(2) var<storage, read_write> t1: array<f32>;
@group(0) @binding(3) var<storage, read_write> t2: array<f32>;
@group(0) @binding(4) var<storage, read_write> t3: array<f32>;
@group(0) @binding(5) var<storage, read_write> t4: array<f32>;
@group(0) @binding(6) var<storage, read_write> t5: array<f32>;

const EW: u32 = 256u;

var<workgroup> red: array<f32, 256>;

// Flat index of a thread in a (possibly 2D) grid of 256-thread workgroups.
fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * EW + lid;
}

// Flat index of a workgroup (one row per workgroup for row-wise kernels).
fn flat_group(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}

fn reduce_sum(lid: u32, x: f32) -> f32 {
    red[lid] = x;
    workgroupBarrier();
    for (var s = EW / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

fn reduce_max(lid: u32, x: f32) -> f32 {
    red[lid] = x;
    workgroupBarrier();
    for (var s = EW / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}
