// select_intervention: argmax of the scores, lowest index on ties, never the target.
// Each thread scans its variables in ascending order, then a tree reduction keeps the
// higher score, or the lower index on equal scores. Result in wg_summary.selected.

var<workgroup> scratch_idx: array<u32, WG>;

fn stage_select_intervention(env: u32, lid: u32) {
    let n = params.n_vars;
    let target_var = scalars[env].target_idx;
    var best_i = NO_SELECTION;
    var best_s = 0.0;
    for (var i = lid; i < n; i = i + WG) {
        let s = scores[env * n + i];
        if (i != target_var && (best_i == NO_SELECTION || s > best_s)) {
            best_i = i;
            best_s = s;
        }
    }
    scratch_idx[lid] = best_i;
    scratch_f[lid] = best_s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let oi = scratch_idx[lid + stride];
            let os = scratch_f[lid + stride];
            let mi = scratch_idx[lid];
            let ms = scratch_f[lid];
            if (oi != NO_SELECTION && (mi == NO_SELECTION || os > ms || (os == ms && oi < mi))) {
                scratch_idx[lid] = oi;
                scratch_f[lid] = os;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        wg_summary.selected = scratch_idx[0];
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn select_intervention(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = wg.x;
    stage_select_intervention(env, lid);
    if (lid == 0u) {
        summaries[env].selected = wg_summary.selected;
    }
}
