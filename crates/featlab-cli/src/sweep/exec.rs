//! Running sweep points: rayon across points (each run single-threaded); every finished or
//! failed point becomes one record appended to the shard's results file
//! ([`super::journal`]), with the artifacts its `[save]` entry keeps.

use super::journal::{Journal, ShardRecord};
use anyhow::{Context, Result};
use featlab::experiments::RunOutput;
use featlab::sweep::save::{Kept, SaveSpec};
use featlab::sweep::{Point, SweepSpec};
use featlab::train::{NoProgress, Progress, RunContext};
use serde_json::{json, Map, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What to keep of each point.
#[derive(Debug, Clone)]
pub struct PointOptions {
    /// The sweep file's `[save]`.
    pub save: SaveSpec,
    /// `--point-reports`: keep every point's figures whatever `[save] plots` says.
    pub all_plots: bool,
}

/// How one point ended.
#[derive(Debug)]
pub enum Outcome {
    Done(Box<ShardRecord>, Vec<(String, Vec<u8>)>),
    Failed(Box<ShardRecord>),
    Interrupted,
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Named columns as `{"columns": [...], "values": [[column 0], …]}` (non-finite → null).
fn columns_json(columns: &[String], values: Vec<Vec<f64>>) -> Value {
    json!({ "columns": columns, "values": values })
}

/// The record and artifacts of a finished point.
fn done_record(p: &Point, out: &RunOutput, kept: Kept, wall: f64) -> Result<Outcome> {
    let summary = match featlab::output::sanitize(&Value::Object(
        featlab::output::summary_with_agreement(out),
    )) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let (trajectory, tables) = if kept.trajectory {
        let t = &out.trajectory;
        let cols = (0..t.columns.len())
            .map(|j| t.rows.iter().map(|r| r[j]).collect())
            .collect();
        let tables: Map<String, Value> = out
            .tables
            .iter()
            .map(|t| (t.name.clone(), columns_json(&t.columns, t.values.clone())))
            .collect();
        (
            Some(columns_json(&t.columns, cols)),
            (!tables.is_empty()).then_some(Value::Object(tables)),
        )
    } else {
        (None, None)
    };
    let mut artifacts = Vec::new();
    for (rel, arr) in &out.arrays {
        let keep = if rel.starts_with("data/") {
            kept.data
        } else {
            kept.params
        };
        if keep {
            artifacts.push((rel.clone(), featlab::data::io::npy_bytes(arr)));
        }
    }
    if kept.plots && !out.figures.is_empty() {
        for f in &out.figures {
            let svg = crate::plot::render_svg(f)
                .with_context(|| format!("rendering figure `{}` of point {}", f.name, p.id))?;
            artifacts.push((format!("plots/{}.svg", f.name), svg.into_bytes()));
        }
        let specs = serde_json::to_vec(&out.figures).context("serialising the figure specs")?;
        artifacts.push((format!("plots/{}", crate::write::FIGURES_JSON), specs));
    }
    let config = (kept.params || kept.data).then(|| featlab::config::table_to_json(&out.config));
    Ok(Outcome::Done(
        Box::new(ShardRecord {
            id: p.id.clone(),
            index: p.index,
            status: "done".into(),
            seed: out.seed,
            wall_seconds: wall,
            error: None,
            summary: Some(summary),
            trajectory,
            tables,
            artifacts: Vec::new(),
            config,
        }),
        artifacts,
    ))
}

/// Run one point of `spec` (its config is built here, so only running points hold one);
/// its record (done or failed) is for the caller to append.
pub fn run_point(
    spec: &SweepSpec,
    p: &Point,
    opts: &PointOptions,
    cancel: &'static AtomicBool,
) -> Result<Outcome> {
    let mut kept = opts.save.kept(p);
    kept.plots |= opts.all_plots;
    let start = Instant::now();
    let ctx = RunContext {
        progress: &NoProgress,
        cancel: Some(cancel),
        par: faer::Par::Seq,
    };
    let config = match spec.config(p) {
        Ok(c) => c,
        Err(e) => return Ok(failed_record(p, e.to_string(), None, 0.0)),
    };
    let run = catch_unwind(AssertUnwindSafe(|| -> featlab::Result<_> {
        featlab::experiments::select(&config)?.resolve_and_run(&config, &ctx)
    }));
    let wall = start.elapsed().as_secs_f64();
    let error = match run {
        Ok(Ok(out)) => return done_record(p, &out, kept, wall),
        Ok(Err(featlab::Error::Interrupted)) => return Ok(Outcome::Interrupted),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!("internal error (panic): {}", panic_text(panic)),
    };
    Ok(failed_record(p, error, Some(&config), wall))
}

/// The record of a point that failed with `error`.
fn failed_record(p: &Point, error: String, config: Option<&toml::Table>, wall: f64) -> Outcome {
    Outcome::Failed(Box::new(ShardRecord {
        id: p.id.clone(),
        index: p.index,
        status: "failed".into(),
        seed: p.seed,
        wall_seconds: wall,
        error: Some(error),
        summary: None,
        trajectory: None,
        tables: None,
        artifacts: Vec::new(),
        config: config.map(featlab::config::table_to_json),
    }))
}

/// Totals of one `featlab sweep` invocation.
#[derive(Debug, Default)]
pub struct RunTotals {
    pub done: usize,
    pub failed: usize,
    pub interrupted: bool,
}

/// Run `todo` (points of `spec`) with `jobs` worker threads, updating one progress bar
/// with the points whose records are durable (synced to disk, see [`Journal::append`]).
///
/// `todo` yields the `total` points to run (streamed: a sweep of 10⁶ points is not held
/// in memory).
pub fn run_points(
    journal: &Mutex<Journal>,
    spec: &SweepSpec,
    todo: impl Iterator<Item = Point> + Send,
    total: usize,
    jobs: usize,
    opts: &PointOptions,
    progress: &dyn Progress,
) -> Result<RunTotals> {
    use rayon::prelude::*;
    let cancel: &'static AtomicBool = crate::interrupt::flag();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("cannot start the thread pool")?;
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let interrupted = AtomicBool::new(false);
    progress.start("sweep", total as u64);
    let result: Result<()> = pool.install(|| {
        todo.par_bridge().try_for_each(|p| -> Result<()> {
            if cancel.load(Ordering::SeqCst) {
                interrupted.store(true, Ordering::SeqCst);
                return Ok(());
            }
            let durable = match run_point(spec, &p, opts, cancel)? {
                Outcome::Done(rec, artifacts) => {
                    let n = lock(journal).append(*rec, &artifacts)?;
                    done.fetch_add(1, Ordering::SeqCst);
                    n
                }
                Outcome::Failed(rec) => {
                    let n = lock(journal).append(*rec, &[])?;
                    failed.fetch_add(1, Ordering::SeqCst);
                    n
                }
                Outcome::Interrupted => {
                    interrupted.store(true, Ordering::SeqCst);
                    return Ok(());
                }
            };
            if durable == 0 {
                return Ok(()); // not on disk yet: not reported as finished
            }
            let k = finished.fetch_add(durable, Ordering::SeqCst) + durable;
            let f = failed.load(Ordering::SeqCst);
            let msg = if f > 0 {
                format!("{k}/{total} points, {f} failed")
            } else {
                format!("{k}/{total} points")
            };
            progress.update(k as u64, &msg);
            Ok(())
        })
    });
    // The last points become durable here; only then are they reported.
    let synced = lock(journal).sync_pending();
    if let Ok(n) = synced {
        let k = finished.fetch_add(n, Ordering::SeqCst) + n;
        progress.update(k as u64, &format!("{k}/{total} points"));
    }
    progress.finish();
    result?;
    synced?;
    Ok(RunTotals {
        done: done.into_inner(),
        failed: failed.into_inner(),
        interrupted: interrupted.into_inner(),
    })
}

fn lock(j: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    // A panic while holding the lock cannot leave a half-written record behind (appends
    // are whole lines or fail), so a poisoned lock is still usable.
    j.lock().unwrap_or_else(|e| e.into_inner())
}
