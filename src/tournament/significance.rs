//! Which gaps in a ranking are real: 95% confidence intervals of a
//! strategy's mean, and of the difference between two strategies' means,
//! by the percentile bootstrap.
//!
//! Resampling is seeded (the same tables for the same results, run after
//! run). Its cost is resamples × samples; past [`BOOTSTRAP_LIMIT`] samples
//! the bootstrap distribution of a mean is normal to well within the
//! printed digits, so the normal interval (mean ± 1.96 standard errors) is
//! used instead, which costs one pass.

use crate::core::rng::SplitMix64;

/// Resamples per interval.
pub const RESAMPLES: usize = 2_000;
/// Samples beyond which the normal interval stands in for the bootstrap.
pub const BOOTSTRAP_LIMIT: usize = 20_000;
/// The two-sided 95% quantile of the normal distribution.
const Z95: f64 = 1.959_963_984_540_054;
const SEED: u64 = 0x5eed_0fc0_ffee;

/// A 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether the interval leaves 0 out: a difference that is real at 95%.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

fn standard_error(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64;
    (var / x.len() as f64).sqrt()
}

fn resampled_mean(x: &[f64], rng: &mut SplitMix64) -> f64 {
    let n = x.len() as u64;
    (0..x.len()).map(|_| x[rng.below(n) as usize]).sum::<f64>() / x.len() as f64
}

/// The 2.5% and 97.5% points of `draws` (sorted here).
fn percentiles(mut draws: Vec<f64>) -> Interval {
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    Interval { low: at(0.025), high: at(0.975) }
}

/// The 95% interval of the mean of `x`; `None` for no samples.
pub fn mean_interval(x: &[f64]) -> Option<Interval> {
    if x.is_empty() {
        return None;
    }
    if x.len() > BOOTSTRAP_LIMIT {
        let (m, se) = (mean(x), standard_error(x));
        return Some(Interval { low: m - Z95 * se, high: m + Z95 * se });
    }
    let mut rng = SplitMix64::new(SEED);
    Some(percentiles((0..RESAMPLES).map(|_| resampled_mean(x, &mut rng)).collect()))
}

/// The 95% interval of mean(a) − mean(b), each resampled on its own (the
/// strategies' samples are different negotiations or different seats);
/// `None` where either has no samples.
pub fn difference_interval(a: &[f64], b: &[f64]) -> Option<Interval> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.len().max(b.len()) > BOOTSTRAP_LIMIT {
        let d = mean(a) - mean(b);
        let se = (standard_error(a).powi(2) + standard_error(b).powi(2)).sqrt();
        return Some(Interval { low: d - Z95 * se, high: d + Z95 * se });
    }
    let mut rng = SplitMix64::new(SEED);
    Some(percentiles((0..RESAMPLES).map(|_| resampled_mean(a, &mut rng) - resampled_mean(b, &mut rng)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal_like(n: usize, centre: f64, seed: u64) -> Vec<f64> {
        // Sums of uniforms: close enough to normal for coverage checks.
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| centre + (0..12).map(|_| rng.next_f64()).sum::<f64>() - 6.0).collect()
    }

    #[test]
    fn intervals_cover_the_mean_about_95_times_in_100() {
        let covered = (0..200).filter(|&s| mean_interval(&normal_like(60, 0.5, s)).unwrap().contains(0.5)).count();
        assert!((180..=199).contains(&covered), "covered {covered} of 200");
    }

    impl Interval {
        fn contains(&self, x: f64) -> bool {
            self.low <= x && x <= self.high
        }
    }

    #[test]
    fn a_real_gap_is_told_from_noise() {
        let a = normal_like(200, 1.2, 1);
        let b = normal_like(200, 0.5, 2);
        let c = normal_like(200, 0.5, 3);
        assert!(
            difference_interval(&a, &b).unwrap().excludes_zero(),
            "{:?} {} {}",
            difference_interval(&a, &b),
            mean(&a),
            mean(&b)
        );
        assert!(!difference_interval(&b, &c).unwrap().excludes_zero());
        assert_eq!(difference_interval(&a, &b), difference_interval(&a, &b), "seeded: the same interval twice");
        assert_eq!(mean_interval(&[]), None);
        let one = mean_interval(&[0.3]).unwrap();
        assert_eq!((one.low, one.high), (0.3, 0.3));
    }

    #[test]
    fn the_normal_interval_takes_over_where_the_bootstrap_would_cost_too_much() {
        let x = normal_like(BOOTSTRAP_LIMIT + 1, 0.2, 4);
        let big = mean_interval(&x).unwrap();
        let small = mean_interval(&x[..BOOTSTRAP_LIMIT]).unwrap();
        // Both ≈ mean ± 1.96 · 1/√n (unit variance): widths within 5%.
        let (wb, ws) = (big.high - big.low, small.high - small.low);
        assert!((wb / ws - 1.0).abs() < 0.05, "{wb} vs {ws}");
    }
}
