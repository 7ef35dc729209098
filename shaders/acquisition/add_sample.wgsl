// add_sample: writes the input row at the ring cursor. Intervention counts stay
// incremental (the overwritten row leaves, the new one enters) and the previous-best
// window deque advances, so no step rescans the ring.

// Keeps the monotonic deque of step numbers whose front is the best target among the
// valid samples older than the newest 10. Runs on one thread after the sample is added.
fn advance_prev_best_window(env: u32, s_in: EnvScalars) -> EnvScalars {
    var s = s_in;
    let cap = params.capacity;
    let base = env * cap;
    let oldest = s.step - s.n_samples;
    while (s.window_len > 0u && prev_window[base + s.window_head] < oldest) {
        s.window_head = (s.window_head + 1u) % cap;
        s.window_len = s.window_len - 1u;
    }
    if (s.n_samples > 10u) {
        let entering = s.step - 11u;
        let t_new = targets[base + entering % cap];
        while (s.window_len > 0u) {
            let back = prev_window[base + (s.window_head + s.window_len - 1u) % cap];
            if (gain(t_new, targets[base + back % cap]) >= 0.0) {
                s.window_len = s.window_len - 1u;
            } else {
                break;
            }
        }
        prev_window[base + (s.window_head + s.window_len) % cap] = entering;
        s.window_len = s.window_len + 1u;
    }
    return s;
}

fn stage_add_sample(env: u32, lid: u32) {
    let n = params.n_vars;
    let cap = params.capacity;
    let s = scalars[env];
    let slot = s.write_idx;
    let full = s.n_samples == cap;
    let row = (env * cap + slot) * n;
    for (var j = lid; j < n; j = j + WG) {
        let flag = input_flag(env, j);
        var c = counts[env * n + j];
        if (full && interventions[row + j] != 0.0) {
            c = c - 1u;
        }
        if (flag != 0.0) {
            c = c + 1u;
        }
        counts[env * n + j] = c;
        interventions[row + j] = flag;
        values[row + j] = input_value(env, j);
    }
    sync();
    if (lid == 0u) {
        let outcome = input_target(env);
        targets[env * cap + slot] = outcome;
        var next = s;
        next.write_idx = (slot + 1u) % cap;
        next.n_samples = min(s.n_samples + 1u, cap);
        next.step = s.step + 1u;
        next.best_value = better(s.best_value, outcome);
        scalars[env] = advance_prev_best_window(env, next);
    }
    sync();
}

@compute @workgroup_size(WG)
fn add_sample(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_add_sample(wg.x, lid);
}
