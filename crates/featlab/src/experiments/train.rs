//! The `train` experiment: train any model on any dataset with any method, record the
//! trajectory, and — when a theory applies — compare with it.
//!
//! Built-in comparisons:
//! * **Reference method** (`[reference]`): the same model, data and initialisation trained
//!   with a second method (typically GD at a small learning rate) to check that the
//!   adaptive gradient-flow solver reproduces GD's dynamics at a fraction of the gradient
//!   evaluations.
//! * **Linear-teacher staircase**: for exactly whitened Gaussian inputs, a noiseless linear
//!   teacher `y = Bx` with singular values s_1 > s_2 > …, and a linear student (two-layer
//!   with σ = identity, or deep linear), the loss is `½‖W_eff − B‖²_F` and the plateau
//!   levels from small initialisation are `ℓ_k = ½ Σ_{i>k} s_i²` (Saxe et al. 2014; AGF §3.2,
//!   Kunin et al. 2025). Drop times are the midpoint crossings of consecutive levels.

use super::{param_arrays, Experiment, RunOutput};
use crate::analysis::midpoint_crossings;
use crate::compare::drops::plateau_rows;
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::config::Teacher;
use crate::data::DataConfig;
use crate::figure::{LinePlot, RefLine, Scale, Series};
use crate::model::{Activation, Loss, ModelConfig};
use crate::rng::stream;
use crate::train::{
    self, BlockNormObserver, LossObserver, Method, NeuronNormObserver, Observer, Problem,
    RunContext, TrainConfig, TrainResult,
};
use crate::{Error, NdArray, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Instant;

fn train_name() -> String {
    "train".into()
}

/// A second training method run from the same initialisation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    pub method: Method,
    pub lr: f64,
}

/// Config of the `train` experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainExperimentConfig {
    /// Always `"train"`.
    #[serde(default = "train_name")]
    pub experiment: String,
    /// Run seed: every random stream (data, init, batches) derives from it.
    #[serde(default)]
    pub seed: u64,
    /// Free text shown in the report.
    #[serde(default)]
    pub description: String,
    pub model: ModelConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub loss: Loss,
    pub train: TrainConfig,
    #[serde(default)]
    pub reference: Option<ReferenceConfig>,
    /// Also record the norm of every neuron (`neuron_norm_<i>` columns; two-layer nets
    /// without bias and diagonal nets).
    #[serde(default)]
    pub record_neuron_norms: bool,
}

/// The `train` experiment.
pub struct TrainExperiment;

impl TrainExperimentConfig {
    /// Plateau levels ½Σ_{i>k} s_i² when the linear-teacher staircase theory applies.
    pub fn staircase_levels(&self) -> Option<Vec<f64>> {
        let linear_student = match &self.model {
            ModelConfig::TwoLayer(m) => m.activation == Activation::Linear && !m.bias,
            ModelConfig::DeepLinear(_) => true,
            _ => false,
        };
        match &self.data {
            DataConfig::Gaussian {
                whiten: true,
                teacher: Teacher::Linear {
                    singular_values, ..
                },
                noise,
                ..
            } if *noise == 0.0 && linear_student && self.loss == Loss::Mse => {
                let mut s = singular_values.clone();
                s.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
                Some(
                    (0..=s.len())
                        .map(|k| 0.5 * s[k..].iter().map(|v| v * v).sum::<f64>())
                        .collect(),
                )
            }
            _ => None,
        }
    }
}

impl Experiment for TrainExperiment {
    fn name(&self) -> &'static str {
        "train"
    }
    fn about(&self) -> &'static str {
        "train a model (two-layer, deep linear, diagonal, MLP) with flow/GD/SGD/momentum/Adam and record its trajectory"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let mut cfg: TrainExperimentConfig = from_table(table)?;
        cfg.train.resolve();
        cfg.train.validate()?;
        if let Some(r) = &cfg.reference {
            if !(r.lr.is_finite() && r.lr > 0.0) {
                return Err(Error::config(
                    "reference.lr",
                    format!("must be a finite number > 0, got {}", r.lr),
                ));
            }
            if r.method == Method::Flow {
                return Err(Error::config(
                    "reference.method",
                    "the reference must be a discrete method (gd, momentum, sgd, adam)",
                ));
            }
        }
        to_table(&cfg)
    }

    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: TrainExperimentConfig = from_table(resolved)?;
        let data = cfg.data.build(&mut stream(cfg.seed, "data"))?;
        let (model, init) = cfg
            .model
            .build(data.d(), data.c(), &mut stream(cfg.seed, "init"))?;
        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        out.arrays
            .push(("data/x.npy".into(), NdArray::from_mat(data.x.as_ref())));
        out.arrays
            .push(("data/y.npy".into(), NdArray::from_mat(data.y.as_ref())));
        out.arrays
            .extend(param_arrays(model.as_ref(), &init, "params/init"));

        let run_one = |tc: &TrainConfig,
                       label: &str|
         -> Result<(TrainResult, u64, f64, serde_json::Value)> {
            let mut problem =
                Problem::new(model.as_ref(), &data, cfg.loss, tc.weight_decay, ctx.par);
            let mut observers: Vec<Box<dyn Observer>> = vec![
                Box::new(LossObserver),
                Box::new(BlockNormObserver::new(&problem)),
            ];
            if cfg.record_neuron_norms {
                let obs = NeuronNormObserver::new(&problem).ok_or_else(|| {
                        Error::config(
                            "record_neuron_norms",
                            format!(
                                "the {} model is not a sum of homogeneous neurons (two-layer nets without bias and with a linear/relu/quadratic activation, diagonal nets)",
                                model.name()
                            ),
                        )
                    })?;
                observers.push(Box::new(obs));
            }
            let mut stepper =
                tc.stepper(init.clone(), stream(cfg.seed, &format!("batches-{label}")))?;
            let opts = tc.run_options()?;
            let start = Instant::now();
            let res = train::run(&mut problem, stepper.as_mut(), &mut observers, &opts, ctx)?;
            Ok((
                res,
                problem.grad_evals,
                start.elapsed().as_secs_f64(),
                stepper.stats(),
            ))
        };

        let (res, evals, secs, stats) = run_one(&cfg.train, "main")?;
        out.arrays.extend(param_arrays(
            model.as_ref(),
            &res.final_params,
            "params/final",
        ));
        let t = res.trajectory.column("t").unwrap_or_default();
        let loss = res.trajectory.column("loss").unwrap_or_default();
        let s = &mut out.summary;
        s.insert("model".into(), json!(model.name()));
        s.insert("num_params".into(), json!(model.num_params()));
        s.insert("method".into(), json!(cfg.train.method));
        s.insert("stop_reason".into(), json!(res.stop));
        s.insert("steps".into(), json!(res.steps));
        s.insert("t_final".into(), json!(res.t_final));
        s.insert("grad_evals".into(), json!(evals));
        s.insert("train_seconds".into(), json!(secs));
        s.insert("initial_loss".into(), json!(loss.first()));
        s.insert("final_loss".into(), json!(loss.last()));
        if !stats.is_null() {
            s.insert("integrator".into(), stats);
        }

        let levels = cfg.staircase_levels();
        let mut plot = LinePlot::new("Training loss", "t (gradient-flow time)", "loss")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line(
                format!("loss ({})", cfg.train.method.name()),
                t.clone(),
                loss.clone(),
            ));
        let drops = levels.as_ref().map(|lv| midpoint_crossings(&t, &loss, lv));
        if let Some(lv) = &levels {
            // plateaus of the saddle-to-saddle staircase: ½Σ_{j>k} s_j² (Saxe et al. 2014)
            out.agreement.extend(plateau_rows(
                &t,
                &loss,
                lv,
                |k| format!("mode {}", k + 1),
                0.01,
            ));
        }
        let s = &mut out.summary;
        if let (Some(lv), Some(dr)) = (&levels, &drops) {
            s.insert("levels_theory".into(), json!(lv));
            s.insert("drop_times".into(), json!(dr));
            s.insert(
                "drops_observed".into(),
                json!(dr.iter().filter(|d| d.is_some()).count()),
            );
            for (k, l) in lv.iter().enumerate().skip(1) {
                if *l > 0.0 {
                    plot.ref_lines.push(RefLine {
                        label: format!("ℓ{k} theory"),
                        vertical: false,
                        value: *l,
                    });
                }
            }
        }

        let mut traj = res.trajectory.clone();
        if let Some(r) = &cfg.reference {
            let mut tc = cfg.train.clone();
            tc.method = r.method;
            tc.lr = r.lr;
            tc.momentum = None;
            tc.resolve();
            let (rres, revals, rsecs, _) = run_one(&tc, "reference")?;
            let rt = rres.trajectory.column("t").unwrap_or_default();
            let rl = rres.trajectory.column("loss").unwrap_or_default();
            let label = r.method.name();
            s.insert("reference".into(), json!({"method": r.method, "lr": r.lr, "steps": rres.steps, "grad_evals": revals, "train_seconds": rsecs, "final_loss": rl.last()}));
            s.insert(
                "grad_eval_ratio".into(),
                json!(revals as f64 / evals.max(1) as f64),
            );
            if rl.len() == traj.rows.len() {
                traj.push_column(format!("loss_{label}"), &rl)?;
            }
            plot.series.push(Series::dashed(
                format!("loss ({label}, lr = {})", r.lr),
                rt.clone(),
                rl.clone(),
            ));
            if let (Some(lv), Some(dr)) = (&levels, &drops) {
                let rd = midpoint_crossings(&rt, &rl, lv);
                let rel: Vec<Option<f64>> = dr
                    .iter()
                    .zip(&rd)
                    .map(|(a, b)| match (a, b) {
                        (Some(a), Some(b)) => Some((a - b).abs() / b.abs()),
                        _ => None,
                    })
                    .collect();
                let max_rel = rel.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
                // GD at a small rate follows the flow it discretises: drop times within 1%
                for (k, (a, b)) in dr.iter().zip(&rd).enumerate() {
                    if let Some(a) = a {
                        out.agreement.push(AgreementRow::relative_opt(
                            format!(
                                "drop {} time, gradient flow vs {label} (lr {})",
                                k + 1,
                                r.lr
                            ),
                            *a,
                            *b,
                            0.01,
                        ));
                    }
                }
                let s = &mut out.summary;
                s.insert("drop_times_reference".into(), json!(rd));
                s.insert("drop_time_rel_diff".into(), json!(rel));
                s.insert("max_drop_time_rel_diff".into(), json!(max_rel));
            }
        }
        out.figures.push(plot.figure("loss", "Full-batch training loss; horizontal lines are the theoretical plateau levels when a theory applies."));
        let norm_cols: Vec<String> = traj
            .columns
            .iter()
            .filter(|c| c.starts_with("norm_"))
            .cloned()
            .collect();
        let mut np = LinePlot::new("Parameter norms", "t", "Frobenius norm")
            .scales(Scale::Linear, Scale::Log);
        for c in &norm_cols {
            np.series.push(Series::line(
                c.trim_start_matches("norm_"),
                t.clone(),
                traj.column(c).unwrap_or_default(),
            ));
        }
        out.figures.push(np.figure(
            "norms",
            "Frobenius norm of each parameter block along training.",
        ));
        out.trajectory = traj;
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        Ok(out)
    }
}
