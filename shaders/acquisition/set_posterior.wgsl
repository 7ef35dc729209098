// set_posterior: copies marginal parent probabilities and the entropy from `inputs`
// (the values and targets planes).

fn stage_set_posterior(env: u32, lid: u32) {
    let n = params.n_vars;
    for (var j = lid; j < n; j = j + WG) {
        marginal[env * n + j] = input_value(env, j);
    }
    if (lid == 0u) {
        scalars[env].uncertainty_bits = input_target(env);
    }
    sync();
}

@compute @workgroup_size(WG)
fn set_posterior(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_set_posterior(wg.x, lid);
}
