//! Copies device buffers back to the host: one staging buffer, one submission and one
//! map for all the parts of a read.

use bytemuck::Pod;
use tessera_tensor::error::{Result, TesseraError};

use crate::GpuContext;

/// Reads `bytes` from the start of each buffer in `parts`, concatenated, as `T`.
pub(crate) fn read_buffers<T: Pod>(
    ctx: &GpuContext,
    parts: &[(&wgpu::Buffer, u64)],
) -> Result<Vec<T>> {
    let _span = tracing::debug_span!("readback", parts = parts.len()).entered();
    ctx.check()?;
    let total: u64 = parts.iter().map(|(_, b)| b).sum();
    if total == 0 {
        return Ok(Vec::new());
    }
    let device = &ctx.inner.device;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tessera readback"),
        size: total,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("tessera readback"),
    });
    let mut offset = 0;
    for (buffer, bytes) in parts {
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, *bytes);
        offset += bytes;
    }
    ctx.submit(encoder.finish());
    ctx.count_read_back(total);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.wait_idle()?;
    rx.recv()
        .map_err(|_| TesseraError::Device("readback never completed".into()))?
        .map_err(|e| TesseraError::Device(format!("readback failed: {e}")))?;
    let view = staging
        .get_mapped_range(..)
        .map_err(|e| TesseraError::Device(format!("readback map failed: {e}")))?;
    let out = bytemuck::pod_collect_to_vec(&view);
    drop(view);
    staging.unmap();
    Ok(out)
}
