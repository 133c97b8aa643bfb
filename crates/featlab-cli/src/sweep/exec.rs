//! Running sweep points: rayon across points (each run single-threaded), every point
//! written into a temporary directory and renamed into place when complete.

use super::store::{SweepDir, DONE, FAILED};
use anyhow::{Context, Result};
use featlab::sweep::Point;
use featlab::train::{NoProgress, Progress, RunContext};
use serde_json::json;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// What to write for each point.
#[derive(Debug, Clone, Copy)]
pub struct PointOptions {
    /// Also write plots/ and report.html per point.
    pub reports: bool,
    /// PNG next to SVG in per-point plots.
    pub png: bool,
}

/// How one point ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Failed(String),
    Interrupted,
}

/// Remove leftovers of interrupted attempts at these points (`points/.tmp-<id>-*`).
pub fn clean_temporaries(dir: &SweepDir, points: &[&Point]) -> Result<usize> {
    let Ok(rd) = std::fs::read_dir(dir.points_dir()) else {
        return Ok(0);
    };
    let ids: std::collections::HashSet<&str> = points.iter().map(|p| p.id.as_str()).collect();
    let mut n = 0;
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(rest) = name.strip_prefix(".tmp-") {
            if let Some((id, _)) = rest.rsplit_once('-') {
                if ids.contains(id) {
                    std::fs::remove_dir_all(e.path())
                        .with_context(|| format!("cannot remove `{}`", e.path().display()))?;
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

/// Move a complete temporary directory to `points/<id>` (replacing an older attempt).
fn place(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .with_context(|| format!("cannot replace `{}`", dest.display()))?;
    }
    std::fs::rename(tmp, dest)
        .with_context(|| format!("cannot move `{}` to `{}`", tmp.display(), dest.display()))
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

/// Run one point and write it (done or failed) atomically.
pub fn run_point(
    dir: &SweepDir,
    p: &Point,
    base_name: &str,
    opts: PointOptions,
    cancel: &'static AtomicBool,
) -> Result<Outcome> {
    let tmp = dir
        .points_dir()
        .join(format!(".tmp-{}-{}", p.id, std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).ok();
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    let start = Instant::now();
    let ctx = RunContext {
        progress: &NoProgress,
        cancel: Some(cancel),
        par: faer::Par::Seq,
    };
    let run = catch_unwind(AssertUnwindSafe(|| -> featlab::Result<_> {
        let exp = featlab::experiments::select(&p.config)?;
        let resolved = exp.resolve(&p.config)?;
        let out = exp.run(&resolved, &ctx)?;
        Ok((exp.name(), out))
    }));
    let wall = start.elapsed().as_secs_f64();
    let error = match run {
        Ok(Ok((name, out))) => {
            let written = if opts.reports {
                crate::write::write_all(&tmp, &out, base_name, name, wall, opts.png)
            } else {
                featlab::output::write_run(&tmp, &out, base_name, name, wall)
                    .map_err(anyhow::Error::from)
            };
            match written {
                Ok(()) => {
                    featlab::data::io::write_atomic(
                        &tmp.join(DONE),
                        json!({ "wall_seconds": wall }).to_string().as_bytes(),
                    )?;
                    place(&tmp, &dir.point_dir(&p.id))?;
                    return Ok(Outcome::Done);
                }
                Err(e) => format!("writing the point's files failed: {e:#}"),
            }
        }
        Ok(Err(featlab::Error::Interrupted)) => {
            std::fs::remove_dir_all(&tmp).ok();
            return Ok(Outcome::Interrupted);
        }
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!("internal error (panic): {}", panic_text(panic)),
    };
    // A fresh directory holding only the failure record.
    std::fs::remove_dir_all(&tmp).ok();
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    let overrides: serde_json::Map<String, serde_json::Value> = p
        .overrides
        .iter()
        .map(|(k, v)| (k.clone(), super::store::toml_to_json(v)))
        .collect();
    let record = json!({ "error": error, "overrides": overrides, "seed": p.seed, "config": featlab::config::table_to_json(&p.config), "wall_seconds": wall });
    featlab::data::io::write_atomic(
        &tmp.join(FAILED),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    place(&tmp, &dir.point_dir(&p.id))?;
    Ok(Outcome::Failed(error))
}

/// Totals of one `featlab sweep` invocation.
#[derive(Debug, Default)]
pub struct RunTotals {
    pub done: usize,
    pub failed: usize,
    pub interrupted: bool,
}

/// Run `todo` with `jobs` worker threads, updating one progress bar.
pub fn run_points(
    dir: &SweepDir,
    todo: &[&Point],
    base_name: &str,
    jobs: usize,
    opts: PointOptions,
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
    progress.start("sweep", todo.len() as u64);
    let total = todo.len();
    let result: Result<()> = pool.install(|| {
        todo.par_iter()
            .with_max_len(1)
            .try_for_each(|p| -> Result<()> {
                if cancel.load(Ordering::SeqCst) {
                    interrupted.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                match run_point(dir, p, base_name, opts, cancel)? {
                    Outcome::Done => {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Outcome::Failed(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    Outcome::Interrupted => {
                        interrupted.store(true, Ordering::SeqCst);
                        return Ok(());
                    }
                }
                let k = finished.fetch_add(1, Ordering::SeqCst) + 1;
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
    progress.finish();
    result?;
    Ok(RunTotals {
        done: done.into_inner(),
        failed: failed.into_inner(),
        interrupted: interrupted.into_inner(),
    })
}
