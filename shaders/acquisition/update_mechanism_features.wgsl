// update_mechanism_features: F = (1 - lr) F + lr observed, then clip column 1 and, if
// feature_dim > 2, column 2 to [0, 1].

fn stage_update_mechanism_features(env: u32, lid: u32) {
    let fd = params.feature_dim;
    let len = params.n_vars * fd;
    let lr = params.learning_rate;
    for (var k = lid; k < len; k = k + WG) {
        let i = env * len + k;
        var f = (1.0 - lr) * features[i] + lr * input_observed(env, k);
        let col = k % fd;
        if (col == 1u || col == 2u) {
            f = clamp(f, 0.0, 1.0);
        }
        features[i] = f;
    }
    sync();
}

@compute @workgroup_size(WG)
fn update_mechanism_features(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_update_mechanism_features(wg.x, lid);
}
