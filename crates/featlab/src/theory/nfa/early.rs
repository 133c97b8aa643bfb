//! Early-time prediction of the first-layer C-NFC from input and label statistics.
//!
//! Derivation (ours, in the setting of Beaglehole et al. 2024 §"early-time analysis"):
//! at t → 0⁺ of gradient flow, ΔW₁ ∝ ∇_{W₁}L = (1/n) Σ_i δ_i x_iᵀ with δ_i = P₁(x_i)ᵀ r_i,
//! P₁ = ∂f/∂h₁ (c × k₁) and r_i = f(x_i) − y_i. Hence
//!   ΔW₁ᵀΔW₁ ∝ Σ_ij x_i (r_iᵀ P_i P_jᵀ r_j) x_jᵀ,
//!   ΔW₁ᵀK₁ΔW₁ ∝ (1/n) Σ_ijk x_i (r_iᵀ P_i P_kᵀ P_k P_jᵀ r_j) x_jᵀ.
//! For a wide bias-free ReLU MLP at (standard) random initialisation,
//! P_i P_jᵀ → κ(x_i, x_j) I_c with (up to a constant factor that cancels in ρ)
//!   κ(x, x') = Π_{l=1}^{L−1} (π − θ_l)/π,   θ_1 = ∠(x, x'),
//!   cos θ_{l+1} = (sin θ_l + (π − θ_l) cos θ_l)/π
//! (the arc-cosine kernel recursion of Cho & Saul 2009: E[σ'(u)σ'(v)] = (π − θ)/2π for
//! ReLU; only angles enter because ReLU gates depend on signs only). With Kb = [κ(x_i,x_j)]
//! and R = [r_i] (n × c):
//!   NFM_pred  = Xᵀ (RRᵀ ⊙ Kb) X,   AGOP_pred = Xᵀ (RRᵀ ⊙ Kb²/n) X,
//!   C-NFC₁(0⁺) ≈ ρ(NFM_pred, AGOP_pred).
//! With the initial output small (default PyTorch-style init shrinks it by ~6^{−L/2}),
//! r_i ≈ −y_i, so the prediction depends on the data only through the input angles, the
//! input Gram and the label Gram YYᵀ. If κ were constant the two matrices would be
//! proportional (ρ = 1); the spread of κ over pairs of inputs is what lowers the C-NFC.

use super::metrics::{correlation, Correlation};
use crate::linalg::matmul;
use crate::model::Activation;
use crate::{Error, Result};
use faer::{Accum, Mat, MatRef, Par};
use std::f64::consts::PI;

/// Kb (n × n) for a bias-free network with `depth` weight layers (depth − 1 hidden gates).
pub fn gate_kernel(x: MatRef<'_, f64>, depth: usize, act: Activation) -> Result<Mat<f64>> {
    let n = x.nrows();
    match act {
        Activation::Linear => return Ok(Mat::from_fn(n, n, |_, _| 1.0)),
        Activation::Relu => {}
        other => return Err(Error::config("model.activation", format!("the early-time C-NFC prediction is derived for relu (and linear) nets, got {other:?}"))),
    }
    let mut g = Mat::zeros(n, n);
    matmul(g.as_mut(), Accum::Replace, x, x.transpose(), 1.0, Par::Seq);
    Ok(Mat::from_fn(n, n, |i, j| {
        let den = (g[(i, i)] * g[(j, j)]).sqrt();
        let mut c = if den > 0.0 {
            (g[(i, j)] / den).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let mut k = 1.0;
        for _ in 1..depth {
            let th = c.acos();
            k *= (PI - th) / PI;
            c = ((th.sin() + (PI - th) * c) / PI).clamp(-1.0, 1.0);
        }
        k
    }))
}

/// Predicted C-NFC of layer 1 at t → 0⁺ (see module docs) for inputs `x` (n × d) and
/// residuals `r` (n × c; pass −y for the statistics-only prediction).
pub fn predict_c_nfc_layer1(
    x: MatRef<'_, f64>,
    r: MatRef<'_, f64>,
    depth: usize,
    act: Activation,
    kind: Correlation,
) -> Result<f64> {
    let n = x.nrows();
    let kb = gate_kernel(x, depth, act)?;
    let mut rr = Mat::zeros(n, n);
    matmul(rr.as_mut(), Accum::Replace, r, r.transpose(), 1.0, Par::Seq);
    let mut kb2 = Mat::zeros(n, n);
    matmul(
        kb2.as_mut(),
        Accum::Replace,
        kb.as_ref(),
        kb.as_ref(),
        1.0 / n as f64,
        Par::Seq,
    );
    let a = Mat::from_fn(n, n, |i, j| rr[(i, j)] * kb[(i, j)]);
    let b = Mat::from_fn(n, n, |i, j| rr[(i, j)] * kb2[(i, j)]);
    let side = |m: &Mat<f64>| {
        let mut mx = Mat::zeros(n, x.ncols());
        matmul(mx.as_mut(), Accum::Replace, m.as_ref(), x, 1.0, Par::Seq);
        let mut out = Mat::zeros(x.ncols(), x.ncols());
        matmul(
            out.as_mut(),
            Accum::Replace,
            x.transpose(),
            mx.as_ref(),
            1.0,
            Par::Seq,
        );
        out
    };
    Ok(correlation(side(&a).as_ref(), side(&b).as_ref(), kind))
}
