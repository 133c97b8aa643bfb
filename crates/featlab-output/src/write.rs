//! Writing a run directory: the library's contract files plus plots and report.html.
//!
//! Besides `plots/<name>.svg|png`, the figure specs themselves are saved as
//! `plots/figures.json` (non-finite numbers encoded as `null`/`"inf"`/`"-inf"`), so that
//! `featlab report DIR` can re-render every plot and the page from the files on disk.

use anyhow::{Context, Result};
use featlab::experiments::RunOutput;
use featlab::figure::Figure;
use serde_json::Value;
use std::path::Path;

/// File (under `plots/`) holding the figure specs of a run.
pub const FIGURES_JSON: &str = "figures.json";

/// Write run.json, trajectory.csv, arrays, tables, plots/*.svg|png, plots/figures.json and report.html.
pub fn write_all(
    dir: &Path,
    out: &RunOutput,
    preset: &str,
    experiment: &str,
    wall: f64,
    png: bool,
) -> Result<()> {
    featlab::output::write_run(dir, out, preset, experiment, wall)
        .with_context(|| format!("writing outputs to `{}`", dir.display()))?;
    let doc = featlab::output::run_json(out, preset, experiment, wall);
    let tables = out
        .tables
        .iter()
        .map(|t| {
            let n = t.values.first().map(|c| c.len()).unwrap_or(0);
            let rows = (0..n)
                .map(|i| {
                    t.values
                        .iter()
                        .map(|c| crate::plot::format_number(c[i], 6))
                        .collect()
                })
                .collect();
            (t.name.clone(), t.columns.clone(), rows)
        })
        .collect();
    write_run_page(dir, &doc, &out.figures, tables, png)
}

/// Render `figures` into `dir/plots/` (SVG, PNG if `png`, and `figures.json`) and write
/// `dir/report.html` for the run document `doc` (the content of run.json).
pub fn write_run_page(
    dir: &Path,
    doc: &Value,
    figures: &[Figure],
    tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
    png: bool,
) -> Result<()> {
    let plots = dir.join("plots");
    let specs = serde_json::to_string(figures).context("serialising the figure specs")?;
    featlab::data::io::write_atomic(&plots.join(FIGURES_JSON), specs.as_bytes())?;
    let mut notes: Vec<String> = doc["notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let description = run_description(doc);
    notes.retain(|n| n.trim() != description);
    let rendered = render_figures(&plots, figures, png, &mut notes)?;
    let str_of = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    let input = crate::report::ReportInput {
        title: format!("featlab run: {}", str_of("preset")),
        subtitle: format!(
            "featlab {} · experiment {} · seed {} · {:.2} s",
            str_of("featlab_version"),
            str_of("experiment"),
            doc["seed"],
            doc["wall_seconds"].as_f64().unwrap_or(f64::NAN)
        ),
        summary: &doc["summary"],
        config: &doc["config"],
        headline: crate::report::headline_index(&doc["summary"], figures),
        figures: rendered,
        tables,
        notes,
        description,
        agreement: Some(featlab::compare::agreement::from_summary(&doc["summary"])),
    };
    let html = crate::report::render_report(&input);
    featlab::data::io::write_atomic(&dir.join("report.html"), html.as_bytes())?;
    Ok(())
}

/// Write each figure as `plots/<name>.svg` (and `.png`); returns `(figure, svg text)` pairs
/// for the report and appends rendering warnings (e.g. missing fonts) to `notes`.
pub fn render_figures(
    plots: &Path,
    figures: &[Figure],
    png: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<(Figure, String)>> {
    let mut out = Vec::new();
    for fig in figures {
        let svg = if png {
            let (svg, warnings) = crate::plot::write_figure_with_warnings(plots, fig)?;
            for w in warnings {
                if !notes.contains(&w) {
                    notes.push(w);
                }
            }
            svg
        } else {
            let svg = crate::plot::render_svg(fig)?;
            featlab::data::io::write_atomic(
                &plots.join(format!("{}.svg", fig.name)),
                svg.as_bytes(),
            )?;
            svg
        };
        out.push((fig.clone(), svg));
    }
    Ok(out)
}

/// What a run is, in a paragraph: the config's `description` (presets carry one), else the
/// preset's, else empty.
pub fn run_description(doc: &Value) -> String {
    let from_config = doc["config"]["description"].as_str().unwrap_or("").trim();
    if !from_config.is_empty() {
        return from_config.to_string();
    }
    doc["preset"]
        .as_str()
        .and_then(featlab::presets::get)
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("description")?.as_str().map(|d| d.trim().to_string()))
        .unwrap_or_default()
}
