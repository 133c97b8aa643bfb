//! Cost minimisers for AGF's fast phase (Kunin et al. 2025, §2.5): the generic adaptive
//! gradient flow on the active neurons, and closed-form least squares for fully connected
//! linear nets (reduced-rank regression) and diagonal linear nets (with sign-flip
//! deactivation, §3.1).

use super::engine::{CostMinimizer, CostOutcome, CostStop, Redormant};
use crate::data::Dataset;
use crate::linalg::{matmul, norm2, sym_eig, thin_svd};
use crate::model::diagonal::{Diagonal, DiagonalForm};
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Loss, Model, NeuronSum, Workspace};
use crate::train::ode::{JacobianSettings, PidController, Solver, VectorField};
use crate::{Error, Result};
use faer::{Accum, Mat, MatRef, Par};
use serde::{Deserialize, Serialize};

/// Gradient flow dΘ_A/dt = −∇_{Θ_A} C on the *active* neurons' parameters only (dormant
/// neurons frozen at zero, AGF §2.5), run until ‖∇_{Θ_A} C‖ ≤ `gtol` (the stationary point
/// the flow converges to, [`CostStop::Gradient`]) or — with `level_rtol` set — until the
/// *level* has converged ([`CostStop::Level`]); `t_max` and `max_steps` are safety limits
/// whose hit is reported as non-convergence ([`CostStop::Budget`], with the final gradient
/// norm).
///
/// Level convergence: at the checkpoints t_m = `level_t0`·2^m the loss C(t_m) is evaluated
/// and the phase stops at the first m ≥ 1 with C(t_{m−1}) − C(t_m) ≤ `level_rtol`·C(t_m).
/// Why the level and not ‖∇C‖: AGF's fast phase is the α → 0 limit of gradient flow,
/// in which the time between two activations grows ∝ 1/α (κ = 3) or ∝ log(1/α) (κ = 2)
/// while the active neurons' fitting dynamics run on an O(1) clock; so in the limit GF
/// has unbounded time to fit, and the level AGF must predict is lim_{t→∞} C(Θ_A(t)) =
/// the infimum of C along the cost flow, whether or not a minimiser is attained. When it
/// is not (several quadratic neurons on one frequency: the norms grow without bound and
/// ‖∇C‖ decays like a power of t), a ‖∇C‖ test either never fires or fires at an
/// arbitrary time, whereas the level converges: for C(t) − C_∞ ∝ t^{−β} the decrease over
/// a doubling is (1 − 2^{−β})(C(t/2) − C_∞), so the remaining excess is at most
/// `level_rtol`·C/(2^β − 1) (≈ 2.4·`level_rtol`·C for β = ½). The parameters then still
/// drift (along a flat valley), which the jump times of later rounds may feel; this is
/// reported per round (`CostOutcome::stop`, `grad_norm`).
///
/// The state is the packed vector of active parameters (dimension (#active)·|θ_i|, not the
/// full parameter count). With the stiff solver (`solver = "ros34pw2"`) the Jacobian
/// −∇²_{Θ_A} C is the model's exact neuron Hessian
/// ([`crate::model::NeuronSum::neuron_loss_hessian`]) when it has one, else finite
/// differences of the gradient on the active coordinates. An L-stable method may take
/// steps far beyond 1/λ_min near the minimiser (the step then tends to a Newton step), so
/// convergence in flat directions costs few steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradientFlowCost {
    pub rtol: f64,
    pub atol: f64,
    /// Convergence: Euclidean norm of the active gradient (the loss is then within
    /// ~gtol²/λ_min of the minimum; much below 1e-8 the explicit solver's error control
    /// at its stability limit keeps ‖∇C‖ from falling further).
    pub gtol: f64,
    /// Longest cost phase (gradient-flow time); reaching it without ‖∇C‖ ≤ gtol (or the
    /// level criterion) is a convergence failure.
    pub t_max: f64,
    /// Level convergence (off when `None`): stop at the first checkpoint t_m =
    /// `level_t0`·2^m (m ≥ 1) with C(t_{m−1}) − C(t_m) ≤ `level_rtol`·C(t_m).
    pub level_rtol: Option<f64>,
    /// First checkpoint of the level test (gradient-flow time of the cost phase).
    pub level_t0: f64,
    pub max_steps: u64,
    /// Fixed step size (no error control), for discontinuous gradients (ReLU).
    pub fixed_dt: Option<f64>,
    /// ODE method (default DOPRI5; `"ros34pw2"` for stiff fitted sets, e.g. κ = 3 nets).
    pub solver: Solver,
    /// Implicit solvers: re-evaluate the Jacobian at least every this many accepted steps
    /// (default [`crate::train::ode::DEFAULT_JACOBIAN_MAX_AGE`]; ≥ 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian_max_age: Option<u64>,
    /// Implicit solvers: leave coordinates j with h·Σ_i|∂f_i/∂y_j| below this out of the
    /// Jacobian ([`crate::train::ode::RosenbrockStepper::set_explicit_below`]; in [0, 0.5)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian_explicit_below: Option<f64>,
    /// Implicit solvers with a symmetric Jacobian: leave eigenpairs with h·|λ| below this
    /// out of the stage solves ([`crate::train::ode::RosenbrockStepper::set_spectral_below`];
    /// in [0, 0.5)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian_spectral_below: Option<f64>,
    /// Use finite differences of the gradient for the stiff solver's Jacobian even when
    /// the model has an exact Hessian (for checks and cost comparisons).
    pub fd_jacobian: bool,
}

impl Default for GradientFlowCost {
    fn default() -> Self {
        GradientFlowCost {
            rtol: 1e-9,
            atol: 1e-12,
            gtol: 1e-7,
            t_max: 1e5,
            level_rtol: None,
            level_t0: 1.0,
            max_steps: 2_000_000,
            fixed_dt: None,
            solver: Solver::default(),
            jacobian_max_age: None,
            jacobian_explicit_below: None,
            jacobian_spectral_below: None,
            fd_jacobian: false,
        }
    }
}

/// The gradient-flow field on the packed active parameters: `y` = the entries `idx` of
/// the full parameter vector `full` (the rest fixed: dormant neurons at zero).
///
/// When every other neuron is exactly zero and the model can be restricted
/// ([`NeuronSum::restricted`]), loss, gradient and Hessian are evaluated on the model of
/// the active neurons alone (same function, cost ∝ |A| instead of H); otherwise on the
/// full model with the others fixed.
pub(crate) struct ActiveFlow<'a, M: ?Sized> {
    model: &'a M,
    data: &'a Dataset,
    /// Active neurons in order; `idx` = their parameter indices, neuron by neuron.
    neurons: Vec<usize>,
    idx: Vec<usize>,
    full: Vec<f64>,
    grad: Vec<f64>,
    ws: Workspace,
    restriction: Option<Restriction>,
    fd_jacobian: bool,
    evals: u64,
    hessians: u64,
}

/// The active neurons as a model of their own ([`NeuronSum::restricted`]): its parameter
/// vector, and where packed entry q of the flow's state sits in it (`pos[q]`).
struct Restriction {
    model: Box<dyn NeuronSum>,
    params: Vec<f64>,
    grad: Vec<f64>,
    pos: Vec<usize>,
    ws: Workspace,
}

impl Restriction {
    /// The restriction of `model` to `neurons` if the model has one and every other
    /// neuron of `params` is exactly zero (so that both compute the same function).
    fn new<M: NeuronSum + ?Sized>(
        model: &M,
        data: &Dataset,
        params: &[f64],
        neurons: &[usize],
    ) -> Option<Restriction> {
        let mut is_active = vec![false; model.num_neurons()];
        for &i in neurons {
            is_active[i] = true;
        }
        let others_zero = (0..model.num_neurons())
            .filter(|&i| !is_active[i])
            .all(|i| model.neuron_params(i).iter().all(|&j| params[j] == 0.0));
        if !others_zero || neurons.is_empty() {
            return None;
        }
        let sub = model.restricted(neurons)?;
        let mut pos = Vec::new();
        for (j, &i) in neurons.iter().enumerate() {
            let (outer, inner) = (model.neuron_params(i), sub.neuron_params(j));
            assert_eq!(
                outer.len(),
                inner.len(),
                "restricted neuron {j} changed size"
            );
            pos.extend(inner);
        }
        assert_eq!(
            pos.len(),
            sub.num_params(),
            "a restricted model has only its neurons' parameters"
        );
        let n = sub.num_params();
        Some(Restriction {
            ws: sub.workspace(data.n()),
            model: sub,
            params: vec![0.0; n],
            grad: vec![0.0; n],
            pos,
        })
    }
}

impl<'a, M: NeuronSum + ?Sized> ActiveFlow<'a, M> {
    pub(crate) fn new(
        model: &'a M,
        data: &'a Dataset,
        params: &[f64],
        active: &[bool],
        fd_jacobian: bool,
    ) -> Self {
        let neurons: Vec<usize> = (0..active.len()).filter(|&i| active[i]).collect();
        let idx = neurons
            .iter()
            .flat_map(|&i| model.neuron_params(i))
            .collect();
        ActiveFlow {
            model,
            data,
            restriction: Restriction::new(model, data, params, &neurons),
            neurons,
            idx,
            full: params.to_vec(),
            grad: vec![0.0; params.len()],
            ws: model.workspace(data.n()),
            fd_jacobian,
            evals: 0,
            hessians: 0,
        }
    }
    /// Whether the flow evaluates the restricted model of the active neurons.
    #[cfg(test)]
    pub(crate) fn is_restricted(&self) -> bool {
        self.restriction.is_some()
    }
    /// The same flow evaluated on the full model (for comparing the two paths).
    #[cfg(test)]
    pub(crate) fn unrestricted(mut self) -> Self {
        self.restriction = None;
        self
    }
    /// The packed active parameters of the current full vector.
    pub(crate) fn pack(&self) -> Vec<f64> {
        self.idx.iter().map(|&j| self.full[j]).collect()
    }
    /// C at the packed active parameters `y` (dormant neurons as in `full`).
    pub(crate) fn loss_at(&mut self, y: &[f64]) -> f64 {
        let (x, t) = (self.data.x.as_ref(), self.data.y.as_ref());
        match &mut self.restriction {
            Some(r) => {
                scatter(&r.pos, y, &mut r.params);
                r.model.loss(&r.params, x, t, Loss::Mse, &mut r.ws)
            }
            None => {
                scatter(&self.idx, y, &mut self.full);
                self.model.loss(&self.full, x, t, Loss::Mse, &mut self.ws)
            }
        }
    }
    /// Write the packed `y` into `params` (full vector).
    pub(crate) fn unpack(&self, y: &[f64], params: &mut [f64]) {
        scatter(&self.idx, y, params);
    }
}

impl<M: NeuronSum + ?Sized> VectorField for ActiveFlow<'_, M> {
    fn dim(&self) -> usize {
        self.idx.len()
    }
    /// `−∇²_{Θ_A} C` is symmetric.
    fn symmetric_jacobian(&self) -> bool {
        true
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        self.evals += 1;
        match &mut self.restriction {
            Some(r) => negative_gradient(
                r.model.as_ref(),
                self.data,
                &r.pos,
                y,
                (&mut r.params, &mut r.grad, &mut r.ws),
                dy,
            ),
            None => negative_gradient(
                self.model,
                self.data,
                &self.idx,
                y,
                (&mut self.full, &mut self.grad, &mut self.ws),
                dy,
            ),
        }
        Ok(())
    }
    fn jacobian(&mut self, _t: f64, y: &[f64], mut jac: faer::MatMut<'_, f64>) -> Result<bool> {
        if self.fd_jacobian {
            return Ok(false);
        }
        let (x, t) = (self.data.x.as_ref(), self.data.y.as_ref());
        let exact = match &mut self.restriction {
            Some(r) => {
                scatter(&r.pos, y, &mut r.params);
                let all: Vec<usize> = (0..self.neurons.len()).collect();
                r.model
                    .neuron_loss_hessian(&r.params, x, t, &all, jac.as_mut())?
            }
            None => {
                scatter(&self.idx, y, &mut self.full);
                self.model
                    .neuron_loss_hessian(&self.full, x, t, &self.neurons, jac.as_mut())?
            }
        };
        if exact {
            self.hessians += 1;
            let k = self.idx.len();
            for a in 0..k {
                for b in 0..k {
                    jac[(a, b)] = -jac[(a, b)];
                }
            }
        }
        Ok(exact)
    }
}

impl GradientFlowCost {
    /// A failed step of a fixed-step cost phase (`fixed_dt`) is a divergence of the explicit
    /// scheme (stable only for dt below ≈ 2/λ_max of the active neurons' loss Hessian):
    /// reported as such, with the step, the phase time and the key to change; errors of
    /// adaptive phases pass through unchanged.
    fn fixed_step_divergence(&self, err: Error, step: u64, t: f64) -> Error {
        match (self.fixed_dt, err) {
            (Some(dt), Error::Numerical(why)) => Error::Diverged {
                step,
                t,
                what: "the AGF cost phase's flow".into(),
                hint: format!(
                    "Try a smaller cost.fixed_dt (= {dt} now): a fixed step is stable only below ≈ 2/λ_max of the active neurons' loss Hessian ({why})"
                ),
            },
            (_, err) => err,
        }
    }
}

impl<M: NeuronSum + ?Sized> CostMinimizer<M> for GradientFlowCost {
    fn name(&self) -> &'static str {
        "gradient_flow"
    }
    fn minimize(
        &mut self,
        model: &M,
        data: &Dataset,
        params: &mut [f64],
        active: &[bool],
        entering: &[usize],
    ) -> Result<CostOutcome> {
        let min_level_stop = 2.0 * entry_growth_time(model, data, params, entering);
        let mut field = ActiveFlow::new(model, data, params, active, self.fd_jacobian);
        let y0 = field.pack();
        let (stop, grad_norm, t_end, level_change) = if y0.is_empty() {
            (CostStop::Gradient, 0.0, 0.0, None)
        } else {
            if let Some(tol) = self.level_rtol {
                if !(tol.is_finite()
                    && tol > 0.0
                    && self.level_t0.is_finite()
                    && self.level_t0 > 0.0)
                {
                    return Err(Error::config(
                        "cost.level_rtol",
                        format!(
                            "level_rtol and level_t0 must be positive and finite, got {tol} and {}",
                            self.level_t0
                        ),
                    ));
                }
            }
            let ctrl = match self.fixed_dt {
                None => PidController::new(self.rtol, self.atol),
                Some(dt) => PidController::fixed_step(dt, "cost.fixed_dt")?,
            };
            let mut rk = self.solver.integrator(ctrl, y0.len());
            JacobianSettings {
                max_age: self.jacobian_max_age,
                explicit_below: self.jacobian_explicit_below,
                spectral_below: self.jacobian_spectral_below,
            }
            .apply(rk.as_mut(), "cost")?;
            rk.init(&mut field, 0.0, &y0, self.fixed_dt)?;
            let mut gnorm = norm2(rk.dy());
            let mut steps = 0u64;
            // level checkpoints t_m = level_t0·2^m (none without level_rtol)
            let mut next_check = if self.level_rtol.is_some() {
                self.level_t0
            } else {
                f64::INFINITY
            };
            let mut prev_level: Option<f64> = None;
            let mut level_change = None;
            let stop = loop {
                if gnorm <= self.gtol {
                    break CostStop::Gradient;
                }
                if rk.t() >= self.t_max || steps >= self.max_steps {
                    break CostStop::Budget;
                }
                let t0 = rk.t();
                rk.step(&mut field, next_check.min(self.t_max))
                    .map_err(|e| self.fixed_step_divergence(e, steps, t0))?;
                steps += 1;
                gnorm = norm2(rk.dy());
                if gnorm > self.gtol && rk.t() >= next_check {
                    let y = rk.y().to_vec();
                    let level = field.loss_at(&y);
                    if let (Some(prev), Some(tol)) = (prev_level, self.level_rtol) {
                        let change = (prev - level) / level.abs().max(f64::MIN_POSITIVE);
                        level_change = Some(change);
                        if change <= tol && rk.t() >= min_level_stop {
                            break CostStop::Level;
                        }
                    }
                    prev_level = Some(level);
                    next_check *= 2.0;
                }
            };
            let y = rk.y().to_vec();
            field.unpack(&y, params);
            (stop, gnorm, rk.t(), level_change)
        };
        let mut ws = model.workspace(data.n());
        let loss = model.loss(params, data.x.as_ref(), data.y.as_ref(), Loss::Mse, &mut ws);
        Ok(CostOutcome {
            loss,
            redormant: Vec::new(),
            work: field.evals,
            converged: stop != CostStop::Budget,
            stop,
            grad_norm: Some(grad_norm),
            level_change,
            time: Some(t_end),
            hessians: field.hessians,
        })
    }
}

/// Time for the slowest entering neuron below norm 1 to reach norm 1 at its current rate:
/// max_i `utility_for_norm`(κ, ρ_i, 1)/(κŪ_i) with ρ_i = ‖θ_i‖ and κŪ_i = ⟨θ_i, −∇_{θ_i}C⟩/ρ_i^κ
/// (Euler: ⟨θ, ∇U(θ)⟩ = κU(θ) = κρ^κŪ); 0 when none is below norm 1 or growing. A level
/// stop before twice this time would judge a plateau the entering neuron has not yet left
/// (`agf.entry_norm` < 1).
fn entry_growth_time<M: NeuronSum + ?Sized>(
    model: &M,
    data: &Dataset,
    params: &[f64],
    entering: &[usize],
) -> f64 {
    let kappa = model.homogeneity();
    let small: Vec<(Vec<usize>, f64)> = entering
        .iter()
        .map(|&i| {
            let v = model.neuron_params(i);
            let rho = norm2(&v.iter().map(|&j| params[j]).collect::<Vec<_>>());
            (v, rho)
        })
        .filter(|(_, rho)| *rho > 0.0 && *rho < 1.0)
        .collect();
    if small.is_empty() {
        return 0.0;
    }
    let mut ws = model.workspace(data.n());
    let mut grad = vec![0.0; params.len()];
    model.loss_and_grad(
        params,
        data.x.as_ref(),
        data.y.as_ref(),
        Loss::Mse,
        &mut grad,
        &mut ws,
    );
    small
        .iter()
        .map(|(v, rho)| {
            let k_u = -v.iter().map(|&j| params[j] * grad[j]).sum::<f64>() / rho.powi(kappa as i32);
            if k_u > 0.0 {
                super::engine::utility_for_norm(kappa, *rho, 1.0) / k_u
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

/// Empirical second moments Σ_xx = XᵀX/n (d×d) and Σ_yx = YᵀX/n (c×d).
pub fn moments(data: &Dataset) -> (Mat<f64>, Mat<f64>) {
    let n = data.n() as f64;
    let mut sxx = Mat::zeros(data.d(), data.d());
    matmul(
        sxx.as_mut(),
        Accum::Replace,
        data.x.transpose(),
        data.x.as_ref(),
        1.0 / n,
        Par::Seq,
    );
    let mut syx = Mat::zeros(data.c(), data.d());
    matmul(
        syx.as_mut(),
        Accum::Replace,
        data.y.transpose(),
        data.x.as_ref(),
        1.0 / n,
        Par::Seq,
    );
    (sxx, syx)
}

/// Inverse of a symmetric positive-definite matrix by eigendecomposition; errors when it
/// is singular (relative eigenvalue below 1e-12).
pub fn spd_inverse(a: MatRef<'_, f64>) -> Result<Mat<f64>> {
    let (u, l) = sym_eig(a)?;
    let lmax = l.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if l.iter().any(|&v| v <= 1e-12 * lmax) {
        return Err(Error::Numerical("input covariance Σ_xx is singular: closed-form least squares needs n ≥ d and full-rank inputs".into()));
    }
    let k = u.nrows();
    let scaled = Mat::from_fn(k, k, |i, j| u[(i, j)] / l[j]);
    let mut out = Mat::zeros(k, k);
    matmul(
        out.as_mut(),
        Accum::Replace,
        scaled.as_ref(),
        u.transpose(),
        1.0,
        Par::Seq,
    );
    Ok(out)
}

/// Reduced-rank regression: the minimiser of ½E‖y − βx‖² over rank(β) ≤ k is
/// β_k = P_{U_k} Σ_yx Σ_xx⁻¹ with U_k the top-k eigenvectors of M = Σ_yx Σ_xx⁻¹ Σ_xy
/// (AGF §3.2, "greedy rank-k truncation in the whitened metric"). Returns (β_k, U_k).
pub fn rank_k_regression(
    sxx: MatRef<'_, f64>,
    syx: MatRef<'_, f64>,
    k: usize,
) -> Result<(Mat<f64>, Mat<f64>)> {
    let (c, d) = (syx.nrows(), syx.ncols());
    let sxx_inv = spd_inverse(sxx)?;
    let mut ols = Mat::zeros(c, d);
    matmul(
        ols.as_mut(),
        Accum::Replace,
        syx,
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
    let (u, _) = sym_eig(m.as_ref())?;
    let k = k.min(c);
    let uk = Mat::from_fn(c, k, |i, j| u[(i, c - 1 - j)]);
    let mut proj = Mat::zeros(c, c);
    matmul(
        proj.as_mut(),
        Accum::Replace,
        uk.as_ref(),
        uk.transpose(),
        1.0,
        Par::Seq,
    );
    let mut beta = Mat::zeros(c, d);
    matmul(
        beta.as_mut(),
        Accum::Replace,
        proj.as_ref(),
        ols.as_ref(),
        1.0,
        Par::Seq,
    );
    Ok((beta, uk))
}

/// Closed-form cost minimisation for a two-layer *linear* network f = A W x without
/// biases (AGF §3.2): with k active neurons the minimiser is the rank-k regression β_k
/// ([`rank_k_regression`]), factored in balanced form A = P S^{1/2}, W = S^{1/2} Qᵀ
/// (β_k = P S Qᵀ) over the active neurons in activation order. Gradient flow on the
/// factored cost reaches this global minimum from generic starts (no spurious local minima
/// in linear nets), so it is the cost phase's limit.
#[derive(Debug, Clone, Default)]
pub struct LinearLeastSquares {
    order: Vec<usize>,
}

impl CostMinimizer<TwoLayer> for LinearLeastSquares {
    fn name(&self) -> &'static str {
        "linear_least_squares"
    }
    fn minimize(
        &mut self,
        model: &TwoLayer,
        data: &Dataset,
        params: &mut [f64],
        active: &[bool],
        entering: &[usize],
    ) -> Result<CostOutcome> {
        if model.activation != Activation::Linear
            || model.bias
            || model.mult1 != 1.0
            || model.mult2 != 1.0
        {
            return Err(Error::config("agf.cost", "closed-form least squares needs a linear two-layer net without biases and unit multipliers; use cost = \"gradient_flow\""));
        }
        self.order.retain(|&i| active[i]);
        for &i in entering {
            if !self.order.contains(&i) {
                self.order.push(i);
            }
        }
        let k = self.order.len();
        let (sxx, syx) = moments(data);
        let (beta, _) = rank_k_regression(sxx.as_ref(), syx.as_ref(), k)?;
        let (pu, sv, qv) = thin_svd(beta.as_ref())?;
        params.fill(0.0);
        let (d, c) = (model.d, model.c);
        for (slot, &i) in self.order.iter().enumerate() {
            let idx = model.neuron_params(i);
            let sq = if slot < sv.len() {
                sv[slot].max(0.0).sqrt()
            } else {
                0.0
            };
            for a in 0..d {
                params[idx[a]] = if slot < sv.len() {
                    sq * qv[(a, slot)]
                } else {
                    0.0
                };
            }
            for b in 0..c {
                params[idx[d + b]] = if slot < sv.len() {
                    sq * pu[(b, slot)]
                } else {
                    0.0
                };
            }
        }
        let mut ws = model.workspace(data.n());
        let loss = model.loss(params, data.x.as_ref(), data.y.as_ref(), Loss::Mse, &mut ws);
        Ok(CostOutcome {
            loss,
            redormant: Vec::new(),
            work: 1,
            converged: true,
            stop: CostStop::ClosedForm,
            grad_norm: None,
            level_change: None,
            time: None,
            hessians: 0,
        })
    }
}

/// Ordinary least squares restricted to the columns `cols` of X: β_cols = (X_Aᵀ X_A)⁺ X_Aᵀ y
/// (pseudo-inverse by eigendecomposition, eigenvalues below 1e-12·max treated as 0).
pub fn restricted_least_squares(x: MatRef<'_, f64>, y: &[f64], cols: &[usize]) -> Result<Vec<f64>> {
    let k = cols.len();
    let d = x.ncols();
    let mut beta = vec![0.0; d];
    if k == 0 {
        return Ok(beta);
    }
    let n = x.nrows();
    let xa = Mat::from_fn(n, k, |i, j| x[(i, cols[j])]);
    let mut g = Mat::zeros(k, k);
    matmul(
        g.as_mut(),
        Accum::Replace,
        xa.transpose(),
        xa.as_ref(),
        1.0,
        Par::Seq,
    );
    let b: Vec<f64> = (0..k)
        .map(|j| (0..n).map(|i| xa[(i, j)] * y[i]).sum())
        .collect();
    let (u, l) = sym_eig(g.as_ref())?;
    let lmax = l.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (m, &lm) in l.iter().enumerate() {
        if lm <= 1e-12 * lmax {
            continue;
        }
        let coef: f64 = (0..k).map(|j| u[(j, m)] * b[j]).sum::<f64>() / lm;
        for j in 0..k {
            beta[cols[j]] += coef * u[(j, m)];
        }
    }
    Ok(beta)
}

/// Closed-form cost minimisation for a diagonal linear net β = u ⊙ v (AGF §3.1, the
/// authors' algorithm): least squares on the active coordinates; any coordinate that was
/// active before this round and whose coefficient flips sign goes back to the dormant set,
/// then refit (repeat). Active coordinates are set balanced, u = √|β|, v = sign(β)√|β|
/// (with the sign of u from the initialisation). A deactivated coordinate restarts at
/// norm 1 (the authors' convention: its cosh offset keeps the activation norm) with the
/// direction fixed by GF's conservation law u² − v² = u0² − v0²: u² = (1+δ)/2, v² = (1−δ)/2.
#[derive(Debug, Clone)]
pub struct DiagonalLeastSquares {
    /// δ_i = u_i(0)² − v_i(0)² (conserved by gradient flow) and sign of u_i(0).
    delta: Vec<f64>,
    u_sign: Vec<f64>,
    /// Sign of β_i on the last plateau (0 if never active).
    sign: Vec<f64>,
}

impl DiagonalLeastSquares {
    /// For a diagonal net initialised at `init` (= [u; v]).
    pub fn new(model: &Diagonal, init: &[f64]) -> Self {
        let d = model.d;
        DiagonalLeastSquares {
            delta: (0..d)
                .map(|i| init[i] * init[i] - init[d + i] * init[d + i])
                .collect(),
            u_sign: (0..d)
                .map(|i| if init[i] < 0.0 { -1.0 } else { 1.0 })
                .collect(),
            sign: vec![0.0; d],
        }
    }
}

impl CostMinimizer<Diagonal> for DiagonalLeastSquares {
    fn name(&self) -> &'static str {
        "diagonal_least_squares"
    }
    fn minimize(
        &mut self,
        model: &Diagonal,
        data: &Dataset,
        params: &mut [f64],
        active: &[bool],
        entering: &[usize],
    ) -> Result<CostOutcome> {
        if model.form != DiagonalForm::Uv || data.c() != 1 {
            return Err(Error::config("agf.cost", "diagonal least squares needs form = \"uv\" and one output; use cost = \"gradient_flow\""));
        }
        let d = model.d;
        let y: Vec<f64> = (0..data.n()).map(|i| data.y[(i, 0)]).collect();
        let mut act: Vec<usize> = (0..d).filter(|&i| active[i]).collect();
        let mut redormant = Vec::new();
        let mut solves = 0;
        let beta = loop {
            let beta = restricted_least_squares(data.x.as_ref(), &y, &act)?;
            solves += 1;
            let flipped: Vec<usize> = act
                .iter()
                .copied()
                .filter(|&i| !entering.contains(&i) && beta[i] * self.sign[i] < 0.0)
                .collect();
            if flipped.is_empty() {
                break beta;
            }
            for &i in &flipped {
                act.retain(|&j| j != i);
                let dl = self.delta[i];
                if dl.abs() >= 1.0 {
                    return Err(Error::config(
                        "model.init_scale",
                        "diagonal AGF: |u0² − v0²| ≥ 1, the initialisation is not small",
                    ));
                }
                let us = self.u_sign[i];
                let u = us * ((1.0 + dl) / 2.0).sqrt();
                let v = self.sign[i] * us * ((1.0 - dl) / 2.0).sqrt();
                redormant.push(Redormant {
                    neuron: i,
                    direction: vec![u, v],
                    norm: 1.0,
                });
                self.sign[i] = 0.0;
            }
        };
        for i in 0..d {
            let b = if act.contains(&i) { beta[i] } else { 0.0 };
            let sq = b.abs().sqrt();
            params[i] = self.u_sign[i] * sq;
            params[d + i] = self.u_sign[i] * b.signum() * sq * if b == 0.0 { 0.0 } else { 1.0 };
            if act.contains(&i) {
                self.sign[i] = if b > 0.0 {
                    1.0
                } else if b < 0.0 {
                    -1.0
                } else {
                    self.sign[i]
                };
            }
        }
        for rd in &redormant {
            params[rd.neuron] = 0.0;
            params[d + rd.neuron] = 0.0;
        }
        let mut ws = model.workspace(data.n());
        let loss = model.loss(params, data.x.as_ref(), data.y.as_ref(), Loss::Mse, &mut ws);
        Ok(CostOutcome {
            loss,
            redormant,
            work: solves,
            converged: true,
            stop: CostStop::ClosedForm,
            grad_norm: None,
            level_change: None,
            time: None,
            hessians: 0,
        })
    }
}

/// `dy = −∇C` at the packed `y` on `model`, whose parameter vector (in `buf.0`, gradient
/// buffer `buf.1`, workspace `buf.2`) holds packed entry q at index `pos[q]`.
fn negative_gradient<N: NeuronSum + ?Sized>(
    model: &N,
    data: &Dataset,
    pos: &[usize],
    y: &[f64],
    buf: (&mut [f64], &mut [f64], &mut Workspace),
    dy: &mut [f64],
) {
    let (params, grad, ws) = buf;
    scatter(pos, y, params);
    let (x, t) = (data.x.as_ref(), data.y.as_ref());
    model.loss_and_grad(params, x, t, Loss::Mse, grad, ws);
    for (d, &j) in dy.iter_mut().zip(pos) {
        *d = -grad[j];
    }
}

/// `full[idx[k]] = packed[k]` for every k (the packed active parameters back in place).
fn scatter(idx: &[usize], packed: &[f64], full: &mut [f64]) {
    for (&j, &v) in idx.iter().zip(packed) {
        full[j] = v;
    }
}
