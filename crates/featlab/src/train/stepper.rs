//! Steppers: one step of an optimiser (argmin's `Solver::next_iter`); the runner owns the loop.
//!
//! All steppers move on the same clock, gradient-flow time: a discrete optimiser with
//! learning rate η advances `t` by η per step, and the adaptive integrator advances `t` by
//! its accepted step size. Per-parameter lr multipliers `r` (layer-wise learning rates,
//! parametrisations) enter every method as `η·r ⊙ g`.

use super::ode::{Integrator, JacobianSettings, PidController, Solver, VectorField};
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
pub(crate) struct Minibatches {
    order: Vec<usize>,
    pos: usize,
    rng: Rng,
}

impl Minibatches {
    /// Batches drawn with `rng` (one fresh permutation per epoch).
    pub(crate) fn new(rng: Rng) -> Self {
        Minibatches {
            order: Vec::new(),
            pos: usize::MAX,
            rng,
        }
    }
    /// Indices of the next batch of `b` samples out of `n`.
    pub(crate) fn next(&mut self, n: usize, b: usize) -> &[usize] {
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

/// What every discrete optimiser carries: the parameters θ, a gradient buffer, the step
/// count k and the clock `t = k·η` (gradient-flow time), and the objective at the start of
/// the last step (NaN before the first).
pub(crate) struct Iterate {
    pub params: Vec<f64>,
    pub grad: Vec<f64>,
    pub k: u64,
    pub t: f64,
    pub last: f64,
}

impl Iterate {
    /// Step 0 at θ = `params`.
    pub fn new(params: Vec<f64>) -> Self {
        let n = params.len();
        Iterate {
            params,
            grad: vec![0.0; n],
            k: 0,
            t: 0.0,
            last: f64::NAN,
        }
    }

    /// Count a step of learning rate `lr`: `k ← k + 1`, `t = k·lr`; returns t.
    pub fn advance(&mut self, lr: f64) -> f64 {
        self.k += 1;
        self.t = self.k as f64 * lr;
        self.t
    }
}

/// The [`Stepper`] accessors of a discrete optimiser whose [`Iterate`] is the field `it`.
macro_rules! iterate_accessors {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn params(&self) -> &[f64] {
            &self.it.params
        }
        fn t(&self) -> f64 {
            self.it.t
        }
        fn last_loss(&self) -> f64 {
            self.it.last
        }
    };
}
pub(crate) use iterate_accessors;

/// Heavy-ball state: lr η, momentum μ and the velocity v.
struct HeavyBall {
    lr: f64,
    momentum: f64,
    velocity: Vec<f64>,
}

impl HeavyBall {
    fn new(lr: f64, momentum: f64, n: usize) -> Self {
        HeavyBall {
            lr,
            momentum,
            velocity: vec![0.0; n],
        }
    }

    /// `v ← μ v − η r ⊙ g`, `θ ← θ + v` with g = `it.grad`; then count the step. (Not GD's
    /// `θ − η r ⊙ g` bit for bit at μ = 0: use [`GradientDescent`] for that.)
    fn step(&mut self, it: &mut Iterate, lr_mults: &[f64]) -> f64 {
        let (lr, mu) = (self.lr, self.momentum);
        for (((p, g), r), v) in it
            .params
            .iter_mut()
            .zip(&it.grad)
            .zip(lr_mults)
            .zip(self.velocity.iter_mut())
        {
            *v = mu * *v - lr * r * g;
            *p += *v;
        }
        it.advance(lr)
    }
}

/// Gradient descent `θ ← θ − η r ⊙ ∇L(θ)`, `t ← t + η`.
pub struct GradientDescent {
    pub lr: f64,
    it: Iterate,
}

impl GradientDescent {
    pub fn new(lr: f64, params: Vec<f64>) -> Self {
        GradientDescent {
            lr,
            it: Iterate::new(params),
        }
    }
}

impl Stepper for GradientDescent {
    iterate_accessors!("gd");
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        let it = &mut self.it;
        it.last = problem.loss_grad(&it.params, &mut it.grad);
        for ((p, g), r) in it.params.iter_mut().zip(&it.grad).zip(&problem.lr_mults) {
            *p -= self.lr * r * g;
        }
        Ok(it.advance(self.lr))
    }
}

/// Minibatch SGD: each epoch visits the samples in a fresh random order (seeded stream),
/// in batches of `batch_size` (the last short batch of an epoch is dropped so that every
/// step has the same size); `θ ← θ − η r ⊙ ∇L_B(θ)`, `t ← t + η`.
pub struct Sgd {
    pub batch_size: usize,
    it: Iterate,
    batches: Minibatches,
    /// lr and the optional heavy-ball momentum
    hb: HeavyBall,
}

impl Sgd {
    pub fn new(lr: f64, batch_size: usize, momentum: f64, params: Vec<f64>, rng: Rng) -> Self {
        let n = params.len();
        Sgd {
            batch_size,
            it: Iterate::new(params),
            batches: Minibatches::new(rng),
            hb: HeavyBall::new(lr, momentum, n),
        }
    }
}

impl Stepper for Sgd {
    iterate_accessors!("sgd");
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        let n = problem.data.n();
        let b = self.batch_size.min(n);
        let idx = self.batches.next(n, b);
        let it = &mut self.it;
        it.last = problem.loss_grad_batch(&it.params, idx, &mut it.grad);
        Ok(self.hb.step(it, &problem.lr_mults))
    }
}

/// Heavy-ball momentum (Polyak 1964), full batch: `v ← μ v − η r ⊙ ∇L`, `θ ← θ + v`,
/// `t ← t + η`. On plateaus the effective rate is η/(1 − μ) (AGF §1.2 time conversion).
pub struct Momentum {
    it: Iterate,
    hb: HeavyBall,
}

impl Momentum {
    pub fn new(lr: f64, momentum: f64, params: Vec<f64>) -> Self {
        let n = params.len();
        Momentum {
            it: Iterate::new(params),
            hb: HeavyBall::new(lr, momentum, n),
        }
    }
}

impl Stepper for Momentum {
    iterate_accessors!("momentum");
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        let it = &mut self.it;
        it.last = problem.loss_grad(&it.params, &mut it.grad);
        Ok(self.hb.step(it, &problem.lr_mults))
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
    it: Iterate,
    m: Vec<f64>,
    v: Vec<f64>,
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
            it: Iterate::new(params),
            m: vec![0.0; n],
            v: vec![0.0; n],
            batches: Minibatches::new(rng),
        }
    }
}

impl Stepper for Adam {
    iterate_accessors!("adam");
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        let it = &mut self.it;
        it.last = match self.batch_size {
            None => problem.loss_grad(&it.params, &mut it.grad),
            Some(b) => {
                let n = problem.data.n();
                let b = b.min(n);
                let idx = self.batches.next(n, b);
                problem.loss_grad_batch(&it.params, idx, &mut it.grad)
            }
        };
        let k = i32::try_from(it.k + 1).unwrap_or(i32::MAX);
        let c1 = 1.0 - self.beta1.powi(k);
        let c2 = 1.0 - self.beta2.powi(k);
        for i in 0..it.params.len() {
            let g = it.grad[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            it.params[i] -= self.lr * problem.lr_mults[i] * mh / (vh.sqrt() + self.eps);
        }
        Ok(it.advance(self.lr))
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
        // column by column (both matrices column-major): jac[(idx a, idx b)] = −r (h_ab + λδ_ab)
        for (b, &ib) in idx.iter().enumerate() {
            let src = h.col_as_slice(b);
            let mut dst = jac.as_mut().col_mut(ib);
            for (a, (&ia, &v)) in idx.iter().zip(src).enumerate() {
                let v = if a == b { v + lambda } else { v };
                dst[ia] = -r[ia] * v;
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

    /// Set the implicit solvers' Jacobian options (checked; config errors name
    /// `section.…`); no-op for explicit methods.
    pub fn apply_jacobian_settings(&mut self, s: &JacobianSettings, section: &str) -> Result<()> {
        s.apply(self.rk.as_mut(), section)
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
