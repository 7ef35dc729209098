//! The launch structure, pinned by the context's counters: what one acquisition step,
//! one simulator draw and one posterior cost in submissions, passes, bind groups, bytes
//! and host syncs. A regression in the launch path shows here on any machine.

use tessera_gpu::{GpuAcquisition, GpuContext, GpuPosterior, GpuSim, LaunchCounters, testing};
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
