//! What the runner times: a workload sets up a fixture once (fills a ring, draws
//! matrices), the fixture prepares a verified runner per backend, the runner is timed.

use crate::backends::BenchBackend;

/// One row of a report table.
pub trait Workload {
    /// Stable identifier, used to match baselines.
    fn id(&self) -> String;
    /// Identical shapes in several groups share one measurement (by default a
    /// workload is its own shape).
    fn shape_key(&self) -> String {
        self.id()
    }
    /// The table it belongs to.
    fn group(&self) -> &'static str;
    /// Row title.
    fn label(&self) -> String;
    /// The swept parameter, for charts.
    fn x(&self) -> f64;
    /// What the throughput counts, per second (`env-steps`, `FLOP`, `samples`).
    fn unit(&self) -> &'static str;
    /// Units of `unit` per iteration.
    fn items_per_iteration(&self) -> f64;
    /// The bytes and FLOPs one iteration needs at least, where modelled (the report's
    /// achieved rates on the GPU).
    fn cost(&self) -> Option<crate::cost::Cost> {
        None
    }
    /// Builds the shared inputs (and CPU results to verify against).
    fn fixture(&self) -> Box<dyn Fixture + '_>;
}

/// The inputs of one workload, shared by every backend.
pub trait Fixture {
    /// A runner on `backend`, already checked against the CPU result.
    fn prepare(&self, backend: &BenchBackend) -> Result<Prepared, String>;
}

/// Outcome of [`Fixture::prepare`].
pub enum Prepared {
    /// A verified runner and the bytes of state it holds.
    Ready(Box<dyn Runner>, u64),
    /// The backend does not run this workload (why, for the report).
    NotApplicable(&'static str),
}

/// A workload ready to time on one backend.
pub trait Runner {
    /// One iteration (on a GPU: enqueued).
    fn run_once(&mut self) -> tessera_tensor::Result<()>;
    /// Waits for queued device work.
    fn sync(&mut self) -> tessera_tensor::Result<()>;
    /// Median device time per iteration from timestamp queries, where available.
    fn kernel_time_ns(&mut self, _iters: u32) -> tessera_tensor::Result<Option<f64>> {
        Ok(None)
    }
    /// A remark for the report cell (e.g. the MSE a training run reached).
    fn note(&mut self) -> Option<String> {
        None
    }
}

/// Fails, naming the first, where a value of `got` is farther than `rel` times the
/// largest magnitude of `want` from its counterpart (the CPU's result).
pub fn check_close<T: Copy + Into<f64> + std::fmt::Display>(
    what: &str,
    got: &[T],
    want: &[T],
    rel: f64,
) -> Result<(), String> {
    let scale = want.iter().fold(1e-6f64, |m, &v| m.max(v.into().abs()));
    if got.len() != want.len() {
        return Err(format!(
            "{} {what}s but the CPU gives {}",
            got.len(),
            want.len()
        ));
    }
    match got
        .iter()
        .zip(want)
        .position(|(&a, &b)| (a.into() - b.into()).abs() > rel * scale)
    {
        Some(i) => Err(format!(
            "{what} {i} is {} but the CPU gives {}",
            got[i], want[i]
        )),
        None => Ok(()),
    }
}
