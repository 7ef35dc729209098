// GEMM: t2 = alpha op(t0) op(t1) + beta t2, row-major, op = optional transpose.
// Each 16x16 workgroup computes a 64x64 tile of C; each thread a 4x4 register tile
// held as four vec4 rows. K advances 16 at a time through workgroup memory, where A
// and B tiles are stored k-major as vec4 so the inner loop is 2 loads and 4 vec4 FMAs.
// Loads outside the matrices read 0, so any m, n, k works (no tile-multiple padding).

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

// tile_a[kk * 16 + r / 4][r % 4] = op(A)[row0 + r, k0 + kk]; tile_b likewise for columns.
var<workgroup> tile_a: array<vec4<f32>, 256>;
var<workgroup> tile_b: array<vec4<f32>, 256>;

fn op_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (p.trans_a == 0u) {
        return t0[row * p.k + kk];
    }
    return t0[kk * p.m + row];
}

fn op_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (p.trans_b == 0u) {
        return t1[kk * p.n + col];
    }
    return t1[col * p.k + kk];
}

fn store_c(row: u32, col: u32, acc: f32) {
    if (row < p.m && col < p.n) {
        let i = row * p.n + col;
        var v = p.alpha * acc;
        if (p.beta != 0.0) {
            v = v + p.beta * t2[i];
        }
        t2[i] = v;
    }
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TILE_K) {
        // Each thread stages 4 values of each tile, reading along the contiguous
        // dimension of the stored matrix so neighbouring threads read neighbouring words.
        if (p.trans_a == 0u) {
            let r = lid / 4u;
            let kq = (lid % 4u) * 4u;
            for (var j = 0u; j < 4u; j = j + 1u) {
                tile_a[(kq + j) * 16u + r / 4u][r % 4u] = op_a(row0 + r, k0 + kq + j);
            }
        } else {
            let kk = lid / 16u;
            let r = (lid % 16u) * 4u;
            tile_a[kk * 16u + r / 4u] = vec4<f32>(op_a(row0 + r, k0 + kk), op_a(row0 + r + 1u, k0 + kk),
                                                  op_a(row0 + r + 2u, k0 + kk), op_a(row0 + r + 3u, k0 + kk));
        }
        if (p.trans_b == 0u) {
            let kk = lid / 16u;
            let c = (lid % 16u) * 4u;
            tile_b[kk * 16u + c / 4u] = vec4<f32>(op_b(k0 + kk, col0 + c), op_b(k0 + kk, col0 + c + 1u),
                                                  op_b(k0 + kk, col0 + c + 2u), op_b(k0 + kk, col0 + c + 3u));
        } else {
            let c = lid / 4u;
            let kq = (lid % 4u) * 4u;
            for (var j = 0u; j < 4u; j = j + 1u) {
                tile_b[(kq + j) * 16u + c / 4u][c % 4u] = op_b(k0 + kq + j, col0 + c);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk = kk + 1u) {
            let a = tile_a[kk * 16u + l.y];
            let b = tile_b[kk * 16u + l.x];
            acc0 = acc0 + a.x * b;
            acc1 = acc1 + a.y * b;
            acc2 = acc2 + a.z * b;
            acc3 = acc3 + a.w * b;
        }
        workgroupBarrier();
    }
    let r = row0 + l.y * 4u;
    let c = col0 + l.x * 4u;
    for (var j = 0u; j < 4u; j = j + 1u) {
        store_c(r, c + j, acc0[j]);
        store_c(r + 1u, c + j, acc1[j]);
        store_c(r + 2u, c + j, acc2[j]);
        store_c(r + 3u, c + j, acc3[j]);
    }
}

// GEMV fast path for m = 1 (batch 1): one thread per output column; the input row is
// staged through workgroup memory 256 values at a time.
@compute @workgroup_size(256)
fn gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let col = flat_index(wg, nwg, lid);
    var acc = 0.0;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + EW) {
        var x = 0.0;
        if (k0 + lid < p.k) {
            x = t0[k0 + lid];
        }
        red[lid] = x;
        workgroupBarrier();
        if (col < p.n) {
            let count = min(EW, p.k - k0);
            for (var j = 0u; j < count; j = j + 1u) {
                acc = acc + red[j] * op_b(k0 + j, col);
            }
        }
        workgroupBarrier();
    }
    store_c(0u, col, acc);
}
