// set_posterior: copies marginal parent probabilities and the entropy from `inputs`
// (marginal[n] | uncertainty_bits per environment).

fn stage_set_posterior(env: u32, lid: u32) {
    let n = params.n_vars;
    let input = env * params.input_stride;
    for (var j = lid; j < n; j = j + WG) {
        marginal[env * n + j] = inputs[input + j];
    }
    if (lid == 0u) {
        scalars[env].uncertainty_bits = inputs[input + n];
    }
    sync();
}

@compute @workgroup_size(WG)
fn set_posterior(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_set_posterior(wg.x, lid);
}
