//! Layered models: what the Neural Feature Ansatz metrics need.
//!
//! A layered model computes `f(x) = h_L`, `h_l = m_l W_l x_l + b_l`, `x_{l+1} = σ(h_l)`,
//! `x_1 = x` (Radhakrishnan et al. 2024; Beaglehole, Mitliagkas & Agarwala 2024, §2):
//! layer l has the weight W_l (k_l × d_l, the block `W{l}`), an optional bias b_l, a
//! forward multiplier m_l and — for l < L — the activation σ after it. Deep linear nets
//! (σ = identity), MLPs and two-layer nets all have this form; [`LayerStack`] is that
//! description with borrowed weights, from which `theory::nfa` computes per-layer NFMs,
//! AGOPs and pre-activation tangent kernels for any layered model alike.

use super::{Activation, Model};
use faer::MatRef;

/// The layer structure of a model at given parameters (see module docs).
#[derive(Debug, Clone)]
pub struct LayerStack<'a> {
    /// W_1 … W_L (W_l is k_l × d_l, rows = fan-out).
    pub weights: Vec<MatRef<'a, f64>>,
    /// b_1 … b_L (`None` where the layer has no bias).
    pub biases: Vec<Option<&'a [f64]>>,
    /// Forward multipliers m_1 … m_L.
    pub mults: Vec<f64>,
    /// σ, applied after every layer except the last.
    pub activation: Activation,
}

impl LayerStack<'_> {
    /// Number of weight layers L.
    pub fn depth(&self) -> usize {
        self.weights.len()
    }
    /// Input width d_l of layer l (0-based).
    pub fn fan_in(&self, l: usize) -> usize {
        self.weights[l].ncols()
    }
    /// Output width k_l of layer l (0-based).
    pub fn fan_out(&self, l: usize) -> usize {
        self.weights[l].nrows()
    }
}

/// A model with the layer structure of the module docs.
pub trait Layered: Model {
    /// The layer description at parameters `params`.
    fn stack<'a>(&self, params: &'a [f64]) -> LayerStack<'a>;
    /// Index into [`Model::blocks`] of the weight block of each layer, in layer order.
    fn weight_blocks(&self) -> Vec<usize>;
}
