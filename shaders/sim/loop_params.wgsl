// The closed loop's parameters, shared by loop_prepare.wgsl and loop_outcome.wgsl.
// Mirrors `LoopParams` in tessera-gpu's sim/closed_loop.rs; contract:
// tessera_tensor::sim::closed_loop. Constant for a run: nothing is uploaded per step.

struct LoopParams {
    batch: u32,
    n_vars: u32,
    flag_words: u32,
    // 0: the acquisition state's choice, 1: a random non-target variable.
    selection: u32,
    // 0: fixed, 1: uniform in [lo, hi), 2: the caller's values.
    value_policy: u32,
    // The shard of the acquisition state this dispatch reads the choices of.
    first_env: u32,
    shard_envs: u32,
    // The sampling kernel's grid width and noise key (its SimParams).
    sim_groups_x: u32,
    sim_key0: u32,
    sim_key1: u32,
    choice_key0: u32,
    choice_key1: u32,
    value_key0: u32,
    value_key1: u32,
    lo: f32,
    // The largest f32 below hi: a rounded draw stays inside [lo, hi).
    hi_below: f32,
    hi: f32,
    fixed_value: f32,
    _pad0: u32,
    _pad1: u32,
}

const LOOP_NO_SELECTION: u32 = 0xffffffffu;
// The Philox purpose tag of the policy streams (POLICY_STREAM in the contract).
const LOOP_POLICY_STREAM: u32 = 0x4C4F4F50u;

@group(0) @binding(0) var<uniform> loop_params: LoopParams;
