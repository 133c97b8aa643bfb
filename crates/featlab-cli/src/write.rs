//! Writing a run directory: the library's contract files plus plots and report.html.

use anyhow::{Context, Result};
use featlab::experiments::RunOutput;
use std::path::Path;

/// Write run.json, trajectory.csv, arrays, tables, plots/*.svg|png and report.html.
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
    let plots = dir.join("plots");
    let mut figures = Vec::new();
    let mut notes = out.notes.clone();
    for fig in &out.figures {
        let svg = if png {
            let (svg, warnings) = crate::plot::write_figure_with_warnings(&plots, fig)?;
            notes.extend(warnings);
            svg
        } else {
            let svg = crate::plot::render_svg(fig)?;
            featlab::data::io::write_atomic(
                &plots.join(format!("{}.svg", fig.name)),
                svg.as_bytes(),
            )?;
            svg
        };
        figures.push((fig.clone(), svg));
    }
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
    let input = crate::report::ReportInput {
        title: format!("featlab run: {preset}"),
        subtitle: format!(
            "featlab {} · experiment {experiment} · seed {} · {wall:.2} s",
            featlab::output::VERSION,
            out.seed
        ),
        summary: &doc["summary"],
        config: &doc["config"],
        figures,
        tables,
        notes,
    };
    let html = crate::report::render_report(&input);
    featlab::data::io::write_atomic(&dir.join("report.html"), html.as_bytes())?;
    Ok(())
}
