//! A value-of-information analysis of a synthetic PSA: four strategies, four
//! parameters, 500 000 draws. EVPI, the acceptability curve over a willingness-to-pay
//! grid, EVPPI of parameter groups by four metamodels, and population scaling, on the
//! device `TESSERA_DEVICE` picks.
//!
//! `cargo run --release -p tessera --example voi_analysis [draws]`

use std::time::Instant;

use tessera::Device;
use tessera::voi::{
    Discounting, EvppiOptions, Metamodel, Outcomes, Table, Voi, acceptability_frontier,
    population_factor,
};
use tessera_tensor::rng::Rng;

fn normal(rng: &mut Rng) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn main() -> Result<(), tessera::TesseraError> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);
    let d = 4;
    let mut rng = Rng::new(1);
    let params: Vec<f64> = (0..n * 4).map(|_| normal(&mut rng)).collect();
    let (mut costs, mut effects) = (vec![0.0; n * d], vec![0.0; n * d]);
    for i in 0..n {
        let t = &params[i * 4..(i + 1) * 4];
        for s in 0..d {
            let k = s as f64;
            costs[i * d + s] = 1e4 + 3e3 * k + 500.0 * (t[0] * k - t[1]) + 200.0 * normal(&mut rng);
            effects[i * d + s] =
                1.0 + 0.12 * k + 0.05 * (t[2] * k + t[3]) + 0.02 * normal(&mut rng);
        }
    }
    let nb: Vec<f64> = (0..n * d)
        .map(|i| 25_000.0 * effects[i] - costs[i])
        .collect();
    let wtp: Vec<f64> = (0..=100).map(|k| 1000.0 * k as f64).collect();

    let device = Device::new_blocking();
    println!("{n} draws, {d} strategies, on {}", device.describe());
    let mut voi = Voi::on(&device)?;
    let nb_outcomes = Outcomes::NetBenefit(Table::new("net benefits", &nb, n, d)?);
    let grid = Outcomes::CostEffect {
        costs: Table::new("costs", &costs, n, d)?,
        effects: Table::new("effects", &effects, n, d)?,
        wtp: &wtp,
    };
    let p = Table::new("parameters", &params, n, 4)?;

    let t = Instant::now();
    let evpi = voi.evpi(&nb_outcomes)?;
    println!(
        "EVPI at 25 000/QALY: {:.2} per person, best strategy {} ({:.1?})",
        evpi[0].evpi,
        evpi[0].best,
        t.elapsed()
    );
    let t = Instant::now();
    let curve = voi.evpi(&grid)?;
    let frontier = acceptability_frontier(&curve);
    println!(
        "EVPI and acceptability at {} values ({:.1?}):",
        wtp.len(),
        t.elapsed()
    );
    for k in (0..wtp.len()).step_by(20) {
        println!(
            "  k = {:>6}: EVPI {:>8.2}, optimal {} with probability {:.3}",
            wtp[k], curve[k].evpi, frontier[k].0, frontier[k].1
        );
    }
    for (metamodel, groups) in [
        (Metamodel::Linear, vec![vec![0], vec![0, 1]]),
        (Metamodel::Gam, vec![vec![0], vec![2, 3]]),
        (
            Metamodel::Sadatsafavi { separators: 1 },
            vec![vec![0], vec![2]],
        ),
        // Auto's choice above 4 parameters, here on all four (seconds at 500K draws).
        (
            Metamodel::GaussianProcess { fit_rows: 1000 },
            vec![vec![0, 1, 2, 3]],
        ),
    ] {
        let refs: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
        let options = EvppiOptions {
            metamodel,
            ..EvppiOptions::default()
        };
        let t = Instant::now();
        let r = voi.evppi(&nb_outcomes, &p, &refs, &options)?;
        println!("EVPPI by {metamodel:?} ({:.1?}):", t.elapsed());
        for e in &r {
            println!(
                "  parameters {:?}: {:.2} of EVPI {:.2}{}",
                e.group,
                e.values[0],
                e.evpi[0],
                if e.within_bounds() {
                    ""
                } else {
                    " (exceeds EVPI!)"
                }
            );
        }
    }
    let scale = population_factor(10_000.0, 0.035, 10.0, Discounting::Discrete)?;
    println!(
        "Population EVPI (10 000 a year, 10 years at 3.5%): {:.0}",
        evpi[0].evpi * scale
    );
    Ok(())
}
