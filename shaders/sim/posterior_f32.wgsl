// The f32 prelude of `posterior.wgsl`: every device.
alias real = f32;

// f32's unit roundoff, doubled.
const REAL_EPS: real = 1.2e-7;

fn ln_real(x: real) -> real {
    return log(x);
}
