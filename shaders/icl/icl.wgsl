// In-context kernels (contract: docs/icl.md, `IclBackend`).
//
// `gemm`: C = alpha A B over operands picked from the bindings by selector and
// addressed by offset and strides (a transpose is a stride swap); 16 x 16 tiles.
// `mix_pairs`: one workgroup per pair; the tokens of its context stream through an
// online softmax (running maximum, rescaled sums), the invocations spread over the
// token dimension, and the mixture Σ α_i (t_i − x) is written once per pair or after
// every token.
// `dynamics`: one workgroup per context runs `steps` iterations of
// α = softmax(qᵀ W k_i), ΔW = h q sᵀ − λ W, W += ΔW, stopping at the tolerance; its
// state (W, step count, done) lives in `work`, so the host records every dispatch of a
// run in one submission.

const ICL_WORKGROUP: u32 = 256u;
const ICL_TILE: u32 = 16u;

struct IclParams {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    a_sel: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_sel: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    // Token dimension, pairs (or contexts), and where offsets, q̃ and the mixtures are.
    d: u32,
    pairs: u32,
    offsets_off: u32,
    qt_off: u32,
    diff_off: u32,
    // 1: a mixture row after every token; 0: one per pair.
    sequence: u32,
    // Dynamics: where W, r, s, the scores, the norm history and the state are.
    w_off: u32,
    r_off: u32,
    s_off: u32,
    scores_off: u32,
    history_off: u32,
    state_off: u32,
    max_steps: u32,
    steps: u32,
    pad0: u32,
    h: f32,
    lambda: f32,
    tolerance: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: IclParams;
// Wq (or W_0 of the dynamics), Wk, Wv, W.
@group(0) @binding(1) var<storage, read> wq: array<f32>;
@group(0) @binding(2) var<storage, read> wk: array<f32>;
@group(0) @binding(3) var<storage, read> wv: array<f32>;
@group(0) @binding(4) var<storage, read> w_dense: array<f32>;
// Query tokens; context tokens (or keys).
@group(0) @binding(5) var<storage, read> queries: array<f32>;
@group(0) @binding(6) var<storage, read> tokens: array<f32>;
@group(0) @binding(7) var<storage, read_write> work: array<f32>;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;
var<workgroup> tree: array<f32, ICL_WORKGROUP>;
var<workgroup> uniform_u32: u32;
var<workgroup> uniform_f32: f32;

// `v` of invocation 0, as a value the uniformity analysis knows every invocation shares
// (a loop bound or exit read from storage must be, when the loop has barriers).
fn broadcast_u32(lid: u32, v: u32) -> u32 {
    if lid == 0u {
        uniform_u32 = v;
    }
    let value = workgroupUniformLoad(&uniform_u32);
    workgroupBarrier();
    return value;
}

fn broadcast_f32(lid: u32, v: f32) -> f32 {
    if lid == 0u {
        uniform_f32 = v;
    }
    let value = workgroupUniformLoad(&uniform_f32);
    workgroupBarrier();
    return value;
}

fn operand(sel: u32, i: u32) -> f32 {
    switch sel {
        case 0u: { return wq[i]; }
        case 1u: { return wk[i]; }
        case 2u: { return wv[i]; }
        case 3u: { return w_dense[i]; }
        case 4u: { return queries[i]; }
        case 5u: { return tokens[i]; }
        default: { return work[i]; }
    }
}

@compute @workgroup_size(16, 16)
fn gemm(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row = wid.y * ICL_TILE + lid.y;
    let col = wid.x * ICL_TILE + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < params.k; k0 += ICL_TILE) {
        let ka = k0 + lid.x;
        let kb = k0 + lid.y;
        var a = 0.0;
        if row < params.m && ka < params.k {
            a = operand(params.a_sel, params.a_off + row * params.a_rs + ka * params.a_cs);
        }
        var b = 0.0;
        if kb < params.k && col < params.n {
            b = operand(params.b_sel, params.b_off + kb * params.b_rs + col * params.b_cs);
        }
        tile_a[lid.y][lid.x] = a;
        tile_b[lid.y][lid.x] = b;
        workgroupBarrier();
        for (var t = 0u; t < ICL_TILE; t++) {
            acc = fma(tile_a[lid.y][t], tile_b[t][lid.x], acc);
        }
        workgroupBarrier();
    }
    if row < params.m && col < params.n {
        work[params.c_off + row * params.n + col] = params.alpha * acc;
    }
}

// Sums `value` over the workgroup; every invocation gets the total.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    tree[lid] = value;
    workgroupBarrier();
    for (var stride = ICL_WORKGROUP / 2u; stride > 0u; stride >>= 1u) {
        if lid < stride {
            tree[lid] += tree[lid + stride];
        }
        workgroupBarrier();
    }
    let total = tree[0];
    workgroupBarrier();
    return total;
}

fn offset_at(i: u32) -> u32 {
    return bitcast<u32>(work[params.offsets_off + i]);
}

@compute @workgroup_size(256)
fn mix_pairs(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let lid = lid3.x;
    let b = wid.x;
    let d = params.d;
    let first = broadcast_u32(lid, offset_at(b));
    let last = broadcast_u32(lid, offset_at(b + 1u));
    let qt = params.qt_off + b * d;
    // The score of x itself starts the running maximum, with weight 1.
    var partial = 0.0;
    for (var j = lid; j < d; j += ICL_WORKGROUP) {
        partial = fma(work[qt + j], queries[b * d + j], partial);
    }
    var top = workgroup_sum(lid, partial);
    var total = 1.0;
    // Each invocation keeps Σ e^{s_i − top} (t_i − x) for its dimensions j = lid + 256 c.
    var acc: array<f32, 64>;
    for (var t = first; t < last; t++) {
        partial = 0.0;
        for (var j = lid; j < d; j += ICL_WORKGROUP) {
            partial = fma(work[qt + j], tokens[t * d + j], partial);
        }
        let s = workgroup_sum(lid, partial);
        if s > top {
            let rescale = exp(top - s);
            for (var c = 0u; c * ICL_WORKGROUP < d; c++) {
                acc[c] *= rescale;
            }
            total *= rescale;
            top = s;
        }
        let e = exp(s - top);
        total += e;
        let inv = 1.0 / total;
        var row = params.diff_off + b * d;
        if params.sequence != 0u {
            row = params.diff_off + t * d;
        }
        for (var c = 0u; c * ICL_WORKGROUP < d; c++) {
            let j = c * ICL_WORKGROUP + lid;
            if j < d {
                acc[c] = fma(e, tokens[t * d + j] - queries[b * d + j], acc[c]);
                if params.sequence != 0u || t + 1u == last {
                    work[row + j] = acc[c] * inv;
                }
            }
        }
    }
    if params.sequence == 0u && first == last {
        for (var j = lid; j < d; j += ICL_WORKGROUP) {
            work[params.diff_off + b * d + j] = 0.0;
        }
    }
}

@compute @workgroup_size(256)
fn dynamics(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let lid = lid3.x;
    let b = wid.x;
    let d = params.d;
    let state = params.state_off + 2u * b;
    let w = params.w_off + b * d * d;
    let r = params.r_off + b * d;
    let s_at = params.s_off + b * d;
    let first = broadcast_u32(lid, offset_at(b));
    let last = broadcast_u32(lid, offset_at(b + 1u));
    var step = broadcast_u32(lid, bitcast<u32>(work[state]));
    var done = broadcast_u32(lid, bitcast<u32>(work[state + 1u])) != 0u;
    for (var i = 0u; i < params.steps; i++) {
        if done || step >= params.max_steps {
            break;
        }
        // r = Wᵀ q.
        for (var j = lid; j < d; j += ICL_WORKGROUP) {
            var acc = 0.0;
            for (var row = 0u; row < d; row++) {
                acc = fma(queries[b * d + row], work[w + row * d + j], acc);
            }
            work[r + j] = acc;
        }
        storageBarrier();
        workgroupBarrier();
        // Scores r · k_i and their maximum.
        var top = bitcast<f32>(0xff800000u);
        for (var t = first; t < last; t++) {
            var partial = 0.0;
            for (var j = lid; j < d; j += ICL_WORKGROUP) {
                partial = fma(work[r + j], tokens[t * d + j], partial);
            }
            let score = workgroup_sum(lid, partial);
            if lid == 0u {
                work[params.scores_off + t] = score;
            }
            top = max(top, score);
        }
        storageBarrier();
        workgroupBarrier();
        var z = 0.0;
        for (var t = first; t < last; t++) {
            z += exp(work[params.scores_off + t] - top);
        }
        // s = Σ α_i k_i.
        for (var j = lid; j < d; j += ICL_WORKGROUP) {
            var acc = 0.0;
            for (var t = first; t < last; t++) {
                acc = fma(exp(work[params.scores_off + t] - top) / z, tokens[t * d + j], acc);
            }
            work[s_at + j] = acc;
        }
        storageBarrier();
        workgroupBarrier();
        // ΔW = h q sᵀ − λ W, W += ΔW, and ‖ΔW‖².
        var change = 0.0;
        for (var e = lid; e < d * d; e += ICL_WORKGROUP) {
            let row = e / d;
            let col = e % d;
            let old = work[w + e];
            let delta = params.h * queries[b * d + row] * work[s_at + col] - params.lambda * old;
            work[w + e] = old + delta;
            change = fma(delta, delta, change);
        }
        let norm = broadcast_f32(lid, sqrt(workgroup_sum(lid, change)));
        if lid == 0u {
            work[params.history_off + b * params.max_steps + step] = norm;
        }
        step += 1u;
        done = norm < params.tolerance;
        storageBarrier();
        workgroupBarrier();
    }
    if lid == 0u {
        work[state] = bitcast<f32>(step);
        work[state + 1u] = bitcast<f32>(select(0u, 1u, done));
    }
}
