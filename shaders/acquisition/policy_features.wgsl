// policy_features: [n_vars, fd + 12] rows. Needs the progress and coverage of the
// current state in wg_summary, so the entry point computes them first.

fn stage_policy_features(env: u32, lid: u32) {
    let n = params.n_vars;
    let fd = params.feature_dim;
    let width = params.policy_width;
    let s = scalars[env];
    var total = 0u;
    for (var j = lid; j < n; j = j + WG) {
        total = total + counts[env * n + j];
    }
    total = reduce_sum_u32(lid, total);
    var inv_total = 0.0;
    if (total > 0u) {
        inv_total = 1.0 / f32(total);
    }
    let empty = s.n_samples == 0u;
    var best = s.best_value;
    if (empty) {
        best = 0.0;
    }
    let idle = clamp(f32(s.step), 0.0, 100.0) / 100.0;
    for (var i = lid; i < n; i = i + WG) {
        let row = (env * n + i) * width;
        for (var k = 0u; k < fd; k = k + 1u) {
            policy[row + k] = features[(env * n + i) * fd + k];
        }
        policy[row + fd] = marginal[env * n + i];
        policy[row + fd + 1u] = confidence[env * n + i];
        policy[row + fd + 2u] = best;
        policy[row + fd + 3u] = s.uncertainty_bits;
        policy[row + fd + 4u] = f32(s.step);
        policy[row + fd + 5u] = f32(s.n_samples);
        policy[row + fd + 6u] = wg_summary.improvement_from_start;
        policy[row + fd + 7u] = wg_summary.optimization_rate;
        policy[row + fd + 8u] = wg_summary.target_coverage_rate;
        policy[row + fd + 9u] = wg_summary.intervention_diversity;
        var rate = 0.0;
        var tsi = 0.0;
        if (!empty) {
            rate = f32(counts[env * n + i]) * inv_total;
            if (rate > 0.0) {
                tsi = clamp(1.0 / (rate + 1e-6), 0.0, 100.0) / 100.0;
            } else {
                tsi = idle;
            }
        }
        policy[row + fd + 10u] = rate;
        policy[row + fd + 11u] = tsi;
    }
    sync();
}

@compute @workgroup_size(WG)
fn policy_features(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = wg.x;
    stage_optimization_progress(env, lid);
    stage_exploration_coverage(env, lid);
    stage_policy_features(env, lid);
}
