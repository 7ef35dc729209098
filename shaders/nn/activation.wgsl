// Activations (codes: tessera_tensor::nn::Activation::ALL order), their derivatives,
// the fused bias + activation forward and the activation backward.
// bias_activation: t0 = z (in: X W, out: X W + b), t1 = bias [cols], t2 = y.
// activation_backward: t0 = z, t1 = y, t2 = dy, t3 = dz.

// tanh without the inf/inf of exp-based implementations at large |x|.
fn tanh_safe(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

fn activate(code: u32, u: f32) -> f32 {
    switch code {
        case 0u, 21u: { return u; }
        case 1u: { return select(1.0, 0.0, u < 0.0); }
        case 2u: { return select(1.0, -1.0, u < 0.0); }
        case 3u, 4u: { return 1.0 / (1.0 + exp(-2.0 * u)); }
        case 5u, 6u: { return tanh_safe(u); }
        case 7u: { return exp(-u * u); }
        case 8u: { return 2.0 * exp(-u * u) - 1.0; }
        case 9u: { return (u / 2.0) / (1.0 + abs(u)) + 0.5; }
        case 10u: { return u / (1.0 + abs(u)); }
        case 11u: { return clamp(u, 0.0, 1.0); }
        case 12u: { return clamp(u, -1.0, 1.0); }
        case 13u: { return sin(u); }
        case 14u: { return cos(u); }
        case 15u: { return sin(u) / 2.0 + 0.5; }
        case 16u: { return cos(u) / 2.0 + 0.5; }
        case 17u: { return max(u, 0.0); }
        case 18u: { return select(0.01 * u, u, u > 0.0); }
        case 19u: {
            let c = 0.7978845608028654;
            return 0.5 * u * (1.0 + tanh_safe(c * (u + 0.044715 * u * u * u)));
        }
        case 20u: { return u / (1.0 + exp(-u)); }
        default: { return u; }
    }
}

fn derivative(code: u32, u: f32) -> f32 {
    switch code {
        case 0u: { return 1.0; }
        case 3u, 4u: {
            let y = 1.0 / (1.0 + exp(-2.0 * u));
            return 2.0 * y * (1.0 - y);
        }
        case 5u, 6u: {
            let y = tanh_safe(u);
            return 1.0 - y * y;
        }
        case 7u: { return -2.0 * u * exp(-u * u); }
        case 8u: { return -4.0 * u * exp(-u * u); }
        case 9u: { return 0.5 / ((1.0 + abs(u)) * (1.0 + abs(u))); }
        case 10u: { return 1.0 / ((1.0 + abs(u)) * (1.0 + abs(u))); }
        case 11u: { return select(0.0, 1.0, u >= 0.0 && u <= 1.0); }
        case 12u: { return select(0.0, 1.0, u >= -1.0 && u <= 1.0); }
        case 13u: { return cos(u); }
        case 14u: { return -sin(u); }
        case 15u: { return cos(u) / 2.0; }
        case 16u: { return -sin(u) / 2.0; }
        case 17u: { return select(0.0, 1.0, u > 0.0); }
        case 18u: { return select(0.01, 1.0, u > 0.0); }
        case 19u: {
            let c = 0.7978845608028654;
            let t = tanh_safe(c * (u + 0.044715 * u * u * u));
            return 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * u * u);
        }
        case 20u: {
            let s = 1.0 / (1.0 + exp(-u));
            return s + u * s * (1.0 - s);
        }
        default: { return 0.0; }
    }
}

@compute @workgroup_size(256)
fn bias_activation(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.rows * p.cols) {
        let z = t0[i] + t1[i % p.cols];
        t0[i] = z;
        t2[i] = activate(p.activation, p.steepness * z);
    }
}

// Softmax forward: one workgroup per row.
@compute @workgroup_size(256)
fn bias_softmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wg, nwg);
    let in_range = row < p.rows;
    let base = row * p.cols;
    var m = -3.4e38;
    for (var c = lid; in_range && c < p.cols; c = c + EW) {
        let z = t0[base + c] + t1[c];
        t0[base + c] = z;
        m = max(m, p.steepness * z);
    }
    m = reduce_max(lid, m);
    var s = 0.0;
    for (var c = lid; in_range && c < p.cols; c = c + EW) {
        let e = exp(p.steepness * t0[base + c] - m);
        t2[base + c] = e;
        s = s + e;
    }
    s = reduce_sum(lid, s);
    for (var c = lid; in_range && c < p.cols; c = c + EW) {
        t2[base + c] = t2[base + c] / s;
    }
}

// libfann 2.2's derivative (fann_activation_derived) from the output y and its stored
// sum (s z for a network's neurons, z for a candidate) can differ from the exact one:
// the sigmoids clip y, the linear pieces give s, the Gaussians and trigonometric
// ones apply s once more (tessera_tensor::nn::fann_derivative). Which activations
// take it under the derivative convention `derivative` (Derivative::code: 1 FANN's
// choices, the sigmoids and linear pieces; 2 libfann verbatim, all of them).
fn uses_fann_form(code: u32, derivative: u32) -> bool {
    if (derivative == 2u) {
        return code >= 3u && code <= 16u;
    }
    return derivative == 1u && ((code >= 3u && code <= 6u) || code == 11u || code == 12u);
}

// FANN's derivative, steepness applied, for the codes above.
fn fann_derivative(code: u32, s: f32, y: f32, sum: f32) -> f32 {
    switch code {
        case 3u, 4u: {
            let c = clamp(y, 0.01, 0.99);
            return 2.0 * s * c * (1.0 - c);
        }
        case 5u, 6u: {
            let c = clamp(y, -0.98, 0.98);
            return s * (1.0 - c * c);
        }
        case 7u: { return -2.0 * sum * y * s * s; }
        case 8u: { return -2.0 * sum * (y + 1.0) * s * s; }
        case 9u: { return s / (2.0 * (1.0 + abs(sum)) * (1.0 + abs(sum))); }
        case 10u: { return s / ((1.0 + abs(sum)) * (1.0 + abs(sum))); }
        case 13u: { return s * cos(s * sum); }
        case 14u: { return -s * sin(s * sum); }
        case 15u: { return s * cos(s * sum) / 2.0; }
        case 16u: { return -s * sin(s * sum) / 2.0; }
        default: { return s; }
    }
}

@compute @workgroup_size(256)
fn activation_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        var d = 0.0;
        if (uses_fann_form(p.activation, p.derivative)) {
            d = fann_derivative(p.activation, p.steepness, t1[i], p.steepness * t0[i]);
        } else {
            d = p.steepness * derivative(p.activation, p.steepness * t0[i]);
        }
        t3[i] = t2[i] * d;
    }
}

// Softmax backward, one workgroup per row: dz = s y (dy - sum(dy y)).
@compute @workgroup_size(256)
fn softmax_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wg, nwg);
    let in_range = row < p.rows;
    let base = row * p.cols;
    var dot = 0.0;
    for (var c = lid; in_range && c < p.cols; c = c + EW) {
        dot = dot + t2[base + c] * t1[base + c];
    }
    dot = reduce_sum(lid, dot);
    for (var c = lid; in_range && c < p.cols; c = c + EW) {
        t3[base + c] = p.steepness * t1[base + c] * (t2[base + c] - dot);
    }
}
