// history_tensor: [T, n_vars, 5] per environment, T = params.history_len. The newest
// min(T, n) samples fill the last rows. Values are standardised per variable with the
// shifted-data algorithm (deviations from the oldest present value), as on the CPU.
// The output may hold only a chunk of the shard's environments: workgroup `chunk_env`
// works on environment `params.env_offset + chunk_env` and writes slot `chunk_env`.

fn stage_history_tensor(chunk_env: u32, lid: u32) {
    let env = params.env_offset + chunk_env;
    let n = params.n_vars;
    let t_len = params.history_len;
    let s = scalars[env];
    let p = min(t_len, s.n_samples);
    let first_row = t_len - p;
    let out = chunk_env * t_len * n * 5u;
    let ring = env * params.capacity * n;
    for (var c = lid; c < first_row * n; c = c + WG) {
        let cell = out + c * 5u;
        history[cell] = 0.0;
        history[cell + 1u] = 0.0;
        history[cell + 2u] = 0.0;
        history[cell + 3u] = 0.0;
        history[cell + 4u] = 1.0;
    }
    let oldest = (s.write_idx + params.capacity - p) % params.capacity;
    for (var j = lid; j < n; j = j + WG) {
        var shift = 0.0;
        var mean = 0.0;
        var spread = 1.0;
        if (p > 0u) {
            shift = values[ring + oldest * n + j];
        }
        if (p > 1u) {
            var sum = 0.0;
            for (var k = 0u; k < p; k = k + 1u) {
                let slot = (oldest + k) % params.capacity;
                sum = sum + (values[ring + slot * n + j] - shift);
            }
            mean = sum / f32(p);
            var sq = 0.0;
            for (var k = 0u; k < p; k = k + 1u) {
                let slot = (oldest + k) % params.capacity;
                let d = values[ring + slot * n + j] - shift - mean;
                sq = sq + d * d;
            }
            spread = sqrt(sq / f32(p)) + 1e-8;
        }
        var last = NO_SELECTION;
        for (var k = 0u; k < p; k = k + 1u) {
            let r = first_row + k;
            let slot = (oldest + k) % params.capacity;
            let v = values[ring + slot * n + j];
            let flag = interventions[ring + slot * n + j];
            if (flag != 0.0) {
                last = r;
            }
            let cell = out + (r * n + j) * 5u;
            if (p > 1u) {
                history[cell] = (v - shift - mean) / spread;
            } else {
                history[cell] = v;
            }
            history[cell + 1u] = select(0.0, 1.0, j == s.target_idx);
            history[cell + 2u] = select(0.0, 1.0, flag != 0.0);
            history[cell + 3u] = marginal[env * n + j];
            var since = 1.0;
            if (last != NO_SELECTION) {
                since = min(f32(r - last) / f32(t_len), 1.0);
            }
            history[cell + 4u] = since;
        }
    }
}

@compute @workgroup_size(WG)
fn history_tensor(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage_history_tensor(wg.x, lid);
}
