//! The optimizer updates, one weight at a time: `#[inline(always)]` functions of one
//! tuple argument, run through [`crate::dispatch::Kernel`] so they compile for the dispatched
//! instruction set.

use tessera_tensor::nn::{AdamParams, QuickpropParams, RpropParams, SarpropParams, SgdParams};

use tessera_tensor::rng::noise_unit;

/// SGD with momentum and coupled weight decay.
#[inline(always)]
pub(super) fn sgd((w, g, v, p): (&mut [f32], &[f32], &mut [f32], SgdParams)) {
    for ((wi, &gi), vi) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *vi = p.momentum * *vi - p.learning_rate * (gi + p.weight_decay * *wi);
        *wi += *vi;
    }
}

/// FANN 2.2's iRPROP-.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn rprop(
    (w, g, prev_g, step, p): (&mut [f32], &[f32], &mut [f32], &mut [f32], RpropParams),
) {
    for (((wi, &gi), pg), st) in w
        .iter_mut()
        .zip(g)
        .zip(prev_g.iter_mut())
        .zip(step.iter_mut())
    {
        let prev_step = st.max(0.0001);
        let mut gi = gi;
        let next = if *pg * gi >= 0.0 {
            (prev_step * p.increase_factor).min(p.delta_max)
        } else {
            gi = 0.0;
            (prev_step * p.decrease_factor).max(p.delta_min)
        };
        // FANN moves every weight whose gradient is not positive up.
        if gi > 0.0 {
            *wi = (*wi - next).max(-1500.0);
        } else {
            *wi = (*wi + next).min(1500.0);
        }
        *st = next;
        *pg = gi;
    }
}

/// FANN 2.2's QUICKPROP.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn quickprop(
    (w, g, prev_slope, prev_step, p): (&mut [f32], &[f32], &mut [f32], &mut [f32], QuickpropParams),
) {
    let shrink = p.mu / (1.0 + p.mu);
    for (((wi, &gi), ps), st) in w
        .iter_mut()
        .zip(g)
        .zip(prev_slope.iter_mut())
        .zip(prev_step.iter_mut())
    {
        let slope = -gi + p.decay * *wi;
        let (step, prev) = (*st, *ps);
        let mut next = 0.0;
        if step > 0.001 {
            if slope > 0.0 {
                next += p.epsilon * slope;
            }
            next += if slope > shrink * prev {
                p.mu * step
            } else {
                step * slope / (prev - slope)
            };
        } else if step < -0.001 {
            if slope < 0.0 {
                next += p.epsilon * slope;
            }
            next += if slope < shrink * prev {
                p.mu * step
            } else {
                step * slope / (prev - slope)
            };
        } else {
            next += p.epsilon * slope;
        }
        *st = next;
        *wi = (*wi + next).clamp(-1500.0, 1500.0);
        *ps = slope;
    }
}

/// FANN 2.2's SARPROP, per weight (`tessera_tensor::nn::SarpropParams`).
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn sarprop(
    (w, g, prev_slope, step, p): (&mut [f32], &[f32], &mut [f32], &mut [f32], SarpropParams),
) {
    for (i, (((wi, &gi), ps), st)) in w
        .iter_mut()
        .zip(g)
        .zip(prev_slope.iter_mut())
        .zip(step.iter_mut())
        .enumerate()
    {
        let prev_step = st.max(p.delta_min);
        let mut slope = gi - p.weight_decay * *wi;
        let same_sign = *ps * slope;
        let next = if same_sign > 0.0 {
            let next = (prev_step * p.increase_factor).min(p.delta_max);
            *wi += if slope < 0.0 { next } else { -next };
            next
        } else if same_sign < 0.0 {
            slope = 0.0;
            if prev_step < p.step_threshold {
                let u = noise_unit(p.noise_seed, i as u32);
                prev_step * p.decrease_factor + p.noise_scale * u
            } else {
                (prev_step * p.decrease_factor).max(p.delta_min)
            }
        } else {
            *wi += if slope < 0.0 { prev_step } else { -prev_step };
            prev_step
        };
        *st = next;
        *ps = slope;
    }
}

/// Adam, or AdamW; `c1`, `c2` are the bias corrections of this step.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn adam(
    (w, g, m, v, [c1, c2], p): (
        &mut [f32],
        &[f32],
        &mut [f32],
        &mut [f32],
        [f32; 2],
        AdamParams,
    ),
) {
    for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let gi = if p.decoupled {
            gi
        } else {
            gi + p.weight_decay * *wi
        };
        *mi = p.beta1 * *mi + (1.0 - p.beta1) * gi;
        *vi = p.beta2 * *vi + (1.0 - p.beta2) * gi * gi;
        let update = (*mi / c1) / ((*vi / c2).sqrt() + p.epsilon);
        let decay = if p.decoupled {
            p.weight_decay * *wi
        } else {
            0.0
        };
        *wi -= p.learning_rate * (update + decay);
    }
}
