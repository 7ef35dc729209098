// The closed loop's first stage, one invocation per environment of a shard: the
// variable it intervenes on (the acquisition state's last selection, or a Philox
// draw), the value (fixed, a Philox draw, or the caller's), written as the sampling
// kernel's do-interventions and the acquisition state's flag bits; and, by
// environment 0, the sampling kernel's params for this step's draw.

struct Intervention {
    kind: u32,
    value: f32,
}

// [shard_envs] StepSummary of the shard (8 words each, `selected` last).
@group(0) @binding(1) var<storage, read> loop_summaries: array<u32>;
// [B] the target variable of each environment.
@group(0) @binding(2) var<storage, read> loop_targets: array<u32>;
// [0]: the step about to run (written by loop_outcome).
@group(0) @binding(3) var<storage, read> loop_clock: array<u32>;
// [B] the caller's values (value_policy 2).
@group(0) @binding(4) var<storage, read> loop_values: array<f32>;
// [B, n_vars] the sampling kernel's interventions.
@group(0) @binding(5) var<storage, read_write> loop_interventions: array<Intervention>;
// [B, flag_words] the acquisition step's intervention flags.
@group(0) @binding(6) var<storage, read_write> loop_flags: array<u32>;
// The sampling kernel's SimParams (8 words), copied into its uniform.
@group(0) @binding(7) var<storage, read_write> loop_sim_params: array<u32>;

fn loop_policy_word(key0: u32, key1: u32, env: u32, step: u32) -> u32 {
    return philox4x32_10(vec4<u32>(env, step, LOOP_POLICY_STREAM, 0u), vec2<u32>(key0, key1)).x;
}

@compute @workgroup_size(64)
fn loop_prepare(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = loop_params;
    if (gid.x >= p.shard_envs) {
        return;
    }
    let env = p.first_env + gid.x;
    let d = p.n_vars;
    let step = loop_clock[0];
    if (env == 0u) {
        loop_sim_params[0] = p.batch;
        loop_sim_params[1] = d;
        loop_sim_params[2] = 1u;
        loop_sim_params[3] = step;
        loop_sim_params[4] = p.sim_key0;
        loop_sim_params[5] = p.sim_key1;
        loop_sim_params[6] = 1u;
        loop_sim_params[7] = p.sim_groups_x;
    }
    var chosen = LOOP_NO_SELECTION;
    if (p.selection == 0u) {
        chosen = loop_summaries[gid.x * 8u + 7u];
    } else if (d > 1u) {
        // (word * (d - 1)) >> 32, skipping the target.
        let word = loop_policy_word(p.choice_key0, p.choice_key1, env, step);
        chosen = philox_mulhilo(word, d - 1u).x;
        if (chosen >= loop_targets[env]) {
            chosen += 1u;
        }
    }
    var value = p.fixed_value;
    if (p.value_policy == 1u) {
        let word = loop_policy_word(p.value_key0, p.value_key1, env, step);
        let u = f32(word >> 8u) * (1.0 / 16777216.0);
        value = min(p.lo + (p.hi - p.lo) * u, p.hi_below);
    } else if (p.value_policy == 2u) {
        value = loop_values[env];
    }
    for (var j = 0u; j < d; j++) {
        let hit = j == chosen;
        loop_interventions[env * d + j] = Intervention(select(0u, 1u, hit), select(0.0, value, hit));
    }
    for (var w = 0u; w < p.flag_words; w++) {
        var bits = 0u;
        if (chosen != LOOP_NO_SELECTION && chosen / 32u == w) {
            bits = 1u << (chosen % 32u);
        }
        loop_flags[env * p.flag_words + w] = bits;
    }
}
