//! Steppers: one step of an optimiser (argmin's `Solver::next_iter`); the runner owns the loop.
//!
//! All steppers move on the same clock, gradient-flow time: a discrete optimiser with
//! learning rate η advances `t` by η per step, and the adaptive integrator advances `t` by
//! its accepted step size. Per-parameter lr multipliers `r` (layer-wise learning rates,
//! parametrisations) enter every method as `η·r ⊙ g`.

use super::ode::{Integrator, PidController, Solver, VectorField};
use super::problem::Problem;
use crate::rng::{permutation_into, Rng};
use crate::Result;

/// One optimiser step at a time.
pub trait Stepper {
    /// Method name as written in outputs (`gd`, `sgd`, `momentum`, `adam`, `flow`).
    fn name(&self) -> &'static str;
    /// Current parameters.
    fn params(&self) -> &[f64];
    /// Current time t.
    fn t(&self) -> f64;
    /// Objective at the start of the last step (NaN before the first step).
    fn last_loss(&self) -> f64;
    /// Take one step, never past `t_max`; returns the new time.
    fn step(&mut self, problem: &mut Problem<'_>, t_max: f64) -> Result<f64>;
    /// Parameters at a time inside the last step (dense output), if the method has one;
    /// returns false when it does not (discrete steppers).
    fn dense(&self, t: f64, out: &mut [f64]) -> bool {
        let _ = (t, out);
        false
    }
    /// Per-method statistics for the run summary (e.g. accepted/rejected steps).
    fn stats(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Epoch-wise minibatch order shared by SGD and Adam: each epoch visits the samples in a
/// fresh random order (seeded stream); the last short batch of an epoch is dropped so that
/// every step has the same size. The order buffer is reused across epochs (no allocation
/// per step in steady state).
struct Minibatches {
    order: Vec<usize>,
    pos: usize,
    rng: Rng,
}

impl Minibatches {
    fn new(rng: Rng) -> Self {
        Minibatches {
            order: Vec::new(),
            pos: usize::MAX,
            rng,
        }
    }
    /// Indices of the next batch of `b` samples out of `n`.
    fn next(&mut self, n: usize, b: usize) -> &[usize] {
        if self.pos == usize::MAX || self.pos + b > n {
            self.order.resize(n, 0);
            permutation_into(&mut self.rng, &mut self.order);
            self.pos = 0;
        }
        let start = self.pos;
        self.pos += b;
        &self.order[start..start + b]
    }
}

/// Gradient descent `θ ← θ − η r ⊙ ∇L(θ)`, `t ← t + η`.
pub struct GradientDescent {
    pub lr: f64,
    params: Vec<f64>,
    grad: Vec<f64>,
    k: u64,
    t: f64,
    last: f64,
}

impl GradientDescent {
    pub fn new(lr: f64, params: Vec<f64>) -> Self {
        let n = params.len();
        GradientDescent {
            lr,
            params,
            grad: vec![0.0; n],
            k: 0,
            t: 0.0,
            last: f64::NAN,
        }
    }
}

impl Stepper for GradientDescent {
    fn name(&self) -> &'static str {
        "gd"
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn t(&self) -> f64 {
        self.t
    }
    fn last_loss(&self) -> f64 {
        self.last
    }
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        self.last = problem.loss_grad(&self.params, &mut self.grad);
        for ((p, g), r) in self
            .params
            .iter_mut()
            .zip(&self.grad)
            .zip(&problem.lr_mults)
        {
            *p -= self.lr * r * g;
        }
        self.k += 1;
        self.t = self.k as f64 * self.lr;
        Ok(self.t)
    }
}

/// Minibatch SGD: each epoch visits the samples in a fresh random order (seeded stream),
/// in batches of `batch_size` (the last short batch of an epoch is dropped so that every
/// step has the same size); `θ ← θ − η r ⊙ ∇L_B(θ)`, `t ← t + η`.
pub struct Sgd {
    pub lr: f64,
    pub batch_size: usize,
    params: Vec<f64>,
    grad: Vec<f64>,
    batches: Minibatches,
    k: u64,
    t: f64,
    last: f64,
    /// optional heavy-ball momentum
    momentum: f64,
    velocity: Vec<f64>,
}

impl Sgd {
    pub fn new(lr: f64, batch_size: usize, momentum: f64, params: Vec<f64>, rng: Rng) -> Self {
        let n = params.len();
        Sgd {
            lr,
            batch_size,
            params,
            grad: vec![0.0; n],
            batches: Minibatches::new(rng),
            k: 0,
            t: 0.0,
            last: f64::NAN,
            momentum,
            velocity: vec![0.0; n],
        }
    }
}

impl Stepper for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn t(&self) -> f64 {
        self.t
    }
    fn last_loss(&self) -> f64 {
        self.last
    }
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        let n = problem.data.n();
        let b = self.batch_size.min(n);
        let idx = self.batches.next(n, b);
        self.last = problem.loss_grad_batch(&self.params, idx, &mut self.grad);
        for (((p, g), r), v) in self
            .params
            .iter_mut()
            .zip(&self.grad)
            .zip(&problem.lr_mults)
            .zip(self.velocity.iter_mut())
        {
            *v = self.momentum * *v - self.lr * r * g;
            *p += *v;
        }
        self.k += 1;
        self.t = self.k as f64 * self.lr;
        Ok(self.t)
    }
}

/// Heavy-ball momentum (Polyak 1964), full batch: `v ← μ v − η r ⊙ ∇L`, `θ ← θ + v`,
/// `t ← t + η`. On plateaus the effective rate is η/(1 − μ) (AGF §1.2 time conversion).
pub struct Momentum {
    pub lr: f64,
    pub momentum: f64,
    params: Vec<f64>,
    grad: Vec<f64>,
    velocity: Vec<f64>,
    k: u64,
    t: f64,
    last: f64,
}

impl Momentum {
    pub fn new(lr: f64, momentum: f64, params: Vec<f64>) -> Self {
        let n = params.len();
        Momentum {
            lr,
            momentum,
            params,
            grad: vec![0.0; n],
            velocity: vec![0.0; n],
            k: 0,
            t: 0.0,
            last: f64::NAN,
        }
    }
}

impl Stepper for Momentum {
    fn name(&self) -> &'static str {
        "momentum"
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn t(&self) -> f64 {
        self.t
    }
    fn last_loss(&self) -> f64 {
        self.last
    }
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        self.last = problem.loss_grad(&self.params, &mut self.grad);
        for (((p, g), r), v) in self
            .params
            .iter_mut()
            .zip(&self.grad)
            .zip(&problem.lr_mults)
            .zip(self.velocity.iter_mut())
        {
            *v = self.momentum * *v - self.lr * r * g;
            *p += *v;
        }
        self.k += 1;
        self.t = self.k as f64 * self.lr;
        Ok(self.t)
    }
}

/// Adam (Kingma & Ba 2015), full batch or minibatch (`batch_size`), with bias correction:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ − η r m̂/(√v̂ + ε)`; `t ← t + η`.
/// Weight decay is L2 (added to g), not decoupled.
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    batch_size: Option<usize>,
    params: Vec<f64>,
    grad: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    k: i32,
    t: f64,
    last: f64,
    batches: Minibatches,
}

impl Adam {
    pub fn new(
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        batch_size: Option<usize>,
        params: Vec<f64>,
        rng: Rng,
    ) -> Self {
        let n = params.len();
        Adam {
            lr,
            beta1,
            beta2,
            eps,
            batch_size,
            params,
            grad: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            k: 0,
            t: 0.0,
            last: f64::NAN,
            batches: Minibatches::new(rng),
        }
    }
}

impl Stepper for Adam {
    fn name(&self) -> &'static str {
        "adam"
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn t(&self) -> f64 {
        self.t
    }
    fn last_loss(&self) -> f64 {
        self.last
    }
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        self.last = match self.batch_size {
            None => problem.loss_grad(&self.params, &mut self.grad),
            Some(b) => {
                let n = problem.data.n();
                let b = b.min(n);
                let idx = self.batches.next(n, b);
                problem.loss_grad_batch(&self.params, idx, &mut self.grad)
            }
        };
        self.k += 1;
        let c1 = 1.0 - self.beta1.powi(self.k);
        let c2 = 1.0 - self.beta2.powi(self.k);
        for i in 0..self.params.len() {
            let g = self.grad[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            self.params[i] -= self.lr * problem.lr_mults[i] * mh / (vh.sqrt() + self.eps);
        }
        self.t = self.k as f64 * self.lr;
        Ok(self.t)
    }
}

/// The gradient-flow vector field `dθ/dt = −r ⊙ ∇(L + (λ/2)‖θ‖²)`.
pub struct GradientFlowField<'p, 'a> {
    pub problem: &'p mut Problem<'a>,
    /// Objective at the last evaluation.
    pub last_loss: f64,
}

impl VectorField for GradientFlowField<'_, '_> {
    fn dim(&self) -> usize {
        self.problem.model.num_params()
    }
    /// `−r ⊙ ∇²L` is symmetric when every rate multiplier `r_i` is the same.
    fn symmetric_jacobian(&self) -> bool {
        let r = &self.problem.lr_mults;
        r.iter().all(|v| *v == r[0])
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        self.last_loss = self.problem.loss_grad(y, dy);
        for (g, r) in dy.iter_mut().zip(&self.problem.lr_mults) {
            *g *= -r;
        }
        Ok(())
    }
    /// Exact `∂f/∂θ = −r ⊙ (∇²L + λI)` when the loss is MSE and the model is a neuron sum
    /// with an exact Hessian whose neurons cover every parameter
    /// ([`crate::model::NeuronSum::neuron_loss_hessian`], e.g. bias-free two-layer nets);
    /// otherwise `Ok(false)` (finite differences in the implicit solver).
    fn jacobian(&mut self, _t: f64, y: &[f64], mut jac: faer::MatMut<'_, f64>) -> Result<bool> {
        if self.problem.loss != crate::model::Loss::Mse {
            return Ok(false);
        }
        let Some(ns) = self.problem.model.as_neuron_sum() else {
            return Ok(false);
        };
        let neurons: Vec<usize> = (0..ns.num_neurons()).collect();
        let idx: Vec<usize> = neurons.iter().flat_map(|&i| ns.neuron_params(i)).collect();
        let dim = y.len();
        if idx.len() != dim {
            return Ok(false);
        }
        let mut h = faer::Mat::zeros(dim, dim);
        let data = self.problem.data;
        if !ns.neuron_loss_hessian(y, data.x.as_ref(), data.y.as_ref(), &neurons, h.as_mut())? {
            return Ok(false);
        }
        let lambda = self.problem.weight_decay;
        let r = &self.problem.lr_mults;
        for (a, &ia) in idx.iter().enumerate() {
            for (b, &ib) in idx.iter().enumerate() {
                let v = h[(a, b)] + if a == b { lambda } else { 0.0 };
                jac[(ia, ib)] = -r[ia] * v;
            }
        }
        Ok(true)
    }
}

/// Gradient flow solved by an adaptive ODE method: an embedded Runge–Kutta pair
/// (Dormand–Prince 5(4) by default; plateaus cost few steps) or, for stiff flows (fitted
/// neurons with O(1) curvature next to plateaus ∝ 1/α), the Rosenbrock–W method ROS34PW2
/// ([`Solver`]).
pub struct Flow {
    rk: Box<dyn Integrator>,
    initialised: bool,
    init_params: Vec<f64>,
    last: f64,
    dt0: Option<f64>,
}

impl Flow {
    /// Gradient flow by DOPRI5 under `controller`, first step `dt0` (or Hairer's heuristic).
    pub fn new(params: Vec<f64>, controller: PidController, dt0: Option<f64>) -> Self {
        Self::with_solver(Solver::default(), params, controller, dt0)
    }

    /// Implicit solvers: re-evaluate the Jacobian at least every `age` accepted steps
    /// ([`crate::train::ode::RosenbrockStepper::set_jacobian_max_age`]); no-op otherwise.
    pub fn set_jacobian_max_age(&mut self, age: u64) {
        self.rk.set_jacobian_max_age(age);
    }

    /// Implicit solvers: leave coordinates with h·Σ_i|A_ij| < `eta` out of the Jacobian
    /// ([`crate::train::ode::RosenbrockStepper::set_explicit_below`]); no-op otherwise.
    pub fn set_explicit_below(&mut self, eta: f64) -> Result<()> {
        self.rk.set_explicit_below(eta)
    }

    /// Gradient flow by `solver` under `controller`, first step `dt0` (or Hairer's heuristic).
    pub fn with_solver(
        solver: Solver,
        params: Vec<f64>,
        controller: PidController,
        dt0: Option<f64>,
    ) -> Self {
        let n = params.len();
        Flow {
            rk: solver.integrator(controller, n),
            initialised: false,
            init_params: params,
            last: f64::NAN,
            dt0,
        }
    }
}

impl Stepper for Flow {
    fn name(&self) -> &'static str {
        "flow"
    }
    fn params(&self) -> &[f64] {
        if self.initialised {
            self.rk.y()
        } else {
            &self.init_params
        }
    }
    fn t(&self) -> f64 {
        if self.initialised {
            self.rk.t()
        } else {
            0.0
        }
    }
    fn last_loss(&self) -> f64 {
        self.last
    }
    fn step(&mut self, problem: &mut Problem<'_>, t_max: f64) -> Result<f64> {
        let mut field = GradientFlowField {
            problem,
            last_loss: f64::NAN,
        };
        if !self.initialised {
            self.rk.init(&mut field, 0.0, &self.init_params, self.dt0)?;
            self.initialised = true;
        }
        let iv = self.rk.step(&mut field, t_max)?;
        self.last = field.last_loss;
        Ok(iv.t1)
    }
    fn dense(&self, t: f64, out: &mut [f64]) -> bool {
        if !self.initialised {
            return false;
        }
        self.rk.interpolate(t, out);
        true
    }
    fn stats(&self) -> serde_json::Value {
        serde_json::to_value(self.rk.stats()).unwrap_or(serde_json::Value::Null)
    }
}
