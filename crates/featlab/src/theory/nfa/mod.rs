//! The Neural Feature Ansatz (NFA): NFM/AGOP metrics for any layered model, feature
//! learning as alignment, the deep-linear NFA theorems and the Recursive Feature Machine.
//!
//! Papers:
//! * A. Radhakrishnan, D. Beaglehole, P. Pandit, M. Belkin, "Mechanism for feature learning
//!   in neural networks and backpropagation-free machine learning models", Science 2024
//!   (arXiv 2212.13881): the NFA `W_lᵀW_l ∝ G_l^{1/2}` and the RFM.
//! * D. Beaglehole, I. Mitliagkas, A. Agarwala, "Feature learning as alignment: a structural
//!   property of gradient descent in non-linear neural networks", TMLR 2024 (arXiv
//!   2402.05271): `G_l = W_lᵀK_lW_l`, UC-/C-NFC, speed-limited optimisation.
//! * E. Tansley, E. Massart, C. Cartis, "On the Neural Feature Ansatz for Deep Neural
//!   Networks", arXiv 2510.15563: `W_1ᵀW_1 = G^{1/L}` for balanced deep linear nets;
//!   imbalance decay under weight decay; nonlinear counterexamples.
//!
//! Modules: [`agop`] (exact batched AGOPs and PTKs), [`metrics`] (correlations, PSD
//! powers, best-fit α, imbalance), [`measure`] (per-layer metric table), [`network`] (a
//! trained MLP given as weight matrices or a state-dict file), [`observer`]
//! (records them along training), [`slo`] (layer-wise normalised SGD), [`early`]
//! (early-time C-NFC prediction from data statistics), [`rfm`] (Recursive Feature
//! Machine), [`probe`] (linear-probe feature quality), [`data`] (labelled image data).

pub mod agop;
pub mod early;
pub mod measure;
pub mod metrics;
pub mod network;
pub mod probe;
pub mod rfm;

#[cfg(test)]
mod tests;

pub use agop::{layer_gradients, AgopOptions, LayerGradients};
pub use measure::{layers_json, measure, LayerMetrics, NfaOptions};
pub use metrics::{correlation, Correlation, PsdPower};
pub use network::TrainedNetwork;
