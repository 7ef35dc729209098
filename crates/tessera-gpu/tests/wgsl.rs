//! Every WGSL file parses and validates with naga, on its own terms and as part of the
//! module the backend builds.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use tessera_gpu::acquisition::{WGSL_SOURCES, wgsl_module_source};

fn validate(name: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name} does not parse:\n{}", e.emit_to_string(source)));
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.emit_to_string(source)));
}

#[test]
fn acquisition_module_validates() {
    validate("acquisition module", &wgsl_module_source());
}

#[test]
fn nn_module_validates() {
    validate("nn module", &tessera_gpu::nn::wgsl_module_source());
    for i in 1..tessera_gpu::nn::WGSL_SOURCES.len() {
        let source: String = tessera_gpu::nn::WGSL_SOURCES[..=i]
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join("\n");
        validate(tessera_gpu::nn::WGSL_SOURCES[i].0, &source);
    }
}

#[test]
fn voi_module_validates() {
    validate("voi module", &tessera_gpu::voi::wgsl_module_source());
}

#[test]
fn sim_modules_validate() {
    validate("sim module", &tessera_gpu::sim::wgsl_module_source());
    let test_module: String = tessera_gpu::sim::WGSL_TEST_SOURCES
        .iter()
        .map(|(_, s)| *s)
        .collect::<Vec<_>>()
        .join("\n");
    validate("philox test module", &test_module);
    let join = |sources: &[(&str, &str)]| -> String {
        sources
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join("\n")
    };
    validate(
        "posterior module",
        &join(tessera_gpu::sim::WGSL_POSTERIOR_SOURCES),
    );
    validate(
        "loop prepare module",
        &join(tessera_gpu::sim::WGSL_LOOP_PREPARE_SOURCES),
    );
    validate(
        "loop outcome module",
        &join(tessera_gpu::sim::WGSL_LOOP_OUTCOME_SOURCES),
    );
    // The f64 variant (devices with SHADER_F64) validates with naga's FLOAT64.
    translate(
        "posterior f64",
        &join(tessera_gpu::sim::WGSL_POSTERIOR_F64_SOURCES),
        Capabilities::FLOAT64,
        false,
    );
}

#[test]
fn every_kernel_file_validates_with_the_common_header() {
    let (_, common) = WGSL_SOURCES[0];
    // A kernel file may call stages from other files (the fused step, policy features),
    // so each is checked with the header plus every file before it.
    for i in 1..WGSL_SOURCES.len() {
        let source: String = WGSL_SOURCES[..=i]
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join("\n");
        validate(WGSL_SOURCES[i].0, &source);
    }
    assert!(common.contains("struct EnvScalars"));
}

#[test]
fn every_shader_on_disk_is_built_into_a_module() {
    for (family, sources) in [
        ("acquisition", WGSL_SOURCES),
        ("nn", tessera_gpu::nn::WGSL_SOURCES),
    ] {
        on_disk_matches(family, sources);
    }
    let mut sim: Vec<(&str, &str)> = tessera_gpu::sim::WGSL_SOURCES.to_vec();
    sim.extend(&tessera_gpu::sim::WGSL_TEST_SOURCES[1..]);
    sim.extend(tessera_gpu::sim::WGSL_POSTERIOR_SOURCES);
    sim.extend(&tessera_gpu::sim::WGSL_POSTERIOR_F64_SOURCES[..1]);
    sim.extend(&tessera_gpu::sim::WGSL_LOOP_PREPARE_SOURCES[1..]);
    sim.extend(&tessera_gpu::sim::WGSL_LOOP_OUTCOME_SOURCES[1..]);
    on_disk_matches("sim", &sim);
    on_disk_matches("voi", tessera_gpu::voi::WGSL_SOURCES);
    on_disk_matches("search", tessera_gpu::search::WGSL_SOURCES);
    on_disk_matches("icl", tessera_gpu::icl::WGSL_SOURCES);
}

fn on_disk_matches(family: &str, sources: &[(&str, &str)]) {
    let dir = format!("{}/shaders/{family}", env!("CARGO_MANIFEST_DIR"));
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut built: Vec<String> = sources.iter().map(|(n, _)| n.to_string()).collect();
    built.sort();
    assert_eq!(on_disk, built);
}

/// Every module, translated by naga to the shading languages wgpu feeds Metal (MSL),
/// DX12 (HLSL) and Vulkan (SPIR-V): a kernel that validates as WGSL but uses something a
/// backend cannot express fails here, on Linux, before a Mac or Windows user meets it.
#[test]
fn every_module_translates_to_msl_hlsl_and_spirv() {
    let join = |sources: &[(&str, &str)]| -> String {
        sources
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (name, source) in [
        ("acquisition", wgsl_module_source()),
        ("nn", tessera_gpu::nn::wgsl_module_source()),
        ("sim", tessera_gpu::sim::wgsl_module_source()),
        ("philox test", join(tessera_gpu::sim::WGSL_TEST_SOURCES)),
        ("posterior", join(tessera_gpu::sim::WGSL_POSTERIOR_SOURCES)),
        (
            "loop prepare",
            join(tessera_gpu::sim::WGSL_LOOP_PREPARE_SOURCES),
        ),
        (
            "loop outcome",
            join(tessera_gpu::sim::WGSL_LOOP_OUTCOME_SOURCES),
        ),
        ("voi", tessera_gpu::voi::wgsl_module_source()),
        ("search", tessera_gpu::search::wgsl_module_source()),
        ("icl", tessera_gpu::icl::wgsl_module_source()),
    ] {
        translate(name, &source, Capabilities::empty(), true);
    }
}

/// Validates `source` with `capabilities` and translates it to HLSL and SPIR-V (and
/// MSL with `msl`) with the options wgpu 30's backends use (bounds checks, loop
/// bounding, zero-initialised workgroup memory), panicking with the module's name on
/// the first failure. The SPIR-V then goes through `spirv-val` ([`spirv_val`]).
fn translate(name: &str, source: &str, capabilities: Capabilities, msl: bool) {
    use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name} does not parse:\n{}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.emit_to_string(source)));
    fits_the_declared_requirements(name, &module, &info);
    let checked = |policy| BoundsCheckPolicies {
        index: policy,
        buffer: policy,
        image_load: policy,
        binding_array: BoundsCheckPolicy::Unchecked,
    };
    if msl {
        // wgpu-hal's Metal backend: MSL 2.4 is what macOS 12 and iOS 15 devices take.
        let options = naga::back::msl::Options {
            lang_version: (2, 4),
            bounds_check_policies: checked(BoundsCheckPolicy::ReadZeroSkipWrite),
            zero_initialize_workgroup_memory: true,
            force_loop_bounding: true,
            ..Default::default()
        };
        naga::back::msl::write_string(&module, &info, &options, &Default::default())
            .unwrap_or_else(|e| panic!("{name} does not translate to MSL: {e}"));
    }
    let hlsl = naga::back::hlsl::Options {
        shader_model: naga::back::hlsl::ShaderModel::V6_0,
        zero_initialize_workgroup_memory: true,
        restrict_indexing: true,
        force_loop_bounding: true,
        ..Default::default()
    };
    let mut out = String::new();
    naga::back::hlsl::Writer::new(&mut out, &hlsl, &Default::default())
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name} does not translate to HLSL: {e}"));
    // wgpu-hal's Vulkan backend on a Vulkan 1.1 device (SPIR-V 1.3), without robust
    // buffer access 2 (so buffer accesses are clamped in the shader).
    let spv = naga::back::spv::Options {
        lang_version: (1, 3),
        bounds_check_policies: checked(BoundsCheckPolicy::Restrict),
        zero_initialize_workgroup_memory:
            naga::back::spv::ZeroInitializeWorkgroupMemoryMode::Polyfill,
        force_loop_bounding: true,
        ..Default::default()
    };
    let words = naga::back::spv::write_vec(&module, &info, &spv, None)
        .unwrap_or_else(|e| panic!("{name} does not translate to SPIR-V: {e}"));
    spirv_val(name, &words);
}

/// Every entry point's workgroup, and the workgroup memory it uses (the variables
/// naga finds it reaching), fit what tessera declares it needs of a device
/// ([`tessera_gpu::REQUIRED`]).
fn fits_the_declared_requirements(
    name: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) {
    let required = tessera_gpu::REQUIRED;
    for (i, ep) in module.entry_points.iter().enumerate() {
        let uses = info.get_entry_point(i);
        let workgroup_bytes: u32 = module
            .global_variables
            .iter()
            .filter(|&(h, v)| v.space == naga::AddressSpace::WorkGroup && !uses[h].is_empty())
            .map(|(_, v)| module.types[v.ty].inner.size(module.to_ctx()))
            .sum();
        assert!(
            workgroup_bytes <= required.workgroup_storage_bytes,
            "{name}::{} uses {workgroup_bytes} bytes of workgroup memory, over {}",
            ep.name,
            required.workgroup_storage_bytes
        );
        let [x, y, z] = ep.workgroup_size;
        assert!(
            x <= required.workgroup_size_x && x * y * z <= required.invocations_per_workgroup,
            "{name}::{} has a {x}x{y}x{z} workgroup, over tessera's declared limits",
            ep.name
        );
    }
}

/// Runs Khronos' `spirv-val` (Debian's spirv-tools) on `words` for Vulkan 1.1. Where it
/// is not installed the check is skipped, unless `TESSERA_REQUIRE_SPIRV_VAL` is set
/// (CI sets it).
fn spirv_val(name: &str, words: &[u32]) {
    let required = std::env::var_os("TESSERA_REQUIRE_SPIRV_VAL").is_some();
    let path = std::env::temp_dir().join(format!(
        "tessera-{}-{}.spv",
        name.replace(' ', "_"),
        std::process::id()
    ));
    std::fs::write(&path, bytemuck::cast_slice::<u32, u8>(words)).unwrap();
    let run = std::process::Command::new("spirv-val")
        .args(["--target-env", "vulkan1.1"])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match run {
        Ok(out) => assert!(
            out.status.success(),
            "{name}: spirv-val rejects naga's SPIR-V:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if !required => eprintln!("skipping spirv-val for {name}: {e}"),
        Err(e) => panic!("TESSERA_REQUIRE_SPIRV_VAL is set but spirv-val cannot run: {e}"),
    }
}

#[test]
fn search_and_icl_modules_validate() {
    validate("search module", &tessera_gpu::search::wgsl_module_source());
    validate("icl module", &tessera_gpu::icl::wgsl_module_source());
}
