//! Diagonal linear networks β = u ⊙ v (AGF §3.1, Kunin et al. 2025): the closed-form AGF
//! with the hyperbolic-cosine norm formula, the α → 0 saddle-to-saddle limit of Pesme &
//! Flammarion (2023), and the two example problems of the paper.
//!
//! Loss L(β) = (1/2n)‖Xβ − y‖², gradient g = ∇_β L = −Xᵀr/n, r = y − Xβ. Coordinate i is a
//! 2-homogeneous neuron θ_i = (u_i, v_i) started at (√2α, 0), so ρ0 = √2α and GF conserves
//! u_i² − v_i² = 2α². Under a constant residual its norm is exactly
//!     ‖θ_i(t)‖² = 2α² cosh(4Ū_i* t + c_i),   Ū_i* = |g_i|/2,
//! with the offset c_i = σ_i arccosh(‖θ_i‖²/(2α²)) carrying its history (σ_i = +1 if the
//! sign of g_i is unchanged since the neuron last grew, −1 if it flipped).

use super::cost::restricted_least_squares;
use crate::linalg::matmul;
use crate::rng::{normal_vec, Rng};
use crate::{Error, Result};
use faer::{Accum, Mat, MatRef, Par};

/// A staircase predicted in closed form with its path: jump times, levels, coefficients,
/// features ([`ClosedFormPath::stairs`] is the part every comparison uses).
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedFormPath {
    /// Jump times t^(1), t^(2), … (gradient-flow time; for the α → 0 limit, rescaled time
    /// multiplied by log(1/ρ0), see [`pesme_flammarion`]).
    pub times: Vec<f64>,
    /// Levels ℓ^(0), ℓ^(1), … (one more than `times`).
    pub levels: Vec<f64>,
    /// β after each jump.
    pub betas: Vec<Vec<f64>>,
    /// Coordinate activated at each jump.
    pub features: Vec<usize>,
    /// Coordinates deactivated at each jump.
    pub deactivated: Vec<Vec<usize>>,
}

impl ClosedFormPath {
    /// The staircase (ℓ₀, times, levels after each jump, features) for
    /// [`crate::compare::drops`].
    pub fn stairs(&self) -> crate::compare::drops::Staircase {
        crate::compare::drops::Staircase {
            initial_loss: self.levels[0],
            times: self.times.clone(),
            levels: self.levels[1..=self.times.len()].to_vec(),
            features: self.features.clone(),
        }
    }
}

fn gradient(x: MatRef<'_, f64>, y: &[f64], beta: &[f64]) -> (Vec<f64>, f64) {
    let (n, d) = (x.nrows(), x.ncols());
    let r: Vec<f64> = (0..n)
        .map(|i| y[i] - (0..d).map(|j| x[(i, j)] * beta[j]).sum::<f64>())
        .collect();
    let g = (0..d)
        .map(|j| -(0..n).map(|i| x[(i, j)] * r[i]).sum::<f64>() / n as f64)
        .collect();
    let loss = 0.5 * r.iter().map(|v| v * v).sum::<f64>() / n as f64;
    (g, loss)
}

/// Closed-form AGF for a diagonal net from u = √2α, v = 0 (the authors' algorithm, §3.1):
/// per round, Δτ_i = (arccosh(1/(2α²)) − c_i)/(4Ū_i*) for every dormant i with g_i ≠ 0,
/// the smallest wins; all dormant norms and signs advance by Δτ; least squares on the
/// active set; coordinates active before the round whose coefficient flips sign return to
/// the dormant set (keeping norm 1) and the fit is redone.
pub fn cosh_agf(
    x: MatRef<'_, f64>,
    y: &[f64],
    alpha: f64,
    max_rounds: usize,
) -> Result<ClosedFormPath> {
    let d = x.ncols();
    let scale2 = 2.0 * alpha * alpha;
    if !(scale2 > 0.0 && scale2 < 1.0) {
        return Err(Error::config(
            "problem.alpha",
            format!("diagonal AGF needs 0 < 2α² < 1, got α = {alpha}"),
        ));
    }
    let target = (1.0 / scale2).acosh();
    let mut norm2 = vec![scale2; d];
    let mut sgn = vec![0.0f64; d];
    let mut active: Vec<usize> = Vec::new();
    let mut beta = vec![0.0; d];
    let (mut g, l0) = gradient(x, y, &beta);
    let mut out = ClosedFormPath {
        times: vec![],
        levels: vec![l0],
        betas: vec![],
        features: vec![],
        deactivated: vec![],
    };
    let mut t = 0.0;
    for _ in 0..max_rounds {
        let dormant: Vec<usize> = (0..d).filter(|i| !active.contains(i)).collect();
        if dormant.is_empty() {
            break;
        }
        let mut best: Option<(f64, usize)> = None;
        let offs: Vec<f64> = dormant
            .iter()
            .map(|&i| sgn[i] * g[i].signum() * (norm2[i] / scale2).max(1.0).acosh())
            .collect();
        for (k, &i) in dormant.iter().enumerate() {
            if g[i].abs() <= 1e-15 {
                continue;
            }
            let tau = (target - offs[k]) / (2.0 * g[i].abs());
            if best.is_none_or(|(b, _)| tau < b) {
                best = Some((tau, i));
            }
        }
        let Some((tau, idx)) = best else { break };
        for (k, &i) in dormant.iter().enumerate() {
            if g[i].abs() <= 1e-15 {
                continue;
            }
            let arg = 2.0 * g[i].abs() * tau + offs[k];
            norm2[i] = scale2 * arg.cosh();
            sgn[i] = arg.signum() * g[i].signum();
        }
        t += tau;
        active.push(idx);
        let prev = beta.clone();
        beta = restricted_least_squares(x, y, &active)?;
        let flipped: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&i| beta[i] * prev[i] < 0.0)
            .collect();
        if !flipped.is_empty() {
            active.retain(|i| !flipped.contains(i));
            beta = restricted_least_squares(x, y, &active)?;
        }
        let (g_new, l) = gradient(x, y, &beta);
        g = g_new;
        out.times.push(t);
        out.levels.push(l);
        out.betas.push(beta.clone());
        out.features.push(idx);
        out.deactivated.push(flipped);
    }
    Ok(out)
}

/// Least squares under sign constraints: minimise ‖Xβ − y‖² subject to σ_iβ_i ≥ 0 for
/// i ∈ `signs` (pairs (i, σ_i)), β_i = 0 otherwise; exact, by enumerating the supports
/// (the optimum is the unconstrained fit on its own support), for at most 20 variables.
pub fn sign_constrained_least_squares(
    x: MatRef<'_, f64>,
    y: &[f64],
    signs: &[(usize, f64)],
) -> Result<Vec<f64>> {
    let k = signs.len();
    if k > 20 {
        return Err(Error::config(
            "problem.d",
            "the Pesme–Flammarion limit enumerates supports and supports at most 20 coordinates",
        ));
    }
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 0u32..(1u32 << k) {
        let cols: Vec<usize> = (0..k)
            .filter(|b| mask >> b & 1 == 1)
            .map(|b| signs[b].0)
            .collect();
        let beta = restricted_least_squares(x, y, &cols)?;
        if signs.iter().any(|&(i, s)| s * beta[i] < -1e-12) {
            continue;
        }
        let (_, l) = gradient(x, y, &beta);
        if best
            .as_ref()
            .is_none_or(|(bl, _)| l < *bl - 1e-15 * bl.abs())
        {
            best = Some((l, beta));
        }
    }
    Ok(best.map(|b| b.1).unwrap_or_else(|| vec![0.0; x.ncols()]))
}

/// The α → 0 limit (Pesme & Flammarion 2023, Algorithm 1; AGF Thm 3.1): s ∈ [−1, 1]^d,
/// ds/dt̃ = −g(β); a coordinate activates when |s_i| reaches 1; β is the sign-constrained
/// least squares with β_i σ_i ≥ 0 where s_i = σ_i = ±1 and β_i = 0 where |s_i| < 1. Jump
/// times are returned in gradient-flow time for initial neuron norm ρ0, t = t̃·log(1/ρ0)
/// (s_i = ∫(−g_i)dt / log(1/ρ0) is the normalised accumulated utility).
pub fn pesme_flammarion(
    x: MatRef<'_, f64>,
    y: &[f64],
    rho0: f64,
    max_rounds: usize,
) -> Result<ClosedFormPath> {
    let d = x.ncols();
    let lscale = -rho0.ln();
    let mut s = vec![0.0f64; d];
    let mut beta = vec![0.0; d];
    let (mut g, l0) = gradient(x, y, &beta);
    let gscale = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = 1e-10 * gscale.max(f64::MIN_POSITIVE);
    let mut out = ClosedFormPath {
        times: vec![],
        levels: vec![l0],
        betas: vec![],
        features: vec![],
        deactivated: vec![],
    };
    let mut tt = 0.0;
    let on_boundary = |v: f64| (v.abs() - 1.0).abs() <= 1e-9;
    for _ in 0..max_rounds {
        if g.iter().all(|v| v.abs() <= tol) {
            break;
        }
        let mut best: Option<(f64, usize, f64)> = None;
        for i in 0..d {
            if g[i].abs() <= tol {
                continue;
            }
            for b in [1.0, -1.0] {
                let delta = (s[i] - b) / g[i];
                if delta > 1e-12 && best.is_none_or(|(bd, _, _)| delta < bd) {
                    best = Some((delta, i, b));
                }
            }
        }
        let Some((delta, idx, b)) = best else { break };
        tt += delta;
        let was_active: Vec<bool> = s.iter().map(|&v| on_boundary(v)).collect();
        for i in 0..d {
            s[i] = (s[i] - delta * g[i]).clamp(-1.0, 1.0);
        }
        s[idx] = b;
        let signs: Vec<(usize, f64)> = (0..d)
            .filter(|&i| on_boundary(s[i]))
            .map(|i| (i, s[i].signum()))
            .collect();
        let prev = beta.clone();
        beta = sign_constrained_least_squares(x, y, &signs)?;
        let deact: Vec<usize> = (0..d)
            .filter(|&i| was_active[i] && prev[i] != 0.0 && beta[i] == 0.0)
            .collect();
        let (g_new, l) = gradient(x, y, &beta);
        g = g_new;
        out.times.push(tt * lscale);
        out.levels.push(l);
        out.betas.push(beta.clone());
        out.features.push(idx);
        out.deactivated.push(deact);
    }
    Ok(out)
}

/// The 2-D example of Pesme & Flammarion §3.1 used by AGF §3.1: X = chol(R diag(1, 25) Rᵀ)
/// (lower-triangular factor, rows = the two samples), R the rotation by 150°,
/// β* = (−0.2, 2.0), y = Xβ*.
pub fn example_2d() -> (Mat<f64>, Vec<f64>) {
    let th = 150f64.to_radians();
    let (c, s) = (th.cos(), th.sin());
    // Σ = R diag(1, 25) Rᵀ
    let r = [[c, -s], [s, c]];
    let ev = [1.0, 25.0];
    let sig = |i: usize, j: usize| (0..2).map(|k| r[i][k] * ev[k] * r[j][k]).sum::<f64>();
    let l00 = sig(0, 0).sqrt();
    let l10 = sig(1, 0) / l00;
    let l11 = (sig(1, 1) - l10 * l10).sqrt();
    let x = Mat::from_fn(2, 2, |i, j| [[l00, 0.0], [l10, l11]][i][j]);
    let bstar = [-0.2, 2.0];
    let y = (0..2)
        .map(|i| x[(i, 0)] * bstar[0] + x[(i, 1)] * bstar[1])
        .collect();
    (x, y)
}

/// The high-dimensional example of AGF §3.1: n samples x ~ N(0, diag(1, 1/2, …, 1/d)),
/// β* = 10·N(0, I_d), y = Xβ* (drawn from `rng`; returns X, y, β*).
pub fn example_gaussian(rng: &mut Rng, n: usize, d: usize) -> (Mat<f64>, Vec<f64>, Vec<f64>) {
    let z = normal_vec(rng, n * d, 1.0);
    let x = Mat::from_fn(n, d, |i, j| z[i * d + j] / ((j + 1) as f64).sqrt());
    let bstar = normal_vec(rng, d, 10.0);
    let bm = Mat::from_fn(d, 1, |i, _| bstar[i]);
    let mut ym = Mat::zeros(n, 1);
    matmul(
        ym.as_mut(),
        Accum::Replace,
        x.as_ref(),
        bm.as_ref(),
        1.0,
        Par::Seq,
    );
    (x, (0..n).map(|i| ym[(i, 0)]).collect(), bstar)
}
