// The closed loop's last stage before the acquisition step, one invocation per
// environment: the target's outcome and the best value so far from the new row, the
// posterior summary split into the acquisition state's inputs (marginals, entropies,
// mechanism features p, 4p(1-p), 1-4p(1-p)), faults recorded for the host to report
// on its next read, and the step counter advanced.

// [B, n_vars] the step's samples.
@group(0) @binding(1) var<storage, read> loop_samples: array<f32>;
// [B] the target variable of each environment.
@group(0) @binding(2) var<storage, read> loop_targets: array<u32>;
// [B, n_vars + 3] the posterior's summary: marginals, entropy, MAP index, top score.
@group(0) @binding(3) var<storage, read> loop_summary: array<f32>;
// The sampling kernel's params of this step ([3] is the draw, the step number).
@group(0) @binding(4) var<storage, read> loop_sim_params: array<u32>;
// [0]: the next step (loop_prepare reads it).
@group(0) @binding(5) var<storage, read_write> loop_clock: array<u32>;
// [0]: fault bits (1: a sample non-finite or beyond 1e15, 2: a posterior score the
// precision cannot resolve); [1]: the first step with a fault.
@group(0) @binding(6) var<storage, read_write> loop_fault: array<atomic<u32>, 2>;
// [B] outcomes, [B] best outcomes, [B, n_vars] marginals, [B] entropies,
// [B, n_vars, 3] observed mechanism features.
@group(0) @binding(7) var<storage, read_write> loop_outcomes: array<f32>;
@group(0) @binding(8) var<storage, read_write> loop_best: array<f32>;
@group(0) @binding(9) var<storage, read_write> loop_marginals: array<f32>;
@group(0) @binding(10) var<storage, read_write> loop_entropy: array<f32>;
@group(0) @binding(11) var<storage, read_write> loop_observed: array<f32>;

// POST_UNRESOLVED in posterior.wgsl.
const LOOP_UNRESOLVED: f32 = 3.0e38;
// MAX_MAGNITUDE of the acquisition contract.
const LOOP_MAX_MAGNITUDE: f32 = 1.0e15;

// Non-finite or too large, tested on the bits: fast-math compilers may fold isnan away.
fn loop_out_of_range(x: f32) -> bool {
    let exponent = bitcast<u32>(x) & 0x7f800000u;
    return exponent == 0x7f800000u || abs(x) > LOOP_MAX_MAGNITUDE;
}

@compute @workgroup_size(64)
fn loop_outcome(@builtin(global_invocation_id) gid: vec3<u32>) {
    let env = gid.x;
    let step = loop_sim_params[3];
    if (env == 0u) {
        loop_clock[0] = step + 1u;
    }
    if (env >= loop_params.batch) {
        return;
    }
    let d = loop_params.n_vars;
    let base = env * d;
    var fault = 0u;
    for (var j = 0u; j < d; j++) {
        if (loop_out_of_range(loop_samples[base + j])) {
            fault = 1u;
        }
    }
    let y = loop_samples[base + loop_targets[env]];
    loop_outcomes[env] = y;
    loop_best[env] = max(loop_best[env], y);
    let row = env * (d + 3u);
    if (loop_summary[row + d + 2u] >= LOOP_UNRESOLVED) {
        fault |= 2u;
    }
    for (var j = 0u; j < d; j++) {
        let p = loop_summary[row + j];
        let u = 4.0 * p * (1.0 - p);
        loop_marginals[base + j] = p;
        loop_observed[(base + j) * 3u] = p;
        loop_observed[(base + j) * 3u + 1u] = u;
        loop_observed[(base + j) * 3u + 2u] = 1.0 - u;
    }
    loop_entropy[env] = loop_summary[row + d];
    if (fault != 0u) {
        atomicOr(&loop_fault[0], fault);
        atomicMin(&loop_fault[1], step);
    }
}
