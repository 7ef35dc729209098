// Exact top-k similarity search (contract: docs/search.md, `VectorIndex`).
//
// The index sits in panels of 64 vectors, transposed: word t of lane j of a panel is
// at `panel * words * 64 + t * 64 + j`, a word being one f32 or two bf16 values (the
// lower dimension in the low half). Queries are packed the same way per row.
//
// `select_blocks`: workgroup (x = block of 1024 vectors in this round, y = group of 4
// queries). Each invocation scores 4 vectors against the 4 queries, so the score
// matrix exists only as 4 x 1024 keys per workgroup. For each query the workgroup
// sorts its 1024 keys (bitonic, best first) and writes the best `keep` as one list.
// `merge_lists`: workgroup (x = pair of lists, y = query) merges two sorted lists into
// the best `keep` of both (bitonic merge). The host repeats it until one list is left
// per query, then `finish` copies the best k of each query out.
//
// Keys rank higher-is-better: q.x, or 2 q.x - |x|^2 under L2. Ties go to the lower id;
// padding is (-inf, 0xffffffff), behind everything.

const SEARCH_WORKGROUP: u32 = 256u;
const SEARCH_BLOCK: u32 = 1024u;
const SEARCH_PANEL: u32 = 64u;
const SEARCH_QUERIES: u32 = 4u;
const SEARCH_SORT: u32 = 2048u;

struct SearchParams {
    // u32 words per vector (dim for f32, ceil(dim / 2) for bf16).
    words: u32,
    // 1 for bf16 words.
    bf16: u32,
    // 1 under L2 (keys subtract the norm).
    l2: u32,
    // Queries of this batch, and the first one's row in `queries`.
    queries: u32,
    query_base: u32,
    // Valid vectors of the chunk and the id of its first.
    len: u32,
    id_base: u32,
    // First block of this round in the chunk, and the list slot select writes first.
    block_base: u32,
    slot_base: u32,
    // Lists per query that `merge_lists` reads.
    lists: u32,
    // List slots per query in the list buffers.
    slots: u32,
    // Candidates per list (a power of two, at least k).
    keep: u32,
    // Results per query.
    k: u32,
    // First result row of this batch.
    result_base: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: SearchParams;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read> queries: array<u32>;
@group(0) @binding(4) var<storage, read_write> src: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read_write> dst: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> results: array<vec2<u32>>;

var<workgroup> sort_keys: array<f32, SEARCH_SORT>;
var<workgroup> sort_ids: array<u32, SEARCH_SORT>;

fn better(ka: f32, ia: u32, kb: f32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

// Orders elements i < j best first (or worst first when `best_first` is false).
fn compare_exchange(i: u32, j: u32, best_first: bool) {
    let ki = sort_keys[i];
    let ii = sort_ids[i];
    let kj = sort_keys[j];
    let ij = sort_ids[j];
    if better(kj, ij, ki, ii) == best_first {
        sort_keys[i] = kj;
        sort_ids[i] = ij;
        sort_keys[j] = ki;
        sort_ids[j] = ii;
    }
}

// Sorts the first n (a power of two) workgroup elements best first.
fn bitonic_sort(lid: u32, n: u32) {
    for (var size = 2u; size <= n; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var e = lid; e < n / 2u; e += SEARCH_WORKGROUP) {
                let i = (e / stride) * 2u * stride + e % stride;
                compare_exchange(i, i + stride, (i & size) == 0u);
            }
            workgroupBarrier();
        }
    }
}

// Sorts a bitonic sequence of n elements best first.
fn bitonic_merge(lid: u32, n: u32) {
    for (var stride = n >> 1u; stride > 0u; stride >>= 1u) {
        for (var e = lid; e < n / 2u; e += SEARCH_WORKGROUP) {
            let i = (e / stride) * 2u * stride + e % stride;
            compare_exchange(i, i + stride, true);
        }
        workgroupBarrier();
    }
}

fn unpack_low(w: u32) -> f32 {
    return bitcast<f32>(w << 16u);
}

fn unpack_high(w: u32) -> f32 {
    return bitcast<f32>(w & 0xffff0000u);
}

fn list_index(query: u32, slot: u32, i: u32) -> u32 {
    return (query * params.slots + slot) * params.keep + i;
}

@compute @workgroup_size(256)
fn select_blocks(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let lid = lid3.x;
    let words = params.words;
    let block = params.block_base + wid.x;
    let group = wid.y * SEARCH_QUERIES;
    // Query rows, clamped so that a short last group still reads in bounds.
    var rows: array<u32, 4>;
    for (var r = 0u; r < SEARCH_QUERIES; r++) {
        rows[r] = (params.query_base + min(group + r, params.queries - 1u)) * words;
    }
    var at: array<u32, 4>;
    for (var c = 0u; c < 4u; c++) {
        let v = block * SEARCH_BLOCK + c * SEARCH_WORKGROUP + lid;
        at[c] = (v / SEARCH_PANEL) * words * SEARCH_PANEL + v % SEARCH_PANEL;
    }
    var acc: array<array<f32, 4>, 4>;
    if params.bf16 == 0u {
        for (var t = 0u; t < words; t++) {
            var x: array<f32, 4>;
            for (var c = 0u; c < 4u; c++) {
                x[c] = bitcast<f32>(data[at[c] + t * SEARCH_PANEL]);
            }
            for (var r = 0u; r < SEARCH_QUERIES; r++) {
                let q = bitcast<f32>(queries[rows[r] + t]);
                for (var c = 0u; c < 4u; c++) {
                    acc[r][c] = fma(q, x[c], acc[r][c]);
                }
            }
        }
    } else {
        for (var t = 0u; t < words; t++) {
            var x0: array<f32, 4>;
            var x1: array<f32, 4>;
            for (var c = 0u; c < 4u; c++) {
                let w = data[at[c] + t * SEARCH_PANEL];
                x0[c] = unpack_low(w);
                x1[c] = unpack_high(w);
            }
            for (var r = 0u; r < SEARCH_QUERIES; r++) {
                let w = queries[rows[r] + t];
                let q0 = unpack_low(w);
                let q1 = unpack_high(w);
                for (var c = 0u; c < 4u; c++) {
                    acc[r][c] = fma(q1, x1[c], fma(q0, x0[c], acc[r][c]));
                }
            }
        }
    }
    for (var r = 0u; r < SEARCH_QUERIES; r++) {
        let query = group + r;
        if query >= params.queries {
            break;
        }
        for (var c = 0u; c < 4u; c++) {
            let e = c * SEARCH_WORKGROUP + lid;
            let v = block * SEARCH_BLOCK + e;
            var key = acc[r][c];
            if params.l2 != 0u {
                key = 2.0 * key - norms[min(v, params.len - 1u)];
            }
            if v < params.len {
                sort_keys[e] = key;
                sort_ids[e] = params.id_base + v;
            } else {
                sort_keys[e] = bitcast<f32>(0xff800000u);
                sort_ids[e] = 0xffffffffu;
            }
        }
        workgroupBarrier();
        bitonic_sort(lid, SEARCH_BLOCK);
        for (var i = lid; i < params.keep; i += SEARCH_WORKGROUP) {
            dst[list_index(query, params.slot_base + wid.x, i)] =
                vec2<u32>(bitcast<u32>(sort_keys[i]), sort_ids[i]);
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn merge_lists(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let lid = lid3.x;
    let keep = params.keep;
    let query = wid.y;
    let first = 2u * wid.x;
    let pair = first + 1u < params.lists;
    for (var i = lid; i < keep; i += SEARCH_WORKGROUP) {
        let a = src[list_index(query, first, i)];
        sort_keys[i] = bitcast<f32>(a.x);
        sort_ids[i] = a.y;
        // The second list reversed, so the two form one bitonic sequence.
        var b = vec2<u32>(0xff800000u, 0xffffffffu);
        if pair {
            b = src[list_index(query, first + 1u, keep - 1u - i)];
        }
        sort_keys[keep + i] = bitcast<f32>(b.x);
        sort_ids[keep + i] = b.y;
    }
    workgroupBarrier();
    bitonic_merge(lid, 2u * keep);
    for (var i = lid; i < keep; i += SEARCH_WORKGROUP) {
        dst[list_index(query, wid.x, i)] = vec2<u32>(bitcast<u32>(sort_keys[i]), sort_ids[i]);
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if e >= params.queries * params.k {
        return;
    }
    let query = e / params.k;
    results[(params.result_base + query) * params.k + e % params.k] =
        src[list_index(query, 0u, e % params.k)];
}
