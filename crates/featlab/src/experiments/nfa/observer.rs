//! [`NfaObserver`]: records the per-layer NFA metrics of [`super::measure`] along
//! training, on any schedule of the runner.

use crate::theory::nfa::measure::{flatten_weights, measure, LayerMetrics, NfaOptions};
use crate::theory::nfa::metrics::{imbalance, nfm, rel_error, PsdPower};
use crate::train::{Observer, Problem};
use crate::{Error, Result};
use faer::Par;

/// Records, for every layer l = 1 … L: `nfm_agop_corr_l`, `alpha_fit_l`, `alpha_spec_l`,
/// `uc_nfc_l`, `c_nfc_l`, `rel_change_l`; optionally the imbalance norms `imbalance_l`
/// (l < L) and, for deep linear nets, `nfa_err` = ‖W₁ᵀW₁ − c·G₁^{1/L}‖_F/‖W₁ᵀW₁‖_F with
/// c = (Π_l m_l²)^{−1/L} (Tansley, Massart & Cartis 2025, Thm. for balanced nets:
/// the error is 0).
pub struct NfaObserver {
    opts: NfaOptions,
    w0: Vec<Vec<f64>>,
    depth: usize,
    imbalance: bool,
    linear_theorem: bool,
    par: Par,
    /// The metrics at the last recorded time.
    pub last: Option<Vec<LayerMetrics>>,
    /// Time of the last record.
    pub last_t: f64,
}

impl NfaObserver {
    /// Observer for `model` (must be layered) with initial parameters `init`.
    /// `imbalance`: add imbalance columns; `linear_theorem`: add `nfa_err`.
    pub fn new(
        model: &dyn crate::model::Model,
        init: &[f64],
        opts: NfaOptions,
        imbalance: bool,
        linear_theorem: bool,
        par: Par,
    ) -> Result<Self> {
        let lm = model.as_layered().ok_or_else(|| {
            Error::config(
                "model.kind",
                format!(
                    "NFA metrics need a layered model (deep_linear, mlp, two_layer), got `{}`",
                    model.name()
                ),
            )
        })?;
        let stack = lm.stack(init);
        Ok(NfaObserver {
            opts,
            w0: flatten_weights(&stack),
            depth: stack.depth(),
            imbalance,
            linear_theorem,
            par,
            last: None,
            last_t: f64::NAN,
        })
    }
}

impl Observer for NfaObserver {
    fn columns(&self) -> Vec<String> {
        let mut c = Vec::new();
        for l in 1..=self.depth {
            for m in [
                "nfm_agop_corr",
                "alpha_fit",
                "alpha_spec",
                "uc_nfc",
                "c_nfc",
                "rel_change",
            ] {
                c.push(format!("{m}_{l}"));
            }
        }
        if self.imbalance {
            for l in 1..self.depth {
                c.push(format!("imbalance_{l}"));
            }
        }
        if self.linear_theorem {
            c.push("nfa_err".into());
        }
        c
    }

    fn observe(&mut self, t: f64, params: &[f64], problem: &mut Problem<'_>) -> Result<Vec<f64>> {
        let lm = problem
            .model
            .as_layered()
            .ok_or_else(|| Error::Shape("NFA observer on a non-layered model".into()))?;
        let stack = lm.stack(params);
        // t → 0⁺ direction of ΔW when the weights have not moved yet
        let moved = stack.weights.iter().zip(&self.w0).any(|(w, w0)| {
            let mut k = 0;
            for i in 0..w.nrows() {
                for j in 0..w.ncols() {
                    if w[(i, j)] != w0[k] {
                        return true;
                    }
                    k += 1;
                }
            }
            false
        });
        let dirs = if moved {
            None
        } else {
            let mut g = vec![0.0; params.len()];
            problem.loss_grad(params, &mut g);
            let blocks = problem.model.blocks();
            Some(
                lm.weight_blocks()
                    .iter()
                    .map(|&b| g[blocks[b].range()].to_vec())
                    .collect::<Vec<_>>(),
            )
        };
        let m = measure(
            &stack,
            &self.w0,
            problem.data.x.as_ref(),
            &self.opts,
            self.par,
            dirs.as_deref(),
        )?;
        let mut row = Vec::new();
        for lmx in &m.layers {
            row.extend([
                lmx.nfm_agop_corr,
                lmx.alpha_fit,
                lmx.alpha_spectrum,
                lmx.uc_nfc,
                lmx.c_nfc,
                lmx.rel_change,
            ]);
        }
        if self.imbalance {
            row.extend(imbalance(&stack.weights));
        }
        if self.linear_theorem {
            let l = self.depth as f64;
            let c = stack
                .mults
                .iter()
                .map(|m| m * m)
                .product::<f64>()
                .powf(-1.0 / l);
            let root = PsdPower::new(m.grads.agop[0].as_ref())?.pow(1.0 / l);
            let scaled = faer::Mat::from_fn(root.nrows(), root.ncols(), |i, j| c * root[(i, j)]);
            row.push(rel_error(nfm(stack.weights[0]).as_ref(), scaled.as_ref()));
        }
        self.last = Some(m.layers);
        self.last_t = t;
        Ok(row)
    }
}
