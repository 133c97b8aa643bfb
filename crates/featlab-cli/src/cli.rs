//! Command-line interface: argument parsing, dispatch, and turning errors into one clear
//! paragraph on stderr with a documented exit code.
//!
//! Exit codes: 0 success; 1 the run failed (bad config or data, divergence, I/O);
//! 2 usage error (unknown flag, missing argument — clap's convention); 3 `featlab run
//! --check` and an agreement row (theory vs experiment) does not hold; 130 interrupted.

use crate::progress::BarProgress;
use crate::run::{run_command, RunArgs};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// featlab — the science of feature learning, runnable.
///
/// Each paper's theory computed, its experiment run, the two compared: Alternating Gradient
/// Flows, the exact finite-width linear solution, the Neural Feature Ansatz (alignment and
/// deep linear theorems), feature unlearning at infinite width.
#[derive(Parser, Debug)]
#[command(name = "featlab", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a preset or a TOML config and write run.json, trajectory.csv, data/, params/, plots/ and report.html.
    Run(RunArgs),
    /// List the built-in presets, one per line: name, experiment, description.
    List,
    /// Print a preset's TOML (to copy into your own config).
    Show {
        /// Preset name (see `featlab list`).
        preset: String,
    },
    /// Throughput benchmarks (JSON lines on stdout).
    Bench(crate::bench::BenchArgs),
    /// Run a sweep file: every point a full run under DIR/points/<id>/, results.csv, sweep.json,
    /// report.html; resumable; `--shard i/n` (or Slurm job arrays); `sweep merge DIR`; `sweep slurm`.
    Sweep(crate::sweep::SweepArgs),
    /// NFA metrics of your own trained MLP: `--weights model.safetensors|.npz --x X.npy
    /// --activation relu [--init init.safetensors]`; per-layer NFM/AGOP correlation, best-fit α,
    /// UC-NFC, C-NFC as a table and a run directory.
    Nfa(crate::nfa_cmd::NfaArgs),
    /// Regenerate plots and report.html of a run or sweep directory from the files on disk.
    Report(crate::report_cmd::ReportArgs),
    /// Run every preset (or the given ones, or read run directories with --from) and write a
    /// static site: index.html with one card per preset grouped by paper, a page per paper.
    Gallery(crate::gallery::GalleryArgs),
}

/// Parse arguments, run, and map errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let interrupted = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<featlab::Error>(),
                    Some(featlab::Error::Interrupted)
                )
            });
            eprintln!("error: {}", featlab_output::error_message(&e));
            if e.downcast_ref::<crate::run::AgreementFailed>().is_some() {
                ExitCode::from(3)
            } else if interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            let progress = BarProgress::new(args.quiet);
            run_command(&args, &progress).map(|_| ())
        }
        Command::List => {
            for name in featlab::presets::names() {
                let text = featlab::presets::get(name).unwrap_or_default();
                let exp = featlab::config::parse_toml(text, name)
                    .ok()
                    .and_then(|t| {
                        t.get("experiment")
                            .and_then(|e| e.as_str())
                            .map(|s| s.to_string())
                    })
                    .unwrap_or_else(|| "train".into());
                println!("{name:<28} {exp:<14} {}", featlab::presets::describe(name));
            }
            Ok(())
        }
        Command::Show { preset } => {
            let text = featlab::presets::get(&preset).ok_or_else(|| {
                anyhow::anyhow!("no preset named `{preset}`; `featlab list` shows them")
            })?;
            print!("{text}");
            Ok(())
        }
        Command::Bench(args) => crate::bench::bench_command(&args),
        Command::Sweep(args) => crate::sweep::sweep_dispatch(&args),
        Command::Report(args) => crate::report_cmd::report_command(&args).map(|_| ()),
        Command::Gallery(args) => crate::gallery::gallery_command(&args).map(|_| ()),
        Command::Nfa(args) => crate::nfa_cmd::nfa_command(&args).map(|_| ()),
    }
}
