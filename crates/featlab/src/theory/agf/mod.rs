//! Alternating Gradient Flows (Kunin, Marchetti, Chen, Karkada, Simon, DeWeese, Ganguli,
//! Miolane, *Alternating Gradient Flows: A Theory of Feature Learning in Two-layer Neural
//! Networks*, arXiv 2506.06489, NeurIPS 2025).
//!
//! # API summary (for applications built on the engine)
//! * [`engine::run_agf`]`(model, data, init, cost, opts, ctx) -> AgfResult` runs AGF for any
//!   `M: NeuronSum` (κ = `model.homogeneity()`), from the same initialisation as gradient
//!   flow, on the gradient-flow clock of L = (1/2n)Σ‖f − y‖² (unit learning rate; blocks
//!   must have lr_mult = 1). Result: `rounds` (jump time `t`, level `loss`, `activated`
//!   neurons and their `directions`, `near_ties`, `deactivated`, `active`, full `params`),
//!   `levels()`, `jump_times()`, `stop`, a per-neuron norm `trace`.
//! * Cost minimisers ([`engine::CostMinimizer`]`<M>`): [`cost::GradientFlowCost`] (generic,
//!   adaptive DOPRI5 on the active neurons until ‖∇C‖ ≤ gtol), [`cost::LinearLeastSquares`]
//!   (two-layer linear nets), [`cost::DiagonalLeastSquares`] (diagonal nets, sign-flip
//!   deactivation). Implement the trait for closed-form cost phases of other models.
//! * [`engine::run_agf_with_utility`]: the same with a model-specific utility gradient
//!   ([`utility::UtilityGradient`]: [`utility::LinearMomentUtility`],
//!   [`utility::DiagonalMomentUtility`] evaluate ∇U from one residual moment per phase and
//!   expose the quadratic form U_i = ½θᵀK_iθ, which makes κ = 2 utility phases exact).
//! * [`engine::AgfOptions`]: ODE tolerances and tableau, exact quadratic phases, horizon `t_max`, thresholds for κ > 2
//!   ([`engine::Threshold`]: `blow_up` c = ρ0^{2−κ}/(κ−2), default, or `unit_norm`
//!   (ρ0^{2−κ} − 1)/(κ−2) as in the authors' code), tie handling, collapse tolerance.
//! * [`compare`]: gradient flow from the same init, drop matching (midpoint crossings),
//!   relative errors, the factor conventions ([`compare::Conventions`]) and standard plots.
//! * Closed forms: [`diagonal`] (cosh-formula AGF, Pesme–Flammarion limit), [`linear`]
//!   (levels, rank-k truncations, jump-time recursion).
//! * [`on_data`]: AGF on given data (x, y, a named architecture): the builder shared by the
//!   `agf` experiment's `[problem] kind = "files"` and Python's `featlab.agf.run`.
//! * [`experiment::AgfExperiment`]: the `agf` experiment kind (presets `agf-*`).

pub mod cost;
pub mod engine;
mod quadratic;
pub mod roots;
pub mod standard;
pub mod timing;
pub mod utility;

pub use cost::{DiagonalLeastSquares, GradientFlowCost, LinearLeastSquares};
pub use engine::{
    run_agf, run_agf_with_utility, AgfOptions, AgfResult, AgfRound, AgfStop, AgfTrace,
    CostMinimizer, CostOutcome, CostStop, Redormant, Threshold,
};
pub use standard::{run_agf_diagonal, run_agf_two_layer, CostChoice};
pub use timing::{timed_agf, AgfTiming, AGF_TIMING_REPEATS};
pub use utility::{BackpropUtility, DiagonalMomentUtility, LinearMomentUtility, UtilityGradient};
pub mod diagonal;
pub mod features;
pub mod linear;
pub mod on_data;

pub mod attention;
pub mod compare;
pub mod modular;
#[cfg(test)]
mod tests;
