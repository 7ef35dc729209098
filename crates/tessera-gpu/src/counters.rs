//! Launch counters: what a context's work cost in dispatches, passes, submissions,
//! bind groups, bytes moved and host syncs. On any machine, a software rasteriser
//! included, they show the launch structure a real GPU would pay for.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of a [`GpuContext`](crate::GpuContext), since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchCounters {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Compute passes begun.
    pub passes: u64,
    /// Command buffers submitted to the queue.
    pub submissions: u64,
    /// Bind groups created.
    pub bind_groups: u64,
    /// Bytes written from the host into device buffers.
    pub bytes_uploaded: u64,
    /// Bytes copied back to the host.
    pub bytes_read_back: u64,
    /// Times the host waited for the device.
    pub host_syncs: u64,
}

impl LaunchCounters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            dispatches: self.dispatches - earlier.dispatches,
            passes: self.passes - earlier.passes,
            submissions: self.submissions - earlier.submissions,
            bind_groups: self.bind_groups - earlier.bind_groups,
            bytes_uploaded: self.bytes_uploaded - earlier.bytes_uploaded,
            bytes_read_back: self.bytes_read_back - earlier.bytes_read_back,
            host_syncs: self.host_syncs - earlier.host_syncs,
        }
    }
}

/// The live counters, shared by every clone of a context.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dispatches: AtomicU64,
    pub passes: AtomicU64,
    pub submissions: AtomicU64,
    pub bind_groups: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub bytes_read_back: AtomicU64,
    pub host_syncs: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LaunchCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LaunchCounters {
            dispatches: get(&self.dispatches),
            passes: get(&self.passes),
            submissions: get(&self.submissions),
            bind_groups: get(&self.bind_groups),
            bytes_uploaded: get(&self.bytes_uploaded),
            bytes_read_back: get(&self.bytes_read_back),
            host_syncs: get(&self.host_syncs),
        }
    }
}
