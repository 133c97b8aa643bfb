//! Fully connected two-layer linear networks f(x) = A W x (AGF §3.2, Kunin et al. 2025):
//! singular modes are learned one at a time in decreasing order.
//!
//! With M = Σ_yx Σ_xx⁻¹ Σ_xy (eigenvalues μ_1 ≥ μ_2 ≥ …, eigenvectors U):
//! * after the k-th jump the function is the greedy rank-k truncation
//!   β^(k) = P_{U_k} Σ_yx Σ_xx⁻¹ ([`super::cost::rank_k_regression`]);
//! * loss levels ℓ^(k) = ½ tr Σ_yy − ½ Σ_{i≤k} μ_i  (= ½Σ_{i>k} μ_i for a noiseless teacher);
//! * jump times τ^(k) (units of log(1/ρ0)) from the accumulated-utility recursion
//!   Σ_{i=0}^{k−1} σ_{k−i}^{(i)} (τ^(i+1) − τ^(i)) = 1, with σ_j^{(i)} the j-th singular value
//!   of the residual cross-covariance P⊥_{U_i} Σ_yx; in gradient-flow time t = τ·log(1/ρ0).
//!   This assumes every dormant neuron sits at its utility maximiser from t = 0 (the aligned
//!   limit), so it converges to GF only like 1/log(1/α).

use super::cost::{moments, rank_k_regression, spd_inverse};
use crate::data::Dataset;
use crate::linalg::{matmul, singular_values, sym_eig};
use crate::model::two_layer::TwoLayer;
use crate::model::Model;
use crate::Result;
use faer::{Accum, Mat, Par};

/// Closed-form predictions for the linear net.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearTheory {
    /// Eigenvalues μ_k of M, descending (= squared singular values of Σ_yx Σ_xx^{−1/2}).
    pub mu: Vec<f64>,
    /// Levels ℓ^(0..=K).
    pub levels: Vec<f64>,
    /// Jump times τ^(1..=K) in units of log(1/ρ0).
    pub tau: Vec<f64>,
    /// Singular values of each truncation β^(k), k = 0..=K.
    pub truncation_singular_values: Vec<Vec<f64>>,
    /// Eigenvectors U (c × c, columns in decreasing μ order): the output-side modes.
    pub modes: Mat<f64>,
}

/// Predictions for `data` with at most `k_max` modes (K = min(c, d, k_max)); modes with
/// μ ≤ `1e-12·μ_1` are dropped.
pub fn linear_theory(data: &Dataset, k_max: usize) -> Result<LinearTheory> {
    let (sxx, syx) = moments(data);
    let (c, d) = (syx.nrows(), syx.ncols());
    let sxx_inv = spd_inverse(sxx.as_ref())?;
    let mut ols = Mat::zeros(c, d);
    matmul(
        ols.as_mut(),
        Accum::Replace,
        syx.as_ref(),
        sxx_inv.as_ref(),
        1.0,
        Par::Seq,
    );
    let mut m = Mat::zeros(c, c);
    matmul(
        m.as_mut(),
        Accum::Replace,
        ols.as_ref(),
        syx.transpose(),
        1.0,
        Par::Seq,
    );
    let m = Mat::from_fn(c, c, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let (u, ev) = sym_eig(m.as_ref())?;
    let modes = Mat::from_fn(c, c, |i, j| u[(i, c - 1 - j)]);
    let mu_all: Vec<f64> = ev.iter().rev().copied().collect();
    let top = mu_all.first().copied().unwrap_or(0.0);
    let kk = mu_all
        .iter()
        .take(k_max.min(c).min(d))
        .filter(|&&v| v > 1e-12 * top)
        .count();
    let mu = mu_all[..kk].to_vec();
    let n = data.n() as f64;
    let tr_yy: f64 = (0..data.c())
        .map(|j| (0..data.n()).map(|i| data.y[(i, j)].powi(2)).sum::<f64>())
        .sum::<f64>()
        / n;
    let mut levels = vec![0.5 * tr_yy];
    for k in 0..kk {
        levels.push(levels[k] - 0.5 * mu[k]);
    }
    // σ^(i)_j: singular values of P⊥_{U_i} Σ_yx.
    let mut sig: Vec<Vec<f64>> = Vec::new();
    let mut trunc_sv = Vec::new();
    for i in 0..=kk {
        let proj = Mat::from_fn(c, c, |a, b| {
            (if a == b { 1.0 } else { 0.0 })
                - (0..i).map(|q| modes[(a, q)] * modes[(b, q)]).sum::<f64>()
        });
        let mut res = Mat::zeros(c, d);
        matmul(
            res.as_mut(),
            Accum::Replace,
            proj.as_ref(),
            syx.as_ref(),
            1.0,
            Par::Seq,
        );
        sig.push(singular_values(res.as_ref())?);
        let (beta, _) = rank_k_regression(sxx.as_ref(), syx.as_ref(), i)?;
        trunc_sv.push(if i == 0 {
            vec![0.0; c.min(d)]
        } else {
            singular_values(beta.as_ref())?
        });
    }
    let mut dtau: Vec<f64> = Vec::new();
    for k in 1..=kk {
        let mut acc = 0.0;
        for i in 0..k - 1 {
            acc += sig[i].get(k - i - 1).copied().unwrap_or(0.0) * dtau[i];
        }
        dtau.push((1.0 - acc) / sig[k - 1][0]);
    }
    let mut tau = Vec::new();
    let mut t = 0.0;
    for dt in dtau {
        t += dt;
        tau.push(t);
    }
    Ok(LinearTheory {
        mu,
        levels,
        tau,
        truncation_singular_values: trunc_sv,
        modes,
    })
}

/// Output-side mode index of an output vector `a` (c entries): argmax_k |⟨u_k, a⟩|.
pub fn mode_of(modes: &Mat<f64>, a: &[f64]) -> usize {
    let c = modes.nrows();
    (0..modes.ncols())
        .map(|k| (k, (0..c).map(|i| modes[(i, k)] * a[i]).sum::<f64>().abs()))
        .fold((0, -1.0), |b, x| if x.1 > b.1 { x } else { b })
        .0
}

/// Captured energy ‖u_kᵀ A W‖² of every output-side mode k for a linear two-layer net.
pub fn mode_energies(modes: &Mat<f64>, model: &TwoLayer, params: &[f64]) -> Vec<f64> {
    let w = model.layer_weights(params);
    let (w1, w2) = (w[0], w[1]);
    let mut aw = Mat::zeros(model.c, model.d);
    matmul(
        aw.as_mut(),
        Accum::Replace,
        w2,
        w1,
        model.mult1 * model.mult2,
        Par::Seq,
    );
    (0..modes.ncols())
        .map(|k| {
            (0..model.d)
                .map(|j| {
                    (0..model.c)
                        .map(|i| modes[(i, k)] * aw[(i, j)])
                        .sum::<f64>()
                        .powi(2)
                })
                .sum()
        })
        .collect()
}

/// The feature learned in a round: the mode whose captured energy grew most from `prev`
/// (None = the start, f = 0) to `params`.
pub fn new_mode(modes: &Mat<f64>, model: &TwoLayer, params: &[f64], prev: Option<&[f64]>) -> usize {
    let now = mode_energies(modes, model, params);
    let before = prev
        .map(|p| mode_energies(modes, model, p))
        .unwrap_or_else(|| vec![0.0; now.len()]);
    (0..now.len())
        .map(|k| (k, now[k] - before[k]))
        .fold((0, f64::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b })
        .0
}
