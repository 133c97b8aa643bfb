//! `featlab report DIR`: regenerate plots and report.html from the files of a run or a sweep.
//!
//! * A run directory (has run.json): figures from `plots/figures.json` (written by every
//!   `featlab run`); without it (e.g. a sweep point run without `--point-reports`), generic
//!   plots of trajectory.csv: the `loss*` columns against `t`, and every other column.
//!   Extra tables: every `*.csv` beside run.json except trajectory.csv.
//! * A sweep directory (has sweep.json): see [`crate::sweep::report`].

use anyhow::{Context, Result};
use featlab::figure::{Figure, LinePlot, Scale, Series};
use std::path::{Path, PathBuf};

/// Arguments of `featlab report`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// A run directory (with run.json) or a sweep directory (with sweep.json).
    pub dir: PathBuf,
    /// Sweeps: summary field(s) to plot (repeatable; default: the sweep file's [report] z,
    /// else the first numeric column of results.csv).
    #[arg(long)]
    pub z: Vec<String>,
    /// Sweeps: varied key on the horizontal axis (default: first varied key other than seed).
    #[arg(long)]
    pub x: Option<String>,
    /// Sweeps: varied key on the vertical axis of heatmaps / the line key (default: the next one).
    #[arg(long)]
    pub y: Option<String>,
    /// Sweeps: the law fitted to the line plots: `log` (z ≈ a + b·log(1/x), plateau lengths
    /// vs init scale), `power` (z ≈ c·xᵇ) or `linear` (default: the sweep file's
    /// `[report] fit`, else power).
    #[arg(long, value_parser = ["log", "power", "linear"])]
    pub fit: Option<String>,
    /// Skip PNG rendering (SVG only).
    #[arg(long)]
    pub no_png: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Execute `featlab report`.
pub fn report_command(args: &ReportArgs) -> Result<PathBuf> {
    let path = if args.dir.join("sweep.json").exists() {
        let dir = crate::sweep::store::SweepDir::new(&args.dir);
        let mut rec = dir.read_record()?;
        let index = dir.index()?;
        dir.refresh(&mut rec, &index);
        drop(index);
        let opts = crate::sweep::report::ReportOptions {
            z: args.z.clone(),
            x: args.x.clone(),
            y: args.y.clone(),
            png: !args.no_png,
            fit: args
                .fit
                .as_deref()
                .and_then(featlab::sweep::spec::FitKind::parse),
        };
        crate::sweep::report::write_sweep_report(&dir, &rec, &opts)?
    } else if args.dir.join("run.json").exists() {
        if !args.z.is_empty() || args.x.is_some() || args.y.is_some() || args.fit.is_some() {
            anyhow::bail!(
                "--z/--x/--y/--fit apply to sweep directories; `{}` is a run",
                args.dir.display()
            );
        }
        run_report(&args.dir, !args.no_png)?
    } else {
        anyhow::bail!(
            "`{}` has neither run.json (a run) nor sweep.json (a sweep)",
            args.dir.display()
        );
    };
    if !args.quiet {
        println!("wrote {}", path.display());
    }
    Ok(path)
}

/// Re-render a run directory's plots and report.html.
pub fn run_report(dir: &Path, png: bool) -> Result<PathBuf> {
    let text = std::fs::read_to_string(dir.join("run.json"))
        .with_context(|| format!("cannot read `{}`", dir.join("run.json").display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).context("run.json is not valid JSON")?;
    let figures_path = dir.join("plots").join(crate::write::FIGURES_JSON);
    let figures: Vec<Figure> = if figures_path.exists() {
        let t = std::fs::read_to_string(&figures_path)
            .with_context(|| format!("cannot read `{}`", figures_path.display()))?;
        serde_json::from_str(&t).with_context(|| {
            format!(
                "`{}` is not a valid list of figure specs",
                figures_path.display()
            )
        })?
    } else {
        trajectory_figures(dir)?
    };
    let mut tables = Vec::new();
    let mut csvs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list `{}`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "csv")
                && p.file_name().is_some_and(|n| n != "trajectory.csv")
        })
        .collect();
    csvs.sort();
    for p in csvs {
        let (header, arr) = featlab::data::io::read_csv(&p)?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let cols = arr.shape.get(1).copied().unwrap_or(0);
        let rows = (0..arr.shape[0])
            .map(|i| {
                (0..cols)
                    .map(|j| crate::plot::format_number(arr.data[i * cols + j], 6))
                    .collect()
            })
            .collect();
        tables.push((name, header.unwrap_or_default(), rows));
    }
    crate::write::write_run_page(dir, &doc, &figures, tables, png)?;
    Ok(dir.join("report.html"))
}

/// Generic figures from trajectory.csv: `loss*` columns against `t`, and the other columns.
fn trajectory_figures(dir: &Path) -> Result<Vec<Figure>> {
    let (header, arr) = featlab::data::io::read_csv(&dir.join("trajectory.csv"))?;
    let header = header.unwrap_or_default();
    let cols = arr.shape.get(1).copied().unwrap_or(0);
    let col =
        |j: usize| -> Vec<f64> { (0..arr.shape[0]).map(|i| arr.data[i * cols + j]).collect() };
    let Some(tj) = header.iter().position(|h| h == "t") else {
        return Ok(Vec::new());
    };
    let t = col(tj);
    let mut loss = LinePlot::new("Training loss", "t", "loss").scales(Scale::Linear, Scale::Log);
    let mut other =
        LinePlot::new("Recorded quantities", "t", "value").scales(Scale::Linear, Scale::Log);
    for (j, h) in header.iter().enumerate() {
        if j == tj {
            continue;
        }
        let s = if h.ends_with("_theory") {
            Series::dashed(h.clone(), t.clone(), col(j))
        } else {
            Series::line(h.clone(), t.clone(), col(j))
        };
        if h.starts_with("loss") {
            loss.series.push(s);
        } else {
            other.series.push(s);
        }
    }
    let mut figs = Vec::new();
    if !loss.series.is_empty() {
        figs.push(loss.figure("loss", "Loss columns of trajectory.csv (this run has no saved figure specs, so generic plots are shown)."));
    }
    if !other.series.is_empty() {
        figs.push(other.figure(
            "trajectory",
            "Every other column of trajectory.csv against t.",
        ));
    }
    Ok(figs)
}
