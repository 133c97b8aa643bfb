//! Width-dependent parametrisations: initial standard deviation, forward multiplier and
//! learning-rate multiplier of each layer.
//!
//! A layer computes `h_l = m_l · W_l h_{l−1}` with `W_l[i, j] ~ N(0, s_l²)` and is trained with
//! learning rate `η · r_l`. With fan-in `n_in` and fan-out `n_out`:
//!
//! | parametrisation | layer | s_l | m_l | r_l |
//! |---|---|---|---|---|
//! | standard | all | 1/√n_in | 1 | 1 |
//! | ntk (Jacot et al. 2018) | all | 1 | 1/√n_in | 1 |
//! | mean_field (Mei, Montanari & Nguyen 2018; two-layer form) | hidden | 1/√n_in | 1 | n_out of the last hidden layer |
//! |  | output | 1 | 1/n_in | n_in |
//! | mup (Yang & Hu 2021, Tensor Programs V, Table 3, SGD) | input | 1/√n_in | 1 | n_out |
//! |  | hidden | 1/√n_in | 1 | 1 |
//! |  | output | 1/n_in | 1 | 1/n_in |
//!
//! For mean field, every layer's learning rate is multiplied by the width m of the last
//! hidden layer, so that with f = (1/m) Σ a_i σ(w_i·x) each neuron moves O(1) in time O(1).

use serde::{Deserialize, Serialize};

/// Choice of parametrisation (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Parametrization {
    #[default]
    Standard,
    Ntk,
    MeanField,
    Mup,
}

/// Per-layer (std, multiplier, lr multiplier).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerScale {
    pub std: f64,
    pub mult: f64,
    pub lr_mult: f64,
}

impl Parametrization {
    /// Scales for layer `l` (0-based) of `num_layers`, with `fans[l] = (fan_in, fan_out)`.
    pub fn layer(self, l: usize, fans: &[(usize, usize)]) -> LayerScale {
        let num_layers = fans.len();
        let (fan_in, fan_out) = fans[l];
        let fi = fan_in.max(1) as f64;
        let is_out = l + 1 == num_layers;
        let is_in = l == 0;
        match self {
            Parametrization::Standard => LayerScale {
                std: 1.0 / fi.sqrt(),
                mult: 1.0,
                lr_mult: 1.0,
            },
            Parametrization::Ntk => LayerScale {
                std: 1.0,
                mult: 1.0 / fi.sqrt(),
                lr_mult: 1.0,
            },
            Parametrization::MeanField => {
                let m = if num_layers >= 2 {
                    fans[num_layers - 1].0 as f64
                } else {
                    1.0
                };
                if is_out && num_layers >= 2 {
                    LayerScale {
                        std: 1.0,
                        mult: 1.0 / fi,
                        lr_mult: m,
                    }
                } else {
                    LayerScale {
                        std: 1.0 / fi.sqrt(),
                        mult: 1.0,
                        lr_mult: m,
                    }
                }
            }
            Parametrization::Mup => {
                if is_out && num_layers >= 2 {
                    LayerScale {
                        std: 1.0 / fi,
                        mult: 1.0,
                        lr_mult: 1.0 / fi,
                    }
                } else if is_in {
                    LayerScale {
                        std: 1.0 / fi.sqrt(),
                        mult: 1.0,
                        lr_mult: fan_out as f64,
                    }
                } else {
                    LayerScale {
                        std: 1.0 / fi.sqrt(),
                        mult: 1.0,
                        lr_mult: 1.0,
                    }
                }
            }
        }
    }
}
