//! The `rfm` experiment: Recursive Feature Machine (Radhakrishnan et al., Science 2024) on
//! labelled data ([`crate::theory::nfa::rfm`]), optionally compared with the first-layer
//! NFM and AGOP of an MLP trained on the same data (the NFA predicts `W₁ᵀW₁ ∝ G₁^{1/2}`,
//! and RFM's M is an AGOP, so `ρ(M^{1/2}, W₁ᵀW₁)` is the comparison the NFA suggests).

use super::nfa::shortfall_row;
use super::{param_arrays, CsvTable, Experiment, RunOutput};
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::labelled::LabelledDataConfig;
use crate::figure::{Figure, FigureKind, Heatmap, LinePlot, Scale, Series};
use crate::model::config::MlpConfig;
use crate::model::{Loss, ModelConfig};
use crate::rng::stream;
use crate::theory::nfa::metrics::{correlation, nfm};
use crate::theory::nfa::rfm::{fit, RfmConfig};
use crate::theory::nfa::{layer_gradients, probe, NfaOptions, PsdPower};
use crate::train::{self, LossObserver, Observer, Problem, RunContext, TrainConfig};
use crate::{NdArray, Result};
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};
use serde_json::json;

fn rfm_name() -> String {
    "rfm".into()
}

/// A network trained on the same data for comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub model: MlpConfig,
    pub train: TrainConfig,
}

/// Config of the `rfm` experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RfmExperimentConfig {
    #[serde(default = "rfm_name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    pub data: LabelledDataConfig,
    #[serde(default)]
    pub rfm: RfmConfig,
    #[serde(default)]
    pub network: Option<NetworkConfig>,
    #[serde(default)]
    pub nfa: NfaOptions,
}

/// The `rfm` experiment kind.
pub struct RfmExperiment;

/// The NFA is taken to hold when ρ ≥ 0.5, i.e. within 0.5 of 1 (the threshold of the
/// `nfa-counterexample` study; docs/nfa.md).
pub const NFA_TOLERANCE: f64 = 0.5;

fn heatmap(name: &str, title: &str, m: MatRef<'_, f64>, caption: &str) -> Figure {
    let d = m.nrows();
    let axis: Vec<f64> = (0..d).map(|i| i as f64).collect();
    Figure {
        name: name.into(),
        caption: caption.into(),
        kind: FigureKind::Heatmap(Heatmap {
            title: title.into(),
            x_label: "input coordinate".into(),
            y_label: "input coordinate".into(),
            z_label: "value".into(),
            x: axis.clone(),
            y: axis,
            z: (0..d)
                .map(|i| (0..d).map(|j| m[(i, j)]).collect())
                .collect(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            overlays: vec![],
        }),
    }
}

impl Experiment for RfmExperiment {
    fn name(&self) -> &'static str {
        "rfm"
    }
    fn about(&self) -> &'static str {
        "Recursive Feature Machine (Mahalanobis Laplace/Gaussian kernel ridge regression with AGOP updates), compared with a trained MLP's NFM"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let mut cfg: RfmExperimentConfig = from_table(table)?;
        cfg.rfm.validate()?;
        cfg.nfa.validate("nfa")?;
        if let Some(n) = cfg.network.as_mut() {
            n.train.resolve();
            n.train.validate()?;
        }
        to_table(&cfg)
    }
    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: RfmExperimentConfig = from_table(resolved)?;
        let lab = cfg.data.build(cfg.seed)?;
        let (tr, te) = (&lab.train, &lab.test);
        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        out.arrays
            .push(("data/x.npy".into(), NdArray::from_mat(tr.x.as_ref())));
        out.arrays
            .push(("data/y.npy".into(), NdArray::from_mat(tr.y.as_ref())));
        let start = std::time::Instant::now();
        let (rfm, hist) = fit(
            tr.x.as_ref(),
            tr.y.as_ref(),
            te.x.as_ref(),
            te.y.as_ref(),
            &lab.test_labels,
            &cfg.rfm,
            ctx.par,
        )?;
        let secs = start.elapsed().as_secs_f64();
        out.arrays
            .push(("rfm/M.npy".into(), NdArray::from_mat(rfm.m.as_ref())));
        let it: Vec<f64> = hist.iter().map(|h| h.iter as f64).collect();
        let cols = ["iter", "train_mse", "test_mse", "test_acc"];
        let vals = vec![
            it.clone(),
            hist.iter().map(|h| h.train_mse).collect(),
            hist.iter().map(|h| h.test_mse).collect(),
            hist.iter().map(|h| h.test_acc).collect(),
        ];
        out.tables.push(CsvTable {
            name: "rfm_history".into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
            values: vals.clone(),
        });
        if let (Some(h0), Some(h1)) = (hist.first(), hist.last()) {
            out.agreement = vec![
                AgreementRow::relative_to(
                    format!("RFM test MSE after {} AGOP updates − with M = I, if > 0 (Radhakrishnan et al.: AGOP updates improve the kernel)", h1.iter),
                    0.0,
                    (h1.test_mse - h0.test_mse).max(0.0),
                    1.0,
                    0.0,
                )
                .with_note(format!("{:.4} vs {:.4}", h1.test_mse, h0.test_mse)),
                shortfall_row(
                    format!("RFM test accuracy with M = I − after {} AGOP updates, if > 0 (Radhakrishnan et al.: AGOP updates improve the kernel)", h1.iter),
                    h1.test_acc,
                    h0.test_acc,
                ),
            ];
        }
        let s = &mut out.summary;
        s.insert("rfm_history".into(), json!(hist));
        s.insert("rfm_seconds".into(), json!(secs));
        s.insert(
            "rfm_test_accuracy".into(),
            json!(hist.last().map(|h| h.test_acc)),
        );
        s.insert(
            "kernel_test_accuracy_m_identity".into(),
            json!(hist.first().map(|h| h.test_acc)),
        );
        out.figures.push(
            LinePlot::new(
                "RFM test accuracy per iteration",
                "iteration (0 = M = I)",
                "accuracy",
            )
            .with(Series::line("test accuracy", it.clone(), vals[3].clone()))
            .figure("rfm_accuracy", "Held-out accuracy after each AGOP update."),
        );
        out.figures.push(
            LinePlot::new("RFM mean squared error", "iteration", "MSE")
                .scales(Scale::Linear, Scale::Log)
                .with(Series::line("train", it.clone(), vals[1].clone()))
                .with(Series::line("test", it, vals[2].clone()))
                .figure("rfm_mse", "Train/test MSE after each refit."),
        );
        out.figures.push(heatmap(
            "rfm_m",
            "RFM feature matrix M",
            rfm.m.as_ref(),
            "The final Mahalanobis matrix M (an AGOP).",
        ));
        out.trajectory = crate::train::Trajectory {
            columns: vec!["t".into(), "loss".into()],
            rows: hist
                .iter()
                .map(|h| vec![h.iter as f64, h.train_mse])
                .collect(),
        };
        if let Some(net) = &cfg.network {
            let (model, init) = ModelConfig::Mlp(net.model.clone()).build(
                tr.d(),
                tr.c(),
                &mut stream(cfg.seed, "init"),
            )?;
            let mut problem = Problem::new(
                model.as_ref(),
                tr,
                Loss::Mse,
                net.train.weight_decay,
                ctx.par,
            );
            let mut obs: Vec<Box<dyn Observer>> = vec![Box::new(LossObserver)];
            let mut st = net
                .train
                .stepper(init.clone(), stream(cfg.seed, "batches"))?;
            let res = train::run(
                &mut problem,
                st.as_mut(),
                &mut obs,
                &net.train.run_options()?,
                ctx,
            )?;
            out.arrays.extend(param_arrays(
                model.as_ref(),
                &res.final_params,
                "params/final",
            ));
            let lm = model.as_layered().expect("mlp is layered");
            let stack = lm.stack(&res.final_params);
            let f = nfm(stack.weights[0]);
            let g = layer_gradients(&stack, cfg.nfa.rows(tr.x.as_ref()), &cfg.nfa.agop(ctx.par))?;
            let k = cfg.nfa.correlation;
            let msqrt = PsdPower::new(rfm.m.as_ref())?.pow(0.5);
            let gsqrt = PsdPower::new(g.agop[0].as_ref())?.pow(0.5);
            let acc = probe::accuracy(
                model.predict(&res.final_params, te.x.as_ref()).as_ref(),
                &lab.test_labels,
            );
            let c = |a: &Mat<f64>, b: &Mat<f64>| correlation(a.as_ref(), b.as_ref(), k);
            out.agreement.extend([
                AgreementRow::relative(
                    "network: ρ(W₁ᵀW₁, G₁^{1/2}) vs the NFA's 1",
                    1.0,
                    c(&f, &gsqrt),
                    NFA_TOLERANCE,
                ),
                AgreementRow::relative(
                    "RFM M^{1/2} vs network W₁ᵀW₁: ρ vs 1 (NFA: the NFM is the AGOP^{1/2})",
                    1.0,
                    c(&msqrt, &f),
                    NFA_TOLERANCE,
                ),
                AgreementRow::relative(
                    "RFM M vs network AGOP G₁: ρ vs 1 (both are AGOPs of a predictor of the same data)",
                    1.0,
                    c(&rfm.m, &g.agop[0]),
                    NFA_TOLERANCE,
                ),
            ]);
            out.summary.insert(
                "network_comparison".into(),
                json!({"corr_M_nfm": c(&rfm.m, &f), "corr_sqrtM_nfm": c(&msqrt, &f), "corr_M_net_agop": c(&rfm.m, &g.agop[0]),
                       "corr_net_nfm_sqrt_agop": c(&f, &gsqrt), "network_test_accuracy": acc,
                       "network_final_loss": res.trajectory.column("loss").and_then(|l| l.last().copied()), "correlation": k}),
            );
            out.figures.push(heatmap(
                "net_nfm",
                "Network first-layer NFM W₁ᵀW₁",
                f.as_ref(),
                "The trained MLP's first-layer neural feature matrix.",
            ));
        }
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        Ok(out)
    }
}
