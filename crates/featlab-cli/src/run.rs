//! `featlab run`: load a preset or TOML file, apply overrides, run, write every output.

use anyhow::{Context, Result};
use featlab::config::apply_set;
use featlab::experiments::select;
use featlab::train::{Progress, RunContext};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Arguments of `featlab run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// A preset name (see `featlab list`) or a path to a TOML config file.
    pub config: String,
    /// Output directory (created; existing files are replaced atomically).
    #[arg(long, short, default_value = "runs/latest")]
    pub out: PathBuf,
    /// Override a config key, e.g. `--set model.width=32 --set train.lr=1e-3` (repeatable).
    /// Values are TOML (`3`, `1e-3`, `true`, `[1, 2]`, `"relu"`) or bare strings.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Override the seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads for the run's matrix products (results are bitwise identical for any value).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// No progress bar and no summary on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip PNG rendering (SVG only).
    #[arg(long)]
    pub no_png: bool,
    /// Use the preset's quick settings (its `[quick]` table, merged before any `--set`):
    /// the same study at small sizes, in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Exit with status 3 when a row of the run's agreement table (theory vs experiment)
    /// does not hold. Without it such a row is reported, not a failure (exit 0).
    #[arg(long)]
    pub check: bool,
}

/// What `featlab run` produced: where, and how theory and experiment compared.
#[derive(Debug, Clone)]
pub struct RunDone {
    /// The output directory.
    pub dir: PathBuf,
    /// The run's agreement rows (run.json `summary.agreement`).
    pub agreement: Vec<featlab::compare::AgreementRow>,
}

/// The error `featlab run --check` ends with when agreement rows do not hold (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("{failing} of {total} agreement rows do not hold (theory vs experiment; see the table above and run.json `summary.agreement`)")]
pub struct AgreementFailed {
    pub failing: usize,
    pub total: usize,
}

/// Execute `featlab run`; returns the output directory and the agreement rows. With
/// `--check`, rows that do not hold are an [`AgreementFailed`] error (after every output
/// is written).
pub fn run_command(args: &RunArgs, progress: &dyn Progress) -> Result<RunDone> {
    let (table, preset) = featlab::presets::load(&args.config)?;
    let mut table = featlab::config::prepare(table, args.quick)
        .with_context(|| format!("in config `{}`", args.config))?;
    for s in &args.sets {
        apply_set(&mut table, s).with_context(|| format!("in --set {s}"))?;
    }
    if let Some(seed) = args.seed {
        table.insert("seed".into(), toml::Value::Integer(seed as i64));
    }
    let exp = select(&table)?;
    let resolved = exp
        .resolve(&table)
        .with_context(|| format!("in config `{}`", args.config))?;
    if args.threads == 0 {
        anyhow::bail!("--threads must be ≥ 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the thread pool")?;
    let par = if args.threads > 1 {
        faer::Par::rayon(args.threads)
    } else {
        faer::Par::Seq
    };
    let cancel: &'static AtomicBool = crate::interrupt::flag();
    let ctx = RunContext {
        progress,
        cancel: Some(cancel),
        par,
    };
    let start = Instant::now();
    let out = pool.install(|| exp.run(&resolved, &ctx))?;
    let wall = start.elapsed().as_secs_f64();
    crate::write::write_all(&args.out, &out, &preset, exp.name(), wall, !args.no_png)?;
    if !args.quiet {
        print_summary(&args.out, &out, wall);
    }
    let failing = featlab::compare::agreement::failing(&out.agreement).len();
    if args.check && failing > 0 {
        return Err(AgreementFailed {
            failing,
            total: out.agreement.len(),
        }
        .into());
    }
    Ok(RunDone {
        dir: args.out.clone(),
        agreement: out.agreement,
    })
}

fn print_summary(dir: &Path, out: &featlab::experiments::RunOutput, wall: f64) {
    println!(
        "featlab {}: wrote {} in {wall:.2} s",
        featlab::output::VERSION,
        dir.display()
    );
    for (k, v) in &out.summary {
        let text = v.to_string();
        if text.len() <= 100 {
            println!("  {k:<24} {text}");
        }
    }
    if out.agreement.is_empty() {
        println!("  agreement: this run compares no theory with its experiment");
    } else {
        let failing = featlab::compare::agreement::failing(&out.agreement).len();
        println!(
            "agreement (theory vs experiment): {} of {} rows hold",
            out.agreement.len() - failing,
            out.agreement.len()
        );
        for line in featlab::compare::agreement::render_text(&out.agreement).lines() {
            println!("  {line}");
        }
    }
    println!("  report: {}", dir.join("report.html").display());
}
