//! The `exact_phase_diagram` experiment: kernel vs feature-learning order parameters of
//! the exact 1-D model over any two of (width, γ, init scales, learning-rate ratio, and
//! their power-law exponents in the width), evaluated from the closed form (no training)
//! with the analytic boundary K̄ = |k| drawn on top; a few points are checked by training
//! the engine (Xu & Ziyin, arXiv 2401.07085 v3).

use super::mechanisms::convergence_time;
use crate::compare::AgreementRow;
use crate::data::Dataset;
use crate::experiments::study::{Study, StudyOutputs};
use crate::experiments::{CsvTable, RunOutput};
use crate::figure::{Figure, FigureKind, Heatmap, Scale, Series};
use crate::rng::{normal_vec, stream};
use crate::theory::exact_linear_1d::measure::empirical_ntk;
use crate::theory::exact_linear_1d::phase::{boundary_curve, evaluate_cell, CellValue};
use crate::theory::exact_linear_1d::{
    integrate_engine, pack, two_layer_model, Axis, ExactLinear1d, Hyper1d, Moments1d, PhasePoint,
};
use crate::train::RunContext;
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

fn name() -> String {
    "exact_phase_diagram".into()
}
fn d_rep() -> usize {
    5
}

/// One axis of a heatmap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AxisRange {
    pub axis: Axis,
    pub min: f64,
    pub max: f64,
    pub points: usize,
}

impl AxisRange {
    fn values(&self) -> Vec<f64> {
        let n = self.points.max(2);
        (0..n)
            .map(|i| {
                let f = i as f64 / (n - 1) as f64;
                if self.axis.is_log() {
                    (self.min.ln() + f * (self.max.ln() - self.min.ln())).exp()
                } else {
                    self.min + f * (self.max - self.min)
                }
            })
            .collect()
    }
    fn validate(&self, key: &str) -> Result<()> {
        if self.points < 2 || self.points > 2000 {
            return Err(Error::config(
                format!("{key}.points"),
                "must be in 2..=2000",
            ));
        }
        if !(self.min.is_finite() && self.max.is_finite() && self.min < self.max)
            || (self.axis.is_log() && self.min <= 0.0)
        {
            return Err(Error::config(
                key.to_string(),
                format!(
                    "need finite min < max (and min > 0 for the log axis {:?})",
                    self.axis
                ),
            ));
        }
        Ok(())
    }
}

/// Which order parameter a heatmap shows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrderParameter {
    /// log₁₀ |ln(K(∞)/K(0))| (default).
    #[default]
    AbsLogNtkRatio,
    /// log₁₀ |ln z₊| (the log stretch of p, q).
    AbsLogZPlus,
    /// Change of cos²∠(u, w) (linear).
    AlignmentChange,
}

/// One heatmap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeatmapSpec {
    pub name: String,
    pub x: AxisRange,
    pub y: AxisRange,
    /// Values replacing the base point's for this heatmap (e.g. `{ width = 1e4 }`).
    #[serde(default)]
    pub fixed: BTreeMap<Axis, f64>,
    #[serde(default)]
    pub order_parameter: OrderParameter,
}

/// Config of `exact_phase_diagram`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    #[serde(default = "name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    /// Random inits per cell (the cell value is their median).
    #[serde(default = "d_rep")]
    pub replicates: usize,
    pub base: PhasePoint,
    pub heatmap: Vec<HeatmapSpec>,
    /// Points trained with the engine (full random vectors, gradient flow to convergence).
    #[serde(default)]
    pub check: Vec<BTreeMap<Axis, f64>>,
}

/// The `exact_phase_diagram` experiment.
pub struct PhaseExperiment;

/// The trained check points (engine DOPRI5 flow at rtol 1e-10, to convergence) agree with
/// the closed form to ≤ 1e-8 relative (docs/exact-linear-1d.md).
pub const CHECK_TOLERANCE: f64 = 1e-8;

fn point_with(base: &PhasePoint, fixed: &BTreeMap<Axis, f64>) -> PhasePoint {
    fixed.iter().fold(*base, |p, (a, v)| p.with(*a, *v))
}

fn cell_value(c: &CellValue, op: OrderParameter) -> f64 {
    match op {
        OrderParameter::AbsLogNtkRatio => c.abs_log_ntk_ratio.max(1e-16).log10(),
        OrderParameter::AbsLogZPlus => c.abs_log_z_plus.max(1e-16).log10(),
        OrderParameter::AlignmentChange => c.alignment_change,
    }
}

/// ln(x) → y on the exponent boundary e = 0 (y axis an exponent): bisection on y.
fn exponent_boundary(
    base: &PhasePoint,
    x_axis: Axis,
    xs: &[f64],
    y_axis: Axis,
    y_range: (f64, f64),
) -> (Vec<f64>, Vec<f64>) {
    let mut bx = Vec::new();
    let mut by = Vec::new();
    for &x in xs {
        let p = base.with(x_axis, x);
        let f = |y: f64| p.with(y_axis, y).exponents.kernel_exponent();
        let (mut lo, mut hi) = y_range;
        let flo = f(lo);
        if flo.signum() == f(hi).signum() {
            continue;
        }
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if f(mid).signum() == flo.signum() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        bx.push(x);
        by.push(0.5 * (lo + hi));
    }
    (bx, by)
}

fn is_exponent(a: Axis) -> bool {
    matches!(
        a,
        Axis::GammaExponent | Axis::SigmaExponent | Axis::LrRatioExponent
    )
}

/// One trained check point: the engine's NTK at the start and at the closed form's
/// convergence time.
pub struct CheckRun {
    point: PhasePoint,
    hyper: Hyper1d,
    moments: Moments1d,
    u0: Vec<f64>,
    w0: Vec<f64>,
    t_end: f64,
    /// ln K(T)/K(0) of the engine's gradient flow.
    log_ntk_ratio: f64,
}

/// One heatmap of the closed form: the grid of order-parameter values and its cost.
pub struct PhaseMap {
    xs: Vec<f64>,
    ys: Vec<f64>,
    z: Vec<Vec<f64>>,
    seconds: f64,
}

/// The closed form's predictions: every heatmap, and each check point's solution.
pub struct PhasePrediction {
    maps: Vec<PhaseMap>,
    checks: Vec<ExactLinear1d>,
}

impl CheckRun {
    /// ln K(T)/K(0) and its T → ∞ limit from the closed form, and K̄/|k|.
    fn theory(&self, sol: &ExactLinear1d) -> (f64, f64, f64) {
        (
            (sol.at(self.t_end).ntk / sol.at(0.0).ntk).ln(),
            sol.order_parameters().ntk_rel_change.ln_1p(),
            sol.kbar() / self.point.k.abs(),
        )
    }
}

/// Train check point `i` with the engine (DOPRI5 at rtol 1e-10) to the closed form's
/// convergence time (residual fallen by 1e-6).
fn simulate_check(cfg: &PhaseConfig, i: usize, fixed: &BTreeMap<Axis, f64>) -> Result<CheckRun> {
    let p = point_with(&cfg.base, fixed);
    let f = p.effective();
    let mut rng = stream(cfg.seed, &format!("check-{i}"));
    let u0 = normal_vec(&mut rng, p.width, f.sigma_u);
    let w0 = normal_vec(&mut rng, p.width, f.sigma_w);
    let hyper = Hyper1d {
        gamma: f.gamma,
        lr_u: f.lr_u,
        lr_w: f.lr_w,
    };
    // data with E[x²] = s, slope k exactly
    let xv = [p.s.sqrt(), -p.s.sqrt()];
    let data = Dataset::new(
        Mat::from_fn(2, 1, |r, _| xv[r]),
        Mat::from_fn(2, 1, |r, _| p.k * xv[r]),
    )?;
    let moments = Moments1d::from_dataset(&data)?;
    let t_end = convergence_time(
        &ExactLinear1d::from_vectors(hyper, moments, &u0, &w0)?,
        1e-6,
    );
    let model = two_layer_model(p.width, f.gamma, f.lr_u, f.lr_w);
    let scale = u0.iter().chain(&w0).fold(0.0f64, |m, v| m.max(v.abs()));
    let ys = integrate_engine(
        &model,
        &data,
        &pack(&u0, &w0),
        &[0.0, t_end],
        1e-10,
        1e-14 * scale,
    )?;
    let one = Mat::from_fn(1, 1, |_, _| 1.0);
    let (k0, k1) = (
        empirical_ntk(&model, &ys[0], one.as_ref())[(0, 0)],
        empirical_ntk(&model, &ys[1], one.as_ref())[(0, 0)],
    );
    Ok(CheckRun {
        point: p,
        hyper,
        moments,
        u0,
        w0,
        t_end,
        log_ntk_ratio: (k1 / k0).ln(),
    })
}

/// Evaluate heatmap `hi` from the closed form (rows in parallel when threads were asked
/// for; each cell has its own seeded stream, so results do not depend on threads).
fn predict_map(
    cfg: &PhaseConfig,
    hi: usize,
    h: &HeatmapSpec,
    ctx: &RunContext<'_>,
) -> Result<PhaseMap> {
    ctx.check_cancel()?;
    let base = point_with(&cfg.base, &h.fixed);
    let (xs, ys) = (h.x.values(), h.y.values());
    let start = Instant::now();
    let grid: Vec<Vec<Result<CellValue>>> = ctx.map_units(&ys, |iy, &y| {
        xs.iter()
            .enumerate()
            .map(|(ix, &x)| {
                let p = base.with(h.x.axis, x).with(h.y.axis, y);
                let mut rng = stream(cfg.seed, &format!("phase-{hi}-{iy}-{ix}"));
                evaluate_cell(&p, cfg.replicates, &mut rng)
            })
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let z = grid
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| Ok(cell_value(&c?, h.order_parameter)))
                .collect::<Result<Vec<f64>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PhaseMap { xs, ys, z, seconds })
}

impl Study for PhaseExperiment {
    type Config = PhaseConfig;
    type Simulation = Vec<CheckRun>;
    type Prediction = PhasePrediction;
    const NAME: &'static str = "exact_phase_diagram";
    const ABOUT: &'static str = "kernel vs feature-learning phase diagram of the exact 1-D model from the closed form, with the analytic boundary and trained check points";

    fn resolve(&self, cfg: &mut PhaseConfig) -> Result<()> {
        if cfg.heatmap.is_empty() {
            return Err(Error::config("heatmap", "give at least one [[heatmap]]"));
        }
        if cfg.replicates == 0 {
            return Err(Error::config("replicates", "must be ≥ 1"));
        }
        let b = &cfg.base;
        for (k, v) in [
            ("gamma", b.gamma),
            ("sigma_u", b.sigma_u),
            ("sigma_w", b.sigma_w),
            ("lr", b.lr),
            ("lr_ratio", b.lr_ratio),
            ("s", b.s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(
                    format!("base.{k}"),
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        if b.width == 0 || !b.k.is_finite() || b.k == 0.0 {
            return Err(Error::config("base", "width must be ≥ 1 and the target slope k finite and non-zero (the boundary is K̄ = |k|)"));
        }
        for (i, h) in cfg.heatmap.iter().enumerate() {
            h.x.validate(&format!("heatmap[{i}].x"))?;
            h.y.validate(&format!("heatmap[{i}].y"))?;
        }
        Ok(())
    }

    fn simulate(&self, cfg: &PhaseConfig, ctx: &RunContext<'_>) -> Result<Vec<CheckRun>> {
        cfg.check
            .iter()
            .enumerate()
            .map(|(i, fixed)| {
                ctx.check_cancel()?;
                simulate_check(cfg, i, fixed)
            })
            .collect()
    }

    fn predict(
        &self,
        cfg: &PhaseConfig,
        runs: &Vec<CheckRun>,
        ctx: &RunContext<'_>,
    ) -> Result<PhasePrediction> {
        let maps = cfg
            .heatmap
            .iter()
            .enumerate()
            .map(|(hi, h)| predict_map(cfg, hi, h, ctx))
            .collect::<Result<Vec<_>>>()?;
        let checks = runs
            .iter()
            .map(|r| ExactLinear1d::from_vectors(r.hyper, r.moments, &r.u0, &r.w0))
            .collect::<Result<Vec<_>>>()?;
        Ok(PhasePrediction { maps, checks })
    }

    fn compare(
        &self,
        cfg: &PhaseConfig,
        runs: &Vec<CheckRun>,
        pred: &PhasePrediction,
    ) -> Vec<AgreementRow> {
        cfg.check
            .iter()
            .zip(runs)
            .zip(&pred.checks)
            .map(|((fixed, r), sol)| {
                let (th, _, kbar_over_k) = r.theory(sol);
                let where_ = fixed
                    .iter()
                    .map(|(k, v)| format!("{} = {v}", k.label()))
                    .collect::<Vec<_>>()
                    .join(", ");
                AgreementRow::relative(
                    format!("ln K(T)/K(0) engine vs closed form ({where_})"),
                    th,
                    r.log_ntk_ratio,
                    CHECK_TOLERANCE,
                )
                .with_note(format!("K̄/|k| = {kbar_over_k:.3}"))
            })
            .collect()
    }

    fn outputs(
        &self,
        cfg: &PhaseConfig,
        runs: Vec<CheckRun>,
        pred: PhasePrediction,
    ) -> Result<StudyOutputs> {
        let mut out = RunOutput {
            seed: cfg.seed,
            ..Default::default()
        };
        heatmap_outputs(cfg, &pred.maps, &mut out);
        check_outputs(cfg, &runs, &pred.checks, &mut out);
        out.notes.push("Order parameter: Δ = K(∞)/K(0) − 1 = √(1 + (k² − β₀²)/K̄²) − 1 exactly; heatmaps show log₁₀|ln(1 + Δ)| (or the chosen parameter). The analytic boundary is K̄_typical = |k| with K̄_typical = |γ| d (σ_u²√(η_w/η_u) + σ_w²√(η_u/η_w))/2.".into());
        out.notes.push("Random inits are drawn through the exact distribution of (|u₀|², |w₀|², u₀·w₀) (χ² and normal draws, O(1) per init), so widths up to 10⁶ cost nothing.".into());
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        Ok(out)
    }
}

/// Figures, tables and summary fields of the heatmaps.
fn heatmap_outputs(cfg: &PhaseConfig, maps: &[PhaseMap], out: &mut RunOutput) {
    let mut total_cells = 0usize;
    let mut total_secs = 0.0;
    let mut per_map = Vec::new();
    for (h, m) in cfg.heatmap.iter().zip(maps) {
        let base = point_with(&cfg.base, &h.fixed);
        let (xs, ys, secs) = (&m.xs, &m.ys, m.seconds);
        let cells = xs.len() * ys.len();
        total_cells += cells;
        total_secs += secs;
        let (mut tx, mut ty, mut tz) = (Vec::new(), Vec::new(), Vec::new());
        for (iy, row) in m.z.iter().enumerate() {
            for (ix, &v) in row.iter().enumerate() {
                tx.push(xs[ix]);
                ty.push(ys[iy]);
                tz.push(v);
            }
        }
        let z = m.z.clone();
        let mut overlays = Vec::new();
        let (bx, by) = boundary_curve(&base, h.x.axis, xs, h.y.axis, (h.y.min, h.y.max));
        if !bx.is_empty() {
            overlays.push(Series::dashed(
                "analytic boundary K̄ = |k| (finite d)",
                bx,
                by,
            ));
        }
        if is_exponent(h.y.axis) && (is_exponent(h.x.axis) || h.x.axis == Axis::Width) {
            let (ex, ey) = exponent_boundary(&base, h.x.axis, xs, h.y.axis, (h.y.min, h.y.max));
            if !ex.is_empty() {
                overlays.push(Series::line("d → ∞ boundary e = 0", ex, ey));
            }
        }
        if h.y.axis == Axis::GammaExponent && h.x.axis == Axis::Width {
            let ends = vec![xs[0], xs[xs.len() - 1]];
            overlays.push(Series::dashed(
                "NTK scaling γ ∝ d^{-1/2}",
                ends.clone(),
                vec![0.5, 0.5],
            ));
            overlays.push(Series::dashed(
                "mean-field scaling γ ∝ d^{-1}",
                ends,
                vec![1.0, 1.0],
            ));
        }
        let z_label = match h.order_parameter {
            OrderParameter::AbsLogNtkRatio => "log₁₀ |ln K(∞)/K(0)|",
            OrderParameter::AbsLogZPlus => "log₁₀ |ln z₊|",
            OrderParameter::AlignmentChange => "Δ cos²∠(u, w)",
        };
        let heat = Heatmap {
            title: format!(
                "Phase diagram: {} vs {}",
                h.y.axis.label(),
                h.x.axis.label()
            ),
            x_label: h.x.axis.label().into(),
            y_label: h.y.axis.label().into(),
            z_label: z_label.into(),
            x: xs.clone(),
            y: ys.clone(),
            z,
            x_scale: if h.x.axis.is_log() {
                Scale::Log
            } else {
                Scale::Linear
            },
            y_scale: if h.y.axis.is_log() {
                Scale::Log
            } else {
                Scale::Linear
            },
            overlays,
        };
        out.figures.push(Figure {
            name: format!("phase_{}", h.name),
            caption: format!(
                "{z_label} from the closed form (median of {} random inits per cell; other parameters fixed at the base point{}); dashed: the analytic boundary K̄ = |k| where Δ = √2 − 1. Low values = kernel regime, ≳ −0.5 = feature learning.",
                cfg.replicates,
                if h.fixed.is_empty() { String::new() } else { format!(" with {:?}", h.fixed) }
            ),
            kind: FigureKind::Heatmap(heat),
        });
        out.tables.push(CsvTable {
            name: format!("phase_{}", h.name),
            columns: vec![
                h.x.axis.label().into(),
                h.y.axis.label().into(),
                z_label.into(),
            ],
            values: vec![tx, ty, tz],
        });
        per_map.push(json!({"name": h.name, "cells": cells, "seconds": secs}));
    }
    let evals = (total_cells * cfg.replicates) as f64;
    out.summary.insert("heatmaps".into(), json!(per_map));
    out.summary
        .insert("closed_form_evaluations".into(), json!(evals));
    out.summary
        .insert("closed_form_seconds".into(), json!(total_secs));
    out.summary.insert(
        "closed_form_evaluations_per_second".into(),
        json!(evals / total_secs.max(1e-12)),
    );
    out.summary.insert(
        "cells_per_second".into(),
        json!(total_cells as f64 / total_secs.max(1e-12)),
    );
}

/// Summary fields and the table of the trained check points.
fn check_outputs(
    cfg: &PhaseConfig,
    runs: &[CheckRun],
    sols: &[ExactLinear1d],
    out: &mut RunOutput,
) {
    let mut checks = Vec::new();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 6];
    for ((fixed, r), sol) in cfg.check.iter().zip(runs).zip(sols) {
        let (th, inf, kbar_over_k) = r.theory(sol);
        let (p, sim) = (&r.point, r.log_ntk_ratio);
        let gamma = r.hyper.gamma;
        checks.push(json!({"point": fixed, "width": p.width, "gamma": gamma, "log_ntk_ratio_engine": sim, "log_ntk_ratio_theory": th, "log_ntk_ratio_theory_inf": inf, "abs_error": (sim - th).abs(), "t_end": r.t_end, "kbar_over_k": kbar_over_k}));
        for (j, v) in [p.width as f64, gamma, sim, th, inf, kbar_over_k]
            .into_iter()
            .enumerate()
        {
            cols[j].push(v);
        }
    }
    if !checks.is_empty() {
        let max_err = checks
            .iter()
            .map(|c| c["abs_error"].as_f64().unwrap_or(f64::NAN))
            .fold(0.0f64, f64::max);
        out.summary.insert("training_checks".into(), json!(checks));
        out.summary.insert(
            "training_checks_max_abs_error_log_ntk_ratio".into(),
            json!(max_err),
        );
        out.tables.push(CsvTable {
            name: "training_checks".into(),
            columns: [
                "width",
                "gamma",
                "log_ntk_ratio_engine",
                "log_ntk_ratio_theory",
                "log_ntk_ratio_theory_inf",
                "kbar_over_k",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            values: cols,
        });
    }
}
