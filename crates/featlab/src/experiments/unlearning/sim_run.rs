//! The finite-width simulator trained through the one runner ([`crate::train::run`]): a
//! [`Stepper`] that takes the [`Simulator`]'s SGD / population-GD steps and an [`Observer`]
//! that records its order parameters, so cancellation, the divergence guard (loss and
//! parameters finite after every step) and progress are the runner's.
//!
//! The simulator draws its own Gaussian samples (or owns its fixed dataset), so the
//! runner's [`Problem`] is a one-sample placeholder that neither the stepper nor the
//! observer reads ([`placeholder`]).

use super::simulator::{order_params, OrderParams, SimConfig, Simulator};
use crate::data::Dataset;
use crate::model::diagonal::{Diagonal, DiagonalForm};
use crate::model::Loss;
use crate::theory::unlearning::GaussHermite;
use crate::train::{self, Observer, Problem, Progress, RunContext, RunOptions, Stepper};
use crate::Result;
use faer::{Mat, Par};

/// The runner's view of a [`Simulator`]: parameters `θ = [w (N·d, row-major), a (N)]`
/// (raw `a_j`), clock `t = η·steps`, one [`Simulator::step`] per runner step.
pub struct SimulatorStepper {
    pub sim: Simulator,
    params: Vec<f64>,
    last: f64,
    par: Par,
}

impl SimulatorStepper {
    /// Wrap `sim`; GEMMs inside a step use `par` (results do not depend on it).
    pub fn new(sim: Simulator, par: Par) -> Self {
        let mut params = sim.w.clone();
        params.extend_from_slice(&sim.a);
        SimulatorStepper {
            sim,
            params,
            last: f64::NAN,
            par,
        }
    }
}

impl Stepper for SimulatorStepper {
    fn name(&self) -> &'static str {
        "unlearning simulator"
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn t(&self) -> f64 {
        self.sim.time()
    }
    fn last_loss(&self) -> f64 {
        self.last
    }
    fn step(&mut self, _problem: &mut Problem<'_>, _t_max: f64) -> Result<f64> {
        self.last = self.sim.step(self.par);
        let nd = self.sim.w.len();
        self.params[..nd].copy_from_slice(&self.sim.w);
        self.params[nd..].copy_from_slice(&self.sim.a);
        Ok(self.sim.time())
    }
}

/// Order parameters of `θ = [w, a]` ([`order_params`]); columns `loss` (the exact population
/// loss, first as the runner expects), `m, m_std, a, a_std, w_norm, common_sq, pair_q2`.
pub struct OrderParamsObserver {
    cfg: SimConfig,
    quad: GaussHermite,
}

impl OrderParamsObserver {
    /// Observer of networks of config `cfg` (same Gauss–Hermite rule as [`Simulator`]).
    pub fn new(cfg: SimConfig) -> Result<Self> {
        let quad = GaussHermite::new(2 * cfg.student.len().max(cfg.teacher.len()) + 8)?;
        Ok(OrderParamsObserver { cfg, quad })
    }
}

const COLUMNS: [&str; 8] = [
    "loss",
    "m",
    "m_std",
    "a",
    "a_std",
    "w_norm",
    "common_sq",
    "pair_q2",
];

impl Observer for OrderParamsObserver {
    fn columns(&self) -> Vec<String> {
        COLUMNS.iter().map(|c| c.to_string()).collect()
    }
    fn observe(&mut self, _t: f64, params: &[f64], _: &mut Problem<'_>) -> Result<Vec<f64>> {
        let nd = self.cfg.width * self.cfg.dim;
        let o = order_params(&self.cfg, &params[..nd], &params[nd..], &self.quad);
        Ok(vec![
            o.loss,
            o.m,
            o.m_std,
            o.a,
            o.a_std,
            o.w_norm,
            o.common_sq,
            o.pair_q2,
        ])
    }
}

/// The placeholder problem of a simulator run: a one-input diagonal net on one sample
/// (never evaluated: the simulator's stepper and observer ignore it).
pub fn placeholder() -> Result<(Diagonal, Dataset)> {
    Ok((
        Diagonal::new(1, DiagonalForm::Uv, 1.0),
        Dataset::new(Mat::zeros(1, 1), Mat::zeros(1, 1))?,
    ))
}

/// Recorded simulator trajectory.
pub struct SimRun {
    pub t: Vec<f64>,
    pub ops: Vec<OrderParams>,
}

/// A progress sink that shows `label` for the runner's phase (the runner names a phase after
/// its stepper; a study runs many simulations and names each).
struct Labelled<'a> {
    inner: &'a dyn Progress,
    label: &'a str,
}

impl Progress for Labelled<'_> {
    fn start(&self, _: &str, total: u64) {
        self.inner.start(self.label, total);
    }
    fn update(&self, done: u64, msg: &str) {
        self.inner.update(done, msg);
    }
    fn finish(&self) {
        self.inner.finish();
    }
}

/// Train `sim` through the runner for `total = round(t_max/η)` steps, recording at the
/// `points` steps `⌊i·total/(points − 1)⌋`, i = 0..points−1 (times `η × step`); progress is
/// shown under `label`.
pub fn run_simulator(
    sim: Simulator,
    t_max: f64,
    points: usize,
    ctx: &RunContext<'_>,
    label: &str,
) -> Result<SimRun> {
    let lr = sim.cfg.lr;
    let total = (t_max / lr).round().max(1.0) as u64;
    let record_at: Vec<f64> = (0..points)
        .map(|i| ((i as u64 * total) / (points as u64 - 1)) as f64 * lr)
        .collect();
    let opts = RunOptions {
        t_max: total as f64 * lr,
        record_at,
        target_loss: None,
        max_steps: total,
        divergence_hint:
            "lower simulation.lr (the fast rate grows like a², so large a needs a small step)"
                .into(),
    };
    let cfg = sim.cfg.clone();
    let mut stepper = SimulatorStepper::new(sim, ctx.par);
    let mut observers: Vec<Box<dyn Observer>> = vec![Box::new(OrderParamsObserver::new(cfg)?)];
    let (model, data) = placeholder()?;
    let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, Par::Seq);
    let labelled = Labelled {
        inner: ctx.progress,
        label,
    };
    let ctx = RunContext {
        progress: &labelled,
        cancel: ctx.cancel,
        par: ctx.par,
    };
    let res = train::run(&mut problem, &mut stepper, &mut observers, &opts, &ctx)?;
    let tr = res.trajectory;
    let ops = tr
        .rows
        .iter()
        .map(|r| OrderParams {
            loss: r[1],
            m: r[2],
            m_std: r[3],
            a: r[4],
            a_std: r[5],
            w_norm: r[6],
            common_sq: r[7],
            pair_q2: r[8],
        })
        .collect();
    Ok(SimRun {
        t: tr.rows.iter().map(|r| r[0]).collect(),
        ops,
    })
}

/// [`run_simulator`] on a fresh [`Simulator`] of `cfg` and `seed`.
pub fn run_sim(
    cfg: SimConfig,
    seed: u64,
    t_max: f64,
    points: usize,
    ctx: &RunContext<'_>,
    label: &str,
) -> Result<SimRun> {
    run_simulator(Simulator::new(cfg, seed)?, t_max, points, ctx, label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::unlearning::simulator::BatchMode;
    use crate::theory::unlearning::HermiteSeries;
    use std::sync::atomic::AtomicBool;

    fn config(batch: BatchMode, lr: f64) -> SimConfig {
        SimConfig {
            width: 8,
            dim: 8,
            student: HermiteSeries::new(vec![0.0, 1.0, 0.5], "student").unwrap(),
            teacher: HermiteSeries::new(vec![0.0, 1.0, 0.0], "teacher").unwrap(),
            m0: 0.1,
            a0: 0.1,
            lr,
            eps: 1.0,
            gamma: 1.0,
            batch,
            spherical: true,
            orthogonal_init: false,
        }
    }

    /// Through the runner the recorded order parameters are bitwise those of stepping the
    /// simulator by hand to the same steps (SGD and population GD), at times η × step.
    #[test]
    fn runner_records_the_hand_stepped_simulator_bitwise() {
        for batch in [BatchMode::Online { batch: 16 }, BatchMode::Population] {
            let cfg = config(batch, 0.05);
            let run = run_sim(cfg.clone(), 3, 1.0, 4, &RunContext::default(), "test").unwrap();
            let mut sim = Simulator::new(cfg, 3).unwrap();
            let marks = [0u64, 6, 13, 20];
            assert_eq!(run.t.len(), marks.len());
            for (i, &k) in marks.iter().enumerate() {
                while sim.steps < k {
                    sim.step(Par::Seq);
                }
                assert_eq!(run.t[i].to_bits(), sim.time().to_bits());
                assert_eq!(run.ops[i], sim.order_params(), "{batch:?} record {i}");
            }
        }
    }

    /// The population-GD step's loss is the exact population loss at the start of the step.
    #[test]
    fn population_step_returns_the_population_loss() {
        let mut sim = Simulator::new(config(BatchMode::Population, 0.05), 1).unwrap();
        let before = sim.order_params().loss;
        let l = sim.step(Par::Seq);
        assert!(
            (l - before).abs() <= 1e-12 * before.abs().max(1.0),
            "{l} vs {before}"
        );
    }

    /// A raised interrupt flag stops the run through the runner's check, before the first step.
    #[test]
    fn interruption_is_the_runner_s() {
        let flag = AtomicBool::new(true);
        let ctx = RunContext {
            cancel: Some(&flag),
            ..Default::default()
        };
        let res = run_sim(config(BatchMode::Population, 0.05), 1, 1.0, 3, &ctx, "test");
        assert!(
            matches!(res, Err(crate::Error::Interrupted)),
            "not interrupted"
        );
    }
}
