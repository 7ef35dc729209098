//! The simulator parity suite: scenarios written once against [`SimBackend`] and run,
//! through [`sim_parity_suite!`](crate::sim_parity_suite), against the reference, the
//! CPU backend and the GPU backend.

use super::ReferenceSim;
use crate::error::{Result, TesseraError};
use crate::sim::{Graph, Intervention, Interventions, ScmBatch, ScmConfig, SimBackend, TargetRule};

/// Builds a backend for a batch of models. Any `Fn(&ScmBatch) -> Result<B>` is one.
pub trait SimFactory {
    /// The backend it builds.
    type Backend: SimBackend;
    /// Builds a backend sampling `scm`.
    fn create(&self, scm: &ScmBatch) -> Result<Self::Backend>;
}

impl<B: SimBackend, F: Fn(&ScmBatch) -> Result<B>> SimFactory for F {
    type Backend = B;
    fn create(&self, scm: &ScmBatch) -> Result<B> {
        self(scm)
    }
}

/// The configurations the scenarios sample: sizes 1 and non-multiples of 4 (the
/// Philox block), both graph models, in-degree scaling, both target rules.
pub fn configs() -> Vec<ScmConfig> {
    let mut scale_free =
        ScmConfig::new(5, 20, 11).with_graph(Graph::ScaleFree { edges_per_node: 2 });
    scale_free.scale_by_in_degree = true;
    let mut non_root = ScmConfig::new(3, 7, 4);
    non_root.target = TargetRule::NonRoot;
    vec![
        ScmConfig::new(1, 1, 1),
        ScmConfig::new(4, 5, 2),
        non_root,
        scale_free,
        ScmConfig::new(2, 33, 9).with_graph(Graph::ErdosRenyi {
            expected_degree: 1.5,
        }),
    ]
}

/// Per-environment interventions: a do on the first non-target variable and a shift
/// on the second, where they exist.
pub fn some_interventions(scm: &ScmBatch) -> Vec<Intervention> {
    let (b, d) = (scm.batch(), scm.n_vars());
    let mut ivs = vec![Intervention::OBSERVE; b * d];
    for env in 0..b {
        let target = scm.targets()[env] as usize;
        let mut others = (0..d).filter(|&v| v != target);
        if let Some(v) = others.next() {
            ivs[env * d + v] = Intervention::clamp(1.5);
        }
        if let Some(v) = others.next() {
            ivs[env * d + v] = Intervention::shift(-2.0);
        }
    }
    ivs
}

fn assert_close(what: &str, got: &[f32], want: &[f64], d: usize) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (r, (g, w)) in got.chunks(d).zip(want.chunks(d)).enumerate() {
        let scale = 1.0 + w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (k, (&g, &w)) in g.iter().zip(w).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= 2e-4 * scale,
                "{what}: row {r}, variable {k}: got {g}, the reference {w}"
            );
        }
    }
}

/// Every configuration, observational and under per-environment and per-row
/// interventions, agrees with the f64 reference.
pub fn matches_reference<F: SimFactory>(f: &F) {
    for config in configs() {
        let scm = ScmBatch::generate(&config).unwrap();
        let reference = ReferenceSim::new(&scm).unwrap();
        let mut backend = f.create(&scm).unwrap();
        let d = scm.n_vars();
        let per_env = some_interventions(&scm);
        let rows = 6;
        let mut per_row = Vec::new();
        for env in 0..scm.batch() {
            for r in 0..rows {
                let row = &per_env[env * d..][..d];
                per_row.extend(row.iter().map(|iv| {
                    if r % 2 == 0 {
                        *iv
                    } else {
                        Intervention::OBSERVE
                    }
                }));
            }
        }
        for (name, ivs) in [
            ("observational", Interventions::None),
            ("per-environment", Interventions::PerEnv(&per_env)),
            ("per-row", Interventions::PerRow(&per_row)),
        ] {
            for draw in [0, 7] {
                let got = backend.sample(draw, rows, &ivs).unwrap();
                let want = reference.sample_f64(draw, rows, &ivs).unwrap();
                assert_close(&format!("{config:?} {name} draw {draw}"), &got, &want, d);
            }
        }
    }
}

/// Sample means and covariances match the model's analytic ones within Monte Carlo
/// error, observationally and under do and shift interventions (a clamped variable is
/// the constant, its former parents keep their distribution, its children move).
pub fn moments_match_the_model<F: SimFactory>(f: &F) {
    let scm = ScmBatch::generate(&ScmConfig::new(2, 5, 21)).unwrap();
    let mut backend = f.create(&scm).unwrap();
    let (d, rows) = (scm.n_vars(), 20_000);
    let ivs = some_interventions(&scm);
    for (name, interventions) in [("observational", None), ("intervened", Some(&ivs))] {
        let samples = match interventions {
            None => backend.sample(3, rows, &Interventions::None),
            Some(ivs) => backend.sample(3, rows, &Interventions::PerEnv(ivs)),
        }
        .unwrap();
        for env in 0..scm.batch() {
            let (mean, cov) = scm.moments(env, interventions.map(|ivs| &ivs[env * d..][..d]));
            let x = &samples[env * rows * d..][..rows * d];
            let n = rows as f64;
            let m: Vec<f64> = (0..d)
                .map(|k| x.chunks(d).map(|r| f64::from(r[k])).sum::<f64>() / n)
                .collect();
            for a in 0..d {
                let sd = cov[a * d + a].sqrt();
                assert!(
                    (m[a] - mean[a]).abs() <= 5.0 * sd / n.sqrt() + 1e-5,
                    "{name} env {env} var {a}: mean {} vs {}",
                    m[a],
                    mean[a]
                );
                for b in 0..d {
                    let c = x
                        .chunks(d)
                        .map(|r| (f64::from(r[a]) - m[a]) * (f64::from(r[b]) - m[b]))
                        .sum::<f64>()
                        / (n - 1.0);
                    let se =
                        ((cov[a * d + a] * cov[b * d + b] + cov[a * d + b].powi(2)) / n).sqrt();
                    assert!(
                        (c - cov[a * d + b]).abs() <= 5.0 * se + 1e-5,
                        "{name} env {env} cov({a}, {b}): {c} vs {}",
                        cov[a * d + b]
                    );
                }
            }
            if let Some(ivs) = interventions {
                for v in 0..d {
                    if ivs[env * d + v].kind == 1 {
                        assert!(x.chunks(d).all(|r| r[v] == ivs[env * d + v].value));
                    }
                }
            }
        }
    }
}

/// A draw is a pure function of (seed, environment, draw, row): the same draw gives
/// the same samples, another draw others, and environment `e` samples the same in a
/// batch of 3 as in a batch of 8.
pub fn draws_are_reproducible_and_split_invariant<F: SimFactory>(f: &F) {
    let small = ScmBatch::generate(&ScmConfig::new(3, 6, 77)).unwrap();
    let large = ScmBatch::generate(&ScmConfig::new(8, 6, 77)).unwrap();
    let (mut a, mut b) = (f.create(&small).unwrap(), f.create(&large).unwrap());
    let first = a.sample(5, 4, &Interventions::None).unwrap();
    assert_eq!(first, a.sample(5, 4, &Interventions::None).unwrap());
    assert_ne!(first, a.sample(6, 4, &Interventions::None).unwrap());
    let wide = b.sample(5, 4, &Interventions::None).unwrap();
    assert_eq!(first, wide[..first.len()]);
    assert_eq!(small.targets(), &large.targets()[..3]);
}

/// Bad calls are typed errors, and the backend still samples afterwards.
pub fn bad_input_is_typed<F: SimFactory>(f: &F) {
    let scm = ScmBatch::generate(&ScmConfig::new(2, 4, 5)).unwrap();
    let mut backend = f.create(&scm).unwrap();
    let good = backend.sample(0, 3, &Interventions::None).unwrap();
    let mut ivs = vec![Intervention::OBSERVE; 8];
    assert!(matches!(
        backend.sample(0, 0, &Interventions::None),
        Err(TesseraError::InvalidArgument { what: "rows", .. })
    ));
    assert!(matches!(
        backend.sample(0, 3, &Interventions::PerEnv(&ivs[..7])),
        Err(TesseraError::ShapeMismatch {
            what: "interventions",
            ..
        })
    ));
    ivs[3].kind = 7;
    assert!(matches!(
        backend.sample(0, 3, &Interventions::PerEnv(&ivs)),
        Err(TesseraError::InvalidArgument { .. })
    ));
    ivs[3] = Intervention::clamp(f32::NAN);
    assert!(matches!(
        backend.sample(0, 3, &Interventions::PerEnv(&ivs)),
        Err(TesseraError::NonFinite { .. })
    ));
    ivs[3] = Intervention::shift(1e20);
    assert!(matches!(
        backend.sample(0, 3, &Interventions::PerEnv(&ivs)),
        Err(TesseraError::TooLarge { .. })
    ));
    assert!(matches!(
        backend.sample(0, 1 << 31, &Interventions::None),
        Err(TesseraError::DeviceLimit { .. })
    ));
    assert_eq!(backend.sample(0, 3, &Interventions::None).unwrap(), good);
}

/// Instantiates the simulator parity suite for one backend. `$factory` is an
/// expression of type `Option<F>` with `F:` [`SimFactory`]; `None` skips.
#[macro_export]
macro_rules! sim_parity_suite {
    ($factory:expr) => {
        $crate::sim_parity_suite!(@tests $factory; matches_reference, moments_match_the_model,
            draws_are_reproducible_and_split_invariant, bad_input_is_typed);
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $factory {
                    $crate::reference::sim_parity::$name(&f);
                }
            }
        )*
    };
}
