//! The `unlearning` experiment: feature unlearning at infinite width (Imai, Nishiyama &
//! Imaizumi 2026, arXiv 2602.07378) in featlab's own two-order-parameter model (see
//! [`crate::theory::unlearning`] and `docs/unlearning.md`).
//!
//! One config runs, in order:
//! * the limit ODE for (m, a) and a finite-width simulation at the same parameters
//!   (trajectory columns `t, loss, m, a, m_theory, a_theory, …`), the fast–slow analysis
//!   (critical manifold, stability, reduced flow, slow fixed points, scaling law) and the
//!   phase portrait;
//! * optionally `[sweep]`: a list of values of the teacher coefficient c*_k or of a0, each run
//!   in the ODE and in the simulator, plus the (c*_2, a0) boundary of unlearning in the ODE;
//! * optionally `[convergence]`: ODE-vs-simulation error against width (population flow,
//!   d grown with N), against batch size (SGD) and against width with the batch grown by a
//!   rule (SGD, `sgd_widths` + `batch_scaling`), with fitted log–log slopes;
//! * optionally `[scaling]`: long-time exponents from the reduced flow, the full ODE and SGD,
//!   fitted with 95 % confidence intervals, against the derived ones.

pub mod simulator;

use super::{CsvTable, Experiment, RunOutput};
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::experiments::unlearning::simulator::{
    order_params, BatchMode, OrderParams, ParticleFlow, SimConfig, Simulator,
};
use crate::figure::{Heatmap, LinePlot, RefLine, Scale, Series};
use crate::theory::unlearning::fast_slow::Branch;
use crate::theory::unlearning::fit::{
    bootstrap_ci, least_squares, power_law, windowed_exponent, WindowedExponent,
};
use crate::theory::unlearning::{
    EquiangularModel, GaussHermite, HermiteSeries, LimitModel, SpreadModel,
};
use crate::train::ode::{solve, PidController, DOPRI5};
use crate::train::{RunContext, Trajectory};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

fn name() -> String {
    "unlearning".into()
}

/// Network parametrization (output scale `N^{−γ}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Parametrization {
    /// γ = 1.
    #[default]
    MeanField,
    /// μP for a two-layer net: readout 1/N, γ = 1 (same limit as mean-field).
    Mup,
    /// γ = ½: effective initial second layer `√N a0`.
    Ntk,
}

impl Parametrization {
    fn gamma(self) -> f64 {
        match self {
            Parametrization::MeanField | Parametrization::Mup => 1.0,
            Parametrization::Ntk => 0.5,
        }
    }
}

/// First-layer constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FirstLayer {
    /// Projected SGD on the unit sphere (the model of the theory).
    #[default]
    Spherical,
    /// Unconstrained SGD (no theory; reported for comparison).
    Free,
}

/// `[simulation]`: the finite-width network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulationConfig {
    pub width: usize,
    pub dim: usize,
    /// Step size η (time per step).
    pub lr: f64,
    #[serde(default)]
    pub parametrization: Parametrization,
    #[serde(default)]
    pub first_layer: FirstLayer,
    pub batch: BatchMode,
    #[serde(default)]
    pub orthogonal_init: bool,
}

/// Which parameter a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepParameter {
    /// Teacher Hermite coefficient c*_2 (the primary nonlinear term).
    TeacherC2,
    /// Initial second-layer scale a0.
    A0,
}

/// `[sweep]`: values of one parameter, each run in the ODE and the simulator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub parameter: SweepParameter,
    pub values: Vec<f64>,
    /// Also run the finite-width simulation at every value.
    #[serde(default = "yes")]
    pub simulate: bool,
    /// Grid of the (c*_2, a0) boundary map (ODE only): c*_2 values and a0 values.
    #[serde(default)]
    pub boundary_c2: Vec<f64>,
    #[serde(default)]
    pub boundary_a0: Vec<f64>,
}

fn yes() -> bool {
    true
}

/// `[convergence]`: error between simulation and the limit ODE vs width and batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConvergenceConfig {
    /// Widths N for the population gradient flow (B = ∞), with `d = dim_ratio · N` (≥ N+1).
    #[serde(default)]
    pub widths: Vec<usize>,
    #[serde(default = "one")]
    pub dim_ratio: f64,
    /// Batch sizes for SGD at the `[simulation]` width and dim.
    #[serde(default)]
    pub batches: Vec<usize>,
    /// Widths N for online SGD with `d = dim_ratio · N` and the batch of `batch_scaling`
    /// (the "N and B grow" series), compared with the limit ODE and the finite-N ODE at the
    /// run's `λ = ηd/B`.
    #[serde(default)]
    pub sgd_widths: Vec<usize>,
    /// How B grows with N in the `sgd_widths` series (required with `sgd_widths`).
    #[serde(default)]
    pub batch_scaling: Option<BatchScaling>,
    /// Seeds per width of the `sgd_widths` series (the error is taken on their mean m).
    #[serde(default = "one_usize")]
    pub sgd_seeds: usize,
    /// Errors against the finite-N ODE are taken over `t ≥ finite_n_from` (the fast rise carries
    /// the O(η) step-size error, which the ODEs do not model).
    #[serde(default)]
    pub finite_n_from: f64,
    /// Horizon of the comparison.
    pub t_max: f64,
}

/// Batch size as a function of the width in the `[convergence] sgd_widths` series.
///
/// The SGD-noise strength is `λ = ηd/B` (docs/unlearning.md, "SGD noise"); its pair-overlap
/// spread is O(λN/d) against the O(1/N) self-interaction, so at `d ∝ N`:
/// `Linear` (`B = factor·N`) keeps λ fixed and the noise part of the error does not vanish;
/// `Quadratic` (`B = N²/divisor`) has `λ = η·dim_ratio·divisor/N → 0`, the same order as the
/// finite-width terms.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchScaling {
    /// `B = round(factor · N)`.
    Linear { factor: f64 },
    /// `B = round(N² / divisor)`.
    Quadratic { divisor: f64 },
}

impl BatchScaling {
    /// The batch size at width `n` (at least 1).
    pub fn batch(self, n: usize) -> usize {
        let nf = n as f64;
        let b = match self {
            BatchScaling::Linear { factor } => factor * nf,
            BatchScaling::Quadratic { divisor } => nf * nf / divisor,
        };
        (b.round() as usize).max(1)
    }

    fn validate(self) -> Result<()> {
        let c = match self {
            BatchScaling::Linear { factor } => factor,
            BatchScaling::Quadratic { divisor } => divisor,
        };
        if !(c.is_finite() && c > 0.0) {
            return Err(Error::config(
                "convergence.batch_scaling",
                format!("the factor / divisor must be a finite number > 0, got {c}"),
            ));
        }
        Ok(())
    }
}

fn one() -> f64 {
    1.0
}

/// `[scaling]`: late-time exponent fits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    /// Fit window of the reduced flow `[t_lo, t_hi]`.
    pub reduced_window: [f64; 2],
    /// Fit window of the full limit ODE (may exceed `t_max`; the ODE is cheap).
    pub ode_window: [f64; 2],
    /// Fit window of the simulation (within `t_max`).
    pub window: [f64; 2],
    /// Number of sliding fitting windows for the deterministic curves (window spread).
    #[serde(default = "default_windows")]
    pub windows: usize,
    /// Length ratio `t_hi / t_lo` of each sliding window.
    #[serde(default = "default_window_ratio")]
    pub window_ratio: f64,
    /// Simulation replicates (seeds) for the bootstrap interval of the simulated exponent
    /// (1 = the main run only, no interval).
    #[serde(default = "one_usize")]
    pub seeds: usize,
}

fn default_windows() -> usize {
    5
}
fn default_window_ratio() -> f64 {
    10.0
}
fn one_usize() -> usize {
    1
}

/// Config of the `unlearning` experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnlearningConfig {
    #[serde(default = "name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    /// Student activation Hermite coefficients c_0, c_1, ….
    pub student: Vec<f64>,
    /// Teacher link Hermite coefficients c*_0, c*_1, ….
    pub teacher: Vec<f64>,
    pub m0: f64,
    pub a0: f64,
    /// Second-/first-layer learning-rate ratio ε.
    pub eps: f64,
    pub t_max: f64,
    #[serde(default = "default_points")]
    pub record_points: usize,
    /// Alignment drop `max_t m − m(t_max)` above which a run counts as unlearning.
    #[serde(default = "default_drop")]
    pub unlearning_drop: f64,
    /// Also integrate the (unvalidated) SGD-noise-corrected ODE with `λ = η d / B`.
    #[serde(default)]
    pub noise_correction: bool,
    pub simulation: SimulationConfig,
    #[serde(default)]
    pub sweep: Option<SweepConfig>,
    #[serde(default)]
    pub convergence: Option<ConvergenceConfig>,
    #[serde(default)]
    pub scaling: Option<ScalingConfig>,
}

fn default_points() -> usize {
    201
}
fn default_drop() -> f64 {
    0.05
}

impl UnlearningConfig {
    fn validate(&self) -> Result<()> {
        HermiteSeries::new(self.student.clone(), "student")?;
        HermiteSeries::new(self.teacher.clone(), "teacher")?;
        if self.student.get(1).copied().unwrap_or(0.0) == 0.0 {
            return Err(Error::config(
                "student",
                "the theory needs a linear term c_1 ≠ 0 (student[1])",
            ));
        }
        if !(self.t_max.is_finite() && self.t_max > 0.0) {
            return Err(Error::config(
                "t_max",
                format!("must be a finite number > 0, got {}", self.t_max),
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config(
                "eps",
                format!("must be a finite number > 0, got {}", self.eps),
            ));
        }
        if self.record_points < 3 {
            return Err(Error::config("record_points", "need at least 3"));
        }
        if !(self.m0 > 0.0 && self.m0 < 1.0) {
            return Err(Error::config(
                "m0",
                format!("must lie in (0, 1), got {}", self.m0),
            ));
        }
        if !(self.a0.is_finite() && self.a0 > 0.0) {
            return Err(Error::config(
                "a0",
                format!("must be a finite number > 0, got {}", self.a0),
            ));
        }
        self.main_sim_config()?.validate()?;
        if let Some(s) = &self.sweep {
            if s.values.is_empty() {
                return Err(Error::config("sweep.values", "give at least one value"));
            }
            if s.parameter == SweepParameter::A0
                && s.values
                    .iter()
                    .any(|v| v.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
            {
                return Err(Error::config("sweep.values", "a0 values must be > 0"));
            }
            if s.boundary_c2.is_empty() != s.boundary_a0.is_empty() {
                return Err(Error::config(
                    "sweep.boundary_a0",
                    "give both boundary_c2 and boundary_a0 (or neither)",
                ));
            }
        }
        if let Some(c) = &self.convergence {
            let lens = [c.widths.len(), c.batches.len(), c.sgd_widths.len()];
            // A slope with an interval needs three points per series.
            if lens.iter().all(|&l| l == 0) || lens.iter().any(|&l| l == 1 || l == 2) {
                return Err(Error::config(
                    "convergence.widths",
                    "need ≥ 3 widths, ≥ 3 batch sizes and/or ≥ 3 SGD widths to fit a slope",
                ));
            }
            if !(c.t_max > 0.0 && c.dim_ratio > 0.0) {
                return Err(Error::config(
                    "convergence.t_max",
                    "t_max and dim_ratio must be > 0",
                ));
            }
            if !c.sgd_widths.is_empty() {
                let Some(rule) = c.batch_scaling else {
                    return Err(Error::config(
                        "convergence.batch_scaling",
                        "sgd_widths needs a batch rule, e.g. { kind = \"quadratic\", divisor = 8 }",
                    ));
                };
                rule.validate()?;
                if c.sgd_widths.iter().any(|&n| n < 2) {
                    return Err(Error::config(
                        "convergence.sgd_widths",
                        "widths must be ≥ 2",
                    ));
                }
                if c.sgd_seeds == 0 {
                    return Err(Error::config("convergence.sgd_seeds", "must be ≥ 1"));
                }
                if !(c.finite_n_from >= 0.0 && c.finite_n_from < c.t_max) {
                    return Err(Error::config(
                        "convergence.finite_n_from",
                        format!("must lie in [0, t_max), got {}", c.finite_n_from),
                    ));
                }
            }
        }
        if let Some(s) = &self.scaling {
            for (k, w) in [
                ("scaling.reduced_window", s.reduced_window),
                ("scaling.ode_window", s.ode_window),
                ("scaling.window", s.window),
            ] {
                if !(w[0] > 0.0 && w[1] > w[0]) {
                    return Err(Error::config(k, format!("need 0 < lo < hi, got {w:?}")));
                }
            }
            if s.window[1] > self.t_max {
                return Err(Error::config(
                    "scaling.window",
                    "must end at or before t_max",
                ));
            }
            if s.windows < 2 || s.window_ratio.is_nan() || s.window_ratio <= 1.0 {
                return Err(Error::config(
                    "scaling.windows",
                    "need ≥ 2 windows and window_ratio > 1",
                ));
            }
            for (k, w) in [
                ("scaling.reduced_window", s.reduced_window),
                ("scaling.ode_window", s.ode_window),
            ] {
                if w[1] < w[0] * s.window_ratio {
                    return Err(Error::config(
                        k,
                        format!("must span at least window_ratio = {}", s.window_ratio),
                    ));
                }
            }
            if s.seeds == 0 {
                return Err(Error::config("scaling.seeds", "must be ≥ 1"));
            }
        }
        Ok(())
    }

    fn limit(&self, teacher: &[f64]) -> Result<LimitModel> {
        Ok(LimitModel::new(
            HermiteSeries::new(self.student.clone(), "student")?,
            HermiteSeries::new(teacher.to_vec(), "teacher")?,
            self.eps,
        ))
    }

    fn sim_config(
        &self,
        width: usize,
        dim: usize,
        batch: BatchMode,
        teacher: &[f64],
        a0: f64,
    ) -> Result<SimConfig> {
        let s = &self.simulation;
        Ok(SimConfig {
            width,
            dim,
            student: HermiteSeries::new(self.student.clone(), "student")?,
            teacher: HermiteSeries::new(teacher.to_vec(), "teacher")?,
            m0: self.m0,
            // `a0` in the config is the raw initial a_j; the simulator takes the effective N^{1−γ} a_j.
            a0: a0 * (width as f64).powf(1.0 - s.parametrization.gamma()),
            lr: s.lr,
            eps: self.eps,
            gamma: s.parametrization.gamma(),
            batch,
            spherical: s.first_layer == FirstLayer::Spherical,
            orthogonal_init: s.orthogonal_init,
        })
    }

    /// The `[simulation]` run at the config's teacher and a0.
    fn main_sim_config(&self) -> Result<SimConfig> {
        let s = &self.simulation;
        self.sim_config(s.width, s.dim, s.batch, &self.teacher, self.a0)
    }

    /// Effective initial second layer of the limit: `N^{1−γ} a0`.
    fn a0_eff(&self, a0: f64) -> f64 {
        a0 * (self.simulation.width as f64).powf(1.0 - self.simulation.parametrization.gamma())
    }
}

/// Recorded SGD trajectory.
struct SimRun {
    t: Vec<f64>,
    ops: Vec<OrderParams>,
}

fn run_sim(
    cfg: SimConfig,
    seed: u64,
    t_max: f64,
    points: usize,
    ctx: &RunContext<'_>,
    label: &str,
) -> Result<SimRun> {
    let total = (t_max / cfg.lr).round().max(1.0) as u64;
    let mut sim = Simulator::new(cfg, seed)?;
    let marks: Vec<u64> = (0..points)
        .map(|i| (i as u64 * total) / (points as u64 - 1))
        .collect();
    let mut out = SimRun {
        t: Vec::new(),
        ops: Vec::new(),
    };
    ctx.progress.start(label, total);
    let mut next = 0;
    loop {
        while next < marks.len() && marks[next] == sim.steps {
            out.t.push(sim.time());
            let op = sim.order_params();
            if !(op.m.is_finite() && op.a.is_finite() && op.loss.is_finite()) {
                return Err(Error::Diverged {
                    step: sim.steps,
                    t: sim.time(),
                    what: "order parameters".into(),
                    hint: "lower simulation.lr (the fast rate grows like a², so large a needs a small step)".into(),
                });
            }
            out.ops.push(op);
            next += 1;
        }
        if sim.steps >= total {
            break;
        }
        ctx.check_cancel()?;
        sim.step(ctx.par);
        if sim.steps % 200 == 0 {
            ctx.progress.update(sim.steps, label);
        }
    }
    ctx.progress.finish();
    Ok(out)
}

/// `(peak m, time of peak, final m, drop)` of a trajectory.
fn peak_final(t: &[f64], m: &[f64]) -> (f64, f64, f64, f64) {
    let (i, pk) = m.iter().enumerate().fold(
        (0, f64::MIN),
        |acc, (i, v)| if *v > acc.1 { (i, *v) } else { acc },
    );
    let last = *m.last().unwrap_or(&f64::NAN);
    (pk, t[i], last, pk - last)
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n as f64 - 1.0))
        .collect()
}

/// The `unlearning` experiment.
pub struct UnlearningExperiment;

impl Experiment for UnlearningExperiment {
    fn name(&self) -> &'static str {
        "unlearning"
    }
    fn about(&self) -> &'static str {
        "feature unlearning at infinite width: limit ODE for (alignment, second layer), fast–slow analysis, sweeps, finite-width SGD"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let cfg: UnlearningConfig = from_table(table)?;
        cfg.validate()?;
        to_table(&cfg)
    }
    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: UnlearningConfig = from_table(resolved)?;
        cfg.validate()?;
        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        main_run(&cfg, ctx, &mut out)?;
        if let Some(s) = &cfg.sweep {
            sweep(&cfg, s, ctx, &mut out)?;
        }
        if let Some(c) = &cfg.convergence {
            convergence(&cfg, c, ctx, &mut out)?;
        }
        if let Some(s) = &cfg.scaling {
            scaling(&cfg, s, ctx, &mut out)?;
        }
        Ok(out)
    }
}

/// SGD noise strength `λ = ηd/B` of the simulation (0 for the population gradient).
fn noise_strength(cfg: &UnlearningConfig) -> f64 {
    let s = &cfg.simulation;
    match s.batch {
        BatchMode::Online { batch } | BatchMode::Fixed { batch, .. } => {
            s.lr * s.dim as f64 / batch as f64
        }
        BatchMode::Population => 0.0,
    }
}

/// The finite-N + pair-overlap-spread ODE (`theory::unlearning::spread`) for the simulation's
/// N, d and noise λ: random-init Marchenko–Pastur transient (or the orthonormal start), the
/// SGD-noise feed, the per-neuron and common-mode noise terms and the alignment spread; the
/// states `[m, p, a, S_lin, V_m (, u)]` at `t`.
fn spread_ode(
    cfg: &UnlearningConfig,
    lm: &LimitModel,
    a0e: f64,
    lambda: f64,
    t: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let s = &cfg.simulation;
    spread_ode_at(cfg, lm, (s.width, s.dim), a0e, lambda, t)
}

/// [`spread_ode`] at width and dimension `(n, d)` instead of the `[simulation]` ones.
fn spread_ode_at(
    cfg: &UnlearningConfig,
    lm: &LimitModel,
    (n, d): (usize, usize),
    a0e: f64,
    lambda: f64,
    t: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let s = &cfg.simulation;
    let eq = EquiangularModel::new(lm.student.clone(), lm.teacher.clone(), cfg.eps, n as f64)?;
    let mut sm = SpreadModel::new(eq, d as f64, lambda)?;
    let y0 = if s.orthogonal_init {
        let p0 = (1.0 - cfg.m0 * cfg.m0) / n as f64;
        vec![cfg.m0, p0, a0e, 0.0, 0.0]
    } else {
        sm = sm.with_random_init_spectrum(1000)?;
        sm.random_init_state(cfg.m0, a0e)
    };
    sm.integrate(&y0, t, 1e-9)
}

/// Finite-width references of [`main_run`].
struct FiniteWidth {
    /// `m_theory_finite_n`: the spread ODE (spherical) or the equiangular ODE.
    m: Vec<f64>,
    /// The equiangular (m, a) trajectory.
    equiangular: (Vec<f64>, Vec<f64>),
    /// True if `m` is the spread ODE.
    spread: bool,
    fixed_points: Vec<(f64, f64)>,
}

fn main_run(cfg: &UnlearningConfig, ctx: &RunContext<'_>, out: &mut RunOutput) -> Result<()> {
    let lm = cfg.limit(&cfg.teacher)?;
    let a0e = cfg.a0_eff(cfg.a0);
    let sc = cfg.main_sim_config()?;
    let sim = run_sim(
        sc,
        cfg.seed,
        cfg.t_max,
        cfg.record_points,
        ctx,
        "simulation",
    )?;
    let t = sim.t.clone();
    let ode = lm.integrate(cfg.m0, a0e, &t, 1e-10)?;
    let m_th: Vec<f64> = ode.iter().map(|p| p.0).collect();
    let a_th: Vec<f64> = ode.iter().map(|p| p.1).collect();
    let l_th: Vec<f64> = ode.iter().map(|p| lm.loss(p.0, p.1)).collect();
    let m: Vec<f64> = sim.ops.iter().map(|o| o.m).collect();
    let a: Vec<f64> = sim.ops.iter().map(|o| o.a).collect();
    let loss: Vec<f64> = sim.ops.iter().map(|o| o.loss).collect();
    let mut traj = Trajectory {
        columns: vec!["t".into(), "loss".into()],
        rows: t.iter().zip(&loss).map(|(t, l)| vec![*t, *l]).collect(),
    };
    traj.push_column("m", &m)?;
    traj.push_column("a", &a)?;
    traj.push_column("m_theory", &m_th)?;
    traj.push_column("a_theory", &a_th)?;
    traj.push_column("loss_theory", &l_th)?;
    traj.push_column(
        "m_std",
        &sim.ops.iter().map(|o| o.m_std).collect::<Vec<_>>(),
    )?;
    traj.push_column(
        "a_std",
        &sim.ops.iter().map(|o| o.a_std).collect::<Vec<_>>(),
    )?;
    traj.push_column(
        "w_norm",
        &sim.ops.iter().map(|o| o.w_norm).collect::<Vec<_>>(),
    )?;
    let lambda = noise_strength(cfg);
    // Finite-width references, mean-field only: the exact equiangular (m, p, a) ODE at the
    // simulation's N (simplex start, p = 0: gradient descent removes the common orthogonal
    // component quickly) and, for the spherical first layer, the SpreadModel (finite N, the
    // pair-overlap spread with the random-init transient and the SGD-noise feed at λ = ηd/B).
    // `m_theory_finite_n` is the SpreadModel where it applies (the better reference for SGD,
    // docs/unlearning.md), else the equiangular ODE; the latter is also kept at the end as
    // `m_theory_equiangular`.
    let finite_n = if cfg.simulation.parametrization.gamma() == 1.0 {
        let eq = EquiangularModel::new(
            lm.student.clone(),
            lm.teacher.clone(),
            cfg.eps,
            cfg.simulation.width as f64,
        )?;
        let sol = eq.integrate(cfg.m0, 0.0, a0e, &t, 1e-10)?;
        let m3: Vec<f64> = sol.iter().map(|x| x[0]).collect();
        let a3: Vec<f64> = sol.iter().map(|x| x[2]).collect();
        let spread = if cfg.simulation.first_layer == FirstLayer::Spherical {
            let sol = spread_ode(cfg, &lm, a0e, lambda, &t)?;
            Some((
                sol.iter().map(|x| x[0]).collect::<Vec<_>>(),
                sol.iter().map(|x| x[2]).collect::<Vec<_>>(),
            ))
        } else {
            None
        };
        let (mn, an) = spread.clone().unwrap_or_else(|| (m3.clone(), a3.clone()));
        traj.push_column("m_theory_finite_n", &mn)?;
        traj.push_column("a_theory_finite_n", &an)?;
        Some(FiniteWidth {
            m: mn,
            equiangular: (m3, a3),
            spread: spread.is_some(),
            fixed_points: eq.simplex_fixed_points(),
        })
    } else {
        None
    };
    traj.push_column(
        "common_sq",
        &sim.ops.iter().map(|o| o.common_sq).collect::<Vec<_>>(),
    )?;
    traj.push_column(
        "pair_q2",
        &sim.ops.iter().map(|o| o.pair_q2).collect::<Vec<_>>(),
    )?;
    let mut noisy: Option<Vec<f64>> = None;
    if cfg.noise_correction && lambda > 0.0 {
        let ln = cfg
            .limit(&cfg.teacher)?
            .with_noise(lambda, 2 * cfg.student.len().max(cfg.teacher.len()) + 6)?;
        let sol = ln.integrate(cfg.m0, a0e, &t, 1e-9)?;
        let mn: Vec<f64> = sol.iter().map(|p| p.0).collect();
        traj.push_column("m_noise_theory", &mn)?;
        noisy = Some(mn);
    }
    if let Some(fw) = &finite_n {
        traj.push_column("m_theory_equiangular", &fw.equiangular.0)?;
        traj.push_column("a_theory_equiangular", &fw.equiangular.1)?;
    }
    let err_m = m
        .iter()
        .zip(&m_th)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let err_a = a
        .iter()
        .zip(&a_th)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let (pk, tpk, fin, drop) = peak_final(&t, &m);
    let (pk_th, tpk_th, fin_th, drop_th) = peak_final(&t, &m_th);
    let m_std: Vec<f64> = sim.ops.iter().map(|o| o.m_std).collect();
    let at = |tq: f64| t.iter().position(|x| *x == tq).unwrap_or(t.len() - 1);
    let n_label = format!("N = {}, d = {}", cfg.simulation.width, cfg.simulation.dim);
    for (what, th_v, sim_v, i) in [
        ("peak alignment max_t m", pk_th, pk, at(tpk)),
        ("final alignment m(T)", fin_th, fin, t.len() - 1),
    ] {
        out.agreement.push(
            AgreementRow::relative_to(
                format!(
                    "{what}: simulation vs limit ODE (tolerance: the measured spread std_j m_j)"
                ),
                th_v,
                sim_v,
                1.0,
                m_std.get(i).copied().unwrap_or(f64::NAN),
            )
            .with_note(format!("seed {}, {n_label}", cfg.seed)),
        );
    }
    let s = &mut out.summary;
    s.insert("unlearning".into(), json!(drop > cfg.unlearning_drop));
    s.insert("peak_alignment".into(), json!(pk));
    s.insert("peak_time".into(), json!(tpk));
    s.insert("final_alignment".into(), json!(fin));
    s.insert("final_second_layer".into(), json!(a.last()));
    s.insert("ode_vs_sgd_max_error".into(), json!(err_m));
    s.insert("ode_vs_sgd_max_error_a".into(), json!(err_a));
    s.insert(
        "unlearning_theory".into(),
        json!(drop_th > cfg.unlearning_drop),
    );
    s.insert("peak_alignment_theory".into(), json!(pk_th));
    s.insert("peak_time_theory".into(), json!(tpk_th));
    s.insert("final_alignment_theory".into(), json!(fin_th));
    s.insert("effective_a0".into(), json!(a0e));
    s.insert("noise_lambda".into(), json!(lambda));
    if let Some(mn) = &noisy {
        let e = m
            .iter()
            .zip(mn)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        s.insert("ode_noise_vs_sgd_max_error".into(), json!(e));
        out.notes.push(format!(
            "SGD-noise-corrected ODE (λ = ηd/B = {lambda:.4}, unvalidated): max |m_SGD − m_noise| = {e:.4} vs {err_m:.4} for the population ODE."
        ));
    }
    if let Some(fw) = &finite_n {
        let max_err = |th: &[f64]| {
            m.iter()
                .zip(th)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        };
        s.insert(
            "ode_finite_n_vs_sgd_max_error".into(),
            json!(max_err(&fw.m)),
        );
        s.insert(
            "ode_equiangular_vs_sgd_max_error".into(),
            json!(max_err(&fw.equiangular.0)),
        );
        s.insert(
            "finite_n_reference".into(),
            json!(if fw.spread { "spread" } else { "equiangular" }),
        );
        s.insert(
            "finite_width_fixed_points".into(),
            json!(fw
                .fixed_points
                .iter()
                .map(|(m, a)| json!({"m": m, "a": a}))
                .collect::<Vec<_>>()),
        );
    }
    // Fast–slow analysis.
    let fps = lm.slow_fixed_points();
    s.insert(
        "slow_fixed_points".into(),
        json!(fps
            .iter()
            .map(|(m, a)| json!({"m": m, "a": a}))
            .collect::<Vec<_>>()),
    );
    s.insert("manifold_a_at_m1".into(), json!(lm.manifold_a(1.0)));
    if let Some(law) = lm.scaling_law() {
        s.insert("scaling_law".into(), json!(law));
    }
    let crit_end =
        lm.unlearning_criterion(*m_th.last().unwrap_or(&0.0), *a_th.last().unwrap_or(&0.0));
    s.insert("criterion_S_at_end_theory".into(), json!(crit_end));
    if (drop > cfg.unlearning_drop) != (drop_th > cfg.unlearning_drop) {
        out.notes.push(format!(
            "Simulation and limit ODE disagree on unlearning (drops {drop:.3} vs {drop_th:.3})."
        ));
    }

    let mut pm = LinePlot::new("Alignment m(t)", "t", "m")
        .with(Series::line(
            format!(
                "simulation N={}, d={}",
                cfg.simulation.width, cfg.simulation.dim
            ),
            t.clone(),
            m.clone(),
        ))
        .with(Series::dashed("limit ODE", t.clone(), m_th.clone()));
    if let Some(fw) = &finite_n {
        let what = if fw.spread {
            "finite-N + spread ODE"
        } else {
            "finite-N ODE"
        };
        pm.series.push(Series::dashed(
            format!("{what} (N = {})", cfg.simulation.width),
            t.clone(),
            fw.m.clone(),
        ));
    }
    if let Some(mn) = noisy {
        pm.series.push(Series::dashed(
            "ODE + per-neuron noise term (refuted, see docs)",
            t.clone(),
            mn,
        ));
    }
    for (mq, _) in &fps {
        pm.ref_lines.push(RefLine {
            label: "slow fixed point m_eq".into(),
            vertical: false,
            value: *mq,
        });
    }
    out.figures.push(pm.figure("alignment", "Alignment of the first layer with θ*: finite-width simulation (solid) vs the limit ODE (dashed)."));
    out.figures.push(
        LinePlot::new("Second layer a(t)", "t", "a")
            .with(Series::line("simulation", t.clone(), a.clone()))
            .with(Series::dashed("limit ODE", t.clone(), a_th.clone()))
            .figure(
                "second_layer",
                "Mean effective second-layer weight: simulation vs limit ODE.",
            ),
    );
    out.figures.push(
        LinePlot::new("Population loss", "t", "loss")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line(
                "simulation (exact population loss)",
                t.clone(),
                loss,
            ))
            .with(Series::dashed("limit L(m, a)", t.clone(), l_th))
            .figure(
                "loss",
                "Exact population loss of the finite network vs L(m,a) of the limit.",
            ),
    );
    out.figures
        .push(phase_portrait(cfg, &lm, a0e, &m, &a, &m_th, &a_th)?);
    out.trajectory = traj;
    Ok(())
}

fn phase_portrait(
    cfg: &UnlearningConfig,
    lm: &LimitModel,
    a0e: f64,
    m: &[f64],
    a: &[f64],
    m_th: &[f64],
    a_th: &[f64],
) -> Result<crate::figure::Figure> {
    let a_top = a_th.iter().chain(a).fold(a0e, |x, y| x.max(*y)) * 2.0;
    let mut p = LinePlot::new("Phase portrait (m, a)", "alignment m", "second layer a");
    // Critical manifold from the roots of F(·, a) on a grid of a: attracting/repelling interior
    // points, split by the direction of the reduced slow flow.
    let mut groups: [(Vec<f64>, Vec<f64>); 4] = Default::default();
    for av in linspace(a_top / 400.0, a_top, 400) {
        for cp in lm.critical_points(av, 800) {
            if cp.m <= 0.0 {
                continue;
            }
            let g = match (cp.branch, cp.attracting) {
                (Branch::Boundary, true) => 3,
                (Branch::Boundary, false) => continue,
                (Branch::Interior, false) => 2,
                (Branch::Interior, true) => {
                    if lm.reduced_flow(cp.m).0 < 0.0 {
                        0
                    } else {
                        1
                    }
                }
            };
            groups[g].0.push(cp.m);
            groups[g].1.push(cp.a);
        }
    }
    let labels = [
        "M0 attracting, slow flow m↓ (unlearning)",
        "M0 attracting, slow flow m↑",
        "M0 repelling",
        "m = 1 branch (attracting)",
    ];
    for (g, l) in groups.into_iter().zip(labels) {
        if !g.0.is_empty() {
            p.series.push(Series::points(l, g.0, g.1));
        }
    }
    p.series.push(Series::dashed(
        "limit ODE trajectory",
        m_th.to_vec(),
        a_th.to_vec(),
    ));
    p.series.push(Series::line(
        "simulation trajectory",
        m.to_vec(),
        a.to_vec(),
    ));
    // Extra ODE trajectories from other initial conditions.
    let ts = linspace(0.0, cfg.t_max, 400);
    for (m0, a0) in [(0.05, 0.5 * a_top), (0.5, 0.05 * a_top), (0.9, 0.8 * a_top)] {
        let sol = lm.integrate(m0, a0, &ts, 1e-9)?;
        p.series.push(Series::dashed(
            format!("ODE from ({m0:.2}, {a0:.2})"),
            sol.iter().map(|x| x.0).collect(),
            sol.iter().map(|x| x.1).collect(),
        ));
    }
    Ok(p.figure(
        "phase_portrait",
        "Critical manifold F(m,a)=0 (points, computed as roots of the fast field; colour = attracting/repelling and direction of the reduced slow flow), limit-ODE and simulation trajectories.",
    ))
}

fn sweep(
    cfg: &UnlearningConfig,
    sw: &SweepConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let pname = match sw.parameter {
        SweepParameter::TeacherC2 => "c*_2",
        SweepParameter::A0 => "a0",
    };
    let t = linspace(0.0, cfg.t_max, cfg.record_points);
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 10];
    let mut pm = LinePlot::new(format!("Alignment across {pname}"), "t", "m");
    let mut agree = 0;
    for (i, &v) in sw.values.iter().enumerate() {
        let mut teacher = cfg.teacher.clone();
        let mut a0 = cfg.a0;
        match sw.parameter {
            SweepParameter::TeacherC2 => {
                if teacher.len() < 3 {
                    teacher.resize(3, 0.0);
                }
                teacher[2] = v;
            }
            SweepParameter::A0 => a0 = v,
        }
        let lm = cfg.limit(&teacher)?;
        let ode = lm.integrate(cfg.m0, cfg.a0_eff(a0), &t, 1e-10)?;
        let m_th: Vec<f64> = ode.iter().map(|p| p.0).collect();
        let (pk_th, _, fin_th, drop_th) = peak_final(&t, &m_th);
        pm.series
            .push(Series::dashed(format!("ODE {pname}={v}"), t.clone(), m_th));
        let (pk, fin, drop) = if sw.simulate {
            let sc = cfg.sim_config(
                cfg.simulation.width,
                cfg.simulation.dim,
                cfg.simulation.batch,
                &teacher,
                a0,
            )?;
            let sim = run_sim(
                sc,
                crate::rng::derive_seed(cfg.seed, &format!("sweep-{i}")),
                cfg.t_max,
                cfg.record_points,
                ctx,
                &format!("sweep {pname}={v}"),
            )?;
            let m: Vec<f64> = sim.ops.iter().map(|o| o.m).collect();
            let r = peak_final(&sim.t, &m);
            pm.series
                .push(Series::line(format!("sim {pname}={v}"), sim.t, m));
            (r.0, r.2, r.3)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        let fp = lm.slow_fixed_points();
        let (meq, aeq) = fp.first().copied().unwrap_or((f64::NAN, f64::NAN));
        let u_th = drop_th > cfg.unlearning_drop;
        let u_sim = drop > cfg.unlearning_drop;
        if !sw.simulate || u_th == u_sim {
            agree += 1;
        }
        for (c, x) in cols.iter_mut().zip([
            v,
            pk_th,
            fin_th,
            drop_th,
            f64::from(u_th as u8),
            pk,
            fin,
            drop,
            if sw.simulate {
                f64::from(u_sim as u8)
            } else {
                f64::NAN
            },
            meq,
        ]) {
            c.push(x);
        }
        out.summary.insert(format!("sweep_{i}"), json!({pname: v, "ode_peak": pk_th, "ode_final": fin_th, "ode_unlearning": u_th, "sim_peak": pk, "sim_final": fin, "sim_unlearning": if sw.simulate { json!(u_sim) } else { json!(null) }, "slow_fixed_point_m": meq, "slow_fixed_point_a": aeq}));
    }
    out.summary.insert("sweep_parameter".into(), json!(pname));
    if sw.simulate {
        out.agreement.push(
            AgreementRow::relative_to(
                format!(
                    "sweep of {pname}: values where simulation and limit ODE agree on unlearning (drop > {})",
                    cfg.unlearning_drop
                ),
                sw.values.len() as f64,
                agree as f64,
                1.0,
                0.0,
            )
            .with_note("counts"),
        );
    }
    out.summary.insert(
        "sweep_ode_sim_agreement".into(),
        json!(format!("{agree}/{}", sw.values.len())),
    );
    let names = [
        "value",
        "ode_peak",
        "ode_final",
        "ode_drop",
        "ode_unlearning",
        "sim_peak",
        "sim_final",
        "sim_drop",
        "sim_unlearning",
        "slow_fixed_point_m",
    ];
    let vals = cols[0].clone();
    let mut pd = LinePlot::new(
        format!("Alignment drop max m − m(T) vs {pname}"),
        pname,
        "drop",
    )
    .with(Series::dashed("limit ODE", vals.clone(), cols[3].clone()))
    .with(Series::points("simulation", vals.clone(), cols[7].clone()));
    pd.ref_lines.push(RefLine {
        label: "unlearning threshold".into(),
        vertical: false,
        value: cfg.unlearning_drop,
    });
    out.tables.push(CsvTable {
        name: "sweep".into(),
        columns: names.iter().map(|s| s.to_string()).collect(),
        values: cols,
    });
    out.figures.push(pm.figure(
        "sweep_alignment",
        format!("m(t) for each {pname}: limit ODE (dashed) and finite-width simulation (solid)."),
    ));
    out.figures.push(pd.figure("sweep_drop", "Alignment drop (peak minus final) against the swept parameter; above the threshold counts as unlearning."));
    if !sw.boundary_c2.is_empty() {
        boundary(cfg, sw, out)?;
    }
    Ok(())
}

fn boundary(cfg: &UnlearningConfig, sw: &SweepConfig, out: &mut RunOutput) -> Result<()> {
    let t = linspace(0.0, cfg.t_max, cfg.record_points);
    let drop_at = |c2: f64, a0: f64| -> Result<f64> {
        let mut teacher = cfg.teacher.clone();
        teacher.resize(teacher.len().max(3), 0.0);
        teacher[2] = c2;
        let ode = cfg
            .limit(&teacher)?
            .integrate(cfg.m0, cfg.a0_eff(a0), &t, 1e-8)?;
        Ok(peak_final(&t, &ode.iter().map(|p| p.0).collect::<Vec<_>>()).3)
    };
    let mut z = Vec::new();
    for &a0 in &sw.boundary_a0 {
        z.push(
            sw.boundary_c2
                .iter()
                .map(|&c2| drop_at(c2, a0))
                .collect::<Result<Vec<f64>>>()?,
        );
    }
    // Critical c*_2(a0): bisection of drop = threshold between the grid ends (ODE).
    let (lo, hi) = (sw.boundary_c2[0], *sw.boundary_c2.last().unwrap_or(&0.0));
    let mut crit = Vec::new();
    for &a0 in &sw.boundary_a0 {
        let (mut l, mut h) = (lo, hi);
        let (dl, dh) = (
            drop_at(l, a0)? - cfg.unlearning_drop,
            drop_at(h, a0)? - cfg.unlearning_drop,
        );
        if dl * dh > 0.0 {
            crit.push(f64::NAN);
            continue;
        }
        for _ in 0..30 {
            let mid = 0.5 * (l + h);
            if (drop_at(mid, a0)? - cfg.unlearning_drop) * dl > 0.0 {
                l = mid;
            } else {
                h = mid;
            }
        }
        crit.push(0.5 * (l + h));
    }
    // Theory: slow fixed point a_eq(c*2) for degree-2 (general: the fixed point on A(m)), and m_eq = 1.
    let (c1, c2s, t1) = (
        cfg.student[1],
        cfg.student.get(2).copied().unwrap_or(0.0),
        cfg.teacher.get(1).copied().unwrap_or(0.0),
    );
    let (cx, cy): (Vec<f64>, Vec<f64>) = linspace(lo, hi, 200)
        .into_iter()
        .filter_map(|c| {
            let mut teacher = cfg.teacher.clone();
            teacher.resize(teacher.len().max(3), 0.0);
            teacher[2] = c;
            let lm = cfg.limit(&teacher).ok()?;
            lm.slow_fixed_points().first().map(|fp| (c, fp.1))
        })
        .filter(|(_, a)| *a <= *sw.boundary_a0.last().unwrap_or(&0.0) * 1.05)
        .unzip();
    let a0s = sw.boundary_a0.clone();
    let heat = Heatmap {
        title: "Alignment drop of the limit ODE over (c*_2, a0)".into(),
        x_label: "teacher c*_2".into(),
        y_label: "a0".into(),
        z_label: "max m − m(T)".into(),
        x: sw.boundary_c2.clone(),
        y: a0s.clone(),
        z: z.clone(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        overlays: vec![
            Series::line("ODE boundary (drop = threshold)", crit.clone(), a0s.clone()),
            Series::dashed("slow fixed point a_eq(c*_2)", cx, cy),
            Series::dashed(
                "m_eq = 1: c*_2 = c_2 c*_1 / c_1",
                vec![c2s * t1 / c1; 2],
                vec![a0s[0], *a0s.last().unwrap_or(&0.0)],
            ),
        ],
    };
    out.figures.push(crate::figure::Figure {
        name: "boundary".into(),
        caption: "Unlearning map of the limit ODE: alignment drop over teacher c*_2 and initial second-layer scale a0, the traced boundary, and the fast–slow prediction (a0 above a_eq, or c*_2 above c_2c*_1/c_1, means no unlearning).".into(),
        kind: crate::figure::FigureKind::Heatmap(heat),
    });
    out.tables.push(CsvTable {
        name: "boundary".into(),
        columns: vec!["a0".into(), "critical_c2_ode".into()],
        values: vec![a0s, crit.clone()],
    });
    out.summary
        .insert("boundary_critical_c2".into(), json!(crit));
    Ok(())
}

fn slope(x: &[f64], y: &[f64]) -> Result<(f64, f64)> {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let ls = least_squares(&[vec![1.0; lx.len()], lx], &ly)?;
    Ok((ls.coef[1], ls.ci95[1]))
}

/// One convergence series: the log–log slope s (± its 95% interval ci) of `errs` against
/// `x` ([`slope`]), the points on `fig` labelled `label` + " (slope s ± ci)", and the
/// summary keys `{key}_errors`, `{key}_error_slope`, `{key}_error_slope_ci95`. Returns s.
fn error_slope_series(
    fig: &mut LinePlot,
    out: &mut RunOutput,
    key: &str,
    label: &str,
    x: &[f64],
    errs: &[f64],
) -> Result<f64> {
    let (s, ci) = slope(x, errs)?;
    fig.series.push(Series::points(
        format!("{label} (slope {s:.2} ± {ci:.2})"),
        x.to_vec(),
        errs.to_vec(),
    ));
    out.summary.insert(format!("{key}_errors"), json!(errs));
    out.summary.insert(format!("{key}_error_slope"), json!(s));
    out.summary
        .insert(format!("{key}_error_slope_ci95"), json!(ci));
    Ok(s)
}

fn convergence(
    cfg: &UnlearningConfig,
    c: &ConvergenceConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let ts = linspace(0.0, c.t_max, 101);
    let lm = cfg.limit(&cfg.teacher)?;
    let mut fig = LinePlot::new(
        "Simulation vs limit ODE: max_t |m − m_ODE|",
        "N (width) or B (batch)",
        "max error",
    )
    .scales(Scale::Log, Scale::Log);
    if c.widths.len() >= 2 {
        let ode = lm.integrate(cfg.m0, cfg.a0, &ts, 1e-10)?;
        let mut errs = Vec::new();
        for &n in &c.widths {
            let d = ((c.dim_ratio * n as f64).round() as usize).max(n + 1);
            let mut sc = cfg.sim_config(n, d, BatchMode::Population, &cfg.teacher, cfg.a0)?;
            // Mean-field units throughout (the width study compares to the ODE started at a0).
            sc.gamma = 1.0;
            sc.a0 = cfg.a0;
            sc.orthogonal_init = false;
            ctx.progress.start(&format!("population flow N={n}"), 1);
            let (mut flow, y0) = ParticleFlow::new(
                sc.clone(),
                crate::rng::derive_seed(cfg.seed, &format!("width-{n}")),
            )?;
            let sol = solve(
                &mut flow,
                &DOPRI5,
                PidController::new(1e-7, 1e-10),
                0.0,
                c.t_max,
                &y0,
                &ts,
                10_000_000,
            )?;
            ctx.progress.finish();
            let q = GaussHermite::new(16)?;
            let e = sol
                .ys
                .iter()
                .zip(&ode)
                .map(|(y, (m, _))| (order_params(&sc, &y[..n * d], &y[n * d..], &q).m - m).abs())
                .fold(0.0, f64::max);
            errs.push(e);
        }
        let w: Vec<f64> = c.widths.iter().map(|v| *v as f64).collect();
        let label = format!("population flow, d = {}·N", c.dim_ratio);
        let s = error_slope_series(&mut fig, out, "width", &label, &w, &errs)?;
        let ci = out.summary["width_error_slope_ci95"]
            .as_f64()
            .unwrap_or(f64::NAN);
        out.agreement.push(
            AgreementRow::relative_to(
                "population flow: log–log slope of max_t |m − m_ODE| over width vs −1 (O(1/N) finite-width corrections; tolerance: the fit's 95 % interval)",
                -1.0,
                s,
                1.0,
                ci,
            )
            .with_note(format!("widths {w:?}")),
        );
        fig.series.push(Series::dashed(
            "fit",
            w.clone(),
            w.iter().map(|x| errs[0] * (x / w[0]).powf(s)).collect(),
        ));
        out.tables.push(CsvTable {
            name: "convergence_width".into(),
            columns: vec!["width".into(), "max_error_m".into()],
            values: vec![w, errs],
        });
    }
    if c.batches.len() >= 2 {
        let ode = lm.integrate(cfg.m0, cfg.a0_eff(cfg.a0), &ts, 1e-10)?;
        let mut errs = Vec::new();
        for &b in &c.batches {
            let sc = cfg.sim_config(
                cfg.simulation.width,
                cfg.simulation.dim,
                BatchMode::Online { batch: b },
                &cfg.teacher,
                cfg.a0,
            )?;
            let sim = run_sim(
                sc,
                crate::rng::derive_seed(cfg.seed, &format!("batch-{b}")),
                c.t_max,
                ts.len(),
                ctx,
                &format!("SGD B={b}"),
            )?;
            let e = sim
                .ops
                .iter()
                .zip(&ode)
                .map(|(o, (m, _))| (o.m - m).abs())
                .fold(0.0, f64::max);
            errs.push(e);
        }
        let bs: Vec<f64> = c.batches.iter().map(|v| *v as f64).collect();
        let label = format!(
            "online SGD, N={}, d={}",
            cfg.simulation.width, cfg.simulation.dim
        );
        error_slope_series(&mut fig, out, "batch", &label, &bs, &errs)?;
        out.tables.push(CsvTable {
            name: "convergence_batch".into(),
            columns: vec!["batch".into(), "max_error_m".into()],
            values: vec![bs, errs],
        });
    }
    if c.sgd_widths.len() >= 2 {
        sgd_width_series(cfg, c, &lm, &ts, ctx, out, &mut fig)?;
    }
    out.figures.push(fig.figure("convergence", "Maximum alignment error between the finite system and the limit ODE, against width N (population gradient flow, d grown with N; online SGD with B grown with N) and batch size B (online SGD at fixed N), with fitted log–log slopes and 95 % intervals; the SGD width series also against the finite-N ODE with the pair-overlap spread at its λ = ηd/B."));
    Ok(())
}

/// The `[convergence] sgd_widths` series: online SGD at each width N with `d = dim_ratio·N` and
/// `B` from the batch rule, seed-averaged m against the limit ODE (all t) and, for the
/// mean-field spherical model, the finite-N spread ODE at `λ = ηd/B` (`t ≥ finite_n_from`).
fn sgd_width_series(
    cfg: &UnlearningConfig,
    c: &ConvergenceConfig,
    lm: &LimitModel,
    ts: &[f64],
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
    fig: &mut LinePlot,
) -> Result<()> {
    let Some(rule) = c.batch_scaling else {
        return Err(Error::config(
            "convergence.batch_scaling",
            "sgd_widths needs a batch rule",
        ));
    };
    let finite_n = cfg.simulation.parametrization.gamma() == 1.0
        && cfg.simulation.first_layer == FirstLayer::Spherical;
    let mut rows: [Vec<f64>; 6] = Default::default();
    for &n in &c.sgd_widths {
        let d = ((c.dim_ratio * n as f64).round() as usize).max(2);
        let b = rule.batch(n);
        let sc = cfg.sim_config(n, d, BatchMode::Online { batch: b }, &cfg.teacher, cfg.a0)?;
        let lambda = sc.lr * d as f64 / b as f64;
        let a0e = sc.a0;
        let mut m_mean = vec![0.0; ts.len()];
        for i in 0..c.sgd_seeds {
            let sim = run_sim(
                sc.clone(),
                crate::rng::derive_seed(cfg.seed, &format!("sgd-width-{n}-{i}")),
                c.t_max,
                ts.len(),
                ctx,
                &format!("SGD N={n} B={b} seed {i}"),
            )?;
            for (acc, o) in m_mean.iter_mut().zip(&sim.ops) {
                *acc += o.m / c.sgd_seeds as f64;
            }
        }
        let ode = lm.integrate(cfg.m0, a0e, ts, 1e-10)?;
        let e_lim = m_mean
            .iter()
            .zip(&ode)
            .map(|(m, (mo, _))| (m - mo).abs())
            .fold(0.0, f64::max);
        let e_fin = if finite_n {
            let sol = spread_ode_at(cfg, lm, (n, d), a0e, lambda, ts)?;
            ts.iter()
                .zip(m_mean.iter().zip(&sol))
                .filter(|(t, _)| **t >= c.finite_n_from)
                .map(|(_, (m, y))| (m - y[0]).abs())
                .fold(0.0, f64::max)
        } else {
            f64::NAN
        };
        for (row, v) in rows
            .iter_mut()
            .zip([n as f64, d as f64, b as f64, lambda, e_lim, e_fin])
        {
            row.push(v);
        }
    }
    let [w, dims, bs, lambdas, e_lim, e_fin] = rows;
    let label = match rule {
        BatchScaling::Linear { factor } => format!("B = {factor}·N"),
        BatchScaling::Quadratic { divisor } => format!("B = N²/{divisor}"),
    };
    let series = format!("online SGD, {label}, d = {}·N, vs limit ODE", c.dim_ratio);
    error_slope_series(fig, out, "sgd_width", &series, &w, &e_lim)?;
    out.summary.insert("sgd_width_batches".into(), json!(bs));
    out.summary
        .insert("sgd_width_lambdas".into(), json!(lambdas));
    if finite_n {
        let series = format!(
            "online SGD, {label}, vs finite-N spread ODE, t ≥ {}",
            c.finite_n_from
        );
        error_slope_series(fig, out, "sgd_width_finite_n", &series, &w, &e_fin)?;
    }
    out.tables.push(CsvTable {
        name: "convergence_sgd_width".into(),
        columns: vec![
            "width".into(),
            "dim".into(),
            "batch".into(),
            "lambda".into(),
            "max_error_m".into(),
            "max_error_m_finite_n".into(),
        ],
        values: vec![w, dims, bs, lambdas, e_lim, e_fin],
    });
    Ok(())
}

/// One row of the exponent table: estimates of the m and a exponents with their intervals.
/// An exponent estimate against its reference, with the measured interval as the
/// tolerance: absolute (scale 1), tolerance = the distance from the estimate to the
/// interval's end on the reference's side, so the row holds iff the reference lies in
/// [lo, hi] (window spread for deterministic curves, seed bootstrap for SGD).
fn exponent_row(
    r: &ExponentRow,
    what: &str,
    (v, lo, hi): (f64, f64, f64),
    reference: f64,
) -> Option<AgreementRow> {
    if !(reference.is_finite() && lo.is_finite() && hi.is_finite()) {
        return None;
    }
    let tol = if reference <= v { v - lo } else { hi - v };
    Some(
        AgreementRow::relative_to(
            format!(
                "{what} exponent, {} vs {} (tolerance: {})",
                r.source, r.reference_label, r.interval
            ),
            reference,
            v,
            1.0,
            tol,
        )
        .with_note(format!("interval [{lo:.6}, {hi:.6}]")),
    )
}

struct ExponentRow {
    source: &'static str,
    /// `"window spread"`, `"seed bootstrap 95 %"` or `"none"` (deterministic prediction).
    interval: &'static str,
    m: (f64, f64, f64),
    a: (f64, f64, f64),
    /// The values the m and a estimates are compared with.
    reference: (f64, f64),
    reference_label: &'static str,
}

fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo * (hi / lo).powf(i as f64 / n as f64))
        .collect()
}

fn scaling(
    cfg: &UnlearningConfig,
    sc: &ScalingConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let lm = cfg.limit(&cfg.teacher)?;
    let Some(law) = lm.scaling_law() else {
        out.notes.push("No late-time decay law: the leading term of the slow flow anchors the alignment (or c_1 c*_1 ≤ 0).".into());
        return Ok(());
    };
    let mut rows: Vec<ExponentRow> = Vec::new();
    let mut fig = LinePlot::new("Late-time scaling", "t", "m, a").scales(Scale::Log, Scale::Log);
    // Corrections to scaling: relative O(m) and O(m²) terms, i.e. t^{−β} and t^{−2β}.
    let om = [law.exponent, 2.0 * law.exponent];
    let spread = |w: &WindowedExponent| (w.exponent, w.exponent - w.spread, w.exponent + w.spread);
    let [r0, r1] = sc.reduced_window;
    let tr = log_grid(r0, r1, 120);
    let m_start = 0.5_f64.min(
        lm.slow_fixed_points()
            .first()
            .map(|f| f.0 * 0.9)
            .unwrap_or(0.5),
    );
    let red = lm.integrate_reduced(m_start, &[&[0.0][..], &tr[..]].concat(), 1e-11)?;
    let (rm, ra): (Vec<f64>, Vec<f64>) = red[1..].iter().copied().unzip();
    let neg = |v: (f64, f64, f64)| (-v.0, -v.2, -v.1);
    let (n_win, ratio) = (sc.windows, sc.window_ratio);
    rows.push(ExponentRow {
        source: "reduced flow",
        interval: "window spread",
        m: neg(spread(&windowed_exponent(
            &tr, &rm, r0, r1, ratio, n_win, &om,
        )?)),
        a: spread(&windowed_exponent(&tr, &ra, r0, r1, ratio, n_win, &om)?),
        reference: (law.exponent, law.exponent),
        reference_label: "derived exponent",
    });
    fig.series
        .push(Series::dashed("reduced flow m", tr.clone(), rm));
    fig.series
        .push(Series::dashed("reduced flow a", tr.clone(), ra));
    let [o0, o1] = sc.ode_window;
    let tf = log_grid(o0, o1, 120);
    let a0e = cfg.a0_eff(cfg.a0);
    let full = lm.integrate(cfg.m0, a0e, &[&[0.0][..], &tf[..]].concat(), 1e-10)?;
    let (fm, fa): (Vec<f64>, Vec<f64>) = full[1..].iter().copied().unzip();
    rows.push(ExponentRow {
        source: "full limit ODE",
        interval: "window spread",
        m: neg(spread(&windowed_exponent(
            &tf, &fm, o0, o1, ratio, n_win, &om,
        )?)),
        a: spread(&windowed_exponent(&tf, &fa, o0, o1, ratio, n_win, &om)?),
        reference: (law.exponent, law.exponent),
        reference_label: "derived exponent",
    });
    fig.series.push(Series::line("full ODE m", tf.clone(), fm));
    fig.series.push(Series::line("full ODE a", tf.clone(), fa));

    // Finite width: the simulation's window [w0, w1] is far from the asymptotic regime, and the
    // alignment saturates at N^{−1/4}. Compare the simulated window exponent (plain power law,
    // seeds as replicates) with the same fit of the finite-N and N = ∞ ODEs on that window.
    let [w0, w1] = sc.window;
    let t = out.trajectory.column("t").unwrap_or_default();
    let plain = |y: &[f64]| -> Result<f64> { Ok(power_law(&t, y, w0, w1)?.exponent) };
    let mut reps_m = vec![out.trajectory.column("m").unwrap_or_default()];
    let mut reps_a = vec![out.trajectory.column("a").unwrap_or_default()];
    for i in 1..sc.seeds {
        let scfg = cfg.main_sim_config()?;
        let sim = run_sim(
            scfg,
            crate::rng::derive_seed(cfg.seed, &format!("scaling-seed-{i}")),
            cfg.t_max,
            cfg.record_points,
            ctx,
            &format!("scaling replicate {i}"),
        )?;
        reps_m.push(sim.ops.iter().map(|o| o.m).collect());
        reps_a.push(sim.ops.iter().map(|o| o.a).collect());
    }
    let ode_n = if cfg.simulation.parametrization.gamma() == 1.0 {
        let eq = EquiangularModel::new(
            lm.student.clone(),
            lm.teacher.clone(),
            cfg.eps,
            cfg.simulation.width as f64,
        )?;
        let sol = eq.integrate(cfg.m0, 0.0, a0e, &t, 1e-10)?;
        let m: Vec<f64> = sol.iter().map(|x| x[0]).collect();
        let a: Vec<f64> = sol.iter().map(|x| x[2]).collect();
        Some((plain(&m)?, plain(&a)?))
    } else {
        None
    };
    // Finite N plus the pair-overlap spread S (random-init Marchenko–Pastur transient and the
    // SGD-noise feed at λ = ηd/B), the per-neuron and common-mode noise terms and the alignment
    // spread (`theory::unlearning::spread`).
    let ode_spread = if cfg.simulation.parametrization.gamma() == 1.0
        && cfg.simulation.first_layer == FirstLayer::Spherical
    {
        let sol = spread_ode(cfg, &lm, a0e, noise_strength(cfg), &t)?;
        let m: Vec<f64> = sol.iter().map(|x| x[0]).collect();
        let a: Vec<f64> = sol.iter().map(|x| x[2]).collect();
        Some((plain(&m)?, plain(&a)?))
    } else {
        None
    };
    let ode_inf = {
        let sol = lm.integrate(cfg.m0, a0e, &t, 1e-10)?;
        let m: Vec<f64> = sol.iter().map(|x| x.0).collect();
        let a: Vec<f64> = sol.iter().map(|x| x.1).collect();
        (plain(&m)?, plain(&a)?)
    };
    let mean_of = |reps: &[Vec<f64>], idx: &[usize]| -> Vec<f64> {
        (0..t.len())
            .map(|k| idx.iter().map(|&i| reps[i][k]).sum::<f64>() / idx.len() as f64)
            .collect()
    };
    let (sim_m, sim_a) = if sc.seeds >= 2 {
        let mut rng = crate::rng::stream(cfg.seed, "scaling-bootstrap");
        let bm = bootstrap_ci(sc.seeds, 2000, &mut rng, |idx| {
            plain(&mean_of(&reps_m, idx))
        })?;
        let ba = bootstrap_ci(sc.seeds, 2000, &mut rng, |idx| {
            plain(&mean_of(&reps_a, idx))
        })?;
        ((-bm.0, -bm.2, -bm.1), ba)
    } else {
        let e = (-plain(&reps_m[0])?, f64::NAN, f64::NAN);
        (e, (plain(&reps_a[0])?, f64::NAN, f64::NAN))
    };
    let all: Vec<usize> = (0..sc.seeds).collect();
    let keep: Vec<usize> = (0..t.len()).filter(|&i| t[i] >= w0 * 0.1).collect();
    let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    fig.series.push(Series::points(
        format!("simulation m (mean of {} seeds)", sc.seeds),
        pick(&t),
        pick(&mean_of(&reps_m, &all)),
    ));
    fig.series.push(Series::points(
        "simulation a",
        pick(&t),
        pick(&mean_of(&reps_a, &all)),
    ));
    rows.push(ExponentRow {
        source: "simulation (window exponent)",
        interval: if sc.seeds >= 2 {
            "seed bootstrap 95 %"
        } else {
            "none"
        },
        m: sim_m,
        a: sim_a,
        reference: ode_spread
            .map(|x| (-x.0, x.1))
            .unwrap_or((f64::NAN, f64::NAN)),
        reference_label: "finite-N + spread ODE (SGD noise), same window",
    });
    if let Some((m, a)) = ode_spread {
        rows.push(ExponentRow {
            source: "finite-N + spread ODE (window exponent)",
            interval: "none",
            m: (-m, f64::NAN, f64::NAN),
            a: (a, f64::NAN, f64::NAN),
            reference: (f64::NAN, f64::NAN),
            reference_label: "",
        });
    }
    if let Some((m, a)) = ode_n {
        rows.push(ExponentRow {
            source: "finite-N ODE (window exponent)",
            interval: "none",
            m: (-m, f64::NAN, f64::NAN),
            a: (a, f64::NAN, f64::NAN),
            reference: (f64::NAN, f64::NAN),
            reference_label: "",
        });
    }
    rows.push(ExponentRow {
        source: "limit ODE N = ∞ (window exponent)",
        interval: "none",
        m: (-ode_inf.0, f64::NAN, f64::NAN),
        a: (ode_inf.1, f64::NAN, f64::NAN),
        reference: (f64::NAN, f64::NAN),
        reference_label: "",
    });
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 9];
    let mut fits = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        // Exponents are reported as decay (m) and growth (a) rates, both ≈ +β.
        let within = |v: (f64, f64, f64), x: f64| x >= v.1 && x <= v.2;
        fits.push(json!({"source": r.source, "interval": r.interval, "m_decay_exponent": r.m.0, "m_interval": [r.m.1, r.m.2], "a_growth_exponent": r.a.0, "a_interval": [r.a.1, r.a.2], "m_reference": r.reference.0, "a_reference": r.reference.1, "reference_is": r.reference_label, "m_reference_within": within(r.m, r.reference.0), "a_reference_within": within(r.a, r.reference.1)}));
        for (c, v) in cols.iter_mut().zip([
            i as f64,
            r.m.0,
            r.m.1,
            r.m.2,
            r.a.0,
            r.a.1,
            r.a.2,
            r.reference.0,
            r.reference.1,
        ]) {
            c.push(v);
        }
    }
    for r in &rows {
        for (what, v, reference) in [
            ("m decay", r.m, r.reference.0),
            ("a growth", r.a, r.reference.1),
        ] {
            if let Some(row) = exponent_row(r, what, v, reference) {
                out.agreement.push(row);
            }
        }
    }
    out.summary
        .insert("scaling_exponent_theory".into(), json!(law.exponent));
    out.summary.insert("scaling_fits".into(), json!(fits));
    out.notes.push(format!(
        "Exponent intervals: window spread = max deviation of the corrected-fit exponent over {n_win} sliding windows of ratio {ratio} from the latest window (deterministic curves); seed bootstrap = 95 % percentile interval of the exponent of the seed-averaged simulation ({} seeds, 2000 resamples).",
        sc.seeds
    ));
    out.tables.push(CsvTable {
        name: "scaling".into(),
        columns: [
            "source(0=reduced,1=ode,2=sim,3=spread_ode,4=finite_n_ode,5=inf_ode_window)",
            "m_decay_exponent",
            "m_lo",
            "m_hi",
            "a_growth_exponent",
            "a_lo",
            "a_hi",
            "m_reference",
            "a_reference",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        values: cols,
    });
    fig.series.push(Series::dashed(
        format!("theory a ∝ t^{:.3}", law.exponent),
        tr.clone(),
        tr.iter()
            .map(|t| law.a_prefactor * t.powf(law.exponent))
            .collect(),
    ));
    out.figures.push(fig.figure("scaling", "Late-time decay of m and growth of a (log–log): reduced slow flow, full limit ODE, simulation (seed mean), and the derived power law."));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;

    fn config(convergence: &str) -> String {
        format!(
            r#"
            experiment = "unlearning"
            student = [0.0, 1.0, 0.5]
            teacher = [0.0, 1.0, 0.0]
            m0 = 0.1
            a0 = 0.1
            eps = 0.2
            t_max = 2.0
            record_points = 3
            [simulation]
            width = 8
            dim = 8
            lr = 0.05
            batch = {{ kind = "online", batch = 16 }}
            [convergence]
            {convergence}
            "#
        )
    }

    fn resolve(convergence: &str) -> Result<toml::Table> {
        UnlearningExperiment.resolve(&parse_toml(&config(convergence), "test").unwrap())
    }

    /// `B = factor·N` keeps λ = ηd/B fixed at d = N; `B = N²/divisor` makes it fall like 1/N.
    #[test]
    fn batch_scaling_rules() {
        let lin = BatchScaling::Linear { factor: 8.0 };
        let quad = BatchScaling::Quadratic { divisor: 8.0 };
        for (n, b_lin, b_quad) in [(64, 512, 512), (128, 1024, 2048), (256, 2048, 8192)] {
            assert_eq!(lin.batch(n), b_lin);
            assert_eq!(quad.batch(n), b_quad);
        }
        assert_eq!(quad.batch(2), 1, "at least one sample");
    }

    /// A batch-scaled SGD width series without a rule, with two widths (no interval on a
    /// two-point slope), or with a bad rule is a config error naming the key.
    #[test]
    fn sgd_width_series_bad_input_is_a_config_error() {
        let base = "t_max = 4.0\n";
        for (extra, key) in [
            ("sgd_widths = [4, 8, 16]", "batch_scaling"),
            (
                "sgd_widths = [8, 16]\nbatch_scaling = { kind = \"quadratic\", divisor = 2.0 }",
                "convergence.widths",
            ),
            (
                "sgd_widths = [4, 8, 16]\nbatch_scaling = { kind = \"quadratic\", divisor = 0.0 }",
                "batch_scaling",
            ),
            (
                "sgd_widths = [4, 8, 16]\nbatch_scaling = { kind = \"linear\", factor = 2.0 }\nfinite_n_from = 4.0",
                "finite_n_from",
            ),
            (
                "sgd_widths = [4, 8, 16]\nbatch_scaling = { kind = \"linear\", factor = 2.0 }\nsgd_seeds = 0",
                "sgd_seeds",
            ),
        ] {
            let err = resolve(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    /// The series runs SGD at each width with the rule's batch and reports λ = ηd/B and finite
    /// errors against both ODEs.
    #[test]
    fn sgd_width_series_uses_the_batch_rule() {
        let resolved = resolve(
            "t_max = 4.0\nsgd_widths = [4, 8, 16]\nbatch_scaling = { kind = \"quadratic\", divisor = 2.0 }\nfinite_n_from = 1.0",
        )
        .unwrap();
        let out = UnlearningExperiment
            .run(&resolved, &RunContext::default())
            .unwrap();
        let tab = out
            .tables
            .iter()
            .find(|t| t.name == "convergence_sgd_width")
            .expect("table convergence_sgd_width");
        assert_eq!(tab.values[0], vec![4.0, 8.0, 16.0]);
        assert_eq!(tab.values[2], vec![8.0, 32.0, 128.0]);
        assert_eq!(
            tab.values[3],
            vec![0.05 * 4.0 / 8.0, 0.05 * 8.0 / 32.0, 0.05 * 16.0 / 128.0]
        );
        for col in [4, 5] {
            assert!(
                tab.values[col].iter().all(|e| e.is_finite() && *e > 0.0),
                "{:?}",
                tab.values[col]
            );
        }
        assert!(out.summary["sgd_width_finite_n_error_slope"].is_f64());
    }
}
