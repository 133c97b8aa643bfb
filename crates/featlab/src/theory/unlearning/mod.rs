//! Feature unlearning at infinite width — Imai, Nishiyama & Imaizumi, *Dichotomy of Feature
//! Learning and Unlearning: Fast-Slow Analysis on Neural Networks with Stochastic Gradient
//! Descent*, arXiv 2602.07378 (2026).
//!
//! The paper's equations were not available; everything here is featlab's own derivation for
//! a concrete model (mean-field two-layer net, spherical first layer, single-index Gaussian
//! teacher, Hermite activations), checked numerically step by step (see `tests.rs` and
//! `docs/unlearning.md`):
//!
//! * [`hermite`] — normalised Hermite polynomials, series, Gauss–Hermite quadrature;
//! * [`limit`] — the limit ODE for the order parameters (alignment m, second layer a);
//! * [`fast_slow`] — critical manifold, its stability, reduced slow flow, unlearning criterion;
//! * [`finite_width`] — exact finite-N (equiangular) reduction, the N^{−1/4} saturation, and the
//!   SGD-noise terms with the shared (common-mode) component;
//! * [`spread`] — the fourth order parameter: spread of the pair overlaps fed by SGD noise;
//! * [`spread_feed`] — its one-step SGD feed, exact in N and d at the regular simplex;
//! * [`scaling`] — late-time power laws from the reduced flow;
//! * [`fit`] — least squares with standard errors (exponent fits);
//! * [`simulator`] — the finite-width network trained by SGD / population GD / population flow.

pub mod fast_slow;
pub mod finite_width;
pub mod fit;
pub mod hermite;
pub mod limit;
pub mod scaling;
pub mod spread;
pub mod spread_feed;

#[cfg(test)]
mod spread_feed_tests;
#[cfg(test)]
mod spread_tests;
#[cfg(test)]
mod tests;

pub use finite_width::EquiangularModel;
pub use hermite::{GaussHermite, HermiteSeries};
pub use limit::LimitModel;
pub use spread::SpreadModel;

/// The order-parameter ODEs of this module integrated from t = 0 with DOPRI5 at relative
/// tolerance `rtol` (absolute `rtol`·1e-3) and at most `max_steps` steps; the states at
/// `save_at` (increasing, ≥ 0).
pub(crate) fn integrate_order_parameters(
    field: &mut dyn crate::train::ode::VectorField,
    rtol: f64,
    y0: &[f64],
    save_at: &[f64],
    max_steps: u64,
) -> crate::Result<Vec<Vec<f64>>> {
    use crate::train::ode::{solve, PidController, DOPRI5};
    let t1 = save_at.last().copied().unwrap_or(0.0);
    let sol = solve(
        field,
        &DOPRI5,
        PidController::new(rtol, rtol * 1e-3),
        0.0,
        t1,
        y0,
        save_at,
        max_steps,
    )?;
    Ok(sol.ys)
}
