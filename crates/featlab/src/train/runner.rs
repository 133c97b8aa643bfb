//! The runner: the only training loop. It owns stopping rules (t_max, target loss, step
//! budget, interruption), the divergence guard, recording at the schedule's times
//! (exactly, via dense output, for gradient flow) and progress reporting.

use super::observer::Observer;
use super::problem::Problem;
use super::stepper::Stepper;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The shortest time between two progress messages of the training loop (the progress
/// position and message are drawn at most this often anyway).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Reached t_max.
    TimeLimit,
    /// The loss fell below the target.
    TargetLoss,
    /// The step budget ran out before t_max.
    MaxSteps,
}

/// Progress sink (the CLI draws a bar; tests and `--quiet` use [`NoProgress`]).
pub trait Progress: Sync {
    /// A new phase with a total amount of work (arbitrary units).
    fn start(&self, label: &str, total: u64);
    /// Work done so far and a short message.
    fn update(&self, done: u64, msg: &str);
    /// Phase finished.
    fn finish(&self);
}

/// Silent progress.
pub struct NoProgress;
impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn update(&self, _: u64, _: &str) {}
    fn finish(&self) {}
}

/// A source of interruption requests, asked before every training step (and between the
/// units of work of the other loops): the CLI's Ctrl-C flag (an [`AtomicBool`] set by the
/// signal handler), or the Python bindings' poller, which on the calling thread takes the
/// GIL now and then to run `PyErr_CheckSignals`.
pub trait Interrupt: Sync {
    /// True when the run should stop with `Error::Interrupted`. Called once per step: keep
    /// it to a few nanoseconds.
    fn requested(&self) -> bool;
}

impl Interrupt for AtomicBool {
    /// The flag's value (set to true by a Ctrl-C handler).
    fn requested(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// Cross-cutting run context: progress sink, interruption flag, threads.
pub struct RunContext<'a> {
    pub progress: &'a dyn Progress,
    /// Asked before every step; when it says so the run stops with `Error::Interrupted`.
    pub cancel: Option<&'a dyn Interrupt>,
    /// Parallelism inside one run (GEMMs); results do not depend on it.
    pub par: faer::Par,
}

impl Default for RunContext<'_> {
    fn default() -> Self {
        RunContext {
            progress: &NoProgress,
            cancel: None,
            par: faer::Par::Seq,
        }
    }
}

impl RunContext<'_> {
    /// Err(Interrupted) when cancellation was requested.
    pub fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(c) if c.requested() => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }

    /// `[f(0, &items[0]), f(1, &items[1]), …]` for independent units of work (sweep cells,
    /// heat-map rows), in order: in parallel on the current rayon pool when threads were
    /// asked for, sequentially for `Par::Seq` (one thread), so a run on the caller's own
    /// thread never reaches for the global pool. Each unit must not depend on the others,
    /// so results do not depend on the thread count.
    pub fn map_units<T: Sync, R: Send>(
        &self,
        items: &[T],
        f: impl Fn(usize, &T) -> R + Sync + Send,
    ) -> Vec<R> {
        use rayon::prelude::*;
        if matches!(self.par, faer::Par::Seq) {
            items.iter().enumerate().map(|(i, t)| f(i, t)).collect()
        } else {
            items.par_iter().enumerate().map(|(i, t)| f(i, t)).collect()
        }
    }
}

/// A table of recorded metrics: one row per recording time, first column `t`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Trajectory {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Trajectory {
    /// The values of column `name`.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[j]).collect())
    }
    /// Append a column (must have one value per row).
    pub fn push_column(&mut self, name: impl Into<String>, values: &[f64]) -> Result<()> {
        if values.len() != self.rows.len() {
            return Err(Error::Shape(format!(
                "column has {} values for {} rows",
                values.len(),
                self.rows.len()
            )));
        }
        self.columns.push(name.into());
        for (r, v) in self.rows.iter_mut().zip(values) {
            r.push(*v);
        }
        Ok(())
    }
}

/// Run options.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Final gradient-flow time.
    pub t_max: f64,
    /// Recording times (sorted, starting at 0), see [`super::Schedule::times`].
    pub record_at: Vec<f64>,
    /// Stop when the recorded loss falls below this.
    pub target_loss: Option<f64>,
    /// Hard budget on steps.
    pub max_steps: u64,
    /// Hint for the divergence message (e.g. "reduce train.lr (now 0.5)").
    pub divergence_hint: String,
}

/// What a run returns.
#[derive(Debug, Clone)]
pub struct TrainResult {
    pub trajectory: Trajectory,
    pub final_params: Vec<f64>,
    pub stop: StopReason,
    pub steps: u64,
    pub t_final: f64,
}

/// Run `stepper` on `problem` from t = 0 to `opts.t_max`, recording `observers` at
/// `opts.record_at`.
pub fn run(
    problem: &mut Problem<'_>,
    stepper: &mut dyn Stepper,
    observers: &mut [Box<dyn Observer>],
    opts: &RunOptions,
    ctx: &RunContext<'_>,
) -> Result<TrainResult> {
    let mut columns = vec!["t".to_string()];
    for o in observers.iter() {
        columns.extend(o.columns());
    }
    let mut traj = Trajectory {
        columns,
        rows: Vec::new(),
    };
    let nparams = stepper.params().len();
    let mut buf = vec![0.0; nparams];
    let mut next = 0usize; // index into record_at
    let record = |t: f64,
                  params: &[f64],
                  problem: &mut Problem<'_>,
                  observers: &mut [Box<dyn Observer>],
                  traj: &mut Trajectory|
     -> Result<f64> {
        let mut row = vec![t];
        for o in observers.iter_mut() {
            row.extend(o.observe(t, params, problem)?);
        }
        let loss = row.get(1).copied().unwrap_or(f64::NAN);
        traj.rows.push(row);
        Ok(loss)
    };
    // t = 0
    check_finite_params(stepper.params(), 0, 0.0, &opts.divergence_hint)?;
    while next < opts.record_at.len() && opts.record_at[next] <= 0.0 {
        let p = stepper.params().to_vec();
        let l = record(0.0, &p, problem, observers, &mut traj)?;
        check_finite_loss(l, 0, 0.0, &opts.divergence_hint)?;
        next += 1;
    }
    ctx.progress.start(stepper.name(), 1000);
    let mut steps = 0u64;
    let mut stop = StopReason::TimeLimit;
    let mut last_pct = u64::MAX;
    let mut last_update = Instant::now();
    let mut t = stepper.t();
    'outer: while t < opts.t_max * (1.0 - 1e-15) {
        ctx.check_cancel()?;
        if steps >= opts.max_steps {
            stop = StopReason::MaxSteps;
            break;
        }
        let t_prev = t;
        t = stepper.step(problem, opts.t_max)?;
        steps += 1;
        let l = stepper.last_loss();
        check_finite_loss(l, steps, t_prev, &opts.divergence_hint)?;
        check_finite_params(stepper.params(), steps, t, &opts.divergence_hint)?;
        // record every scheduled time passed by this step
        while next < opts.record_at.len() && opts.record_at[next] <= t * (1.0 + 1e-12) {
            let tr = opts.record_at[next];
            let (t_row, loss) = if tr < t && stepper.dense(tr, &mut buf) {
                let l = record(tr, &buf.clone(), problem, observers, &mut traj)?;
                (tr, l)
            } else {
                let p = stepper.params().to_vec();
                let l = record(t, &p, problem, observers, &mut traj)?;
                (t, l)
            };
            check_finite_loss(loss, steps, t_row, &opts.divergence_hint)?;
            next += 1;
            if let Some(target) = opts.target_loss {
                if loss <= target {
                    stop = StopReason::TargetLoss;
                    break 'outer;
                }
            }
        }
        let pct = ((t / opts.t_max) * 1000.0) as u64;
        if pct != last_pct {
            last_pct = pct;
            // at most one message per PROGRESS_INTERVAL: formatted at every 0.1% of the
            // run, it cost a String and two float formats per step of a 1000-step run
            let now = Instant::now();
            if now.duration_since(last_update) >= PROGRESS_INTERVAL || pct >= 1000 {
                last_update = now;
                ctx.progress
                    .update(pct.min(1000), &format!("t = {t:.4e}, loss = {l:.4e}"));
            }
        }
    }
    ctx.progress.finish();
    Ok(TrainResult {
        trajectory: traj,
        final_params: stepper.params().to_vec(),
        stop,
        steps,
        t_final: t,
    })
}

fn check_finite_loss(l: f64, step: u64, t: f64, hint: &str) -> Result<()> {
    if l.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged {
            step,
            t,
            what: format!("the loss ({l})"),
            hint: hint.to_string(),
        })
    }
}

fn check_finite_params(p: &[f64], step: u64, t: f64, hint: &str) -> Result<()> {
    if let Some(i) = p.iter().position(|v| !v.is_finite()) {
        Err(Error::Diverged {
            step,
            t,
            what: format!("parameter {i} ({})", p[i]),
            hint: hint.to_string(),
        })
    } else {
        Ok(())
    }
}
