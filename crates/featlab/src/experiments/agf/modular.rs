//! The `agf_modular` experiment: a quadratic two-layer net on (template) modular addition
//! (AGF §3.4, Kunin et al. 2025) — gradient flow vs numerical AGF vs closed forms.
//!
//! * Data ([`crate::data::modular`]): all p² pairs, input (a·x, b·x) ∈ R^{2p}, target
//!   ((a+b) mod p)·x, template x mean-centred.
//! * Model: `TwoLayer` with quadratic activation, d = 2p, c = p, no bias:
//!   f = Σ_i w_i (u_iᵀ a·x + v_iᵀ b·x)² (W1 row i = (u_i, v_i), W2 column i = w_i);
//!   `model.activation` swaps σ (relu/linear: κ = 2 for AGF; tanh/gelu with `skip_agf`
//!   only), with the closed forms kept as the quadratic net's reference.
//!   Init (authors' code): u, v ~ N(0, α²/(2p)), w ~ N(0, α²/p), so ‖θ_i(0)‖ ≈ √2 α.
//! * Gradient flow (adaptive, `train.solver`: DOPRI5 or the stiff ROS34PW2) and numerical AGF (one round per neuron activation)
//!   from the same init; the `drops` list has one entry per AGF round, `feature` = the
//!   dominant frequency k of the activated neuron.
//! * Closed forms ([`crate::theory::agf::modular`]): frequency order (decreasing |x̂_k|),
//!   frequency-complete levels, Ū*_k and the first-jump lower bound (1/ρ_max − 1)/(3Ū*_k1).
//! * Diagnostics: per-frequency output power P_k(f) = (1/2p) Σ_{ξ=±k} mean_{ab} |f̂_ξ(a, b)|²
//!   vs t (template value E_k; the loss is Σ_k P_k(f − y)), per-neuron spectra.

use super::compare::refined_schedule;
use crate::compare::drops::{
    agreement_rows, drop_errors, drops_json, feature_level_rows, first_cascade_len, match_drops,
    order_mismatch_row, DropTolerance, Staircase,
};
use crate::config::{from_table, to_table};
use crate::data::modular::{modular_addition, Template};
use crate::experiments::agf::compare::settings_for_alpha;
use crate::experiments::{param_arrays, CsvTable, Experiment, RunOutput};
use crate::figure::{Figure, FigureKind, Heatmap, LinePlot, RefLine, Scale, Series};
use crate::model::two_layer::quadratic_init_direction;
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Loss};
use crate::rng::stream;
use crate::theory::agf::features::{dominant_frequency, modular_neuron_spectrum};
use crate::theory::agf::modular::ModularTheory;
use crate::theory::agf::{run_agf, AgfOptions, CostStop, GradientFlowCost};
use crate::train::{self, LossObserver, Observer, Problem, RunContext, TrainConfig};
use crate::{Error, NdArray, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Instant;

fn name() -> String {
    "agf_modular".into()
}
fn d_p() -> usize {
    20
}
fn d_width() -> usize {
    18
}
fn d_alpha() -> f64 {
    1e-2
}
fn d_template() -> Template {
    Template::Fourier {
        frequencies: vec![1, 3, 5],
        magnitudes: vec![10.0, 5.0, 2.5],
    }
}

/// `[data]` of the `agf_modular` experiment: template modular addition on all p² pairs
/// (AGF §3.4; [`crate::data::modular`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModularDataConfig {
    /// Modulus p (inputs (a·x, b·x) ∈ R^{2p}, targets ((a+b) mod p)·x ∈ R^p).
    #[serde(default = "d_p")]
    pub p: usize,
    /// Template x (`one_hot`, `fourier` with frequencies/magnitudes, `gaussian`; mean-centred).
    #[serde(default = "d_template")]
    pub template: Template,
}

impl Default for ModularDataConfig {
    fn default() -> Self {
        Self {
            p: d_p(),
            template: d_template(),
        }
    }
}

fn d_activation() -> Activation {
    Activation::Quadratic
}

/// `[model]` of the `agf_modular` experiment: the two-layer net
/// f = Σ_i w_i σ(u_iᵀ a·x + v_iᵀ b·x) (d = 2p, c = p, no bias), σ(z) = z² in AGF §3.4.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModularModelConfig {
    /// Number of neurons H.
    #[serde(default = "d_width")]
    pub width: usize,
    /// Activation σ: `quadratic` (the paper's, default; κ = 3), or `relu` / `linear`
    /// (κ = 2) — the closed forms (order, Ū*_k, first-jump bound) are derived for the
    /// quadratic net only and are reported as such; `tanh` / `gelu` are not homogeneous,
    /// so they run with `skip_agf = true` only.
    #[serde(default = "d_activation")]
    pub activation: Activation,
}

impl Default for ModularModelConfig {
    fn default() -> Self {
        Self {
            width: d_width(),
            activation: d_activation(),
        }
    }
}

/// Config of the `agf_modular` experiment: `[data]` (p, template), `[model]` (width), the
/// initial scale α at the top level (as in `agf_attention`, next to `alpha_series`), `[train]`
/// (gradient flow), `[agf]`, `[cost]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgfModularConfig {
    #[serde(default = "name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    /// Modulus and template.
    #[serde(default)]
    pub data: ModularDataConfig,
    /// Width of the quadratic net.
    #[serde(default)]
    pub model: ModularModelConfig,
    /// Initial scale α.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    pub train: TrainConfig,
    #[serde(default)]
    pub agf: AgfOptions,
    #[serde(default)]
    pub cost: GradientFlowCost,
    /// Skip numerical AGF (gradient flow + closed forms only, e.g. for order sweeps).
    #[serde(default)]
    pub skip_agf: bool,
    /// Extra initial scales: numerical AGF and GF from the same init *direction* at each α
    /// (GF t_max scaled by `alpha`/α, atol by α/`alpha`), tabulated as `alpha_series`.
    #[serde(default)]
    pub alpha_series: Vec<f64>,
}

/// Top-level keys of the pre-`[data]`/`[model]` layout and where they live now.
const MOVED_KEYS: [(&str, &str); 3] = [
    ("p", "data.p"),
    ("template", "data.template"),
    ("width", "model.width"),
];

/// A clear error for a config (or `--set`) that still uses a moved top-level key.
fn reject_moved_keys(table: &toml::Table) -> Result<()> {
    for (old, new) in MOVED_KEYS {
        if table.contains_key(old) {
            return Err(Error::config(
                old,
                format!("unknown top-level key; the agf_modular config keeps it in a section now: use `{new}` (e.g. `--set {new}=…`)"),
            ));
        }
    }
    Ok(())
}

/// The `agf_modular` experiment.
pub struct AgfModularExperiment;

impl AgfModularConfig {
    fn validate(&self) -> Result<()> {
        if self.data.p < 3 {
            return Err(Error::config(
                "data.p",
                format!("the modulus must be ≥ 3, got {}", self.data.p),
            ));
        }
        if self.model.width == 0 {
            return Err(Error::config("model.width", "must be ≥ 1"));
        }
        if !self.skip_agf && self.model.activation.homogeneity().is_none() {
            return Err(Error::config(
                "model.activation",
                format!(
                    "AGF needs neurons that are positively homogeneous in their parameters (quadratic, relu, linear), got {}; set skip_agf = true to run gradient flow alone",
                    self.model.activation.name()
                ),
            ));
        }
        if self.model.activation == Activation::Relu {
            // measured (docs/agf.md, "ReLU instead of quadratic"): on the p² pairs the field
            // has a kink wherever a neuron's hyperplane crosses a sample, and the adaptive
            // solvers' steps collapse there (no progress in 10 min of GF to t = 30)
            let adaptive = [
                (
                    self.train.method == crate::train::Method::Flow,
                    "train.method",
                    "\"gd\" (with train.lr)",
                ),
                (
                    !self.skip_agf && self.agf.fixed_dt.is_none(),
                    "agf.fixed_dt",
                    "a fixed step, e.g. 0.05 (with agf.tableau = \"bosh3\")",
                ),
                (
                    !self.skip_agf && self.cost.fixed_dt.is_none(),
                    "cost.fixed_dt",
                    "a fixed step, e.g. 5e-3 (with cost.solver = \"heun_euler\")",
                ),
            ];
            if let Some(&(_, key, fix)) = adaptive.iter().find(|a| a.0) {
                return Err(Error::config(
                    key,
                    format!("model.activation = relu makes the gradient discontinuous, and adaptive steps stall at its kinks: set {key} to {fix}, or start from the agf-modular-relu preset"),
                ));
            }
        }
        for (key, a) in std::iter::once(("alpha", self.alpha))
            .chain(self.alpha_series.iter().map(|a| ("alpha_series", *a)))
        {
            if !(a.is_finite() && a > 0.0 && a < 0.5) {
                return Err(Error::config(
                    key,
                    format!("must be in (0, 0.5) (AGF needs initial neuron norms < 1), got {a}"),
                ));
            }
        }
        Ok(())
    }
}

/// DFT tables (p × (⌊p/2⌋+1)): cos and sin of 2πξn/p.
fn dft_tables(p: usize) -> (Mat<f64>, Mat<f64>) {
    let k = p / 2 + 1;
    let ang = |n: usize, xi: usize| 2.0 * std::f64::consts::PI * ((n * xi) % p) as f64 / p as f64;
    (
        Mat::from_fn(p, k, |n, xi| ang(n, xi).cos()),
        Mat::from_fn(p, k, |n, xi| ang(n, xi).sin()),
    )
}

/// P_k(F) for k = 0..=⌊p/2⌋ from outputs F (n × p).
fn output_power(f: &Mat<f64>, cos: &Mat<f64>, sin: &Mat<f64>) -> Vec<f64> {
    let (n, p) = (f.nrows(), f.ncols());
    let re = f * cos;
    let im = f * sin;
    (0..cos.ncols())
        .map(|k| {
            let w = if k == 0 || 2 * k == p { 1.0 } else { 2.0 };
            let s: f64 = (0..n)
                .map(|i| re[(i, k)].powi(2) + im[(i, k)].powi(2))
                .sum();
            w * s / (2.0 * p as f64 * n as f64)
        })
        .collect()
}

/// Records `power_k{k}` for k = 1..=⌊p/2⌋.
struct PowerObserver {
    p: usize,
    cos: Mat<f64>,
    sin: Mat<f64>,
}

impl Observer for PowerObserver {
    fn columns(&self) -> Vec<String> {
        (1..=self.p / 2).map(|k| format!("power_k{k}")).collect()
    }
    fn observe(&mut self, _t: f64, params: &[f64], problem: &mut Problem<'_>) -> Result<Vec<f64>> {
        let f = problem.model.predict(params, problem.data.x.as_ref());
        Ok(output_power(&f, &self.cos, &self.sin)[1..].to_vec())
    }
}

fn first_occurrence_order(seq: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for &k in seq {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Init direction of the §3.4 init at α = 1: u, v ~ N(0, 1/(2p)), w ~ N(0, 1/p); the init
/// at scale α is α times it.
fn init_direction(cfg: &AgfModularConfig) -> Vec<f64> {
    quadratic_init_direction(cfg.seed, 2 * cfg.data.p, cfg.model.width, cfg.data.p)
}

/// CPU time (seconds) consumed so far by the calling thread, from Linux's
/// `/proc/thread-self/schedstat` (first field, nanoseconds on the CPU); `None` elsewhere.
/// The experiment's work runs on one thread with `--threads 1` (the default), so on a
/// shared machine this measures the work itself, which wall time does not.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Difference of two [`thread_cpu_seconds`] readings.
pub(crate) fn cpu_since(start: Option<f64>) -> Option<f64> {
    Some(thread_cpu_seconds()? - start?)
}

/// Numerical AGF and gradient flow from `alpha · direction`.
struct AlphaRun {
    init: Vec<f64>,
    agf: Option<crate::theory::agf::AgfResult>,
    agf_seconds: f64,
    agf_cpu_seconds: Option<f64>,
    stairs: Option<Staircase>,
    gf: train::TrainResult,
    gf_seconds: f64,
    gf_cpu_seconds: Option<f64>,
    gf_stats: serde_json::Value,
}

/// One α: AGF (unless `skip_agf`) then GF with `observers`; GF t_max is scaled by
/// `cfg.alpha/alpha` and atol by `alpha/cfg.alpha` (parameters of dormant neurons are O(α)).
fn run_alpha(
    cfg: &AgfModularConfig,
    model: &TwoLayer,
    data: &crate::data::Dataset,
    direction: &[f64],
    alpha: f64,
    mut observers: Vec<Box<dyn Observer>>,
    ctx: &RunContext<'_>,
) -> Result<AlphaRun> {
    let init: Vec<f64> = direction.iter().map(|g| alpha * g).collect();
    let (mut tc, ao) = settings_for_alpha(&cfg.train, &cfg.agf, cfg.alpha, alpha);
    let start = Instant::now();
    let cpu = thread_cpu_seconds();
    let agf = if cfg.skip_agf {
        None
    } else {
        Some(run_agf(
            model,
            data,
            &init,
            &mut cfg.cost.clone(),
            &ao,
            ctx,
        )?)
    };
    let agf_seconds = start.elapsed().as_secs_f64();
    let agf_cpu_seconds = cpu_since(cpu);
    let stairs = agf.as_ref().map(|a| Staircase {
        initial_loss: a.initial_loss,
        times: a.jump_times(),
        levels: a.rounds.iter().map(|r| r.loss).collect(),
        features: a
            .rounds
            .iter()
            .map(|r| dominant_frequency(&modular_neuron_spectrum(model, &r.params, r.activated[0])))
            .collect(),
    });
    if let Some(st) = &stairs {
        tc.record = refined_schedule(&tc, &st.times)?;
    }
    let mut problem = Problem::new(model, data, Loss::Mse, 0.0, ctx.par);
    let mut stepper = tc.stepper(init.clone(), stream(cfg.seed, "batches"))?;
    let opts = tc.run_options()?;
    let start = Instant::now();
    let cpu = thread_cpu_seconds();
    let gf = train::run(&mut problem, stepper.as_mut(), &mut observers, &opts, ctx)?;
    let gf_seconds = start.elapsed().as_secs_f64();
    let gf_cpu_seconds = cpu_since(cpu);
    Ok(AlphaRun {
        init,
        agf,
        agf_seconds,
        agf_cpu_seconds,
        gf_cpu_seconds,
        stairs,
        gf_stats: stepper.stats(),
        gf,
        gf_seconds,
    })
}

impl Experiment for AgfModularExperiment {
    fn name(&self) -> &'static str {
        "agf_modular"
    }
    fn about(&self) -> &'static str {
        "AGF §3.4: quadratic net (or model.activation = relu/linear) on template modular addition — Fourier frequencies in decreasing |x̂| order, GF vs numerical AGF vs closed forms"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        reject_moved_keys(table)?;
        let mut cfg: AgfModularConfig = from_table(table)?;
        cfg.train.resolve();
        cfg.train.validate()?;
        cfg.validate()?;
        to_table(&cfg)
    }

    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: AgfModularConfig = from_table(resolved)?;
        cfg.validate()?;
        let p = cfg.data.p;
        let template = cfg
            .data
            .template
            .build(p, &mut stream(cfg.seed, "template"))?;
        let data = modular_addition(&template)?;
        let theory = ModularTheory::new(&template);
        let model = TwoLayer::new(2 * p, cfg.model.width, p, cfg.model.activation, false);
        let quadratic = cfg.model.activation == Activation::Quadratic;
        let direction = init_direction(&cfg);
        let (cos, sin) = dft_tables(p);
        let main = run_alpha(
            &cfg,
            &model,
            &data,
            &direction,
            cfg.alpha,
            vec![
                Box::new(LossObserver),
                Box::new(PowerObserver {
                    p,
                    cos: cos.clone(),
                    sin: sin.clone(),
                }),
            ],
            ctx,
        )?;
        let AlphaRun {
            init,
            agf,
            agf_seconds,
            agf_cpu_seconds,
            stairs,
            gf,
            gf_seconds,
            gf_cpu_seconds,
            gf_stats,
        } = main;

        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        out.arrays
            .push(("data/x.npy".into(), NdArray::from_mat(data.x.as_ref())));
        out.arrays
            .push(("data/y.npy".into(), NdArray::from_mat(data.y.as_ref())));
        out.arrays.push((
            "data/template.npy".into(),
            NdArray::vector(template.clone()),
        ));
        out.arrays
            .extend(param_arrays(&model, &init, "params/init"));
        out.arrays
            .extend(param_arrays(&model, &gf.final_params, "params/final"));

        let traj = &gf.trajectory;
        let t = traj.column("t").unwrap_or_default();
        let loss = traj.column("loss").unwrap_or_default();
        let order = theory.order();
        let levels = theory.levels();
        // GF: time each frequency's output power first reaches half the template energy
        let freq_times: Vec<(usize, Option<f64>)> = order
            .iter()
            .map(|&k| {
                let pk = traj.column(&format!("power_k{k}")).unwrap_or_default();
                (
                    k,
                    (0..t.len())
                        .find(|&i| pk[i] >= 0.5 * theory.energies[k])
                        .map(|i| t[i]),
                )
            })
            .collect();
        let mut learned: Vec<(usize, f64)> = freq_times
            .iter()
            .filter_map(|(k, t)| t.map(|t| (*k, t)))
            .collect();
        learned.sort_by(|a, b| a.1.total_cmp(&b.1));
        let order_gf: Vec<usize> = learned.iter().map(|x| x.0).collect();
        let ties = theory.has_ties(1e-9);
        let order_gf_correct = !ties && order_gf == order[..order_gf.len()];
        // frequencies GF has not learned by its horizon: say so (and whether AGF got there)
        let gf_t_end = t.last().copied().unwrap_or(0.0);
        for &(k, tk) in &freq_times {
            if tk.is_some() {
                continue;
            }
            let agf_k = stairs.as_ref().and_then(|st| {
                st.features
                    .iter()
                    .position(|&f| f == k)
                    .map(|i| st.times[i])
            });
            let agf_says = match (&stairs, agf_k) {
                (None, _) => "AGF was skipped".to_string(),
                (Some(_), Some(ta)) => {
                    format!("AGF's first frequency-{k} neuron jumps at t = {ta:.4e}")
                }
                (Some(_), None) => {
                    format!("AGF, run to the same horizon, has no frequency-{k} round either")
                }
            };
            out.notes.push(format!(
                "gradient flow ended at t = {gf_t_end:.4e} (train.t_max) before learning frequency {k} (its output power never reached half the template energy E_{k}); {agf_says}. Raise train.t_max (and with it AGF's horizon) to see it: plateau lengths grow like 1/(α·Ū*_k)"
            ));
        }
        let level_cross = crate::analysis::midpoint_crossings(&t, &loss, &levels);
        let rho_max = (0..cfg.model.width)
            .map(|i| {
                crate::linalg::norm2(
                    &crate::model::NeuronSum::neuron_params(&model, i)
                        .iter()
                        .map(|&j| init[j])
                        .collect::<Vec<_>>(),
                )
            })
            .fold(0.0f64, f64::max);
        let first_lb = theory.jump_time(order[0], rho_max);
        let spectra: Vec<Vec<f64>> = (0..cfg.model.width)
            .map(|i| modular_neuron_spectrum(&model, &gf.final_params, i))
            .collect();
        let neuron_norms: Vec<f64> = (0..cfg.model.width)
            .map(|i| spectra[i].iter().sum::<f64>())
            .collect();
        let big = neuron_norms.iter().cloned().fold(0.0f64, f64::max);
        let dominant: Vec<Option<usize>> = (0..cfg.model.width)
            .map(|i| (neuron_norms[i] > 1e-3 * big).then(|| dominant_frequency(&spectra[i])))
            .collect();
        let per_freq: Vec<(usize, usize)> = order
            .iter()
            .map(|&k| (k, dominant.iter().filter(|d| **d == Some(k)).count()))
            .collect();

        let s = &mut out.summary;
        if let (Some(a), Some(st)) = (&agf, &stairs) {
            let drops = match_drops(st, &t, &loss);
            let errors = drop_errors(&drops, st.initial_loss);
            let (et, el) = (errors.max_time, errors.max_level);
            let order_agf = first_occurrence_order(&st.features);
            s.insert("drops".into(), drops_json(&drops));
            s.insert("max_rel_time_error".into(), json!(et));
            s.insert("max_rel_loss_error".into(), json!(el));
            let first = first_cascade_len(&drops);
            let e1 = drop_errors(&drops[..first], st.initial_loss);
            let (et1, el1) = (e1.max_time, e1.max_level);
            s.insert("first_cascade_rounds".into(), json!(first));
            s.insert("max_rel_time_error_first_cascade".into(), json!(et1));
            s.insert("max_rel_loss_error_first_cascade".into(), json!(el1));
            s.insert("agf_seconds".into(), json!(agf_seconds));
            s.insert("agf_cpu_seconds".into(), json!(agf_cpu_seconds));
            s.insert(
                "agf_cost_fraction".into(),
                json!(agf_seconds / gf_seconds.max(f64::MIN_POSITIVE)),
            );
            s.insert(
                "agf_cost_fraction_cpu".into(),
                json!(agf_cpu_seconds.zip(gf_cpu_seconds).map(|(a, g)| a / g)),
            );
            s.insert("agf_stop".into(), json!(a.stop));
            s.insert("agf_rounds".into(), json!(a.rounds.len()));
            s.insert(
                "agf_near_ties".into(),
                json!(a
                    .rounds
                    .iter()
                    .map(|r| r.near_ties.clone())
                    .collect::<Vec<_>>()),
            );
            s.insert(
                "agf_deactivated".into(),
                json!(a
                    .rounds
                    .iter()
                    .map(|r| r.deactivated.clone())
                    .collect::<Vec<_>>()),
            );
            s.insert(
                "agf_cost_converged".into(),
                json!(a.rounds.iter().all(|r| r.cost_converged)),
            );
            s.insert(
                "agf_cost_phases".into(),
                json!(a
                    .rounds
                    .iter()
                    .map(|r| json!({
                        "converged": r.cost_converged,
                        "stop": r.cost_stop,
                        "grad_norm": r.cost_grad_norm,
                        "level_change": r.cost_level_change,
                        "time": r.cost_time,
                        "gradient_evals": r.cost_work,
                        "hessians": r.cost_hessians,
                        "active": r.active.len(),
                    }))
                    .collect::<Vec<_>>()),
            );
            for (k, r) in a.rounds.iter().enumerate() {
                match r.cost_stop {
                    CostStop::Budget => out.notes.push(format!(
                        "AGF round {}: the cost phase stopped at t = {:.3e} with ‖∇C‖ = {:.3e} > gtol = {:.1e} (not converged; cost.t_max / cost.max_steps)",
                        k + 1,
                        r.cost_time.unwrap_or(f64::NAN),
                        r.cost_grad_norm.unwrap_or(f64::NAN),
                        cfg.cost.gtol
                    )),
                    CostStop::Level => out.notes.push(format!(
                        "AGF round {}: the cost level converged at t = {:.3e} (relative decrease {:.1e} over the last doubling) while ‖∇C‖ = {:.3e} > gtol = {:.1e}: no minimiser attained (norms growing)",
                        k + 1,
                        r.cost_time.unwrap_or(f64::NAN),
                        r.cost_level_change.unwrap_or(f64::NAN),
                        r.cost_grad_norm.unwrap_or(f64::NAN),
                        cfg.cost.gtol
                    )),
                    _ => {}
                }
            }
            s.insert("feature_order_agf".into(), json!(order_agf));
            s.insert(
                "feature_order_identical".into(),
                json!(!ties && order_agf == order_gf && order_gf == order[..order_gf.len()]),
            );
            out.tables
                .push(super::compare::drops_table(&drops, "frequency"));
            if et > 0.05 {
                out.notes.push(format!(
                    "AGF vs GF jump times differ by up to {:.1}% at α = {} (target 5%)",
                    100.0 * et,
                    cfg.alpha
                ));
            }
        }
        s.insert("gf_seconds".into(), json!(gf_seconds));
        s.insert("gf_cpu_seconds".into(), json!(gf_cpu_seconds));
        s.insert("gf_solver".into(), json!(cfg.train.solver.name()));
        s.insert("gf_solver_stats".into(), gf_stats);
        s.insert("frequency_order_theory".into(), json!(order));
        s.insert("frequency_order_gf".into(), json!(order_gf));
        s.insert("frequency_order_gf_correct".into(), json!(order_gf_correct));
        s.insert("template_has_ties".into(), json!(ties));
        s.insert("template_magnitudes".into(), json!(theory.magnitudes));
        s.insert("levels_theory".into(), json!(levels));
        s.insert("level_drop_times_gf".into(), json!(level_cross));
        // ---- agreement: the first cascade round by round, then each frequency ----
        let setting = format!("p = {}, α = {:e}, seed {}", cfg.data.p, cfg.alpha, cfg.seed);
        let freq_name = |i: usize| format!("frequency {}", order.get(i).copied().unwrap_or(0));
        if let Some(st) = &stairs {
            let drops = match_drops(st, &t, &loss);
            let first = first_cascade_len(&drops);
            out.agreement.extend(
                agreement_rows(
                    &drops[..first],
                    st.initial_loss,
                    "AGF",
                    |f| format!("frequency {f}, first cascade"),
                    DropTolerance::default(),
                )
                .into_iter()
                .map(|r| r.with_note(setting.clone())),
            );
            out.agreement.extend(
                feature_level_rows(st, &t, &loss, &levels, freq_name, DropTolerance::default())
                    .into_iter()
                    .map(|r| r.with_note(setting.clone())),
            );
        }
        out.agreement.push(
            order_mismatch_row(
                "frequency order, theory vs GF (positions that differ)",
                &order,
                &order_gf,
                0,
            )
            .with_note(setting),
        );
        s.insert(
            "frequency_times_gf".into(),
            json!(freq_times
                .iter()
                .map(|(k, t)| json!({"k": k, "t": t}))
                .collect::<Vec<_>>()),
        );
        // Ū*_k and the first-jump bound are derived for σ(z) = z² (AGF §3.4): null otherwise
        s.insert("closed_forms_apply".into(), json!(quadratic));
        s.insert(
            "max_utility_theory".into(),
            json!(quadratic.then(|| order
                .iter()
                .map(|&k| theory.max_utility(k))
                .collect::<Vec<_>>())),
        );
        s.insert(
            "first_jump_lower_bound".into(),
            json!(quadratic.then_some(first_lb)),
        );
        s.insert(
            "first_jump_gf_over_lower_bound".into(),
            json!(level_cross
                .first()
                .copied()
                .flatten()
                .filter(|_| quadratic)
                .map(|t| t / first_lb)),
        );
        s.insert("neuron_dominant_frequency".into(), json!(dominant));
        s.insert(
            "neurons_per_frequency".into(),
            json!(per_freq
                .iter()
                .map(|(k, c)| json!({"k": k, "neurons": c}))
                .collect::<Vec<_>>()),
        );
        s.insert("final_loss_gf".into(), json!(loss.last()));
        if ties {
            out.notes.push("the template has frequencies of equal |x̂| (e.g. one-hot): their relative order is not predicted".into());
        }
        if !quadratic {
            out.notes.push(format!(
                "model.activation = {}: the closed forms (frequency order by decreasing |x̂_k|, Ū*_k, the first-jump bound) are derived for the quadratic net of AGF §3.4 only; `frequency_order_theory` and the frequency-complete levels are shown as the quadratic net's reference, not as a prediction for this net",
                cfg.model.activation.name()
            ));
        }

        // α-series: AGF vs GF from the same init direction at each α
        let mut alphas = cfg.alpha_series.clone();
        alphas.sort_by(|a, b| b.total_cmp(a));
        alphas.dedup();
        let mut rows = Vec::new();
        for &a in &alphas {
            let r = if a == cfg.alpha {
                None
            } else {
                Some(run_alpha(
                    &cfg,
                    &model,
                    &data,
                    &direction,
                    a,
                    vec![Box::new(LossObserver)],
                    ctx,
                )?)
            };
            let (rt, rl, st, agf_s, gf_s, stats) = match &r {
                Some(r) => (
                    r.gf.trajectory.column("t").unwrap_or_default(),
                    r.gf.trajectory.column("loss").unwrap_or_default(),
                    r.stairs.clone(),
                    r.agf_seconds,
                    r.gf_seconds,
                    r.gf_stats.clone(),
                ),
                None => (
                    t.clone(),
                    loss.clone(),
                    stairs.clone(),
                    agf_seconds,
                    gf_seconds,
                    s.get("gf_solver_stats").cloned().unwrap_or_default(),
                ),
            };
            // AGF's cost against GF's at this α (CPU time of the working thread; null off Linux)
            let (agf_cpu, gf_cpu) = match &r {
                Some(r) => (r.agf_cpu_seconds, r.gf_cpu_seconds),
                None => (agf_cpu_seconds, gf_cpu_seconds),
            };
            let Some(st) = st else { continue };
            let d = match_drops(&st, &rt, &rl);
            let e = drop_errors(&d, st.initial_loss);
            let (et, el) = (e.max_time, e.max_level);
            let order_agf = first_occurrence_order(&st.features);
            rows.push(json!({
                "alpha": a,
                "max_rel_time_error": et,
                "max_rel_loss_error": el,
                "agf_rounds": d.len(),
                "drops_matched": d.iter().filter(|x| x.t_gf.is_some()).count(),
                "feature_order_agf": order_agf,
                "drops": drops_json(&d),
                "agf_seconds": agf_s,
                "gf_seconds": gf_s,
                "agf_cpu_seconds": agf_cpu,
                "gf_cpu_seconds": gf_cpu,
                "agf_cost_fraction_cpu": agf_cpu.zip(gf_cpu).map(|(a, g)| a / g),
                "gf_solver_stats": stats,
            }));
        }
        if !rows.is_empty() {
            let col = |k: &str| -> Vec<f64> {
                rows.iter()
                    .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
                    .collect()
            };
            out.tables.push(CsvTable {
                name: "alpha_series".into(),
                columns: [
                    "alpha",
                    "max_rel_time_error",
                    "max_rel_loss_error",
                    "agf_seconds",
                    "gf_seconds",
                    "agf_cost_fraction_cpu",
                ]
                .iter()
                .map(|c| c.to_string())
                .collect(),
                values: vec![
                    col("alpha"),
                    col("max_rel_time_error"),
                    col("max_rel_loss_error"),
                    col("agf_seconds"),
                    col("gf_seconds"),
                    col("agf_cost_fraction_cpu"),
                ],
            });
            let mut ap = LinePlot::new(
                "AGF vs gradient flow: error against initial scale",
                "α",
                "relative error",
            )
            .scales(Scale::Log, Scale::Log);
            ap.series.push(Series::line(
                "max |t_agf − t_gf|/t_gf",
                col("alpha"),
                col("max_rel_time_error"),
            ));
            ap.series.push(Series::line(
                "max level error",
                col("alpha"),
                col("max_rel_loss_error")
                    .iter()
                    .map(|v| v.max(1e-16))
                    .collect(),
            ));
            out.figures.push(ap.figure("alpha_series", "Largest relative jump-time and plateau-level error of numerical AGF against gradient flow from the same init direction, as a function of α."));
            out.summary.insert("alpha_series".into(), json!(rows));
        }

        // Figures
        let t_start = t.get(1).copied().unwrap_or(1e-3);
        let t_end = *t.last().unwrap_or(&1.0);
        let mut lp = LinePlot::new(
            format!("Modular addition p = {p}: loss"),
            "t (gradient-flow time)",
            "loss",
        )
        .scales(Scale::Log, Scale::Log);
        let gf_label = match cfg.train.method {
            crate::train::Method::Flow => "gradient flow".to_string(),
            crate::train::Method::Gd => format!("gradient descent (lr {})", cfg.train.lr),
            m => format!("{} (lr {})", m.name(), cfg.train.lr),
        };
        lp.series
            .push(Series::line(gf_label, t[1..].to_vec(), loss[1..].to_vec()));
        if let Some(st) = &stairs {
            let (sx, sy) = st.step_series(t_start, t_end);
            lp.series.push(Series::step(
                "numerical AGF",
                sx,
                sy.iter().map(|v| v.max(1e-12 * levels[0])).collect(),
            ));
        }
        for (j, l) in levels.iter().enumerate() {
            if *l > 1e-10 * levels[0] {
                lp.ref_lines.push(RefLine {
                    label: format!("ℓ{j} (frequency-complete)"),
                    vertical: false,
                    value: *l,
                });
            }
        }
        if quadratic {
            lp.ref_lines.push(RefLine {
                label: "first-jump lower bound".into(),
                vertical: true,
                value: first_lb,
            });
        }
        out.figures.push(lp.figure("loss", "Loss under gradient flow, the numerical AGF staircase (one round per neuron activation) and the closed-form frequency-complete levels; each frequency is a cascade of sub-plateaus."));
        let mut pp = LinePlot::new("Output power per frequency", "t", "P_k(f)")
            .scales(Scale::Log, Scale::Log);
        for &k in &order {
            pp.series.push(Series::line(
                format!("k = {k} (|x̂| = {:.3})", theory.magnitudes[k]),
                t[1..].to_vec(),
                traj.column(&format!("power_k{k}")).unwrap_or_default()[1..].to_vec(),
            ));
            pp.ref_lines.push(RefLine {
                label: format!("E_{k}"),
                vertical: false,
                value: theory.energies[k],
            });
        }
        out.figures.push(pp.figure("frequency_power", "Per-frequency output power P_k(f) = (1/2p)Σ_{ξ=±k} mean|f̂_ξ|² under gradient flow; horizontal lines: the template energies E_k = |x̂_k|²/p reached when frequency k is learned."));
        let kmax = p / 2;
        out.figures.push(Figure {
            name: "neuron_spectra".into(),
            caption: "Final per-neuron spectra (energy of u_i, v_i, w_i per frequency, normalised per neuron): one dominant frequency per neuron.".into(),
            kind: FigureKind::Heatmap(Heatmap {
                title: "Per-neuron spectra (gradient flow, final)".into(),
                x_label: "frequency k".into(),
                y_label: "neuron".into(),
                z_label: "fraction of energy".into(),
                x: (1..=kmax).map(|k| k as f64).collect(),
                y: (0..cfg.model.width).map(|i| i as f64).collect(),
                z: spectra.iter().map(|sp| { let tot: f64 = sp[1..].iter().sum::<f64>().max(1e-300); sp[1..].iter().map(|v| v / tot).collect() }).collect(),
                x_scale: Scale::Linear,
                y_scale: Scale::Linear,
                overlays: Vec::new(),
            }),
        });
        let mut cols = vec!["neuron".to_string(), "norm2".to_string()];
        cols.extend((0..=kmax).map(|k| format!("k{k}")));
        let mut vals = vec![
            (0..cfg.model.width).map(|i| i as f64).collect::<Vec<_>>(),
            neuron_norms.clone(),
        ];
        vals.extend((0..=kmax).map(|k| spectra.iter().map(|sp| sp[k]).collect()));
        out.tables.push(CsvTable {
            name: "neuron_spectra".into(),
            columns: cols,
            values: vals,
        });
        out.trajectory = gf.trajectory.clone();
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;

    /// The agf-modular preset with `--set` overrides applied (the first failing one's error).
    fn agf_modular_with(sets: &[&str]) -> Result<toml::Table> {
        let mut t = crate::config::prepare(
            parse_toml(crate::presets::get("agf-modular").unwrap(), "p").unwrap(),
            false,
        )
        .unwrap();
        for s in sets {
            crate::config::apply_set(&mut t, s)?;
        }
        Ok(t)
    }

    /// The error that the agf-modular preset with `sets` is refused with (by `--set` itself
    /// or by the experiment's resolve); panics if it is accepted.
    fn refused(sets: &[&str]) -> String {
        match agf_modular_with(sets) {
            Err(e) => e.to_string(),
            Ok(t) => AgfModularExperiment.resolve(&t).unwrap_err().to_string(),
        }
    }

    fn run(toml: &str) -> serde_json::Map<String, serde_json::Value> {
        let exp = AgfModularExperiment;
        let resolved = exp.resolve(&parse_toml(toml, "test").unwrap()).unwrap();
        exp.run(&resolved, &RunContext::default()).unwrap().summary
    }

    /// The user story's `featlab run agf-modular --set data.p=31`: both presets take the data
    /// and model overrides, the resolved config carries them, and the old top-level keys and
    /// unknown keys are rejected with an error that names the key.
    #[test]
    fn presets_resolve_data_and_model_overrides() {
        let exp = AgfModularExperiment;
        for preset in ["agf-modular", "agf-modular-alpha-1e-3"] {
            let mut table = crate::config::prepare(
                parse_toml(crate::presets::get(preset).unwrap(), preset).unwrap(),
                false,
            )
            .unwrap();
            crate::config::apply_set(&mut table, "data.p=31").unwrap();
            crate::config::apply_set(&mut table, "model.width=24").unwrap();
            crate::config::apply_set(
                &mut table,
                r#"data.template={ kind = "fourier", frequencies = [2, 7], magnitudes = [6.0, 3.0] }"#,
            )
            .unwrap();
            let resolved = exp.resolve(&table).unwrap();
            let cfg: AgfModularConfig = from_table(&resolved).unwrap();
            assert_eq!(cfg.data.p, 31, "{preset}");
            assert_eq!(cfg.model.width, 24, "{preset}");
            assert_eq!(
                cfg.data.template,
                Template::Fourier {
                    frequencies: vec![2, 7],
                    magnitudes: vec![6.0, 3.0]
                }
            );
            // the resolved table round-trips (run.json's config is a valid config)
            assert_eq!(exp.resolve(&resolved).unwrap(), resolved);
        }
        let e = refused(&["p=31"]);
        assert!(e.contains("`p`") && e.contains("data.p"), "{e}");
        let e = refused(&["width=8"]);
        assert!(e.contains("model.width"), "{e}");
        let e = refused(&["data.q=3"]);
        assert!(e.contains("data.q") || e.contains("`q`"), "{e}");
        let e = refused(&["model.alpha=1e-3"]);
        assert!(e.contains("alpha"), "{e}");
        let e = refused(&["data.p=2"]);
        assert!(e.contains("data.p") && e.contains("≥ 3"), "{e}");
        let e = refused(&["model.width=0"]);
        assert!(e.contains("model.width"), "{e}");
    }

    #[test]
    fn output_power_decomposes_the_loss() {
        let p = 6;
        let x = Template::Gaussian { scale: 1.0 }
            .build(p, &mut stream(3, "t"))
            .unwrap();
        let data = modular_addition(&x).unwrap();
        let (c, s) = dft_tables(p);
        let pw = output_power(&data.y, &c, &s);
        let half: f64 = (0..data.n())
            .map(|i| (0..p).map(|j| data.y[(i, j)].powi(2)).sum::<f64>())
            .sum::<f64>()
            / (2.0 * data.n() as f64);
        assert!((pw.iter().sum::<f64>() - half).abs() < 1e-12 * half);
        let e = crate::data::modular::pair_energies(&x);
        for (a, b) in pw.iter().zip(&e) {
            assert!((a - b).abs() < 1e-12 * half, "{pw:?} vs {e:?}");
        }
    }

    /// `model.activation = "relu"` (the user story's "ReLU instead of quadratic"): adaptive
    /// solvers are refused with the key to change (they stall at the kinks); with fixed steps
    /// (as the agf-modular-relu preset) GD and numerical AGF (κ = 2) both learn the largest
    /// frequency first, the AGF levels fall, the quadratic-only closed forms are null, and a
    /// non-homogeneous activation is refused unless AGF is skipped.
    #[test]
    fn relu_variant_runs_with_fixed_steps_and_refuses_adaptive_ones() {
        let exp = AgfModularExperiment;
        let e = refused(&[r#"model.activation="relu""#]);
        assert!(
            e.contains("train.method") && e.contains("agf-modular-relu"),
            "{e}"
        );
        let e = refused(&[r#"model.activation="relu""#, r#"train.method="gd""#]);
        assert!(e.contains("agf.fixed_dt"), "{e}");
        let e = refused(&[
            r#"model.activation="relu""#,
            r#"train.method="gd""#,
            "agf.fixed_dt=0.1",
        ]);
        assert!(e.contains("cost.fixed_dt"), "{e}");
        let e = refused(&[r#"model.activation="tanh""#]);
        assert!(
            e.contains("model.activation") && e.contains("skip_agf"),
            "{e}"
        );
        exp.resolve(&agf_modular_with(&[r#"model.activation="tanh""#, "skip_agf=true"]).unwrap())
            .unwrap();
        exp.resolve(
            &crate::config::prepare(
                parse_toml(crate::presets::get("agf-modular-relu").unwrap(), "r").unwrap(),
                false,
            )
            .unwrap(),
        )
        .unwrap();

        let s = run(r#"
            experiment = "agf_modular"
            alpha = 1e-4
            [data]
            p = 7
            template = { kind = "fourier", frequencies = [1, 2], magnitudes = [4.0, 2.0] }
            [model]
            width = 8
            activation = "relu"
            [train]
            method = "gd"
            lr = 1e-2
            t_max = 60.0
            record = { kind = "log", points = 200, t_min = 0.1 }
            [agf]
            fixed_dt = 0.1
            tableau = "bosh3"
            t_max = 60.0
            [cost]
            solver = "heun_euler"
            fixed_dt = 1e-2
            t_max = 50.0
            level_rtol = 1e-4
            "#);
        let drops = s["drops"].as_array().unwrap();
        assert!(drops.len() >= 2, "{s:?}");
        assert_eq!(drops[0]["feature"], 1, "{s:?}");
        let levels: Vec<f64> = drops
            .iter()
            .map(|d| d["loss_agf"].as_f64().unwrap())
            .collect();
        assert!(levels.windows(2).all(|w| w[1] < w[0]), "{levels:?}");
        assert!(levels.iter().all(|l| l.is_finite()));
        let gf: Vec<usize> = serde_json::from_value(s["frequency_order_gf"].clone()).unwrap();
        assert_eq!(gf.first(), Some(&1), "{s:?}");
        // the first AGF jump against GD's midpoint crossing: κ = 2 at α = 1e-4, so the error is
        // O(1/log(1/α)); measured +18.2% (19.73 vs 16.69): AGF late, as on the preset, where
        // several neurons grow together in GD before any one reaches its threshold
        let (ta, tg) = (
            drops[0]["t_agf"].as_f64().unwrap(),
            drops[0]["t_gf"].as_f64(),
        );
        let tg = tg.expect("GD crosses the first midpoint");
        assert!(ta > tg && ta < 1.22 * tg, "{ta} vs {tg}");
        assert_eq!(s["closed_forms_apply"], false);
        assert!(s["first_jump_lower_bound"].is_null() && s["max_utility_theory"].is_null());
    }

    /// p = 7, three frequencies: gradient flow learns them in decreasing |x̂| order, whichever
    /// frequency carries the largest magnitude (GF only, α = 0.05, for speed; numerical AGF
    /// on the same problems is in the docs' sweep table).
    #[test]
    fn small_p_learns_frequencies_in_decreasing_magnitude_order() {
        for (freqs, mags, want) in [
            ("[1, 2, 3]", "[4.0, 3.0, 2.0]", [1, 2, 3]),
            ("[1, 2, 3]", "[2.0, 3.0, 4.0]", [3, 2, 1]),
        ] {
            let s = run(&format!(
                r#"
                experiment = "agf_modular"
                alpha = 5e-2
                skip_agf = true
                [data]
                p = 7
                template = {{ kind = "fourier", frequencies = {freqs}, magnitudes = {mags} }}
                [model]
                width = 18
                [train]
                t_max = 300.0
                rtol = 1e-7
                record = {{ kind = "log", points = 300, t_min = 0.1 }}
                "#
            ));
            let theory: Vec<usize> =
                serde_json::from_value(s["frequency_order_theory"].clone()).unwrap();
            let gf: Vec<usize> = serde_json::from_value(s["frequency_order_gf"].clone()).unwrap();
            assert_eq!(theory, want);
            assert_eq!(gf, theory, "{s:?}");
            assert_eq!(s["frequency_order_gf_correct"], json!(true));
        }
    }
}

#[cfg(test)]
mod probe {
    use super::*;
    use crate::config::parse_toml;

    /// The probes' problem: preset `FEATLAB_PROBE_PRESET` (default `agf-modular-alpha-1e-3`)
    /// with the `FEATLAB_PROBE_SET` overrides (`key=value;…`, as `--set` takes them),
    /// resolved; its config, template, data, model and initialisation.
    #[allow(clippy::type_complexity)]
    fn probe_problem() -> (
        AgfModularConfig,
        Vec<f64>,
        crate::data::Dataset,
        TwoLayer,
        Vec<f64>,
    ) {
        let name = std::env::var("FEATLAB_PROBE_PRESET")
            .unwrap_or_else(|_| "agf-modular-alpha-1e-3".into());
        let text = crate::presets::get(&name).expect("preset");
        let mut table = crate::config::prepare(parse_toml(text, &name).unwrap(), false).unwrap();
        if let Ok(sets) = std::env::var("FEATLAB_PROBE_SET") {
            for kv in sets.split(';').filter(|s| !s.is_empty()) {
                crate::config::apply_set(&mut table, kv).unwrap();
            }
        }
        let resolved = AgfModularExperiment.resolve(&table).unwrap();
        let cfg: AgfModularConfig = from_table(&resolved).unwrap();
        let p = cfg.data.p;
        let template = cfg
            .data
            .template
            .build(p, &mut stream(cfg.seed, "template"))
            .unwrap();
        let data = modular_addition(&template).unwrap();
        let model = TwoLayer::new(2 * p, cfg.model.width, p, cfg.model.activation, false);
        let init: Vec<f64> = init_direction(&cfg).iter().map(|g| cfg.alpha * g).collect();
        (cfg, template, data, model, init)
    }

    /// Numerical AGF on the probe's problem (horizon capped at train.t_max).
    fn probe_agf(
        cfg: &AgfModularConfig,
        data: &crate::data::Dataset,
        model: &TwoLayer,
        init: &[f64],
    ) -> crate::theory::agf::AgfResult {
        let mut ao = cfg.agf.clone();
        ao.t_max = ao.t_max.min(cfg.train.t_max);
        run_agf(
            model,
            data,
            init,
            &mut cfg.cost.clone(),
            &ao,
            &RunContext::default(),
        )
        .unwrap()
    }

    /// Probe (prints): numerical AGF alone on a preset, per round the jump time, level,
    /// active count and the cost phase's convergence (‖∇C‖, time, work), with wall times.
    /// `FEATLAB_PROBE_PRESET` (default `agf-modular-alpha-1e-3`), `FEATLAB_PROBE_SET`
    /// (`key=value;…` overrides as `--set` takes them, e.g.
    /// `cost.level_rtol=1e-5;alpha=1e-5;data.p=31`), `FEATLAB_PROBE_OUT` (write the
    /// rounds as JSON to this path).
    #[test]
    #[ignore]
    fn agf_modular_cost_phase_probe() {
        let (cfg, _, data, model, init) = probe_problem();
        let start = Instant::now();
        let a = probe_agf(&cfg, &data, &model, &init);
        let mut rows = Vec::new();
        for (k, r) in a.rounds.iter().enumerate() {
            let max_norm = r
                .active
                .iter()
                .map(|&i| {
                    crate::linalg::norm2(
                        &crate::model::NeuronSum::neuron_params(&model, i)
                            .iter()
                            .map(|&j| r.params[j])
                            .collect::<Vec<_>>(),
                    )
                })
                .fold(0.0f64, f64::max);
            println!(
                "round {:2} t = {:10.4} loss = {:.6} k = {} active {:2} max|θ| {max_norm:.3} cost: {:?} dC {:.1e} |g| {:.2e} t {:.3e} evals {} hess {}",
                k + 1,
                r.t,
                r.loss,
                dominant_frequency(&modular_neuron_spectrum(&model, &r.params, r.activated[0])),
                r.active.len(),
                r.cost_stop,
                r.cost_level_change.unwrap_or(f64::NAN),
                r.cost_grad_norm.unwrap_or(f64::NAN),
                r.cost_time.unwrap_or(f64::NAN),
                r.cost_work,
                r.cost_hessians
            );
            rows.push(json!({"t": r.t, "loss": r.loss,
                "feature": dominant_frequency(&modular_neuron_spectrum(&model, &r.params, r.activated[0])),
                "activated": r.activated, "active": r.active.len(), "max_norm": max_norm,
                "cost_stop": r.cost_stop, "cost_grad_norm": r.cost_grad_norm,
                "cost_level_change": r.cost_level_change, "cost_time": r.cost_time,
                "cost_work": r.cost_work, "near_ties": r.near_ties}));
        }
        let seconds = start.elapsed().as_secs_f64();
        println!("stop {:?}, AGF {seconds:.2} s", a.stop);
        if let Ok(path) = std::env::var("FEATLAB_PROBE_OUT") {
            let doc = json!({"alpha": cfg.alpha, "initial_loss": a.initial_loss, "stop": a.stop,
                "seconds": seconds, "cost": cfg.cost, "rounds": rows});
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
    }

    /// Parameter snapshots (t, θ) shared between the observer and the probe.
    type Snapshots = std::sync::Arc<std::sync::Mutex<Vec<(f64, Vec<f64>)>>>;

    /// Records the full parameter vector at the record times ≥ the next of `targets`.
    struct ParamDump {
        targets: Vec<f64>,
        next: usize,
        out: Snapshots,
    }

    impl Observer for ParamDump {
        fn columns(&self) -> Vec<String> {
            Vec::new()
        }
        fn observe(&mut self, t: f64, params: &[f64], _p: &mut Problem<'_>) -> Result<Vec<f64>> {
            if self.next < self.targets.len() && t >= self.targets[self.next] {
                while self.next < self.targets.len() && t >= self.targets[self.next] {
                    self.next += 1;
                }
                self.out.lock().unwrap().push((t, params.to_vec()));
            }
            Ok(Vec::new())
        }
    }

    /// Probe (writes JSON): per-neuron data for the first-k = 5 question (docs/agf.md,
    /// α-series). `FEATLAB_PROBE_WHAT=agf`: numerical AGF on the preset (with
    /// `FEATLAB_PROBE_SET` overrides), writing init, thresholds, per-round activated neuron,
    /// t, params and the per-neuron norm trace. `FEATLAB_PROBE_WHAT=gf`: gradient flow,
    /// writing the full parameters at `FEATLAB_PROBE_POINTS` (default 600) log-spaced times
    /// from t = 1 to train.t_max, and the recorded loss. Output path `FEATLAB_PROBE_OUT`;
    /// analysed by `scripts/agf_modular_neurons.py` (replays of the κ = 3 dormant law).
    #[test]
    #[ignore]
    fn agf_modular_neuron_dump_probe() {
        let (cfg, template, data, model, init) = probe_problem();
        let out = std::env::var("FEATLAB_PROBE_OUT").expect("FEATLAB_PROBE_OUT");
        let what = std::env::var("FEATLAB_PROBE_WHAT").unwrap_or_else(|_| "agf".into());
        let start = Instant::now();
        let doc = if what == "agf" {
            let a = probe_agf(&cfg, &data, &model, &init);
            let rounds: Vec<_> = a
                .rounds
                .iter()
                .map(|r| {
                    json!({"t": r.t, "loss": r.loss, "activated": r.activated,
                    "directions": r.directions, "params": r.params, "active": r.active,
                    "deactivated": r.deactivated})
                })
                .collect();
            json!({"alpha": cfg.alpha, "init": init, "init_norms": a.init_norms,
                "thresholds": a.thresholds, "rounds": rounds, "trace_t": a.trace.t,
                "trace_norms": a.trace.norms, "final_s": a.final_s,
                "template": template, "seconds": start.elapsed().as_secs_f64()})
        } else {
            let tc = cfg.train.clone();
            let n = std::env::var("FEATLAB_PROBE_POINTS")
                .map(|v| v.parse::<usize>().unwrap())
                .unwrap_or(600);
            let targets: Vec<f64> = (0..n)
                .map(|k| tc.t_max.powf(k as f64 / (n - 1) as f64))
                .collect();
            let store: Snapshots = Default::default();
            let mut observers: Vec<Box<dyn Observer>> = vec![
                Box::new(LossObserver),
                Box::new(ParamDump {
                    targets,
                    next: 0,
                    out: store.clone(),
                }),
            ];
            let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, faer::Par::Seq);
            let mut stepper = tc
                .stepper(init.clone(), stream(cfg.seed, "batches"))
                .unwrap();
            let opts = tc.run_options().unwrap();
            let gf = train::run(
                &mut problem,
                stepper.as_mut(),
                &mut observers,
                &opts,
                &RunContext::default(),
            )
            .unwrap();
            let snaps = store.lock().unwrap().clone();
            let ts: Vec<f64> = snaps.iter().map(|s| s.0).collect();
            let ps: Vec<Vec<f64>> = snaps.into_iter().map(|s| s.1).collect();
            json!({"alpha": cfg.alpha, "init": init, "t": ts, "params": ps,
                "loss_t": gf.trajectory.column("t"), "loss": gf.trajectory.column("loss"),
                "template": template, "seconds": start.elapsed().as_secs_f64()})
        };
        std::fs::write(out, serde_json::to_string(&doc).unwrap()).unwrap();
    }
}
