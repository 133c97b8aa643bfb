//! The `[train]` table of a run config → a stepper and run options.

use super::ode::{JacobianSettings, PidController, Solver};
use super::runner::RunOptions;
use super::schedule::Schedule;
use super::stepper::{Adam, Flow, GradientDescent, Momentum, Sgd, Stepper};
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Optimisation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Gradient flow by adaptive Dormand–Prince 5(4) (default: exact dynamics, cheap plateaus).
    #[default]
    Flow,
    /// Full-batch gradient descent.
    Gd,
    /// Minibatch SGD (with optional momentum).
    Sgd,
    /// Full-batch heavy-ball momentum.
    Momentum,
    /// Adam (full batch, or minibatch when `batch_size` is set).
    Adam,
}

impl Method {
    /// The config name (`flow`, `gd`, `sgd`, `momentum`, `adam`), as TOML spells it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Flow => "flow",
            Method::Gd => "gd",
            Method::Sgd => "sgd",
            Method::Momentum => "momentum",
            Method::Adam => "adam",
        }
    }
}

fn d_lr() -> f64 {
    1e-2
}
fn d_b1() -> f64 {
    0.9
}
fn d_b2() -> f64 {
    0.999
}
fn d_eps() -> f64 {
    1e-8
}
fn d_rtol() -> f64 {
    1e-8
}
fn d_atol() -> f64 {
    1e-12
}
fn d_max_steps() -> u64 {
    100_000_000
}

/// The `[train]` table. Time is gradient-flow time: discrete methods take
/// `ceil(t_max / lr)` steps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub method: Method,
    /// Final time t_max (= lr × steps for discrete methods).
    pub t_max: f64,
    /// Learning rate η of discrete methods (ignored by `flow`).
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Minibatch size (sgd; adam when set).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Momentum μ (default 0.9 for `momentum`, 0 for `sgd`; filled in by [`TrainConfig::resolve`]).
    #[serde(default)]
    pub momentum: Option<f64>,
    #[serde(default = "d_b1")]
    pub beta1: f64,
    #[serde(default = "d_b2")]
    pub beta2: f64,
    #[serde(default = "d_eps")]
    pub eps: f64,
    /// L2 weight decay λ: objective L + (λ/2)‖θ‖².
    #[serde(default)]
    pub weight_decay: f64,
    /// Relative tolerance of the adaptive integrator (flow).
    #[serde(default = "d_rtol")]
    pub rtol: f64,
    /// Absolute tolerance of the adaptive integrator (flow).
    #[serde(default = "d_atol")]
    pub atol: f64,
    /// ODE method of `flow`: `"dopri5"` (default), `"tsit5"`, `"bosh3"`, `"heun_euler"`, or
    /// the stiff Rosenbrock–W method `"ros34pw2"` (for long plateaus next to fast fitted
    /// modes, e.g. κ = 3 nets at small init).
    #[serde(default)]
    pub solver: Solver,
    /// Implicit solvers (`ros34pw2`): re-evaluate the Jacobian at least every this many
    /// accepted steps (default [`crate::train::ode::DEFAULT_JACOBIAN_MAX_AGE`]; ≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian_max_age: Option<u64>,
    /// Implicit solvers: leave coordinates j with h·Σ_i|∂f_i/∂y_j| below this out of the
    /// Jacobian (explicitly treated, [`crate::train::ode::RosenbrockStepper::set_explicit_below`];
    /// in [0, 0.5); default 0 = keep all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian_explicit_below: Option<f64>,
    /// Implicit solvers with a symmetric Jacobian (gradient flow): at a step of size h,
    /// leave the Jacobian's eigenpairs with h·|λ| below this out of the stage solves
    /// (explicitly treated, [`crate::train::ode::RosenbrockStepper::set_spectral_below`];
    /// in [0, 0.5); default 0 = keep all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian_spectral_below: Option<f64>,
    /// Recording schedule.
    #[serde(default)]
    pub record: Schedule,
    /// Stop once the recorded loss is ≤ this.
    #[serde(default)]
    pub target_loss: Option<f64>,
    /// Hard step budget.
    #[serde(default = "d_max_steps")]
    pub max_steps: u64,
}

impl TrainConfig {
    /// Check ranges; errors name the key.
    /// The implicit solvers' Jacobian options of this section.
    fn jacobian(&self) -> JacobianSettings {
        JacobianSettings {
            max_age: self.jacobian_max_age,
            explicit_below: self.jacobian_explicit_below,
            spectral_below: self.jacobian_spectral_below,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let pos = |k: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    format!("train.{k}"),
                    format!("must be a finite number > 0, got {v}"),
                ))
            }
        };
        pos("t_max", self.t_max)?;
        if self.method != Method::Flow {
            pos("lr", self.lr)?;
            let steps = self.t_max / self.lr;
            if steps > self.max_steps as f64 {
                return Err(Error::config(
                    "train.t_max",
                    format!(
                        "t_max / lr = {steps:.3e} steps exceeds train.max_steps = {}; raise max_steps, lower t_max or raise lr",
                        self.max_steps
                    ),
                ));
            }
        } else {
            pos("rtol", self.rtol)?;
            pos("atol", self.atol)?;
        }
        self.jacobian().check("train")?;
        if let Some(m) = self.momentum {
            if !(0.0..1.0).contains(&m) {
                return Err(Error::config(
                    "train.momentum",
                    format!("must be in [0, 1), got {m}"),
                ));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "train.weight_decay",
                format!("must be ≥ 0, got {}", self.weight_decay),
            ));
        }
        if self.batch_size == Some(0) {
            return Err(Error::config("train.batch_size", "must be ≥ 1"));
        }
        if self.method == Method::Sgd && self.batch_size.is_none() {
            return Err(Error::config(
                "train.batch_size",
                "method = \"sgd\" needs a batch_size",
            ));
        }
        Ok(())
    }

    /// Build the stepper from initial parameters; `rng` drives minibatch order.
    pub fn stepper(&self, params: Vec<f64>, rng: Rng) -> Result<Box<dyn Stepper>> {
        self.validate()?;
        Ok(match self.method {
            Method::Flow => {
                let mut flow = Flow::with_solver(
                    self.solver,
                    params,
                    PidController::new(self.rtol, self.atol),
                    None,
                );
                flow.apply_jacobian_settings(&self.jacobian(), "train")?;
                Box::new(flow)
            }
            Method::Gd => Box::new(GradientDescent::new(self.lr, params)),
            Method::Momentum => {
                Box::new(Momentum::new(self.lr, self.momentum.unwrap_or(0.9), params))
            }
            Method::Sgd => Box::new(Sgd::new(
                self.lr,
                self.batch_size.unwrap_or(1),
                self.momentum.unwrap_or(0.0),
                params,
                rng,
            )),
            Method::Adam => Box::new(Adam::new(
                self.lr,
                self.beta1,
                self.beta2,
                self.eps,
                self.batch_size,
                params,
                rng,
            )),
        })
    }

    /// Fill method-dependent defaults (momentum 0.9 for `momentum`, 0 for `sgd`).
    pub fn resolve(&mut self) {
        if self.momentum.is_none() {
            self.momentum = match self.method {
                Method::Momentum => Some(0.9),
                Method::Sgd => Some(0.0),
                _ => None,
            };
        }
    }

    /// Run options (recording times etc.).
    pub fn run_options(&self) -> Result<RunOptions> {
        self.validate()?;
        let step_dt = if self.method == Method::Flow {
            None
        } else {
            Some(self.lr)
        };
        let hint = match self.method {
            Method::Flow => "Gradient flow itself blew up: the loss is unbounded along the flow from this initialisation (check the data scale, output_scale and init_scale).".to_string(),
            _ => format!(
                "Try a smaller learning rate (train.lr = {} now; full-batch GD on MSE is stable only for lr < 2/λ_max of the loss Hessian), or method = \"flow\".",
                self.lr
            ),
        };
        Ok(RunOptions {
            t_max: self.t_max,
            record_at: self.record.times(self.t_max, step_dt)?,
            target_loss: self.target_loss,
            max_steps: self.max_steps,
            divergence_hint: hint,
        })
    }
}
