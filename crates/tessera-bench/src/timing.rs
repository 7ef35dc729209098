//! Timing loops: warm-up, then repeated samples of many iterations each, with the
//! device synchronised at the end of every sample.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Statistics of one measurement, per iteration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    /// Median over the samples, in nanoseconds per iteration.
    pub median_ns: f64,
    /// 25th percentile.
    pub p25_ns: f64,
    /// 75th percentile.
    pub p75_ns: f64,
    /// Fastest sample.
    pub min_ns: f64,
    /// Slowest sample.
    pub max_ns: f64,
    /// Iterations timed together in one sample.
    pub iters_per_sample: u64,
    /// Number of samples.
    pub samples: usize,
}

impl Timing {
    /// Half the interquartile range relative to the median, in percent.
    pub fn spread_pct(&self) -> f64 {
        if self.median_ns > 0.0 {
            50.0 * (self.p75_ns - self.p25_ns) / self.median_ns
        } else {
            0.0
        }
    }
}

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Total time for the timed samples of one measurement.
    pub measure: Duration,
    /// Number of samples.
    pub samples: usize,
}

/// What [`measure`] asks its closure to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run one iteration.
    Run,
    /// Wait for the device to finish queued work.
    Sync,
}

/// Times `step(Action::Run)`, calling `step(Action::Sync)` at the end of every sample,
/// so GPU work queued by the runs is counted.
pub fn measure<E>(
    mut step: impl FnMut(Action) -> Result<(), E>,
    budget: Budget,
) -> Result<Timing, E> {
    // Warm-up: at least 3 iterations and about a tenth of the budget; it also gives
    // the per-iteration estimate that sizes the samples.
    let warm_until = budget.measure / 10;
    let start = Instant::now();
    let mut iters = 0u64;
    while iters < 3 || start.elapsed() < warm_until {
        step(Action::Run)?;
        iters += 1;
        if iters.is_multiple_of(8) {
            step(Action::Sync)?;
        }
    }
    step(Action::Sync)?;
    let per_iter = start.elapsed().as_secs_f64() / iters as f64;
    let per_sample = budget.measure.as_secs_f64() / budget.samples as f64;
    let k = ((per_sample / per_iter.max(1e-9)) as u64).clamp(1, 1 << 24);
    let mut samples = Vec::with_capacity(budget.samples);
    for _ in 0..budget.samples {
        let t = Instant::now();
        for _ in 0..k {
            step(Action::Run)?;
        }
        step(Action::Sync)?;
        samples.push(t.elapsed().as_secs_f64() * 1e9 / k as f64);
    }
    samples.sort_by(f64::total_cmp);
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Ok(Timing {
        median_ns: q(0.5),
        p25_ns: q(0.25),
        p75_ns: q(0.75),
        min_ns: samples[0],
        max_ns: samples[samples.len() - 1],
        iters_per_sample: k,
        samples: samples.len(),
    })
}

/// Formats nanoseconds with a unit that keeps 3 significant digits.
pub fn format_ns(ns: f64) -> String {
    match ns {
        x if x < 1e3 => format!("{x:.0} ns"),
        x if x < 1e6 => format!("{:.3} µs", x / 1e3),
        x if x < 1e9 => format!("{:.3} ms", x / 1e6),
        x => format!("{:.3} s", x / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_busy_loop() {
        let mut x = 0u64;
        let t = measure::<()>(
            |action| {
                if action == Action::Run {
                    for i in 0..1000 {
                        x = std::hint::black_box(x.wrapping_add(i));
                    }
                }
                Ok(())
            },
            Budget {
                measure: Duration::from_millis(20),
                samples: 5,
            },
        )
        .unwrap();
        assert!(t.min_ns <= t.median_ns && t.median_ns <= t.max_ns);
        assert!(t.median_ns > 0.0 && t.samples == 5);
        assert_eq!(format_ns(1500.0), "1.500 µs");
    }
}
