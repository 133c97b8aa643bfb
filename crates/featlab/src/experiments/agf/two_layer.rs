//! The `agf` experiment: numerical AGF, the closed-form predictions and gradient flow from
//! the same initialisation on a fixed training set, compared drop by drop; optionally over
//! a series of initialisation scales α.

use crate::compare::drops::{
    agreement_rows, drop_errors, level_error, match_drops, time_error, Drop, DropErrors,
    DropTolerance, Staircase,
};
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::generate::{
    gaussian_inputs, index_teacher, linear_teacher, teacher_matrix, whiten,
};
use crate::data::io::read_npy;
use crate::data::Dataset;
use crate::experiments::{param_arrays, CsvTable, Experiment, RunOutput};
use crate::figure::{LinePlot, RefLine, Scale, Series};
use crate::linalg::{matmul, singular_values};
use crate::model::diagonal::{Diagonal, DiagonalForm};
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Loss, Model, NeuronSum};
use crate::rng::{normal_vec, stream};
use crate::theory::agf::compare::{staircase_at, staircase_series, Conventions};
use crate::theory::agf::cost::GradientFlowCost;
use crate::theory::agf::diagonal::{
    cosh_agf, example_2d, example_gaussian, pesme_flammarion, ClosedFormPath,
};
use crate::theory::agf::engine::{AgfOptions, AgfResult};
use crate::theory::agf::linear::{linear_theory, mode_energies, new_mode};
use crate::theory::agf::on_data::{self, checked_dataset, DataModel, DataNet};
use crate::theory::agf::standard::{run_agf_diagonal, run_agf_two_layer, CostChoice};
use crate::theory::agf::timing::{timed_agf, AgfTiming};
use crate::train::ode::PidController;
use crate::train::{
    self, Flow, GradientDescent, LossObserver, Observer, Problem, RunContext, RunOptions, Stepper,
};
use crate::{Error, NdArray, Result};
use faer::{Accum, Mat, Par};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Instant;

fn agf_name() -> String {
    "agf".into()
}
fn d_alpha() -> f64 {
    1e-12
}

/// Which diagonal-net example (AGF §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagonalExample {
    /// Pesme–Flammarion's 2-D problem (one coordinate deactivates).
    Pesme2d,
    /// n samples, x ~ N(0, diag(1, 1/2, …, 1/d)), β* = 10·N(0, I).
    Gaussian,
}

/// Eigenbasis of a power-law input covariance (`problem.input_basis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InputBasis {
    /// The teacher's right singular vectors (Σ_xx commutes with BᵀB).
    #[default]
    Teacher,
    /// A Haar-random orthogonal basis (stream "input-basis"): Σ_xx and BᵀB do not commute.
    Random,
}

/// The problem: model, data and initialisation scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgfProblem {
    /// Diagonal linear net β = u ⊙ v from (u, v) = (√2α, 0).
    Diagonal {
        example: DiagonalExample,
        #[serde(default = "d_n_diag")]
        n: usize,
        #[serde(default = "d_d_diag")]
        d: usize,
        #[serde(default = "d_alpha")]
        alpha: f64,
    },
    /// Two-layer linear net f = A W x on Gaussian inputs and a linear teacher with the given
    /// singular values; W ~ N(0, α²/d), A ~ N(0, α²/c). Inputs are exactly whitened, then
    /// (`input_power` = p > 0) given the sample covariance Σ_xx = V diag(k^{−p}) Vᵀ,
    /// k = 1..d (AGF §3.2's power law, p = 2 in the authors' notebook), with V the teacher's
    /// right singular vectors in decreasing order (`input_basis = "teacher"`: Σ_xx commutes
    /// with BᵀB, the notebook's choice) or a random orthogonal basis (`"random"`).
    Linear {
        n: usize,
        d: usize,
        outputs: usize,
        width: usize,
        singular_values: Vec<f64>,
        #[serde(default = "d_alpha")]
        alpha: f64,
        #[serde(default)]
        input_power: f64,
        #[serde(default)]
        input_basis: InputBasis,
    },
    /// Two-layer ReLU net (no biases) on Gaussian inputs, teacher y = Σ_k a_k ReLU(θ_k·x)
    /// with orthonormal θ_k; W ~ N(0, α²/d), a ~ N(0, α²).
    Relu {
        n: usize,
        d: usize,
        width: usize,
        strengths: Vec<f64>,
        #[serde(default = "d_alpha")]
        alpha: f64,
    },
    /// Your own data: x (n × d) and y (n × c) from `.npy` files (paths relative to the
    /// directory featlab runs in), a network of [`on_data::DataModel`] with `width` hidden
    /// neurons (not for `diagonal`), initialised as [`on_data::init_direction`] × α
    /// (default α: 1e-12 for κ = 2 models, 1e-2 for `quadratic`, as agf-modular).
    Files {
        x: String,
        y: String,
        model: DataModel,
        #[serde(default)]
        width: Option<usize>,
        #[serde(default)]
        alpha: Option<f64>,
    },
    /// A labelled data set through the shared `[data]` loader and preprocessing
    /// ([`crate::data::labelled`]-style table under `problem.data`: digits, mnist1d,
    /// mnist, cifar10 (grayscale), … with `whiten`, `unit_norm`, `per_class`, targets
    /// e_label − `label_shift`): the training split is the AGF problem, the network and its
    /// init as for `files` (AGF §3.5 on real images). The loss plot carries the optimal
    /// linear predictor's loss ½·mean‖y − β_OLS x‖².
    Dataset {
        data: Box<crate::data::labelled::LabelledDataConfig>,
        model: DataModel,
        #[serde(default)]
        width: Option<usize>,
        #[serde(default)]
        alpha: Option<f64>,
    },
}

fn d_n_diag() -> usize {
    20
}
fn d_d_diag() -> usize {
    5
}

impl AgfProblem {
    fn alpha(&self) -> f64 {
        match self {
            AgfProblem::Diagonal { alpha, .. }
            | AgfProblem::Linear { alpha, .. }
            | AgfProblem::Relu { alpha, .. } => *alpha,
            AgfProblem::Files { alpha, model, .. } | AgfProblem::Dataset { alpha, model, .. } => {
                alpha.unwrap_or(match model {
                    DataModel::Quadratic => 1e-2,
                    _ => d_alpha(),
                })
            }
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            AgfProblem::Diagonal { .. } => "diagonal",
            AgfProblem::Linear { .. } => "linear",
            AgfProblem::Relu { .. } => "relu",
            AgfProblem::Files { .. } => "files",
            AgfProblem::Dataset { .. } => "dataset",
        }
    }
}

/// Cost phase of the numerical AGF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// Closed-form least squares (diagonal and linear problems), else gradient flow.
    #[default]
    Auto,
    /// Adaptive gradient flow on the active neurons.
    GradientFlow,
}

/// The `[agf]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AgfSection {
    pub cost: CostKind,
    #[serde(flatten)]
    pub options: AgfOptions,
    /// Options of the gradient-flow cost phase (used by `cost = "gradient_flow"` and ReLU).
    pub flow_cost: GradientFlowCost,
}

/// Gradient-flow simulation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GfMethod {
    /// Adaptive Dormand–Prince.
    #[default]
    Flow,
    /// Full-batch gradient descent at `lr` (t = lr × steps).
    Gd,
}

fn d_rtol() -> f64 {
    1e-9
}
fn d_points() -> usize {
    4001
}
fn d_lr() -> f64 {
    1e-3
}
fn d_tfac() -> f64 {
    1.3
}

/// The `[gf]` table: the gradient-flow run compared with AGF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GfSection {
    #[serde(default)]
    pub method: GfMethod,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_rtol")]
    pub rtol: f64,
    /// Absolute tolerance; default rtol·α^κ (parameters are O(α): the solver's usual 1e-12
    /// would be far too loose at α = 1e-12).
    #[serde(default)]
    pub atol: Option<f64>,
    /// End time; default `t_factor` × the last AGF jump time.
    #[serde(default)]
    pub t_max: Option<f64>,
    #[serde(default = "d_tfac")]
    pub t_factor: f64,
    /// Recording points (linear grid on [0, t_max]).
    #[serde(default = "d_points")]
    pub points: usize,
}

impl Default for GfSection {
    fn default() -> Self {
        GfSection {
            method: GfMethod::Flow,
            lr: d_lr(),
            rtol: d_rtol(),
            atol: None,
            t_max: None,
            t_factor: d_tfac(),
            points: d_points(),
        }
    }
}

/// Config of the `agf` experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgfConfig {
    #[serde(default = "agf_name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    pub problem: AgfProblem,
    #[serde(default)]
    pub agf: AgfSection,
    #[serde(default)]
    pub gf: GfSection,
    /// Initialisation scales of the α-series (empty: none). Each runs AGF, the closed forms
    /// and gradient flow (adaptive) from the same init directions scaled to α.
    #[serde(default)]
    pub alpha_series: Vec<f64>,
}

/// A built problem.
pub(crate) enum Net {
    Diag(Diagonal),
    Two(TwoLayer),
}

impl Net {
    fn model(&self) -> &dyn Model {
        match self {
            Net::Diag(m) => m,
            Net::Two(m) => m,
        }
    }
    fn kappa(&self) -> u32 {
        match self {
            Net::Diag(m) => m.homogeneity(),
            Net::Two(m) => m.homogeneity(),
        }
    }
}

/// Data, model, unit-scale init directions (init = α × base), teacher directions (ReLU).
pub(crate) struct Built {
    pub(crate) data: Dataset,
    pub(crate) net: Net,
    pub(crate) base: Vec<f64>,
    pub(crate) teacher: Option<Mat<f64>>,
}

pub(crate) fn build(p: &AgfProblem, seed: u64) -> Result<Built> {
    let pos = |k: &str, v: usize| {
        if v == 0 {
            Err(Error::config(format!("problem.{k}"), "must be ≥ 1"))
        } else {
            Ok(())
        }
    };
    match p {
        AgfProblem::Diagonal { example, n, d, .. } => {
            let (x, y) = match example {
                DiagonalExample::Pesme2d => example_2d(),
                DiagonalExample::Gaussian => {
                    pos("n", *n)?;
                    pos("d", *d)?;
                    let (x, y, _) = example_gaussian(&mut stream(seed, "data"), *n, *d);
                    (x, y)
                }
            };
            let dd = x.ncols();
            let nn = x.nrows();
            let data = Dataset::new(x, Mat::from_fn(nn, 1, |i, _| y[i]))?;
            let mut base = vec![0.0; 2 * dd];
            base[..dd].fill(2f64.sqrt());
            Ok(Built {
                data,
                net: Net::Diag(Diagonal::new(dd, DiagonalForm::Uv, 1.0)),
                base,
                teacher: None,
            })
        }
        AgfProblem::Linear {
            n,
            d,
            outputs,
            width,
            singular_values,
            input_power,
            input_basis,
            ..
        } => {
            pos("n", *n)?;
            pos("d", *d)?;
            pos("outputs", *outputs)?;
            pos("width", *width)?;
            if !(input_power.is_finite() && *input_power >= 0.0) {
                return Err(Error::config(
                    "problem.input_power",
                    format!("must be a finite number ≥ 0 (0 = whitened inputs), got {input_power}"),
                ));
            }
            let mut rng = stream(seed, "data");
            let x = whiten(&gaussian_inputs(&mut rng, *n, *d))?;
            let b = teacher_matrix(&mut rng, *outputs, *d, singular_values)?;
            let x = if *input_power > 0.0 {
                power_law_inputs(&x, &b, *input_power, *input_basis, seed)?
            } else {
                x
            };
            let data = linear_teacher(x, &b, 0.0, &mut rng)?;
            let model = TwoLayer::new(*d, *width, *outputs, Activation::Linear, false);
            let base = two_layer_base(&model, seed, 1.0 / (*outputs as f64).sqrt());
            Ok(Built {
                data,
                net: Net::Two(model),
                base,
                teacher: None,
            })
        }
        AgfProblem::Relu {
            n,
            d,
            width,
            strengths,
            ..
        } => {
            pos("n", *n)?;
            pos("d", *d)?;
            pos("width", *width)?;
            let mut rng = stream(seed, "data");
            let x = gaussian_inputs(&mut rng, *n, *d);
            let (data, theta) = index_teacher(x, Activation::Relu, strengths, 0.0, &mut rng)?;
            let model = TwoLayer::new(*d, *width, 1, Activation::Relu, false);
            let base = two_layer_base(&model, seed, 1.0);
            Ok(Built {
                data,
                net: Net::Two(model),
                base,
                teacher: Some(theta),
            })
        }
        AgfProblem::Dataset {
            data, model, width, ..
        } => {
            let lab = data.build(seed)?;
            let data = checked_dataset(
                lab.train.x,
                lab.train.y,
                "problem.data (inputs)",
                "problem.data (targets)",
            )?;
            let net = on_data::build_net(*model, data.d(), data.c(), *width, "problem.width")?;
            let base = on_data::init_direction(*model, &net, seed);
            Ok(Built {
                data,
                net: match net {
                    DataNet::Diag(m) => Net::Diag(m),
                    DataNet::Two(m) => Net::Two(m),
                },
                base,
                teacher: None,
            })
        }
        AgfProblem::Files {
            x, y, model, width, ..
        } => {
            let read = |key: &str, path: &str| -> Result<Mat<f64>> {
                let a = read_npy(std::path::Path::new(path)).map_err(|e| {
                    Error::config(
                        format!("problem.{key}"),
                        format!("cannot load `{path}`: {e} (paths are relative to the directory featlab runs in; save arrays with numpy.save)"),
                    )
                })?;
                if a.shape.len() > 2 {
                    return Err(Error::config(
                        format!("problem.{key}"),
                        format!(
                            "`{path}` has shape {:?}; need n × {} (flatten first)",
                            a.shape,
                            if key == "x" { "d" } else { "c" }
                        ),
                    ));
                }
                Ok(a.to_mat())
            };
            let data = checked_dataset(
                read("x", x)?,
                read("y", y)?,
                &format!("problem.x (`{x}`)"),
                &format!("problem.y (`{y}`)"),
            )?;
            let net = on_data::build_net(*model, data.d(), data.c(), *width, "problem.width")?;
            let base = on_data::init_direction(*model, &net, seed);
            Ok(Built {
                data,
                net: match net {
                    DataNet::Diag(m) => Net::Diag(m),
                    DataNet::Two(m) => Net::Two(m),
                },
                base,
                teacher: None,
            })
        }
    }
}

/// Exactly whitened inputs `x` (n × d) given the sample covariance V diag(k^{−p}) Vᵀ:
/// x ↦ x V diag(k^{−p/2}) Vᵀ, V from [`InputBasis`] (teacher: eigenvectors of BᵀB in
/// decreasing eigenvalue order).
pub fn power_law_inputs(
    x: &Mat<f64>,
    b: &Mat<f64>,
    p: f64,
    basis: InputBasis,
    seed: u64,
) -> Result<Mat<f64>> {
    let d = x.ncols();
    let v = match basis {
        InputBasis::Teacher => {
            let btb = Mat::from_fn(d, d, |i, j| {
                (0..b.nrows()).map(|k| b[(k, i)] * b[(k, j)]).sum::<f64>()
            });
            let (u, _) = crate::linalg::sym_eig(btb.as_ref())?;
            Mat::from_fn(d, d, |i, k| u[(i, d - 1 - k)])
        }
        InputBasis::Random => {
            let g = normal_vec(&mut stream(seed, "input-basis"), d * d, 1.0);
            let (u, _, w) = crate::linalg::thin_svd(crate::linalg::view(&g, d, d))?;
            Mat::from_fn(d, d, |i, j| {
                (0..d).map(|k| u[(i, k)] * w[(j, k)]).sum::<f64>()
            })
        }
    };
    let root = Mat::from_fn(d, d, |i, j| {
        (0..d)
            .map(|k| v[(i, k)] * ((k + 1) as f64).powf(-0.5 * p) * v[(j, k)])
            .sum::<f64>()
    });
    let n = x.nrows();
    Ok(Mat::from_fn(n, d, |r, j| {
        (0..d).map(|i| x[(r, i)] * root[(i, j)]).sum::<f64>()
    }))
}

/// W ~ N(0, 1/d), A ~ N(0, a_std²) at unit scale.
fn two_layer_base(model: &TwoLayer, seed: u64, a_std: f64) -> Vec<f64> {
    let mut v = normal_vec(&mut stream(seed, "init"), model.num_params(), 1.0);
    let nw = model.width * model.d;
    let sw = 1.0 / (model.d as f64).sqrt();
    for (k, x) in v.iter_mut().enumerate() {
        *x *= if k < nw { sw } else { a_std };
    }
    v
}

/// Everything measured at one α.
struct Measured {
    agf: AgfResult,
    features: Vec<usize>,
    agf_timing: AgfTiming,
    gf: train::TrainResult,
    gf_seconds: f64,
    gf_stats: serde_json::Value,
    drops: Vec<Drop>,
    errors: DropErrors,
    closed: Option<ClosedFormPath>,
    closed_label: &'static str,
    limit: Option<ClosedFormPath>,
    rho_ref: f64,
}

fn run_numerical_agf(
    b: &Built,
    init: &[f64],
    sec: &AgfSection,
    ctx: &RunContext<'_>,
) -> Result<AgfResult> {
    let cost = match sec.cost {
        CostKind::Auto => CostChoice::Auto(&sec.flow_cost),
        CostKind::GradientFlow => CostChoice::GradientFlow(&sec.flow_cost),
    };
    match &b.net {
        Net::Diag(m) => run_agf_diagonal(m, &b.data, init, cost, &sec.options, ctx),
        Net::Two(m) => run_agf_two_layer(m, &b.data, init, cost, &sec.options, ctx),
    }
}

/// Feature learned in each round: coordinate (diagonal), singular mode (linear), teacher
/// unit most aligned with the activated neuron's input weights (ReLU).
fn features(b: &Built, agf: &AgfResult, modes: Option<&Mat<f64>>) -> Vec<usize> {
    agf.rounds
        .iter()
        .enumerate()
        .map(|(k, r)| match &b.net {
            Net::Diag(_) => r.activated[0],
            Net::Two(m) if m.activation == Activation::Linear => {
                let prev = k.checked_sub(1).map(|j| &agf.rounds[j].params[..]);
                new_mode(modes.expect("linear modes"), m, &r.params, prev)
            }
            Net::Two(_) if b.teacher.is_none() => r.activated[0],
            Net::Two(m) => {
                let th = b.teacher.as_ref().expect("teacher");
                let w = &r.directions[0][..m.d];
                let nw = w
                    .iter()
                    .map(|v| v * v)
                    .sum::<f64>()
                    .sqrt()
                    .max(f64::MIN_POSITIVE);
                (0..th.ncols())
                    .map(|j| (j, (0..m.d).map(|a| th[(a, j)] * w[a]).sum::<f64>() / nw))
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |bst, x| if x.1 > bst.1 { x } else { bst },
                    )
                    .0
            }
        })
        .collect()
}

/// Per-feature observer for the GF run: β_i (diagonal), singular values of AW (linear),
/// neuron norms (ReLU).
struct FeatureObserver {
    cols: Vec<String>,
    kind: u8,
    d: usize,
    c: usize,
    width: usize,
}

impl FeatureObserver {
    fn new(b: &Built) -> Self {
        match &b.net {
            Net::Diag(m) => FeatureObserver {
                cols: (0..m.d).map(|i| format!("beta_{i}")).collect(),
                kind: 0,
                d: m.d,
                c: 1,
                width: m.d,
            },
            Net::Two(m) if m.activation == Activation::Linear => FeatureObserver {
                cols: (0..m.c.min(m.d)).map(|k| format!("sv_{k}")).collect(),
                kind: 1,
                d: m.d,
                c: m.c,
                width: m.width,
            },
            Net::Two(m) => FeatureObserver {
                cols: (0..m.width).map(|i| format!("neuron_norm_{i}")).collect(),
                kind: 2,
                d: m.d,
                c: m.c,
                width: m.width,
            },
        }
    }
    fn values(&self, params: &[f64]) -> Result<Vec<f64>> {
        let (d, c, w) = (self.d, self.c, self.width);
        Ok(match self.kind {
            0 => (0..d).map(|i| params[i] * params[d + i]).collect(),
            1 => {
                let w1 = crate::linalg::view(&params[..w * d], w, d);
                let w2 = crate::linalg::view(&params[w * d..], c, w);
                let mut aw = Mat::zeros(c, d);
                matmul(aw.as_mut(), Accum::Replace, w2, w1, 1.0, Par::Seq);
                singular_values(aw.as_ref())?
            }
            _ => (0..w)
                .map(|i| {
                    ((0..d).map(|a| params[i * d + a].powi(2)).sum::<f64>()
                        + (0..c)
                            .map(|k| params[w * d + k * w + i].powi(2))
                            .sum::<f64>())
                    .sqrt()
                })
                .collect(),
        })
    }
}

impl Observer for FeatureObserver {
    fn columns(&self) -> Vec<String> {
        self.cols.clone()
    }
    fn observe(&mut self, _t: f64, params: &[f64], _p: &mut Problem<'_>) -> Result<Vec<f64>> {
        self.values(params)
    }
}

fn measure(
    cfg: &AgfConfig,
    b: &Built,
    alpha: f64,
    gf: &GfSection,
    ctx: &RunContext<'_>,
) -> Result<Measured> {
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(Error::config(
            "problem.alpha",
            format!("must be a finite number > 0, got {alpha}"),
        ));
    }
    let init: Vec<f64> = b.base.iter().map(|v| v * alpha).collect();
    let (agf, agf_timing) = timed_agf(
        || run_numerical_agf(b, &init, &cfg.agf, ctx),
        AgfResult::same_staircase,
    )?;
    let mut rho = agf.init_norms.clone();
    rho.sort_by(f64::total_cmp);
    let rho_ref = rho[rho.len() / 2];
    // Closed forms.
    let (closed, limit, modes, label) = match (&b.net, &cfg.problem) {
        (Net::Diag(_), _) => {
            let y: Vec<f64> = (0..b.data.n()).map(|i| b.data.y[(i, 0)]).collect();
            let ch = cosh_agf(b.data.x.as_ref(), &y, alpha, cfg.agf.options.max_rounds)?;
            let pf = pesme_flammarion(
                b.data.x.as_ref(),
                &y,
                Conventions::diagonal_init_norm(alpha),
                cfg.agf.options.max_rounds,
            )?;
            (Some(ch), Some(pf), None, "cosh-formula AGF")
        }
        (Net::Two(m), _) if m.activation == Activation::Linear => {
            let th = linear_theory(&b.data, m.width)?;
            let lscale = -rho_ref.ln();
            let st = ClosedFormPath {
                times: th.tau.iter().map(|t| t * lscale).collect(),
                levels: th.levels.clone(),
                betas: vec![],
                features: (0..th.tau.len()).collect(),
                deactivated: vec![vec![]; th.tau.len()],
            };
            (Some(st), None, Some(th.modes), "recursion (median ρ0)")
        }
        _ => (None, None, None, ""),
    };
    let feats = features(b, &agf, modes.as_ref());
    // Gradient flow from the same init.
    let last = agf
        .rounds
        .last()
        .map(|r| r.t)
        .unwrap_or(cfg.agf.options.t_max.min(1e3));
    let t_max = gf.t_max.unwrap_or(gf.t_factor * last);
    let kappa = b.net.kappa();
    let atol = gf
        .atol
        .unwrap_or(gf.rtol * alpha.min(1.0).powi(kappa as i32));
    let model = b.net.model();
    let mut problem = Problem::new(model, &b.data, Loss::Mse, 0.0, ctx.par);
    let mut observers: Vec<Box<dyn Observer>> =
        vec![Box::new(LossObserver), Box::new(FeatureObserver::new(b))];
    let mut stepper: Box<dyn Stepper> = match gf.method {
        GfMethod::Flow => Box::new(Flow::new(
            init.clone(),
            PidController::new(gf.rtol, atol),
            None,
        )),
        GfMethod::Gd => Box::new(GradientDescent::new(gf.lr, init.clone())),
    };
    let max_steps = match gf.method {
        GfMethod::Flow => 50_000_000,
        GfMethod::Gd => (t_max / gf.lr).ceil() as u64 + 10,
    };
    let opts = RunOptions {
        t_max,
        record_at: crate::train::Schedule::Linear { points: gf.points }.times(t_max, None)?,
        target_loss: None,
        max_steps,
        divergence_hint: format!("gradient descent diverged: lower gf.lr (now {})", gf.lr),
    };
    let start = Instant::now();
    let res = train::run(&mut problem, stepper.as_mut(), &mut observers, &opts, ctx)?;
    let gf_seconds = start.elapsed().as_secs_f64();
    let t = res.trajectory.column("t").unwrap_or_default();
    let loss = res.trajectory.column("loss").unwrap_or_default();
    let stairs = Staircase {
        initial_loss: agf.initial_loss,
        times: agf.jump_times(),
        levels: agf.levels()[1..].to_vec(),
        features: feats.clone(),
    };
    let drops = match_drops(&stairs, &t, &loss);
    let errors = drop_errors(&drops, agf.initial_loss);
    Ok(Measured {
        agf,
        features: feats,
        agf_timing,
        gf: res,
        gf_seconds,
        gf_stats: stepper.stats(),
        drops,
        errors,
        closed,
        closed_label: label,
        limit,
        rho_ref,
    })
}

/// Errors of a closed-form staircase against the GF curve (NaN when GF made no drop).
fn closed_errors(st: &ClosedFormPath, t: &[f64], loss: &[f64]) -> (f64, f64) {
    let e = drop_errors(&match_drops(&st.stairs(), t, loss), st.levels[0]);
    if e.matched == 0 {
        (f64::NAN, f64::NAN)
    } else {
        (e.max_time, e.max_level)
    }
}

/// The agreement row of an exact closed form of AGF (the diagonal cosh formula) against the
/// numerical AGF engine: the jump time where the two differ most (they must agree to
/// integration accuracy, 1e-6 relative).
fn exact_agf_row(cf: &ClosedFormPath, numerical: &[f64], label: &str) -> AgreementRow {
    let n = cf.times.len().min(numerical.len());
    let worst = (0..n)
        .max_by(|&i, &j| {
            let e = |k: usize| (numerical[k] - cf.times[k]).abs() / cf.times[k].abs();
            e(i).total_cmp(&e(j))
        })
        .unwrap_or(0);
    if n == 0 || cf.times.len() != numerical.len() {
        return AgreementRow::relative_opt(
            format!("number of jumps, {label} vs numerical AGF"),
            cf.times.len() as f64,
            Some(numerical.len() as f64),
            0.0,
        );
    }
    AgreementRow::relative(
        format!(
            "jump {} time, {label} vs numerical AGF (worst of {n})",
            worst + 1
        ),
        cf.times[worst],
        numerical[worst],
        1e-6,
    )
}

fn json_f(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

/// The `agf` experiment kind.
pub struct AgfExperiment;

impl Experiment for AgfExperiment {
    fn name(&self) -> &'static str {
        "agf"
    }
    fn about(&self) -> &'static str {
        "Alternating Gradient Flows: numerical AGF, closed forms and gradient flow from the same init, compared drop by drop"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let mut cfg: AgfConfig = from_table(table)?;
        let default_alpha = cfg.problem.alpha();
        if let AgfProblem::Files { alpha, .. } | AgfProblem::Dataset { alpha, .. } =
            &mut cfg.problem
        {
            alpha.get_or_insert(default_alpha);
        }
        if let Some(a) = cfg
            .alpha_series
            .iter()
            .find(|a| !(a.is_finite() && **a > 0.0 && **a < 0.5))
        {
            return Err(Error::config(
                "alpha_series",
                format!("every α must be in (0, 0.5), got {a}"),
            ));
        }
        let a = cfg.problem.alpha();
        if !(a.is_finite() && a > 0.0 && a < 0.5) {
            return Err(Error::config(
                "problem.alpha",
                format!("must be in (0, 0.5) (small initialisation), got {a}"),
            ));
        }
        if cfg.gf.points < 2 {
            return Err(Error::config(
                "gf.points",
                "need at least 2 recording points",
            ));
        }
        if cfg.gf.method == GfMethod::Gd && !(cfg.gf.lr.is_finite() && cfg.gf.lr > 0.0) {
            return Err(Error::config(
                "gf.lr",
                format!("must be > 0, got {}", cfg.gf.lr),
            ));
        }
        to_table(&cfg)
    }

    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: AgfConfig = from_table(resolved)?;
        let b = build(&cfg.problem, cfg.seed)?;
        let alpha = cfg.problem.alpha();
        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        out.arrays
            .push(("data/x.npy".into(), NdArray::from_mat(b.data.x.as_ref())));
        out.arrays
            .push(("data/y.npy".into(), NdArray::from_mat(b.data.y.as_ref())));
        let init: Vec<f64> = b.base.iter().map(|v| v * alpha).collect();
        out.arrays
            .extend(param_arrays(b.net.model(), &init, "params/init"));
        let m = measure(&cfg, &b, alpha, &cfg.gf, ctx)?;
        out.arrays.extend(param_arrays(
            b.net.model(),
            &m.gf.final_params,
            "params/final",
        ));
        if let Some(r) = m.agf.rounds.last() {
            out.arrays
                .extend(param_arrays(b.net.model(), &r.params, "params/agf_final"));
        }
        let t = m.gf.trajectory.column("t").unwrap_or_default();
        let loss = m.gf.trajectory.column("loss").unwrap_or_default();
        let levels = m.agf.levels();
        let jumps = m.agf.jump_times();

        // ---- summary ----
        let s = &mut out.summary;
        s.insert("problem".into(), json!(cfg.problem.kind()));
        if let AgfProblem::Files { x, y, model, .. } = &cfg.problem {
            s.insert(
                "data".into(),
                json!({"x": x, "y": y, "model": model.name(), "n": b.data.n(), "d": b.data.d(), "c": b.data.c()}),
            );
        }
        // optimal linear predictor ½·mean‖y − β_OLS x‖² = ½ tr Σ_yy − ½ Σ_k μ_k (all modes)
        let ols_loss = if matches!(cfg.problem, AgfProblem::Dataset { .. }) {
            linear_theory(&b.data, usize::MAX)
                .ok()
                .and_then(|th| th.levels.last().copied())
        } else {
            None
        };
        if let AgfProblem::Dataset { data, model, .. } = &cfg.problem {
            s.insert(
                "data".into(),
                json!({"kind": data.kind, "model": model.name(), "n": b.data.n(), "d": b.data.d(), "c": b.data.c(),
                       "ols_loss": ols_loss, "final_gf_loss": loss.last(), "final_agf_level": levels.last()}),
            );
        }
        s.insert("alpha".into(), json!(alpha));
        s.insert("kappa".into(), json!(m.agf.kappa));
        s.insert(
            "drops".into(),
            json!(m
                .drops
                .iter()
                .map(|d| json!({"t_agf": d.t_agf, "t_gf": d.t_gf, "loss_agf": d.loss_agf, "loss_gf": d.loss_gf, "feature": d.feature}))
                .collect::<Vec<_>>()),
        );
        s.insert("max_rel_time_error".into(), json_f(m.errors.max_time));
        s.insert("max_rel_loss_error".into(), json_f(m.errors.max_level));
        s.insert("drops_missed_by_gf".into(), json!(m.errors.missed));
        s.insert("agf_seconds".into(), json!(m.agf_timing.median));
        s.insert("agf_seconds_first_run".into(), json!(m.agf_timing.first));
        s.insert("gf_seconds".into(), json!(m.gf_seconds));
        s.insert(
            "agf_cost_fraction".into(),
            json!(m.agf_timing.median / m.gf_seconds.max(1e-12)),
        );
        s.insert("agf_stop".into(), json!(m.agf.stop));
        s.insert("agf_cost_minimizer".into(), json!(m.agf.cost_name));
        s.insert("initial_loss".into(), json!(m.agf.initial_loss));
        s.insert("median_init_norm".into(), json!(m.rho_ref));
        s.insert(
            "agf_rounds".into(),
            json!(m
                .agf
                .rounds
                .iter()
                .map(|r| json!({"t": r.t, "loss": r.loss, "activated": r.activated, "near_ties": r.near_ties,
                    "deactivated": r.deactivated, "active": r.active, "utility_steps": r.utility_steps,
                    "utility_evals": r.utility_evals, "cost_work": r.cost_work, "cost_converged": r.cost_converged}))
                .collect::<Vec<_>>()),
        );
        s.insert("gf_integrator".into(), m.gf_stats.clone());
        s.insert("gf_steps".into(), json!(m.gf.steps));
        let gf_order: Vec<usize> = m
            .drops
            .iter()
            .filter(|d| d.t_gf.is_some())
            .map(|d| d.feature)
            .collect();
        s.insert("feature_order".into(), json!(m.features));
        s.insert(
            "all_drops_found_in_gf".into(),
            json!(m.drops.iter().all(|d| d.t_gf.is_some())),
        );
        let _ = gf_order;
        if let Some(cf) = &m.closed {
            let (et, el) = closed_errors(cf, &t, &loss);
            s.insert(
                "closed_form".into(),
                json!({"method": m.closed_label, "times": cf.times, "levels": cf.levels, "features": cf.features,
                       "max_rel_time_error_vs_gf": json_f(et), "max_rel_loss_error_vs_gf": json_f(el),
                       "features_match_agf": cf.features == m.features}),
            );
        }
        if let Some(pf) = &m.limit {
            let (et, el) = closed_errors(pf, &t, &loss);
            s.insert(
                "alpha_to_zero_limit".into(),
                json!({"method": "Pesme–Flammarion (times × log(1/ρ0))", "times": pf.times, "levels": pf.levels, "features": pf.features,
                       "max_rel_time_error_vs_gf": json_f(et), "max_rel_loss_error_vs_gf": json_f(el)}),
            );
        }
        let ties: Vec<usize> = m
            .agf
            .rounds
            .iter()
            .enumerate()
            .filter(|(_, r)| r.activated.len() > 1 || !r.near_ties.is_empty())
            .map(|(k, _)| k + 1)
            .collect();
        if !ties.is_empty() {
            out.notes.push(format!(
                "AGF rounds {ties:?} had simultaneous or near-simultaneous activations (agf_rounds[].near_ties: other neurons within agf.near_tie_rtol of their threshold); which neuron carries the feature is then fragile."
            ));
        }
        let missing: Vec<usize> = m
            .drops
            .iter()
            .enumerate()
            .filter(|(_, d)| d.t_gf.is_none())
            .map(|(k, _)| k + 1)
            .collect();
        if !missing.is_empty() {
            out.notes.push(format!(
                "AGF rounds {missing:?} have no matching drop in the gradient-flow loss by t = {:.4e} (GF never crosses the midpoint between the AGF levels): AGF and GF disagree qualitatively there.",
                t.last().copied().unwrap_or(0.0)
            ));
        } else {
            if m.errors.max_time > 0.05 {
                out.notes.push(format!(
                    "AGF vs GF jump times differ by up to {:.2}% (> 5%) at α = {alpha:e}.",
                    100.0 * m.errors.max_time
                ));
            }
            if m.errors.max_level > 0.01 {
                out.notes.push(format!(
                    "AGF vs GF plateau levels differ by up to {:.2}% (> 1%).",
                    100.0 * m.errors.max_level
                ));
            }
        }
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }

        // ---- agreement ----
        let setting = format!("α = {alpha:e}, seed {}", cfg.seed);
        let feature_name = |f: usize| match &b.net {
            Net::Diag(_) => format!("coordinate {f}"),
            Net::Two(mm) if mm.activation == Activation::Linear => format!("mode {f}"),
            Net::Two(_) => format!("neuron {f}"),
        };
        out.agreement.extend(
            agreement_rows(
                &m.drops,
                m.agf.initial_loss,
                "AGF",
                feature_name,
                DropTolerance::default(),
            )
            .into_iter()
            .map(|r| r.with_note(setting.clone())),
        );
        // linear nets: the closed-form jump-time recursion (the paper's prediction for any
        // Σ_xx) against GF as well; the levels are AGF's (rows above)
        if let (Net::Two(mm), Some(cf)) = (&b.net, &m.closed) {
            if mm.activation == Activation::Linear {
                let cf_drops = match_drops(&cf.stairs(), &t, &loss);
                out.agreement.extend(
                    agreement_rows(
                        &cf_drops,
                        cf.levels[0],
                        "closed-form recursion",
                        feature_name,
                        DropTolerance::default(),
                    )
                    .into_iter()
                    .filter(|r| r.quantity.contains(" time,"))
                    .map(|r| r.with_note(setting.clone())),
                );
            }
        }
        if let (Net::Diag(_), Some(cf)) = (&b.net, &m.closed) {
            out.agreement
                .push(exact_agf_row(cf, &m.agf.jump_times(), m.closed_label));
        }

        // ---- trajectory ----
        let mut traj = m.gf.trajectory.clone();
        traj.push_column("loss_agf_theory", &staircase_at(&t, &jumps, &levels))?;
        if let Some(cf) = &m.closed {
            traj.push_column(
                "loss_closed_theory",
                &staircase_at(&t, &cf.times, &cf.levels),
            )?;
        }
        out.trajectory = traj;

        // ---- drops table ----
        out.tables.push(CsvTable {
            name: "drops".into(),
            columns: [
                "round",
                "feature",
                "t_agf",
                "t_gf",
                "loss_agf",
                "loss_gf",
                "rel_time_error",
                "rel_loss_error",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            values: {
                let d = &m.drops;
                let nan = f64::NAN;
                vec![
                    (1..=d.len()).map(|k| k as f64).collect(),
                    d.iter().map(|x| x.feature as f64).collect(),
                    d.iter().map(|x| x.t_agf).collect(),
                    d.iter().map(|x| x.t_gf.unwrap_or(nan)).collect(),
                    d.iter().map(|x| x.loss_agf).collect(),
                    d.iter().map(|x| x.loss_gf.unwrap_or(nan)).collect(),
                    d.iter().map(|x| time_error(x).unwrap_or(nan)).collect(),
                    (0..d.len())
                        .map(|k| level_error(d, k, m.agf.initial_loss).unwrap_or(nan))
                        .collect(),
                ]
            },
        });

        // ---- figures ----
        let t_end = *t.last().unwrap_or(&1.0);
        let (sx, sy) = staircase_series(&jumps, &levels, t_end);
        let mut lp = LinePlot::new(
            "Loss: gradient flow vs AGF",
            "t (gradient-flow time)",
            "loss",
        )
        .scales(Scale::Linear, Scale::Log)
        .with(Series::line("gradient flow", t.clone(), loss.clone()))
        .with(Series::step("numerical AGF", sx.clone(), sy.clone()));
        if let Some(cf) = &m.closed {
            for (k, tt) in cf.times.iter().enumerate() {
                if *tt <= t_end {
                    lp.ref_lines.push(RefLine {
                        label: format!("t{} {}", k + 1, m.closed_label),
                        vertical: true,
                        value: *tt,
                    });
                }
            }
            // levels below 1e-6·ℓ₀ would only stretch the log axis
            let floor = 1e-6 * m.agf.initial_loss;
            for (k, l) in cf.levels.iter().enumerate().skip(1) {
                if *l > floor {
                    lp.ref_lines.push(RefLine {
                        label: format!("ℓ{k} closed form"),
                        vertical: false,
                        value: *l,
                    });
                }
            }
        }
        if let Some(l) = ols_loss {
            lp.ref_lines.push(RefLine {
                label: "optimal linear predictor".into(),
                vertical: false,
                value: l,
            });
        }
        out.figures.push(lp.figure("loss", "Gradient-flow loss (solid), numerical AGF staircase (steps) from the same initialisation, closed-form jump times (vertical) and levels (horizontal)."));
        let lscale = -m.rho_ref.ln();
        let tr: Vec<f64> = t.iter().map(|v| v / lscale).collect();
        let mut rp = LinePlot::new("Loss vs rescaled time", "t / log(1/ρ0)", "loss")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line("gradient flow", tr, loss.clone()))
            .with(Series::step(
                "numerical AGF",
                sx.iter().map(|v| v / lscale).collect(),
                sy.clone(),
            ));
        if let Some(pf) = &m.limit {
            let (px, py) = staircase_series(&pf.times, &pf.levels, t_end);
            rp.series.push(Series::step(
                "α → 0 limit (Pesme–Flammarion)",
                px.iter().map(|v| v / lscale).collect(),
                py,
            ));
        }
        out.figures.push(rp.figure("loss_rescaled", "Loss against rescaled time t/log(1/ρ0) (ρ0 = median initial neuron norm): the α-independent saddle-to-saddle staircase."));
        // per-feature trajectories
        let fo = FeatureObserver::new(&b);
        let (title, ylab, yscale) = match fo.kind {
            0 => ("Coefficients β_i(t)", "β_i", Scale::Linear),
            1 => ("Singular values of AW", "singular value", Scale::Linear),
            _ => ("Neuron norms", "‖θ_i‖", Scale::Log),
        };
        let mut fp =
            LinePlot::new(title, "t (gradient-flow time)", ylab).scales(Scale::Linear, yscale);
        let mut agf_vals: Vec<Vec<f64>> = vec![fo.values(&vec![0.0; init.len()])?];
        for r in &m.agf.rounds {
            agf_vals.push(fo.values(&r.params)?);
        }
        for (j, col) in fo.cols.iter().enumerate() {
            let v = m.gf.trajectory.column(col).unwrap_or_default();
            fp.series
                .push(Series::line(format!("{col} (GF)"), t.clone(), v));
            if fo.kind != 2 {
                let ys: Vec<f64> = agf_vals.iter().map(|a| a[j]).collect();
                let (ax, ay) = staircase_series(&jumps, &ys, t_end);
                fp.series.push(Series::step(format!("{col} (AGF)"), ax, ay));
            }
        }
        if fo.kind == 2 {
            // AGF's closed-form dormant norms along the utility phases
            let tr = &m.agf.trace;
            for i in 0..fo.cols.len() {
                fp.series.push(Series::dashed(
                    format!("neuron {i} (AGF)"),
                    tr.t.clone(),
                    tr.norms.iter().map(|v| v[i]).collect(),
                ));
            }
        }
        out.figures.push(fp.figure("features", "Per-feature trajectories: gradient flow (solid) and AGF (steps/dashed) from the same initialisation."));
        if let (Net::Two(mm), Some(_)) = (&b.net, &m.closed) {
            if mm.activation == Activation::Linear {
                let th = linear_theory(&b.data, mm.width)?;
                let e = mode_energies(&th.modes, mm, &m.gf.final_params);
                s_insert(&mut out.summary, "final_mode_energies_gf", json!(e));
                out.summary.insert(
                    "truncation_singular_values".into(),
                    json!(th.truncation_singular_values),
                );
                out.summary.insert("mu".into(), json!(th.mu));
            }
        }

        // ---- α-series ----
        if !cfg.alpha_series.is_empty() {
            let mut rows: Vec<[f64; 9]> = Vec::new();
            for (k, &a) in cfg.alpha_series.iter().enumerate() {
                ctx.check_cancel()?;
                ctx.progress
                    .update(k as u64, &format!("α-series: α = {a:e}"));
                let gs = GfSection {
                    t_max: None,
                    atol: None,
                    ..cfg.gf.clone()
                };
                let mm = measure(&cfg, &b, a, &gs, ctx)?;
                let tt = mm.gf.trajectory.column("t").unwrap_or_default();
                let ll = mm.gf.trajectory.column("loss").unwrap_or_default();
                let (ct, cl) = mm
                    .closed
                    .as_ref()
                    .map(|c| closed_errors(c, &tt, &ll))
                    .unwrap_or((f64::NAN, f64::NAN));
                let (pt, _) = mm
                    .limit
                    .as_ref()
                    .map(|c| closed_errors(c, &tt, &ll))
                    .unwrap_or((f64::NAN, f64::NAN));
                let order_ok = mm.drops.iter().all(|d| d.t_gf.is_some())
                    && mm.drops.windows(2).all(|w| w[0].t_gf <= w[1].t_gf);
                let (et, el) = if mm.errors.missed > 0 {
                    (f64::INFINITY, f64::INFINITY)
                } else {
                    (mm.errors.max_time, mm.errors.max_level)
                };
                rows.push([
                    a,
                    et,
                    el,
                    ct,
                    cl,
                    pt,
                    mm.agf_timing.median,
                    mm.gf_seconds,
                    if order_ok { 1.0 } else { 0.0 },
                ]);
            }
            let cols = [
                "alpha",
                "max_rel_time_error_agf",
                "max_rel_loss_error_agf",
                "max_rel_time_error_closed",
                "max_rel_loss_error_closed",
                "max_rel_time_error_limit",
                "agf_seconds",
                "gf_seconds",
                "all_drops_found",
            ];
            out.tables.push(CsvTable {
                name: "alpha_series".into(),
                columns: cols.iter().map(|s| s.to_string()).collect(),
                values: (0..cols.len())
                    .map(|j| rows.iter().map(|r| r[j]).collect())
                    .collect(),
            });
            let mut sorted = rows.clone();
            sorted.sort_by(|a, b| b[0].total_cmp(&a[0]));
            let errs: Vec<f64> = sorted.iter().map(|r| r[1]).collect();
            let monotone = errs.windows(2).all(|w| w[1] <= w[0]);
            out.summary.insert(
                "alpha_series".into(),
                json!({"alpha": sorted.iter().map(|r| r[0]).collect::<Vec<_>>(),
                       "max_rel_time_error_agf": sorted.iter().map(|r| json_f(r[1])).collect::<Vec<_>>(),
                       "max_rel_loss_error_agf": sorted.iter().map(|r| json_f(r[2])).collect::<Vec<_>>(),
                       "max_rel_time_error_closed": sorted.iter().map(|r| json_f(r[3])).collect::<Vec<_>>(),
                       "max_rel_time_error_limit": sorted.iter().map(|r| json_f(r[5])).collect::<Vec<_>>(),
                       "agf_error_decreases_monotonically": monotone}),
            );
            if !monotone {
                out.notes.push(format!(
                    "α-series: the AGF-vs-GF jump-time error is not monotone in α: {errs:?}"
                ));
            }
            let xs: Vec<f64> = sorted.iter().map(|r| r[0]).collect();
            let mut ap = LinePlot::new(
                "AGF → GF as α → 0",
                "α (initialisation scale)",
                "max relative jump-time error",
            )
            .scales(Scale::Log, Scale::Log)
            .with(Series::line("numerical AGF", xs.clone(), errs.clone()));
            if sorted.iter().any(|r| r[3].is_finite()) {
                ap.series.push(Series::dashed(
                    format!("closed form: {}", m.closed_label),
                    xs.clone(),
                    sorted.iter().map(|r| r[3]).collect(),
                ));
            }
            if sorted.iter().any(|r| r[5].is_finite()) {
                ap.series.push(Series::dashed(
                    "α → 0 limit (Pesme–Flammarion)",
                    xs.clone(),
                    sorted.iter().map(|r| r[5]).collect(),
                ));
            }
            ap.ref_lines.push(RefLine {
                label: "5%".into(),
                vertical: false,
                value: 0.05,
            });
            out.figures.push(ap.figure("alpha_series", "Largest relative jump-time error against gradient flow from the same initialisation, per initialisation scale α."));
        }
        Ok(out)
    }
}

fn s_insert(m: &mut serde_json::Map<String, serde_json::Value>, k: &str, v: serde_json::Value) {
    m.insert(k.into(), v);
}
