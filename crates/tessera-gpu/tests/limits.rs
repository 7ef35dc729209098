//! Batches larger than the device's binding limits are split into shards that give the
//! same answers; an environment too large for any binding is a typed error.

use tessera_gpu::{GpuAcquisition, GpuContext, GpuNn, testing};
use tessera_tensor::TesseraError;
use tessera_tensor::acquisition::{AcquisitionBackend, AcquisitionConfig};
use tessera_tensor::nn::{Gemm, NnKernels};
use tessera_tensor::reference::{ReferenceAcquisition, parity};

/// A device on the test adapter whose storage bindings hold only 16 KiB.
fn small_context() -> Option<GpuContext> {
    let shared = testing::shared_context()?;
    let name = shared.adapter_info().name.clone();
    pollster::block_on(async {
        let adapters = GpuContext::enumerate_adapters().await;
        let adapter = adapters.iter().find(|a| a.get_info().name == name)?;
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 16 * 1024,
            ..adapter.limits()
        };
        Some(
            GpuContext::from_adapter_with_limits(adapter, limits)
                .await
                .expect("device with small limits"),
        )
    })
}

#[test]
fn large_batches_are_sharded_and_match_the_reference() {
    let Some(ctx) = small_context() else { return };
    // 8 vars x 100 capacity x 4 bytes = 3200 bytes per environment: 5 per 16 KiB shard.
    let cfg = AcquisitionConfig::batched(8, 100, (0..23).map(|i| i % 8).collect());
    let factory = |c: &AcquisitionConfig| GpuAcquisition::new(&ctx, c);
    let mut gpu = factory(&cfg).unwrap();
    assert_eq!(gpu.shard_count(), 5);
    let mut reference = ReferenceAcquisition::new(&cfg).unwrap();
    let mut rng = parity::Rng::new(42);
    parity::run_steps(&mut gpu, &mut reference, &mut rng, 250, 25).unwrap();
    // 30 rows x 8 vars x 20 bytes = 4800 bytes per environment: chunks of 3.
    let (got, want) = (
        gpu.history_tensor(30).unwrap(),
        reference.history_tensor(30).unwrap(),
    );
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(parity::close(*g, *w), "history[{i}]: {g} vs {w}");
    }
}

#[test]
fn an_environment_larger_than_a_binding_is_a_typed_error() {
    let Some(ctx) = small_context() else { return };
    let cfg = AcquisitionConfig::single(64, 100, 0);
    match GpuAcquisition::new(&ctx, &cfg) {
        Err(TesseraError::DeviceLimit { needed, limit, .. }) => {
            assert_eq!(needed, 64 * 100 * 4);
            assert_eq!(limit, 16 * 1024);
        }
        other => panic!("expected a DeviceLimit error, got {other:?}"),
    }
    // One environment's history tensor too large for one binding is refused the same
    // way (a batch's history larger than a binding is computed in chunks).
    let mut acq = GpuAcquisition::new(&ctx, &AcquisitionConfig::single(8, 10, 0)).unwrap();
    assert!(matches!(
        acq.history_tensor(200),
        Err(TesseraError::DeviceLimit { .. })
    ));
    assert!(acq.history_tensor(10).is_ok());
}

#[test]
fn kernel_timing_reports_one_duration_per_dispatch() {
    let Some(ctx) = testing::shared_context() else {
        return;
    };
    let cfg = AcquisitionConfig::batched(6, 20, vec![0, 1, 2]);
    let mut acq = GpuAcquisition::new(&ctx, &cfg).unwrap();
    if !acq.enable_kernel_timing(4) {
        eprintln!(
            "skipping kernel timing: {} has no timestamp queries",
            ctx.adapter_info().name
        );
        return;
    }
    let mut rng = parity::Rng::new(3);
    for _ in 0..6 {
        acq.step(&parity::OwnedStep::random(&cfg, &mut rng).input())
            .unwrap();
    }
    // Only the first 4 dispatches fit the timer; the rest run untimed.
    let times = acq.take_kernel_times().unwrap();
    assert_eq!(times.len(), 4);
    assert!(
        times.iter().all(|t| t.is_finite() && *t >= 0.0),
        "{times:?}"
    );
    assert!(acq.take_kernel_times().unwrap().is_empty());
}

#[test]
fn nn_kernel_timing_reports_one_duration_per_launch() {
    let Some(ctx) = testing::shared_context() else {
        return;
    };
    let k = GpuNn::new(&ctx).unwrap();
    if !k.enable_kernel_timing(3) {
        eprintln!(
            "skipping kernel timing: {} has no timestamp queries",
            ctx.adapter_info().name
        );
        return;
    }
    let (a, b) = (k.tensor(&[1.0; 64]).unwrap(), k.tensor(&[2.0; 64]).unwrap());
    let mut c = k.zeros(64).unwrap();
    for _ in 0..5 {
        k.gemm(Gemm::new(8, 8, 8), &a, &b, &mut c).unwrap();
    }
    // Only the first 3 launches fit the timer; the rest run untimed.
    let times = k.take_kernel_times().unwrap();
    assert_eq!(times.len(), 3);
    assert!(
        times.iter().all(|t| t.is_finite() && *t >= 0.0),
        "{times:?}"
    );
    assert!(k.take_kernel_times().unwrap().is_empty());
    assert_eq!(k.read(&c).unwrap(), vec![16.0; 64]);
    assert!(!k.enable_kernel_timing(0), "0 launches turns timing off");
}

/// An index larger than one binding is split into chunks of whole blocks, queries past
/// the list buffer's room are searched in batches, and both give the reference's
/// results in one submission and one readback of k results per query.
#[test]
fn a_large_index_is_split_across_bindings_and_matches_the_reference() {
    use tessera_gpu::GpuIndex;
    use tessera_tensor::reference::{ReferenceIndex, search_parity};
    use tessera_tensor::search::{IndexConfig, Metric, Storage, VectorIndex};

    let Some(ctx) = small_context() else { return };
    let mut rng = parity::Rng::new(3);
    for storage in [Storage::F32, Storage::Bf16] {
        // 1024 f32 vectors of 4 words (or 2048 of bf16, 2 words) fill a 16 KiB binding.
        let config = IndexConfig::new(4, Metric::L2).with_storage(storage);
        let vectors: Vec<f32> = (0..5000 * 4).map(|_| rng.normal()).collect();
        let queries: Vec<f32> = (0..20 * 4).map(|_| rng.normal()).collect();
        let mut gpu = GpuIndex::new(&ctx, config).unwrap();
        let mut reference = ReferenceIndex::new(config).unwrap();
        for piece in vectors.chunks(1500 * 4) {
            gpu.add(piece).unwrap();
            reference.add(piece).unwrap();
        }
        let chunks = if storage == Storage::F32 { 5 } else { 3 };
        assert_eq!(gpu.chunks(), chunks);
        for k in [5, 100] {
            let before = ctx.counters();
            let got = gpu.search(&queries, k, None).unwrap();
            let spent = ctx.counters().since(&before);
            assert_eq!(spent.submissions, 2, "one search and one readback");
            assert_eq!(spent.bytes_read_back, (20 * k * 8) as u64);
            let want = reference.search(&queries, k, None).unwrap();
            search_parity::compare_hits(&reference, &queries, &got, &want, None)
                .unwrap_or_else(|e| panic!("{storage:?} k = {k}: {e}"));
        }
        // A search that fits the buffers already there builds no bind group.
        let before = ctx.counters();
        gpu.search(&queries, 50, None).unwrap();
        assert_eq!(ctx.counters().since(&before).bind_groups, 0);
    }
}

#[test]
fn a_block_larger_than_a_binding_is_a_typed_error() {
    use tessera_gpu::GpuIndex;
    use tessera_tensor::search::{IndexConfig, Metric};

    let Some(ctx) = small_context() else { return };
    match GpuIndex::new(&ctx, IndexConfig::new(8, Metric::Cosine)) {
        Err(TesseraError::DeviceLimit { needed, limit, .. }) => {
            assert_eq!((needed, limit), (1024 * 8 * 4, 16 * 1024));
        }
        other => panic!("expected a DeviceLimit error, got {other:?}"),
    }
}

/// A device opened with WebGPU's default limits (8 storage buffers per stage) is
/// refused by `from_device` with the limit named; one opened with
/// `REQUIRED.limits()` is taken, and every family's kernels build on it.
#[test]
fn from_device_refuses_a_device_below_the_declared_requirements() {
    let Some(shared) = testing::shared_context() else {
        return;
    };
    let open = |limits: wgpu::Limits| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            required_limits: limits,
            ..Default::default()
        }))
        .unwrap();
        GpuContext::from_device(device, queue, adapter.get_info())
    };
    match open(wgpu::Limits::default()) {
        Err(TesseraError::DeviceLimit {
            what,
            needed,
            limit,
        }) => {
            assert_eq!(what, "storage buffers per shader stage");
            assert_eq!((needed, limit), (14, 8));
        }
        other => panic!("expected a DeviceLimit error, got {other:?}"),
    }
    let ctx = open(tessera_gpu::REQUIRED.limits()).unwrap();
    assert!(shared.limits().max_storage_buffers_per_shader_stage >= 14);
    GpuAcquisition::new(&ctx, &AcquisitionConfig::batched(4, 8, vec![0; 2])).unwrap();
    GpuNn::new(&ctx).unwrap();
}
