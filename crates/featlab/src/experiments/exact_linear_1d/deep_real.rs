//! The `exact_deep_real` experiment: the measurements of the exact 1-D model carried to a
//! deep nonlinear network on real data (Xu & Ziyin, arXiv 2401.07085 v3, "deep nonlinear
//! networks handling real-world tasks"; the protocol here is ours, the paper's is not
//! available to us).
//!
//! A ReLU MLP `f(x) = γ · W_L σ(⋯σ(W_1 x))` (standard init std α/√fan_in, no biases) is
//! trained by full-batch GD on MSE to one-hot targets of scikit-learn's 8×8 digits, over a
//! grid of output scale γ and init scale α. The step size is
//! `lr / (max(γ, 1)² · max(α, 1)^{2(L−1)})`: the NTK scales as γ²α^{2(L−1)}, so this keeps
//! GD stable for large γ or α without inflating the step for small ones (an inflated step
//! of lr/γ² at γ = 0.1 blew the ReLU weights up by e³⁰ in a first version). With
//! `center_output = true` the model trained is f(x; θ) − f(x; θ₀) (targets shifted by the
//! initial outputs), which removes the random initial function. Measured per run, start vs end: per-layer norm change, Gram alignment of
//! consecutive layers, empirical NTK change on a probe batch of test images, test accuracy;
//! each run is labelled by [`crate::theory::exact_linear_1d::classify`].

use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::io::{one_hot, read_sklearn_digits};
use crate::data::Dataset;
use crate::experiments::{CsvTable, Experiment, RunOutput};
use crate::figure::{Figure, FigureKind, Heatmap, LinePlot, Scale, Series};
use crate::model::config::MlpConfig;
use crate::model::{Activation, Loss, Model, ModelConfig, Parametrization};
use crate::rng::{normal_vec, permutation, stream};
use crate::theory::exact_linear_1d::measure::{
    consecutive_alignments, empirical_ntk, kernel_rel_change, layer_norms,
};
use crate::theory::exact_linear_1d::{classify, Classification, DynamicsMeasures, Thresholds};
use crate::train::{
    self, GradientDescent, LossObserver, Observer, Problem, RunContext, RunOptions,
};
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn name() -> String {
    "exact_deep_real".into()
}
fn d_frac() -> f64 {
    0.3
}
fn d_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn d_act() -> Activation {
    Activation::Relu
}
fn d_steps() -> u64 {
    1000
}
fn d_lr() -> f64 {
    0.5
}
fn d_probe() -> usize {
    32
}
fn d_mnist1d() -> PathBuf {
    PathBuf::from("data/mnist1d")
}
fn d_every() -> u64 {
    25
}

/// Where the images come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeepData {
    /// scikit-learn's 8×8 digits (`scripts/fetch-digits.sh` writes `data/digits/digits.csv.gz`).
    Digits { path: PathBuf },
    /// MNIST-1D (`scripts/fetch-mnist1d.sh` writes `data/mnist1d/`): the 4000 + 1000
    /// sequences pooled by the shared labelled loader (raw values, no preprocessing), then
    /// split by `test_fraction` as the digits are.
    Mnist1d {
        #[serde(default = "d_mnist1d")]
        path: PathBuf,
    },
    /// A synthetic stand-in (for tests): n samples of dimension d from `classes` Gaussian
    /// class means, labels by nearest mean.
    Synthetic { n: usize, d: usize, classes: usize },
}

/// Config of `exact_deep_real`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeepRealConfig {
    #[serde(default = "name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    pub data: DeepData,
    /// Fraction of samples held out for testing (split seeded by the run seed).
    #[serde(default = "d_frac")]
    pub test_fraction: f64,
    #[serde(default = "d_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default = "d_act")]
    pub activation: Activation,
    /// Output scales γ (grid axis).
    pub gammas: Vec<f64>,
    /// Init scales α (grid axis).
    pub init_scales: Vec<f64>,
    /// GD steps per run.
    #[serde(default = "d_steps")]
    pub steps: u64,
    /// Base step size (see the module docs for the per-cell scaling).
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Probe batch size (test images) for the empirical NTK.
    #[serde(default = "d_probe")]
    pub probe: usize,
    /// Record the loss every this many steps.
    #[serde(default = "d_every")]
    pub record_every: u64,
    /// Train the centred model f(x; θ) − f(x; θ₀) (Chizat & Bach's lazy-training trick):
    /// removes the random initial function, so no output has to be undone.
    #[serde(default)]
    pub center_output: bool,
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// The `exact_deep_real` experiment.
pub struct DeepRealExperiment;

/// Load (or synthesise) the data and split it into train and test sets.
pub fn load_split(cfg: &DeepRealConfig) -> Result<(Dataset, Dataset, Vec<u8>)> {
    let (x, labels, classes) = match &cfg.data {
        DeepData::Digits { path } => {
            if !path.exists() {
                return Err(Error::config(
                    "data.path",
                    format!("`{}` does not exist: run `scripts/fetch-digits.sh` from the repository root to fetch scikit-learn's 8×8 digits (or set data.path)", path.display()),
                ));
            }
            let (x, l) = read_sklearn_digits(path)?;
            (x.to_mat(), l, 10usize)
        }
        DeepData::Mnist1d { path } => {
            let shared: crate::data::labelled::LabelledDataConfig = toml::from_str(&format!(
                "kind = \"mnist1d\"\npath = {:?}\nstandardize = \"none\"\nlabel_shift = 0.0",
                path.display().to_string()
            ))
            .map_err(|e| Error::config("data", e.to_string()))?;
            let lab = shared.build(cfg.seed)?;
            (lab.train.x, lab.train_labels, lab.classes)
        }
        DeepData::Synthetic { n, d, classes } => {
            if *n < 4 || *d == 0 || *classes < 2 || *classes > 255 {
                return Err(Error::config(
                    "data",
                    "synthetic data need n ≥ 4, d ≥ 1 and 2 ≤ classes ≤ 255",
                ));
            }
            let mut rng = stream(cfg.seed, "synthetic");
            let means: Vec<Vec<f64>> = (0..*classes)
                .map(|_| normal_vec(&mut rng, *d, 1.0))
                .collect();
            let mut x = Mat::zeros(*n, *d);
            let mut l = Vec::with_capacity(*n);
            for i in 0..*n {
                let c = i % classes;
                let noise = normal_vec(&mut rng, *d, 0.7);
                for j in 0..*d {
                    x[(i, j)] = means[c][j] + noise[j];
                }
                l.push(c as u8);
            }
            (x, l, *classes)
        }
    };
    let n = x.nrows();
    let n_test = ((n as f64) * cfg.test_fraction).round() as usize;
    if n_test == 0 || n_test >= n {
        return Err(Error::config(
            "test_fraction",
            format!("leaves {n_test} of {n} samples for testing; need at least one in each split"),
        ));
    }
    let perm = permutation(&mut stream(cfg.seed, "split"), n);
    let (test_idx, train_idx) = perm.split_at(n_test);
    let take = |idx: &[usize]| -> Result<(Dataset, Vec<u8>)> {
        let xs = Mat::from_fn(idx.len(), x.ncols(), |i, j| x[(idx[i], j)]);
        let l: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
        let y = one_hot(&l, classes, 0.0)?.to_mat();
        Ok((Dataset::new(xs, y)?, l))
    };
    let (train, _) = take(train_idx)?;
    let (test, test_labels) = take(test_idx)?;
    Ok((train, test, test_labels))
}

/// Fraction of rows whose arg-max output (minus `offset`, the initial outputs of a
/// centred model) equals the label.
pub fn accuracy(
    model: &dyn Model,
    params: &[f64],
    x: faer::MatRef<'_, f64>,
    labels: &[u8],
    offset: Option<&Mat<f64>>,
) -> f64 {
    let mut out = model.predict(params, x);
    if let Some(o) = offset {
        out = Mat::from_fn(out.nrows(), out.ncols(), |i, j| out[(i, j)] - o[(i, j)]);
    }
    let mut hit = 0usize;
    for (i, &l) in labels.iter().enumerate() {
        let mut best = 0;
        for j in 1..out.ncols() {
            if out[(i, j)] > out[(i, best)] {
                best = j;
            }
        }
        hit += usize::from(best == l as usize);
    }
    hit as f64 / labels.len().max(1) as f64
}

/// Everything measured on one (γ, α) run.
#[derive(Debug, Clone, Serialize)]
pub struct DeepRun {
    pub gamma: f64,
    pub init_scale: f64,
    pub lr: f64,
    pub diverged: bool,
    pub train_loss_start: f64,
    pub train_loss_end: f64,
    pub test_accuracy_start: f64,
    pub test_accuracy_end: f64,
    pub ntk_rel_change: f64,
    pub alignment_start: Vec<f64>,
    pub alignment_end: Vec<f64>,
    pub log_norm_ratios: Vec<f64>,
    pub classification: Option<Classification>,
    pub seconds: f64,
    #[serde(skip)]
    pub loss_curve: (Vec<f64>, Vec<f64>),
}

/// Train and measure one cell.
pub fn run_cell(
    cfg: &DeepRealConfig,
    train_set: &Dataset,
    test: &Dataset,
    test_labels: &[u8],
    gamma: f64,
    alpha: f64,
    ctx: &RunContext<'_>,
) -> Result<DeepRun> {
    let start = Instant::now();
    let mc = ModelConfig::Mlp(MlpConfig {
        hidden: cfg.hidden.clone(),
        activation: cfg.activation,
        bias: false,
        output_scale: gamma,
        parametrization: Parametrization::Standard,
        init_scale: alpha,
        init_std: None,
        multipliers: None,
        lr_layers: None,
    });
    let (model, p0) = mc.build(
        train_set.d(),
        train_set.c(),
        &mut stream(cfg.seed, &format!("init-{gamma}-{alpha}")),
    )?;
    let depth = cfg.hidden.len() + 1;
    let lr = cfg.lr / (gamma.max(1.0).powi(2) * alpha.max(1.0).powi(2 * (depth as i32 - 1)));
    let probe_n = cfg.probe.min(test.n());
    let probe = test.x.as_ref().subrows(0, probe_n);
    let k0 = empirical_ntk(model.as_ref(), &p0, probe);
    let (n0, a0) = (
        layer_norms(model.as_ref(), &p0),
        consecutive_alignments(model.as_ref(), &p0),
    );
    let f0_test = if cfg.center_output {
        Some(model.predict(&p0, test.x.as_ref()))
    } else {
        None
    };
    let acc0 = accuracy(
        model.as_ref(),
        &p0,
        test.x.as_ref(),
        test_labels,
        f0_test.as_ref(),
    );
    let shifted;
    let train_set = if cfg.center_output {
        let f0 = model.predict(&p0, train_set.x.as_ref());
        shifted = Dataset::new(
            train_set.x.clone(),
            Mat::from_fn(train_set.n(), train_set.c(), |i, j| {
                train_set.y[(i, j)] + f0[(i, j)]
            }),
        )?;
        &shifted
    } else {
        train_set
    };
    let mut problem = Problem::new(model.as_ref(), train_set, Loss::Mse, 0.0, faer::Par::Seq);
    let mut gd = GradientDescent::new(lr, p0.clone());
    let t_max = lr * cfg.steps as f64;
    let record_at: Vec<f64> = (0..=cfg.steps / cfg.record_every.max(1))
        .map(|i| (i * cfg.record_every.max(1)) as f64 * lr)
        .filter(|&t| t <= t_max * (1.0 + 1e-12))
        .collect();
    let opts = RunOptions {
        t_max,
        record_at,
        target_loss: None,
        max_steps: cfg.steps + 1,
        divergence_hint: "lower lr".into(),
    };
    let mut obs: Vec<Box<dyn Observer>> = vec![Box::new(LossObserver)];
    let quiet = RunContext {
        progress: &train::NoProgress,
        cancel: ctx.cancel,
        par: faer::Par::Seq,
    };
    let res = train::run(&mut problem, &mut gd, &mut obs, &opts, &quiet);
    let (diverged, p1, curve) = match res {
        Ok(r) => {
            let t = r.trajectory.column("t").unwrap_or_default();
            let l = r.trajectory.column("loss").unwrap_or_default();
            (
                false,
                r.final_params,
                (t.iter().map(|v| v / lr).collect(), l),
            )
        }
        Err(Error::Diverged { .. }) => (true, p0.clone(), (vec![], vec![])),
        Err(e) => return Err(e),
    };
    let mut ws = model.workspace(train_set.n());
    let l0 = model.loss(
        &p0,
        train_set.x.as_ref(),
        train_set.y.as_ref(),
        Loss::Mse,
        &mut ws,
    );
    let l1 = model.loss(
        &p1,
        train_set.x.as_ref(),
        train_set.y.as_ref(),
        Loss::Mse,
        &mut ws,
    );
    let k1 = empirical_ntk(model.as_ref(), &p1, probe);
    let (n1, a1) = (
        layer_norms(model.as_ref(), &p1),
        consecutive_alignments(model.as_ref(), &p1),
    );
    let acc1 = accuracy(
        model.as_ref(),
        &p1,
        test.x.as_ref(),
        test_labels,
        f0_test.as_ref(),
    );
    let lnr: Vec<f64> = n0.iter().zip(&n1).map(|(a, b)| (b / a).ln()).collect();
    let meas = DynamicsMeasures {
        ntk_rel_change: kernel_rel_change(k0.as_ref(), k1.as_ref()),
        alignment_start: a0.clone(),
        alignment_end: a1.clone(),
        log_norm_ratios: lnr.clone(),
    };
    let class = if diverged {
        None
    } else {
        Some(classify(&meas, &cfg.thresholds))
    };
    Ok(DeepRun {
        gamma,
        init_scale: alpha,
        lr,
        diverged,
        train_loss_start: l0,
        train_loss_end: l1,
        test_accuracy_start: acc0,
        test_accuracy_end: acc1,
        ntk_rel_change: meas.ntk_rel_change,
        alignment_start: a0,
        alignment_end: a1,
        log_norm_ratios: lnr,
        classification: class,
        seconds: start.elapsed().as_secs_f64(),
        loss_curve: curve,
    })
}

impl Experiment for DeepRealExperiment {
    fn name(&self) -> &'static str {
        "exact_deep_real"
    }
    fn about(&self) -> &'static str {
        "kernel/alignment/disalignment/rescaling measurements on a deep ReLU MLP trained on 8×8 digits, over output scale γ and init scale"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let cfg: DeepRealConfig = from_table(table)?;
        if cfg.gammas.is_empty() || cfg.init_scales.is_empty() {
            return Err(Error::config(
                "gammas",
                "gammas and init_scales need at least one value each",
            ));
        }
        if cfg
            .gammas
            .iter()
            .chain(&cfg.init_scales)
            .any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(Error::config(
                "gammas",
                "every γ and init scale must be finite and > 0",
            ));
        }
        if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 1.0) {
            return Err(Error::config("test_fraction", "must be in (0, 1)"));
        }
        if !(cfg.lr.is_finite() && cfg.lr > 0.0)
            || cfg.steps == 0
            || cfg.probe == 0
            || cfg.hidden.is_empty()
            || cfg.hidden.contains(&0)
        {
            return Err(Error::config(
                "lr",
                "need lr > 0, steps ≥ 1, probe ≥ 1 and at least one hidden layer of width ≥ 1",
            ));
        }
        to_table(&cfg)
    }

    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: DeepRealConfig = from_table(resolved)?;
        let (train_set, test, test_labels) = load_split(&cfg)?;
        let cells: Vec<(f64, f64)> = cfg
            .init_scales
            .iter()
            .flat_map(|&a| cfg.gammas.iter().map(move |&g| (g, a)))
            .collect();
        ctx.progress.start("exact_deep_real", cells.len() as u64);
        let done = std::sync::atomic::AtomicU64::new(0);
        // cells in parallel when threads were asked for (each is seeded on its own)
        let runs: Vec<Result<DeepRun>> = ctx.map_units(&cells, |_, &(g, a)| {
            let r = run_cell(&cfg, &train_set, &test, &test_labels, g, a, ctx);
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            ctx.progress.update(k, &format!("γ = {g}, α = {a}"));
            r
        });
        ctx.progress.finish();
        let runs: Vec<DeepRun> = runs.into_iter().collect::<Result<_>>()?;
        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        out.summary
            .insert("train_samples".into(), json!(train_set.n()));
        out.summary.insert("test_samples".into(), json!(test.n()));
        out.summary.insert("runs".into(), json!(runs));
        let mut labels = serde_json::Map::new();
        for r in &runs {
            labels.insert(
                format!("gamma={} alpha={}", r.gamma, r.init_scale),
                json!(r
                    .classification
                    .as_ref()
                    .map(|c| c.mechanism.name())
                    .unwrap_or("diverged")),
            );
        }
        out.summary
            .insert("labels".into(), serde_json::Value::Object(labels));
        let seen: std::collections::BTreeSet<&str> = runs
            .iter()
            .filter_map(|r| r.classification.as_ref().map(|c| c.mechanism.name()))
            .collect();
        out.summary.insert("mechanisms_seen".into(), json!(seen));
        out.agreement = kernel_rows(&cfg, &runs);

        // heatmaps over (γ, α)
        let (ng, na) = (cfg.gammas.len(), cfg.init_scales.len());
        let grid = |f: &dyn Fn(&DeepRun) -> f64| -> Vec<Vec<f64>> {
            (0..na)
                .map(|i| (0..ng).map(|j| f(&runs[i * ng + j])).collect())
                .collect()
        };
        let heat = |name: &str, title: &str, zl: &str, z: Vec<Vec<f64>>, cap: &str| Figure {
            name: name.into(),
            caption: cap.into(),
            kind: FigureKind::Heatmap(Heatmap {
                title: title.into(),
                x_label: "output scale γ".into(),
                y_label: "init scale α".into(),
                z_label: zl.into(),
                x: cfg.gammas.clone(),
                y: cfg.init_scales.clone(),
                z,
                x_scale: Scale::Log,
                y_scale: Scale::Log,
                overlays: vec![],
            }),
        };
        out.figures.push(heat(
            "mechanism",
            "Mechanism label",
            "0 kernel · 1 alignment · 2 disalignment · 3 rescaling · 4 unexplained",
            grid(&|r| {
                r.classification
                    .as_ref()
                    .map(|c| c.mechanism.code())
                    .unwrap_or(f64::NAN)
            }),
            "Classifier label per (γ, α) cell (grey: diverged).",
        ));
        out.figures.push(heat(
            "ntk_change",
            "Empirical NTK change",
            "log₁₀ ‖Θ_T − Θ_0‖/‖Θ_0‖",
            grid(&|r| r.ntk_rel_change.max(1e-16).log10()),
            "Relative change of the empirical NTK on a probe batch of test images.",
        ));
        out.figures.push(heat(
            "alignment_change",
            "Largest change of consecutive-layer Gram alignment",
            "Δa",
            grid(&|r| {
                r.classification
                    .as_ref()
                    .map(|c| c.alignment_change)
                    .unwrap_or(f64::NAN)
            }),
            "Signed change of the Gram alignment of the consecutive layer pair that changed most.",
        ));
        out.figures.push(heat(
            "test_accuracy",
            "Test accuracy after training",
            "accuracy",
            grid(&|r| r.test_accuracy_end),
            "Held-out accuracy at the end of training.",
        ));
        let mut lp = LinePlot::new("Training loss", "GD step", "train loss (MSE)")
            .scales(Scale::Linear, Scale::Log);
        for r in &runs {
            if !r.loss_curve.0.is_empty() {
                lp.series.push(Series::line(
                    format!("γ={} α={}", r.gamma, r.init_scale),
                    r.loss_curve.0.clone(),
                    r.loss_curve.1.clone(),
                ));
            }
        }
        out.figures
            .push(lp.figure("loss", "Full-batch training loss of every cell."));
        let cols = [
            "gamma",
            "init_scale",
            "lr",
            "label_code",
            "ntk_rel_change",
            "alignment_change",
            "max_log_norm_change",
            "test_accuracy_start",
            "test_accuracy_end",
            "train_loss_end",
        ];
        let vals: Vec<Vec<f64>> = vec![
            runs.iter().map(|r| r.gamma).collect(),
            runs.iter().map(|r| r.init_scale).collect(),
            runs.iter().map(|r| r.lr).collect(),
            runs.iter()
                .map(|r| {
                    r.classification
                        .as_ref()
                        .map(|c| c.mechanism.code())
                        .unwrap_or(f64::NAN)
                })
                .collect(),
            runs.iter().map(|r| r.ntk_rel_change).collect(),
            runs.iter()
                .map(|r| {
                    r.classification
                        .as_ref()
                        .map(|c| c.alignment_change)
                        .unwrap_or(f64::NAN)
                })
                .collect(),
            runs.iter()
                .map(|r| {
                    r.classification
                        .as_ref()
                        .map(|c| c.max_log_norm_change)
                        .unwrap_or(f64::NAN)
                })
                .collect(),
            runs.iter().map(|r| r.test_accuracy_start).collect(),
            runs.iter().map(|r| r.test_accuracy_end).collect(),
            runs.iter().map(|r| r.train_loss_end).collect(),
        ];
        out.tables.push(CsvTable {
            name: "deep_runs".into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
            values: vals,
        });
        for m in ["kernel", "alignment", "disalignment", "rescaling"] {
            if !seen.contains(m) {
                out.notes.push(format!(
                    "mechanism `{m}` did not appear in any cell of this grid"
                ));
            }
        }
        if runs.iter().any(|r| r.diverged) {
            out.notes.push("some cells diverged under GD at this step size (marked `diverged`, grey in the heatmaps)".into());
        }
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        Ok(out)
    }
}

/// The exact model's kernel statement tested on the deep net (an exploration: the deep net
/// has no closed form): at the largest output scale γ the NTK barely moves, ΔK/K → 0 as
/// γ → ∞ (K̄ ∝ γσ² in the exact model), so each init scale's run at γ_max should be in the
/// kernel regime, ΔK/K(0) ≤ θ_K (the classifier's kernel threshold). One row per init
/// scale: theory 0, experiment ΔK/K(0), tolerance θ_K. A diverged run has no value and
/// does not hold.
fn kernel_rows(cfg: &DeepRealConfig, runs: &[DeepRun]) -> Vec<AgreementRow> {
    let Some(g_max) = cfg.gammas.iter().copied().reduce(f64::max) else {
        return Vec::new();
    };
    runs.iter()
        .filter(|r| r.gamma == g_max)
        .map(|r| {
            let dk = if r.diverged { f64::NAN } else { r.ntk_rel_change };
            AgreementRow::relative_to(
                format!(
                    "NTK change ΔK/K(0) at γ = {g_max}, α = {} (exact-model statement: kernel regime, ΔK/K → 0; tolerance θ_K)",
                    r.init_scale
                ),
                0.0,
                dk,
                1.0,
                cfg.thresholds.ntk,
            )
            .with_note(format!("seed {}, {} GD steps", cfg.seed, cfg.steps))
        })
        .collect()
}
