// GEMM: t2 = alpha op(t0) op(t1) + beta t2, row-major, op = optional transpose.
// Each 16x16 workgroup computes a 64x64 tile of C; each thread a 4x4 register tile
// held as four vec4 rows. K advances 16 at a time through workgroup memory, where A
// and B tiles are stored k-major as vec4 so each step is 2 loads and 4 vec4 FMAs
// (unrolled four steps deep). Loads outside the matrices read 0, so any m, n, k works
// (no tile-multiple padding). gemm_vec4 does the global loads and stores 16 bytes at a
// time where the stored rows allow it; gemm takes every other shape.

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

// The calling thread's register tile: four rows of four columns of C.
var<private> acc: array<vec4<f32>, 4>;

// acc += the product of the staged tiles, TILE_K steps unrolled by four.
fn multiply_tiles(ty: u32, tx: u32) {
    for (var kk = 0u; kk < TILE_K; kk = kk + 4u) {
        var a = tile_a[kk * 16u + ty];
        var b = tile_b[kk * 16u + tx];
        acc[0] = acc[0] + a.x * b;
        acc[1] = acc[1] + a.y * b;
        acc[2] = acc[2] + a.z * b;
        acc[3] = acc[3] + a.w * b;
        a = tile_a[(kk + 1u) * 16u + ty];
        b = tile_b[(kk + 1u) * 16u + tx];
        acc[0] = acc[0] + a.x * b;
        acc[1] = acc[1] + a.y * b;
        acc[2] = acc[2] + a.z * b;
        acc[3] = acc[3] + a.w * b;
        a = tile_a[(kk + 2u) * 16u + ty];
        b = tile_b[(kk + 2u) * 16u + tx];
        acc[0] = acc[0] + a.x * b;
        acc[1] = acc[1] + a.y * b;
        acc[2] = acc[2] + a.z * b;
        acc[3] = acc[3] + a.w * b;
        a = tile_a[(kk + 3u) * 16u + ty];
        b = tile_b[(kk + 3u) * 16u + tx];
        acc[0] = acc[0] + a.x * b;
        acc[1] = acc[1] + a.y * b;
        acc[2] = acc[2] + a.z * b;
        acc[3] = acc[3] + a.w * b;
    }
}

// Any shape: scalar, bounds-checked global loads and stores.
@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    acc = array<vec4<f32>, 4>();
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
        multiply_tiles(l.y, l.x);
        workgroupBarrier();
    }
    let r = row0 + l.y * 4u;
    let c = col0 + l.x * 4u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            store_c(r + i, c + j, acc[i][j]);
        }
    }
}

// The same tensors seen as vec4 arrays, for gemm_vec4 only (an entry point binds
// each slot as one type or the other, never both).
@group(0) @binding(1) var<storage, read_write> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;

// Four consecutive values of stored A at (row, col), col a multiple of 4; 0 outside.
fn load_a4(row: u32, col: u32) -> vec4<f32> {
    var rows = p.m;
    var cols = p.k;
    if (p.trans_a != 0u) {
        rows = p.k;
        cols = p.m;
    }
    if (row >= rows || col >= cols) {
        return vec4<f32>(0.0);
    }
    return a4[(row * cols + col) / 4u];
}

fn load_b4(row: u32, col: u32) -> vec4<f32> {
    var rows = p.k;
    var cols = p.n;
    if (p.trans_b != 0u) {
        rows = p.n;
        cols = p.k;
    }
    if (row >= rows || col >= cols) {
        return vec4<f32>(0.0);
    }
    return b4[(row * cols + col) / 4u];
}

// Shapes whose stored rows (of A, B and C) are multiples of 4 floats: one 16-byte
// global load per thread per tile, and 16-byte stores of C. Same tiling as gemm.
@compute @workgroup_size(16, 16)
fn gemm_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    acc = array<vec4<f32>, 4>();
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TILE_K) {
        if (p.trans_a == 0u) {
            // A is [m, k]: four k values of row r, spread over four k-major slots.
            let r = lid / 4u;
            let kq = (lid % 4u) * 4u;
            let v = load_a4(row0 + r, k0 + kq);
            tile_a[kq * 16u + r / 4u][r % 4u] = v.x;
            tile_a[(kq + 1u) * 16u + r / 4u][r % 4u] = v.y;
            tile_a[(kq + 2u) * 16u + r / 4u][r % 4u] = v.z;
            tile_a[(kq + 3u) * 16u + r / 4u][r % 4u] = v.w;
        } else {
            // A is [k, m]: four rows of one k, exactly one slot.
            let kk = lid / 16u;
            let r = (lid % 16u) * 4u;
            tile_a[kk * 16u + r / 4u] = load_a4(k0 + kk, row0 + r);
        }
        if (p.trans_b == 0u) {
            let kk = lid / 16u;
            let c = (lid % 16u) * 4u;
            tile_b[kk * 16u + c / 4u] = load_b4(k0 + kk, col0 + c);
        } else {
            let c = lid / 4u;
            let kq = (lid % 4u) * 4u;
            let v = load_b4(col0 + c, k0 + kq);
            tile_b[kq * 16u + c / 4u][c % 4u] = v.x;
            tile_b[(kq + 1u) * 16u + c / 4u][c % 4u] = v.y;
            tile_b[(kq + 2u) * 16u + c / 4u][c % 4u] = v.z;
            tile_b[(kq + 3u) * 16u + c / 4u][c % 4u] = v.w;
        }
        workgroupBarrier();
        multiply_tiles(l.y, l.x);
        workgroupBarrier();
    }
    let c = col0 + l.x * 4u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + l.y * 4u + i;
        if (r < p.m && c < p.n) {
            let idx = (r * p.n + c) / 4u;
            var v = p.alpha * acc[i];
            if (p.beta != 0.0) {
                v = v + p.beta * c4[idx];
            }
            c4[idx] = v;
        }
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
