//! Feature-learning measurements on any layered model: per-layer norms, the Gram
//! alignment of consecutive layers and the empirical NTK on a probe batch (the
//! measurements Xu & Ziyin 2024 carry from the exact 1-D model to deep nonlinear nets).

use crate::linalg::{frobenius, matmul};
use crate::model::Model;
use faer::{Accum, Mat, MatRef, Par};

/// Frobenius norm ‖W_l‖_F of every weight matrix of a layered model.
pub fn layer_norms(model: &dyn Model, params: &[f64]) -> Vec<f64> {
    model
        .layer_weights(params)
        .iter()
        .map(|w| frobenius(*w))
        .collect()
}

/// Gram alignment of consecutive layers W_l (k_l × k_{l−1}) and W_{l+1} (k_{l+1} × k_l) in
/// their shared k_l-dimensional hidden space:
///
/// `a_l = ⟨W_l W_lᵀ, W_{l+1}ᵀ W_{l+1}⟩_F / (‖W_l W_lᵀ‖_F ‖W_{l+1}ᵀ W_{l+1}‖_F)
///      = ‖W_{l+1} W_l‖_F² / (‖W_l W_lᵀ‖_F ‖W_{l+1}ᵀ W_{l+1}‖_F) ∈ [0, 1]`.
///
/// For the 1-D model (W₁ = w, W₂ = uᵀ) this is exactly cos²∠(u, w). Returns 0 when a
/// layer is zero.
pub fn gram_alignment(w_l: MatRef<'_, f64>, w_next: MatRef<'_, f64>) -> f64 {
    let k = w_l.nrows();
    assert_eq!(
        w_next.ncols(),
        k,
        "gram_alignment: W_l has {k} rows but W_l+1 has {} columns",
        w_next.ncols()
    );
    let mut m1 = Mat::zeros(k, k);
    matmul(
        m1.as_mut(),
        Accum::Replace,
        w_l,
        w_l.transpose(),
        1.0,
        Par::Seq,
    );
    let mut m2 = Mat::zeros(k, k);
    matmul(
        m2.as_mut(),
        Accum::Replace,
        w_next.transpose(),
        w_next,
        1.0,
        Par::Seq,
    );
    let (n1, n2) = (frobenius(m1.as_ref()), frobenius(m2.as_ref()));
    if n1 == 0.0 || n2 == 0.0 {
        return 0.0;
    }
    let mut ip = 0.0;
    for j in 0..k {
        for i in 0..k {
            ip += m1[(i, j)] * m2[(i, j)];
        }
    }
    ip / (n1 * n2)
}

/// Gram alignments of all consecutive layer pairs (L − 1 values).
pub fn consecutive_alignments(model: &dyn Model, params: &[f64]) -> Vec<f64> {
    let ws = model.layer_weights(params);
    ws.windows(2).map(|p| gram_alignment(p[0], p[1])).collect()
}

/// Empirical NTK on a probe batch x (n × d), averaged over the c outputs and
/// preconditioned by the per-parameter learning-rate multipliers r_p of the model's blocks
/// (the kernel that drives the function under gradient flow):
///
/// `Θ(x_i, x_j) = (1/c) Σ_a Σ_p r_p ∂f_a(x_i)/∂θ_p ∂f_a(x_j)/∂θ_p`   (n × n).
///
/// Computed from the model's own backward pass (one per sample and output).
pub fn empirical_ntk(model: &dyn Model, params: &[f64], x: MatRef<'_, f64>) -> Mat<f64> {
    let (n, c, np) = (x.nrows(), model.output_dim(), model.num_params());
    let mut sqrt_r = vec![0.0; np];
    for b in model.blocks() {
        sqrt_r[b.range()].fill(b.lr_mult.sqrt());
    }
    let mut ws = model.workspace(1);
    let mut grad = vec![0.0; np];
    let mut theta = Mat::<f64>::zeros(n, n);
    let mut jac = Mat::<f64>::zeros(n, np);
    for a in 0..c {
        for i in 0..n {
            let xi = x.subrows(i, 1);
            model.forward(params, xi, &mut ws);
            for j in 0..c {
                ws.d_out[(0, j)] = if j == a { 1.0 } else { 0.0 };
            }
            model.backward(params, xi, &mut grad, &mut ws);
            for p in 0..np {
                jac[(i, p)] = grad[p] * sqrt_r[p];
            }
        }
        matmul(
            theta.as_mut(),
            Accum::Add,
            jac.as_ref(),
            jac.transpose(),
            1.0 / c as f64,
            Par::Seq,
        );
    }
    theta
}

/// Relative change ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F of two kernels on the same probe batch.
pub fn kernel_rel_change(k0: MatRef<'_, f64>, kt: MatRef<'_, f64>) -> f64 {
    let mut diff = 0.0;
    for j in 0..k0.ncols() {
        for i in 0..k0.nrows() {
            diff += (kt[(i, j)] - k0[(i, j)]).powi(2);
        }
    }
    let n0 = frobenius(k0);
    if n0 == 0.0 {
        f64::INFINITY
    } else {
        diff.sqrt() / n0
    }
}
