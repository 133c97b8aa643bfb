//! Exact finite-width solution of a one-hidden-layer linear network on 1-D data, its
//! kernel/feature-learning phase diagram and the three mechanisms of feature learning
//! (Y. Xu & L. Ziyin, *Three Mechanisms of Feature Learning in a Linear Network*,
//! arXiv 2401.07085 v3, 2025). Formulas re-derived in `docs/exact-linear-1d.md`.
//!
//! * [`solution`]: the closed-form trajectory β(t), r(t), K(t), cos∠(u, w), |u|, |w|,
//!   u(t), w(t) at any width, in cancellation-free form;
//! * [`phase`]: order parameters and power-law scalings (width, γ, init scales,
//!   learning-rate ratio), the analytic boundary, an exact O(1) sampler of the random
//!   initialisation's sufficient statistics;
//! * [`mechanism`]: the classifier kernel / alignment / disalignment / rescaling;
//! * [`measure`]: the same measurements on any layered model (per-layer norms, Gram
//!   alignment of consecutive layers, empirical NTK on a probe batch).
//!
//! The model is exactly featlab's [`TwoLayer`] with d_in = 1, one output, linear
//! activation, no bias, output multiplier γ and learning-rate multipliers (η_w, η_u):
//! W₁ = w (d × 1), W₂ = uᵀ (1 × d). [`two_layer_model`] builds it, [`pack`]/[`unpack`]
//! convert vectors, and [`integrate_engine`] integrates the engine's own gradient flow
//! `dθ/dt = −r ⊙ ∇L(θ)` with the adaptive Dormand–Prince solver — the reference the closed
//! form is tested against.

pub mod measure;
pub mod mechanism;
pub mod phase;
pub mod solution;

#[cfg(test)]
mod tests;

pub use mechanism::{classify, Classification, DynamicsMeasures, Mechanism, Thresholds};
pub use phase::{Axis, PhasePoint, ScalingExponents};
pub use solution::{ExactLinear1d, Hyper1d, Moments1d, OrderParameters, State1d};

use crate::data::Dataset;
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Loss, Model};
use crate::train::ode::{solve, PidController, VectorField, DOPRI5};
use crate::train::Problem;
use crate::Result;

/// `f(x) = γ (u·w) x` as featlab's two-layer net: W₁ = w (d × 1, lr multiplier η_w),
/// W₂ = uᵀ (1 × d, lr multiplier η_u), output multiplier γ, linear activation, no bias.
pub fn two_layer_model(width: usize, gamma: f64, lr_u: f64, lr_w: f64) -> TwoLayer {
    TwoLayer::new(1, width, 1, Activation::Linear, false)
        .multipliers(1.0, gamma)
        .lr_mults(lr_w, lr_u)
}

/// Flat parameters of [`two_layer_model`]: `[w (W₁), u (W₂)]`.
pub fn pack(u: &[f64], w: &[f64]) -> Vec<f64> {
    let mut p = w.to_vec();
    p.extend_from_slice(u);
    p
}

/// Inverse of [`pack`]: `(u, w)`.
pub fn unpack(params: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let d = params.len() / 2;
    (params[d..].to_vec(), params[..d].to_vec())
}

/// The engine's gradient flow `dθ/dt = −r ⊙ ∇L(θ)` (r = per-parameter lr multipliers) as
/// an ODE vector field.
pub struct EngineFlow<'p, 'a> {
    problem: &'p mut Problem<'a>,
    grad: Vec<f64>,
}

impl<'p, 'a> EngineFlow<'p, 'a> {
    /// Wrap a training problem.
    pub fn new(problem: &'p mut Problem<'a>) -> Self {
        let n = problem.model.num_params();
        EngineFlow {
            problem,
            grad: vec![0.0; n],
        }
    }
}

impl VectorField for EngineFlow<'_, '_> {
    fn dim(&self) -> usize {
        self.grad.len()
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        self.problem.loss_grad(y, &mut self.grad);
        for ((d, g), r) in dy.iter_mut().zip(&self.grad).zip(&self.problem.lr_mults) {
            *d = -r * g;
        }
        Ok(())
    }
}

/// Integrate the engine's gradient flow of `model` on `data` (MSE) from `params0` with
/// DOPRI5 under `rtol`/`atol`, returning the parameters at each of `times` (sorted, ≥ 0).
pub fn integrate_engine(
    model: &dyn Model,
    data: &Dataset,
    params0: &[f64],
    times: &[f64],
    rtol: f64,
    atol: f64,
) -> Result<Vec<Vec<f64>>> {
    let mut problem = Problem::new(model, data, Loss::Mse, 0.0, faer::Par::Seq);
    let mut field = EngineFlow::new(&mut problem);
    let t1 = times.last().copied().unwrap_or(0.0);
    let sol = solve(
        &mut field,
        &DOPRI5,
        PidController::new(rtol, atol),
        0.0,
        t1,
        params0,
        times,
        50_000_000,
    )?;
    Ok(sol.ys)
}
