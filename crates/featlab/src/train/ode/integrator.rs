//! One interface over the explicit ([`RkStepper`]) and linearly implicit
//! ([`RosenbrockStepper`]) steppers, and [`Solver`], the config-level name of a method.

use super::{
    PidController, RkStepper, RosenbrockStepper, RosenbrockTableau, Stats, StepInterval, Tableau,
    VectorField,
};
use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An adaptive one-step integrator driven by the caller's loop: `init` → `step`… with
/// `interpolate` inside the last accepted step (the contract of [`RkStepper`], which
/// [`RosenbrockStepper`] follows too).
pub trait Integrator: Send {
    /// Start at `(t0, y0)`; `dt0 = None` picks the first step by Hairer's heuristic.
    fn init(
        &mut self,
        field: &mut dyn VectorField,
        t0: f64,
        y0: &[f64],
        dt0: Option<f64>,
    ) -> Result<()>;
    /// One accepted step, never past `t_max`.
    fn step(&mut self, field: &mut dyn VectorField, t_max: f64) -> Result<StepInterval>;
    /// Dense output at `t` in the last accepted step.
    fn interpolate(&self, t: f64, out: &mut [f64]);
    /// Current time.
    fn t(&self) -> f64;
    /// Current state.
    fn y(&self) -> &[f64];
    /// `f(t, y)` at the current point.
    fn dy(&self) -> &[f64];
    /// Work counters since `init`.
    fn stats(&self) -> Stats;
    /// Method name (as in [`Solver::name`]).
    fn method_name(&self) -> &'static str;
    /// Re-evaluate the Jacobian at least every `age` accepted steps (implicit methods,
    /// [`RosenbrockStepper::set_jacobian_max_age`]; explicit methods have none: the
    /// default is a no-op).
    fn set_jacobian_max_age(&mut self, age: u64) {
        let _ = age;
    }
    /// Leave coordinates with h·Σ_i|A_ij| < `eta` out of the Jacobian (implicit methods,
    /// [`RosenbrockStepper::set_explicit_below`]; explicit methods: the default is a no-op).
    fn set_explicit_below(&mut self, eta: f64) -> Result<()> {
        let _ = eta;
        Ok(())
    }
    /// Leave eigenpairs with h·|λ| < `theta` out of W⁻¹ (implicit methods with symmetric
    /// Jacobians, [`RosenbrockStepper::set_spectral_below`]; explicit methods: no-op).
    fn set_spectral_below(&mut self, theta: f64) -> Result<()> {
        let _ = theta;
        Ok(())
    }
}

/// [`Integrator`] for a stepper whose inherent methods have the trait's signatures; the
/// optional list names further trait methods the stepper has inherently (the others keep
/// the trait's defaults).
macro_rules! inherent_integrator {
    ($stepper:ident $(, $extra:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?)*) => {
        impl Integrator for $stepper {
            fn init(
                &mut self,
                field: &mut dyn VectorField,
                t0: f64,
                y0: &[f64],
                dt0: Option<f64>,
            ) -> Result<()> {
                $stepper::init(self, field, t0, y0, dt0)
            }
            fn step(&mut self, field: &mut dyn VectorField, t_max: f64) -> Result<StepInterval> {
                $stepper::step(self, field, t_max)
            }
            fn interpolate(&self, t: f64, out: &mut [f64]) {
                $stepper::interpolate(self, t, out)
            }
            fn t(&self) -> f64 {
                $stepper::t(self)
            }
            fn y(&self) -> &[f64] {
                $stepper::y(self)
            }
            fn dy(&self) -> &[f64] {
                $stepper::dy(self)
            }
            fn stats(&self) -> Stats {
                $stepper::stats(self)
            }
            fn method_name(&self) -> &'static str {
                self.tableau().name
            }
            $(
                fn $extra(&mut self, $($arg: $ty),*) $(-> $ret)? {
                    $stepper::$extra(self, $($arg),*)
                }
            )*
        }
    };
}

/// The implicit solvers' Jacobian options as a config section gives them
/// (`jacobian_max_age`, `jacobian_explicit_below`, `jacobian_spectral_below`; explicit methods
/// ignore them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JacobianSettings {
    /// Re-evaluate the Jacobian at least every this many accepted steps (≥ 1).
    pub max_age: Option<u64>,
    /// Leave coordinates with h·Σ_i|A_ij| below this out of the Jacobian (in [0, 0.5)).
    pub explicit_below: Option<f64>,
    /// Leave eigenpairs with h·|λ| below this out of W⁻¹ (symmetric Jacobians; in [0, 0.5)).
    pub spectral_below: Option<f64>,
}

impl JacobianSettings {
    /// Check the values; a bad one is a config error naming `section.jacobian_max_age` or
    /// `section.jacobian_explicit_below`.
    pub fn check(&self, section: &str) -> Result<()> {
        if self.max_age == Some(0) {
            return Err(Error::config(
                format!("{section}.jacobian_max_age"),
                "must be ≥ 1",
            ));
        }
        for (key, v) in [
            ("jacobian_explicit_below", self.explicit_below),
            ("jacobian_spectral_below", self.spectral_below),
        ] {
            if let Some(eta) = v {
                if !RosenbrockStepper::explicit_below_ok(eta) {
                    return Err(Error::config(
                        format!("{section}.{key}"),
                        RosenbrockStepper::explicit_below_error(eta),
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`JacobianSettings::check`] them, then set them on `st`.
    pub fn apply(&self, st: &mut dyn Integrator, section: &str) -> Result<()> {
        self.check(section)?;
        if let Some(age) = self.max_age {
            st.set_jacobian_max_age(age);
        }
        if let Some(eta) = self.explicit_below {
            st.set_explicit_below(eta)?;
        }
        if let Some(theta) = self.spectral_below {
            st.set_spectral_below(theta)?;
        }
        Ok(())
    }
}

inherent_integrator!(RkStepper);
inherent_integrator!(
    RosenbrockStepper,
    set_jacobian_max_age(age: u64),
    set_explicit_below(eta: f64) -> Result<()>,
    set_spectral_below(theta: f64) -> Result<()>
);

/// An ODE method by name: an explicit embedded Runge–Kutta [`Tableau`] (`"dopri5"`,
/// `"tsit5"`, `"bosh3"`, `"heun_euler"`) or a Rosenbrock–W method (`"ros34pw2"`, for stiff
/// problems). Serialised as its lowercase name (config key `solver`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solver {
    /// Explicit adaptive Runge–Kutta ([`RkStepper`]).
    Explicit(&'static Tableau),
    /// Linearly implicit Rosenbrock–W ([`RosenbrockStepper`]) with the Jacobian re-evaluated
    /// at least every `jacobian_max_age` accepted steps.
    Rosenbrock(&'static RosenbrockTableau),
}

impl Default for Solver {
    fn default() -> Self {
        Solver::Explicit(&super::DOPRI5)
    }
}

impl Solver {
    /// Every accepted name.
    pub const NAMES: [&'static str; 5] = ["dopri5", "tsit5", "bosh3", "heun_euler", "ros34pw2"];

    /// The method called `name` (case-insensitive), or a config error (key `key`) listing the
    /// accepted names.
    pub fn from_name(name: &str, key: &str) -> Result<Solver> {
        if let Some(t) = Tableau::from_name(name) {
            return Ok(Solver::Explicit(t));
        }
        if let Some(t) = RosenbrockTableau::from_name(name) {
            return Ok(Solver::Rosenbrock(t));
        }
        Err(crate::Error::config(
            key,
            format!(
                "unknown ODE solver {name:?}; expected one of {}",
                Self::NAMES.join(", ")
            ),
        ))
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Explicit(t) => t.name,
            Solver::Rosenbrock(t) => t.name,
        }
    }

    /// A fresh integrator for `dim`-dimensional states.
    pub fn integrator(&self, controller: PidController, dim: usize) -> Box<dyn Integrator> {
        match self {
            Solver::Explicit(t) => Box::new(RkStepper::new(t, controller, dim)),
            Solver::Rosenbrock(t) => Box::new(RosenbrockStepper::new(t, controller, dim)),
        }
    }
}

impl Serialize for Solver {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Solver {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Solver::from_name(&name, "solver").map_err(serde::de::Error::custom)
    }
}
