//! AGF with featlab's standard choices per architecture (Kunin et al. 2025, Alg. 1), shared
//! by the `agf` experiment and the Python bindings so both give the same bits:
//!
//! * utility gradients: from the residual moment for diagonal and linear two-layer nets
//!   (one pass over the data per phase), by backpropagation otherwise;
//! * cost minimiser: the closed-form least-squares minimiser where one exists
//!   ([`CostChoice::Auto`] on diagonal and linear nets), else gradient flow on the active
//!   neurons.

use super::cost::{DiagonalLeastSquares, GradientFlowCost, LinearLeastSquares};
use super::engine::{run_agf, run_agf_with_utility, AgfOptions, AgfResult};
use super::utility::{DiagonalMomentUtility, LinearMomentUtility};
use crate::data::Dataset;
use crate::model::diagonal::Diagonal;
use crate::model::two_layer::TwoLayer;
use crate::model::Activation;
use crate::train::RunContext;
use crate::Result;

/// How AGF minimises the cost over the active neurons.
#[derive(Debug, Clone, Copy)]
pub enum CostChoice<'a> {
    /// Closed-form least squares where the architecture has one, else this gradient flow.
    Auto(&'a GradientFlowCost),
    /// Always gradient flow.
    GradientFlow(&'a GradientFlowCost),
}

impl<'a> CostChoice<'a> {
    fn flow(self) -> &'a GradientFlowCost {
        match self {
            CostChoice::Auto(f) | CostChoice::GradientFlow(f) => f,
        }
    }
}

/// AGF on a diagonal linear net (moment utilities; least-squares cost under `Auto`).
pub fn run_agf_diagonal(
    model: &Diagonal,
    data: &Dataset,
    init: &[f64],
    cost: CostChoice<'_>,
    opts: &AgfOptions,
    ctx: &RunContext<'_>,
) -> Result<AgfResult> {
    let mut utility = DiagonalMomentUtility::default();
    match cost {
        CostChoice::Auto(_) => run_agf_with_utility(
            model,
            data,
            init,
            &mut DiagonalLeastSquares::new(model, init),
            &mut utility,
            opts,
            ctx,
        ),
        CostChoice::GradientFlow(f) => {
            run_agf_with_utility(model, data, init, &mut f.clone(), &mut utility, opts, ctx)
        }
    }
}

/// AGF on a two-layer net: linear activation → moment utilities (and least-squares cost
/// under `Auto`); other activations → backpropagated utilities and gradient-flow cost.
pub fn run_agf_two_layer(
    model: &TwoLayer,
    data: &Dataset,
    init: &[f64],
    cost: CostChoice<'_>,
    opts: &AgfOptions,
    ctx: &RunContext<'_>,
) -> Result<AgfResult> {
    if model.activation != Activation::Linear {
        return run_agf(model, data, init, &mut cost.flow().clone(), opts, ctx);
    }
    let mut utility = LinearMomentUtility::default();
    match cost {
        CostChoice::Auto(_) => run_agf_with_utility(
            model,
            data,
            init,
            &mut LinearLeastSquares::default(),
            &mut utility,
            opts,
            ctx,
        ),
        CostChoice::GradientFlow(f) => {
            run_agf_with_utility(model, data, init, &mut f.clone(), &mut utility, opts, ctx)
        }
    }
}
