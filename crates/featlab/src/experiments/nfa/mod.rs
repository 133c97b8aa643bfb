//! The `nfa` experiment: Neural Feature Ansatz studies (Radhakrishnan et al. 2024;
//! Beaglehole, Mitliagkas & Agarwala 2024; Tansley, Massart & Cartis 2025).
//!
//! The top-level key `study` selects one of:
//! * `deep_linear` — balanced deep linear nets, `W₁ᵀW₁ = G^{1/L}` throughout training;
//! * `imbalance` — unbalanced init with/without weight decay, imbalance decay rate, across
//!   optimisers and init schemes;
//! * `counterexample` — a ReLU net that interpolates while its NFA correlation stays low;
//! * `alignment` — UC-/C-NFC of a deep ReLU MLP on labelled images, early-time prediction;
//! * `speed_limited` — layer-wise normalised SGD vs SGD, NFC and linear-probe accuracy.
//!
//! Output contract: summary `layers` = per layer `{nfm_agop_corr, alpha_fit, c_nfc,
//! uc_nfc}` at the end of training (of the study's main run), summary `alpha` = the α of
//! `nfm_agop_corr`, final weights `params/final/W1.npy … WL.npy`.

mod alignment;
mod counterexample;
mod deep_linear;
mod imbalance;
pub mod observer;
pub mod trained;

use super::{Experiment, RunOutput};
pub(crate) use crate::theory::nfa::layers_json;
use crate::train::RunContext;
use crate::{Error, Result};

/// The `nfa` experiment kind.
pub struct NfaExperiment;

const STUDIES: [&str; 5] = [
    "deep_linear",
    "imbalance",
    "counterexample",
    "alignment",
    "speed_limited",
];

fn study_of(table: &toml::Table) -> Result<&str> {
    match table.get("study") {
        Some(toml::Value::String(s)) if STUDIES.contains(&s.as_str()) => Ok(s.as_str()),
        Some(v) => Err(Error::config(
            "study",
            format!("unknown study {v}; known: {}", STUDIES.join(", ")),
        )),
        None => Err(Error::config(
            "study",
            format!("missing; set study = one of {}", STUDIES.join(", ")),
        )),
    }
}

impl Experiment for NfaExperiment {
    fn name(&self) -> &'static str {
        "nfa"
    }
    fn about(&self) -> &'static str {
        "Neural Feature Ansatz studies: deep-linear theorems, imbalance + weight decay, counterexample, feature alignment on images, speed-limited optimisation"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        match study_of(table)? {
            "deep_linear" => deep_linear::resolve(table),
            "imbalance" => imbalance::resolve(table),
            "counterexample" => counterexample::resolve(table),
            "alignment" => alignment::resolve_alignment(table),
            _ => alignment::resolve_slo(table),
        }
    }
    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        match study_of(resolved)? {
            "deep_linear" => deep_linear::run(resolved, ctx),
            "imbalance" => imbalance::run(resolved, ctx),
            "counterexample" => counterexample::run(resolved, ctx),
            "alignment" => alignment::run_alignment(resolved, ctx),
            _ => alignment::run_slo(resolved, ctx),
        }
    }
}

/// A one-sided statement `higher ≥ lower` as an agreement row: theory 0, experiment
/// max(0, lower − higher), absolute (scale 1), tolerance 0 — it holds iff the statement does.
pub(crate) fn shortfall_row(
    quantity: String,
    higher: f64,
    lower: f64,
) -> crate::compare::AgreementRow {
    let gap = if higher.is_finite() && lower.is_finite() {
        (lower - higher).max(0.0)
    } else {
        f64::NAN
    };
    crate::compare::AgreementRow::relative_to(quantity, 0.0, gap, 1.0, 0.0)
        .with_note(format!("{higher:.4} vs {lower:.4}"))
}

/// Min and max of the finite values.
pub(crate) fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}
