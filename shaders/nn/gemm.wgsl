// GEMM: t2 = alpha op(t0) op(t1) + beta t2, row-major, op = optional transpose.
// Loads outside the matrices read 0, so any m, n, k works (no tile-multiple padding).
//
// gemm_128 (large products): each 16x16 workgroup computes a 128x128 tile of C, each
// thread an 8x8 register tile (rows ty*4.. and 64+ty*4.., columns likewise), so one
// k step is 4 vec4 workgroup loads for 64 FMAs. K advances 8 at a time through two
// workgroup buffers: the next tile's global loads are issued before the current
// tile's FMAs and stored to the other buffer after them, one barrier per step. Reads
// of the tiles are conflict-free: a row of threads reads one A vec4 (broadcast) and
// consecutive B vec4s.
//
// gemm and gemm_vec4 (the rest): each 16x16 workgroup computes a 64x64 tile, each
// thread 4x4, K 16 at a time. With p.splits > 1 the K range is split over
// workgroup_id.z in chunks of p.k_chunk (a multiple of 16), each writing its raw
// partial product to t3[z, m, n], and gemm_reduce sums them into C: small-m products
// (an MLP step) then fill the GPU. gemm_vec4 does the global loads and stores 16
// bytes at a time where the stored rows allow it; gemm takes every other shape.

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

// The K range of split z: [begin, end).
fn k_range(z: u32) -> vec2<u32> {
    if (p.splits <= 1u) {
        return vec2<u32>(0u, p.k);
    }
    let begin = z * p.k_chunk;
    return vec2<u32>(begin, min(p.k, begin + p.k_chunk));
}

// Stores the raw partial product of split z for C[row, col].
fn store_partial(z: u32, row: u32, col: u32, value: f32) {
    if (row < p.m && col < p.n) {
        t3[(z * p.m + row) * p.n + col] = value;
    }
}

// Stores the thread's result for C[row, col]: into C, or into split z's partials.
fn store_split(z: u32, row: u32, col: u32, value: f32) {
    if (p.splits <= 1u) {
        store_c(row, col, value);
    } else {
        store_partial(z, row, col, value);
    }
}

// Any shape: scalar, bounds-checked global loads and stores.
@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let ks = k_range(wg.z);
    acc = array<vec4<f32>, 4>();
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + TILE_K) {
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
            store_split(wg.z, r + i, c + j, acc[i][j]);
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
    let ks = k_range(wg.z);
    acc = array<vec4<f32>, 4>();
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + TILE_K) {
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
    if (p.splits > 1u) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                store_partial(wg.z, row0 + l.y * 4u + i, c + j, acc[i][j]);
            }
        }
        return;
    }
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

// C = alpha * (sum of the p.splits partials in t3) + beta C, one thread per element.
@compute @workgroup_size(256)
fn gemm_reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    let mn = p.m * p.n;
    if (i < mn) {
        var sum = 0.0;
        for (var z = 0u; z < p.splits; z = z + 1u) {
            sum = sum + t3[z * mn + i];
        }
        var v = p.alpha * sum;
        if (p.beta != 0.0) {
            v = v + p.beta * t2[i];
        }
        t2[i] = v;
    }
}

const BIG: u32 = 128u;
const BIG_K: u32 = 8u;

// big_a[buffer * 8 + kk][r / 4][r % 4] = op(A)[row0 + r, k0 + kk]; big_b likewise.
var<workgroup> big_a: array<array<vec4<f32>, 32>, 16>;
var<workgroup> big_b: array<array<vec4<f32>, 32>, 16>;
// The thread's 8x8 results: row i (0..8) in big_acc[2i] (columns 0..4 of its first
// column group) and big_acc[2i + 1] (its second, 64 columns on).
var<private> big_acc: array<vec4<f32>, 16>;

// The four elements of the A and B tiles at k0 this thread stages, read from global
// memory with consecutive threads on consecutive words of the stored matrix.
fn big_load(row0: u32, col0: u32, k0: u32, lid: u32) -> array<f32, 8> {
    var v: array<f32, 8>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = lid + 256u * j;
        if (p.trans_a == 0u) {
            v[j] = op_a(row0 + e / BIG_K, k0 + e % BIG_K);
        } else {
            v[j] = op_a(row0 + e % BIG, k0 + e / BIG);
        }
        if (p.trans_b == 0u) {
            v[4u + j] = op_b(k0 + e / BIG, col0 + e % BIG);
        } else {
            v[4u + j] = op_b(k0 + e % BIG_K, col0 + e / BIG_K);
        }
    }
    return v;
}

fn big_store(buffer: u32, lid: u32, v: array<f32, 8>) {
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = lid + 256u * j;
        var r = e % BIG;
        var kk = e / BIG;
        if (p.trans_a == 0u) {
            r = e / BIG_K;
            kk = e % BIG_K;
        }
        big_a[buffer * BIG_K + kk][r / 4u][r % 4u] = v[j];
        var c = e % BIG;
        var kb = e / BIG;
        if (p.trans_b != 0u) {
            c = e / BIG_K;
            kb = e % BIG_K;
        }
        big_b[buffer * BIG_K + kb][c / 4u][c % 4u] = v[4u + j];
    }
}

// big_acc += the staged tiles of `buffer`.
fn big_multiply(buffer: u32, tx: u32, ty: u32) {
    for (var kk = 0u; kk < BIG_K; kk = kk + 1u) {
        let slot = buffer * BIG_K + kk;
        let a0 = big_a[slot][ty];
        let a1 = big_a[slot][ty + 16u];
        let b0 = big_b[slot][tx];
        let b1 = big_b[slot][tx + 16u];
        for (var i = 0u; i < 4u; i = i + 1u) {
            big_acc[2u * i] = big_acc[2u * i] + a0[i] * b0;
            big_acc[2u * i + 1u] = big_acc[2u * i + 1u] + a0[i] * b1;
            big_acc[2u * i + 8u] = big_acc[2u * i + 8u] + a1[i] * b0;
            big_acc[2u * i + 9u] = big_acc[2u * i + 9u] + a1[i] * b1;
        }
    }
}

@compute @workgroup_size(16, 16)
fn gemm_128(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * BIG;
    let col0 = wg.x * BIG;
    big_acc = array<vec4<f32>, 16>();
    let steps = (p.k + BIG_K - 1u) / BIG_K;
    big_store(0u, lid, big_load(row0, col0, 0u, lid));
    workgroupBarrier();
    for (var s = 0u; s < steps; s = s + 1u) {
        let current = s % 2u;
        let more = s + 1u < steps;
        var next: array<f32, 8>;
        if (more) {
            next = big_load(row0, col0, (s + 1u) * BIG_K, lid);
        }
        big_multiply(current, l.x, l.y);
        if (more) {
            big_store(1u - current, lid, next);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 8u; i = i + 1u) {
        // Rows 0..4 are ty*4 + i, rows 4..8 are 64 + ty*4 + (i - 4).
        let r = row0 + (i / 4u) * 64u + l.y * 4u + i % 4u;
        let c = col0 + l.x * 4u;
        for (var j = 0u; j < 4u; j = j + 1u) {
            store_c(r, c + j, big_acc[2u * i][j]);
            store_c(r, c + 64u + j, big_acc[2u * i + 1u][j]);
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
