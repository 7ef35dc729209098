// optimization_progress: reads the newest (up to) 10 targets and the front of the
// previous-best window; one thread, O(10) work. Result in wg_summary.

fn stage_optimization_progress(env: u32, lid: u32) {
    if (lid == 0u) {
        let s = scalars[env];
        let n = s.n_samples;
        let base = env * params.capacity;
        var from_start = 0.0;
        var recent = 0.0;
        var rate = 0.0;
        var stagnation = 0u;
        if (n > 1u) {
            let t0 = targets[base + chrono_slot(s, 0u)];
            from_start = gain(s.best_value, t0);
            let r = n - min(10u, n);
            var recent_best = targets[base + chrono_slot(s, r)];
            for (var k = r + 1u; k < n; k = k + 1u) {
                recent_best = better(recent_best, targets[base + chrono_slot(s, k)]);
            }
            var prev = t0;
            if (r > 0u) {
                prev = targets[base + prev_window[base + s.window_head] % params.capacity];
            }
            recent = max(0.0, gain(recent_best, prev));
            if (s.step > 0u) {
                rate = from_start / f32(s.step);
            }
        }
        if (n >= 5u) {
            var near_best = 0u;
            for (var k = n - 5u; k < n; k = k + 1u) {
                if (gain(s.best_value, targets[base + chrono_slot(s, k)]) < 1e-6) {
                    near_best = near_best + 1u;
                }
            }
            stagnation = 5u - near_best;
        }
        wg_summary.improvement_from_start = from_start;
        wg_summary.recent_improvement = recent;
        wg_summary.optimization_rate = rate;
        wg_summary.stagnation_steps = stagnation;
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn optimization_progress(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let env = wg.x;
    stage_optimization_progress(env, lid);
    if (lid == 0u) {
        summaries[env].improvement_from_start = wg_summary.improvement_from_start;
        summaries[env].recent_improvement = wg_summary.recent_improvement;
        summaries[env].optimization_rate = wg_summary.optimization_rate;
        summaries[env].stagnation_steps = wg_summary.stagnation_steps;
    }
}
