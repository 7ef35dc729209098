// Value-of-information reductions (contract: docs/voi.md, `VoiBackend`).
//
// `decision_sums`: workgroup (x = row block, y = reduction). Each invocation walks
// `rows_per_thread` rows strided by the workgroup size (coalesced), computes every
// strategy's incremental net benefit against the reduction's reference strategy,
// and accumulates the row maximum, the per-strategy sums and the optimal counts.
// The workgroup combines them by a tree (pairwise) reduction and writes one partial
// per (reduction, block); the host adds the partials in f64.
//
// `gram`: workgroup (x = column tile, y = row tile, z = chunk of rows) of 16 x 16,
// partial cross-products Z^T Z of one chunk, added on the host in f64.

const VOI_WORKGROUP: u32 = 128u;
const VOI_MAX_STRATEGIES: u32 = 32u;
const GRAM_TILE: u32 = 16u;

struct VoiParams {
    rows: u32,
    strategies: u32,
    // 0 net benefits, 1 costs and effects, 2 fitted net benefits, 3 fitted costs and effects.
    mode: u32,
    rows_per_thread: u32,
    groups_x: u32,
    // Grid values per coefficient set (fitted modes).
    grid: u32,
    // Design columns p (fitted modes); Z's columns q (gram).
    p: u32,
    // Coefficient columns m (fitted modes).
    m: u32,
    // Values per row of the resident design (fitted modes): Z = [X | Y] is kept, X
    // its first p columns.
    stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: VoiParams;
// Net benefits or costs [N, D]; Z = [X | Y] [N, q] for gram and, X its first p
// columns, the fitted modes.
@group(0) @binding(1) var<storage, read> table_a: array<f32>;
// Effects [N, D]; coefficients [sets, p, m].
@group(0) @binding(2) var<storage, read> table_b: array<f32>;
@group(0) @binding(3) var<storage, read> wtp: array<f32>;
@group(0) @binding(4) var<storage, read> reference: array<u32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

var<workgroup> tree: array<f32, VOI_WORKGROUP>;

// Strategy j's net benefit in row i at reduction c (strategy 0's fitted value is 0).
fn net_benefit(i: u32, j: u32, c: u32) -> f32 {
    let d = params.strategies;
    switch params.mode {
        case 0u: {
            return table_a[i * d + j];
        }
        case 1u: {
            return wtp[c] * table_b[i * d + j] - table_a[i * d + j];
        }
        default: {
            if j == 0u {
                return 0.0;
            }
            let p = params.p;
            let m = params.m;
            let coef_set = c / params.grid;
            var effect = 0.0;
            var cost = 0.0;
            for (var t = 0u; t < p; t++) {
                let x = table_a[i * params.stride + t];
                let row = (coef_set * p + t) * m;
                effect += x * table_b[row + j - 1u];
                if params.mode == 3u {
                    cost += x * table_b[row + d - 1u + j - 1u];
                }
            }
            if params.mode == 2u {
                return effect;
            }
            return wtp[c % params.grid] * effect - cost;
        }
    }
}

// Tree-reduces `value` over the workgroup; invocation 0 gets the total.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    tree[lid] = value;
    workgroupBarrier();
    for (var half = VOI_WORKGROUP / 2u; half > 0u; half >>= 1u) {
        if lid < half {
            tree[lid] += tree[lid + half];
        }
        workgroupBarrier();
    }
    let total = tree[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(128)
fn decision_sums(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let d = params.strategies;
    let c = wg.y;
    let r = reference[c];
    var sum_max = 0.0;
    var sum_inc: array<f32, VOI_MAX_STRATEGIES>;
    var optimal: array<u32, VOI_MAX_STRATEGIES>;
    var nb: array<f32, VOI_MAX_STRATEGIES>;
    let first = wg.x * VOI_WORKGROUP * params.rows_per_thread + lid;
    for (var t = 0u; t < params.rows_per_thread; t++) {
        let i = first + t * VOI_WORKGROUP;
        if i >= params.rows {
            break;
        }
        for (var j = 0u; j < d; j++) {
            nb[j] = net_benefit(i, j, c);
        }
        let base = nb[r];
        var best = 0u;
        var best_v = nb[0] - base;
        for (var j = 0u; j < d; j++) {
            let inc = nb[j] - base;
            sum_inc[j] += inc;
            if inc > best_v {
                best_v = inc;
                best = j;
            }
        }
        sum_max += best_v;
        optimal[best] += 1u;
    }
    let quantities = 1u + 2u * d;
    let out = (c * params.groups_x + wg.x) * quantities;
    let total = workgroup_sum(lid, sum_max);
    if lid == 0u {
        partials[out] = total;
    }
    for (var j = 0u; j < d; j++) {
        let inc = workgroup_sum(lid, sum_inc[j]);
        // Counts are exact in f32: a block holds fewer than 2^24 rows.
        let count = workgroup_sum(lid, f32(optimal[j]));
        if lid == 0u {
            partials[out + 1u + j] = inc;
            partials[out + 1u + d + j] = count;
        }
    }
}

var<workgroup> gram_a: array<array<f32, GRAM_TILE>, GRAM_TILE>;
var<workgroup> gram_b: array<array<f32, GRAM_TILE>, GRAM_TILE>;

@compute @workgroup_size(16, 16)
fn gram(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let q = params.p;
    let i = wg.y * GRAM_TILE + local.y;
    let j = wg.x * GRAM_TILE + local.x;
    let start = wg.z * params.rows_per_thread;
    let end = min(start + params.rows_per_thread, params.rows);
    var acc = 0.0;
    for (var r0 = start; r0 < end; r0 += GRAM_TILE) {
        // Row r0 + local.y of the chunk: columns of tile i (a) and tile j (b).
        let row = r0 + local.y;
        let col_a = wg.y * GRAM_TILE + local.x;
        let col_b = wg.x * GRAM_TILE + local.x;
        var a = 0.0;
        var b = 0.0;
        if row < end {
            if col_a < q {
                a = table_a[row * q + col_a];
            }
            if col_b < q {
                b = table_a[row * q + col_b];
            }
        }
        gram_a[local.y][local.x] = a;
        gram_b[local.y][local.x] = b;
        workgroupBarrier();
        for (var t = 0u; t < GRAM_TILE; t++) {
            acc += gram_a[t][local.y] * gram_b[t][local.x];
        }
        workgroupBarrier();
    }
    if i < q && j < q {
        partials[(wg.z * q + i) * q + j] = acc;
    }
}
