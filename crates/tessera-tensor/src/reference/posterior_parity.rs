//! The posterior parity suite: scenarios written once against [`PosteriorBackend`],
//! run through [`posterior_parity_suite!`](crate::posterior_parity_suite) against the
//! reference and the CPU backend.

use super::{ReferencePosterior, ReferenceSim};
use crate::error::{Result, TesseraError};
use crate::sim::{
    Intervention, Interventions, PosteriorBackend, PosteriorConfig, ScmBatch, ScmConfig, SimBackend,
};

/// How closely a backend must agree with the f64 reference.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative error of a log marginal likelihood (with an absolute floor of the same).
    pub log_ml: f64,
    /// Absolute error of a marginal parent probability.
    pub marginal: f32,
    /// Absolute error of the entropy, in bits.
    pub entropy: f32,
    /// A MAP set is compared only where the reference's best two sets differ by more
    /// than this many nats (closer ones are ties at this precision).
    pub map_gap: f64,
    /// Rows of the concentration scenario (f32 scores resolve fewer).
    pub concentration_rows: usize,
}

impl Tolerance {
    /// A backend that computes in f64 (the CPU).
    pub const F64: Self = Self {
        log_ml: 1e-9,
        marginal: 1e-6,
        entropy: 1e-5,
        map_gap: 0.0,
        concentration_rows: 2000,
    };
    /// A backend that computes in f32 (the GPU).
    pub const F32: Self = Self {
        log_ml: 1e-4,
        marginal: 2e-3,
        entropy: 5e-3,
        map_gap: 0.05,
        concentration_rows: 600,
    };
}

/// Builds a posterior backend. Any `Fn(&PosteriorConfig) -> Result<B>` is one, held
/// to [`Tolerance::F64`].
pub trait PosteriorFactory {
    /// The backend it builds.
    type Backend: PosteriorBackend;
    /// An empty posterior for `config`.
    fn create(&self, config: &PosteriorConfig) -> Result<Self::Backend>;
    /// How closely it must agree with the reference.
    fn tolerance(&self) -> Tolerance {
        Tolerance::F64
    }
}

impl<B: PosteriorBackend, F: Fn(&PosteriorConfig) -> Result<B>> PosteriorFactory for F {
    type Backend = B;
    fn create(&self, config: &PosteriorConfig) -> Result<B> {
        self(config)
    }
}

/// A factory held to [`Tolerance::F32`] (the GPU's).
pub struct F32Factory<F>(pub F);

impl<B: PosteriorBackend, F: Fn(&PosteriorConfig) -> Result<B>> PosteriorFactory for F32Factory<F> {
    type Backend = B;
    fn create(&self, config: &PosteriorConfig) -> Result<B> {
        (self.0)(config)
    }
    fn tolerance(&self) -> Tolerance {
        Tolerance::F32
    }
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1.0)
}

/// Issue 10's test vector: rows (X1, X2, Y), candidates X1 and X2, k = 2,
/// lambda = a0 = b0 = 1.
pub const TEST_ROWS: [[f32; 3]; 10] = [
    [0.0, 0.39, -1.29],
    [0.3, 0.46, 0.1],
    [-0.27, -0.08, -1.13],
    [-0.89, -1.28, -0.61],
    [-0.45, -0.3, -0.3],
    [-0.99, -0.04, -1.02],
    [0.06, -1.04, -1.71],
    [1.34, 0.44, 0.83],
    [-0.49, -1.82, -0.48],
    [-0.62, -1.4, -0.48],
];

/// The test vector's log marginal likelihoods, posterior marginals and entropy.
pub fn test_vector<F: PosteriorFactory>(f: &F) {
    let mut p = f.create(&PosteriorConfig::new(3, vec![2], 2)).unwrap();
    let rows: Vec<f32> = TEST_ROWS.iter().flatten().copied().collect();
    // In two calls, to exercise accumulation.
    p.add_rows(&rows[..12], 4, &Interventions::None).unwrap();
    p.add_rows(&rows[12..], 6, &Interventions::None).unwrap();
    let tol = f.tolerance();
    let lml = p.log_marginal_likelihoods(0).unwrap();
    for (got, want) in lml
        .iter()
        .zip([-13.249375, -13.014010, -13.962772, -13.900410])
    {
        // The published figures have 6 decimals.
        assert!(close(*got, want, tol.log_ml.max(1e-7)), "log ML {lml:?}");
    }
    let s = p.posterior().unwrap();
    for (got, want) in s.marginals.iter().zip([0.545303, 0.308675, 0.0]) {
        assert!(
            (got - want).abs() < tol.marginal.max(1e-6),
            "marginals {:?}",
            s.marginals
        );
    }
    assert!(
        (s.entropy_bits[0] - 1.884563).abs() < tol.entropy,
        "entropy {}",
        s.entropy_bits[0]
    );
    assert_eq!(s.map_set(0), vec![0]);
    assert_eq!(s.rows[0], 10);
}

/// Samples from random SCMs under per-row interventions (do and shift on the target
/// included), scored with every `k`: the backend agrees with the reference.
pub fn matches_reference<F: PosteriorFactory>(f: &F) {
    let scm = ScmBatch::generate(&ScmConfig::new(6, 7, 31)).unwrap();
    let (b, d, rows) = (scm.batch(), scm.n_vars(), 40);
    let mut ivs = vec![Intervention::OBSERVE; b * rows * d];
    for env in 0..b {
        let target = scm.targets()[env] as usize;
        for r in 0..rows {
            let at = (env * rows + r) * d;
            match r % 5 {
                0 => ivs[at + target] = Intervention::clamp(0.5),
                1 => ivs[at + target] = Intervention::shift(1.0),
                2 => ivs[at + (target + 1) % d] = Intervention::clamp(-1.0),
                _ => {}
            }
        }
    }
    let samples = ReferenceSim::new(&scm)
        .unwrap()
        .sample(2, rows, &Interventions::PerRow(&ivs))
        .unwrap();
    for k in 0..=3 {
        let config = PosteriorConfig {
            sparsity: 0.5 * k as f64,
            ..PosteriorConfig::for_scm(&scm, k)
        };
        let mut backend = f.create(&config).unwrap();
        let mut reference = ReferencePosterior::new(&config).unwrap();
        for p in [&mut backend as &mut dyn PosteriorBackend, &mut reference] {
            p.add_rows(&samples, rows, &Interventions::PerRow(&ivs))
                .unwrap();
        }
        let (got, want) = (backend.posterior().unwrap(), reference.posterior().unwrap());
        assert_eq!(got.rows, want.rows, "k = {k}");
        assert!(
            got.rows.iter().all(|&n| n == 32),
            "rows with the target clamped are dropped"
        );
        let tol = f.tolerance();
        for (g, w) in got.marginals.iter().zip(&want.marginals) {
            assert!(
                (g - w).abs() <= tol.marginal,
                "k = {k}: marginals {:?} vs {:?}",
                got.marginals,
                want.marginals
            );
        }
        for (g, w) in got.entropy_bits.iter().zip(&want.entropy_bits) {
            assert!((g - w).abs() <= tol.entropy, "k = {k}: entropy {g} vs {w}");
        }
        for env in 0..b {
            let (g, w) = (
                backend.log_marginal_likelihoods(env).unwrap(),
                reference.log_marginal_likelihoods(env).unwrap(),
            );
            assert_eq!(g.len(), w.len());
            for (x, y) in g.iter().zip(&w) {
                assert!(close(*x, *y, tol.log_ml), "k = {k}, env {env}: {x} vs {y}");
            }
            // The MAP set, unless the reference's best two are a tie at this precision.
            let mut sorted = w.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted.len() < 2 || sorted[0] - sorted[1] > tol.map_gap {
                assert_eq!(got.map_sets[env], want.map_sets[env], "k = {k}, env {env}");
            }
        }
    }
}

/// With enough observational data the posterior concentrates on the true parents of
/// a sink target.
pub fn concentrates_on_true_parents<F: PosteriorFactory>(f: &F) {
    let mut config = ScmConfig::new(16, 6, 8);
    config.scale_by_in_degree = true;
    let scm = ScmBatch::generate(&config).unwrap();
    let rows = f.tolerance().concentration_rows;
    let samples = ReferenceSim::new(&scm)
        .unwrap()
        .sample(0, rows, &Interventions::None)
        .unwrap();
    let mut p = f.create(&PosteriorConfig::for_scm(&scm, 3)).unwrap();
    p.add_rows(&samples, rows, &Interventions::None).unwrap();
    let s = p.posterior().unwrap();
    let d = scm.n_vars();
    let (mut checked, mut non_parents, mut non_parent_mass) = (0, 0, 0.0);
    for env in 0..scm.batch() {
        let parents = scm.parents(env, scm.targets()[env]);
        if parents.len() > 3 {
            continue;
        }
        checked += 1;
        assert_eq!(s.map_set(env), parents, "env {env}");
        for v in (0..d as u32).filter(|&v| v != scm.targets()[env]) {
            let m = s.marginals[env * d + v as usize];
            if parents.contains(&v) {
                assert!(m > 0.9, "env {env}: parent {v} has marginal {m}");
            } else {
                // An irrelevant regressor keeps a Bayes factor of order 1/sqrt(n);
                // a chance correlation can lift one, not many.
                assert!(m < 0.5, "env {env}: non-parent {v} has marginal {m}");
                non_parents += 1;
                non_parent_mass += f64::from(m);
            }
        }
    }
    assert!(
        checked >= 12,
        "only {checked} environments had at most 3 parents"
    );
    let mean = non_parent_mass / f64::from(non_parents);
    // Measured with f64: 0.057 at 600 rows, 0.047 at 2000 (the prior's Bayes factor for
    // an irrelevant regressor, and chance correlations).
    assert!(mean < 0.08, "non-parents carry a mean marginal of {mean}");
}

/// Bad configurations and rows are typed errors, and a refused call changes nothing.
pub fn bad_input_is_typed<F: PosteriorFactory>(f: &F) {
    let base = PosteriorConfig::new(4, vec![3, 0], 2);
    for (what, config) in [
        (
            "k = 4",
            PosteriorConfig {
                max_parents: 4,
                ..base.clone()
            },
        ),
        ("k = d", PosteriorConfig::new(3, vec![0], 3)),
        ("d = 0", PosteriorConfig::new(0, vec![0], 0)),
        ("d = 300", PosteriorConfig::new(300, vec![0], 1)),
        ("target 9", PosteriorConfig::new(4, vec![9], 1)),
        ("no environment", PosteriorConfig::new(4, vec![], 1)),
        (
            "lambda 0",
            PosteriorConfig {
                lambda: 0.0,
                ..base.clone()
            },
        ),
        (
            "a0 < 0",
            PosteriorConfig {
                a0: -1.0,
                ..base.clone()
            },
        ),
        (
            "b0 NaN",
            PosteriorConfig {
                b0: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "sparsity -1",
            PosteriorConfig {
                sparsity: -1.0,
                ..base.clone()
            },
        ),
    ] {
        assert!(f.create(&config).is_err(), "{what} was accepted");
    }
    // k = 3 over 255 candidates for 4096 environments: refused with the set count.
    let huge = PosteriorConfig::new(256, vec![0; 4096], 3);
    match f.create(&huge) {
        Err(TesseraError::InvalidConfig {
            field: "max_parents",
            value,
            ..
        }) => {
            assert!(value.contains("2763776 parent sets"), "{value}");
        }
        other => panic!("expected a max_parents error, got {:?}", other.err()),
    }
    let mut p = f.create(&base).unwrap();
    let rows = vec![0.5f32; 2 * 3 * 4];
    p.add_rows(&rows, 3, &Interventions::None).unwrap();
    let before = p.posterior().unwrap();
    let mut nan = rows.clone();
    nan[5] = f32::NAN;
    assert!(matches!(
        p.add_rows(&nan, 3, &Interventions::None),
        Err(TesseraError::NonFinite { .. })
    ));
    assert!(matches!(
        p.add_rows(&rows[1..], 3, &Interventions::None),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    let short = vec![Intervention::OBSERVE; 7];
    assert!(matches!(
        p.add_rows(&rows, 3, &Interventions::PerEnv(&short)),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    assert!(p.log_marginal_likelihoods(2).is_err());
    assert_eq!(
        p.posterior().unwrap(),
        before,
        "a refused call changed the statistics"
    );
}

/// Instantiates the posterior parity suite for one backend (`Option<F>`, `None` skips).
#[macro_export]
macro_rules! posterior_parity_suite {
    ($factory:expr) => {
        $crate::posterior_parity_suite!(@tests $factory; test_vector, matches_reference,
            concentrates_on_true_parents, bad_input_is_typed);
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $factory {
                    $crate::reference::posterior_parity::$name(&f);
                }
            }
        )*
    };
}
