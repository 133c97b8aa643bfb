//! Speed-limited optimisation (Beaglehole, Mitliagkas & Agarwala 2024, §"increasing the
//! NFA correlation"): minibatch SGD in which the gradient of every weight matrix is
//! normalised to unit Frobenius norm and scaled by a per-layer rate,
//! `W_l ← W_l − η ρ_l r_l ∇_{W_l}L_B / ‖∇_{W_l}L_B‖_F` (other blocks: plain SGD),
//! `t ← t + η`. Giving one layer a larger ρ_l makes its ΔW dominate W(0), so its UC-NFC
//! approaches its (high) C-NFC.

use crate::model::Model;
use crate::rng::Rng;
use crate::train::stepper::{iterate_accessors, Iterate, Minibatches};
use crate::train::{Problem, Stepper};
use crate::{Error, Result};

/// The layer-wise normalised SGD stepper (see module docs).
pub struct LayerNormalizedSgd {
    pub lr: f64,
    pub batch_size: usize,
    /// (block range, ρ_l) for each weight block.
    layers: Vec<(std::ops::Range<usize>, f64)>,
    it: Iterate,
    batches: Minibatches,
    /// Per-parameter factor ρ_l/‖∇_{W_l}L_B‖_F (1 outside weight blocks), reused.
    scale: Vec<f64>,
}

impl LayerNormalizedSgd {
    /// `layer_rates[l]` = ρ_l for the l-th weight matrix of the layered `model`.
    pub fn new(
        model: &dyn Model,
        lr: f64,
        batch_size: usize,
        layer_rates: &[f64],
        params: Vec<f64>,
        rng: Rng,
    ) -> Result<Self> {
        let lm = model.as_layered().ok_or_else(|| {
            Error::config(
                "model.kind",
                "speed-limited optimisation needs a layered model",
            )
        })?;
        let wb = lm.weight_blocks();
        if layer_rates.len() != wb.len() {
            return Err(Error::config(
                "slo.layer_rates",
                format!(
                    "has {} entries but the network has {} weight layers",
                    layer_rates.len(),
                    wb.len()
                ),
            ));
        }
        if let Some(r) = layer_rates.iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
            return Err(Error::config(
                "slo.layer_rates",
                format!("rates must be finite and ≥ 0, got {r}"),
            ));
        }
        if batch_size == 0 {
            return Err(Error::config("slo.batch_size", "must be ≥ 1"));
        }
        let blocks = model.blocks();
        let layers = wb
            .iter()
            .zip(layer_rates)
            .map(|(&b, &r)| (blocks[b].range(), r))
            .collect();
        let n = params.len();
        Ok(LayerNormalizedSgd {
            lr,
            batch_size,
            layers,
            it: Iterate::new(params),
            batches: Minibatches::new(rng),
            scale: vec![1.0; n],
        })
    }
}

impl Stepper for LayerNormalizedSgd {
    iterate_accessors!("slo");
    fn step(&mut self, problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        let n = problem.data.n();
        let b = self.batch_size.min(n);
        let idx = self.batches.next(n, b);
        let it = &mut self.it;
        it.last = problem.loss_grad_batch(&it.params, idx, &mut it.grad);
        for (range, rho) in &self.layers {
            let norm = crate::linalg::norm2(&it.grad[range.clone()]);
            let s = if norm > 0.0 { rho / norm } else { 0.0 };
            self.scale[range.clone()].fill(s);
        }
        for (((p, g), r), s) in it
            .params
            .iter_mut()
            .zip(&it.grad)
            .zip(&problem.lr_mults)
            .zip(&self.scale)
        {
            *p -= self.lr * r * s * g;
        }
        Ok(it.advance(self.lr))
    }
}
