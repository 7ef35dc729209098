// The fused pipeline step: every stage in the spec's order, one dispatch for the batch.

@compute @workgroup_size(WG)
fn pipeline_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = wg.x;
    stage_add_sample(env, lid);
    stage_update_mechanism_features(env, lid);
    stage_mechanism_confidence(env, lid);
    stage_optimization_progress(env, lid);
    stage_exploration_coverage(env, lid);
    stage_policy_features(env, lid);
    stage_acquisition_scores(env, lid);
    stage_select_intervention(env, lid);
    if (lid == 0u) {
        summaries[env] = wg_summary;
    }
}
