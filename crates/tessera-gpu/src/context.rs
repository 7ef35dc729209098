//! The GPU context: adapter and device selection, error and loss tracking, and the
//! per-device pipeline cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tessera_tensor::error::{Result, TesseraError};

use crate::counters::{Counters, LaunchCounters};
use crate::kernels::KernelSet;

/// A wgpu device and queue with what tessera caches on them. Cheap to clone: clones
/// share the device, the queue and the compiled pipelines.
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    lost: Arc<AtomicBool>,
    last_error: Arc<Mutex<Option<String>>>,
    /// Compiled kernels per family, built on first use.
    pub acquisition: OnceLock<Result<KernelSet>>,
    pub nn: OnceLock<Result<KernelSet>>,
    pub sim: OnceLock<Result<KernelSet>>,
    pub posterior: OnceLock<Result<KernelSet>>,
    pub posterior_f64: OnceLock<Result<KernelSet>>,
    pub loop_prepare: OnceLock<Result<KernelSet>>,
    pub loop_outcome: OnceLock<Result<KernelSet>>,
    pub voi: OnceLock<Result<KernelSet>>,
    pub search: OnceLock<Result<KernelSet>>,
    pub icl: OnceLock<Result<KernelSet>>,
    pub counters: Counters,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("device_type", &self.inner.info.device_type)
            .finish()
    }
}

impl GpuContext {
    /// Opens the default adapter. Honours wgpu's environment variables:
    /// `WGPU_BACKEND` (`vulkan`, `metal`, `dx12`, `gl`), `WGPU_ADAPTER_NAME` (a
    /// substring of the adapter's name) and `WGPU_POWER_PREF` (`low`, `high`).
    pub async fn new() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = wgpu::util::initialize_adapter_from_env_or_default(&instance, None)
            .await
            .map_err(|e| TesseraError::NoAdapter(e.to_string()))?;
        Self::from_adapter(&adapter).await
    }

    /// Opens the best hardware adapter: discrete, then integrated, then virtual GPUs,
    /// never a software rasteriser (lavapipe, llvmpipe, WARP). Honours `WGPU_BACKEND`;
    /// with `WGPU_ADAPTER_NAME` set it opens that adapter, as [`GpuContext::new`] does,
    /// software or not. The error lists the adapters that were found.
    pub async fn new_hardware() -> Result<Self> {
        if std::env::var_os("WGPU_ADAPTER_NAME").is_some() {
            return Self::new().await;
        }
        let adapters = Self::enumerate_adapters().await;
        let rank = |t: wgpu::DeviceType| match t {
            wgpu::DeviceType::DiscreteGpu => Some(0),
            wgpu::DeviceType::IntegratedGpu => Some(1),
            wgpu::DeviceType::VirtualGpu => Some(2),
            wgpu::DeviceType::Other => Some(3),
            wgpu::DeviceType::Cpu => None,
        };
        let best = adapters
            .iter()
            .filter_map(|a| rank(a.get_info().device_type).map(|r| (r, a)))
            .min_by_key(|(r, _)| *r);
        match best {
            Some((_, adapter)) => Self::from_adapter(adapter).await,
            None if adapters.is_empty() => Err(TesseraError::NoAdapter(
                "wgpu found no adapter at all".into(),
            )),
            None => {
                let found: Vec<String> = adapters
                    .iter()
                    .map(|a| {
                        let i = a.get_info();
                        format!("{} ({:?})", i.name, i.backend)
                    })
                    .collect();
                Err(TesseraError::NoAdapter(format!(
                    "only software rasterisers were found: {}",
                    found.join(", ")
                )))
            }
        }
    }

    /// [`GpuContext::new_hardware`], blocking the calling thread.
    pub fn new_hardware_blocking() -> Result<Self> {
        pollster::block_on(Self::new_hardware())
    }

    /// [`GpuContext::new`], blocking the calling thread.
    pub fn new_blocking() -> Result<Self> {
        pollster::block_on(Self::new())
    }

    /// Every adapter wgpu finds on this machine (for the backends `WGPU_BACKEND`
    /// allows), e.g. to benchmark each of them.
    pub async fn enumerate_adapters() -> Vec<wgpu::Adapter> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        instance
            .enumerate_adapters(wgpu::Backends::all().with_env())
            .await
    }

    /// Opens a device on `adapter` with every limit the adapter supports (storage
    /// bindings above WebGPU's 128 MiB default included).
    pub async fn from_adapter(adapter: &wgpu::Adapter) -> Result<Self> {
        Self::from_adapter_with_limits(adapter, adapter.limits()).await
    }

    /// Opens a device on `adapter` with the given limits, e.g. to stay within what
    /// every target platform supports. Batches larger than the limits are split.
    pub async fn from_adapter_with_limits(
        adapter: &wgpu::Adapter,
        limits: wgpu::Limits,
    ) -> Result<Self> {
        let info = adapter.get_info();
        // Timestamp queries let benchmarks time kernels, f64 makes the GPU posterior
        // exact: ask for each where the adapter has it.
        let required_features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F64);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("tessera"),
                required_features,
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| TesseraError::NoAdapter(format!("{} refused a device: {e}", info.name)))?;
        tracing::info!(adapter = %info.name, backend = ?info.backend, device_type = ?info.device_type,
            driver = %info.driver, "tessera GPU context opened");
        Self::from_device(device, queue, info)
    }

    /// Builds on a device and queue the application already owns (an app that
    /// renders with Metal, Vulkan or DX12 shares its device with tessera). Fails with
    /// [`TesseraError::DeviceLimit`] naming the limit when the device was opened with
    /// limits below [`REQUIRED`](crate::REQUIRED) (open it with the adapter's limits,
    /// or with `REQUIRED.limits()`). tessera installs a device-lost callback and an
    /// uncaptured-error handler on it.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
    ) -> Result<Self> {
        crate::REQUIRED.check(&device.limits())?;
        let lost = Arc::new(AtomicBool::new(false));
        let last_error = Arc::new(Mutex::new(None));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                tracing::error!(?reason, %message, "GPU device lost");
                lost.store(true, Ordering::SeqCst);
            });
        }
        {
            let last_error = last_error.clone();
            device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
                tracing::error!(%error, "uncaptured GPU error");
                *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
            }));
        }
        let limits = device.limits();
        Ok(Self {
            inner: Arc::new(Inner {
                device,
                queue,
                info,
                limits,
                lost,
                last_error,
                acquisition: OnceLock::new(),
                nn: OnceLock::new(),
                sim: OnceLock::new(),
                posterior: OnceLock::new(),
                posterior_f64: OnceLock::new(),
                loop_prepare: OnceLock::new(),
                loop_outcome: OnceLock::new(),
                voi: OnceLock::new(),
                search: OnceLock::new(),
                icl: OnceLock::new(),
                counters: Counters::default(),
            }),
        })
    }

    /// The adapter's name, backend, type and driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Whether the device can time kernels with timestamp queries.
    pub fn supports_timestamps(&self) -> bool {
        self.inner
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether the adapter is a software rasteriser (lavapipe, llvmpipe, WARP): its
    /// timings say nothing about GPU speed.
    pub fn is_software(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The underlying device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The underlying queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Fails if the device was lost or an operation raised an uncaptured error since
    /// the last check.
    pub fn check(&self) -> Result<()> {
        if self.inner.lost.load(Ordering::SeqCst) {
            return Err(TesseraError::Device("the GPU device was lost".into()));
        }
        if let Some(e) = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(TesseraError::Device(e));
        }
        Ok(())
    }

    /// The launch counters of this context (every clone shares them).
    pub fn counters(&self) -> LaunchCounters {
        self.inner.counters.snapshot()
    }

    /// Submits one command buffer, counted.
    pub(crate) fn submit(&self, commands: wgpu::CommandBuffer) {
        Counters::add(&self.inner.counters.submissions, 1);
        self.inner.queue.submit([commands]);
    }

    /// Writes `data` into `buffer` at `offset` through the queue, counted.
    pub(crate) fn write_buffer(&self, buffer: &wgpu::Buffer, offset: u64, data: &[u8]) {
        Counters::add(&self.inner.counters.bytes_uploaded, data.len() as u64);
        self.inner.queue.write_buffer(buffer, offset, data);
    }

    /// Writes `words` 4-byte words of `data` into `buffer` at `offset`, produced
    /// straight into the queue's mapped staging memory, counted.
    pub(crate) fn write_buffer_with(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        words: usize,
        data: impl Iterator<Item = u32>,
    ) {
        let Some(size) = wgpu::BufferSize::new(words as u64 * 4) else {
            return;
        };
        Counters::add(&self.inner.counters.bytes_uploaded, size.get());
        if let Some(mut view) = self.inner.queue.write_buffer_with(buffer, offset, size) {
            view.slice(..).write_iter(data.flat_map(u32::to_le_bytes));
        }
    }

    /// A buffer created with `contents`, counted as uploaded bytes.
    pub(crate) fn buffer_init(
        &self,
        label: &str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        Counters::add(&self.inner.counters.bytes_uploaded, contents.len() as u64);
        self.inner
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
    }

    /// A bind group, counted.
    pub(crate) fn create_bind_group(
        &self,
        desc: &wgpu::BindGroupDescriptor<'_>,
    ) -> wgpu::BindGroup {
        Counters::add(&self.inner.counters.bind_groups, 1);
        self.inner.device.create_bind_group(desc)
    }

    /// A bind group of whole buffers, bound in order from binding 0 (counted).
    pub(crate) fn bind_buffers(
        &self,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(binding, b)| wgpu::BindGroupEntry {
                binding: binding as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    }

    /// Counts a compute pass begun.
    pub(crate) fn count_pass(&self) {
        Counters::add(&self.inner.counters.passes, 1);
    }

    /// Counts a dispatch recorded.
    pub(crate) fn count_dispatch(&self) {
        Counters::add(&self.inner.counters.dispatches, 1);
    }

    /// Counts bytes copied back to the host.
    pub(crate) fn count_read_back(&self, bytes: u64) {
        Counters::add(&self.inner.counters.bytes_read_back, bytes);
    }

    /// Blocks until the queue is idle (counted as a host sync).
    pub fn wait_idle(&self) -> Result<()> {
        Counters::add(&self.inner.counters.host_syncs, 1);
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| TesseraError::Device(e.to_string()))?;
        self.check()
    }

    /// Largest size of one storage binding (and buffer) on this device, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        let l = &self.inner.limits;
        l.max_storage_buffer_binding_size.min(l.max_buffer_size)
    }
}
