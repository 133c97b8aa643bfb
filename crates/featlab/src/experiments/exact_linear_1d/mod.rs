//! Experiments of the exact 1-D linear network (Xu & Ziyin, arXiv 2401.07085 v3):
//!
//! * `exact_1d` ([`trajectory`]): one run of the engine's gradient flow of
//!   `f(x) = γ(u·w)x` against the closed form, column by column;
//! * `exact_phase_diagram` ([`phase`]): order-parameter heatmaps from the closed form with
//!   the analytic boundary, a throughput measurement and a few trained check points;
//! * `exact_mechanisms` ([`mechanisms`]): prototype runs of kernel / alignment /
//!   disalignment / rescaling, each trained and classified;
//! * `exact_deep_real` ([`deep_real`]): the same measurements on a deep ReLU MLP trained on
//!   scikit-learn's 8×8 digits, over a grid of output scale γ and init scale.

pub mod deep_real;
pub mod mechanisms;
pub mod phase;
pub mod trajectory;

use crate::model::Model;
use crate::rng::{normal_vec, Rng};
use crate::theory::exact_linear_1d::measure::empirical_ntk;
use crate::theory::exact_linear_1d::{two_layer_model, unpack, Hyper1d};
use crate::train::{Observer, Problem};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

fn one() -> f64 {
    1.0
}

/// Initialisation of (u, w).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Init1d {
    /// u_i ~ N(0, σ_u²), w_i ~ N(0, σ_w²) i.i.d.
    Gaussian { sigma_u: f64, sigma_w: f64 },
    /// w ~ N(0, σ² I), u = √(η_u/η_w) w: balanced (C = 0) and aligned (ω = 0).
    Balanced { sigma: f64 },
    /// Explicit vectors (length = width).
    Given { u: Vec<f64>, w: Vec<f64> },
}

/// The `[model]` table of the 1-D experiments: `f(x) = γ (u·w) x`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Model1dConfig {
    /// Width d.
    pub width: usize,
    /// Output scale γ.
    #[serde(default = "one")]
    pub gamma: f64,
    /// Learning rate (multiplier) of the readout u.
    #[serde(default = "one")]
    pub lr_u: f64,
    /// Learning rate (multiplier) of the first layer w.
    #[serde(default = "one")]
    pub lr_w: f64,
    pub init: Init1d,
}

impl Model1dConfig {
    /// Validate and return (hyperparameters, u₀, w₀).
    pub fn build(&self, rng: &mut Rng, key: &str) -> Result<(Hyper1d, Vec<f64>, Vec<f64>)> {
        if self.width == 0 {
            return Err(Error::config(format!("{key}.width"), "must be ≥ 1"));
        }
        let hyper = Hyper1d { gamma: self.gamma, lr_u: self.lr_u, lr_w: self.lr_w };
        for (k, v) in [("gamma", self.gamma), ("lr_u", self.lr_u), ("lr_w", self.lr_w)] {
            if !v.is_finite() || (k != "gamma" && v <= 0.0) {
                return Err(Error::config(format!("{key}.{k}"), format!("must be finite{}, got {v}", if k == "gamma" { "" } else { " and > 0" })));
            }
        }
        let (u, w) = match &self.init {
            Init1d::Gaussian { sigma_u, sigma_w } => {
                if !(sigma_u.is_finite() && sigma_w.is_finite() && *sigma_u >= 0.0 && *sigma_w >= 0.0) {
                    return Err(Error::config(format!("{key}.init"), "sigma_u and sigma_w must be finite and ≥ 0"));
                }
                let w = normal_vec(rng, self.width, *sigma_w);
                let u = normal_vec(rng, self.width, *sigma_u);
                (u, w)
            }
            Init1d::Balanced { sigma } => {
                if !(sigma.is_finite() && *sigma >= 0.0) {
                    return Err(Error::config(format!("{key}.init.sigma"), "must be finite and ≥ 0"));
                }
                let w = normal_vec(rng, self.width, *sigma);
                let f = (self.lr_u / self.lr_w).sqrt();
                (w.iter().map(|v| f * v).collect(), w)
            }
            Init1d::Given { u, w } => {
                if u.len() != self.width || w.len() != self.width {
                    return Err(Error::config(
                        format!("{key}.init"),
                        format!("given u and w must both have width = {} entries (got {} and {})", self.width, u.len(), w.len()),
                    ));
                }
                (u.clone(), w.clone())
            }
        };
        Ok((hyper, u, w))
    }

    /// featlab's `TwoLayer` realising this model.
    pub fn model(&self) -> crate::model::two_layer::TwoLayer {
        two_layer_model(self.width, self.gamma, self.lr_u, self.lr_w)
    }
}

/// Observer of the 1-D model on the engine side: `beta` = γ u·w, `ntk` = empirical NTK at
/// x = 1 (from the model's backward pass), `alignment` = cos∠(u, w), `norm_u`, `norm_w`.
pub struct Model1dObserver {
    pub gamma: f64,
    one: faer::Mat<f64>,
}

impl Model1dObserver {
    pub fn new(gamma: f64) -> Self {
        Model1dObserver { gamma, one: faer::Mat::from_fn(1, 1, |_, _| 1.0) }
    }
    /// (β, K, cos, |u|, |w|) of parameters `params` of `model`.
    pub fn measure(&self, model: &dyn Model, params: &[f64]) -> [f64; 5] {
        let (u, w) = unpack(params);
        let uw: f64 = u.iter().zip(&w).map(|(a, b)| a * b).sum();
        let nu = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        let nw = w.iter().map(|a| a * a).sum::<f64>().sqrt();
        let k = empirical_ntk(model, params, self.one.as_ref())[(0, 0)];
        let cos = if nu > 0.0 && nw > 0.0 { uw / (nu * nw) } else { 0.0 };
        [self.gamma * uw, k, cos, nu, nw]
    }
}

impl Observer for Model1dObserver {
    fn columns(&self) -> Vec<String> {
        ["beta", "ntk", "alignment", "norm_u", "norm_w"].iter().map(|s| s.to_string()).collect()
    }
    fn observe(&mut self, _t: f64, params: &[f64], problem: &mut Problem<'_>) -> Result<Vec<f64>> {
        Ok(self.measure(problem.model, params).to_vec())
    }
}
