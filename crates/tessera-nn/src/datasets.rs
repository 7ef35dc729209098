//! Small classic problems, generated in code, for examples and tests.

use crate::data::TrainData;

/// XOR with symmetric encoding: inputs and outputs in {-1, 1}.
pub fn xor() -> TrainData {
    TrainData::new(
        2,
        1,
        vec![-1., -1., -1., 1., 1., -1., 1., 1.],
        vec![-1., 1., 1., -1.],
    )
    .expect("valid data")
}

/// Lang and Witbrock's two spirals: 194 points on two interleaved spirals of three
/// turns in the benchmark's original coordinates (radius up to 6.5), output 1 for one
/// spiral and -1 for the other.
pub fn two_spirals() -> TrainData {
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    for i in 0..97 {
        let angle = i as f64 * std::f64::consts::PI / 16.0;
        let radius = 6.5 * (104 - i) as f64 / 104.0;
        let (x, y) = ((radius * angle.sin()) as f32, (radius * angle.cos()) as f32);
        inputs.extend([x, y, -x, -y]);
        outputs.extend([1.0, -1.0]);
    }
    TrainData::new(2, 1, inputs, outputs).expect("valid data")
}

/// `samples` points of `sin(x)` for x evenly spaced in [-pi, pi].
pub fn sine(samples: usize) -> TrainData {
    let xs: Vec<f32> = (0..samples)
        .map(|i| {
            (-std::f64::consts::PI
                + 2.0 * std::f64::consts::PI * i as f64 / (samples.max(2) - 1) as f64)
                as f32
        })
        .collect();
    let ys = xs.iter().map(|x| x.sin()).collect();
    TrainData::new(1, 1, xs, ys).expect("valid data")
}

/// Share of samples whose output has the target's sign (targets in {-1, 1}).
pub fn sign_accuracy(outputs: &[f32], targets: &[f32]) -> f64 {
    let hits = outputs
        .iter()
        .zip(targets)
        .filter(|(o, t)| (**o >= 0.0) == (**t >= 0.0))
        .count();
    hits as f64 / targets.len().max(1) as f64
}
