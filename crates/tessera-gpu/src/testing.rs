//! Support for test suites that need a GPU.
//!
//! Outside CI a machine without an adapter skips GPU tests, saying so once. With
//! `TESSERA_REQUIRE_GPU=1` (set by `.ci/run`), or `CI=true`, a missing adapter fails
//! the test instead, so a broken driver install cannot pass CI silently.

use std::sync::OnceLock;

use crate::GpuContext;

/// Whether GPU tests must fail rather than skip when no adapter is found.
pub fn gpu_required() -> bool {
    let set = |name: &str| {
        std::env::var(name)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("TESSERA_REQUIRE_GPU") || set("CI")
}

/// One context shared by every test of the process: `None` (after one line on stderr)
/// when no adapter is found and GPUs are not required.
///
/// # Panics
/// When no adapter is found and [`gpu_required`] is true.
pub fn shared_context() -> Option<GpuContext> {
    static CONTEXT: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    let ctx = CONTEXT.get_or_init(|| {
        let ctx = GpuContext::new_blocking().map_err(|e| e.to_string());
        if let Ok(c) = &ctx {
            let i = c.adapter_info();
            eprintln!(
                "GPU tests run on {} ({:?}, {:?})",
                i.name, i.backend, i.device_type
            );
        }
        ctx
    });
    match ctx {
        Ok(c) => Some(c.clone()),
        Err(e) if gpu_required() => {
            panic!("GPU tests are required (TESSERA_REQUIRE_GPU or CI) but {e}")
        }
        Err(e) => {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                eprintln!("skipping GPU tests: {e} (install mesa-vulkan-drivers for lavapipe)");
            });
            None
        }
    }
}

/// The shared context's adapter opened again without optional features, so without
/// `SHADER_F64`: the kernels Metal and GL run (the f32 posterior) tested on the same
/// adapter. `None` as [`shared_context`]; panics if the adapter cannot be opened twice.
pub fn f32_context() -> Option<GpuContext> {
    shared_context()?;
    static CONTEXT: OnceLock<GpuContext> = OnceLock::new();
    let ctx = CONTEXT.get_or_init(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance, None,
        ))
        .expect("the shared context's adapter");
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tessera tests without f64"),
            required_limits: crate::REQUIRED.limits(),
            ..Default::default()
        }))
        .expect("a second device on the shared context's adapter");
        GpuContext::from_device(device, queue, adapter.get_info())
            .expect("REQUIRED's limits are enough")
    });
    assert!(
        !ctx.device().features().contains(wgpu::Features::SHADER_F64),
        "opened without optional features"
    );
    Some(ctx.clone())
}
