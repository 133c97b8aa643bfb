//! PID step-size controller (diffrax's `PIDController`: same fields, same defaults, same
//! update formula) and Hairer's initial step-size heuristic.

use super::VectorField;
use crate::{Error, Result};

/// Relative slack by which the step that lands on `t_max` may exceed `dtmax`, so that
/// rounding drift in `t` (e.g. `n` constant steps of `dtmax` towards `t_max = n·dtmax`) does
/// not leave a sliver step of a few ulps.
const DTMAX_SLACK: f64 = 1e-6;

/// One attempted step `[t, t_new]` of size `h = t_new − t` ([`PidController::next_attempt`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    pub t_new: f64,
    pub h: f64,
    /// Whether the proposed step was cut (or stretched) to land on `t_max`.
    pub truncated: bool,
}

/// Adaptive step-size controller: accept/reject a step from its scaled error estimate and
/// propose the next step size by PID control of `log ‖err‖` (Söderlind 2002, 2003), with
/// diffrax's `PIDController` fields, defaults and update (variant "(4)" in diffrax's `pid.py`).
///
/// **Error norm** (RMS, as diffrax and Hairer–Nørsett–Wanner I, eq. (4.11)):
///
/// ```text
/// ‖err‖ = sqrt( (1/n) Σ_i ( err_i / (atol + rtol · max(|y0_i|, |y1_i|)) )² )
/// ```
///
/// A step is accepted iff `‖err‖ ≤ 1` (and finite). With `r_n = 1/‖err_n‖` the scaled
/// inverse errors of the current and the last two *accepted* steps and `k` the error order
/// (`k = tableau.order`, see [`super::Tableau`]):
///
/// ```text
/// h_{n+1} = h_n · clip( safety · r_n^{β1/k} · r_{n−1}^{β2/k} · r_{n−2}^{β3/k}, lo, hi )
/// β1 = pcoeff + icoeff + dcoeff,   β2 = −(pcoeff + 2 dcoeff),   β3 = dcoeff
/// accepted: [lo, hi] = [1, factormax]      (an accepted step never shrinks the next one)
/// rejected: [lo, hi] = [factormin, safety]
/// ```
///
/// The default (`pcoeff = 0, icoeff = 1, dcoeff = 0`) is the classical "I" controller
/// `h · safety · ‖err‖^{−1/k}` of Hairer–Nørsett–Wanner I, eq. (4.13). A non-finite error
/// estimate (NaN/inf state or error) is a rejection with factor `factormin` and leaves the
/// history untouched. Note: diffrax uses `k = order + 1`; we use `k = order`, the order of the
/// local error of the embedded method, as in Hairer's `DOPRI5` (exponent 1/5).
///
/// `dtmax` caps every step. `dtmin` is a floor: a rejected step is retried at `dtmin` once,
/// and a rejection at `dtmin` is a step-size underflow error (unlike diffrax's default
/// `force_dtmin`, which would silently accept an inaccurate step). With `dtmin = None` the
/// floor is `1e-14 · |t|`.
///
/// Deserializing requires `rtol` and `atol`; other fields take the defaults below.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PidController {
    /// Relative tolerance (≥ 0).
    pub rtol: f64,
    /// Absolute tolerance (≥ 0; `rtol + atol > 0`).
    pub atol: f64,
    /// Proportional coefficient (default 0).
    #[serde(default)]
    pub pcoeff: f64,
    /// Integral coefficient (default 1).
    #[serde(default = "default_icoeff")]
    pub icoeff: f64,
    /// Derivative coefficient (default 0).
    #[serde(default)]
    pub dcoeff: f64,
    /// Minimum step size (default `None`: `1e-14 · |t|`); see the type docs.
    #[serde(default)]
    pub dtmin: Option<f64>,
    /// Maximum step size (default `None`: unbounded).
    #[serde(default)]
    pub dtmax: Option<f64>,
    /// Smallest shrink factor after a rejection (default 0.2).
    #[serde(default = "default_factormin")]
    pub factormin: f64,
    /// Largest growth factor after an acceptance (default 10).
    #[serde(default = "default_factormax")]
    pub factormax: f64,
    /// Safety factor (default 0.9).
    #[serde(default = "default_safety")]
    pub safety: f64,
}

fn default_icoeff() -> f64 {
    1.0
}
fn default_factormin() -> f64 {
    0.2
}
fn default_factormax() -> f64 {
    10.0
}
fn default_safety() -> f64 {
    0.9
}

/// Controller memory between steps: scaled inverse errors `1/‖err‖` of the last two accepted
/// steps (both 1 at start and after [`super::RkStepper::reset_state`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidState {
    /// `1/‖err_{n−1}‖`.
    pub prev_inv: f64,
    /// `1/‖err_{n−2}‖`.
    pub prev_prev_inv: f64,
}

impl Default for PidState {
    fn default() -> Self {
        PidState {
            prev_inv: 1.0,
            prev_prev_inv: 1.0,
        }
    }
}

/// Outcome of [`PidController::adapt`]: accept or reject the attempted step, and the factor
/// by which to multiply its size to get the next attempt's (before `dtmin`/`dtmax`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecision {
    /// Whether the attempted step is accepted.
    pub accept: bool,
    /// `h_next / h`.
    pub factor: f64,
}

impl PidController {
    /// Fixed steps of `dt` without error control (tolerances 1e300, `dtmax = dt`: after the
    /// initial step every step is accepted at `dt`), for discontinuous fields such as ReLU
    /// gradients; a non-positive or non-finite `dt` is a config error at `key`.
    pub fn fixed_step(dt: f64, key: &str) -> crate::Result<Self> {
        if !(dt.is_finite() && dt > 0.0) {
            return Err(crate::Error::config(key, format!("must be > 0, got {dt}")));
        }
        Ok(PidController {
            dtmax: Some(dt),
            ..PidController::new(1e300, 1e300)
        })
    }

    /// I controller with diffrax's defaults: `pcoeff = 0, icoeff = 1, dcoeff = 0`,
    /// `factormin = 0.2, factormax = 10, safety = 0.9`, no `dtmin`/`dtmax`.
    pub fn new(rtol: f64, atol: f64) -> Self {
        PidController {
            rtol,
            atol,
            pcoeff: 0.0,
            icoeff: 1.0,
            dcoeff: 0.0,
            dtmin: None,
            dtmax: None,
            factormin: default_factormin(),
            factormax: default_factormax(),
            safety: default_safety(),
        }
    }

    /// PI controller `pcoeff = 0.4, icoeff = 0.3` (so `β1 = 0.7, β2 = −0.4`): the
    /// `h_{n+1} = h_n ‖err_n‖^{−0.7/k} ‖err_{n−1}‖^{0.4/k}` of Hairer & Wanner, *Solving ODEs
    /// II*, §IV.2 (after Gustafsson 1991); smoother step sequences on problems whose error
    /// estimate does not vary smoothly. Other fields as in [`PidController::new`].
    pub fn pi(rtol: f64, atol: f64) -> Self {
        PidController {
            pcoeff: 0.4,
            icoeff: 0.3,
            ..Self::new(rtol, atol)
        }
    }

    /// Check every field; [`Error::Config`] names the offending field (`key` is the field
    /// name, e.g. `rtol`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Err(Error::config(key, msg));
        for (key, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, format!("must be finite and ≥ 0, got {v}"));
            }
        }
        if self.rtol + self.atol <= 0.0 {
            return bad("atol", "rtol and atol cannot both be 0".into());
        }
        for (key, v) in [
            ("pcoeff", self.pcoeff),
            ("icoeff", self.icoeff),
            ("dcoeff", self.dcoeff),
        ] {
            if !v.is_finite() {
                return bad(key, format!("must be finite, got {v}"));
            }
        }
        if self.pcoeff + self.icoeff + self.dcoeff <= 0.0 {
            return bad(
                "icoeff",
                "pcoeff + icoeff + dcoeff must be > 0 (otherwise the step size ignores the error)"
                    .into(),
            );
        }
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return bad("safety", format!("must be in (0, 1], got {}", self.safety));
        }
        if !(self.factormin > 0.0 && self.factormin <= self.safety) {
            return bad(
                "factormin",
                format!(
                    "must be in (0, safety = {}], got {}",
                    self.safety, self.factormin
                ),
            );
        }
        if !(self.factormax >= 1.0 && self.factormax.is_finite()) {
            return bad(
                "factormax",
                format!("must be finite and ≥ 1, got {}", self.factormax),
            );
        }
        for (key, v) in [("dtmin", self.dtmin), ("dtmax", self.dtmax)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return bad(key, format!("must be finite and > 0, got {v}"));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.dtmin, self.dtmax) {
            if lo > hi {
                return bad("dtmin", format!("dtmin = {lo} exceeds dtmax = {hi}"));
            }
        }
        Ok(())
    }

    /// Scaled RMS error norm `sqrt((1/n) Σ_i (err_i / (atol + rtol·max(|y0_i|, |y1_i|)))²)`
    /// (0 for `n = 0`). Returns NaN if any `y1_i` or `err_i` is not finite, so the step is
    /// rejected. Components with zero scale count 0 if their error is 0 and ∞ otherwise.
    ///
    /// # Panics
    /// If the three slices differ in length.
    pub fn scaled_error(&self, err: &[f64], y0: &[f64], y1: &[f64]) -> f64 {
        assert!(
            err.len() == y0.len() && y1.len() == y0.len(),
            "scaled_error: length mismatch"
        );
        if err.is_empty() {
            return 0.0;
        }
        let mut acc = 0.0;
        for ((&e, &a), &b) in err.iter().zip(y0).zip(y1) {
            if !(e.is_finite() && b.is_finite()) {
                return f64::NAN;
            }
            if e != 0.0 {
                let r = e / (self.atol + self.rtol * a.abs().max(b.abs()));
                acc += r * r;
            }
        }
        (acc / err.len() as f64).sqrt()
    }

    /// Accept or reject a step whose scaled error is `scaled_error` (see
    /// [`PidController::scaled_error`]), and give the step-size factor; updates `state` on
    /// acceptance only. `error_order` is `k` in the type-level formula. Non-finite
    /// `scaled_error` → rejection with factor `factormin`.
    pub fn adapt(&self, state: &mut PidState, scaled_error: f64, error_order: f64) -> StepDecision {
        if !scaled_error.is_finite() {
            return StepDecision {
                accept: false,
                factor: self.factormin,
            };
        }
        let accept = scaled_error <= 1.0;
        let inv = 1.0 / scaled_error; // +inf for a zero error: clipped to factormax below
        let beta1 = (self.pcoeff + self.icoeff + self.dcoeff) / error_order;
        let beta2 = -(self.pcoeff + 2.0 * self.dcoeff) / error_order;
        let beta3 = self.dcoeff / error_order;
        let pow = |x: f64, e: f64| if e == 0.0 { 1.0 } else { x.powf(e) };
        let raw = self.safety
            * pow(inv, beta1)
            * pow(state.prev_inv, beta2)
            * pow(state.prev_prev_inv, beta3);
        let (lo, hi) = if accept {
            (1.0, self.factormax)
        } else {
            (self.factormin, self.safety)
        };
        let factor = if raw.is_nan() {
            lo
        } else {
            raw.max(lo).min(hi)
        };
        if accept {
            // As diffrax: a zero/inf error must not drive the next one or two factors.
            let stored = if inv.is_finite() && inv > 0.0 {
                inv
            } else {
                1.0
            };
            state.prev_prev_inv = state.prev_inv;
            state.prev_inv = stored;
        }
        StepDecision { accept, factor }
    }

    /// The next attempt from `t` with proposed size `dt`, never past `t_max`: the attempt
    /// ends exactly on `t_max` (bit for bit) when `dt` reaches it, or falls short of it by
    /// less than 1% and `dtmax` allows (the landing step may exceed `dtmax` by a relative
    /// [`DTMAX_SLACK`], to absorb rounding drift in `t`). Shared by the explicit
    /// ([`super::RkStepper`]) and Rosenbrock ([`super::RosenbrockStepper`]) steppers.
    ///
    /// # Errors
    /// [`Error::Numerical`] on step-size underflow (`t + dt` rounds to `t`).
    pub(crate) fn next_attempt(&self, t: f64, dt: f64, t_max: f64) -> Result<Attempt> {
        let remaining = t_max - t;
        let may_stretch = self
            .dtmax
            .is_none_or(|m| remaining <= m * (1.0 + DTMAX_SLACK));
        let (t_new, truncated) = if dt >= remaining || (1.01 * dt >= remaining && may_stretch) {
            (t_max, true)
        } else {
            (t + dt, false)
        };
        let h = t_new - t;
        if h.is_nan() || h <= 0.0 {
            return Err(Error::Numerical(format!(
                "step size underflow at t = {t:e}: dt = {dt:e} is below the resolution of t"
            )));
        }
        Ok(Attempt {
            t_new,
            h,
            truncated,
        })
    }

    /// The step size after an accepted attempt of size `h` (proposed `dt`) with the
    /// controller's `factor`: `h·factor`, not shrunk below `dt` when the attempt was
    /// truncated to land on `t_max`, clamped to `[dtmin, dtmax]`.
    pub(crate) fn after_acceptance(&self, attempt: &Attempt, dt: f64, factor: f64) -> f64 {
        let mut next = attempt.h * factor;
        if attempt.truncated {
            next = next.max(dt);
        }
        self.clamp_dt(next)
    }

    /// The step size to retry with after the `rejections`-th consecutive rejection of an
    /// attempt of size `h` (proposed `dt`) with the controller's `factor` and scaled error
    /// `scaled` (NaN when the attempt was non-finite): `h·factor`, capped by `dtmax`, and
    /// raised to `dtmin` once before giving up.
    ///
    /// # Errors
    /// [`Error::Numerical`] when the next size falls below the floor (`dtmin`, else
    /// `1e-14·|t|`) or after [`super::MAX_CONSECUTIVE_REJECTIONS`] rejections in a row;
    /// the message names `t`, the step size, `method` and why the attempts failed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn after_rejection(
        &self,
        t: f64,
        dt: f64,
        h: f64,
        factor: f64,
        scaled: f64,
        rejections: u32,
        method: std::fmt::Arguments<'_>,
    ) -> Result<f64> {
        let mut next = h * factor;
        if let Some(m) = self.dtmax {
            next = next.min(m);
        }
        let (floor, floor_name) = match self.dtmin {
            Some(m) => {
                if dt > m {
                    next = next.max(m); // one retry at dtmin before giving up
                }
                (m, "dtmin")
            }
            None => (1e-14 * t.abs(), "1e-14·|t|"),
        };
        if next >= floor && rejections < super::MAX_CONSECUTIVE_REJECTIONS {
            return Ok(next);
        }
        let why = if scaled.is_finite() {
            format!(
                "the scaled error estimate stays above 1 (last: {scaled:.3e}); \
                 the problem may be stiff or singular here"
            )
        } else {
            "the proposed state, error estimate or derivative was non-finite (NaN/inf): \
             the vector field may have left its domain or the solution may blow up"
                .to_string()
        };
        let what = if next < floor {
            format!(
                "step size underflow: dt = {next:.3e} fell below the minimum \
                 {floor:.3e} ({floor_name})"
            )
        } else {
            format!(
                "no acceptable step after {rejections} consecutive rejected steps (dt = {next:.3e})"
            )
        };
        Err(Error::Numerical(format!(
            "ODE step failed at t = {t:.6e} ({method}): {what}; {why}"
        )))
    }

    /// Clamp a proposed step size to `[dtmin, dtmax]` (where set).
    pub fn clamp_dt(&self, dt: f64) -> f64 {
        let dt = self.dtmax.map_or(dt, |m| dt.min(m));
        self.dtmin.map_or(dt, |m| dt.max(m))
    }

    /// Initial step size by the heuristic of Hairer–Nørsett–Wanner I, §II.4 (p. 169), as in
    /// diffrax's `_select_initial_step` and Hairer's `HINIT`. With
    /// `sc_i = atol + rtol·|y0_i|` and the RMS norm `‖·‖` scaled by `sc`:
    ///
    /// ```text
    /// d0 = ‖y0‖, d1 = ‖f0‖;  h0 = 1e-6 if min(d0, d1) < 1e-5 else 0.01·d0/d1
    /// f1 = f(t0 + h0, y0 + h0 f0);  d2 = ‖f1 − f0‖ / h0
    /// h1 = max(1e-6, 1e-3·h0) if max(d1, d2) ≤ 1e-15 else (0.01 / max(d1, d2))^{1/k}
    /// dt0 = min(100·h0, h1)
    /// ```
    ///
    /// then clamped to `[dtmin, dtmax]`. Makes exactly one call to `field.eval`, using
    /// `scratch_y` and `scratch_f` (length `n`) as buffers. A non-finite `f1` is ignored
    /// (`d2 = 0`).
    #[allow(clippy::too_many_arguments)]
    pub fn initial_step(
        &self,
        field: &mut dyn VectorField,
        t0: f64,
        y0: &[f64],
        f0: &[f64],
        error_order: f64,
        scratch_y: &mut [f64],
        scratch_f: &mut [f64],
    ) -> Result<f64> {
        let n = y0.len().max(1) as f64;
        let scale = |i: usize| self.atol + self.rtol * y0[i].abs();
        let rms = |v: &dyn Fn(usize) -> f64| {
            ((0..y0.len()).map(|i| v(i).powi(2)).sum::<f64>() / n).sqrt()
        };
        let d0 = rms(&|i| y0[i] / scale(i));
        let d1 = rms(&|i| f0[i] / scale(i));
        let mut h0 = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        if let Some(m) = self.dtmax {
            h0 = h0.min(m);
        }
        for i in 0..y0.len() {
            scratch_y[i] = y0[i] + h0 * f0[i];
        }
        field.eval(t0 + h0, scratch_y, scratch_f)?;
        let d2 = rms(&|i| (scratch_f[i] - f0[i]) / scale(i)) / h0;
        let d2 = if d2.is_finite() { d2 } else { 0.0 };
        let m = d1.max(d2);
        let h1 = if m <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / m).powf(1.0 / error_order)
        };
        let h = (100.0 * h0).min(h1);
        Ok(self.clamp_dt(h))
    }
}
