//! In-context linear regression data for the attention-only linear transformer
//! ([`crate::model::linear_attention`]; AGF §3.3, Kunin et al. 2025).
//!
//! A sequence: x_1 … x_{N+1} ~ N(0, Σ) i.i.d., task vector w ~ N(0, I_D) fresh per sequence,
//! y_n = wᵀ x_n; input row `[x_1, y_1, …, x_N, y_N, x_{N+1}]`, target y_{N+1} = wᵀ x_{N+1}.
//!
//! Two training sets:
//! * [`sample_sequences`]: n i.i.d. sequences (a finite-sample problem);
//! * [`population_sequences`]: D² + 1 synthetic sequences whose empirical ½-MSE equals the
//!   **exact population loss** of the model for every parameter value. The model output is
//!   ŷ = sᵀ M x_{N+1} with s = Σ_n y_n x_n, so the loss depends on the data only through
//!   E[(s⊗x_q)(s⊗x_q)ᵀ] = P ⊗ Σ, E[(s⊗x_q) y] = vec(N Σ²) and E[y²] = trΣ, where
//!   P = E[s sᵀ] = N(N+1) Σ² + N trΣ · Σ commutes with Σ. With Σ = Σ_j λ_j e_j e_jᵀ and
//!   n = D² + 1, the sequences (j, k) (one context token x_1 = n^{1/4}√p_j e_j, y_1 = 1, the rest
//!   zero; query n^{1/4}√λ_k e_k; target δ_jk √n N λ_j²/√(p_j λ_j)) plus one all-zero sequence
//!   with target y_0 = √(n (trΣ − Σ_j N λ_j²/((N+1)λ_j + trΣ))) reproduce all three moments
//!   exactly (checked against the closed form and Monte-Carlo in the tests).

use super::Dataset;
use crate::linalg::{psd_pow, sym_eig, thin_svd};
use crate::rng::{normal_vec, Rng};
use crate::{Error, Result};
use faer::Mat;

/// Σ = Q diag(λ) Qᵀ with Q a random orthogonal matrix (left singular vectors of a Gaussian
/// D×D matrix) — the AGF attention experiment's input covariance.
pub fn random_covariance(rng: &mut Rng, eigenvalues: &[f64]) -> Result<Mat<f64>> {
    let d = eigenvalues.len();
    if d == 0 {
        return Err(Error::config(
            "data.eigenvalues",
            "needs at least one eigenvalue",
        ));
    }
    if let Some(l) = eigenvalues.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
        return Err(Error::config(
            "data.eigenvalues",
            format!("eigenvalues must be finite and ≥ 0, got {l}"),
        ));
    }
    let g = normal_vec(rng, d * d, 1.0);
    let (q, _, _) = thin_svd(crate::linalg::view(&g, d, d))?;
    Ok(Mat::from_fn(d, d, |a, b| {
        (0..d).map(|j| q[(a, j)] * eigenvalues[j] * q[(b, j)]).sum()
    }))
}

/// Eigenvalues λ_j sorted in decreasing order and matching eigenvectors (columns) of Σ.
pub fn principal_components(sigma: faer::MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let (u, l) = sym_eig(sigma)?;
    let d = l.len();
    let order: Vec<usize> = (0..d).rev().collect();
    Ok((
        order.iter().map(|&j| l[j]).collect(),
        Mat::from_fn(d, d, |a, b| u[(a, order[b])]),
    ))
}

fn row_layout(dim: usize, context: usize) -> usize {
    context * (dim + 1) + dim
}

/// `n` i.i.d. sequences of context length `context` with x ~ N(0, Σ), w ~ N(0, I).
pub fn sample_sequences(
    rng: &mut Rng,
    sigma: faer::MatRef<'_, f64>,
    context: usize,
    n: usize,
) -> Result<Dataset> {
    let d = sigma.nrows();
    let root = psd_pow(sigma, 0.5)?;
    let width = row_layout(d, context);
    let mut x = Mat::zeros(n, width);
    let mut y = Mat::zeros(n, 1);
    for i in 0..n {
        let w = normal_vec(rng, d, 1.0);
        for t in 0..=context {
            let z = normal_vec(rng, d, 1.0);
            let xt: Vec<f64> = (0..d)
                .map(|a| (0..d).map(|b| root[(a, b)] * z[b]).sum())
                .collect();
            let yt: f64 = xt.iter().zip(&w).map(|(a, b)| a * b).sum();
            let base = t * (d + 1);
            for a in 0..d {
                x[(i, base + a)] = xt[a];
            }
            if t < context {
                x[(i, base + d)] = yt;
            } else {
                y[(i, 0)] = yt;
            }
        }
    }
    Dataset::new(x, y)
}

/// The D² + 1 moment-matched sequences whose empirical ½-MSE is the exact population loss
/// (module docs).
pub fn population_sequences(sigma: faer::MatRef<'_, f64>, context: usize) -> Result<Dataset> {
    if context == 0 {
        return Err(Error::config(
            "data.context",
            "context length N must be ≥ 1",
        ));
    }
    let (lam, e) = principal_components(sigma)?;
    let d = lam.len();
    let nn = context as f64;
    let tr: f64 = lam.iter().sum();
    let n = d * d + 1;
    let nf = n as f64;
    let p: Vec<f64> = lam
        .iter()
        .map(|&l| nn * (nn + 1.0) * l * l + nn * tr * l)
        .collect();
    let width = row_layout(d, context);
    let mut x = Mat::zeros(n, width);
    let mut y = Mat::zeros(n, 1);
    let q_off = context * (d + 1);
    for j in 0..d {
        for k in 0..d {
            let i = j * d + k;
            let a = nf.powf(0.25) * p[j].max(0.0).sqrt();
            let b = nf.powf(0.25) * lam[k].max(0.0).sqrt();
            for c in 0..d {
                x[(i, c)] = a * e[(c, j)];
                x[(i, q_off + c)] = b * e[(c, k)];
            }
            x[(i, d)] = 1.0;
            if j == k && p[j] * lam[j] > 0.0 {
                y[(i, 0)] = nf.sqrt() * nn * lam[j] * lam[j] / (p[j] * lam[j]).sqrt();
            }
        }
    }
    let explained: f64 = lam
        .iter()
        .map(|&l| {
            if l > 0.0 {
                nn * l * l / ((nn + 1.0) * l + tr)
            } else {
                0.0
            }
        })
        .sum();
    y[(n - 1, 0)] = (nf * (tr - explained).max(0.0)).sqrt();
    Dataset::new(x, y)
}
