// Samples from a batch of linear-Gaussian SCMs: one invocation per (environment, row),
// positions in topological order. Contract: `tessera_tensor::sim::SimBackend`.

struct SimParams {
    batch: u32,
    n_vars: u32,
    rows: u32,
    draw: u32,
    key0: u32,
    key1: u32,
    // 0: no interventions, 1: [B, n_vars], 2: [B, rows, n_vars].
    mode: u32,
    groups_x: u32,
}

struct Intervention {
    kind: u32,
    value: f32,
}

@group(0) @binding(0) var<uniform> params: SimParams;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> noise: array<f32>;
@group(0) @binding(5) var<storage, read> interventions: array<Intervention>;
@group(0) @binding(6) var<storage, read_write> samples: array<f32>;

@compute @workgroup_size(64)
fn sample(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = (wg.y * params.groups_x + wg.x) * 64u + lid;
    if (index >= params.batch * params.rows) {
        return;
    }
    let d = params.n_vars;
    let env = index / params.rows;
    let r = index % params.rows;
    let base = index * d;
    let key = vec2<u32>(params.key0, params.key1);
    var z = vec4<f32>(0.0);
    for (var i = 0u; i < d; i++) {
        if (i % 4u == 0u) {
            z = normals4(vec4<u32>(i / 4u, r, env, params.draw), key);
        }
        let v = order[env * d + i];
        var kind = 0u;
        var value = 0.0;
        if (params.mode == 1u) {
            let iv = interventions[env * d + v];
            kind = iv.kind;
            value = iv.value;
        } else if (params.mode == 2u) {
            let iv = interventions[base + v];
            kind = iv.kind;
            value = iv.value;
        }
        var x = value;
        if (kind != 1u) {
            var parents = 0.0;
            let w = (env * d + i) * d;
            for (var j = 0u; j < i; j++) {
                parents += weights[w + j] * samples[base + order[env * d + j]];
            }
            let shift = select(0.0, value, kind == 2u);
            x = bias[env * d + i] + parents + noise[env * d + i] * z[i % 4u] + shift;
        }
        samples[base + v] = x;
    }
}
