//! `featlab sweep`: run every point of a sweep file (locally with `--jobs`, or one shard of
//! a cluster job array), resume after a crash, merge shards, write a Slurm script.
//!
//! See `docs/sweeps.md` for the file format and workflows, [`featlab::sweep`] for ids and
//! seeds, and [`store`] for the directory layout.

pub mod exec;
pub mod journal;
pub mod merge;
pub mod parquet_out;
pub mod report;
pub mod slurm;
pub mod store;

use anyhow::{Context, Result};
use clap::Subcommand;
use featlab::sweep::{Shard, SweepSpec};
use std::path::PathBuf;
use std::time::Instant;
use store::SweepDir;

/// The storage part of `featlab sweep --help`.
pub const SWEEP_AFTER_HELP: &str = "\
Storage: each shard appends one record per point (summary, trajectory, error) to
DIR/shards/shard-<i>-of-<n>.jsonl and the artifacts it keeps to shard-<i>-of-<n>.bin; no
directory per point. A killed sweep resumes from these files (a torn last record is cut off
and that point recomputed). `featlab sweep merge DIR` writes results.csv and results.parquet.

What each point keeps is the sweep file's [save] table: the summary always; trajectory,
params, data, plots each true, false, or a filter ({ every = 100 } = every 100th point;
{ \"model.width\" = [8, 16] } = points with these values). Default: sweeps of at most 1000
points keep trajectory, params and data (no plots); larger sweeps keep the summary and the
trajectory only. --point-reports keeps every point's figures. See docs/sweeps.md.";

/// Arguments of `featlab sweep`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = SWEEP_AFTER_HELP
)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    #[command(flatten)]
    pub run: SweepRunArgs,
}

/// `featlab sweep merge|slurm`.
#[derive(Subcommand, Debug, Clone)]
pub enum SweepAction {
    /// Build results.csv, sweep.json and the report from the points present in DIR (after
    /// shards finished); lists missing and failed points and exits 1 if there are any.
    Merge(MergeArgs),
    /// Write DIR/slurm/sweep.sbatch: a job array running one shard per task.
    Slurm(slurm::SlurmArgs),
}

/// Arguments of `featlab sweep merge`.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// The sweep output directory.
    pub dir: PathBuf,
    /// Skip PNG rendering of the report figures (SVG only).
    #[arg(long)]
    pub no_png: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `featlab sweep <file.toml>`.
#[derive(clap::Args, Debug, Clone)]
pub struct SweepRunArgs {
    /// The sweep file (TOML: base, [set], [grid], [zip], [random], seed; see docs/sweeps.md).
    #[arg(required = true)]
    pub spec: Option<PathBuf>,
    /// Output directory: sweep.json, shards/, results.csv, results.parquet, report.html.
    /// Default: sweeps/<file stem>.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Points run in parallel (each run is single-threaded). Default: the CPUs available.
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Run only shard i of n (points with index k mod n = i). Default: from
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set, else the whole sweep.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// No progress bar and no summary on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep the figures (SVG) of every point in the shard's artifact file, whatever
    /// `[save] plots` says (heavy for large sweeps).
    #[arg(long)]
    pub point_reports: bool,
    /// Skip PNG rendering (SVG only).
    #[arg(long)]
    pub no_png: bool,
    /// Run failed points again (by default a resumed sweep keeps their failure record).
    #[arg(long)]
    pub retry_failed: bool,
    /// Do not write results.csv, results.parquet and the report at the end (run
    /// `featlab sweep merge DIR` later).
    #[arg(long)]
    pub no_merge: bool,
}

/// Dispatch `featlab sweep …`.
pub fn sweep_dispatch(args: &SweepArgs) -> Result<()> {
    match &args.action {
        Some(SweepAction::Merge(m)) => merge_command(m),
        Some(SweepAction::Slurm(s)) => slurm::slurm_command(s).map(|_| ()),
        None => sweep_command(&args.run),
    }
}

/// The output directory of a sweep run without `--out`: `sweeps/<file stem>` (the same for
/// `featlab sweep` and `featlab sweep slurm`, so the script and a local run meet).
pub fn default_out(spec_path: &std::path::Path) -> PathBuf {
    PathBuf::from("sweeps").join(
        spec_path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "sweep".into()),
    )
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Execute `featlab sweep <file.toml>`.
pub fn sweep_command(args: &SweepRunArgs) -> Result<()> {
    let spec_path = args.spec.clone().context("missing the sweep file")?;
    let spec = SweepSpec::from_file(&spec_path)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&spec_path));
    let (shard, from_env) = match &args.shard {
        Some(s) => (Shard::parse(s)?, false),
        None => match Shard::from_slurm(|k| std::env::var(k).ok())? {
            Some(s) => (s, true),
            None => (Shard::ALL, false),
        },
    };
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        anyhow::bail!("--jobs must be ≥ 1");
    }
    let dir = SweepDir::new(&out);
    std::fs::create_dir_all(dir.shards_dir())
        .with_context(|| format!("cannot create `{}`", dir.shards_dir().display()))?;
    let index = dir.index()?;
    // A first pass over the expansion: sweep.json's list of points (without configs) and
    // how many of this shard's points are still to run; the second pass, while points
    // run, streams those points (each point's config is built when it runs).
    let to_run = |p: &featlab::sweep::Point| {
        shard.owns(p.index)
            && match index.status(&p.id) {
                store::Status::Done { .. } => false,
                store::Status::Failed { .. } => args.retry_failed,
                store::Status::Missing => true,
            }
    };
    let mut records = Vec::new();
    let (mut mine, mut todo) = (0usize, 0usize);
    for p in spec.expansion() {
        let p = p?;
        mine += usize::from(shard.owns(p.index));
        todo += usize::from(to_run(&p));
        records.push(store::PointRecord::of(&p));
    }
    let total_points = records.len();
    let mut rec = dir.record_from_spec(&spec, &spec_path.display().to_string(), records, &index);
    if shard == Shard::ALL {
        dir.write_record(&rec)?;
    } else {
        // Tasks of an array write the plan once, never point states (see write_plan_once).
        dir.write_plan_once(&mut rec)?;
        dir.refresh(&mut rec, &index);
    }
    let orphans = dir.orphans(&rec, &index);
    let shard_file = dir.shard_path(shard);
    let (journal, repair) = journal::Journal::open(&shard_file)?;
    if !args.quiet {
        let which = if shard == Shard::ALL {
            String::new()
        } else {
            format!(
                ", shard {shard}{}",
                if from_env {
                    " (from SLURM_ARRAY_TASK_ID)"
                } else {
                    ""
                }
            )
        };
        println!(
            "featlab sweep {}: {} points{which}: {} to run, {} already finished or failed; {} at a time",
            spec_path.display(),
            total_points,
            todo,
            mine - todo,
            jobs.min(todo.max(1))
        );
        if repair.torn_bytes > 0 {
            println!(
                "  note: cut off a torn last record ({} bytes) of {} (an interrupted write); that point is run again",
                repair.torn_bytes,
                shard_file.display()
            );
        }
        if !orphans.is_empty() {
            println!("  note: {} recorded points are not points of this sweep (an earlier spec?); they are ignored", orphans.len());
        }
    }
    let start = Instant::now();
    let progress = crate::progress::BarProgress::new(args.quiet);
    let opts = exec::PointOptions {
        save: spec.save.clone(),
        all_plots: args.point_reports,
    };
    let journal = std::sync::Mutex::new(journal);
    // (Points that fail to expand were reported by the first pass.)
    let stream = spec.expansion().filter_map(|p| p.ok()).filter(to_run);
    let totals = exec::run_points(
        &journal,
        &spec,
        stream,
        todo,
        jobs.min(todo.max(1)),
        &opts,
        &progress,
    )?;
    drop(journal);
    drop(index);
    let index = dir.index()?;
    dir.refresh(&mut rec, &index);
    if shard == Shard::ALL {
        dir.write_record(&rec)?;
    }
    let wall = start.elapsed().as_secs_f64();
    let mine_failed: Vec<&store::PointRecord> = rec
        .points
        .iter()
        .filter(|p| shard.owns(p.index) && p.status == "failed")
        .collect();

    if shard == Shard::ALL && !totals.interrupted && !args.no_merge {
        let tables = merge::write_tables(&dir, &rec, &index)?;
        let report = report::write_sweep_report(
            &dir,
            &rec,
            &report::ReportOptions {
                png: !args.no_png,
                ..Default::default()
            },
        );
        if !args.quiet {
            println!(
                "  ran {} points in {wall:.1} s ({} failed); {} done in total",
                totals.done + totals.failed,
                totals.failed,
                rec.counts.done
            );
            println!(
                "  results: {} and {}",
                tables.csv.display(),
                tables.parquet.display()
            );
            match &report {
                Ok(p) => println!("  report:  {}", p.display()),
                Err(e) => println!("  report:  not written ({e:#})"),
            }
        }
    } else if !args.quiet && !totals.interrupted {
        println!(
            "  shard {shard}: ran {} points in {wall:.1} s ({} failed)",
            totals.done + totals.failed,
            totals.failed
        );
        println!(
            "  when every shard has finished: featlab sweep merge {}",
            out.display()
        );
    }
    if totals.interrupted {
        return Err(featlab::Error::Interrupted).context(format!(
            "sweep interrupted; run the same command again to resume ({} points finished)",
            rec.counts.done
        ));
    }
    if !mine_failed.is_empty() {
        let first = mine_failed[0];
        anyhow::bail!(
            "{} of {} points failed (recorded in {} and results.csv as status=failed); first: {}: {}",
            mine_failed.len(),
            mine,
            out.join("sweep.json").display(),
            first.id,
            first.error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// Execute `featlab sweep merge DIR`.
pub fn merge_command(args: &MergeArgs) -> Result<()> {
    let dir = SweepDir::new(&args.dir);
    let mut rec = dir.read_record()?;
    let index = dir.index()?;
    dir.refresh(&mut rec, &index);
    dir.write_record(&rec)?;
    let tables = merge::write_tables(&dir, &rec, &index)?;
    drop(index);
    let report = report::write_sweep_report(
        &dir,
        &rec,
        &report::ReportOptions {
            png: !args.no_png,
            ..Default::default()
        },
    );
    let c = &rec.counts;
    if !args.quiet {
        println!(
            "featlab sweep merge: {} points: {} done, {} failed, {} missing",
            c.total, c.done, c.failed, c.missing
        );
        println!(
            "  results: {} and {}",
            tables.csv.display(),
            tables.parquet.display()
        );
        match &report {
            Ok(p) => println!("  report:  {}", p.display()),
            Err(e) => println!("  report:  not written ({e:#})"),
        }
    }
    let missing: Vec<&str> = rec
        .points
        .iter()
        .filter(|p| p.status == "missing")
        .map(|p| p.id.as_str())
        .collect();
    if !missing.is_empty() {
        eprintln!("missing points ({}), e.g.:", missing.len());
        for id in missing.iter().take(10) {
            eprintln!("  {id}");
        }
        eprintln!("run the sweep (or resubmit the array) again to finish them; finished points are skipped");
    }
    if c.missing > 0 || c.failed > 0 {
        anyhow::bail!("the sweep is incomplete: {} failed, {} missing of {} (results.csv lists them by status)", c.failed, c.missing, c.total);
    }
    Ok(())
}
