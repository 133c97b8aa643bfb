//! The generic embedded Runge–Kutta engine: one accepted step per call.

use super::{DenseOutput, PidController, PidState, Stats, StepInterval, Tableau, VectorField};
use crate::{Error, Result};

/// Consecutive rejected attempts after which [`RkStepper::step`] gives up with
/// [`Error::Numerical`], whatever the step size (a guard against endless retries when the
/// vector field is NaN everywhere near `t`, e.g. at `t = 0` where the `1e-14·|t|` floor
/// vanishes). A healthy step needs a handful at most: every rejection shrinks `dt` by at
/// least `safety`, usually by `factormin`.
pub const MAX_CONSECUTIVE_REJECTIONS: u32 = 100;

/// Largest stage count supported by [`DenseOutput::Polynomial`] (stack buffer in
/// `interpolate`).
const MAX_POLY_STAGES: usize = 16;

/// Adaptive explicit Runge–Kutta stepper: runs any [`Tableau`] under a [`PidController`],
/// one accepted step per [`step`](RkStepper::step) call; the caller owns the loop (argmin's
/// `Solver::next_iter` pattern; see [`super::solve`] for a ready-made loop).
///
/// All buffers (`s` stages, state, candidate, error, previous step) are allocated in
/// [`new`](RkStepper::new); `step` and `interpolate` do not allocate (except to format an
/// error message).
///
/// Lifecycle: `new` → [`init`](RkStepper::init) → `step`… with
/// [`interpolate`](RkStepper::interpolate) inside the last accepted step and
/// [`reset_state`](RkStepper::reset_state) after external changes to the state.
#[derive(Debug, Clone)]
pub struct RkStepper {
    tableau: &'static Tableau,
    controller: PidController,
    dim: usize,
    initialized: bool,
    // Current point and its derivative f(t, y).
    t: f64,
    y: Vec<f64>,
    f: Vec<f64>,
    dt_next: f64,
    pid: PidState,
    stats: Stats,
    // Last accepted step [t_prev, t] (dense output): y_prev and the stages in `k`.
    t_prev: f64,
    y_prev: Vec<f64>,
    dense_valid: bool,
    // Scratch: stages k_0..k_{s−1} (flat, stage-major), stage input, candidate y1,
    // f(t1, y1) for non-FSAL tableaux, error estimate.
    k: Vec<f64>,
    y_stage: Vec<f64>,
    y_new: Vec<f64>,
    f_new: Vec<f64>,
    err: Vec<f64>,
}

impl RkStepper {
    /// A stepper for `dim`-dimensional states; allocates every buffer.
    ///
    /// # Panics
    /// If `tableau` violates the invariants listed on [`Tableau`] (a programming error in
    /// static data).
    pub fn new(tableau: &'static Tableau, controller: PidController, dim: usize) -> Self {
        check_tableau(tableau);
        let s = tableau.stages();
        RkStepper {
            tableau,
            controller,
            dim,
            initialized: false,
            t: 0.0,
            y: vec![0.0; dim],
            f: vec![0.0; dim],
            dt_next: 0.0,
            pid: PidState::default(),
            stats: Stats::default(),
            t_prev: 0.0,
            y_prev: vec![0.0; dim],
            dense_valid: false,
            k: vec![0.0; s * dim],
            y_stage: vec![0.0; dim],
            y_new: vec![0.0; dim],
            f_new: vec![0.0; dim],
            err: vec![0.0; dim],
        }
    }

    /// Start at `(t0, y0)`: validates the controller ([`Error::Config`]) and the dimensions
    /// ([`Error::Shape`]), evaluates `f(t0, y0)` (must be finite, else
    /// [`Error::Numerical`]) and sets the first step size to `dt0`, or, if `None`, to
    /// Hairer's heuristic ([`PidController::initial_step`], one more evaluation); clamped
    /// to `[dtmin, dtmax]`. Resets the statistics and the controller history.
    pub fn init(
        &mut self,
        field: &mut dyn VectorField,
        t0: f64,
        y0: &[f64],
        dt0: Option<f64>,
    ) -> Result<()> {
        self.controller.validate()?;
        self.stats = Stats::default();
        self.set_state(field, t0, y0)?;
        let (s1, order) = (self.dim, self.error_order());
        let dt = first_step(&self.controller, dt0, || {
            self.stats.num_evals += 1;
            self.controller.initial_step(
                field,
                t0,
                &self.y,
                &self.f,
                order,
                &mut self.y_stage,
                &mut self.k[s1..2 * s1],
            )
        })?;
        self.dt_next = dt;
        self.initialized = true;
        Ok(())
    }

    /// Replace the state by `(t, y)` (e.g. after projecting `y` onto a constraint set):
    /// re-evaluates `f(t, y)` (the FSAL stage), invalidates dense output and resets the
    /// controller history; keeps [`dt_next`](RkStepper::dt_next) and the statistics. Before
    /// [`init`](RkStepper::init), behaves as `init(field, t, y, None)`.
    pub fn reset_state(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        if !self.initialized {
            return self.init(field, t, y, None);
        }
        self.set_state(field, t, y)
    }

    fn set_state(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        check_start(field, self.dim, t, y)?;
        self.dense_valid = false;
        self.pid = PidState::default();
        self.t = t;
        evaluate_start(field, t, y, &mut self.y, &mut self.f, &mut self.stats)
    }

    /// Advance by exactly one **accepted** step, retrying rejected attempts internally, and
    /// return the accepted interval `[t0, t1]`. Never steps past `t_max`: when the proposed
    /// step reaches `t_max` (or falls short of it by less than 1%, and `dtmax` allows), the
    /// step is set to end exactly on `t_max` (`t1 == t_max` bit for bit); the step size
    /// proposed afterwards is not shrunk by this truncation. (To absorb rounding drift, that
    /// landing step may exceed `dtmax` by a relative `1e-6`.)
    ///
    /// One attempt of size `h` evaluates the stages of the [`Tableau`], `y1`, the error
    /// estimate and `f(t1, y1)` (free for FSAL tableaux), and asks the
    /// [`PidController`] to accept or reject. A non-finite `y1`, error estimate or
    /// `f(t1, y1)` is a rejection with factor `factormin`.
    ///
    /// # Errors
    /// * whatever the vector field returns (unchanged);
    /// * [`Error::Numerical`] if called before `init`, if `t_max ≤ t` (forward only), or on
    ///   step-size underflow: a rejected step whose next size would fall below the floor
    ///   (`dtmin` after one retry at `dtmin`; else `1e-14·|t|`), or
    ///   [`MAX_CONSECUTIVE_REJECTIONS`] rejections in a row. The message names `t` and `dt`
    ///   and whether the state/error became non-finite.
    ///
    /// After an error the state `(t, y)` is the last accepted one; dense output is invalid
    /// until the next accepted step.
    pub fn step(&mut self, field: &mut dyn VectorField, t_max: f64) -> Result<StepInterval> {
        if !self.initialized {
            return Err(Error::Numerical(
                "RkStepper::step called before RkStepper::init".into(),
            ));
        }
        if t_max.is_nan() || t_max <= self.t {
            return Err(Error::Numerical(format!(
                "RkStepper::step integrates forward only: t_max = {t_max:e} must exceed t = {:e}",
                self.t
            )));
        }
        let order = self.error_order();
        let mut rejections = 0u32;
        loop {
            let dt = self.dt_next;
            let attempt = self.controller.next_attempt(self.t, dt, t_max)?;
            self.dense_valid = false;
            let scaled_error = self.attempt(field, attempt.h, attempt.t_new)?;
            self.stats.num_steps += 1;
            let decision = self.controller.adapt(&mut self.pid, scaled_error, order);
            if decision.accept {
                self.stats.num_accepted += 1;
                self.accept(attempt.t_new);
                self.dt_next = self
                    .controller
                    .after_acceptance(&attempt, dt, decision.factor);
                return Ok(StepInterval {
                    t0: self.t_prev,
                    t1: self.t,
                });
            }
            self.stats.num_rejected += 1;
            rejections += 1;
            self.dt_next = self.controller.after_rejection(
                self.t,
                dt,
                attempt.h,
                decision.factor,
                scaled_error,
                rejections,
                format_args!("{} tableau", self.tableau.name),
            )?;
        }
    }

    /// One attempt of size `h = t_new − t`: fills the stages, `y_new`, `err` (and `f_new`
    /// for non-FSAL tableaux when the error is acceptable); returns the scaled error, NaN if
    /// anything is non-finite.
    fn attempt(&mut self, field: &mut dyn VectorField, h: f64, t_new: f64) -> Result<f64> {
        let tab = self.tableau;
        let s = tab.stages();
        let n = self.dim;
        self.k[..n].copy_from_slice(&self.f);
        for i in 1..s {
            // For FSAL tableaux the last stage input is y1 itself: build it in place.
            let input = if tab.fsal && i == s - 1 {
                &mut self.y_new
            } else {
                &mut self.y_stage
            };
            input.copy_from_slice(&self.y);
            for (j, &a) in tab.a[i].iter().enumerate() {
                if a != 0.0 {
                    axpy(h * a, &self.k[j * n..(j + 1) * n], input);
                }
            }
            let ti = if tab.c[i] == 1.0 {
                t_new
            } else {
                self.t + tab.c[i] * h
            };
            self.stats.num_evals += 1;
            field.eval(ti, input, &mut self.k[i * n..(i + 1) * n])?;
        }
        if !tab.fsal {
            self.y_new.copy_from_slice(&self.y);
            for (j, &b) in tab.b.iter().enumerate() {
                if b != 0.0 {
                    axpy(h * b, &self.k[j * n..(j + 1) * n], &mut self.y_new);
                }
            }
        }
        self.err.fill(0.0);
        for (j, &e) in tab.b_err.iter().enumerate() {
            if e != 0.0 {
                axpy(h * e, &self.k[j * n..(j + 1) * n], &mut self.err);
            }
        }
        let scaled = self
            .controller
            .scaled_error(&self.err, &self.y, &self.y_new);
        if scaled.is_nan() || scaled > 1.0 {
            return Ok(scaled); // rejected (or NaN): f(t1, y1) not needed
        }
        let f1 = if tab.fsal {
            &self.k[(s - 1) * n..]
        } else {
            self.stats.num_evals += 1;
            field.eval(t_new, &self.y_new, &mut self.f_new)?;
            &self.f_new[..]
        };
        Ok(if f1.iter().all(|v| v.is_finite()) {
            scaled
        } else {
            f64::NAN
        })
    }

    /// Make the attempted step current: `(t_prev, y_prev) ← (t, y)`, `(t, y, f) ← (t1, y1, f1)`.
    fn accept(&mut self, t_new: f64) {
        self.t_prev = self.t;
        self.t = t_new;
        std::mem::swap(&mut self.y_prev, &mut self.y);
        std::mem::swap(&mut self.y, &mut self.y_new);
        if self.tableau.fsal {
            let s = self.tableau.stages();
            self.f.copy_from_slice(&self.k[(s - 1) * self.dim..]);
        } else {
            std::mem::swap(&mut self.f, &mut self.f_new);
        }
        self.dense_valid = true;
    }

    /// Dense output at `t` inside the last accepted step `[t0, t1]`, written into `out`, by
    /// the tableau's [`DenseOutput`]: DOPRI5's 4th-order continuous extension, Tsitouras'
    /// 4th-order interpolant for TSIT5, the cubic Hermite interpolant of `(y0, f0, y1, f1)`
    /// (3rd order) for BOSH3 and HEUN_EULER. Exact (bitwise) at `t0` and `t1`.
    /// Allocation-free.
    ///
    /// # Panics
    /// If no step has been accepted since the last `init`/`reset_state` (or the last call to
    /// `step` failed), if `out.len() != dim`, or if `t` lies outside `[t0, t1]` by more than
    /// 64 ulp of `max(|t0|, |t1|)` (NaN included).
    pub fn interpolate(&self, t: f64, out: &mut [f64]) {
        let Some((h, th)) = super::dense::locate(
            "RkStepper",
            self.dense_valid,
            self.t_prev,
            self.t,
            &self.y_prev,
            &self.y,
            t,
            out,
        ) else {
            return;
        };
        let n = self.dim;
        let k = |j: usize| &self.k[j * n..(j + 1) * n];
        match self.tableau.dense {
            DenseOutput::Polynomial(coef) => {
                // w_j = h · b_j(θ), b_j(θ) = θ · Σ_m coef[j][m] θ^m (Horner).
                let mut w = [0.0; MAX_POLY_STAGES];
                for (wj, cj) in w.iter_mut().zip(coef) {
                    *wj = h * th * cj.iter().rev().fold(0.0, |acc, &c| acc * th + c);
                }
                out.copy_from_slice(&self.y_prev);
                for (j, &wj) in w[..coef.len()].iter().enumerate() {
                    if wj != 0.0 {
                        axpy(wj, k(j), out);
                    }
                }
            }
            DenseOutput::Hermite | DenseOutput::HermiteQuartic(_) => {
                let d = match self.tableau.dense {
                    DenseOutput::HermiteQuartic(d) => d,
                    _ => &[],
                };
                // the quartic variant's correction (1 − θ) h Σ_j d_j k_j,i
                let correction = (!d.is_empty()).then_some(|i: usize| {
                    let corr: f64 = d
                        .iter()
                        .enumerate()
                        .filter(|(_, &dj)| dj != 0.0)
                        .map(|(j, &dj)| dj * self.k[j * n + i])
                        .sum();
                    (1.0 - th) * h * corr
                });
                super::dense::hermite(&self.y_prev, &self.y, k(0), &self.f, h, th, correction, out);
            }
        }
    }

    /// Current time.
    pub fn t(&self) -> f64 {
        self.t
    }
    /// Current state `y(t)`.
    pub fn y(&self) -> &[f64] {
        &self.y
    }
    /// `dy/dt = f(t, y)` at the current point (the FSAL stage; reused by the next step).
    pub fn dy(&self) -> &[f64] {
        &self.f
    }
    /// Work counters since the last [`init`](RkStepper::init).
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// Size of the next attempted step (before truncation at `t_max`).
    pub fn dt_next(&self) -> f64 {
        self.dt_next
    }
    /// Start of the last accepted step, if dense output is valid (its end is
    /// [`t`](RkStepper::t)).
    pub fn last_step(&self) -> Option<StepInterval> {
        self.dense_valid.then_some(StepInterval {
            t0: self.t_prev,
            t1: self.t,
        })
    }
    /// The method.
    pub fn tableau(&self) -> &'static Tableau {
        self.tableau
    }
    /// The step-size controller.
    pub fn controller(&self) -> &PidController {
        &self.controller
    }
    /// State dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Exponent denominator `k` of the controller: the order of the local error estimate.
    fn error_order(&self) -> f64 {
        f64::from(self.tableau.order)
    }
}

/// `y += alpha · x`.
#[inline]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[track_caller]
fn check_tableau(t: &Tableau) {
    let s = t.stages();
    let name = t.name;
    assert!(s >= 2, "tableau {name}: needs at least 2 stages");
    assert!(t.order >= 1, "tableau {name}: order must be ≥ 1");
    assert_eq!(t.c.len(), s, "tableau {name}: c has wrong length");
    assert_eq!(t.b_err.len(), s, "tableau {name}: b_err has wrong length");
    assert_eq!(t.a.len(), s, "tableau {name}: a has wrong number of rows");
    assert_eq!(t.c[0], 0.0, "tableau {name}: c[0] must be 0");
    for (i, row) in t.a.iter().enumerate() {
        assert_eq!(row.len(), i, "tableau {name}: a[{i}] must have {i} entries");
    }
    match t.dense {
        DenseOutput::Hermite => {}
        DenseOutput::HermiteQuartic(d) => {
            assert_eq!(d.len(), s, "tableau {name}: dense has wrong length");
            assert!(
                t.fsal,
                "tableau {name}: HermiteQuartic dense output needs FSAL"
            );
        }
        DenseOutput::Polynomial(p) => {
            assert_eq!(p.len(), s, "tableau {name}: dense has wrong length");
            assert!(s <= MAX_POLY_STAGES, "tableau {name}: too many stages");
            assert!(t.fsal, "tableau {name}: Polynomial dense output needs FSAL");
        }
    }
    if t.fsal {
        assert!(
            t.c[s - 1] == 1.0 && t.b[s - 1] == 0.0 && t.a[s - 1] == &t.b[..s - 1],
            "tableau {name}: FSAL requires c[s-1] = 1, b[s-1] = 0 and a[s-1] = b[..s-1]"
        );
    }
}

/// Check a start point `(t, y)` of an ODE stepper of dimension `dim`: `y` and `field` have
/// that dimension ([`Error::Shape`]), `t` and `y` are finite ([`Error::Numerical`]).
pub(super) fn check_start(field: &dyn VectorField, dim: usize, t: f64, y: &[f64]) -> Result<()> {
    if y.len() != dim || field.dim() != dim {
        return Err(Error::Shape(format!(
            "ODE stepper built for dim {} got a state of length {} and a vector field of dim {}",
            dim,
            y.len(),
            field.dim()
        )));
    }
    if !t.is_finite() {
        return Err(Error::Numerical(format!(
            "ODE start time must be finite, got {t}"
        )));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "ODE state at t = {t:.6e} is non-finite: y[{i}] = {}",
            y[i]
        )));
    }
    Ok(())
}

/// Copy the start state `y` into `y_state` and evaluate `f(t, y)` into `f` (one evaluation,
/// counted in `stats`); a non-finite derivative is an [`Error::Numerical`].
pub(super) fn evaluate_start(
    field: &mut dyn VectorField,
    t: f64,
    y: &[f64],
    y_state: &mut [f64],
    f: &mut [f64],
    stats: &mut Stats,
) -> Result<()> {
    y_state.copy_from_slice(y);
    stats.num_evals += 1;
    field.eval(t, y_state, f)?;
    if let Some(i) = f.iter().position(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "vector field is non-finite at the start point t = {t:.6e}: dy[{i}] = {}",
            f[i]
        )));
    }
    Ok(())
}

/// The first step size: `dt0` if given (finite and > 0, else [`Error::Config`] at `dt0`),
/// else `heuristic()` (e.g. [`PidController::initial_step`]); clamped to `[dtmin, dtmax]`.
pub(super) fn first_step(
    controller: &PidController,
    dt0: Option<f64>,
    heuristic: impl FnOnce() -> Result<f64>,
) -> Result<f64> {
    let dt = match dt0 {
        Some(dt) if dt.is_finite() && dt > 0.0 => dt,
        Some(dt) => {
            return Err(Error::config(
                "dt0",
                format!("initial step must be finite and > 0, got {dt}"),
            ))
        }
        None => heuristic()?,
    };
    Ok(controller.clamp_dt(dt))
}
