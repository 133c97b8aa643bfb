//! Study `imbalance`: unbalanced deep linear nets with and without weight decay
//! (Tansley, Massart & Cartis 2025).
//!
//! Theory (our derivation for featlab's convention, objective `L + (λ/2)‖θ‖²`, all layers
//! with the same lr multiplier r): under gradient flow `Ẇ_l = −r(∇_{W_l}L + λW_l)`, and
//! because `W_{l+1}ᵀ∇_{W_{l+1}}L = ∇_{W_l}L W_lᵀ` for any loss of the end-to-end matrix,
//! `D_l = W_{l+1}ᵀW_{l+1} − W_lW_lᵀ` obeys `Ḋ_l = −2rλ D_l`, so
//! `D_l(t) = e^{−2rλt} D_l(0)` exactly (conserved for λ = 0). For GD/SGD with step η the
//! same cancellation gives `D_{k+1} = (1 − ηλ)² D_k + η²(G_{l+1}ᵀG_{l+1} − G_lG_lᵀ)`, i.e.
//! the rate per unit time `−2 ln(1 − ηλ)/η` up to an O(η²) drift. Heavy-ball momentum:
//! the linear (weight-decay) part decays like z₊^{2k}, z₊ the larger root of
//! `z² − (1 + μ − ηλ)z + μ`; the gradient cross terms no longer cancel exactly. Adam:
//! no prediction (its per-coordinate normalisation breaks the conservation law).

use super::super::{param_arrays, CsvTable, RunOutput};
use super::layers_json;
use super::observer::NfaObserver;
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::DataConfig;
use crate::figure::{LinePlot, Scale, Series};
use crate::model::config::{DeepLinearConfig, InitKind};
use crate::model::{Loss, ModelConfig, Parametrization};
use crate::rng::stream;
use crate::theory::nfa::NfaOptions;
use crate::train::{
    self, LossObserver, Method, Observer, Problem, RunContext, TrainConfig, TrainResult,
};
use crate::{Error, NdArray, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One optimiser of the comparison table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    pub method: Method,
    #[serde(default)]
    pub lr: Option<f64>,
    #[serde(default)]
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub momentum: Option<f64>,
}

/// One initialisation scheme of the comparison table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    pub name: String,
    pub init: InitKind,
    pub init_scale: f64,
}

/// Config of the `imbalance` study.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImbalanceStudy {
    pub experiment: String,
    pub study: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    pub depth: usize,
    pub width: usize,
    /// Weight decay λ of the regularised runs.
    pub weight_decay: f64,
    /// Init of the main (flow) runs.
    pub init: InitSpec,
    pub data: DataConfig,
    /// Main runs (its weight_decay is ignored: both 0 and `weight_decay` are run).
    pub train: TrainConfig,
    /// Optimisers of the table (t_max and record taken from `train`).
    #[serde(default)]
    pub methods: Vec<MethodSpec>,
    /// Init schemes of the table.
    #[serde(default)]
    pub inits: Vec<InitSpec>,
    #[serde(default)]
    pub nfa: NfaOptions,
}

pub fn resolve(table: &toml::Table) -> Result<toml::Table> {
    let mut cfg: ImbalanceStudy = from_table(table)?;
    cfg.train.resolve();
    cfg.train.validate()?;
    cfg.nfa.validate("nfa")?;
    if cfg.depth < 2 || cfg.width == 0 {
        return Err(Error::config("depth", "need depth ≥ 2 and width ≥ 1"));
    }
    if !(cfg.weight_decay.is_finite() && cfg.weight_decay > 0.0) {
        return Err(Error::config(
            "weight_decay",
            format!(
                "must be > 0 (the λ of the regularised runs), got {}",
                cfg.weight_decay
            ),
        ));
    }
    for (i, m) in cfg.methods.iter_mut().enumerate() {
        if m.method == Method::Sgd && m.batch_size.is_none() {
            return Err(Error::config(
                format!("methods[{i}].batch_size"),
                "sgd needs a batch_size",
            ));
        }
        if m.method != Method::Flow && m.lr.is_none() {
            return Err(Error::config(
                format!("methods[{i}].lr"),
                "discrete methods need an lr",
            ));
        }
        if m.momentum.is_none() && m.method == Method::Momentum {
            m.momentum = Some(0.9);
        }
    }
    to_table(&cfg)
}

/// Gradient flow: the decay rate 2λ and the conservation at λ = 0 are exact; the flow is
/// integrated at rtol 1e-10, so the fitted rate agrees to ≤ 1e-6 (docs/nfa.md measures 8e-13).
pub const FLOW_TOLERANCE: f64 = 1e-6;
/// Discrete methods: the predicted rate neglects an O(η²) drift of the conservation law
/// (docs/nfa.md); the study's acceptance is 5% (`pass_rate_within_5pct`).
pub const DISCRETE_RATE_TOLERANCE: f64 = 0.05;

/// The tolerance of a decay-rate row for a method.
pub fn rate_tolerance(method: Method) -> f64 {
    if method == Method::Flow {
        FLOW_TOLERANCE
    } else {
        DISCRETE_RATE_TOLERANCE
    }
}

/// Least-squares decay rate −d log v/dt over the points with v > 1e-9·v(0).
pub fn fit_decay_rate(t: &[f64], v: &[f64]) -> f64 {
    let v0 = v.first().copied().unwrap_or(0.0);
    let pts: Vec<(f64, f64)> = t
        .iter()
        .zip(v)
        .filter(|(_, y)| **y > 1e-9 * v0 && y.is_finite())
        .map(|(x, y)| (*x, y.ln()))
        .collect();
    if pts.len() < 3 {
        return f64::NAN;
    }
    let k = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    -sxy / sxx
}

/// Predicted decay rate of ‖D‖ per unit time t (see module docs); NaN for Adam.
pub fn theory_rate(method: Method, lr: f64, lambda: f64, momentum: f64) -> f64 {
    match method {
        Method::Flow => 2.0 * lambda,
        Method::Gd | Method::Sgd if momentum == 0.0 => -2.0 * (1.0 - lr * lambda).ln() / lr,
        Method::Gd | Method::Sgd | Method::Momentum => {
            let b = 1.0 + momentum - lr * lambda;
            let z = 0.5 * (b + (b * b - 4.0 * momentum).max(0.0).sqrt());
            -2.0 * z.ln() / lr
        }
        Method::Adam => f64::NAN,
    }
}

fn total_imbalance(tr: &train::Trajectory, depth: usize) -> Vec<f64> {
    let cols: Vec<Vec<f64>> = (1..depth)
        .map(|l| tr.column(&format!("imbalance_{l}")).unwrap_or_default())
        .collect();
    (0..tr.rows.len())
        .map(|i| cols.iter().map(|c| c[i] * c[i]).sum::<f64>().sqrt())
        .collect()
}

fn method_code(m: Method) -> f64 {
    match m {
        Method::Flow => 0.0,
        Method::Gd => 1.0,
        Method::Sgd => 2.0,
        Method::Momentum => 3.0,
        Method::Adam => 4.0,
    }
}

pub fn run(resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
    let cfg: ImbalanceStudy = from_table(resolved)?;
    let data = cfg.data.build(&mut stream(cfg.seed, "data"))?;
    let mut out = RunOutput {
        config: resolved.clone(),
        seed: cfg.seed,
        ..Default::default()
    };
    out.arrays
        .push(("data/x.npy".into(), NdArray::from_mat(data.x.as_ref())));
    out.arrays
        .push(("data/y.npy".into(), NdArray::from_mat(data.y.as_ref())));
    let alpha = 1.0 / cfg.depth as f64;
    let run_one = |init: &InitSpec,
                   tc: &TrainConfig,
                   tag: &str|
     -> Result<(TrainResult, Box<dyn crate::model::Model>, Vec<f64>)> {
        let mc = ModelConfig::DeepLinear(DeepLinearConfig {
            hidden: vec![cfg.width; cfg.depth - 1],
            output_scale: 1.0,
            parametrization: Parametrization::Standard,
            init_scale: init.init_scale,
            init: init.init,
            init_std: None,
            multipliers: None,
            lr_layers: None,
        });
        let (model, p0) = mc.build(
            data.d(),
            data.c(),
            &mut stream(cfg.seed, &format!("init-{}", init.name)),
        )?;
        let mut opts = cfg.nfa.clone();
        opts.alpha = alpha;
        let mut problem = Problem::new(model.as_ref(), &data, Loss::Mse, tc.weight_decay, ctx.par);
        let mut obs: Vec<Box<dyn Observer>> = vec![
            Box::new(LossObserver),
            Box::new(NfaObserver::new(
                model.as_ref(),
                &p0,
                opts,
                true,
                true,
                ctx.par,
            )?),
        ];
        let mut st = tc.stepper(p0.clone(), stream(cfg.seed, &format!("batches-{tag}")))?;
        let res = train::run(&mut problem, st.as_mut(), &mut obs, &tc.run_options()?, ctx)?;
        Ok((res, model, p0))
    };
    // main pair: flow (or the configured method) without and with weight decay
    let mut tc0 = cfg.train.clone();
    tc0.weight_decay = 0.0;
    let mut tc1 = cfg.train.clone();
    tc1.weight_decay = cfg.weight_decay;
    let (r0, _, _) = run_one(&cfg.init, &tc0, "main-nowd")?;
    let (r1, model, p0) = run_one(&cfg.init, &tc1, "main-wd")?;
    let t = r1.trajectory.column("t").unwrap_or_default();
    let t0 = r0.trajectory.column("t").unwrap_or_default();
    let imb0 = total_imbalance(&r0.trajectory, cfg.depth);
    let imb1 = total_imbalance(&r1.trajectory, cfg.depth);
    let mom = tc1.momentum.unwrap_or(0.0);
    let rate_theory = theory_rate(tc1.method, tc1.lr, cfg.weight_decay, mom);
    let rate_fit = fit_decay_rate(&t, &imb1);
    let rate_rel = (rate_fit - rate_theory).abs() / rate_theory;
    let drift0 = imb0.iter().map(|v| (v - imb0[0]).abs()).fold(0.0, f64::max) / imb0[0];
    let err0 = r0.trajectory.column("nfa_err").unwrap_or_default();
    let err1 = r1.trajectory.column("nfa_err").unwrap_or_default();
    out.agreement.push(
        AgreementRow::relative(
            format!(
                "imbalance decay rate of ‖D‖, {} with λ = {} (theory: 2λ for flow)",
                tc1.method.name(),
                cfg.weight_decay
            ),
            rate_theory,
            rate_fit,
            rate_tolerance(tc1.method),
        )
        .with_note(format!("init {}", cfg.init.name)),
    );
    if tc0.method == Method::Flow {
        out.agreement.push(AgreementRow::relative_to(
            "imbalance without weight decay: max relative drift (theory: conserved)",
            0.0,
            drift0,
            1.0,
            FLOW_TOLERANCE,
        ));
    }
    let s = &mut out.summary;
    s.insert("weight_decay".into(), json!(cfg.weight_decay));
    s.insert("decay_rate_theory".into(), json!(rate_theory));
    s.insert("decay_rate_fit".into(), json!(rate_fit));
    s.insert("decay_rate_rel_err".into(), json!(rate_rel));
    s.insert("pass_rate_within_5pct".into(), json!(rate_rel <= 0.05));
    s.insert("imbalance_initial".into(), json!(imb1[0]));
    s.insert("imbalance_final_with_wd".into(), json!(imb1.last()));
    s.insert("imbalance_final_without_wd".into(), json!(imb0.last()));
    s.insert("imbalance_max_rel_drift_without_wd".into(), json!(drift0));
    s.insert("nfa_err_final_with_wd".into(), json!(err1.last()));
    s.insert("nfa_err_final_without_wd".into(), json!(err0.last()));
    s.insert("alpha".into(), json!(alpha));
    // contract: final per-layer metrics of the weight-decay run
    let lm = model.as_layered().expect("layered");
    let w0 = crate::theory::nfa::measure::flatten_weights(&lm.stack(&p0));
    let mut o = cfg.nfa.clone();
    o.alpha = alpha;
    let m = crate::theory::nfa::measure(
        &lm.stack(&r1.final_params),
        &w0,
        data.x.as_ref(),
        &o,
        ctx.par,
        None,
    )?;
    s.insert("layers".into(), layers_json(&m.layers));
    out.arrays
        .extend(param_arrays(model.as_ref(), &p0, "params/init"));
    out.arrays.extend(param_arrays(
        model.as_ref(),
        &r1.final_params,
        "params/final",
    ));

    let th: Vec<f64> = t
        .iter()
        .map(|x| imb1[0] * (-rate_theory * x).exp())
        .collect();
    out.figures.push(
        LinePlot::new("Imbalance ‖(D_l)_l‖_F", "t", "imbalance")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line("λ = 0", t0.clone(), imb0.clone()))
            .with(Series::line(format!("λ = {}", cfg.weight_decay), t.clone(), imb1.clone()))
            .with(Series::dashed("theory e^{−2λt}‖D(0)‖", t.clone(), th.clone()))
            .figure("imbalance", "Imbalance norm: conserved without weight decay, decaying at the predicted exponential rate with it."),
    );
    out.figures.push(
        LinePlot::new(
            "Relative NFA error ‖W₁ᵀW₁ − cG^{1/L}‖/‖W₁ᵀW₁‖",
            "t",
            "error",
        )
        .scales(Scale::Linear, Scale::Log)
        .with(Series::line("λ = 0", t0.clone(), err0.clone()))
        .with(Series::line(
            format!("λ = {}", cfg.weight_decay),
            t.clone(),
            err1.clone(),
        ))
        .figure(
            "nfa_error",
            "The NFA error goes to zero only with weight decay.",
        ),
    );
    let mut traj = r1.trajectory.clone();
    traj.push_column("imbalance_theory", &th)?;
    if r0.trajectory.rows.len() == traj.rows.len() {
        traj.push_column("imbalance_nowd", &imb0)?;
        traj.push_column("nfa_err_nowd", &err0)?;
    }
    out.trajectory = traj;

    // table: methods × inits × {0, λ}
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut legend = Vec::new();
    let mut table_json = Vec::new();
    for (ii, init) in cfg.inits.iter().enumerate() {
        legend.push(format!(
            "init_id {ii} = {} ({:?}, scale {})",
            init.name, init.init, init.init_scale
        ));
        for ms in std::iter::once(MethodSpec {
            method: cfg.train.method,
            lr: Some(cfg.train.lr),
            batch_size: cfg.train.batch_size,
            momentum: cfg.train.momentum,
        })
        .chain(cfg.methods.iter().cloned())
        {
            for lambda in [0.0, cfg.weight_decay] {
                let mut tc = cfg.train.clone();
                tc.method = ms.method;
                if let Some(lr) = ms.lr {
                    tc.lr = lr;
                }
                tc.batch_size = ms.batch_size;
                tc.momentum = ms.momentum;
                tc.resolve();
                tc.weight_decay = lambda;
                let (r, _, _) =
                    run_one(init, &tc, &format!("table-{ii}-{:?}-{lambda}", ms.method))?;
                let tt = r.trajectory.column("t").unwrap_or_default();
                let im = total_imbalance(&r.trajectory, cfg.depth);
                let err = r.trajectory.column("nfa_err").unwrap_or_default();
                let corr = r.trajectory.column("nfm_agop_corr_1").unwrap_or_default();
                let loss = r.trajectory.column("loss").unwrap_or_default();
                let mu = tc.momentum.unwrap_or(0.0);
                let (fit, th) = if lambda > 0.0 && im[0] > 1e-10 {
                    (
                        fit_decay_rate(&tt, &im),
                        theory_rate(
                            tc.method,
                            tc.lr,
                            lambda,
                            if tc.method == Method::Momentum || tc.method == Method::Sgd {
                                mu
                            } else {
                                0.0
                            },
                        ),
                    )
                } else {
                    (f64::NAN, if lambda > 0.0 { f64::NAN } else { 0.0 })
                };
                let row = vec![
                    ii as f64,
                    method_code(tc.method),
                    tc.lr,
                    lambda,
                    im[0],
                    *im.last().unwrap(),
                    fit,
                    th,
                    *err.first().unwrap(),
                    *err.last().unwrap(),
                    *corr.last().unwrap(),
                    *loss.last().unwrap(),
                ];
                if th.is_finite() && th > 0.0 {
                    out.agreement.push(AgreementRow::relative(
                        format!(
                            "table: imbalance decay rate, {} init, {} lr {} with λ = {lambda}",
                            init.name,
                            tc.method.name(),
                            tc.lr
                        ),
                        th,
                        fit,
                        rate_tolerance(tc.method),
                    ));
                }
                table_json.push(json!({"init": init.name, "method": tc.method, "lr": tc.lr, "weight_decay": lambda, "imbalance_initial": im[0], "imbalance_final": im.last(),
                    "decay_rate_fit": fit, "decay_rate_theory": th, "nfa_err_initial": err.first(), "nfa_err_final": err.last(), "nfa_corr_final": corr.last(), "final_loss": loss.last()}));
                rows.push(row);
            }
        }
    }
    if !rows.is_empty() {
        let cols = [
            "init_id",
            "method_id",
            "lr",
            "weight_decay",
            "imbalance_initial",
            "imbalance_final",
            "decay_rate_fit",
            "decay_rate_theory",
            "nfa_err_initial",
            "nfa_err_final",
            "nfa_corr_final",
            "loss_final",
        ];
        out.tables.push(CsvTable {
            name: "imbalance_table".into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
            values: (0..cols.len())
                .map(|j| rows.iter().map(|r| r[j]).collect())
                .collect(),
        });
        out.summary.insert("table".into(), json!(table_json));
        out.notes.push(format!("imbalance_table.csv codes: method_id 0 = flow, 1 = gd, 2 = sgd, 3 = momentum, 4 = adam; {}.", legend.join("; ")));
    }
    if rate_rel > 0.05 {
        out.notes.push(format!("DISAGREEMENT: fitted imbalance decay rate {rate_fit:.5} differs from theory {rate_theory:.5} by {:.1}%.", 100.0 * rate_rel));
    }
    if !cfg.description.is_empty() {
        out.notes.push(cfg.description.clone());
    }
    Ok(out)
}
