//! Study `counterexample`: a two-layer ReLU network that interpolates its training data
//! (loss ≤ 1e-8) while ρ(W₁ᵀW₁, G₁^α) stays low for every α (Tansley, Massart & Cartis
//! 2025 show nonlinear architectures for which the NFA fails despite a perfect fit; this
//! construction is ours).
//!
//! Mechanism. Inputs carry a constant coordinate, x = (z, 1), z ~ N(0, I_{d−1}). Besides
//! the `live_width` trainable units, `dead_units` units have w_j = v_j − M e_d with
//! |v_jᵀz_i| < M on every training point, so w_jᵀx_i < 0: their ReLU is off on all the
//! data, they receive zero gradient (∂L/∂w_j ∝ Σ_i σ'(w_jᵀx_i)… = 0, same for a_j) and
//! never move. They add Σ_j w_jw_jᵀ ≈ k M² e_de_dᵀ to the NFM W₁ᵀW₁ but nothing to the
//! AGOP G₁ = W₁ᵀK₁W₁ (their rows of K₁ vanish: ∂f/∂h_j = a_j σ'(h_j) = 0 on the data).
//! Fit and AGOP are those of the live network; the NFM is dominated by a spike the
//! predictor never uses. In the language of Beaglehole et al.: the right-singular
//! structure of W₁ includes directions whose left singular vectors have zero PTF energy.

use super::super::{param_arrays, RunOutput};
use super::layers_json;
use super::observer::NfaObserver;
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::Dataset;
use crate::figure::{FigureKind, Heatmap, LinePlot, Scale, Series};
use crate::model::config::TwoLayerConfig;
use crate::model::{Activation, Loss, Model, ModelConfig, Parametrization};
use crate::rng::{normal_vec, stream};
use crate::theory::nfa::measure::flatten_weights;
use crate::theory::nfa::metrics::nfm;
use crate::theory::nfa::{measure, NfaOptions, PsdPower};
use crate::train::{self, LossObserver, Observer, Problem, RunContext, TrainConfig};
use crate::{Error, NdArray, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Config of the `counterexample` study.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CounterexampleStudy {
    pub experiment: String,
    pub study: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    /// Training points n.
    pub n: usize,
    /// Input dimension d (the last coordinate is the constant 1).
    pub d: usize,
    /// Outputs c.
    pub outputs: usize,
    /// Units of the random ReLU teacher.
    pub teacher_width: usize,
    /// Trainable (live) student units.
    pub live_width: usize,
    /// Units that are inactive on all training data.
    pub dead_units: usize,
    /// M: dead units are w_j = v_j − M e_d, v_j ~ N(0, I/d).
    pub dead_scale: f64,
    pub train: TrainConfig,
    #[serde(default)]
    pub nfa: NfaOptions,
}

pub fn resolve(table: &toml::Table) -> Result<toml::Table> {
    let mut cfg: CounterexampleStudy = from_table(table)?;
    cfg.train.resolve();
    cfg.train.validate()?;
    cfg.nfa.validate("nfa")?;
    if cfg.n == 0 || cfg.d < 2 || cfg.outputs == 0 || cfg.live_width == 0 || cfg.teacher_width == 0
    {
        return Err(Error::config(
            "n",
            "need n ≥ 1, d ≥ 2, outputs, teacher_width, live_width ≥ 1",
        ));
    }
    if !(cfg.dead_scale.is_finite() && cfg.dead_scale > 0.0) {
        return Err(Error::config("dead_scale", "must be a finite number > 0"));
    }
    to_table(&cfg)
}

fn dataset(cfg: &CounterexampleStudy) -> Result<Dataset> {
    let (n, d, c, k) = (cfg.n, cfg.d, cfg.outputs, cfg.teacher_width);
    let mut r = stream(cfg.seed, "data");
    let z = normal_vec(&mut r, n * (d - 1), 1.0);
    let x = Mat::from_fn(
        n,
        d,
        |i, j| if j + 1 == d { 1.0 } else { z[i * (d - 1) + j] },
    );
    let u = normal_vec(&mut r, k * (d - 1), 1.0 / ((d - 1) as f64).sqrt());
    let a = normal_vec(&mut r, c * k, 1.0 / (k as f64).sqrt());
    let y = Mat::from_fn(n, c, |i, o| {
        (0..k)
            .map(|h| {
                a[o * k + h]
                    * (0..d - 1)
                        .map(|j| u[h * (d - 1) + j] * x[(i, j)])
                        .sum::<f64>()
                        .max(0.0)
            })
            .sum::<f64>()
    });
    Dataset::new(x, y)
}

fn build(
    cfg: &CounterexampleStudy,
    data: &Dataset,
    dead: usize,
) -> Result<(Box<dyn Model>, Vec<f64>)> {
    let mc = ModelConfig::TwoLayer(TwoLayerConfig {
        width: cfg.live_width + dead,
        activation: Activation::Relu,
        bias: false,
        output_scale: 1.0,
        parametrization: Parametrization::Standard,
        init_scale: 1.0,
        init_std: None,
        multipliers: None,
        lr_layers: None,
    });
    // live units: the same draw with and without dead units
    let (model, mut p) = mc.build(
        data.d(),
        data.c(),
        &mut stream(cfg.seed, &format!("init-{dead}")),
    )?;
    let (d, m) = (data.d(), cfg.live_width + dead);
    let live = ModelConfig::TwoLayer(TwoLayerConfig {
        width: cfg.live_width,
        ..match &mc {
            ModelConfig::TwoLayer(t) => t.clone(),
            _ => unreachable!(),
        }
    });
    let (_, pl) = live.build(d, data.c(), &mut stream(cfg.seed, "init-live"))?;
    let lw = cfg.live_width;
    p[..lw * d].copy_from_slice(&pl[..lw * d]);
    for o in 0..data.c() {
        for h in 0..lw {
            p[m * d + o * m + h] = pl[lw * d + o * lw + h];
        }
    }
    let v = normal_vec(
        &mut stream(cfg.seed, "dead"),
        dead * d,
        1.0 / (d as f64).sqrt(),
    );
    for j in 0..dead {
        for k in 0..d {
            p[(lw + j) * d + k] = if k + 1 == d {
                v[j * d + k] - cfg.dead_scale
            } else {
                v[j * d + k]
            };
        }
        for i in 0..data.n() {
            let h: f64 = (0..d).map(|k| p[(lw + j) * d + k] * data.x[(i, k)]).sum();
            if h >= 0.0 {
                return Err(Error::config("dead_scale", format!("dead unit {j} is active on training point {i} (pre-activation {h:.3}); raise dead_scale")));
            }
        }
    }
    Ok((model, p))
}

/// The construction's claim: the net interpolates, training loss ≤ 1e-8 (docs/nfa.md).
pub const FIT_TOLERANCE: f64 = 1e-8;
/// The NFA holds when ρ ≥ 0.5, i.e. within 0.5 of 1 (the study's acceptance: the
/// counterexample has ρ < 0.5, so its NFA rows do not hold — the finding — while the
/// control's does).
pub const NFA_TOLERANCE: f64 = 0.5;

pub fn run(resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
    let cfg: CounterexampleStudy = from_table(resolved)?;
    let data = dataset(&cfg)?;
    let mut out = RunOutput {
        config: resolved.clone(),
        seed: cfg.seed,
        ..Default::default()
    };
    out.arrays
        .push(("data/x.npy".into(), NdArray::from_mat(data.x.as_ref())));
    out.arrays
        .push(("data/y.npy".into(), NdArray::from_mat(data.y.as_ref())));
    let mut results = Vec::new();
    for dead in [cfg.dead_units, 0] {
        let (model, p0) = build(&cfg, &data, dead)?;
        let mut problem = Problem::new(
            model.as_ref(),
            &data,
            Loss::Mse,
            cfg.train.weight_decay,
            ctx.par,
        );
        let mut obs: Vec<Box<dyn Observer>> = vec![
            Box::new(LossObserver),
            Box::new(NfaObserver::new(
                model.as_ref(),
                &p0,
                cfg.nfa.clone(),
                false,
                false,
                ctx.par,
            )?),
        ];
        let mut st = cfg.train.stepper(p0.clone(), stream(cfg.seed, "batches"))?;
        let res = train::run(
            &mut problem,
            st.as_mut(),
            &mut obs,
            &cfg.train.run_options()?,
            ctx,
        )?;
        let lm = model.as_layered().expect("two-layer is layered");
        let w0 = flatten_weights(&lm.stack(&p0));
        let stack = lm.stack(&res.final_params);
        let m = measure(&stack, &w0, data.x.as_ref(), &cfg.nfa, ctx.par, None)?;
        let f = nfm(stack.weights[0]);
        let g = PsdPower::new(m.grads.agop[0].as_ref())?.pow(cfg.nfa.alpha);
        results.push((model, p0, res, m, f, g));
    }
    let (model, p0, res, m, f, g) = &results[0];
    let (_, _, cres, cm, _, _) = &results[1];
    let loss = res.trajectory.column("loss").unwrap_or_default();
    let closs = cres.trajectory.column("loss").unwrap_or_default();
    let t = res.trajectory.column("t").unwrap_or_default();
    let ct = cres.trajectory.column("t").unwrap_or_default();
    let corr = res.trajectory.column("nfm_agop_corr_1").unwrap_or_default();
    let ccorr = cres
        .trajectory
        .column("nfm_agop_corr_1")
        .unwrap_or_default();
    let l1 = m.layers[0];
    let s = &mut out.summary;
    s.insert("final_loss".into(), json!(loss.last()));
    s.insert("nfa_corr_layer1".into(), json!(l1.nfm_agop_corr));
    s.insert("best_alpha_layer1".into(), json!(l1.alpha_fit));
    s.insert("best_corr_layer1".into(), json!(l1.alpha_fit_corr));
    s.insert(
        "max_corr_over_training".into(),
        json!(super::min_max(&corr).1),
    );
    s.insert("control_final_loss".into(), json!(closs.last()));
    s.insert(
        "control_nfa_corr_layer1".into(),
        json!(cm.layers[0].nfm_agop_corr),
    );
    s.insert(
        "control_best_corr_layer1".into(),
        json!(cm.layers[0].alpha_fit_corr),
    );
    s.insert(
        "pass_fit_le_1e-8".into(),
        json!(loss.last().is_some_and(|l| *l <= 1e-8)),
    );
    s.insert(
        "pass_corr_lt_0_5".into(),
        json!(l1.nfm_agop_corr < 0.5 && l1.alpha_fit_corr < 0.5),
    );
    s.insert("layers".into(), layers_json(&m.layers));
    let a = cfg.nfa.alpha;
    out.agreement = vec![
        AgreementRow::relative_to(
            "final training loss (interpolation; claim ≤ 1e-8, absolute)",
            0.0,
            loss.last().copied().unwrap_or(f64::NAN),
            1.0,
            FIT_TOLERANCE,
        )
        .with_note(format!("{} GD steps", res.steps)),
        AgreementRow::relative(
            format!("with dead units: ρ(W₁ᵀW₁, G₁^{a}) at the end vs the NFA's 1 (counterexample: < 0.5)"),
            1.0,
            l1.nfm_agop_corr,
            NFA_TOLERANCE,
        ),
        AgreementRow::relative(
            "with dead units: best ρ(W₁ᵀW₁, G₁^α) over α vs the NFA's 1 (counterexample: < 0.5)",
            1.0,
            l1.alpha_fit_corr,
            NFA_TOLERANCE,
        ),
        AgreementRow::relative(
            format!("control (live units only): ρ(W₁ᵀW₁, G₁^{a}) at the end vs the NFA's 1"),
            1.0,
            cm.layers[0].nfm_agop_corr,
            NFA_TOLERANCE,
        ),
    ];
    s.insert("alpha".into(), json!(cfg.nfa.alpha));
    s.insert("steps".into(), json!(res.steps));
    out.arrays
        .extend(param_arrays(model.as_ref(), p0, "params/init"));
    out.arrays.extend(param_arrays(
        model.as_ref(),
        &res.final_params,
        "params/final",
    ));
    out.figures.push(
        LinePlot::new("Training loss", "t", "loss")
            .scales(Scale::Log, Scale::Log)
            .with(Series::line("with dead units", t.clone(), loss.clone()))
            .with(Series::dashed(
                "control (live units only)",
                ct.clone(),
                closs.clone(),
            ))
            .figure("loss", "Both networks interpolate the training data."),
    );
    out.figures.push(
        LinePlot::new(format!("ρ(W₁ᵀW₁, G₁^α), α = {}", cfg.nfa.alpha), "t", "correlation")
            .scales(Scale::Log, Scale::Linear)
            .with(Series::line("with dead units", t.clone(), corr.clone()))
            .with(Series::dashed("control", ct.clone(), ccorr.clone()))
            .figure("nfa_corr", "NFA correlation of the first layer along training: low throughout with dead units, high for the control."),
    );
    let d = f.nrows();
    let axis: Vec<f64> = (0..d).map(|i| i as f64).collect();
    for (name, mat, cap) in [
        (
            "nfm",
            f,
            "W₁ᵀW₁ at the end (the spike is the dead units' constant-coordinate weight).",
        ),
        (
            "agop_pow",
            g,
            "G₁^α at the end: the predictor's actual input sensitivity.",
        ),
    ] {
        out.figures.push(crate::figure::Figure {
            name: name.into(),
            caption: cap.into(),
            kind: FigureKind::Heatmap(Heatmap {
                title: name.into(),
                x_label: "input coordinate".into(),
                y_label: "input coordinate".into(),
                z_label: "value".into(),
                x: axis.clone(),
                y: axis.clone(),
                z: (0..d)
                    .map(|i| (0..d).map(|j| mat[(i, j)]).collect())
                    .collect(),
                x_scale: Scale::Linear,
                y_scale: Scale::Linear,
                overlays: vec![],
            }),
        });
    }
    out.trajectory = res.trajectory.clone();
    if !cfg.description.is_empty() {
        out.notes.push(cfg.description.clone());
    }
    Ok(out)
}
