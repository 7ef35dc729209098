// The exact parent-set posterior on the device (contract:
// `tessera_tensor::sim::PosteriorBackend`) from centred statistics, in `real`: f64 where
// the device has SHADER_F64, else f32. The host prepends the precision's prelude
// (`alias real`, `REAL_EPS`, `ln_real`): `posterior_f32.wgsl` or `posterior_f64.wgsl`.
//
// Per environment the device keeps the row count n, the means m and the centred
// scatter C (Welford updates, so no sum of squares of large values cancels). With
// k = n lambda / (n + lambda) and A = C + k m m', eliminating the intercept from
// Lambda = Z'Z + lambda I gives, for a set S: ln det Lambda = ln(n + lambda) +
// ln det(A_SS + lambda I), v'v - v0^2 = |L_S^-1 A_Sy|^2 and y'y - v0^2 = A_yy, so each
// set's score needs only a Cholesky of A_SS + lambda I (at most 3x3). Scores leave out
// the terms every set of an environment shares; the host adds them back in f64.

struct PostParams {
    batch: u32,
    n_vars: u32,
    rows: u32,
    // 0: none, 1: [B, n_vars], 2: [B, rows, n_vars].
    mode: u32,
    n_sets: u32,
    max_parents: u32,
    groups_x: u32,
    _pad: u32,
    lambda: f32,
    a0: f32,
    b0: f32,
    sparsity: f32,
}

// The score of a set the precision cannot resolve (see posterior_score); no real score
// is this large, so the reduction's maximum flags it.
const POST_UNRESOLVED: real = 3.0e38;

struct PostIntervention {
    kind: u32,
    value: f32,
}

@group(0) @binding(0) var<uniform> post: PostParams;
@group(0) @binding(1) var<storage, read> post_samples: array<f32>;
@group(0) @binding(2) var<storage, read> post_interventions: array<PostIntervention>;
@group(0) @binding(3) var<storage, read> post_targets: array<u32>;
// [n_sets, 4]: the set's size, then its candidates (set order).
@group(0) @binding(4) var<storage, read> post_sets: array<u32>;
// [B, 1 + n_vars + n_vars^2]: n, means, centred scatter.
@group(0) @binding(5) var<storage, read_write> post_stats: array<real>;
// [B, n_sets]: scores without the per-environment constant.
@group(0) @binding(6) var<storage, read_write> post_scores: array<real>;
// [B, n_vars + 3]: marginals, entropy in bits, MAP set index (exact in f32), the
// largest score (POST_UNRESOLVED when some set could not be resolved).
@group(0) @binding(7) var<storage, read_write> post_summary: array<f32>;

fn post_index(wg: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * post.groups_x + wg.x) * 64u + lid;
}

// One invocation per environment: Welford updates over the call's rows.
@compute @workgroup_size(64)
fn posterior_add_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = post_index(wg, lid);
    if (env >= post.batch) {
        return;
    }
    let d = post.n_vars;
    let goal = post_targets[env];
    let stride = 1u + d + d * d;
    let base = env * stride;
    for (var r = 0u; r < post.rows; r++) {
        let row = (env * post.rows + r) * d;
        var kind = 0u;
        var value = 0.0;
        if (post.mode == 1u) {
            let iv = post_interventions[env * d + goal];
            kind = iv.kind;
            value = iv.value;
        } else if (post.mode == 2u) {
            let iv = post_interventions[row + goal];
            kind = iv.kind;
            value = iv.value;
        }
        if (kind == 1u) {
            continue;
        }
        let n = post_stats[base] + 1.0;
        post_stats[base] = n;
        // Welford with delta = x - m_old: C += delta delta' (n - 1) / n, then m += delta / n.
        let scale = (n - 1.0) / n;
        for (var i = 0u; i < d; i++) {
            let di = post_shifted(row, i, goal, kind, value) - post_stats[base + 1u + i];
            for (var j = 0u; j < d; j++) {
                let dj = post_shifted(row, j, goal, kind, value) - post_stats[base + 1u + j];
                let at = base + 1u + d + i * d + j;
                post_stats[at] = post_stats[at] + scale * di * dj;
            }
        }
        for (var i = 0u; i < d; i++) {
            let di = post_shifted(row, i, goal, kind, value) - post_stats[base + 1u + i];
            post_stats[base + 1u + i] = post_stats[base + 1u + i] + di / n;
        }
    }
}

// Sample value `i` of the row at `row`, with a shift on the goal taken off.
fn post_shifted(row: u32, i: u32, goal: u32, kind: u32, value: f32) -> real {
    let x = real(post_samples[row + i]);
    return select(x, x - real(value), i == goal && kind == 2u);
}

// A = C + k m m' at (i, j), variable indices (`goal` is the target: WGSL reserves `target`).
fn post_a(base: u32, d: u32, k: real, i: u32, j: u32) -> real {
    let mi = post_stats[base + 1u + i];
    let mj = post_stats[base + 1u + j];
    return post_stats[base + 1u + d + i * d + j] + k * mi * mj;
}

fn post_variable(c: u32, goal: u32) -> u32 {
    return select(c + 1u, c, c < goal);
}

// One invocation per (environment, set).
@compute @workgroup_size(64)
fn posterior_score(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = post_index(wg, lid);
    if (index >= post.batch * post.n_sets) {
        return;
    }
    let env = index / post.n_sets;
    let set_index = index % post.n_sets;
    let d = post.n_vars;
    let goal = post_targets[env];
    let base = env * (1u + d + d * d);
    let n = post_stats[base];
    let lambda = real(post.lambda);
    let k = n * lambda / (n + lambda);
    let size = post_sets[4u * set_index];
    var vars = vec3<u32>(0u);
    for (var s = 0u; s < size; s++) {
        vars[s] = post_variable(post_sets[4u * set_index + 1u + s], goal);
    }
    // Cholesky of A_SS + lambda I (row-major 3x3) and v = L^-1 A_Sy.
    var l: array<real, 9>;
    var v = vec3<real>(0.0);
    var sum_ln_diag: real = 0.0;
    var vtv: real = 0.0;
    for (var i = 0u; i < size; i++) {
        for (var j = 0u; j <= i; j++) {
            var x = post_a(base, d, k, vars[i], vars[j]);
            if (i == j) {
                x = x + lambda;
            }
            for (var q = 0u; q < j; q++) {
                x = x - l[i * 3u + q] * l[j * 3u + q];
            }
            if (i == j) {
                let diag = sqrt(max(x, 1e-30));
                l[i * 3u + i] = diag;
                sum_ln_diag += ln_real(diag);
            } else {
                l[i * 3u + j] = x / l[j * 3u + j];
            }
        }
        var r = post_a(base, d, k, vars[i], goal);
        for (var q = 0u; q < i; q++) {
            r = r - l[i * 3u + q] * v[q];
        }
        v[i] = r / l[i * 3u + i];
        vtv += v[i] * v[i];
    }
    let an = real(post.a0) + 0.5 * n;
    let ayy = post_a(base, d, k, goal, goal);
    let resid = max(ayy - vtv, 0.0);
    let bn = real(post.b0) + 0.5 * resid;
    let p = real(size);
    // The precision resolves b_n only to about eps (1 + sqrt n) A_yy (rounding in the
    // statistics and the elimination), so a_n ln b_n only to a_n that / b_n. Where that
    // exceeds 0.05 nats the score is not trustworthy: it is replaced by POST_UNRESOLVED,
    // which the host reports as an error.
    let risk = an * REAL_EPS * (1.0 + sqrt(n)) * ayy / max(bn, 1e-30);
    var score = 0.5 * p * ln_real(lambda) - sum_ln_diag - an * ln_real(bn) - real(post.sparsity) * p;
    if (!(risk <= 0.05)) {
        score = POST_UNRESOLVED;
    }
    post_scores[index] = score;
}

var<workgroup> post_max: array<real, 64>;
var<workgroup> post_arg: array<u32, 64>;
var<workgroup> post_sum: array<real, 64>;
var<workgroup> post_ent: array<real, 64>;

// The rank of a set of candidates (ascending) among the sets in set order: by size,
// then lexicographically over m candidates.
fn post_choose2(x: u32) -> u32 {
    return select(0u, x * (x - 1u) / 2u, x >= 2u);
}

fn post_choose3(x: u32) -> u32 {
    return select(0u, x * (x - 1u) * (x - 2u) / 6u, x >= 3u);
}

fn post_rank(size: u32, a: u32, b: u32, c: u32, m: u32) -> u32 {
    if (size == 1u) {
        return 1u + a;
    }
    let pairs_before = 1u + m;
    if (size == 2u) {
        // Pairs (x, y) with x < a come first: sum_{x < a} (m - 1 - x).
        return pairs_before + a * (m - 1u) - post_choose2(a) + (b - a - 1u);
    }
    // Triples with first element below a: sum_{x < a} C(m - 1 - x, 2) = C(m, 3) - C(m - a, 3);
    // then second element in (a, b): sum_{y = a+1}^{b-1} (m - 1 - y) = C(m - a - 1, 2) - C(m - b, 2).
    let triples_before = pairs_before + post_choose2(m);
    let first = post_choose3(m) - post_choose3(m - a);
    let second = post_choose2(m - a - 1u) - post_choose2(m - b);
    return triples_before + first + second + (c - b - 1u);
}

// One workgroup per environment: normalise the scores, entropy, MAP, marginals.
@compute @workgroup_size(64)
fn posterior_reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = wg.y * post.groups_x + wg.x;
    if (env >= post.batch) {
        return;
    }
    let scores = env * post.n_sets;
    var best: real = -3.0e38;
    var arg = 0u;
    for (var s = lid; s < post.n_sets; s += 64u) {
        let x = post_scores[scores + s];
        if (x > best) {
            best = x;
            arg = s;
        }
    }
    post_max[lid] = best;
    post_arg[lid] = arg;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            let other = post_max[lid + stride];
            let other_arg = post_arg[lid + stride];
            if (other > post_max[lid] || (other == post_max[lid] && other_arg < post_arg[lid])) {
                post_max[lid] = other;
                post_arg[lid] = other_arg;
            }
        }
        workgroupBarrier();
    }
    let top = post_max[0];
    workgroupBarrier();
    // Differences from the top are taken at full precision; their exponentials in f32.
    var sum: real = 0.0;
    for (var s = lid; s < post.n_sets; s += 64u) {
        sum += real(exp(f32(post_scores[scores + s] - top)));
    }
    post_sum[lid] = sum;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            post_sum[lid] += post_sum[lid + stride];
        }
        workgroupBarrier();
    }
    let total = post_sum[0];
    let ln_total = ln_real(total);
    var ent: real = 0.0;
    for (var s = lid; s < post.n_sets; s += 64u) {
        let rel = post_scores[scores + s] - top;
        let w = real(exp(f32(rel))) / total;
        ent += w * (ln_total - rel);
    }
    post_ent[lid] = ent;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            post_ent[lid] += post_ent[lid + stride];
        }
        workgroupBarrier();
    }
    let d = post.n_vars;
    let m = d - 1u;
    let goal = post_targets[env];
    let out = env * (d + 3u);
    // Marginal of candidate c: the weight of every set holding it, enumerated by rank.
    for (var c = lid; c < m; c += 64u) {
        var mass: real = 0.0;
        if (post.max_parents >= 1u) {
            mass += real(exp(f32(post_scores[scores + post_rank(1u, c, 0u, 0u, m)] - top)));
        }
        if (post.max_parents >= 2u) {
            for (var o = 0u; o < m; o++) {
                if (o != c) {
                    let r = post_rank(2u, min(o, c), max(o, c), 0u, m);
                    mass += real(exp(f32(post_scores[scores + r] - top)));
                }
            }
        }
        if (post.max_parents >= 3u) {
            for (var o1 = 0u; o1 < m; o1++) {
                for (var o2 = o1 + 1u; o2 < m; o2++) {
                    if (o1 != c && o2 != c) {
                        let lo = min(c, o1);
                        let hi = max(c, o2);
                        let mid = c + o1 + o2 - lo - hi;
                        mass += real(exp(f32(post_scores[scores + post_rank(3u, lo, mid, hi, m)] - top)));
                    }
                }
            }
        }
        post_summary[out + post_variable(c, goal)] = f32(min(mass / total, 1.0));
    }
    if (lid == 0u) {
        post_summary[out + goal] = 0.0;
        post_summary[out + d] = f32(max(post_ent[0] / 0.6931471805599453, 0.0));
        // Set indices stay below 2^24, so they are exact as f32.
        post_summary[out + d + 1u] = f32(post_arg[0]);
        post_summary[out + d + 2u] = f32(top);
    }
}
