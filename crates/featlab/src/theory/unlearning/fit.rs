//! Ordinary least squares with standard errors, and power-law fits on log–log axes.
//!
//! `y = X β + e`: `β̂ = (XᵀX)⁻¹Xᵀy`, `s² = ‖y − Xβ̂‖² / (n − p)`, `Cov β̂ = s² (XᵀX)⁻¹`,
//! 95 % intervals `β̂_j ± t_{0.975, n−p} · se_j` (Student quantile by the Cornish–Fisher
//! expansion, Abramowitz & Stegun 26.7.5). The standard errors assume independent residuals;
//! on a deterministic trajectory they measure lack of fit (curvature), not noise.

use crate::{Error, Result};

/// Result of a least-squares fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeastSquares {
    pub coef: Vec<f64>,
    pub stderr: Vec<f64>,
    /// Half-width of the 95 % confidence interval of each coefficient.
    pub ci95: Vec<f64>,
    pub residual_std: f64,
    pub n: usize,
}

/// Two-sided 95 % Student-t quantile `t_{0.975, ν}` (Cornish–Fisher, error < 2e-3 for ν ≥ 3;
/// exact table values for ν = 1, 2).
pub fn student_t975(nu: usize) -> f64 {
    match nu {
        0 => f64::INFINITY,
        1 => 12.706_204_736,
        2 => 4.302_652_73,
        _ => {
            let z = 1.959_963_985_f64;
            let v = nu as f64;
            let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
        }
    }
}

fn solve_spd(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    // Gaussian elimination with partial pivoting (p is tiny).
    let p = b.len();
    for c in 0..p {
        let piv = (c..p).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[piv][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..p {
            let f = a[r][c] / a[c][c];
            let pivot_row = a[c].clone();
            for (x, y) in a[r][c..p].iter_mut().zip(&pivot_row[c..p]) {
                *x -= f * y;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; p];
    for r in (0..p).rev() {
        x[r] = (b[r] - (r + 1..p).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    Some(x)
}

/// Least squares of `y` on the columns of `x` (`x[j]` is regressor j, each of length n).
pub fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Result<LeastSquares> {
    let (p, n) = (x.len(), y.len());
    if p == 0 || n <= p || x.iter().any(|c| c.len() != n) {
        return Err(Error::config(
            "fit",
            format!("least squares needs n > p and equal lengths (n = {n}, p = {p})"),
        ));
    }
    if y.iter().chain(x.iter().flatten()).any(|v| !v.is_finite()) {
        return Err(Error::Numerical("least squares: non-finite data".into()));
    }
    let xtx: Vec<Vec<f64>> = (0..p)
        .map(|i| {
            (0..p)
                .map(|j| x[i].iter().zip(&x[j]).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    let xty: Vec<f64> = (0..p)
        .map(|i| x[i].iter().zip(y).map(|(a, b)| a * b).sum())
        .collect();
    let singular = || Error::Numerical("least squares: singular design matrix".into());
    let coef = solve_spd(xtx.clone(), xty).ok_or_else(singular)?;
    let rss: f64 = (0..n)
        .map(|r| (y[r] - (0..p).map(|j| coef[j] * x[j][r]).sum::<f64>()).powi(2))
        .sum();
    let s2 = rss / (n - p) as f64;
    let tq = student_t975(n - p);
    let mut stderr = Vec::with_capacity(p);
    for j in 0..p {
        let mut e = vec![0.0; p];
        e[j] = 1.0;
        let col = solve_spd(xtx.clone(), e).ok_or_else(singular)?;
        stderr.push((s2 * col[j]).max(0.0).sqrt());
    }
    let ci95 = stderr.iter().map(|s| s * tq).collect();
    Ok(LeastSquares {
        coef,
        stderr,
        ci95,
        residual_std: s2.sqrt(),
        n,
    })
}

/// A power law `y ≈ C t^β` fitted by least squares of `ln y` on `ln t`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PowerLawFit {
    pub exponent: f64,
    pub exponent_stderr: f64,
    pub exponent_ci95: f64,
    pub prefactor: f64,
    pub n: usize,
}

/// Fit `y = C t^β` on the points with `t_lo ≤ t ≤ t_hi`, `t > 0`, `y > 0`.
pub fn power_law(t: &[f64], y: &[f64], t_lo: f64, t_hi: f64) -> Result<PowerLawFit> {
    let (lt, ly): (Vec<f64>, Vec<f64>) = t
        .iter()
        .zip(y)
        .filter(|(t, y)| **t >= t_lo && **t <= t_hi && **t > 0.0 && **y > 0.0)
        .map(|(t, y)| (t.ln(), y.ln()))
        .unzip();
    if lt.len() < 3 {
        return Err(Error::config(
            "fit.window",
            format!("fewer than 3 positive points in [{t_lo}, {t_hi}]"),
        ));
    }
    let ls = least_squares(&[vec![1.0; lt.len()], lt], &ly)?;
    Ok(PowerLawFit {
        exponent: ls.coef[1],
        exponent_stderr: ls.stderr[1],
        exponent_ci95: ls.ci95[1],
        prefactor: ls.coef[0].exp(),
        n: ls.n,
    })
}

/// A power law with correction-to-scaling terms, `ln y = ln C + β ln t + Σ_i κ_i t^{−ω_i}`,
/// fitted by least squares on `t_lo ≤ t ≤ t_hi` (the correction exponents ω_i are given, e.g.
/// from the derivation; the leading exponent β stays free).
pub fn power_law_corrected(
    t: &[f64],
    y: &[f64],
    t_lo: f64,
    t_hi: f64,
    omegas: &[f64],
) -> Result<PowerLawFit> {
    let pts: Vec<(f64, f64)> = t
        .iter()
        .zip(y)
        .filter(|(t, y)| **t >= t_lo && **t <= t_hi && **t > 0.0 && **y > 0.0)
        .map(|(t, y)| (*t, y.ln()))
        .collect();
    if pts.len() < 3 + omegas.len() {
        return Err(Error::config(
            "fit.window",
            format!("too few positive points in [{t_lo}, {t_hi}]"),
        ));
    }
    let mut x = vec![vec![1.0; pts.len()], pts.iter().map(|p| p.0.ln()).collect()];
    for w in omegas {
        x.push(pts.iter().map(|p| p.0.powf(-w)).collect());
    }
    let ly: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let ls = least_squares(&x, &ly)?;
    Ok(PowerLawFit {
        exponent: ls.coef[1],
        exponent_stderr: ls.stderr[1],
        exponent_ci95: ls.ci95[1],
        prefactor: ls.coef[0].exp(),
        n: ls.n,
    })
}

/// A long-time exponent estimated over several fitting windows (deterministic curves).
///
/// Each window `[t_i, r t_i]` (log-spaced starts) gets the corrected fit of
/// [`power_law_corrected`]; the estimate is the exponent of the **latest** window (deepest in
/// the asymptotic regime) and the uncertainty is the **window spread**
/// `max_i |β_i − β_last|`: how much the estimate still moves when the window slides over the
/// range. On a noiseless trajectory this is the only honest error source (the residual
/// corrections to scaling that the fit omits); regression standard errors would only measure
/// the lack of fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WindowedExponent {
    pub exponent: f64,
    /// Half-width of the window-spread interval.
    pub spread: f64,
    /// Per-window `(t_lo, t_hi, exponent)`.
    pub windows: Vec<(f64, f64, f64)>,
}

/// Windowed exponent of `y ≈ C t^β (1 + Σ κ_i t^{−ω_i})` on `[t_lo, t_hi]`: `count` windows of
/// ratio `ratio` whose starts are log-spaced from `t_lo` to `t_hi / ratio`.
pub fn windowed_exponent(
    t: &[f64],
    y: &[f64],
    t_lo: f64,
    t_hi: f64,
    ratio: f64,
    count: usize,
    omegas: &[f64],
) -> Result<WindowedExponent> {
    if !(ratio > 1.0 && t_lo > 0.0 && t_hi >= t_lo * ratio && count >= 2) {
        return Err(Error::config(
            "fit.windows",
            format!(
                "need t_lo > 0, ratio > 1, t_hi ≥ t_lo·ratio and ≥ 2 windows (got [{t_lo}, {t_hi}], ratio {ratio}, {count})"
            ),
        ));
    }
    let span = (t_hi / ratio / t_lo).ln();
    let mut windows = Vec::with_capacity(count);
    for i in 0..count {
        let lo = t_lo * (span * i as f64 / (count - 1) as f64).exp();
        let hi = lo * ratio;
        let f = power_law_corrected(t, y, lo * (1.0 - 1e-12), hi * (1.0 + 1e-12), omegas)?;
        windows.push((lo, hi, f.exponent));
    }
    let last = windows[count - 1].2;
    let spread = windows
        .iter()
        .map(|w| (w.2 - last).abs())
        .fold(0.0, f64::max);
    Ok(WindowedExponent {
        exponent: last,
        spread,
        windows,
    })
}

/// Percentile bootstrap over replicates (e.g. seeds): `stat` is evaluated on `resamples`
/// resamples (with replacement, drawn from `rng`) of the replicate indices `0..n`; returns
/// `(stat on all replicates, 2.5 % quantile, 97.5 % quantile)`.
pub fn bootstrap_ci(
    n: usize,
    resamples: usize,
    rng: &mut crate::rng::Rng,
    mut stat: impl FnMut(&[usize]) -> Result<f64>,
) -> Result<(f64, f64, f64)> {
    if n < 2 || resamples < 20 {
        return Err(Error::config(
            "bootstrap",
            format!("need ≥ 2 replicates and ≥ 20 resamples (got {n}, {resamples})"),
        ));
    }
    let all: Vec<usize> = (0..n).collect();
    let full = stat(&all)?;
    let mut vals = Vec::with_capacity(resamples);
    let mut idx = vec![0; n];
    for _ in 0..resamples {
        idx.iter_mut().for_each(|i| *i = crate::rng::index(rng, n));
        vals.push(stat(&idx)?);
    }
    vals.sort_by(f64::total_cmp);
    let q = |p: f64| vals[((p * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Ok((full, q(0.025), q(0.975)))
}
