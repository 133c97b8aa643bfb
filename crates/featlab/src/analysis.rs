//! Reading dynamics off recorded curves: drop times of a staircase loss.

/// Drop times of a staircase: for consecutive plateau levels ℓ_{k−1} > ℓ_k, the k-th drop
/// time is the first time the loss crosses the midpoint (ℓ_{k−1} + ℓ_k)/2 (the AGF paper's
/// convention, Kunin et al. 2025), located by linear interpolation in log-loss between
/// the two recorded points that bracket it. `levels` starts with the initial level ℓ_0;
/// the result has `levels.len() − 1` entries, `None` where the curve never crosses.
pub fn midpoint_crossings(t: &[f64], loss: &[f64], levels: &[f64]) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for k in 1..levels.len() {
        let target = 0.5 * (levels[k - 1] + levels[k]);
        let mut found = None;
        for i in start.max(1)..t.len() {
            if loss[i] <= target && loss[i - 1] > target {
                let (l0, l1) = (loss[i - 1], loss[i]);
                let frac = if l0 > 0.0 && l1 > 0.0 && target > 0.0 {
                    (l0.ln() - target.ln()) / (l0.ln() - l1.ln())
                } else {
                    (l0 - target) / (l0 - l1)
                };
                found = Some(t[i - 1] + frac * (t[i] - t[i - 1]));
                start = i;
                break;
            }
        }
        out.push(found);
    }
    out
}

/// Count plateaus and drops of a loss curve recorded on a log-spaced time grid, without
/// theory: a drop is a maximal run of rows where the loss falls by more than `drop_factor`
/// per row-span of `window` rows; plateaus are the stretches between drops (and before the
/// first). Returns the drop onset times.
pub fn detect_drops(t: &[f64], loss: &[f64], window: usize, drop_factor: f64) -> Vec<f64> {
    let n = t.len();
    let mut drops = Vec::new();
    let mut in_drop = false;
    for i in window..n {
        let falling = loss[i] > 0.0 && loss[i - window] / loss[i] > drop_factor;
        if falling && !in_drop {
            drops.push(t[i - window]);
            in_drop = true;
        } else if !falling {
            in_drop = false;
        }
    }
    drops
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn crossings_of_a_synthetic_staircase() {
        // loss steps from 4 → 2 at t=1 and 2 → 1 at t=3 (smoothed)
        let t: Vec<f64> = (0..400).map(|i| i as f64 * 0.01).collect();
        let loss: Vec<f64> = t
            .iter()
            .map(|&s| {
                1.0 + 1.0 / (1.0 + ((s - 3.0) * 40.0).exp())
                    + 2.0 / (1.0 + ((s - 1.0) * 40.0).exp())
            })
            .collect();
        let c = midpoint_crossings(&t, &loss, &[4.0, 2.0, 1.0]);
        assert!((c[0].unwrap() - 1.0).abs() < 0.01, "{c:?}");
        assert!((c[1].unwrap() - 3.0).abs() < 0.01, "{c:?}");
        let none = midpoint_crossings(&t, &loss, &[4.0, 2.0, 1.0, 0.1]);
        assert!(none[2].is_none());
    }
}

/// A least-squares power law `y ≈ c·x^b`, fitted as the line `ln y = ln c + b ln x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawFit {
    /// Exponent `b` (slope in log–log).
    pub exponent: f64,
    /// Standard error of `b`: `sqrt(RSS / (n − 2) / Σ(ln xᵢ − mean ln x)²)`; NaN when n = 2.
    pub stderr: f64,
    /// Prefactor `c`.
    pub prefactor: f64,
    /// Number of points used.
    pub n: usize,
}

/// Ordinary least squares of `ln y` on `ln x` over the points with finite, positive `x` and
/// `y`; `None` with fewer than two such points or when all their `x` are equal.
pub fn power_law_fit(x: &[f64], y: &[f64]) -> Option<PowerLawFit> {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite() && **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    let rss: f64 = pts.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let stderr = if n > 2 {
        (rss / (n - 2) as f64 / sxx).sqrt()
    } else {
        f64::NAN
    };
    Some(PowerLawFit {
        exponent: b,
        stderr,
        prefactor: a.exp(),
        n,
    })
}

/// A least-squares straight line `y ≈ a + b·u`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Intercept `a`.
    pub intercept: f64,
    /// Slope `b`.
    pub slope: f64,
    /// Standard error of `b`: `sqrt(RSS / (n − 2) / Σ(uᵢ − mean u)²)`; NaN when n = 2.
    pub stderr: f64,
    /// Number of points used.
    pub n: usize,
}

/// Ordinary least squares of `y` on `u` over the points where both are finite; `None`
/// with fewer than two such points or when all their `u` are equal. With `u = ln(1/x)` it
/// is the fit `y ≈ a + b·log(1/x)` of a plateau length against the initialisation scale
/// (AGF: the time to escape a saddle grows like log(1/α), Kunin et al. 2025).
pub fn line_fit(u: &[f64], y: &[f64]) -> Option<LineFit> {
    let pts: Vec<(f64, f64)> = u
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .collect();
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let mu = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let suu: f64 = pts.iter().map(|p| (p.0 - mu).powi(2)).sum();
    if suu <= 0.0 {
        return None;
    }
    let suy: f64 = pts.iter().map(|p| (p.0 - mu) * (p.1 - my)).sum();
    let b = suy / suu;
    let a = my - b * mu;
    let rss: f64 = pts.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let stderr = if n > 2 {
        (rss / (n - 2) as f64 / suu).sqrt()
    } else {
        f64::NAN
    };
    Some(LineFit {
        intercept: a,
        slope: b,
        stderr,
        n,
    })
}

#[cfg(test)]
mod line_fit_tests {
    use super::*;

    #[test]
    fn log_law_recovered_exactly_and_noise_gives_a_stderr() {
        // y = 3 + 2·ln(1/x) at x = 1e-1 … 1e-5.
        let x = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5];
        let u: Vec<f64> = x.iter().map(|v: &f64| (1.0 / v).ln()).collect();
        let y: Vec<f64> = u.iter().map(|u| 3.0 + 2.0 * u).collect();
        let f = line_fit(&u, &y).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 3.0).abs() < 1e-12);
        assert!(f.stderr < 1e-12 && f.n == 5);
        let noisy: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let g = line_fit(&u, &noisy).unwrap();
        assert!(g.stderr > 1e-3 && (g.slope - 2.0).abs() < 5.0 * g.stderr);
        assert!(line_fit(&[1.0, 1.0], &[2.0, 3.0]).is_none());
        assert!(line_fit(&[1.0, f64::NAN], &[2.0, 3.0]).is_none());
    }
}

#[cfg(test)]
mod power_law_tests {
    use super::*;

    #[test]
    fn exact_power_law_and_standard_error() {
        let x = [1.0, 2.0, 4.0, 8.0, 16.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| 3.0 * v.powf(-0.5)).collect();
        let f = power_law_fit(&x, &y).unwrap();
        assert!(
            (f.exponent + 0.5).abs() < 1e-12
                && (f.prefactor - 3.0).abs() < 1e-12
                && f.stderr < 1e-12
        );
        // Residuals ±δ alternating in ln y on ln x = k ln 2: the textbook SE formula by hand.
        let d = 0.1f64;
        let ly: Vec<f64> = (0..5)
            .map(|k| 1.0 + 2.0 * k as f64 * 2f64.ln() + if k % 2 == 0 { d } else { -d })
            .collect();
        let f = power_law_fit(&x, &ly.iter().map(|v| v.exp()).collect::<Vec<_>>()).unwrap();
        let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
        let mx = lx.iter().sum::<f64>() / 5.0;
        let sxx: f64 = lx.iter().map(|v| (v - mx).powi(2)).sum();
        let myy = ly.iter().sum::<f64>() / 5.0;
        let b = lx
            .iter()
            .zip(&ly)
            .map(|(a, c)| (a - mx) * (c - myy))
            .sum::<f64>()
            / sxx;
        let a = myy - b * mx;
        let rss: f64 = lx
            .iter()
            .zip(&ly)
            .map(|(u, v)| (v - a - b * u).powi(2))
            .sum();
        assert!((f.exponent - b).abs() < 1e-12);
        assert!((f.stderr - (rss / 3.0 / sxx).sqrt()).abs() < 1e-12 && f.stderr > 0.0);
        assert!(power_law_fit(&[1.0, -1.0], &[1.0, 1.0]).is_none());
        assert!(power_law_fit(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]).is_none());
        assert!(power_law_fit(&[1.0, 2.0], &[1.0, 2.0])
            .unwrap()
            .stderr
            .is_nan());
    }
}
