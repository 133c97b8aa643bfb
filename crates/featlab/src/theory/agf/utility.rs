//! Gradients of the dormant neurons' utilities U_i(θ) = (1/n) Σ_n ⟨f_i(x_n; θ), r_n⟩
//! (Kunin et al. 2025, §2.1), the vector field of AGF's utility-maximisation phase.
//!
//! The residual r is fixed during a utility phase, so models whose neurons are linear in
//! the input only see the data through one moment of the residual, computed once per
//! phase; each evaluation then costs O(parameters) instead of a pass over the n samples:
//! * two-layer linear net, f_i = a_i (w_iᵀx): U_i = a_iᵀ M w_i with M = Rᵀ X / n (c × d),
//!   ∇_{w_i} U = Mᵀ a_i, ∇_{a_i} U = M w_i ([`LinearMomentUtility`]);
//! * diagonal net, f_i = u_i v_i x_i: U_i = u_i v_i m_i with m = Xᵀ r / n,
//!   ∇_{u_i} U = v_i m_i, ∇_{v_i} U = u_i m_i ([`DiagonalMomentUtility`]).
//!
//! The generic [`BackpropUtility`] does one forward/backward pass of the whole model with
//! `d_out = r/n`: backward is the vector–Jacobian product ∂/∂θ Σ_n ⟨f(x_n; θ), d_out_n⟩ and
//! f is a sum over neurons, so it returns every ∇U_i at once.

use crate::data::Dataset;
use crate::model::diagonal::{Diagonal, DiagonalForm};
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Model, NeuronSum, Workspace};
use crate::{Error, Result};
use faer::{Mat, MatRef, Par};

/// ∇_θ Σ_i U_i(θ_i; r) for the dormant neurons (AGF's utility field).
pub trait UtilityGradient<M: NeuronSum + ?Sized> {
    /// Start a utility phase with the residual scaled by the sample count, `r_over_n` = r/n
    /// (n × c).
    fn set_residual(&mut self, model: &M, data: &Dataset, r_over_n: MatRef<'_, f64>) -> Result<()>;
    /// Write ∇_θ Σ_i U_i(θ_i) into `grad` for `theta` (active neurons' entries are zero).
    fn gradient(&mut self, model: &M, data: &Dataset, theta: &[f64], grad: &mut [f64]);
    /// When neuron i's utility is a quadratic form U_i(θ_i) = ½ θ_iᵀ K_i θ_i for the current
    /// residual, K_i (symmetric, in the order of `model.neuron_params(i)`); then a κ = 2
    /// utility phase is solved exactly ([`super::engine::AgfOptions::exact_quadratic`]).
    fn quadratic_form(&self, model: &M, neuron: usize) -> Option<Mat<f64>> {
        let _ = (model, neuron);
        None
    }
}

/// Generic utility gradient: one forward/backward pass with `d_out = r/n`.
pub struct BackpropUtility {
    ws: Workspace,
    r_over_n: Mat<f64>,
}

impl BackpropUtility {
    /// Workspace for `model` on `data` with the given parallelism.
    pub fn new<M: Model + ?Sized>(model: &M, data: &Dataset, par: Par) -> Self {
        let mut ws = model.workspace(data.n());
        ws.par = par;
        BackpropUtility {
            ws,
            r_over_n: Mat::zeros(data.n(), data.c()),
        }
    }
}

impl<M: NeuronSum + ?Sized> UtilityGradient<M> for BackpropUtility {
    fn set_residual(
        &mut self,
        _model: &M,
        _data: &Dataset,
        r_over_n: MatRef<'_, f64>,
    ) -> Result<()> {
        self.r_over_n = r_over_n.to_owned();
        Ok(())
    }
    fn gradient(&mut self, model: &M, data: &Dataset, theta: &[f64], grad: &mut [f64]) {
        model.forward(theta, data.x.as_ref(), &mut self.ws);
        self.ws.d_out.copy_from(&self.r_over_n);
        model.backward(theta, data.x.as_ref(), grad, &mut self.ws);
    }
}

/// Residual moment Rᵀ X (c × d) of `r_over_n` (already divided by n).
fn residual_moment(data: &Dataset, r_over_n: MatRef<'_, f64>) -> Mat<f64> {
    let (n, c, d) = (data.n(), data.c(), data.d());
    Mat::from_fn(c, d, |k, j| {
        (0..n).map(|s| r_over_n[(s, k)] * data.x[(s, j)]).sum()
    })
}

/// Utility gradient of a bias-free two-layer *linear* net f = m₂ A (m₁ W x) from the
/// residual moment M = m₁m₂ RᵀX/n: ∇_{w_i}U = Mᵀa_i, ∇_{a_i}U = M w_i (W1 is width × d,
/// W2 is c × width, both row-major, as in [`TwoLayer`]).
#[derive(Debug, Clone)]
pub struct LinearMomentUtility {
    m: Mat<f64>,
}

impl Default for LinearMomentUtility {
    fn default() -> Self {
        LinearMomentUtility {
            m: Mat::zeros(0, 0),
        }
    }
}

impl UtilityGradient<TwoLayer> for LinearMomentUtility {
    fn set_residual(
        &mut self,
        model: &TwoLayer,
        data: &Dataset,
        r_over_n: MatRef<'_, f64>,
    ) -> Result<()> {
        if model.activation != Activation::Linear || model.bias {
            return Err(Error::config(
                "agf",
                "the moment-based utility needs a bias-free two-layer linear net",
            ));
        }
        self.m = residual_moment(data, r_over_n);
        let scale = model.mult1 * model.mult2;
        for k in 0..self.m.nrows() {
            for j in 0..self.m.ncols() {
                self.m[(k, j)] *= scale;
            }
        }
        Ok(())
    }
    /// K = [[0, Mᵀ], [M, 0]] on θ_i = (w_i, a_i): U_i = a_iᵀ M w_i.
    fn quadratic_form(&self, model: &TwoLayer, _neuron: usize) -> Option<Mat<f64>> {
        let (d, c) = (model.d, model.c);
        Some(Mat::from_fn(d + c, d + c, |r, q| {
            if r < d && q >= d {
                self.m[(q - d, r)]
            } else if r >= d && q < d {
                self.m[(r - d, q)]
            } else {
                0.0
            }
        }))
    }
    fn gradient(&mut self, model: &TwoLayer, _data: &Dataset, theta: &[f64], grad: &mut [f64]) {
        let (d, h, c) = (model.d, model.width, model.c);
        let (w, a) = theta.split_at(h * d);
        let (gw, ga) = grad.split_at_mut(h * d);
        for i in 0..h {
            for j in 0..d {
                gw[i * d + j] = (0..c).map(|k| self.m[(k, j)] * a[k * h + i]).sum();
            }
            for k in 0..c {
                ga[k * h + i] = (0..d).map(|j| self.m[(k, j)] * w[i * d + j]).sum();
            }
        }
    }
}

/// Utility gradient of a diagonal net in the (u, v) form from m = Xᵀr/n:
/// ∇_{u_i}U = v_i m_i, ∇_{v_i}U = u_i m_i.
#[derive(Debug, Clone, Default)]
pub struct DiagonalMomentUtility {
    m: Vec<f64>,
}

impl UtilityGradient<Diagonal> for DiagonalMomentUtility {
    fn set_residual(
        &mut self,
        model: &Diagonal,
        data: &Dataset,
        r_over_n: MatRef<'_, f64>,
    ) -> Result<()> {
        if model.form != DiagonalForm::Uv || data.c() != 1 {
            return Err(Error::config(
                "agf",
                "the moment-based utility needs a diagonal net in the (u, v) form with one output",
            ));
        }
        let mm = residual_moment(data, r_over_n);
        self.m = (0..data.d()).map(|j| mm[(0, j)]).collect();
        Ok(())
    }
    /// K_i = [[0, m_i], [m_i, 0]] on θ_i = (u_i, v_i): U_i = m_i u_i v_i.
    fn quadratic_form(&self, _model: &Diagonal, neuron: usize) -> Option<Mat<f64>> {
        let m = self.m[neuron];
        Some(Mat::from_fn(2, 2, |r, q| if r != q { m } else { 0.0 }))
    }
    fn gradient(&mut self, model: &Diagonal, _data: &Dataset, theta: &[f64], grad: &mut [f64]) {
        let d = model.d;
        for i in 0..d {
            grad[i] = theta[d + i] * self.m[i];
            grad[d + i] = theta[i] * self.m[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{normal_vec, stream};

    fn dataset(n: usize, d: usize, c: usize, seed: u64) -> Dataset {
        let v = normal_vec(&mut stream(seed, "x"), n * d, 1.0);
        let w = normal_vec(&mut stream(seed, "y"), n * c, 1.0);
        Dataset::new(
            Mat::from_fn(n, d, |i, j| v[i * d + j]),
            Mat::from_fn(n, c, |i, j| w[i * c + j]),
        )
        .unwrap()
    }

    /// U(θ) = (1/n) Σ_n ⟨f(x_n; θ), r_n⟩ by a forward pass.
    fn utility<M: Model + ?Sized>(model: &M, data: &Dataset, r: &Mat<f64>, theta: &[f64]) -> f64 {
        let f = model.predict(theta, data.x.as_ref());
        let mut u = 0.0;
        for i in 0..data.n() {
            for k in 0..data.c() {
                u += f[(i, k)] * r[(i, k)];
            }
        }
        u / data.n() as f64
    }

    /// Moment gradient = backprop gradient = central finite differences of U.
    fn check<M: NeuronSum + ?Sized>(
        model: &M,
        data: &Dataset,
        fast: &mut dyn UtilityGradient<M>,
        seed: u64,
    ) {
        let p = model.num_params();
        let theta = normal_vec(&mut stream(seed, "theta"), p, 0.7);
        let rv = normal_vec(&mut stream(seed, "r"), data.n() * data.c(), 1.0);
        let r = Mat::from_fn(data.n(), data.c(), |i, k| rv[i * data.c() + k]);
        let r_over_n = Mat::from_fn(data.n(), data.c(), |i, k| r[(i, k)] / data.n() as f64);
        let mut slow = BackpropUtility::new(model, data, Par::Seq);
        slow.set_residual(model, data, r_over_n.as_ref()).unwrap();
        fast.set_residual(model, data, r_over_n.as_ref()).unwrap();
        let (mut g1, mut g2) = (vec![0.0; p], vec![0.0; p]);
        slow.gradient(model, data, &theta, &mut g1);
        fast.gradient(model, data, &theta, &mut g2);
        // ∇U_i = K_i θ_i and U_i = ½θ_iᵀK_iθ_i summed over neurons = U.
        let mut u_quad = 0.0;
        for i in 0..model.num_neurons() {
            let idx = model.neuron_params(i);
            let k = fast.quadratic_form(model, i).expect("quadratic form");
            for (r, &jr) in idx.iter().enumerate() {
                let kg: f64 = idx
                    .iter()
                    .enumerate()
                    .map(|(q, &jq)| k[(r, q)] * theta[jq])
                    .sum();
                assert!(
                    (kg - g2[jr]).abs() <= 1e-12 * (1.0 + kg.abs()),
                    "K θ ≠ ∇U at {jr}"
                );
                u_quad += 0.5 * theta[jr] * kg;
            }
        }
        let u = utility(model, data, &r, &theta);
        assert!(
            (u_quad - u).abs() <= 1e-12 * (1.0 + u.abs()),
            "½θᵀKθ = {u_quad} vs U = {u}"
        );
        let scale = g1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "degenerate test gradient {scale}");
        let h = 1e-6;
        for j in 0..p {
            assert!(
                (g1[j] - g2[j]).abs() <= 1e-12 * scale,
                "param {j}: backprop {} vs moment {}",
                g1[j],
                g2[j]
            );
            let mut tp = theta.clone();
            tp[j] += h;
            let up = utility(model, data, &r, &tp);
            tp[j] -= 2.0 * h;
            let um = utility(model, data, &r, &tp);
            let fd = (up - um) / (2.0 * h);
            assert!(
                (fd - g2[j]).abs() <= 1e-7 * scale,
                "param {j}: finite difference {fd} vs moment {}",
                g2[j]
            );
        }
    }

    #[test]
    fn linear_moment_utility_matches_backprop_and_finite_differences() {
        let data = dataset(37, 5, 3, 1);
        let model = TwoLayer::new(5, 4, 3, Activation::Linear, false).multipliers(0.7, 1.9);
        check(&model, &data, &mut LinearMomentUtility::default(), 2);
    }

    #[test]
    fn diagonal_moment_utility_matches_backprop_and_finite_differences() {
        let data = dataset(23, 6, 1, 3);
        let model = Diagonal::new(6, DiagonalForm::Uv, 1.0);
        check(&model, &data, &mut DiagonalMomentUtility::default(), 4);
    }

    #[test]
    fn moment_utilities_reject_models_they_do_not_describe() {
        let data = dataset(10, 3, 1, 5);
        let r = Mat::zeros(10, 1);
        let relu = TwoLayer::new(3, 2, 1, Activation::Relu, false);
        assert!(LinearMomentUtility::default()
            .set_residual(&relu, &data, r.as_ref())
            .is_err());
        let sq = Diagonal::new(3, DiagonalForm::U2MinusV2, 1.0);
        assert!(DiagonalMomentUtility::default()
            .set_residual(&sq, &data, r.as_ref())
            .is_err());
    }
}
