//! Exact Hessian of the ½-MSE loss of a bias-free two-layer net with respect to the
//! parameters of a subset of its neurons (AGF cost phases on the active set, Kunin et al.
//! 2025, §2.5; the Jacobian `−∇²L` of gradient flow for the stiff Rosenbrock–W solver).
//!
//! Model `f_c(x) = m₂ Σ_i a_ic σ(z_i)`, `z_i = m₁ w_iᵀx`; loss `L = (1/2n) Σ_s ‖e_s‖²`,
//! `e_s = f(x_s) − y_s`. Per neuron the parameters are `θ_i = (w_i ∈ R^d, a_i ∈ R^c)` (the
//! order of [`crate::model::NeuronSum::neuron_params`]). With `σ_si = σ(z_si)` and
//! primes for derivatives, the Hessian `∇²L = (1/n)Σ_s [J_sᵀJ_s + Σ_c e_sc ∇²f_c(x_s)]` has
//! the blocks
//!
//! * `∂²L/∂w_i∂w_j = (m₁m₂)² (a_i·a_j) (1/n)Σ_s σ'_si σ'_sj x_s x_sᵀ
//!   + δ_ij m₂m₁² (1/n)Σ_s (e_s·a_i) σ''_si x_s x_sᵀ`,
//! * `∂²L/∂w_i[r]∂a_j[c] = m₁m₂² a_ic (1/n)Σ_s σ'_si σ_sj x_sr + δ_ij m₁m₂ (1/n)Σ_s σ'_si x_sr e_sc`,
//! * `∂²L/∂a_i[c]∂a_j[c'] = δ_cc' m₂² (1/n)Σ_s σ_si σ_sj`.
//!
//! (ReLU: σ'' = 0 away from the kinks, so this is the Hessian almost everywhere.)

use super::two_layer::TwoLayer;
use crate::linalg::matmul;
use crate::{Error, Result};
use faer::{Accum, Mat, MatMut, MatRef, Par};

impl TwoLayer {
    /// Exact Hessian of `L = (1/2n) Σ_s ‖f(x_s) − y_s‖²` with respect to the parameters of
    /// `neurons` (in that order, each `(w_i, a_i)`), written into `out` (k(d + c) square,
    /// k = `neurons.len()`); the other neurons are held fixed but enter the residual.
    /// Formulas in the module docs. Errors on biases, shape mismatches and repeated or
    /// out-of-range neurons.
    pub fn neuron_loss_hessian(
        &self,
        params: &[f64],
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        neurons: &[usize],
        mut out: MatMut<'_, f64>,
    ) -> Result<()> {
        let (d, c, width) = (self.d, self.c, self.width);
        let (n, k, q) = (x.nrows(), neurons.len(), d + c);
        if self.bias {
            return Err(Error::config(
                "model.bias",
                "the neuron Hessian of a two-layer net needs a bias-free net",
            ));
        }
        if params.len() != width * (d + c)
            || x.ncols() != d
            || y.ncols() != c
            || y.nrows() != n
            || n == 0
            || out.nrows() != k * q
            || out.ncols() != k * q
        {
            return Err(Error::Numerical(format!(
                "two-layer Hessian: shapes do not match (params {}, x {}×{}, y {}×{}, out {}×{}, {k} neurons)",
                params.len(), n, x.ncols(), y.nrows(), y.ncols(), out.nrows(), out.ncols()
            )));
        }
        for (a, &i) in neurons.iter().enumerate() {
            if i >= width || neurons[..a].contains(&i) {
                return Err(Error::Numerical(format!(
                    "two-layer Hessian: neuron {i} out of range or repeated"
                )));
            }
        }
        let (m1, m2) = (self.mult1, self.mult2);
        let act = self.activation;
        let w1 = crate::linalg::view(&params[..width * d], width, d);
        let w2 = crate::linalg::view(&params[width * d..], c, width);
        let mut z = Mat::zeros(n, width);
        matmul(z.as_mut(), Accum::Replace, x, w1.transpose(), m1, Par::Seq);
        let h = Mat::from_fn(n, width, |s, i| act.apply(z[(s, i)]));
        // e = f − y
        let mut e = Mat::zeros(n, c);
        matmul(
            e.as_mut(),
            Accum::Replace,
            h.as_ref(),
            w2.transpose(),
            m2,
            Par::Seq,
        );
        for j in 0..c {
            for s in 0..n {
                e[(s, j)] -= y[(s, j)];
            }
        }
        let sk = Mat::from_fn(n, k, |s, a| h[(s, neurons[a])]);
        let xd = Mat::from_fn(n, k * d, |s, col| {
            let (a, r) = (col / d, col % d);
            act.derivative(z[(s, neurons[a])]) * x[(s, r)]
        });
        let inv_n = 1.0 / n as f64;
        let mut g = Mat::zeros(k * d, k * d);
        matmul(
            g.as_mut(),
            Accum::Replace,
            xd.transpose(),
            xd.as_ref(),
            inv_n,
            Par::Seq,
        );
        let mut v = Mat::zeros(k * d, k);
        matmul(
            v.as_mut(),
            Accum::Replace,
            xd.transpose(),
            sk.as_ref(),
            inv_n,
            Par::Seq,
        );
        let mut rx = Mat::zeros(k * d, c);
        matmul(
            rx.as_mut(),
            Accum::Replace,
            xd.transpose(),
            e.as_ref(),
            inv_n,
            Par::Seq,
        );
        let mut ss = Mat::zeros(k, k);
        matmul(
            ss.as_mut(),
            Accum::Replace,
            sk.transpose(),
            sk.as_ref(),
            inv_n,
            Par::Seq,
        );
        let gn = (m1 * m2) * (m1 * m2);
        for a in 0..k {
            let i = neurons[a];
            for b in 0..k {
                let j = neurons[b];
                let aij: f64 = (0..c).map(|cc| w2[(cc, i)] * w2[(cc, j)]).sum();
                for r in 0..d {
                    for s in 0..d {
                        out[(a * q + r, b * q + s)] = gn * aij * g[(a * d + r, b * d + s)];
                    }
                }
                for r in 0..d {
                    for cc in 0..c {
                        let mut val = m1 * m2 * m2 * w2[(cc, i)] * v[(a * d + r, b)];
                        if a == b {
                            val += m1 * m2 * rx[(a * d + r, cc)];
                        }
                        out[(a * q + r, b * q + d + cc)] = val;
                        out[(b * q + d + cc, a * q + r)] = val;
                    }
                }
                for cc in 0..c {
                    for c2 in 0..c {
                        out[(a * q + d + cc, b * q + d + c2)] =
                            if cc == c2 { m2 * m2 * ss[(a, b)] } else { 0.0 };
                    }
                }
            }
            // residual term of the w_i w_i block: m₂m₁² (1/n) Σ_s (e_s·a_i) σ''_si x_s x_sᵀ
            if !matches!(act, super::Activation::Linear | super::Activation::Relu) {
                // (e_s·a_i) σ''_si once per sample, then scaled rows of x
                let ea: Vec<f64> = (0..n)
                    .map(|s| {
                        let v: f64 = (0..c).map(|cc| e[(s, cc)] * w2[(cc, i)]).sum();
                        v * act.second_derivative(z[(s, i)])
                    })
                    .collect();
                let xq = Mat::from_fn(n, d, |s, r| ea[s] * x[(s, r)]);
                let mut t = Mat::zeros(d, d);
                matmul(
                    t.as_mut(),
                    Accum::Replace,
                    x.transpose(),
                    xq.as_ref(),
                    m2 * m1 * m1 * inv_n,
                    Par::Seq,
                );
                for r in 0..d {
                    for s in 0..d {
                        out[(a * q + r, a * q + s)] += t[(r, s)];
                    }
                }
            }
        }
        Ok(())
    }
}
