//! Which feature an activated neuron carries (AGF, Kunin et al. 2025): the per-round
//! `feature` of the AGF studies and of `featlab.agf.run`, one definition for both.
//!
//! * modular addition (§3.4): the dominant frequency k ≥ 1 of the neuron's (u, v, w), by
//!   the energy per frequency pair E_k(u) + E_k(v) + E_k(w);
//! * attention-only linear transformers (§3.3): the principal component j (1-based) that
//!   the head's key and query both align with, argmax_j |e_jᵀk̄|·|e_jᵀq̄| (k̄, q̄ unit).

use crate::data::modular::pair_energies;
use crate::model::linear_attention::LinearAttention;
use crate::model::two_layer::TwoLayer;
use crate::model::NeuronSum;
use faer::Mat;

/// Per-neuron spectrum of a quadratic net on modular addition (input 2p, output p): the
/// energy per frequency pair of u_i, v_i and w_i together, E_k(u_i) + E_k(v_i) + E_k(w_i).
pub fn modular_neuron_spectrum(model: &TwoLayer, params: &[f64], i: usize) -> Vec<f64> {
    let p = model.c;
    let vals: Vec<f64> = model.neuron_params(i).iter().map(|&j| params[j]).collect();
    let (u, rest) = vals.split_at(p);
    let (v, w) = rest.split_at(p);
    let (eu, ev, ew) = (pair_energies(u), pair_energies(v), pair_energies(w));
    (0..eu.len()).map(|k| eu[k] + ev[k] + ew[k]).collect()
}

/// Dominant frequency k ≥ 1 of a spectrum (0 when there is none).
pub fn dominant_frequency(spec: &[f64]) -> usize {
    (1..spec.len())
        .max_by(|&a, &b| spec[a].total_cmp(&spec[b]))
        .unwrap_or(0)
}

/// The principal component (1-based; columns of `pcs`) that head `h`'s key/query direction
/// aligns with: argmax_j |e_jᵀk̄|·|e_jᵀq̄|.
pub fn attention_head_feature(
    model: &LinearAttention,
    params: &[f64],
    h: usize,
    pcs: &Mat<f64>,
) -> usize {
    let (_, k, q) = model.split(params);
    let d = model.dim;
    let (nk, nq) = (
        (0..d).map(|a| k[(h, a)].powi(2)).sum::<f64>().sqrt(),
        (0..d).map(|a| q[(h, a)].powi(2)).sum::<f64>().sqrt(),
    );
    (0..d)
        .map(|j| {
            let ck: f64 = (0..d).map(|a| pcs[(a, j)] * k[(h, a)]).sum::<f64>() / nk;
            let cq: f64 = (0..d).map(|a| pcs[(a, j)] * q[(h, a)]).sum::<f64>() / nq;
            (ck * cq).abs()
        })
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(j, _)| j + 1)
        .unwrap_or(0)
}
