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

use super::study::{summary_map, Study, StudyOutputs};
use super::{param_arrays, RunOutput};
use crate::analysis::midpoint_crossings;
use crate::compare::drops::plateau_rows;
use crate::compare::AgreementRow;
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

/// One training run of the `train` experiment: the result, gradient evaluations, wall
/// seconds and the stepper's statistics.
pub struct TrainRun {
    pub result: TrainResult,
    pub grad_evals: u64,
    pub seconds: f64,
    pub stats: serde_json::Value,
}

/// What the `train` experiment measured: the setup, the main run and the optional
/// reference run from the same initialisation.
pub struct TrainSimulation {
    data: crate::data::Dataset,
    model: Box<dyn crate::model::Model>,
    init: Vec<f64>,
    main: TrainRun,
    reference: Option<TrainRun>,
}

/// What theory predicts for a `train` run: the linear-teacher staircase levels, when they
/// apply ([`TrainExperimentConfig::staircase_levels`]).
pub struct TrainPrediction {
    levels: Option<Vec<f64>>,
}

/// run.json `summary` of `train` (besides `agreement`).
#[derive(Serialize)]
struct TrainSummary {
    model: String,
    num_params: usize,
    method: Method,
    stop_reason: crate::train::StopReason,
    steps: u64,
    t_final: f64,
    grad_evals: u64,
    train_seconds: f64,
    initial_loss: Option<f64>,
    final_loss: Option<f64>,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    integrator: serde_json::Value,
    #[serde(flatten)]
    staircase: Option<StaircaseSummary>,
    #[serde(flatten)]
    reference: Option<ReferenceSummary>,
}

/// The staircase fields of [`TrainSummary`] (when the theory applies).
#[derive(Serialize)]
struct StaircaseSummary {
    levels_theory: Vec<f64>,
    drop_times: Vec<Option<f64>>,
    drops_observed: usize,
}

/// The reference-run fields of [`TrainSummary`].
#[derive(Serialize)]
struct ReferenceSummary {
    reference: serde_json::Value,
    grad_eval_ratio: f64,
    #[serde(flatten)]
    drops: Option<ReferenceDrops>,
}

/// Drop times of the reference run and their relative differences from the main run's.
#[derive(Serialize)]
struct ReferenceDrops {
    drop_times_reference: Vec<Option<f64>>,
    drop_time_rel_diff: Vec<Option<f64>>,
    max_drop_time_rel_diff: f64,
}

fn column(run: &TrainRun, name: &str) -> Vec<f64> {
    run.result.trajectory.column(name).unwrap_or_default()
}

impl TrainSimulation {
    /// Midpoint crossing times of `levels` in the main run and in the reference run.
    fn drop_times(&self, levels: &[f64]) -> (Vec<Option<f64>>, Option<Vec<Option<f64>>>) {
        let of = |r: &TrainRun| midpoint_crossings(&column(r, "t"), &column(r, "loss"), levels);
        (of(&self.main), self.reference.as_ref().map(of))
    }
}

/// |a − b|/|b| per drop present in both.
fn drop_rel_diff(main: &[Option<f64>], reference: &[Option<f64>]) -> Vec<Option<f64>> {
    main.iter()
        .zip(reference)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => Some((a - b).abs() / b.abs()),
            _ => None,
        })
        .collect()
}

impl Study for TrainExperiment {
    type Config = TrainExperimentConfig;
    type Simulation = TrainSimulation;
    type Prediction = TrainPrediction;
    const NAME: &'static str = "train";
    const ABOUT: &'static str = "train a model (two-layer, deep linear, diagonal, MLP) with flow/GD/SGD/momentum/Adam and record its trajectory";

    fn resolve(&self, cfg: &mut TrainExperimentConfig) -> Result<()> {
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
        Ok(())
    }

    fn simulate(
        &self,
        cfg: &TrainExperimentConfig,
        ctx: &RunContext<'_>,
    ) -> Result<TrainSimulation> {
        let data = cfg.data.build(&mut stream(cfg.seed, "data"))?;
        let (model, init) = cfg
            .model
            .build(data.d(), data.c(), &mut stream(cfg.seed, "init"))?;
        let run_one = |tc: &TrainConfig, label: &str| -> Result<TrainRun> {
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
            let result = train::run(&mut problem, stepper.as_mut(), &mut observers, &opts, ctx)?;
            Ok(TrainRun {
                result,
                grad_evals: problem.grad_evals,
                seconds: start.elapsed().as_secs_f64(),
                stats: stepper.stats(),
            })
        };
        let main = run_one(&cfg.train, "main")?;
        let reference = match &cfg.reference {
            Some(r) => {
                let mut tc = cfg.train.clone();
                tc.method = r.method;
                tc.lr = r.lr;
                tc.momentum = None;
                tc.resolve();
                Some(run_one(&tc, "reference")?)
            }
            None => None,
        };
        Ok(TrainSimulation {
            data,
            model,
            init,
            main,
            reference,
        })
    }

    fn predict(
        &self,
        cfg: &TrainExperimentConfig,
        _sim: &TrainSimulation,
        _ctx: &RunContext<'_>,
    ) -> Result<TrainPrediction> {
        Ok(TrainPrediction {
            levels: cfg.staircase_levels(),
        })
    }

    fn compare(
        &self,
        cfg: &TrainExperimentConfig,
        sim: &TrainSimulation,
        pred: &TrainPrediction,
    ) -> Vec<AgreementRow> {
        let Some(lv) = &pred.levels else {
            return Vec::new();
        };
        // plateaus of the saddle-to-saddle staircase: ½Σ_{j>k} s_j² (Saxe et al. 2014)
        let mut rows = plateau_rows(
            &column(&sim.main, "t"),
            &column(&sim.main, "loss"),
            lv,
            |k| format!("mode {}", k + 1),
            0.01,
        );
        if let (Some(r), (dr, Some(rd))) = (&cfg.reference, sim.drop_times(lv)) {
            // GD at a small rate follows the flow it discretises: drop times within 1%
            for (k, (a, b)) in dr.iter().zip(&rd).enumerate() {
                if let Some(a) = a {
                    rows.push(AgreementRow::relative_opt(
                        format!(
                            "drop {} time, gradient flow vs {} (lr {})",
                            k + 1,
                            r.method.name(),
                            r.lr
                        ),
                        *a,
                        *b,
                        0.01,
                    ));
                }
            }
        }
        rows
    }

    fn outputs(
        &self,
        cfg: &TrainExperimentConfig,
        sim: TrainSimulation,
        pred: TrainPrediction,
    ) -> Result<StudyOutputs> {
        let mut out = RunOutput {
            seed: cfg.seed,
            ..Default::default()
        };
        let model = sim.model.as_ref();
        out.arrays = vec![
            ("data/x.npy".into(), NdArray::from_mat(sim.data.x.as_ref())),
            ("data/y.npy".into(), NdArray::from_mat(sim.data.y.as_ref())),
        ];
        out.arrays
            .extend(param_arrays(model, &sim.init, "params/init"));
        out.arrays.extend(param_arrays(
            model,
            &sim.main.result.final_params,
            "params/final",
        ));
        out.summary = summary_map(&train_summary(cfg, &sim, &pred))?;

        let t = column(&sim.main, "t");
        let loss = column(&sim.main, "loss");
        let mut plot = LinePlot::new("Training loss", "t (gradient-flow time)", "loss")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line(
                format!("loss ({})", cfg.train.method.name()),
                t.clone(),
                loss,
            ));
        for (k, l) in pred.levels.iter().flatten().enumerate().skip(1) {
            if *l > 0.0 {
                plot.ref_lines.push(RefLine {
                    label: format!("ℓ{k} theory"),
                    vertical: false,
                    value: *l,
                });
            }
        }
        let mut traj = sim.main.result.trajectory.clone();
        if let (Some(r), Some(rr)) = (&cfg.reference, &sim.reference) {
            let label = r.method.name();
            let rl = column(rr, "loss");
            if rl.len() == traj.rows.len() {
                traj.push_column(format!("loss_{label}"), &rl)?;
            }
            plot.series.push(Series::dashed(
                format!("loss ({label}, lr = {})", r.lr),
                column(rr, "t"),
                rl,
            ));
        }
        out.figures.push(plot.figure("loss", "Full-batch training loss; horizontal lines are the theoretical plateau levels when a theory applies."));
        let mut np = LinePlot::new("Parameter norms", "t", "Frobenius norm")
            .scales(Scale::Linear, Scale::Log);
        for c in traj.columns.iter().filter(|c| c.starts_with("norm_")) {
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

/// The typed summary of a `train` run.
fn train_summary(
    cfg: &TrainExperimentConfig,
    sim: &TrainSimulation,
    pred: &TrainPrediction,
) -> TrainSummary {
    let main = &sim.main;
    let loss = column(main, "loss");
    let drops = pred.levels.as_ref().map(|lv| (lv, sim.drop_times(lv)));
    let staircase = drops.as_ref().map(|(lv, (dr, _))| StaircaseSummary {
        levels_theory: lv.to_vec(),
        drop_times: dr.clone(),
        drops_observed: dr.iter().filter(|d| d.is_some()).count(),
    });
    let reference = match (&cfg.reference, &sim.reference) {
        (Some(r), Some(rr)) => Some(ReferenceSummary {
            reference: json!({"method": r.method, "lr": r.lr, "steps": rr.result.steps, "grad_evals": rr.grad_evals, "train_seconds": rr.seconds, "final_loss": column(rr, "loss").last()}),
            grad_eval_ratio: rr.grad_evals as f64 / main.grad_evals.max(1) as f64,
            drops: drops.as_ref().and_then(|(_, (dr, rd))| {
                let rd = rd.clone()?;
                let rel = drop_rel_diff(dr, &rd);
                let max_rel = rel.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
                Some(ReferenceDrops {
                    drop_times_reference: rd,
                    drop_time_rel_diff: rel,
                    max_drop_time_rel_diff: max_rel,
                })
            }),
        }),
        _ => None,
    };
    TrainSummary {
        model: sim.model.name().to_string(),
        num_params: sim.model.num_params(),
        method: cfg.train.method,
        stop_reason: main.result.stop,
        steps: main.result.steps,
        t_final: main.result.t_final,
        grad_evals: main.grad_evals,
        train_seconds: main.seconds,
        initial_loss: loss.first().copied(),
        final_loss: loss.last().copied(),
        integrator: main.stats.clone(),
        staircase,
        reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_table, to_table};

    /// `resolve_and_run` runs the config `resolve` serialised without parsing it back: the
    /// two are the same config for every train preset and two other configs (the
    /// `featlab bench sweep` point; momentum with a reference run), so `featlab run`, which
    /// resolves first, and a sweep point run the same thing.
    #[test]
    fn resolved_config_round_trips() {
        let mut configs: Vec<(String, toml::Table)> = Vec::new();
        for name in crate::presets::names() {
            let text = crate::presets::get(name).unwrap();
            let table = crate::config::parse_toml(text, name).unwrap();
            configs.push((
                name.to_string(),
                crate::config::prepare(table, false).unwrap(),
            ));
        }
        let extra = [
            "experiment = \"train\"\nseed = 3\n[model]\nkind = \"two_layer\"\nwidth = 16\nactivation = \"relu\"\ninit_scale = 0.5\n\
             [data]\nkind = \"gaussian\"\nn = 64\nd = 8\nteacher = { kind = \"linear\", singular_values = [2.0], outputs = 1 }\n\
             [train]\nmethod = \"gd\"\nlr = 0.01\nt_max = 1.0\nrecord = { kind = \"linear\", points = 11 }\n",
            "seed = 1\n[model]\nkind = \"two_layer\"\nwidth = 4\nactivation = \"tanh\"\ninit_scale = 0.1\n\
             [data]\nkind = \"gaussian\"\nn = 32\nd = 4\nwhiten = true\nteacher = { kind = \"linear\", singular_values = [1.0, 0.5], outputs = 2 }\n\
             [train]\nmethod = \"momentum\"\nlr = 0.05\nt_max = 2.0\n[reference]\nmethod = \"gd\"\nlr = 0.01\n",
        ];
        for (i, text) in extra.iter().enumerate() {
            configs.push((
                format!("extra {i}"),
                crate::config::parse_toml(text, "test").unwrap(),
            ));
        }
        let mut checked = 0;
        for (name, table) in configs {
            if crate::experiments::select(&table).unwrap().name() != "train" {
                continue;
            }
            let mut cfg: TrainExperimentConfig = from_table(&table).unwrap();
            Study::resolve(&TrainExperiment, &mut cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
            let back: TrainExperimentConfig = from_table(&to_table(&cfg).unwrap()).unwrap();
            assert_eq!(back, cfg, "{name}");
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} train configs");
    }
}
