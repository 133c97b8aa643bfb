//! Per-layer NFA metrics of a layered model at one point of training.
//!
//! For layer l with weight W_l, initial weight W_l(0), AGOP G_l and PTK K_l (see
//! [`super::agop`]):
//!
//! | metric | formula | source |
//! |---|---|---|
//! | `nfm_agop_corr` | ρ(W_lᵀW_l, G_l^α), α from the options | Radhakrishnan et al. 2024 (α = ½); Tansley et al. 2025 (α = 1/L) |
//! | `alpha_fit` | argmax_α ρ(W_lᵀW_l, G_l^α) | — |
//! | `alpha_spectrum` | slope of log λ(NFM) vs log λ(G) | — |
//! | `uc_nfc` | ρ(W_lᵀW_l, W_lᵀK_lW_l) (= ρ(NFM, G_l) since G_l = m_l²W_lᵀK_lW_l) | Beaglehole et al. 2024 |
//! | `c_nfc` | ρ(ΔW_lᵀΔW_l, ΔW_lᵀK_lΔW_l), ΔW_l = W_l − W_l(0) | Beaglehole et al. 2024 |
//! | `rel_change` | ‖ΔW_l‖_F/‖W_l‖_F | Beaglehole et al. 2024 (code) |
//!
//! At t = 0, ΔW = 0 and the C-NFC is 0/0; we report its t → 0⁺ limit along gradient
//! flow, where ΔW_l = −t r_l ∇_{W_l}(L + λ/2‖θ‖²)(θ₀) + O(t²), i.e. ΔW_l ∝ the full-batch
//! gradient at initialisation (the direction SGD moves in expectation).

use super::agop::{layer_gradients, AgopOptions, LayerGradients};
use super::metrics::{
    alpha_from_spectra, correlation, nfm, relative_change, sandwich, Correlation, PsdPower,
};
use crate::linalg::{sym_eig, view};
use crate::model::LayerStack;
use crate::{Error, Result};
use faer::{Mat, MatRef, Par};
use serde::{Deserialize, Serialize};

fn half() -> f64 {
    0.5
}
fn d_batch() -> usize {
    512
}
fn d_lo() -> f64 {
    0.02
}
fn d_hi() -> f64 {
    2.0
}

/// Metric options (the `[nfa]` table of the NFA experiments).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NfaOptions {
    /// Exponent α of the reported `nfm_agop_corr` = ρ(NFM, AGOP^α).
    #[serde(default = "half")]
    pub alpha: f64,
    /// `pearson` (default, the public code's) or `cosine`.
    #[serde(default)]
    pub correlation: Correlation,
    /// Gradient-centred AGOP and PTK (subtract the mean Jacobian over samples).
    #[serde(default)]
    pub center_agop: bool,
    /// Samples per batch of the AGOP computation.
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// Search interval of the best-fit α.
    #[serde(default = "d_lo")]
    pub alpha_min: f64,
    #[serde(default = "d_hi")]
    pub alpha_max: f64,
    /// Use only the first `samples` training points for AGOP/PTK (default: all).
    #[serde(default)]
    pub samples: Option<usize>,
}

impl Default for NfaOptions {
    fn default() -> Self {
        NfaOptions {
            alpha: 0.5,
            correlation: Correlation::Pearson,
            center_agop: false,
            batch: 512,
            alpha_min: 0.02,
            alpha_max: 2.0,
            samples: None,
        }
    }
}

impl NfaOptions {
    /// Check ranges; errors name the key under `section`.
    pub fn validate(&self, section: &str) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::config(
                format!("{section}.alpha"),
                format!("must be a finite number > 0, got {}", self.alpha),
            ));
        }
        if self.batch == 0 {
            return Err(Error::config(format!("{section}.batch"), "must be ≥ 1"));
        }
        if !(self.alpha_min > 0.0 && self.alpha_max > self.alpha_min && self.alpha_max.is_finite())
        {
            return Err(Error::config(
                format!("{section}.alpha_min"),
                format!(
                    "need 0 < alpha_min < alpha_max, got {} and {}",
                    self.alpha_min, self.alpha_max
                ),
            ));
        }
        if self.samples == Some(0) {
            return Err(Error::config(format!("{section}.samples"), "must be ≥ 1"));
        }
        Ok(())
    }
    /// AGOP options for this parallelism.
    pub fn agop(&self, par: Par) -> AgopOptions {
        AgopOptions {
            batch: self.batch,
            center: self.center_agop,
            par,
        }
    }
    /// The samples used for AGOP/PTK.
    pub fn rows<'a>(&self, x: MatRef<'a, f64>) -> MatRef<'a, f64> {
        match self.samples {
            Some(m) if m < x.nrows() => x.subrows(0, m),
            _ => x,
        }
    }
}

/// The metrics of one layer (see module table).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LayerMetrics {
    pub nfm_agop_corr: f64,
    pub alpha_fit: f64,
    /// ρ at `alpha_fit`.
    pub alpha_fit_corr: f64,
    pub alpha_spectrum: f64,
    pub uc_nfc: f64,
    pub c_nfc: f64,
    pub rel_change: f64,
}

/// All layers' metrics plus the matrices they came from.
pub struct Measurement {
    pub layers: Vec<LayerMetrics>,
    pub grads: LayerGradients,
}

/// Compute every layer's metrics at `stack` (initial weights `w0`, flattened row-major per
/// layer) on inputs `x`. `dw_at_zero`, when given, supplies ΔW_l for layers whose weights
/// have not moved (the t → 0⁺ direction, see module docs).
pub fn measure(
    stack: &LayerStack<'_>,
    w0: &[Vec<f64>],
    x: MatRef<'_, f64>,
    opts: &NfaOptions,
    par: Par,
    dw_at_zero: Option<&[Vec<f64>]>,
) -> Result<Measurement> {
    let grads = layer_gradients(stack, opts.rows(x), &opts.agop(par))?;
    let mut layers = Vec::with_capacity(stack.depth());
    for l in 0..stack.depth() {
        let w = stack.weights[l];
        let (k, d) = (w.nrows(), w.ncols());
        let f = nfm(w);
        let g = grads.agop[l].as_ref();
        let pp = PsdPower::new(g)?;
        let cor = pp.correlator(f.as_ref(), opts.correlation);
        let (alpha_fit, alpha_fit_corr) = cor.argmax(opts.alpha_min, opts.alpha_max);
        let w0l = view(&w0[l], k, d);
        let mut dw = Mat::from_fn(k, d, |i, j| w[(i, j)] - w0l[(i, j)]);
        if dw.norm_l2() == 0.0 {
            if let Some(z) = dw_at_zero {
                dw = view(&z[l], k, d).to_owned();
            }
        }
        let c_nfc = correlation(
            nfm(dw.as_ref()).as_ref(),
            sandwich(dw.as_ref(), grads.ptk[l].as_ref()).as_ref(),
            opts.correlation,
        );
        layers.push(LayerMetrics {
            nfm_agop_corr: cor.corr(opts.alpha),
            alpha_fit,
            alpha_fit_corr,
            // the AGOP's spectrum is the one PsdPower already has (clamping below
            // 1e-12·max does not touch the pairs kept above 1e-8·max)
            alpha_spectrum: alpha_from_spectra(&sym_eig(f.as_ref())?.1, pp.eigenvalues(), 1e-8),
            // WᵀK_lW = G_l/m_l², and ρ is invariant under positive scaling
            uc_nfc: if stack.mults[l] != 0.0 {
                correlation(f.as_ref(), g, opts.correlation)
            } else {
                let s = sandwich(w, grads.ptk[l].as_ref());
                correlation(f.as_ref(), s.as_ref(), opts.correlation)
            },
            c_nfc,
            rel_change: relative_change(w, w0l),
        });
    }
    Ok(Measurement { layers, grads })
}

/// Flatten each layer's weight (row-major), e.g. to keep the initial weights.
pub fn flatten_weights(stack: &LayerStack<'_>) -> Vec<Vec<f64>> {
    stack
        .weights
        .iter()
        .map(|w| {
            let mut v = Vec::with_capacity(w.nrows() * w.ncols());
            for i in 0..w.nrows() {
                for j in 0..w.ncols() {
                    v.push(w[(i, j)]);
                }
            }
            v
        })
        .collect()
}

/// The run.json contract's `summary.layers`: per layer (1-based `layer`) the fields of
/// [`LayerMetrics`], as every `nfa` study and `featlab nfa` write them.
pub fn layers_json(m: &[LayerMetrics]) -> serde_json::Value {
    serde_json::Value::Array(
        m.iter()
            .enumerate()
            .map(|(i, l)| {
                serde_json::json!({"layer": i + 1, "nfm_agop_corr": l.nfm_agop_corr, "alpha_fit": l.alpha_fit, "alpha_fit_corr": l.alpha_fit_corr,
                       "alpha_spectrum": l.alpha_spectrum, "c_nfc": l.c_nfc, "uc_nfc": l.uc_nfc, "rel_change": l.rel_change})
            })
            .collect(),
    )
}
