// mechanism_confidence: c_i = clip(|F[i,0]| / (1 + F[i,1]), 0, 1), 0 for the target.

fn stage_mechanism_confidence(env: u32, lid: u32) {
    let n = params.n_vars;
    let fd = params.feature_dim;
    let target_var = scalars[env].target_idx;
    for (var i = lid; i < n; i = i + WG) {
        let f = (env * n + i) * fd;
        var c = clamp(abs(features[f]) / (1.0 + features[f + 1u]), 0.0, 1.0);
        if (i == target_var) {
            c = 0.0;
        }
        confidence[env * n + i] = c;
    }
    sync();
}

@compute @workgroup_size(WG)
fn mechanism_confidence(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_mechanism_confidence(wg.x, lid);
}
