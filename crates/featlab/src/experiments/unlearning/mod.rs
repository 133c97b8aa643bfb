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
//! * optionally `[saturation]`: the finite-width stall, population GD and SGD at widths N against
//!   the limit ODE and the finite-N ODE (plateau `N^{−1/4}`);
//! * optionally `[noise]`: SGD minus population GD at batch sizes B (seed replicates) against
//!   the per-neuron and common-mode noise ODEs;
//! * optionally `[exponents]`: window-spread exponents of the reduced flow and the limit ODE over
//!   several fit ranges.
//!
//! One rule for the paper's several studies: every config has the main run; each further
//! study is an optional section with its own file here, and a preset per study
//! (`unlearning-<study>`) sets its section. The simulations train through the one runner
//! ([`sim_run`]).

mod config;
mod convergence;
mod exponents;
mod main_run;
mod noise;
mod saturation;
mod scaling;
pub mod sim_run;
pub mod simulator;
mod sweep;

pub use config::*;
use convergence::convergence;
use exponents::exponents;
use main_run::main_run;
use noise::noise;
use saturation::saturation;
use scaling::scaling;
use sweep::sweep;

use super::{CsvTable, Experiment, RunOutput};
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::experiments::unlearning::sim_run::run_sim;
use crate::experiments::unlearning::simulator::{
    order_params, BatchMode, OrderParams, ParticleFlow, SimConfig,
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
/// `(peak m, time of peak, final m, drop)` of a trajectory.
pub(super) fn peak_final(t: &[f64], m: &[f64]) -> (f64, f64, f64, f64) {
    let (i, pk) = m.iter().enumerate().fold(
        (0, f64::MIN),
        |acc, (i, v)| if *v > acc.1 { (i, *v) } else { acc },
    );
    let last = *m.last().unwrap_or(&f64::NAN);
    (pk, t[i], last, pk - last)
}

pub(super) fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
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
        if let Some(s) = &cfg.saturation {
            saturation(&cfg, s, ctx, &mut out)?;
        }
        if let Some(n) = &cfg.noise {
            noise(&cfg, n, ctx, &mut out)?;
        }
        if let Some(e) = &cfg.exponents {
            exponents(&cfg, e, &mut out)?;
        }
        Ok(out)
    }
}

/// SGD noise strength `λ = ηd/B` of the simulation (0 for the population gradient).
pub(super) fn noise_strength(cfg: &UnlearningConfig) -> f64 {
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
pub(super) fn spread_ode(
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
pub(super) fn spread_ode_at(
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
