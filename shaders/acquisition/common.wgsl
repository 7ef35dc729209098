// Shared declarations of the acquisition kernels. Every file in this folder is
// concatenated after this one into a single module (see tessera-gpu's
// acquisition/pipelines.rs); each kernel file holds one `stage_*` function and the
// entry point that runs it. One workgroup handles one environment: workgroup_id.x is
// the environment, the WG threads stride over its variables, and workgroup
// reductions combine per-variable terms. Semantics: shared/specs/acquisition.md.

const WG: u32 = 64u;
const NO_SELECTION: u32 = 0xffffffffu;

struct Params {
    n_vars: u32,
    capacity: u32,
    feature_dim: u32,
    policy_width: u32,
    // Words per environment in `inputs` (all four planes).
    input_stride: u32,
    // 0 = Maximize, 1 = Minimize.
    objective: u32,
    history_len: u32,
    // First environment of the shard a chunked kernel (history_tensor) works on.
    env_offset: u32,
    learning_rate: f32,
    exploration_weight: f32,
    // -inf, supplied by the host: WGSL has no infinity literal.
    neg_inf: f32,
    // Environments each plane of `inputs` holds (the largest shard's).
    shard_envs: u32,
}

// Mirrors tessera_tensor::acquisition::EnvScalars.
struct EnvScalars {
    write_idx: u32,
    n_samples: u32,
    step: u32,
    target_idx: u32,
    best_value: f32,
    uncertainty_bits: f32,
    window_head: u32,
    window_len: u32,
}

// Mirrors tessera_tensor::acquisition::StepSummary.
struct StepSummary {
    improvement_from_start: f32,
    recent_improvement: f32,
    optimization_rate: f32,
    stagnation_steps: u32,
    target_coverage_rate: f32,
    intervention_diversity: f32,
    unexplored_variables: f32,
    selected: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> scalars: array<EnvScalars>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> interventions: array<f32>;
@group(0) @binding(4) var<storage, read_write> targets: array<f32>;
@group(0) @binding(5) var<storage, read_write> prev_window: array<u32>;
@group(0) @binding(6) var<storage, read_write> features: array<f32>;
@group(0) @binding(7) var<storage, read_write> marginal: array<f32>;
@group(0) @binding(8) var<storage, read_write> confidence: array<f32>;
@group(0) @binding(9) var<storage, read_write> counts: array<u32>;
// A step's inputs in four planes of E = params.shard_envs environments: values [E, n]
// (f32 bits), intervention flags [E, w] as bits (w = flag_words(), variable j in bit
// j % 32 of word j / 32), targets [E] (f32 bits) and observed features [E, n, fd]
// (f32 bits). set_posterior puts the marginals in the values plane and the entropies
// in the targets plane. Read as u32 so the flag words pass through untouched.
@group(0) @binding(10) var<storage, read> inputs: array<u32>;
@group(0) @binding(11) var<storage, read_write> summaries: array<StepSummary>;
@group(0) @binding(12) var<storage, read_write> policy: array<f32>;
@group(0) @binding(13) var<storage, read_write> scores: array<f32>;
@group(0) @binding(14) var<storage, read_write> history: array<f32>;

fn flag_words() -> u32 {
    return (params.n_vars + 31u) / 32u;
}

fn input_value(env: u32, j: u32) -> f32 {
    return bitcast<f32>(inputs[env * params.n_vars + j]);
}

fn input_flag(env: u32, j: u32) -> f32 {
    let word = inputs[params.shard_envs * params.n_vars + env * flag_words() + j / 32u];
    return f32((word >> (j % 32u)) & 1u);
}

fn input_target(env: u32) -> f32 {
    return bitcast<f32>(inputs[params.shard_envs * (params.n_vars + flag_words()) + env]);
}

fn input_observed(env: u32, k: u32) -> f32 {
    let plane = params.shard_envs * (params.n_vars + flag_words() + 1u);
    return bitcast<f32>(inputs[plane + env * params.n_vars * params.feature_dim + k]);
}

var<workgroup> scratch_f: array<f32, WG>;
var<workgroup> scratch_u: array<u32, WG>;
var<workgroup> wg_summary: StepSummary;

// Makes storage writes of the workgroup visible to all of its threads.
fn sync() {
    storageBarrier();
    workgroupBarrier();
}

fn gain(a: f32, b: f32) -> f32 {
    if (params.objective == 0u) {
        return a - b;
    }
    return b - a;
}

fn better(a: f32, b: f32) -> f32 {
    if (params.objective == 0u) {
        return max(a, b);
    }
    return min(a, b);
}

// Ring slot of the k-th oldest of the n valid samples.
fn chrono_slot(s: EnvScalars, k: u32) -> u32 {
    return (s.write_idx + params.capacity - s.n_samples + k) % params.capacity;
}

// Sum over the workgroup. Every thread must call it (uniform control flow).
fn reduce_sum_f32(lid: u32, x: f32) -> f32 {
    scratch_f[lid] = x;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            scratch_f[lid] = scratch_f[lid] + scratch_f[lid + stride];
        }
        workgroupBarrier();
    }
    let total = scratch_f[0];
    workgroupBarrier();
    return total;
}

fn reduce_sum_u32(lid: u32, x: u32) -> u32 {
    scratch_u[lid] = x;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            scratch_u[lid] = scratch_u[lid] + scratch_u[lid + stride];
        }
        workgroupBarrier();
    }
    let total = scratch_u[0];
    workgroupBarrier();
    return total;
}
