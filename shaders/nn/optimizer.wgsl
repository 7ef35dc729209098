// Fused optimizer updates, one thread per weight.
// sgd_update: t0 = w, t1 = g, t2 = velocity.
// rprop_update (FANN's iRPROP-): t0 = w, t1 = g, t2 = previous g, t3 = step.
// adam_update: t0 = w, t1 = g, t2 = m, t3 = v.
// quickprop_update (FANN's): t0 = w, t1 = g, t2 = previous slope, t3 = previous step;
// learning_rate holds epsilon (lr / samples), weight_decay the decay, momentum mu.
// sarprop_update (FANN's, per weight): t0 = w, t1 = g, t2 = previous slope, t3 = step;
// weight_decay holds the factor of w in the slope.

@compute @workgroup_size(256)
fn sgd_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        let v = p.momentum * t2[i] - p.learning_rate * (t1[i] + p.weight_decay * t0[i]);
        t2[i] = v;
        t0[i] = t0[i] + v;
    }
}

@compute @workgroup_size(256)
fn rprop_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        let prev_step = max(t3[i], 0.0001);
        var g = t1[i];
        var next = 0.0;
        if (t2[i] * g >= 0.0) {
            next = min(prev_step * p.increase, p.delta_max);
        } else {
            next = max(prev_step * p.decrease, p.delta_min);
            g = 0.0;
        }
        // FANN moves every weight whose gradient is not positive up, zeroed ones too.
        if (g > 0.0) {
            t0[i] = max(t0[i] - next, -1500.0);
        } else {
            t0[i] = min(t0[i] + next, 1500.0);
        }
        t3[i] = next;
        t2[i] = g;
    }
}

@compute @workgroup_size(256)
fn adam_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        var g = t1[i];
        if (p.decoupled == 0u) {
            g = g + p.weight_decay * t0[i];
        }
        let m = p.beta1 * t2[i] + (1.0 - p.beta1) * g;
        let v = p.beta2 * t3[i] + (1.0 - p.beta2) * g * g;
        t2[i] = m;
        t3[i] = v;
        var update = (m / p.bias_correction1) / (sqrt(v / p.bias_correction2) + p.epsilon);
        if (p.decoupled != 0u) {
            update = update + p.weight_decay * t0[i];
        }
        t0[i] = t0[i] - p.learning_rate * update;
    }
}

@compute @workgroup_size(256)
fn quickprop_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        let eps = p.learning_rate;
        let mu = p.momentum;
        let shrink = mu / (1.0 + mu);
        let slope = -t1[i] + p.weight_decay * t0[i];
        let step = t3[i];
        let prev = t2[i];
        var next = 0.0;
        if (step > 0.001) {
            if (slope > 0.0) {
                next = next + eps * slope;
            }
            if (slope > shrink * prev) {
                next = next + mu * step;
            } else {
                next = next + step * slope / (prev - slope);
            }
        } else if (step < -0.001) {
            if (slope < 0.0) {
                next = next + eps * slope;
            }
            if (slope < shrink * prev) {
                next = next + mu * step;
            } else {
                next = next + step * slope / (prev - slope);
            }
        } else {
            next = next + eps * slope;
        }
        t3[i] = next;
        t0[i] = clamp(t0[i] + next, -1500.0, 1500.0);
        t2[i] = slope;
    }
}

// tessera_tensor::rng::noise_unit: lowbias32 twice, the top 24 bits as a fraction.
fn lowbias32(v: u32) -> u32 {
    var x = v;
    x = x ^ (x >> 16u);
    x = x * 0x7feb352du;
    x = x ^ (x >> 15u);
    x = x * 0x846ca68bu;
    return x ^ (x >> 16u);
}

fn noise_unit(key: u32, index: u32) -> f32 {
    return f32(lowbias32(lowbias32(key) ^ index) >> 8u) / 16777216.0;
}

@compute @workgroup_size(256)
fn sarprop_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i < p.len) {
        let prev_step = max(t3[i], p.delta_min);
        var slope = t1[i] - p.weight_decay * t0[i];
        let same_sign = t2[i] * slope;
        var next = prev_step;
        if (same_sign > 0.0) {
            next = min(prev_step * p.increase, p.delta_max);
            t0[i] = t0[i] + select(-next, next, slope < 0.0);
        } else if (same_sign < 0.0) {
            slope = 0.0;
            if (prev_step < p.step_threshold) {
                next = prev_step * p.decrease + p.noise_scale * noise_unit(p.noise_seed, i);
            } else {
                next = max(prev_step * p.decrease, p.delta_min);
            }
        } else {
            t0[i] = t0[i] + select(-prev_step, prev_step, slope < 0.0);
        }
        t3[i] = next;
        t2[i] = slope;
    }
}
