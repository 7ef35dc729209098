//! Closed forms: the test oracles of the estimators and population scaling.

use crate::error::{Result, TesseraError};

/// The standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// `E[max(X, 0)] − max(E[X], 0)` for `X ~ N(mean, sd²)`:
/// `sd·φ(mean/sd) + mean·Φ(mean/sd) − max(mean, 0)`.
pub fn normal_max_gain(mean: f64, sd: f64) -> f64 {
    if sd == 0.0 {
        return 0.0;
    }
    let z = mean / sd;
    sd * normal_pdf(z) + mean * normal_cdf(z) - mean.max(0.0)
}

/// EVPI of two strategies whose incremental net benefit is `N(mean, sd²)`.
pub fn normal_evpi(mean: f64, sd: f64) -> f64 {
    normal_max_gain(mean, sd)
}

/// EVSI of a two-arm study of `n` patients in all (`n/2` per arm) measuring an
/// outcome with standard deviation `outcome_sd`, for an incremental net benefit with
/// a `N(prior_mean, prior_sd²)` prior: the study's estimate has sampling variance
/// `4·outcome_sd²/n`, and the preposterior mean is normal with variance
/// `prior_sd⁴ / (prior_sd² + 4·outcome_sd²/n)`.
pub fn normal_two_arm_evsi(prior_mean: f64, prior_sd: f64, outcome_sd: f64, n: f64) -> f64 {
    let sampling = 4.0 * outcome_sd * outcome_sd / n;
    let v = prior_sd.powi(4) / (prior_sd * prior_sd + sampling);
    normal_max_gain(prior_mean, v.sqrt())
}

/// How benefits in future years are discounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discounting {
    /// Yearly: `Σ_{t=0}^{T−1} (1+r)^−t` as an annuity, `(1 − (1+r)^−T)/r`.
    Discrete,
    /// Continuous: `∫_0^T e^−rt dt = (1 − e^−rT)/r`.
    Continuous,
}

/// The factor that turns a per-person value into a population's: `population` people a
/// year for `horizon` years, discounted at `rate` (both conventions give `horizon`
/// at a rate of 0).
pub fn population_factor(
    population: f64,
    rate: f64,
    horizon: f64,
    discounting: Discounting,
) -> Result<f64> {
    for (what, v) in [
        ("population", population),
        ("discount rate", rate),
        ("horizon", horizon),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(TesseraError::InvalidArgument {
                what,
                value: v,
                expected: "a finite value >= 0",
            });
        }
    }
    let annuity = if rate == 0.0 {
        horizon
    } else {
        match discounting {
            Discounting::Discrete => -(-horizon * rate.ln_1p()).exp_m1() / rate,
            Discounting::Continuous => -(-rate * horizon).exp_m1() / rate,
        }
    };
    Ok(population * annuity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_closed_forms() {
        assert!((normal_evpi(1.0, 2.0) - 0.395_593_114_802_612_17).abs() < 1e-15);
        let v = normal_two_arm_evsi(1.0, 2.0, 1.0, 100.0);
        assert!((v - 0.392_100_826_004_08).abs() < 1e-13, "{v}");
        let d = population_factor(1.0, 0.035, 10.0, Discounting::Discrete).unwrap();
        let c = population_factor(1.0, 0.035, 10.0, Discounting::Continuous).unwrap();
        assert!((d - 8.316_605_322_577_937).abs() < 1e-12, "{d}");
        assert!((c - 8.437_483_150_893_9).abs() < 1e-12, "{c}");
        for disc in [Discounting::Discrete, Discounting::Continuous] {
            assert_eq!(population_factor(2.0, 0.0, 10.0, disc).unwrap(), 20.0);
        }
        assert!(population_factor(-1.0, 0.0, 10.0, Discounting::Discrete).is_err());
        assert!(population_factor(1.0, -0.01, 10.0, Discounting::Discrete).is_err());
        assert!(population_factor(1.0, f64::NAN, 10.0, Discounting::Discrete).is_err());
    }
}
