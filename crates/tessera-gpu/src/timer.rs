//! Kernel timing with GPU timestamp queries, for adapters that support them: each
//! timed dispatch writes a timestamp at the start and end of its compute pass.

use std::cell::Cell;

use tessera_tensor::error::Result;

use crate::GpuContext;
use crate::readback::read_buffers;

/// Timestamp pairs for up to `capacity` dispatches.
pub(crate) struct KernelTimer {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    capacity: u32,
    used: Cell<u32>,
}

impl KernelTimer {
    /// `None` for 0 dispatches (timing off), or when the device was opened without
    /// `TIMESTAMP_QUERY`.
    pub(crate) fn new(ctx: &GpuContext, dispatches: u32) -> Option<Self> {
        if dispatches == 0 || !ctx.supports_timestamps() {
            return None;
        }
        let capacity = dispatches.clamp(1, wgpu::QUERY_SET_MAX_QUERIES / 2);
        let device = ctx.device();
        Some(Self {
            query_set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("tessera kernel timer"),
                ty: wgpu::QueryType::Timestamp,
                count: capacity * 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera kernel timer"),
                size: capacity as u64 * 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            capacity,
            used: Cell::new(0),
        })
    }

    /// Timestamp writes for the next dispatch, or `None` once the timer is full.
    pub(crate) fn next_writes(&self) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let i = self.used.get();
        (i < self.capacity).then(|| {
            self.used.set(i + 1);
            wgpu::ComputePassTimestampWrites {
                query_set: &self.query_set,
                beginning_of_pass_write_index: Some(2 * i),
                end_of_pass_write_index: Some(2 * i + 1),
            }
        })
    }

    /// Durations of the timed dispatches so far, in nanoseconds; resets the timer.
    pub(crate) fn take(&self, ctx: &GpuContext) -> Result<Vec<f64>> {
        let used = self.used.replace(0);
        if used == 0 {
            return Ok(Vec::new());
        }
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        encoder.resolve_query_set(&self.query_set, 0..2 * used, &self.resolve, 0);
        ctx.submit(encoder.finish());
        let ticks: Vec<u64> = read_buffers(ctx, &[(&self.resolve, used as u64 * 16)])?;
        let period = ctx.queue().get_timestamp_period() as f64;
        Ok(ticks
            .chunks_exact(2)
            .map(|p| p[1].saturating_sub(p[0]) as f64 * period)
            .collect())
    }
}
