//! The value-of-information estimators against the closed forms and worked
//! tables, on every device (the CPU, the CPU pinned to scalar code, the GPU).

use tessera::voi::{
    DEFAULT_GP_FIT_ROWS, Discounting, EvppiOptions, Metamodel, Outcomes, Table, Voi, VoiWarning,
    acceptability_frontier, analytic, enbs, population_factor,
};
use tessera::{Backend, CpuDevice, Device, TesseraError};
use tessera_tensor::rng::Rng;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu(), Device::Cpu(CpuDevice::scalar())];
    if let Some(ctx) = tessera_gpu::testing::shared_context() {
        d.push(Device::from_context(ctx));
    }
    d
}

/// A standard normal in f64 (Box-Muller on two 53-bit uniforms).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Whether `got` is within `bound` of `want`, with a message.
fn near(what: &str, got: f64, want: f64, bound: f64) {
    assert!(
        (got - want).abs() <= bound,
        "{what}: {got}, expected {want} +- {bound}"
    );
}

fn nb_table(nb: &[f64], d: usize) -> Table<'_> {
    Table::new("nb", nb, nb.len() / d, d).unwrap()
}

#[test]
fn worked_tables_on_every_device() {
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let exact = device.backend() == Backend::Cpu;
        for (nb, d, want) in [
            (vec![10.0, 12.0, 11.0, 9.0, 13.0, 14.0], 2, 2.0 / 3.0),
            (
                vec![1e9, -1e9, -1e9, 1e9, 1.0, 1.0],
                2,
                666_666_666.666_666_6,
            ),
            (
                vec![
                    8.0, 2.0, 1.0, 0.0, 1.0, 9.0, 2.0, 0.0, 2.0, 1.0, 10.0, 0.0, 0.0, 2.0, 1.0,
                    11.0,
                ],
                4,
                6.0,
            ),
        ] {
            let got = voi.evpi(&Outcomes::NetBenefit(nb_table(&nb, d))).unwrap()[0].evpi;
            let bound = if exact { 1e-12 } else { 1e-6 } * want;
            near("worked EVPI", got, want, bound);
        }
    }
}

/// Draws of two strategies with incremental net benefit `N(mean, sd²)`.
fn normal_increments(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .flat_map(|_| [0.0, mean + sd * normal(&mut rng)])
        .collect()
}

#[test]
fn normal_evpi_matches_its_closed_form_within_monte_carlo_error() {
    let n = 1_000_000;
    let nb = normal_increments(n, 1.0, 2.0, 11);
    // EVPI estimate = mean(max(-x, 0)) here; its standard error from the draws.
    let losses: Vec<f64> = nb.chunks(2).map(|r| (-r[1]).max(0.0)).collect();
    let mean = losses.iter().sum::<f64>() / n as f64;
    let sd = (losses.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let se = sd / (n as f64).sqrt();
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let got = voi.evpi(&Outcomes::NetBenefit(nb_table(&nb, 2))).unwrap()[0].evpi;
        near(
            "normal EVPI",
            got,
            analytic::normal_evpi(1.0, 2.0),
            5.0 * se,
        );
        assert!((analytic::normal_evpi(1.0, 2.0) - 0.395_593_114_802_612_17).abs() < 1e-15);
    }
}

/// `t1 ~ N(1, 2)`, `t2 ~ N(0, 2)` (variances), incremental net benefit `t1 + t2`.
fn two_parameter_case(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let s = 2f64.sqrt();
    let params: Vec<f64> = (0..n)
        .flat_map(|_| [1.0 + s * normal(&mut rng), s * normal(&mut rng)])
        .collect();
    let nb = params.chunks(2).flat_map(|t| [0.0, t[0] + t[1]]).collect();
    (params, nb)
}

#[test]
fn evppi_of_one_parameter_matches_its_closed_form_for_every_metamodel() {
    let n = 100_000;
    let (params, nb) = two_parameter_case(n, 5);
    let want = 2f64.sqrt() * analytic::normal_pdf(1.0 / 2f64.sqrt())
        + analytic::normal_cdf(1.0 / 2f64.sqrt())
        - 1.0;
    assert!((want - 0.199_641_228_374_245_7).abs() < 1e-15);
    let p = Table::new("params", &params, n, 2).unwrap();
    let outcomes = Outcomes::NetBenefit(nb_table(&nb, 2));
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        for metamodel in [
            Metamodel::Auto,
            Metamodel::Linear,
            Metamodel::Polynomial { degree: 2 },
            Metamodel::Polynomial { degree: 3 },
            Metamodel::Gam,
            Metamodel::StrongOakley { blocks: None },
            Metamodel::Sadatsafavi { separators: 1 },
            Metamodel::Sadatsafavi { separators: 2 },
        ] {
            let options = EvppiOptions {
                metamodel,
                ..EvppiOptions::default()
            };
            let r = voi.evppi(&outcomes, &p, &[&[0]], &options).unwrap();
            // Monte Carlo error of about 0.002 on 10^5 draws.
            near(
                &format!("EVPPI by {metamodel:?}"),
                r[0].values[0],
                want,
                0.012,
            );
            assert!(r[0].within_bounds(), "{metamodel:?}: {:?}", r[0].warnings);
        }
        // Both parameters: EVPPI is the EVPI.
        let r = voi
            .evppi(&outcomes, &p, &[&[0, 1]], &EvppiOptions::default())
            .unwrap();
        near("EVPPI of both", r[0].values[0], r[0].evpi[0], 0.01);
    }
}

#[test]
fn segmentation_is_exact_when_net_benefits_are_monotone_in_the_parameter() {
    // Three strategies whose net benefits at every willingness-to-pay value are
    // functions of t1 alone, each pair crossing once: EVPPI(t1) is the EVPI, and the
    // segmentation finds every crossing, so it gives the EVPI to rounding (block
    // means do not).
    let n = 5000;
    let mut rng = Rng::new(11);
    let t1: Vec<f64> = (0..n).map(|_| 1e5 + normal(&mut rng)).collect();
    let params: Vec<f64> = t1.iter().flat_map(|&t| [t, normal(&mut rng)]).collect();
    let effects: Vec<f64> = t1
        .iter()
        .flat_map(|&t| [0.0, t - 1e5, 2.0 * (t - 1e5)])
        .collect();
    let costs: Vec<f64> = (0..n).flat_map(|_| [7e4, 7e4, 7e4 + 1.0]).collect();
    let wtp = [0.5, 1.0, 2.0];
    let outcomes = Outcomes::CostEffect {
        costs: Table::new("costs", &costs, n, 3).unwrap(),
        effects: Table::new("effects", &effects, n, 3).unwrap(),
        wtp: &wtp,
    };
    let p = Table::new("params", &params, n, 2).unwrap();
    let mut voi = Voi::on(&Device::cpu()).unwrap();
    for separators in [1, 3] {
        let options = EvppiOptions {
            metamodel: Metamodel::Sadatsafavi { separators },
            ..EvppiOptions::default()
        };
        let r = voi.evppi(&outcomes, &p, &[&[0], &[1]], &options).unwrap();
        for (k, (&v, &e)) in r[0].values.iter().zip(&r[0].evpi).enumerate() {
            assert!(e > 0.1, "EVPI {e} at {k}");
            near(&format!("EVPPI(t1) at {}", wtp[k]), v, e, 1e-9 * e);
        }
        // The other parameter is noise: its EVPPI is small against the EVPI.
        for (&v, &e) in r[1].values.iter().zip(&r[1].evpi) {
            assert!(v < 0.1 * e, "EVPPI(t2) {v} against EVPI {e}");
        }
    }
}

/// Six standard normal parameters; the incremental net benefit depends on the first
/// five through `f` (shapes no low-degree polynomial follows: a hinge times a line, an
/// exponential, an absolute value, a sine; each term but the constant has mean 0) plus
/// the sixth as noise, so `E[NB | t0..t4] = f` and EVPPI of the five is
/// `E max(0, f) − max(0, E f)`.
fn five_parameter_case(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let params: Vec<f64> = (0..n * 6).map(|_| normal(&mut rng)).collect();
    let nb = params
        .chunks(6)
        .flat_map(|t| [0.0, five_parameter_mean(t) + t[5]])
        .collect();
    (params, nb)
}

fn five_parameter_mean(t: &[f64]) -> f64 {
    0.2 + t[0].max(0.0) * t[1] + (0.5 * t[2]).exp() - 0.125f64.exp() + t[3].abs()
        - (2.0 / std::f64::consts::PI).sqrt()
        + 0.5 * (2.0 * t[4]).sin()
}

#[test]
fn a_gaussian_process_follows_a_nonlinear_five_parameter_group() {
    // The truth by Monte Carlo on the exact conditional mean (2·10^6 draws, error
    // about 0.002), E f = 0.2.
    let mut rng = Rng::new(99);
    let m = 2_000_000;
    let mut t = [0.0; 5];
    let mut sum = 0.0;
    for _ in 0..m {
        t.iter_mut().for_each(|v| *v = normal(&mut rng));
        sum += five_parameter_mean(&t).max(0.0);
    }
    let truth = sum / m as f64 - 0.2;
    let n = 20_000;
    let (params, nb) = five_parameter_case(n, 7);
    let p = Table::new("params", &params, n, 6).unwrap();
    let outcomes = Outcomes::NetBenefit(nb_table(&nb, 2));
    let group: &[usize] = &[0, 1, 2, 3, 4];
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let gp = voi
            .evppi(&outcomes, &p, &[group], &EvppiOptions::default())
            .unwrap();
        assert!(matches!(gp[0].metamodel, Metamodel::GaussianProcess { .. }));
        // The sampling error of 2·10^4 draws and the fit's error (measured: 0.311 to
        // 0.333 over four samples against 0.338; a quadratic gives 0.292 to 0.303).
        near("EVPPI by the process", gp[0].values[0], truth, 0.04);
        assert!(gp[0].within_bounds(), "{:?}", gp[0].warnings);
        // The same increments as effects, at no cost, over a grid: each response
        // column has its own process, and the EVPPI scales with k.
        let costs = vec![0.0; nb.len()];
        let wtp = [1.0, 2.0];
        let ce = Outcomes::CostEffect {
            costs: nb_table(&costs, 2),
            effects: nb_table(&nb, 2),
            wtp: &wtp,
        };
        let r = voi
            .evppi(&ce, &p, &[group], &EvppiOptions::default())
            .unwrap();
        near("EVPPI at k = 1", r[0].values[0], gp[0].values[0], 1e-9);
        near(
            "EVPPI at k = 2",
            r[0].values[1],
            2.0 * gp[0].values[0],
            1e-9,
        );
    }
    // A linear-Gaussian case has a closed form for any group: t_i ~ N(0, 1) and the
    // increment 0.3 + Σ t_i, so E[NB | G] ~ N(0.3, |G|).
    let n = 20_000;
    let mut rng = Rng::new(12);
    let params: Vec<f64> = (0..n * 7).map(|_| normal(&mut rng)).collect();
    let nb: Vec<f64> = params
        .chunks(7)
        .flat_map(|t| [0.0, 0.3 + t.iter().sum::<f64>()])
        .collect();
    let p = Table::new("params", &params, n, 7).unwrap();
    let outcomes = Outcomes::NetBenefit(nb_table(&nb, 2));
    let mut voi = Voi::on(&Device::cpu()).unwrap();
    let r = voi
        .evppi(
            &outcomes,
            &p,
            &[&[0, 1, 2, 3, 4], &[0, 1, 2, 3, 4, 5]],
            &EvppiOptions::default(),
        )
        .unwrap();
    for (r, g) in r.iter().zip([5.0f64, 6.0]) {
        let s = g.sqrt();
        let want = s * analytic::normal_pdf(0.3 / s) + 0.3 * analytic::normal_cdf(0.3 / s) - 0.3;
        near(&format!("EVPPI of {g} parameters"), r.values[0], want, 0.04);
    }
}

#[test]
fn posterior_draws_give_a_standard_error() {
    let n = 20_000;
    let (params, nb) = two_parameter_case(n, 8);
    let p = Table::new("params", &params, n, 2).unwrap();
    let outcomes = Outcomes::NetBenefit(nb_table(&nb, 2));
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let options = EvppiOptions {
            posterior_draws: 64,
            ..EvppiOptions::default()
        };
        let r = voi.evppi(&outcomes, &p, &[&[0]], &options).unwrap();
        let se = r[0].standard_errors.as_ref().unwrap()[0];
        assert!(se > 0.0 && se < 0.02, "{se}");
    }
}

#[test]
fn normal_normal_evsi_matches_its_closed_form() {
    // theta ~ N(1, 2^2) is the incremental net benefit; a two-arm study of 100
    // patients estimates it with sampling variance 4 * 1^2 / 100.
    let n = 200_000;
    let mut rng = Rng::new(21);
    let theta: Vec<f64> = (0..n).map(|_| 1.0 + 2.0 * normal(&mut rng)).collect();
    let summary: Vec<f64> = theta.iter().map(|t| t + 0.2 * normal(&mut rng)).collect();
    let nb: Vec<f64> = theta.iter().flat_map(|&t| [0.0, t]).collect();
    let want = analytic::normal_two_arm_evsi(1.0, 2.0, 1.0, 100.0);
    assert!((want - 0.392_100_826_004_08).abs() < 1e-13);
    let study = Table::new("summary", &summary, n, 1).unwrap();
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let r = voi
            .evsi(
                &Outcomes::NetBenefit(nb_table(&nb, 2)),
                &[study],
                &EvppiOptions::default(),
            )
            .unwrap();
        near("normal-normal EVSI", r[0].values[0], want, 0.01);
        let e = enbs(&[r[0].values[0], 0.0], 1000.0, &[100.0, 0.0]).unwrap();
        assert_eq!(e.optimal, 0);
    }
}

#[test]
fn the_gpu_in_f32_matches_the_cpu_in_f64_on_net_benefits_offset_by_1e5() {
    let Some(ctx) = tessera_gpu::testing::shared_context() else {
        return;
    };
    let n = 200_000;
    let mut rng = Rng::new(3);
    // f32-representable net benefits around 10^5 with an EVPI of about 10^2.
    let nb: Vec<f64> = (0..n)
        .flat_map(|_| {
            let a = (1e5 + 300.0 * normal(&mut rng)) as f32 as f64;
            let b = (1e5 + 50.0 + 300.0 * normal(&mut rng)) as f32 as f64;
            [a, b]
        })
        .collect();
    let outcomes = Outcomes::NetBenefit(nb_table(&nb, 2));
    let cpu = Voi::on(&Device::cpu()).unwrap().evpi(&outcomes).unwrap()[0].evpi;
    let gpu = Voi::on(&Device::from_context(ctx))
        .unwrap()
        .evpi(&outcomes)
        .unwrap()[0]
        .evpi;
    assert!(cpu > 50.0);
    near("GPU EVPI", gpu, cpu, 1e-5 * cpu);
}

#[test]
fn the_grid_pass_matches_net_benefits_at_each_value_and_gives_the_acceptability_curve() {
    let n = 5000;
    let d = 3;
    let mut rng = Rng::new(9);
    let costs: Vec<f64> = (0..n * d)
        .map(|i| (1e4 * (i % d) as f64 + 2e3 * normal(&mut rng)) as f32 as f64)
        .collect();
    let effects: Vec<f64> = (0..n * d)
        .map(|i| (1.0 + 0.4 * (i % d) as f64 + 0.3 * normal(&mut rng)) as f32 as f64)
        .collect();
    let wtp: Vec<f64> = (0..=10).map(|k| 5000.0 * k as f64).collect();
    let c = Table::new("costs", &costs, n, d).unwrap();
    let e = Table::new("effects", &effects, n, d).unwrap();
    let outcomes = Outcomes::CostEffect {
        costs: c,
        effects: e,
        wtp: &wtp,
    };
    let mut cpu = Voi::on(&Device::cpu()).unwrap();
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let curve = voi.evpi(&outcomes).unwrap();
        assert_eq!(curve.len(), wtp.len());
        for (k, point) in curve.iter().enumerate() {
            let nb: Vec<f64> = (0..n * d).map(|i| wtp[k] * effects[i] - costs[i]).collect();
            let want = &cpu.evpi(&Outcomes::NetBenefit(nb_table(&nb, d))).unwrap()[0];
            near(
                "grid EVPI",
                point.evpi,
                want.evpi,
                1e-4 * want.evpi.max(1.0),
            );
            assert_eq!(point.best, want.best);
            near(
                "probabilities sum to 1",
                point.probability_optimal.iter().sum(),
                1.0,
                1e-12,
            );
        }
        let frontier = acceptability_frontier(&curve);
        // Cheapest strategy at k = 0, the most effective at high willingness to pay.
        assert_eq!(frontier[0].0, 0);
        assert_eq!(frontier.last().unwrap().0, 2);
        // EVPPI over the grid from costs and effects, bounded by EVPI.
        let params: Vec<f64> = (0..n)
            .map(|i| effects[i * d + 2] - effects[i * d])
            .collect();
        let p = Table::new("params", &params, n, 1).unwrap();
        let r = voi
            .evppi(&outcomes, &p, &[&[0]], &EvppiOptions::default())
            .unwrap();
        assert_eq!(r[0].values.len(), wtp.len());
        for (v, e) in r[0].values.iter().zip(&r[0].evpi) {
            assert!(*v >= 0.0 && *v <= e * (1.0 + 1e-6) + 1e-9, "{v} > {e}");
        }
    }
}

#[test]
fn gam_fits_groups_of_two_to_four_parameters() {
    let n = 2000;
    let mut rng = Rng::new(4);
    let params: Vec<f64> = (0..n * 5).map(|_| normal(&mut rng)).collect();
    let nb: Vec<f64> = params
        .chunks(5)
        .flat_map(|t| {
            [
                0.0,
                0.3 + t[0] * t[1] + (t[2]).sin() + 0.5 * t[3] + 0.2 * t[4],
            ]
        })
        .collect();
    let p = Table::new("params", &params, n, 5).unwrap();
    let outcomes = Outcomes::NetBenefit(nb_table(&nb, 2));
    let mut voi = Voi::on(&Device::cpu()).unwrap();
    let groups: [&[usize]; 4] = [&[0, 1], &[0, 1, 2], &[0, 1, 2, 3], &[0, 1, 2, 3, 4]];
    let r = voi
        .evppi(&outcomes, &p, &groups, &EvppiOptions::default())
        .unwrap();
    assert_eq!(r[0].terms, 25);
    assert_eq!(r[1].terms, 64);
    assert_eq!(r[2].terms, 256);
    assert_eq!(
        r[3].metamodel,
        Metamodel::GaussianProcess {
            fit_rows: DEFAULT_GP_FIT_ROWS
        }
    );
    // More parameters never resolve less uncertainty (up to estimation error).
    assert!(r[0].values[0] <= r[1].values[0] + 0.01);
    assert!(r[1].values[0] <= r[2].values[0] + 0.01);
    assert!(r[2].values[0] <= r[0].evpi[0] * 1.05);
    // 256 terms on 2000 draws is fewer than 10 draws a term.
    assert!(
        r[2].warnings
            .iter()
            .any(|w| matches!(w, VoiWarning::ManyTerms { terms: 256, .. }))
    );
}

#[test]
fn structural_evpi_and_population_factors() {
    let a = [1.0, 0.0, 1.0, 0.0];
    let b = [0.0, 1.0, 0.0, 1.0];
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let s = voi
            .structural_evpi(&[(0.5, nb_table(&a, 2)), (0.5, nb_table(&b, 2))])
            .unwrap();
        near("structural EVPI", s, 0.5, 1e-6);
        assert!(voi.structural_evpi(&[(0.7, nb_table(&a, 2))]).is_err());
    }
    let d = population_factor(1.0, 0.035, 10.0, Discounting::Discrete).unwrap();
    let c = population_factor(1.0, 0.035, 10.0, Discounting::Continuous).unwrap();
    near("discrete annuity", d, 8.316_605_322_577_937, 1e-12);
    near("continuous annuity", c, 8.437_483_150_893_9, 1e-12);
    assert!(matches!(
        population_factor(-5.0, 0.035, 10.0, Discounting::Discrete),
        Err(TesseraError::InvalidArgument {
            what: "population",
            ..
        })
    ));
}

#[test]
fn bad_input_is_a_typed_error_on_every_device() {
    let nb = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert!(matches!(
        Table::new("nb", &nb[..], 2, 2),
        Err(TesseraError::ShapeMismatch { .. })
    ));
    let bad = [1.0, f64::NAN];
    assert!(matches!(
        Table::new("nb", &bad[..], 1, 2),
        Err(TesseraError::NonFinite {
            what: "nb",
            index: 1,
            ..
        })
    ));
    let params = [0.1, 0.2, 0.3];
    for device in devices() {
        let mut voi = Voi::on(&device).unwrap();
        let t = nb_table(&nb, 2);
        let one = Table::new("nb", &nb[..], 6, 1).unwrap();
        assert!(matches!(
            voi.evpi(&Outcomes::NetBenefit(one)),
            Err(TesseraError::InvalidArgument {
                what: "strategies",
                ..
            })
        ));
        let empty = Table::new("nb", &nb[..0], 0, 2).unwrap();
        assert!(voi.evpi(&Outcomes::NetBenefit(empty)).is_err());
        let p = Table::new("params", &params[..], 3, 1).unwrap();
        let o = Outcomes::NetBenefit(t);
        let options = EvppiOptions::default();
        assert!(matches!(
            voi.evppi(&o, &p, &[&[1]], &options),
            Err(TesseraError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            voi.evppi(&o, &p, &[&[]], &options),
            Err(TesseraError::InvalidArgument { .. })
        ));
        let p2 = Table::new("params", &params[..2], 2, 1).unwrap();
        assert!(matches!(
            voi.evppi(&o, &p2, &[&[0]], &options),
            Err(TesseraError::ShapeMismatch { .. })
        ));
        // A cubic of four terms on three draws.
        let gam = EvppiOptions {
            metamodel: Metamodel::Polynomial { degree: 3 },
            ..options
        };
        assert!(matches!(
            voi.evppi(&o, &p, &[&[0]], &gam),
            Err(TesseraError::InvalidArgument { .. })
        ));
        let two = Table::new("params", &nb[..], 3, 2).unwrap();
        // Single-parameter estimators on two parameters, and out-of-range settings.
        let refused = [
            Metamodel::StrongOakley { blocks: None },
            Metamodel::Sadatsafavi { separators: 1 },
            Metamodel::Sadatsafavi { separators: 0 },
            Metamodel::Sadatsafavi { separators: 9 },
            Metamodel::GaussianProcess { fit_rows: 0 },
            Metamodel::GaussianProcess { fit_rows: 9 },
            Metamodel::GaussianProcess { fit_rows: 5001 },
        ];
        for metamodel in refused {
            let options = EvppiOptions {
                metamodel,
                ..options
            };
            assert!(matches!(
                voi.evppi(&o, &two, &[&[0, 1]], &options),
                Err(TesseraError::InvalidConfig { .. })
            ));
            let one = voi.evppi(&o, &two, &[&[0]], &options);
            if metamodel == (Metamodel::Sadatsafavi { separators: 1 }) {
                assert!(one.unwrap()[0].values[0] >= 0.0);
            } else if !matches!(metamodel, Metamodel::StrongOakley { .. }) {
                assert!(matches!(one, Err(TesseraError::InvalidConfig { .. })));
            }
        }
        assert!(matches!(
            voi.evpi(&Outcomes::CostEffect {
                costs: t,
                effects: t,
                wtp: &[]
            }),
            Err(TesseraError::InvalidArgument { .. })
        ));
        assert!(enbs(&[1.0], -1.0, &[0.0]).is_err());
        assert!(enbs(&[1.0, 2.0], 1.0, &[0.0]).is_err());
        // The device still works afterwards.
        assert!(voi.evpi(&o).unwrap()[0].evpi >= 0.0);
    }
}

#[test]
fn f32_input_gives_the_f64_answer_on_the_cpu() {
    let nb64 = [10.0, 12.0, 11.0, 9.0, 13.0, 14.0];
    let nb32: Vec<f32> = nb64.iter().map(|&v| v as f32).collect();
    let mut voi = Voi::on(&Device::cpu()).unwrap();
    let a = voi
        .evpi(&Outcomes::NetBenefit(
            Table::new("nb", &nb64[..], 3, 2).unwrap(),
        ))
        .unwrap();
    let b = voi
        .evpi(&Outcomes::NetBenefit(
            Table::new("nb", &nb32, 3, 2).unwrap(),
        ))
        .unwrap();
    assert_eq!(a, b);
}
