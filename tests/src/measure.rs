//! Medians and interleaved rounds: these machines are shared and noisy, so
//! every benchmark alternates its configurations over several rounds and
//! reports the median of per-round medians.

use std::time::Instant;

/// The median of `xs` (sorted in place); 0 for an empty slice.
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Nanoseconds per iteration of `body`, timed over `iters` iterations.
pub fn ns_per_iter(iters: u32, mut body: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        body();
    }
    t.elapsed().as_nanos() as f64 / f64::from(iters)
}

/// Runs `configs` interleaved for `rounds` rounds (alternating which goes
/// first), each round taking `samples` samples per config, and returns the
/// median of round medians for each config.
pub fn interleaved(rounds: usize, samples: usize, configs: &mut [&mut dyn FnMut() -> f64]) -> Vec<f64> {
    let mut per_round: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); configs.len()];
    for round in 0..rounds {
        let n = configs.len();
        for k in 0..n {
            let c = if round % 2 == 0 { k } else { n - 1 - k };
            let mut s: Vec<f64> = (0..samples).map(|_| (configs[c])()).collect();
            per_round[c].push(median(&mut s));
        }
    }
    per_round.iter_mut().map(|r| median(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn interleaving_keeps_configs_apart() {
        let mut a = || 1.0;
        let mut b = || 5.0;
        assert_eq!(interleaved(3, 4, &mut [&mut a, &mut b]), vec![1.0, 5.0]);
    }
}
