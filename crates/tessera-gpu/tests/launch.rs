//! The launch structure, pinned by the context's counters: what one acquisition step,
//! one simulator draw and one posterior cost in submissions, passes, bind groups, bytes
//! and host syncs. A regression in the launch path shows here on any machine.

use tessera_gpu::{
    DeviceStepInputs, GpuAcquisition, GpuContext, GpuPosterior, GpuSim, LaunchCounters,
    pack_intervention_flags, testing,
};
use tessera_tensor::TesseraError;
use tessera_tensor::acquisition::{AcquisitionBackend, AcquisitionConfig};
use tessera_tensor::reference::parity::{OwnedStep, Rng};
use tessera_tensor::sim::{
    Interventions, PosteriorBackend, PosteriorConfig, ScmBatch, ScmConfig, SimBackend,
};

/// A context of its own (the counters of a shared one would see other tests' work).
fn fresh_context() -> Option<GpuContext> {
    testing::shared_context()?;
    Some(GpuContext::new_blocking().expect("an adapter was found a moment ago"))
}

fn delta(ctx: &GpuContext, work: impl FnOnce()) -> LaunchCounters {
    let before = ctx.counters();
    work();
    ctx.counters().since(&before)
}

#[test]
fn an_acquisition_step_is_one_submission_with_no_readback() {
    let Some(ctx) = fresh_context() else { return };
    let cfg = AcquisitionConfig::batched(10, 100, vec![0; 64]);
    let mut acq = GpuAcquisition::new(&ctx, &cfg).unwrap();
    let mut rng = Rng::new(1);
    let first = OwnedStep::random(&cfg, &mut rng);
    acq.step(&first.input()).unwrap();
    let step = OwnedStep::random(&cfg, &mut rng);
    let c = delta(&ctx, || acq.step(&step.input()).unwrap());
    assert_eq!(
        (
            c.submissions,
            c.passes,
            c.dispatches,
            c.bind_groups,
            c.bytes_read_back,
            c.host_syncs
        ),
        (1, 1, 1, 0, 0, 0),
        "{c:?}"
    );
    assert!(
        c.bytes_uploaded > 0,
        "the step's inputs are uploaded: {c:?}"
    );
    let read = delta(&ctx, || drop(acq.read_summaries().unwrap()));
    assert_eq!((read.host_syncs, read.submissions), (1, 1), "{read:?}");
    assert!(read.bytes_read_back > 0);
}

/// A step's inputs as device buffers (what a simulator on the device would leave).
struct DeviceStep {
    values: wgpu::Buffer,
    intervened: wgpu::Buffer,
    targets: wgpu::Buffer,
    observed: wgpu::Buffer,
}

impl DeviceStep {
    fn upload(ctx: &GpuContext, step: &OwnedStep, n_vars: usize) -> Self {
        use wgpu::util::DeviceExt;
        let buffer = |contents: &[u8]| {
            ctx.device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("test step input"),
                    contents,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                })
        };
        Self {
            values: buffer(bytemuck::cast_slice(&step.values)),
            intervened: buffer(bytemuck::cast_slice(&pack_intervention_flags(
                &step.intervened,
                n_vars,
            ))),
            targets: buffer(bytemuck::cast_slice(&step.targets)),
            observed: buffer(bytemuck::cast_slice(&step.observed)),
        }
    }

    fn inputs<'a>(&'a self, step: &OwnedStep) -> DeviceStepInputs<'a> {
        DeviceStepInputs {
            values: &self.values,
            intervened: &self.intervened,
            targets: &self.targets,
            observed: &self.observed,
            learning_rate: step.learning_rate,
            exploration_weight: step.exploration_weight,
        }
    }
}

/// A step whose inputs are already on the device uploads nothing, in one submission,
/// and leaves the state the host step leaves, bit for bit (n = 40: two flag words).
#[test]
fn a_step_with_device_inputs_uploads_nothing_and_matches_the_host_step() {
    let Some(ctx) = fresh_context() else { return };
    let cfg = AcquisitionConfig::batched(40, 7, vec![3; 33]);
    let mut host = GpuAcquisition::new(&ctx, &cfg).unwrap();
    let mut device = GpuAcquisition::new(&ctx, &cfg).unwrap();
    let mut rng = Rng::new(5);
    let steps: Vec<OwnedStep> = (0..12).map(|_| OwnedStep::random(&cfg, &mut rng)).collect();
    let inputs: Vec<DeviceStep> = steps
        .iter()
        .map(|s| DeviceStep::upload(&ctx, s, 40))
        .collect();
    for (i, (step, on_device)) in steps.iter().zip(&inputs).enumerate() {
        host.step(&step.input()).unwrap();
        let c = delta(&ctx, || {
            device.step_on_device(&on_device.inputs(step)).unwrap()
        });
        if i > 0
            && step.learning_rate == steps[i - 1].learning_rate
            && step.exploration_weight == steps[i - 1].exploration_weight
        {
            assert_eq!(c.bytes_uploaded, 0, "{c:?}");
        }
        assert_eq!(
            (
                c.submissions,
                c.passes,
                c.bind_groups,
                c.bytes_read_back,
                c.host_syncs
            ),
            (1, 1, 0, 0, 0),
            "{c:?}"
        );
    }
    assert_eq!(host.read_state().unwrap(), device.read_state().unwrap());
}

#[test]
fn device_inputs_too_small_or_not_copyable_are_refused_with_the_state_unchanged() {
    let Some(ctx) = fresh_context() else { return };
    let cfg = AcquisitionConfig::batched(5, 4, vec![0; 3]);
    let mut acq = GpuAcquisition::new(&ctx, &cfg).unwrap();
    let before = acq.read_state().unwrap();
    let step = OwnedStep::random(&cfg, &mut Rng::new(2));
    let good = DeviceStep::upload(&ctx, &step, 5);
    let short = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 8,
        usage: wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let uncopyable = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4096,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let too_small = DeviceStepInputs {
        targets: &short,
        ..good.inputs(&step)
    };
    assert!(matches!(
        acq.step_on_device(&too_small),
        Err(TesseraError::ShapeMismatch {
            what: "targets",
            ..
        })
    ));
    let no_copy = DeviceStepInputs {
        observed: &uncopyable,
        ..good.inputs(&step)
    };
    assert!(matches!(
        acq.step_on_device(&no_copy),
        Err(TesseraError::InvalidConfig {
            field: "observed",
            ..
        })
    ));
    let bad_rate = DeviceStepInputs {
        learning_rate: 1.5,
        ..good.inputs(&step)
    };
    assert!(acq.step_on_device(&bad_rate).is_err());
    assert_eq!(acq.read_state().unwrap(), before);
}

#[test]
fn a_draw_and_a_posterior_are_one_submission_and_one_readback_each() {
    let Some(ctx) = fresh_context() else { return };
    let scm = ScmBatch::generate(&ScmConfig::new(32, 6, 4)).unwrap();
    let mut sim = GpuSim::new(&ctx, &scm).unwrap();
    sim.sample(0, 8, &Interventions::None).unwrap();
    let c = delta(&ctx, || {
        drop(sim.sample(1, 8, &Interventions::None).unwrap())
    });
    assert_eq!(
        (
            c.submissions,
            c.passes,
            c.dispatches,
            c.bind_groups,
            c.host_syncs
        ),
        (2, 1, 1, 0, 1),
        "one dispatch, then the readback's copy: {c:?}"
    );
    assert_eq!(c.bytes_read_back, 32 * 8 * 6 * 4);
    let x = sim.sample(2, 20, &Interventions::None).unwrap();
    let mut posterior = GpuPosterior::new(&ctx, &PosteriorConfig::for_scm(&scm, 2)).unwrap();
    posterior.add_rows(&x, 20, &Interventions::None).unwrap();
    posterior.posterior().unwrap();
    let add = delta(&ctx, || {
        posterior.add_rows(&x, 20, &Interventions::None).unwrap()
    });
    assert_eq!(
        (
            add.submissions,
            add.bind_groups,
            add.host_syncs,
            add.bytes_read_back
        ),
        (1, 0, 0, 0),
        "{add:?}"
    );
    let c = delta(&ctx, || drop(posterior.posterior().unwrap()));
    assert_eq!(
        (
            c.submissions,
            c.passes,
            c.dispatches,
            c.bind_groups,
            c.host_syncs
        ),
        (2, 1, 2, 0, 1),
        "score and reduce in one pass, then the summary's readback: {c:?}"
    );
}

/// The closed loop's step (issue 10): one submission, nothing uploaded or read back,
/// no host sync and no bind group after set-up; the caller's values are its only
/// upload.
#[test]
fn a_closed_loop_step_is_one_submission_with_nothing_uploaded_or_read_back() {
    use tessera_gpu::GpuClosedLoop;
    use tessera_tensor::sim::closed_loop::{ClosedLoopBackend, LoopConfig};
    let Some(ctx) = fresh_context() else { return };
    let scm = ScmBatch::generate(&ScmConfig::new(96, 40, 5)).unwrap();
    let mut run = GpuClosedLoop::new(&ctx, &scm, &LoopConfig::default()).unwrap();
    run.step().unwrap();
    let c = delta(&ctx, || run.step().unwrap());
    assert_eq!(
        (
            c.submissions,
            c.passes,
            c.dispatches,
            c.bind_groups,
            c.bytes_uploaded,
            c.bytes_read_back,
            c.host_syncs
        ),
        (1, 6, 8, 0, 0, 0, 0),
        "{c:?}"
    );
    let c = delta(&ctx, || run.step_with_values(&[0.5; 96]).unwrap());
    assert_eq!(
        (c.submissions, c.bytes_uploaded, c.bytes_read_back),
        (1, 96 * 4, 0),
        "{c:?}"
    );
    assert_eq!(run.steps(), 3);
    let read = delta(&ctx, || drop(run.posterior().unwrap()));
    assert!(read.bytes_read_back > 0, "reads are on request: {read:?}");
}

/// The VOI reductions: a repeated call makes no bind group, and a regression design
/// is uploaded once (`[X | Y]`, read by the cross-products and, X as its first
/// columns, by the fitted reductions).
#[test]
fn voi_reductions_reuse_their_bind_groups_and_upload_the_design_once() {
    use tessera_gpu::GpuVoi;
    use tessera_tensor::voi::{Decision, FittedLayout, Table, VoiBackend};
    let Some(ctx) = fresh_context() else { return };
    let mut voi = GpuVoi::new(&ctx).unwrap();
    let (n, d, p) = (1000, 3, 4);
    let nb: Vec<f64> = (0..n * d).map(|i| (i % 17) as f64 - 8.0).collect();
    let decision = || Decision::NetBenefit(Table::new("nb", &nb, n, d).unwrap());
    voi.decision_sums(&decision(), &[0]).unwrap();
    let again = delta(&ctx, || drop(voi.decision_sums(&decision(), &[0]).unwrap()));
    // Two submissions: the dispatch, then the copy of its partials for the readback.
    assert_eq!(
        (
            again.submissions,
            again.dispatches,
            again.bind_groups,
            again.host_syncs
        ),
        (2, 1, 0, 1),
        "{again:?}"
    );
    let x: Vec<f64> = (0..n * p).map(|i| (i % 7) as f64 / 7.0).collect();
    let y: Vec<f64> = (0..n * 2).map(|i| (i % 5) as f64).collect();
    let yt = Table::new("y", &y, n, 2).unwrap();
    let design = delta(&ctx, || drop(voi.load_design(x.clone(), p, &yt).unwrap()));
    let z_bytes = (n * (p + 2) * 4) as u64;
    assert!(
        design.bytes_uploaded >= z_bytes && design.bytes_uploaded < z_bytes + 4096,
        "the design once: {design:?}"
    );
    let coefs: Vec<f64> = (0..p * (d - 1)).map(|i| i as f64 / 10.0).collect();
    let layout = FittedLayout::NetBenefit { strategies: d };
    voi.fitted_decision_sums(&coefs, 1, &layout, &[0]).unwrap();
    let fitted = delta(&ctx, || {
        drop(voi.fitted_decision_sums(&coefs, 1, &layout, &[0]).unwrap())
    });
    assert_eq!(
        (fitted.submissions, fitted.bind_groups, fitted.host_syncs),
        (2, 0, 1),
        "{fitted:?}"
    );
}
