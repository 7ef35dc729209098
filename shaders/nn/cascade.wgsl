// The Cascade2 candidate pool (tessera_tensor::nn::cascade). The launcher runs
//   S = V W_in^T (gemm), candidate_activation, candidate_reduce, grad_in = D^T V (gemm)
// in one submission. Shapes: rows, cols = candidates, n = outputs.
// Each candidate's activation code (bit pattern) and steepness: units[2c], units[2c + 1].

// The derivative of a candidate's y = f(s sum) with respect to sum: exact, or what
// libfann returns for a candidate (its stored sum lacks the steepness).
fn candidate_derivative(code: u32, s: f32, sum: f32, y: f32) -> f32 {
    if (uses_fann_form(code, p.derivative)) {
        return fann_derivative(code, s, y, sum);
    }
    return s * derivative(code, s * sum);
}

// One thread per (row, candidate): t0 = sums in, activations out [rows, cols];
// t1 = residuals [rows, n]; t2 = output weights [cols, n];
// t3 = input-side error terms f' sum_j diff_j w_out_j [rows, cols]; t4 = units.
@compute @workgroup_size(256)
fn candidate_activation(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i >= p.rows * p.cols) {
        return;
    }
    let row = i / p.cols;
    let c = i % p.cols;
    let code = bitcast<u32>(t4[2u * c]);
    let s = t4[2u * c + 1u];
    let limit = 150.0 / s;
    let sum = clamp(t0[i], -limit, limit);
    let y = activate(code, s * sum);
    var err = 0.0;
    for (var j = 0u; j < p.n; j = j + 1u) {
        let o = t2[c * p.n + j];
        err = err + (y * o - t1[row * p.n + j]) * o;
    }
    t0[i] = y;
    t3[i] = candidate_derivative(code, s, sum, y) * err;
}

// One workgroup per candidate: its output gradients 2 sum_p diff a and its score
// sse - sum_p sum_j diff^2 (p.scale = sse). t0 = activations [rows, cols];
// t1 = residuals [rows, n]; t2 = output weights [cols, n]; t3 = output gradients
// [cols, n]; t4 = scores [cols].
@compute @workgroup_size(256)
fn candidate_reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let c = flat_group(wg, nwg);
    let in_range = c < p.cols;
    var fit = 0.0;
    for (var j = 0u; j < p.n; j = j + 1u) {
        var o = 0.0;
        if (in_range) {
            o = t2[c * p.n + j];
        }
        var g = 0.0;
        var q = 0.0;
        for (var row = lid; in_range && row < p.rows; row = row + EW) {
            let a = t0[row * p.cols + c];
            let diff = a * o - t1[row * p.n + j];
            g = g + diff * a;
            q = q + diff * diff;
        }
        g = reduce_sum(lid, g);
        q = reduce_sum(lid, q);
        if (in_range && lid == 0u) {
            t3[c * p.n + j] = 2.0 * g;
        }
        fit = fit + q;
    }
    if (in_range && lid == 0u) {
        t4[c] = p.scale - fit;
    }
}
