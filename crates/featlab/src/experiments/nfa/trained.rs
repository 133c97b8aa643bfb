//! The NFA metrics of the researcher's own trained MLP (`featlab nfa --weights …`), as a
//! run output: summary `layers` with the keys every `nfa` study writes (`nfm_agop_corr`,
//! `alpha_fit`, `alpha_fit_corr`, `alpha_spectrum`, `uc_nfc`, `c_nfc`, `rel_change`, plus
//! the layer's `name`, `fan_in`, `fan_out`), the NFM and AGOP of each layer under `nfa/`,
//! a `layers.csv` table and two figures: the correlations by layer and ρ(W_lᵀW_l, G_l^α)
//! against α (Radhakrishnan et al. 2024: the NFA says the maximum sits near α = ½).
//! The metrics are [`TrainedNetwork::measure`], the same code as `featlab.nfa.measure`.

use super::super::{CsvTable, RunOutput};
use crate::figure::{LinePlot, RefLine, Series};
use crate::theory::nfa::metrics::{nfm, PsdPower};
use crate::theory::nfa::{layers_json, NfaOptions, TrainedNetwork};
use crate::{NdArray, Result};
use faer::{Mat, MatRef, Par};
use serde_json::json;

/// Where the network and inputs came from, recorded in run.json's config.
#[derive(Debug, Clone, Default)]
pub struct TrainedSource {
    /// The weight file (`--weights`).
    pub weights: String,
    /// The input file (`--x`).
    pub x: String,
    /// The initial-weight file (`--init`), if any.
    pub init: Option<String>,
}

/// Measure `net` on `x` (initial weights `init` for the C-NFC) and assemble the run output.
pub fn run_trained(
    net: &TrainedNetwork,
    init: Option<&[Mat<f64>]>,
    x: MatRef<'_, f64>,
    opts: &NfaOptions,
    source: &TrainedSource,
    par: Par,
) -> Result<RunOutput> {
    opts.validate("nfa")?;
    let m = net.measure(init, x, opts, par)?;
    let mut out = RunOutput::default();
    let mut layers = layers_json(&m.layers);
    if let Some(arr) = layers.as_array_mut() {
        for (l, v) in arr.iter_mut().enumerate() {
            v["name"] = json!(net.names[l]);
            v["fan_in"] = json!(net.weights[l].ncols());
            v["fan_out"] = json!(net.weights[l].nrows());
            v["bias"] = json!(net.biases[l].is_some());
        }
    }
    let s = &mut out.summary;
    s.insert("layers".into(), layers);
    s.insert("alpha".into(), json!(opts.alpha));
    s.insert("activation".into(), json!(net.activation.name()));
    s.insert("n_samples".into(), json!(opts.rows(x).nrows()));
    s.insert("layer_names".into(), json!(net.names));
    s.insert("init_given".into(), json!(init.is_some()));

    let mut cfg = toml::Table::new();
    cfg.insert("source".into(), "featlab nfa".into());
    cfg.insert("weights".into(), source.weights.clone().into());
    cfg.insert("x".into(), source.x.clone().into());
    if let Some(i) = &source.init {
        cfg.insert("init".into(), i.clone().into());
    }
    cfg.insert("activation".into(), net.activation.name().into());
    cfg.insert(
        "layers".into(),
        toml::Value::Array(net.names.iter().map(|n| n.clone().into()).collect()),
    );
    let opts_toml = toml::Table::try_from(opts)
        .map_err(|e| crate::Error::Numerical(format!("serialising the nfa options: {e}")))?;
    cfg.insert("nfa".into(), toml::Value::Table(opts_toml));
    out.config = cfg;
    out.seed = 0;

    for (l, w) in net.weights.iter().enumerate() {
        out.arrays.push((
            format!("nfa/nfm_{}.npy", l + 1),
            NdArray::from_mat(nfm(w.as_ref()).as_ref()),
        ));
        out.arrays.push((
            format!("nfa/agop_{}.npy", l + 1),
            NdArray::from_mat(m.grads.agop[l].as_ref()),
        ));
    }

    let col = |f: &dyn Fn(&crate::theory::nfa::LayerMetrics) -> f64| -> Vec<f64> {
        m.layers.iter().map(f).collect()
    };
    let layer_no: Vec<f64> = (1..=net.depth()).map(|l| l as f64).collect();
    let names = [
        "nfm_agop_corr",
        "alpha_fit",
        "alpha_fit_corr",
        "alpha_spectrum",
        "uc_nfc",
        "c_nfc",
        "rel_change",
    ];
    let mut values = vec![layer_no.clone()];
    values.push(col(&|l| l.nfm_agop_corr));
    values.push(col(&|l| l.alpha_fit));
    values.push(col(&|l| l.alpha_fit_corr));
    values.push(col(&|l| l.alpha_spectrum));
    values.push(col(&|l| l.uc_nfc));
    values.push(col(&|l| l.c_nfc));
    values.push(col(&|l| l.rel_change));
    let mut columns = vec!["layer".to_string()];
    columns.extend(names.iter().map(|s| s.to_string()));
    out.tables.push(CsvTable {
        name: "layers".into(),
        columns,
        values,
    });

    let mut by_layer = LinePlot::new("NFA correlations by layer", "layer", "correlation")
        .with(Series::line(
            format!("ρ(WᵀW, G^{})", opts.alpha),
            layer_no.clone(),
            col(&|l| l.nfm_agop_corr),
        ))
        .with(Series::line("UC-NFC", layer_no.clone(), col(&|l| l.uc_nfc)));
    if init.is_some() {
        by_layer = by_layer.with(Series::line("C-NFC", layer_no.clone(), col(&|l| l.c_nfc)));
    }
    out.figures.push(by_layer.figure(
        "nfc_by_layer",
        "Per layer: the NFA correlation ρ(W_lᵀW_l, G_l^α), the uncentred NFC ρ(WᵀW, WᵀKW) and (with --init) the centred NFC ρ(ΔWᵀΔW, ΔWᵀKΔW).",
    ));

    let k = 60;
    let alphas: Vec<f64> = (0..=k)
        .map(|i| opts.alpha_min + (opts.alpha_max - opts.alpha_min) * i as f64 / k as f64)
        .collect();
    let mut curve = LinePlot::new("NFA correlation against the exponent", "α", "ρ(WᵀW, G^α)");
    for (l, w) in net.weights.iter().enumerate() {
        let f = nfm(w.as_ref());
        let pp = PsdPower::new(m.grads.agop[l].as_ref())?;
        let c = pp.correlator(f.as_ref(), opts.correlation);
        curve = curve.with(Series::line(
            format!("layer {} ({})", l + 1, net.names[l]),
            alphas.clone(),
            alphas.iter().map(|&a| c.corr(a)).collect(),
        ));
    }
    curve.ref_lines.push(RefLine {
        label: "α = ½ (NFA)".into(),
        vertical: true,
        value: 0.5,
    });
    out.figures.push(curve.figure(
        "nfa_corr_vs_alpha",
        "ρ(W_lᵀW_l, G_l^α) against α for every layer; its maximum is the best-fit exponent alpha_fit.",
    ));

    if init.is_none() {
        out.notes.push(
            "No initial weights given (--init): the centred C-NFC ρ(ΔWᵀΔW, ΔWᵀKΔW) needs ΔW = W − W(0) and is reported as null; rel_change is 0.".into(),
        );
    }
    out.notes.push(format!(
        "Layers used, in order: {}. AGOP over {} input rows (outputs summed), correlation {:?}.",
        net.names
            .iter()
            .enumerate()
            .map(|(l, n)| format!(
                "{} = `{n}` ({}×{})",
                l + 1,
                net.weights[l].nrows(),
                net.weights[l].ncols()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        opts.rows(x).nrows(),
        opts.correlation
    ));
    Ok(out)
}
