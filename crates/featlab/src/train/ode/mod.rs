//! Adaptive explicit Runge–Kutta integration of `dy/dt = f(t, y)`, built for gradient flow
//! `dθ/dt = −∇L(θ)` from small initialisation, whose long plateaus an adaptive step crosses
//! in few steps.
//!
//! Three independent pieces, combined by the caller (as in diffrax's
//! `diffeqsolve(terms, solver, ..., saveat, stepsize_controller)`):
//!
//! * **method** — a [`Tableau`] (static Butcher data with an embedded error estimate):
//!   [`DOPRI5`], [`TSIT5`], [`BOSH3`], [`HEUN_EULER`], all run by one generic engine; or,
//!   for stiff problems, the linearly implicit Rosenbrock–W method [`ROS34PW2`]
//!   ([`RosenbrockStepper`]); [`Solver`] names either kind (config key `solver`) and makes
//!   an [`Integrator`];
//! * **step-size controller** — a [`PidController`] (diffrax's `PIDController` fields and
//!   defaults; Söderlind 2002/2003);
//! * **save schedule** — the `save_at` times of [`solve`], served by dense output, never by
//!   "nearest step".
//!
//! [`RkStepper`] does exactly one accepted step per call and owns every buffer (no allocation
//! in [`RkStepper::step`]); the caller owns the loop, as with argmin's `Solver::next_iter`.
//! [`solve`] is the convenience driver for theory modules.
//!
//! Integration is **forward in time only** (`t1 ≥ t0`); backwards requests return an error.
//!
//! # Example
//! ```
//! use featlab::train::ode::{from_fn, solve, PidController, DOPRI5};
//! // y' = -y, y(0) = 1  ->  y(t) = e^{-t}
//! let mut field = from_fn(1, |_t, y: &[f64], dy: &mut [f64]| {
//!     dy[0] = -y[0];
//!     Ok(())
//! });
//! let sol = solve(&mut field, &DOPRI5, PidController::new(1e-10, 1e-12),
//!                 0.0, 2.0, &[1.0], &[0.5, 2.0], 10_000).unwrap();
//! assert_eq!(sol.ts, vec![0.5, 2.0]);
//! assert!((sol.ys[1][0] - (-2.0f64).exp()).abs() < 1e-9);
//! ```
//!
//! # References
//! * J. R. Dormand, P. J. Prince, *A family of embedded Runge–Kutta formulae*, J. Comput.
//!   Appl. Math. 6 (1980) 19–26.
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*,
//!   2nd ed., Springer 1993, §II.4 (step-size control, initial step) and §II.6 (dense output).
//! * Ch. Tsitouras, *Runge–Kutta pairs of order 5(4) satisfying only the first column
//!   simplifying assumption*, Comput. Math. Appl. 62 (2011) 770–775.
//! * P. Bogacki, L. F. Shampine, *A 3(2) pair of Runge–Kutta formulas*, Appl. Math. Lett. 2
//!   (1989) 321–325.
//! * G. Söderlind, *Automatic control and adaptive time-stepping*, Numer. Algorithms 31
//!   (2002) 281–310; *Digital filters in adaptive time-stepping*, ACM TOMS 29 (2003) 1–26.
//! * P. Kidger, diffrax, `diffrax/_step_size_controller/pid.py` (`PIDController`).

mod controller;
mod dense;
mod integrator;
mod rosenbrock;
mod solve;
mod stepper;
mod tableau;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rosenbrock;

pub use controller::{PidController, PidState, StepDecision};
pub use integrator::{Integrator, JacobianSettings, Solver};
pub use rosenbrock::{RosenbrockStepper, RosenbrockTableau, DEFAULT_JACOBIAN_MAX_AGE, ROS34PW2};
pub use solve::{solve, solve_with, Solution};
pub use stepper::{RkStepper, MAX_CONSECUTIVE_REJECTIONS};
pub use tableau::{DenseOutput, Tableau, BOSH3, DOPRI5, HEUN_EULER, TSIT5};

/// The right-hand side of the ODE `dy/dt = f(t, y)` on `R^dim`.
///
/// Implementations write `f(t, y)` into `dy` (both of length [`dim`](VectorField::dim)) and
/// may fail; an `Err` aborts the integration and is returned unchanged by
/// [`RkStepper::step`] / [`solve`]. Returning non-finite values is not an error by itself:
/// the integrator rejects the step, shrinks `dt`, and reports [`crate::Error::Numerical`]
/// if that does not help.
pub trait VectorField {
    /// Dimension of the state `y`.
    fn dim(&self) -> usize;
    /// Write `dy = f(t, y)`.
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]) -> crate::Result<()>;
    /// Write the exact Jacobian `jac[(i, j)] = ∂f_i/∂y_j (t, y)` (`dim × dim`) and return
    /// `Ok(true)`, or return `Ok(false)` (the default) to let implicit methods
    /// ([`RosenbrockStepper`]) use finite differences of [`eval`](VectorField::eval).
    fn jacobian(
        &mut self,
        _t: f64,
        _y: &[f64],
        _jac: faer::MatMut<'_, f64>,
    ) -> crate::Result<bool> {
        Ok(false)
    }
    /// Whether `∂f/∂y` is symmetric (true for gradient flow `f = −∇L`: the Jacobian is
    /// `−∇²L`). Implicit methods then symmetrise their Jacobian and eigendecompose it once,
    /// so that changing the step size costs no refactorisation. Default `false`.
    fn symmetric_jacobian(&self) -> bool {
        false
    }
}

impl<V: VectorField + ?Sized> VectorField for &mut V {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]) -> crate::Result<()> {
        (**self).eval(t, y, dy)
    }
    fn jacobian(&mut self, t: f64, y: &[f64], jac: faer::MatMut<'_, f64>) -> crate::Result<bool> {
        (**self).jacobian(t, y, jac)
    }
    fn symmetric_jacobian(&self) -> bool {
        (**self).symmetric_jacobian()
    }
}

/// A [`VectorField`] made from a closure `f(t, y, dy) -> Result<()>`; build it with
/// [`from_fn`].
pub struct FnField<F> {
    dim: usize,
    f: F,
}

/// Wrap a closure `f(t, y, dy)` writing `dy = f(t, y)` on `R^dim` as a [`VectorField`].
pub fn from_fn<F>(dim: usize, f: F) -> FnField<F>
where
    F: FnMut(f64, &[f64], &mut [f64]) -> crate::Result<()>,
{
    FnField { dim, f }
}

impl<F> VectorField for FnField<F>
where
    F: FnMut(f64, &[f64], &mut [f64]) -> crate::Result<()>,
{
    fn dim(&self) -> usize {
        self.dim
    }
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]) -> crate::Result<()> {
        (self.f)(t, y, dy)
    }
}

/// One accepted step `[t0, t1]` (with `t0 < t1`), as returned by [`RkStepper::step`].
/// [`RkStepper::interpolate`] is valid on exactly this interval until the next step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInterval {
    /// Start of the step.
    pub t0: f64,
    /// End of the step (the stepper's new time).
    pub t1: f64,
}

/// Work counters of an integration (as diffrax's `Solution.stats`).
///
/// Invariant: `num_steps = num_accepted + num_rejected`. `num_evals` counts every call to
/// [`VectorField::eval`], including the one for `f(t0, y0)` and the one made by the
/// initial-step heuristic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Step attempts (accepted + rejected).
    pub num_steps: u64,
    /// Accepted steps.
    pub num_accepted: u64,
    /// Rejected attempts (error estimate above tolerance, or non-finite).
    pub num_rejected: u64,
    /// Vector-field evaluations (for implicit methods including those of finite-difference
    /// Jacobians).
    pub num_evals: u64,
    /// Jacobian evaluations (implicit methods only).
    #[serde(default)]
    pub num_jacobians: u64,
    /// LU factorisations of the iteration matrix (implicit methods only).
    #[serde(default)]
    pub num_factorizations: u64,
    /// Spectral selection of [`RosenbrockStepper`] (symmetric Jacobians,
    /// [`RosenbrockStepper::set_spectral_below`]): eigenpairs used by the stage solves,
    /// summed over attempts; with `num_eigen_total` (the eigenpairs available, summed the
    /// same way) the fraction of the dense W⁻¹ work done. Both 0 (and not written) when off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_eigen_kept: u64,
    /// Eigenpairs available to the stage solves, summed over attempts (see
    /// `num_eigen_kept`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_eigen_total: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
