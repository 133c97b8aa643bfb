//! Convenience driver: integrate over `[t0, t1]` and save at given times.

use super::{Integrator, PidController, RkStepper, Stats, Tableau, VectorField};
use crate::{Error, Result};

/// States at the requested save times, and the work it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// The requested save times, verbatim (same length and values as `save_at`).
    pub ts: Vec<f64>,
    /// `ys[i]` is the state at `ts[i]`.
    pub ys: Vec<Vec<f64>>,
    /// Work counters of the whole integration.
    pub stats: Stats,
}

/// Integrate `dy/dt = f(t, y)` from `(t0, y0)` to `t1` with `tableau` under `controller`, and
/// return `y` at every time of `save_at`.
///
/// The initial step is Hairer's heuristic ([`PidController::initial_step`]). Steps are
/// adaptive and independent of `save_at` (diffrax's `SaveAt(ts=...)`): each save time is
/// evaluated by the stepper's dense output ([`RkStepper::interpolate`]) inside the step that
/// contains it, exactly at that time; times equal to `t0` give `y0` and times equal to `t1`
/// give the final step's endpoint, bit for bit. Integration always runs to `t1`.
///
/// `save_at` must be sorted (non-decreasing) and inside `[t0, t1]`; repeated times are
/// allowed. Forward only: `t1 ≥ t0`.
///
/// # Errors
/// * [`Error::Config`] for `t1 < t0` (key `t1`), non-finite `t0`/`t1`, or `save_at` unsorted
///   or outside `[t0, t1]` (key `save_at`), or an invalid controller;
/// * [`Error::Shape`] if `y0.len() != field.dim()`;
/// * [`Error::Numerical`] if more than `max_steps` step attempts (accepted + rejected) would
///   be needed — checked before each accepted step, so the count may exceed `max_steps` by
///   the rejections of one step — or on step-size underflow / non-finite state (see
///   [`RkStepper::step`]);
/// * any error returned by the vector field, unchanged.
#[allow(clippy::too_many_arguments)]
pub fn solve(
    field: &mut dyn VectorField,
    tableau: &'static Tableau,
    controller: PidController,
    t0: f64,
    t1: f64,
    y0: &[f64],
    save_at: &[f64],
    max_steps: u64,
) -> Result<Solution> {
    let mut stepper = RkStepper::new(tableau, controller, y0.len());
    solve_with(&mut stepper, field, t0, t1, y0, save_at, max_steps)
}

fn check_interval(t0: f64, t1: f64, save_at: &[f64]) -> Result<()> {
    if !(t0.is_finite() && t1.is_finite()) {
        return Err(Error::config(
            "t1",
            format!("integration interval must be finite, got [{t0}, {t1}]"),
        ));
    }
    if t1 < t0 {
        return Err(Error::config(
            "t1",
            format!(
                "the ODE integrator runs forward in time only: t1 = {t1} < t0 = {t0} \
                 (substitute s = -t and negate the vector field to go backwards)"
            ),
        ));
    }
    if let Some(i) = save_at.iter().position(|&s| !(s >= t0 && s <= t1)) {
        return Err(Error::config(
            "save_at",
            format!(
                "save time save_at[{i}] = {} is outside [t0, t1] = [{t0}, {t1}]",
                save_at[i]
            ),
        ));
    }
    if let Some(i) = save_at.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::config(
            "save_at",
            format!(
                "save times must be sorted: save_at[{}] = {} > save_at[{}] = {}",
                i,
                save_at[i],
                i + 1,
                save_at[i + 1]
            ),
        ));
    }
    Ok(())
}

/// [`solve`] with any [`Integrator`] (e.g. a [`super::RosenbrockStepper`] for stiff
/// problems, or one made by [`super::Solver::integrator`]); same contract and errors. The
/// integrator is (re)initialised at `(t0, y0)`.
pub fn solve_with(
    stepper: &mut dyn Integrator,
    field: &mut dyn VectorField,
    t0: f64,
    t1: f64,
    y0: &[f64],
    save_at: &[f64],
    max_steps: u64,
) -> Result<Solution> {
    check_interval(t0, t1, save_at)?;
    let dim = y0.len();
    stepper.init(field, t0, y0, None)?;

    let mut ys = Vec::with_capacity(save_at.len());
    let mut next = 0;
    while next < save_at.len() && save_at[next] <= t0 {
        ys.push(y0.to_vec());
        next += 1;
    }
    while stepper.t() < t1 {
        let stats = stepper.stats();
        if stats.num_steps >= max_steps {
            return Err(Error::Numerical(format!(
                "ODE solve exceeded max_steps = {max_steps} at t = {:.6e} of [{t0:e}, {t1:e}] \
                 ({} accepted, {} rejected steps, {} method); raise max_steps or loosen rtol \
                 (a very small step size may also mean a stiff problem: try solver = \"ros34pw2\")",
                stepper.t(),
                stats.num_accepted,
                stats.num_rejected,
                stepper.method_name(),
            )));
        }
        let step = stepper.step(field, t1)?;
        while next < save_at.len() && save_at[next] <= step.t1 {
            let mut y = vec![0.0; dim];
            stepper.interpolate(save_at[next], &mut y);
            ys.push(y);
            next += 1;
        }
    }
    debug_assert_eq!(ys.len(), save_at.len());
    Ok(Solution {
        ts: save_at.to_vec(),
        ys,
        stats: stepper.stats(),
    })
}
