// exploration_coverage: workgroup reductions over the incremental intervention counts.
// Result in wg_summary.

fn stage_exploration_coverage(env: u32, lid: u32) {
    let n = params.n_vars;
    let s = scalars[env];
    var covered = 0u;
    var total = 0u;
    for (var j = lid; j < n; j = j + WG) {
        let c = counts[env * n + j];
        if (j != s.target_idx && c > 0u) {
            covered = covered + 1u;
            total = total + c;
        }
    }
    covered = reduce_sum_u32(lid, covered);
    total = reduce_sum_u32(lid, total);
    var inv_total = 0.0;
    if (total > 0u) {
        inv_total = 1.0 / f32(total);
    }
    var h = 0.0;
    for (var j = lid; j < n; j = j + WG) {
        let c = counts[env * n + j];
        if (j != s.target_idx && c > 0u) {
            let p = f32(c) * inv_total;
            h = h - p * log(p);
        }
    }
    h = reduce_sum_f32(lid, h);
    if (lid == 0u) {
        let m = n - 1u;
        var coverage = 0.0;
        var diversity = 0.0;
        if (m > 0u) {
            coverage = f32(covered) / f32(m);
        }
        if (total > 0u) {
            var norm = 1.0;
            if (m > 1u) {
                norm = log(f32(m));
            }
            diversity = h / norm;
        }
        if (s.n_samples == 0u) {
            coverage = 0.0;
            diversity = 0.0;
        }
        wg_summary.target_coverage_rate = coverage;
        wg_summary.intervention_diversity = diversity;
        wg_summary.unexplored_variables = 1.0 - coverage;
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn exploration_coverage(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = wg.x;
    stage_exploration_coverage(env, lid);
    if (lid == 0u) {
        summaries[env].target_coverage_rate = wg_summary.target_coverage_rate;
        summaries[env].intervention_diversity = wg_summary.intervention_diversity;
        summaries[env].unexplored_variables = wg_summary.unexplored_variables;
    }
}
