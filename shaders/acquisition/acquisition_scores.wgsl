// acquisition_scores: s_i = conf_i (1 + w (1 - rate_i)) - 0.1 F[i,1] from the policy
// features; -inf for the target.

fn stage_acquisition_scores(env: u32, lid: u32) {
    let n = params.n_vars;
    let fd = params.feature_dim;
    let width = params.policy_width;
    let w = params.exploration_weight;
    let target_var = scalars[env].target_idx;
    for (var i = lid; i < n; i = i + WG) {
        let row = (env * n + i) * width;
        var s = policy[row + fd + 1u] * (1.0 + w * (1.0 - policy[row + fd + 10u])) - 0.1 * policy[row + 1u];
        if (i == target_var) {
            s = params.neg_inf;
        }
        scores[env * n + i] = s;
    }
    sync();
}

@compute @workgroup_size(WG)
fn acquisition_scores(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_acquisition_scores(wg.x, lid);
}
