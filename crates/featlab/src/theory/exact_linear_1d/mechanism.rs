//! Classifier of a run's dynamics into the kernel regime or one of the three mechanisms of
//! feature learning of Xu & Ziyin (arXiv 2401.07085 v3): alignment, disalignment and
//! rescaling.
//!
//! Why these measurements: in the exact model β = γ|u||w|cos∠(u, w) and the wedge
//! ω = γ|u||w| sin∠ is conserved, so the output can change only by turning the layers
//! towards each other (|cos| ↑, *alignment*), away from each other (|cos| ↓,
//! *disalignment*) or, when the angle is fixed, by changing the norms (*rescaling*). The
//! kernel regime is the absence of feature learning: the NTK does not move.
//!
//! Rule (thresholds in [`Thresholds`], defaults θ_K = 0.1, θ_a = 0.1):
//! 1. `ntk_rel_change < θ_K` → **kernel** (the definition of the kernel regime: the NTK
//!    stays put), whatever the angle and norms do;
//! 2. otherwise take the consecutive-layer pair whose Gram alignment changed most,
//!    Δa = a_end − a_start (a = cos² in the 1-D model); `Δa ≥ θ_a` → **alignment**,
//!    `Δa ≤ −θ_a` → **disalignment**;
//! 3. otherwise, if some layer norm changed by at least θ_n in log (default 0.05, i.e.
//!    ≈5%) → **rescaling**; else **unexplained** (the NTK moved without a change of angle
//!    or norm — possible in nonlinear nets, e.g. through activation patterns; never in the
//!    1-D linear model, where K is a function of the norms).

use serde::{Deserialize, Serialize};

/// The label of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    Kernel,
    Alignment,
    Disalignment,
    Rescaling,
    /// NTK changed with neither angle nor norm change above threshold.
    Unexplained,
}

impl Mechanism {
    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Kernel => "kernel",
            Mechanism::Alignment => "alignment",
            Mechanism::Disalignment => "disalignment",
            Mechanism::Rescaling => "rescaling",
            Mechanism::Unexplained => "unexplained",
        }
    }
    /// Numeric code for heatmaps (kernel 0, alignment 1, disalignment 2, rescaling 3, unexplained 4).
    pub fn code(self) -> f64 {
        match self {
            Mechanism::Kernel => 0.0,
            Mechanism::Alignment => 1.0,
            Mechanism::Disalignment => 2.0,
            Mechanism::Rescaling => 3.0,
            Mechanism::Unexplained => 4.0,
        }
    }
}

/// Classification thresholds (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// θ_K: relative NTK change below which a run is in the kernel regime.
    #[serde(default = "d_ntk")]
    pub ntk: f64,
    /// θ_a: change of Gram alignment (cos² in 1-D) that counts as (dis)alignment.
    #[serde(default = "d_align")]
    pub alignment: f64,
    /// θ_n: |ln(‖W_end‖/‖W_start‖)| that counts as rescaling.
    #[serde(default = "d_norm")]
    pub norm: f64,
}

fn d_ntk() -> f64 {
    0.1
}
fn d_align() -> f64 {
    0.1
}
fn d_norm() -> f64 {
    0.05
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            ntk: d_ntk(),
            alignment: d_align(),
            norm: d_norm(),
        }
    }
}

/// What the classifier reads from a run (start vs end of training).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicsMeasures {
    /// ‖Θ_end − Θ_0‖_F/‖Θ_0‖_F (1-D: |K_end/K_0 − 1|).
    pub ntk_rel_change: f64,
    /// Gram alignment of each consecutive layer pair at the start.
    pub alignment_start: Vec<f64>,
    /// … and at the end.
    pub alignment_end: Vec<f64>,
    /// ln(‖W_l,end‖/‖W_l,start‖) per layer.
    pub log_norm_ratios: Vec<f64>,
}

/// A label with the numbers that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub mechanism: Mechanism,
    /// The signed alignment change of the pair that changed most.
    pub alignment_change: f64,
    /// Largest |log norm ratio| over layers.
    pub max_log_norm_change: f64,
    pub ntk_rel_change: f64,
}

/// Classify a run (rule in the module docs).
pub fn classify(m: &DynamicsMeasures, th: &Thresholds) -> Classification {
    let da = m
        .alignment_start
        .iter()
        .zip(&m.alignment_end)
        .map(|(a, b)| b - a)
        .fold(
            0.0f64,
            |best, v| if v.abs() > best.abs() { v } else { best },
        );
    let dn = m
        .log_norm_ratios
        .iter()
        .fold(0.0f64, |acc, v| acc.max(v.abs()));
    let mechanism = if m.ntk_rel_change.is_nan() || m.ntk_rel_change < th.ntk {
        Mechanism::Kernel
    } else if da >= th.alignment {
        Mechanism::Alignment
    } else if da <= -th.alignment {
        Mechanism::Disalignment
    } else if dn >= th.norm {
        Mechanism::Rescaling
    } else {
        Mechanism::Unexplained
    };
    Classification {
        mechanism,
        alignment_change: da,
        max_log_norm_change: dn,
        ntk_rel_change: m.ntk_rel_change,
    }
}

/// The classifier applied to the exact solution between t = 0 and t (t = ∞ allowed).
pub fn classify_exact(sol: &super::ExactLinear1d, t: f64, th: &Thresholds) -> Classification {
    let (s0, s1) = (sol.at(0.0), sol.at(t));
    let lr = |a: f64, b: f64| {
        if a > 0.0 && b > 0.0 {
            (b / a).ln()
        } else if a == b {
            0.0
        } else {
            f64::INFINITY
        }
    };
    let m = DynamicsMeasures {
        ntk_rel_change: if s0.ntk > 0.0 {
            (s1.ntk / s0.ntk - 1.0).abs()
        } else {
            f64::INFINITY
        },
        alignment_start: vec![s0.cos_angle * s0.cos_angle],
        alignment_end: vec![s1.cos_angle * s1.cos_angle],
        log_norm_ratios: vec![lr(s0.norm_w, s1.norm_w), lr(s0.norm_u, s1.norm_u)],
    };
    classify(&m, th)
}
