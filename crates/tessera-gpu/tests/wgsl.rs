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
        ("voi", tessera_gpu::voi::wgsl_module_source()),
        ("search", tessera_gpu::search::wgsl_module_source()),
        ("icl", tessera_gpu::icl::wgsl_module_source()),
    ] {
        translate(name, &source, Capabilities::empty(), true);
    }
}

/// Validates `source` with `capabilities` and translates it to HLSL and SPIR-V (and
/// MSL with `msl`), panicking with the module's name on the first failure.
fn translate(name: &str, source: &str, capabilities: Capabilities, msl: bool) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name} does not parse:\n{}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.emit_to_string(source)));
    if msl {
        let options = naga::back::msl::Options {
            lang_version: (2, 4),
            ..Default::default()
        };
        naga::back::msl::write_string(&module, &info, &options, &Default::default())
            .unwrap_or_else(|e| panic!("{name} does not translate to MSL: {e}"));
    }
    let hlsl = naga::back::hlsl::Options {
        shader_model: naga::back::hlsl::ShaderModel::V6_0,
        ..Default::default()
    };
    let mut out = String::new();
    naga::back::hlsl::Writer::new(&mut out, &hlsl, &Default::default())
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name} does not translate to HLSL: {e}"));
    naga::back::spv::write_vec(&module, &info, &Default::default(), None)
        .unwrap_or_else(|e| panic!("{name} does not translate to SPIR-V: {e}"));
}

#[test]
fn search_and_icl_modules_validate() {
    validate("search module", &tessera_gpu::search::wgsl_module_source());
    validate("icl module", &tessera_gpu::icl::wgsl_module_source());
}
