//! The `unlearning` experiment's typed config: the model, `[simulation]` and the optional
//! study sections, validated once (errors name the config key).

use super::*;

pub(super) fn name() -> String {
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
    pub(crate) fn gamma(self) -> f64 {
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

pub(super) fn yes() -> bool {
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

    pub(crate) fn validate(self) -> Result<()> {
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

pub(super) fn one() -> f64 {
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

pub(super) fn default_windows() -> usize {
    5
}
pub(super) fn default_window_ratio() -> f64 {
    10.0
}
pub(super) fn one_usize() -> usize {
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
    #[serde(default)]
    pub saturation: Option<SaturationConfig>,
    #[serde(default)]
    pub noise: Option<NoiseConfig>,
    #[serde(default)]
    pub exponents: Option<ExponentsConfig>,
}

pub(super) fn default_points() -> usize {
    201
}
pub(super) fn default_drop() -> f64 {
    0.05
}

impl UnlearningConfig {
    pub(crate) fn validate(&self) -> Result<()> {
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
        if let Some(s) = &self.saturation {
            s.validate()?;
        }
        if let Some(n) = &self.noise {
            n.validate()?;
        }
        if let Some(e) = &self.exponents {
            e.validate()?;
        }
        Ok(())
    }

    pub(crate) fn limit(&self, teacher: &[f64]) -> Result<LimitModel> {
        Ok(LimitModel::new(
            HermiteSeries::new(self.student.clone(), "student")?,
            HermiteSeries::new(teacher.to_vec(), "teacher")?,
            self.eps,
        ))
    }

    pub(crate) fn sim_config(
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
    pub(crate) fn main_sim_config(&self) -> Result<SimConfig> {
        let s = &self.simulation;
        self.sim_config(s.width, s.dim, s.batch, &self.teacher, self.a0)
    }

    /// Effective initial second layer of the limit: `N^{1−γ} a0`.
    pub(crate) fn a0_eff(&self, a0: f64) -> f64 {
        a0 * (self.simulation.width as f64).powf(1.0 - self.simulation.parametrization.gamma())
    }
}

/// `[saturation]`: the finite-width stall (population GD and SGD at widths N, d = N, against the
/// limit ODE and the finite-N ODE; docs/unlearning.md, "Finite-width saturation").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SaturationConfig {
    /// Widths N (d = N) run with population GD.
    pub widths: Vec<usize>,
    /// Widths (among `widths`) also run with online SGD at `B = batch_factor · N`.
    #[serde(default)]
    pub sgd_widths: Vec<usize>,
    #[serde(default = "eight")]
    pub batch_factor: usize,
    /// Horizon T.
    pub t_max: f64,
    /// Comparison times `T·i/points`, i = 1..points.
    #[serde(default = "eight")]
    pub points: usize,
    /// Relative tolerance of the deviation rows (the O(1/d) random-frame transient).
    #[serde(default = "default_saturation_tolerance")]
    pub tolerance: f64,
}

fn eight() -> usize {
    8
}
fn default_saturation_tolerance() -> f64 {
    0.05
}

/// `[noise]`: SGD minus population GD at batch sizes B against the noise ODEs
/// (docs/unlearning.md, "SGD noise").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NoiseConfig {
    /// Width N = input dimension d.
    pub width: usize,
    /// Batch sizes of online SGD.
    pub batches: Vec<usize>,
    /// Replicates: seeds `derive_seed(seed + s, "noise")`, s = 0..seeds (SGD and population GD
    /// of replicate s share the init).
    pub seeds: usize,
    pub t_max: f64,
    /// Comparison times `T·i/points`, i = 1..points.
    #[serde(default = "ten")]
    pub points: usize,
    /// Agreement tolerance in standard errors of the seed mean.
    #[serde(default = "three")]
    pub tolerance: f64,
}

fn ten() -> usize {
    10
}
fn three() -> f64 {
    3.0
}

/// `[exponents]`: window-spread exponents of the reduced flow and the full limit ODE over
/// several fit ranges (each range needs ≥ `window_ratio` span, inside its grid).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExponentsConfig {
    /// Reduced-flow time grid `[lo, hi]` (120 log-spaced intervals).
    pub reduced_grid: [f64; 2],
    pub reduced_ranges: Vec<[f64; 2]>,
    #[serde(default = "seven")]
    pub reduced_windows: usize,
    /// Full-ODE time grid `[lo, hi]` (120 log-spaced intervals).
    pub ode_grid: [f64; 2],
    pub ode_ranges: Vec<[f64; 2]>,
    #[serde(default = "default_windows")]
    pub ode_windows: usize,
    #[serde(default = "default_window_ratio")]
    pub window_ratio: f64,
}

fn seven() -> usize {
    7
}

impl SaturationConfig {
    fn validate(&self) -> Result<()> {
        if self.widths.is_empty() || self.widths.iter().any(|&n| n < 2) {
            return Err(Error::config("saturation.widths", "give widths ≥ 2"));
        }
        if let Some(n) = self.sgd_widths.iter().find(|n| !self.widths.contains(n)) {
            return Err(Error::config(
                "saturation.sgd_widths",
                format!("{n} is not one of saturation.widths"),
            ));
        }
        if self.batch_factor == 0 || self.points == 0 {
            return Err(Error::config(
                "saturation.batch_factor",
                "batch_factor and points must be ≥ 1",
            ));
        }
        positive("saturation.t_max", self.t_max)?;
        positive("saturation.tolerance", self.tolerance)
    }
}

impl NoiseConfig {
    fn validate(&self) -> Result<()> {
        if self.width < 2 {
            return Err(Error::config("noise.width", "must be ≥ 2"));
        }
        if self.batches.is_empty() || self.batches.contains(&0) {
            return Err(Error::config("noise.batches", "give batch sizes ≥ 1"));
        }
        if self.seeds < 2 {
            return Err(Error::config(
                "noise.seeds",
                "need ≥ 2 seeds for a standard error",
            ));
        }
        if self.points == 0 {
            return Err(Error::config("noise.points", "must be ≥ 1"));
        }
        positive("noise.t_max", self.t_max)?;
        positive("noise.tolerance", self.tolerance)
    }
}

impl ExponentsConfig {
    fn validate(&self) -> Result<()> {
        if self.window_ratio.is_nan() || self.window_ratio <= 1.0 {
            return Err(Error::config("exponents.window_ratio", "must be > 1"));
        }
        for (key, grid, ranges, windows) in [
            (
                "exponents.reduced_ranges",
                self.reduced_grid,
                &self.reduced_ranges,
                self.reduced_windows,
            ),
            (
                "exponents.ode_ranges",
                self.ode_grid,
                &self.ode_ranges,
                self.ode_windows,
            ),
        ] {
            if !(grid[0] > 0.0 && grid[1] > grid[0]) {
                return Err(Error::config(
                    key,
                    format!("grid needs 0 < lo < hi, got {grid:?}"),
                ));
            }
            if windows < 2 {
                return Err(Error::config(key, "need ≥ 2 windows"));
            }
            for r in ranges {
                if !(r[0] >= grid[0] && r[1] <= grid[1] && r[1] >= r[0] * self.window_ratio) {
                    return Err(Error::config(
                        key,
                        format!("range {r:?} must lie in the grid {grid:?} and span ≥ window_ratio = {}", self.window_ratio),
                    ));
                }
            }
        }
        if self.reduced_ranges.is_empty() && self.ode_ranges.is_empty() {
            return Err(Error::config(
                "exponents.reduced_ranges",
                "give at least one fit range",
            ));
        }
        Ok(())
    }
}

fn positive(key: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!("must be a finite number > 0, got {v}"),
        ))
    }
}
