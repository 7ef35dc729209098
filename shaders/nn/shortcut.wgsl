// Shortcut networks (tessera_tensor::nn::shortcut): one growing value matrix
// V [rows, width], width = inputs + 1 + hidden; units (hidden, then outputs) read a
// prefix of V's columns. Shapes: rows, k = inputs, m = hidden, n = outputs.
// Units packed four words each: activation code (bits), steepness, fan-in (bits),
// first weight (bits).

fn unit_code(u: u32) -> u32 {
    return bitcast<u32>(t5[4u * u]);
}

fn unit_steepness(u: u32) -> f32 {
    return t5[4u * u + 1u];
}

fn unit_fan_in(u: u32) -> u32 {
    return bitcast<u32>(t5[4u * u + 2u]);
}

fn unit_offset(u: u32) -> u32 {
    return bitcast<u32>(t5[4u * u + 3u]);
}

// One thread per row: t0 = weights, t1 = x [rows, k], t2 = V [rows, width],
// t3 = sums [rows, units], t4 = y [rows, n], t5 = units.
@compute @workgroup_size(256)
fn shortcut_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = flat_index(wg, nwg, lid);
    if (row >= p.rows) {
        return;
    }
    let width = p.k + 1u + p.m;
    let units = p.m + p.n;
    let v0 = row * width;
    for (var i = 0u; i < p.k; i = i + 1u) {
        t2[v0 + i] = t1[row * p.k + i];
    }
    t2[v0 + p.k] = 1.0;
    for (var u = 0u; u < units; u = u + 1u) {
        let s = unit_steepness(u);
        let off = unit_offset(u);
        var sum = 0.0;
        for (var i = 0u; i < unit_fan_in(u); i = i + 1u) {
            sum = sum + t2[v0 + i] * t0[off + i];
        }
        if (u < p.m) {
            // FANN's clamp; no limit for a zero steepness.
            if (s != 0.0) {
                let limit = 150.0 / abs(s);
                sum = clamp(sum, -limit, limit);
            }
            t2[v0 + p.k + 1u + u] = activate(unit_code(u), s * sum);
        } else {
            t4[row * p.n + u - p.m] = activate(unit_code(u), s * sum);
        }
        t3[row * units + u] = sum;
    }
}

// One thread per row, from the last unit to the first: t0 = weights, t1 = V,
// t2 = sums, t3 = dy [rows, n], t4 = deltas [rows, units] (the hidden units' upstream
// sums gather there first), t5 = units. p.derivative: Derivative::code.
@compute @workgroup_size(256)
fn shortcut_delta(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let row = flat_index(wg, nwg, lid);
    if (row >= p.rows) {
        return;
    }
    let width = p.k + 1u + p.m;
    let units = p.m + p.n;
    let d0 = row * units;
    for (var u = 0u; u < p.m; u = u + 1u) {
        t4[d0 + u] = 0.0;
    }
    for (var step = 0u; step < units; step = step + 1u) {
        let u = units - 1u - step;
        let code = unit_code(u);
        let s = unit_steepness(u);
        let sum = t2[d0 + u];
        var upstream = 0.0;
        var y = 0.0;
        if (u < p.m) {
            upstream = t4[d0 + u];
            y = t1[row * width + p.k + 1u + u];
        } else {
            upstream = t3[row * p.n + u - p.m];
            y = activate(code, s * sum);
        }
        var d = s * derivative(code, s * sum);
        if (uses_fann_form(code, p.derivative)) {
            d = fann_derivative(code, s, y, s * sum);
        }
        let delta = upstream * d;
        t4[d0 + u] = delta;
        let off = unit_offset(u);
        for (var i = p.k + 1u; i < unit_fan_in(u); i = i + 1u) {
            let h = d0 + i - p.k - 1u;
            t4[h] = t4[h] + delta * t0[off + i];
        }
    }
}

// One workgroup per (unit, column) pair, u = group / width, i = group % width: the
// weight gradient sum_p delta_u[p] V[p, i] into t2[offset_u + i] (added to it when
// p.beta is 1). t0 = deltas, t1 = V, t2 = grad, t5 = units.
@compute @workgroup_size(256)
fn shortcut_gradient(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let width = p.k + 1u + p.m;
    let units = p.m + p.n;
    let group = flat_group(wg, nwg);
    let u = group / width;
    let i = group % width;
    let valid = u < units && i < unit_fan_in(min(u, units - 1u));
    var g = 0.0;
    for (var row = lid; valid && row < p.rows; row = row + EW) {
        g = g + t0[row * units + u] * t1[row * width + i];
    }
    g = reduce_sum(lid, g);
    if (valid && lid == 0u) {
        let at = unit_offset(u) + i;
        t2[at] = p.beta * t2[at] + g;
    }
}
