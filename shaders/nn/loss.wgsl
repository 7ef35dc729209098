// Output gradients, error metrics and bias-gradient column sums.
// output_gradient: t0 = y, t1 = target, t2 = gradient.
// error_metrics: t0 = y, t1 = target, t2 = per-workgroup partials (sse, bit fails),
// from pair p.offset on.
// column_sums: t0 = m [rows, cols], t1 = out [cols].

fn fann_tanh_error(diff: f32) -> f32 {
    if (diff < -0.9999999) {
        return -17.0;
    }
    if (diff > 0.9999999) {
        return 17.0;
    }
    return log((1.0 + diff) / (1.0 - diff));
}

@compute @workgroup_size(256)
fn output_gradient(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        let y = t0[i];
        let t = t1[i];
        var g = 0.0;
        switch p.loss {
            case 0u: { g = p.scale * (y - t); }
            case 1u: { g = -p.scale * (t - y) * p.diff_scale; }
            case 2u: { g = -p.scale * fann_tanh_error((t - y) * p.diff_scale); }
            default: { g = p.scale * p.steepness * (y - t); }
        }
        t2[i] = g;
    }
}

@compute @workgroup_size(256)
fn error_metrics(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    var sq = 0.0;
    var fail = 0.0;
    if (i < p.len) {
        let diff = (t1[i] - t0[i]) * p.diff_scale;
        sq = diff * diff;
        fail = select(0.0, 1.0, abs(diff) >= p.bit_fail_limit);
    }
    sq = reduce_sum(lid, sq);
    fail = reduce_sum(lid, fail);
    let g = flat_group(wg, nwg);
    // A 2D grid's spare workgroups write nothing: the partials past this call's
    // belong to the next call, or lie past the end.
    if (lid == 0u && g * EW < p.len) {
        t2[2u * (p.offset + g)] = sq;
        t2[2u * (p.offset + g) + 1u] = fail;
    }
}

@compute @workgroup_size(256)
fn column_sums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let j = flat_index(wg, nwg, lid);
    if (j < p.cols) {
        var s = 0.0;
        for (var i = 0u; i < p.rows; i = i + 1u) {
            s = s + t0[i * p.cols + j];
        }
        if (p.beta != 0.0) {
            s = s + p.beta * t1[j];
        }
        t1[j] = s;
    }
}
