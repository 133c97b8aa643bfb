//! The sweep report: results table, phase diagrams (heatmaps of a summary field over two
//! varied keys) and scaling plots (a field against one key, with fitted power-law exponents).
//!
//! Choices (each overridable with `featlab report DIR --z F --x K --y K`, or the sweep
//! file's `[report]` table):
//! * fields `z`: the `[report] z` list, else the first numeric column of results.csv;
//! * axes: the first two varied keys other than `seed`;
//! * every other varied key (typically `seed`) is averaged over: a cell / line point is the
//!   mean of the finite values of its finished points (the caption says over what and how
//!   many); cells without any are grey;
//! * an axis is logarithmic when all its values are positive and span ≥ 8×; a field's
//!   axis likewise;
//! * line plots: one line per value of the other axis (≤ 10 values, else one pooled line);
//!   each legend entry carries the least-squares fit to that line's points (± the standard
//!   error of its slope) of the law the sweep file names in `[report] fit` (or `--fit`):
//!   `"power"` (default) `z ≈ c·x^b` (positive axes), `"log"` `z ≈ a + b·log(1/x)` — what
//!   theory predicts for plateau lengths against the initialisation scale — (positive
//!   horizontal axis), `"linear"` `z ≈ a + b·x`;
//! * axes with more than 50 distinct values (random sweeps) give scatter plots of every
//!   point instead of heatmaps.

use super::store::{SweepDir, SweepRecord};
use anyhow::{Context, Result};
use featlab::analysis::power_law_fit;
use featlab::figure::{Figure, FigureKind, Heatmap, LinePlot, Scale, Series};
use featlab::sweep::spec::FitKind;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// Options of the sweep report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub z: Vec<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub png: bool,
    /// The law fitted to the line plots (default: the sweep file's `[report] fit`, else power).
    pub fit: Option<FitKind>,
}

/// The sweep file's `[report] fit`, if it names one.
fn spec_fit(rec: &SweepRecord) -> Option<FitKind> {
    let t: toml::Table = rec.spec_text.parse().ok()?;
    FitKind::parse(t.get("report")?.get("fit")?.as_str()?)
}

/// The fitted law in a legend entry (`None`: no fit possible on these points).
fn fit_label(fit: FitKind, xs: &[f64], ys: &[f64]) -> Option<String> {
    let se = |v: f64| {
        if v.is_finite() {
            format!(" ± {}", crate::plot::format_number(v, 2))
        } else {
            String::new()
        }
    };
    let n3 = |v: f64| crate::plot::format_number(v, 3);
    match fit {
        FitKind::Power => {
            let f = power_law_fit(xs, ys)?;
            Some(format!("exponent {}{}", n3(f.exponent), se(f.stderr)))
        }
        FitKind::Log => {
            let u: Vec<f64> = xs
                .iter()
                .map(|&x| if x > 0.0 { (1.0 / x).ln() } else { f64::NAN })
                .collect();
            let f = featlab::analysis::line_fit(&u, ys)?;
            Some(format!(
                "{} + {}{}·log(1/x)",
                n3(f.intercept),
                n3(f.slope),
                se(f.stderr)
            ))
        }
        FitKind::Linear => {
            let f = featlab::analysis::line_fit(xs, ys)?;
            Some(format!(
                "{} + {}{}·x",
                n3(f.intercept),
                n3(f.slope),
                se(f.stderr)
            ))
        }
    }
}

/// The caption sentence explaining the legend's fit.
fn fit_caption(fit: FitKind) -> &'static str {
    match fit {
        FitKind::Power => " Legend: exponent b of the least-squares fit z ≈ c·xᵇ (log–log) to each line's points, ± its standard error (none with 2 points); points with z ≤ 0 are left out of the fit.",
        FitKind::Log => " Legend: least-squares fit z ≈ a + b·log(1/x) (natural log; the sweep file's fit = \"log\", the law theory predicts for plateau lengths against the initialisation scale) to each line's points, a + b ± the standard error of b (none with 2 points).",
        FitKind::Linear => " Legend: least-squares fit z ≈ a + b·x to each line's points, a + b ± the standard error of b (none with 2 points).",
    }
}

const MAX_GRID: usize = 50;
const MAX_SERIES: usize = 10;

/// One varied key as plot coordinates.
struct Coord {
    key: String,
    /// Per row (NaN when the row lacks the key).
    values: Vec<f64>,
    /// Category names when the values are not numbers (coordinate = index).
    categories: Option<Vec<String>>,
}

impl Coord {
    fn new(key: &str, rec: &SweepRecord) -> Coord {
        let raw: Vec<Option<&Value>> = rec.points.iter().map(|p| p.overrides.get(key)).collect();
        if raw.iter().all(|v| v.is_none_or(|v| v.is_number())) {
            let values = raw
                .iter()
                .map(|v| v.and_then(|v| v.as_f64()).unwrap_or(f64::NAN))
                .collect();
            return Coord {
                key: key.into(),
                values,
                categories: None,
            };
        }
        let mut cats: Vec<String> = Vec::new();
        let values = raw
            .iter()
            .map(|v| match v {
                None => f64::NAN,
                Some(v) => {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let i = cats.iter().position(|c| *c == s).unwrap_or_else(|| {
                        cats.push(s);
                        cats.len() - 1
                    });
                    i as f64
                }
            })
            .collect();
        Coord {
            key: key.into(),
            values,
            categories: Some(cats),
        }
    }
    fn distinct(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .values
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    }
    fn label(&self) -> String {
        match &self.categories {
            None => self.key.clone(),
            Some(c) => format!(
                "{} ({})",
                self.key,
                c.iter()
                    .enumerate()
                    .map(|(i, n)| format!("{i} = {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    fn value_text(&self, v: f64) -> String {
        match &self.categories {
            Some(c) => c.get(v as usize).cloned().unwrap_or_default(),
            None => crate::plot::format_number(v, 4),
        }
    }
    fn scale(&self) -> Scale {
        positive_span_scale(&self.distinct())
    }
}

fn positive_span_scale(v: &[f64]) -> Scale {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    if !finite.is_empty() && lo > 0.0 && hi / lo >= 8.0 {
        Scale::Log
    } else {
        Scale::Linear
    }
}

/// A file-name-safe form of a field or key: runs of other characters become one `_`
/// (`drop_times[0]` → `drop_times_0`).
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn mean(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        f64::NAN
    } else {
        f.iter().sum::<f64>() / f.len() as f64
    }
}

/// "seed (3 values)" for the varied keys that are averaged over.
fn averaged_over(rec: &SweepRecord, shown: &[&str]) -> String {
    let others: Vec<String> = rec
        .varied
        .iter()
        .filter(|k| !shown.contains(&k.as_str()))
        .map(|k| {
            let n = Coord::new(k, rec).distinct().len();
            format!("{k} ({n} values)")
        })
        .collect();
    if others.is_empty() {
        "one point per cell".into()
    } else {
        format!("mean over {}", others.join(", "))
    }
}

fn heatmap(rec: &SweepRecord, z: &str, zv: &[f64], x: &Coord, y: &Coord) -> Figure {
    let xs = x.distinct();
    let ys = y.distinct();
    let mut cells = vec![vec![Vec::new(); xs.len()]; ys.len()];
    for (r, v) in zv.iter().enumerate() {
        let (Some(j), Some(i)) = (
            xs.iter().position(|a| *a == x.values[r]),
            ys.iter().position(|b| *b == y.values[r]),
        ) else {
            continue;
        };
        if v.is_finite() {
            cells[i][j].push(*v);
        }
    }
    let counts: Vec<usize> = cells.iter().flatten().map(Vec::len).collect();
    let (cmin, cmax) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    let zz: Vec<Vec<f64>> = cells
        .iter()
        .map(|row| row.iter().map(|c| mean(c)).collect())
        .collect();
    let h = Heatmap {
        title: format!("{z} over {} × {}", x.key, y.key),
        x_label: x.label(),
        y_label: y.label(),
        z_label: z.to_string(),
        x: xs,
        y: ys,
        z: zz,
        x_scale: x.scale(),
        y_scale: y.scale(),
        overlays: Vec::new(),
    };
    Figure {
        name: format!("heatmap_{}", slug(z)),
        caption: format!(
            "Phase diagram: {z} over {} and {}; each cell is the {} ({cmin}–{cmax} finished points per cell); grey cells have none.",
            x.key,
            y.key,
            averaged_over(rec, &[&x.key, &y.key])
        ),
        kind: FigureKind::Heatmap(h),
    }
}

/// `z` against `x`, one line per value of `by` (if any and not too many).
fn lines(
    rec: &SweepRecord,
    z: &str,
    zv: &[f64],
    x: &Coord,
    by: Option<&Coord>,
    fit: FitKind,
) -> Figure {
    let xs = x.distinct();
    let groups: Vec<Option<f64>> = match by {
        Some(b) if b.distinct().len() <= MAX_SERIES => b.distinct().into_iter().map(Some).collect(),
        _ => vec![None],
    };
    let fittable =
        !xs.is_empty() && x.categories.is_none() && (fit == FitKind::Linear || xs[0] > 0.0);
    let mut plot = LinePlot::new(format!("{z} vs {}", x.key), x.label(), z.to_string());
    let mut all_z = Vec::new();
    for g in &groups {
        let ys: Vec<f64> = xs
            .iter()
            .map(|xv| {
                let vals: Vec<f64> = (0..zv.len())
                    .filter(|&r| {
                        x.values[r] == *xv
                            && g.is_none_or(|gv| by.is_some_and(|b| b.values[r] == gv))
                    })
                    .map(|r| zv[r])
                    .collect();
                mean(&vals)
            })
            .collect();
        all_z.extend(ys.iter().copied());
        let mut label = match (g, by) {
            (Some(gv), Some(b)) => format!("{} = {}", b.key, b.value_text(*gv)),
            _ => "all points".to_string(),
        };
        if fittable {
            if let Some(f) = fit_label(fit, &xs, &ys) {
                label = format!("{label}: {f}");
            }
        }
        plot.series.push(Series::line(label, xs.clone(), ys));
    }
    plot.x_scale = x.scale();
    plot.y_scale = positive_span_scale(&all_z);
    let shown: Vec<&str> = match by {
        Some(b) if groups.len() > 1 => vec![&x.key, &b.key],
        _ => vec![&x.key],
    };
    let mut caption = format!("{z} against {}", x.key);
    if groups.len() > 1 {
        caption.push_str(&format!(
            ", one line per value of {}",
            by.map(|b| b.key.as_str()).unwrap_or("")
        ));
    }
    caption.push_str(&format!(
        "; each point is the {}.",
        averaged_over(rec, &shown)
    ));
    if fittable {
        caption.push_str(fit_caption(fit));
    } else if x.categories.is_some() {
        caption.push_str(" No fit: the horizontal axis is not numeric.");
    } else {
        caption.push_str(" No fit: the horizontal axis is not positive.");
    }
    plot.figure(format!("lines_{}_vs_{}", slug(z), slug(&x.key)), caption)
}

/// Every finished point of a random (non-grid) sweep: `z` against `x`.
fn scatter(z: &str, zv: &[f64], x: &Coord) -> Figure {
    let mut plot = LinePlot::new(format!("{z} vs {}", x.key), x.label(), z.to_string());
    let pts: Vec<(f64, f64)> = x
        .values
        .iter()
        .zip(zv)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .collect();
    let (px, py): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
    let mut label = "points".to_string();
    if x.categories.is_none() {
        if let Some(f) = power_law_fit(&px, &py) {
            label = format!(
                "points: exponent {} ± {}",
                crate::plot::format_number(f.exponent, 3),
                crate::plot::format_number(f.stderr, 2)
            );
        }
    }
    plot.x_scale = positive_span_scale(&px);
    plot.y_scale = positive_span_scale(&py);
    plot.series.push(Series::points(label, px, py));
    plot.figure(
        format!("scatter_{}_vs_{}", slug(z), slug(&x.key)),
        format!("{z} of every finished point against {} (all other keys vary too); legend: least-squares power-law exponent over all points with positive values.", x.key),
    )
}

/// The merged table results.csv, read column by column (streaming; rows are the points of
/// the record, in order).
struct ResultsTable {
    path: PathBuf,
    header: Vec<String>,
    /// Index of the first summary column (after id, status, seed, varied keys).
    first_summary: usize,
    rows: usize,
}

/// Split one CSV record (RFC 4180 quoting, as written by `featlab::sweep::results`).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    cells.push(cur);
    cells
}

impl ResultsTable {
    fn open(path: &std::path::Path, rec: &SweepRecord) -> Result<ResultsTable> {
        let mut t = ResultsTable {
            path: path.to_path_buf(),
            header: Vec::new(),
            first_summary: 0,
            rows: 0,
        };
        let mut header = None;
        t.each_row(|i, cells| {
            if i == 0 {
                header = Some(cells.to_vec());
            }
        })?;
        t.header = header.with_context(|| format!("`{}` is empty", path.display()))?;
        t.rows -= 1;
        if t.rows != rec.points.len() {
            anyhow::bail!(
                "`{}` has {} rows but the sweep has {} points; run `featlab sweep merge {}` first",
                path.display(),
                t.rows,
                rec.points.len(),
                path.parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        let seed_col = usize::from(!rec.varied.iter().any(|k| k == "seed"));
        t.first_summary = 2 + seed_col + rec.varied.len();
        Ok(t)
    }

    /// Call `f(line number, cells)` for every record, header included (line 0).
    fn each_row(&mut self, mut f: impl FnMut(usize, &[String])) -> Result<()> {
        use std::io::BufRead;
        let file = std::fs::File::open(&self.path).with_context(|| {
            format!(
                "cannot read `{}`; run `featlab sweep merge` on the sweep directory first",
                self.path.display()
            )
        })?;
        let mut r = std::io::BufReader::new(file);
        let mut line = String::new();
        let mut n = 0;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                break;
            }
            // A quoted field may hold a line break: read on until the quotes balance.
            while line.matches('"').count() % 2 == 1 {
                if r.read_line(&mut line)? == 0 {
                    break;
                }
            }
            let text = line.strip_suffix('\n').unwrap_or(&line);
            f(n, &csv_cells(text));
            n += 1;
        }
        self.rows = n;
        Ok(())
    }

    /// Summary columns with at least one number (a finite decimal), in file order.
    fn numeric_columns(&self) -> Result<Vec<String>> {
        let mut numeric = vec![false; self.header.len()];
        let first = self.first_summary;
        let mut t = ResultsTable {
            path: self.path.clone(),
            header: Vec::new(),
            first_summary: first,
            rows: 0,
        };
        t.each_row(|i, cells| {
            if i == 0 {
                return;
            }
            for (j, c) in cells.iter().enumerate().skip(first) {
                if j < numeric.len() && !numeric[j] && c.parse::<f64>().is_ok_and(f64::is_finite) {
                    numeric[j] = true;
                }
            }
        })?;
        Ok(self
            .header
            .iter()
            .enumerate()
            .filter(|(j, _)| numeric[*j])
            .map(|(_, h)| h.clone())
            .collect())
    }

    /// The values of `names` by row (NaN where empty or not a number).
    fn columns(&self, names: &[String]) -> Result<HashMap<String, Vec<f64>>> {
        let idx: Vec<(String, usize)> = names
            .iter()
            .filter_map(|n| {
                self.header
                    .iter()
                    .skip(self.first_summary)
                    .position(|h| h == n)
                    .map(|j| (n.clone(), j + self.first_summary))
            })
            .collect();
        let mut out: HashMap<String, Vec<f64>> = idx
            .iter()
            .map(|(n, _)| (n.clone(), Vec::with_capacity(self.rows)))
            .collect();
        let mut t = ResultsTable {
            path: self.path.clone(),
            header: Vec::new(),
            first_summary: self.first_summary,
            rows: 0,
        };
        t.each_row(|i, cells| {
            if i == 0 {
                return;
            }
            for (n, j) in &idx {
                let v = cells
                    .get(*j)
                    .and_then(|c| c.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                out.get_mut(n).expect("column").push(v);
            }
        })?;
        Ok(out)
    }
}

/// Build the figures, the tables and report.html of a sweep directory from its merged
/// table (results.csv) and sweep.json.
pub fn write_sweep_report(
    dir: &SweepDir,
    rec: &SweepRecord,
    opts: &ReportOptions,
) -> Result<PathBuf> {
    let csv_path = dir.root.join("results.csv");
    let table = ResultsTable::open(&csv_path, rec)?;
    let numeric = table.numeric_columns()?;
    let mut zs: Vec<String> = if !opts.z.is_empty() {
        opts.z.clone()
    } else {
        rec.report.z.clone()
    };
    if zs.is_empty() {
        zs.extend(numeric.first().cloned());
    }
    for z in &zs {
        if !numeric.contains(z) {
            anyhow::bail!("`{z}` is not a numeric summary field of this sweep's finished points; available: {}", numeric.join(", "));
        }
    }
    let non_seed: Vec<&String> = rec.varied.iter().filter(|k| *k != "seed").collect();
    let x_key = opts
        .x
        .clone()
        .or(rec.report.x.clone())
        .or(non_seed.first().map(|s| s.to_string()));
    let y_key = opts.y.clone().or(rec.report.y.clone()).or(non_seed
        .iter()
        .find(|k| Some(k.as_str()) != x_key.as_deref())
        .map(|s| s.to_string()));
    for k in x_key.iter().chain(y_key.iter()) {
        if !rec.varied.contains(k) {
            anyhow::bail!(
                "`{k}` is not a varied key of this sweep; varied: {}",
                rec.varied.join(", ")
            );
        }
    }
    let x = x_key.as_deref().map(|k| Coord::new(k, rec));
    let y = y_key
        .as_deref()
        .filter(|k| Some(*k) != x_key.as_deref())
        .map(|k| Coord::new(k, rec));

    let zcols: HashMap<String, Vec<f64>> = table.columns(&zs)?;
    let fit = opts.fit.or(spec_fit(rec)).unwrap_or(FitKind::Power);
    let mut figures = Vec::new();
    for z in &zs {
        let zv = &zcols[z];
        let Some(x) = &x else { continue };
        let x_grid = x.distinct().len() <= MAX_GRID;
        let y_grid = y.as_ref().is_some_and(|y| y.distinct().len() <= MAX_GRID);
        if x_grid && y_grid {
            figures.push(heatmap(rec, z, zv, x, y.as_ref().expect("y")));
        }
        if x_grid {
            figures.push(lines(rec, z, zv, x, y.as_ref(), fit));
        } else {
            figures.push(scatter(z, zv, x));
        }
        if let Some(y) = &y {
            if y_grid {
                figures.push(lines(rec, z, zv, y, Some(x), fit));
            } else {
                figures.push(scatter(z, zv, y));
            }
        }
    }

    let plots = dir.root.join("plots");
    let mut notes = Vec::new();
    let c = &rec.counts;
    if c.failed > 0 || c.missing > 0 {
        notes.push(format!(
            "{} of {} points are not finished ({} failed, {} missing); figures use the {} finished ones.{}",
            c.failed + c.missing,
            c.total,
            c.failed,
            c.missing,
            c.done,
            if c.missing > 0 { " Run the sweep again (or `featlab sweep merge` after the remaining shards) to complete it." } else { "" }
        ));
    }
    if x.is_none() {
        notes.push("No varied key to plot against: the sweep has no axes.".into());
    }
    let rendered = crate::write::render_figures(&plots, &figures, opts.png, &mut notes)?;

    let varied: serde_json::Map<String, Value> = rec
        .varied
        .iter()
        .map(|k| {
            let co = Coord::new(k, rec);
            let vals: Vec<String> = co.distinct().iter().map(|v| co.value_text(*v)).collect();
            (k.clone(), json!(vals.join(", ")))
        })
        .collect();
    let summary = json!({
        "points": c.total, "done": c.done, "failed": c.failed, "missing": c.missing,
        "base": rec.base, "sweep_seed": rec.sweep_seed, "fields_plotted": zs.join(", "),
        "varied": Value::Object(varied),
    });
    let mut headers = vec!["id".to_string(), "status".into()];
    headers.extend(rec.varied.iter().cloned());
    headers.extend(zs.iter().cloned());
    const MAX_ROWS: usize = 2000;
    let table_rows: Vec<Vec<String>> = rec
        .points
        .iter()
        .enumerate()
        .take(MAX_ROWS)
        .map(|(i, p)| {
            let mut cells = vec![p.id.clone(), p.status.clone()];
            for (_, v) in SweepDir::overrides(rec, p) {
                cells.push(featlab::sweep::table::short_value(&v));
            }
            for z in &zs {
                let v = zcols[z][i];
                cells.push(if v.is_finite() {
                    crate::plot::format_number(v, 6)
                } else {
                    String::new()
                });
            }
            cells
        })
        .collect();
    let mut tables = vec![(
        if rec.points.len() > MAX_ROWS {
            format!(
                "Results (first {MAX_ROWS} of {} points; all in results.csv)",
                rec.points.len()
            )
        } else {
            "Results (all columns in results.csv)".to_string()
        },
        headers,
        table_rows,
    )];
    let failed: Vec<Vec<String>> = rec
        .points
        .iter()
        .filter(|p| p.status == "failed")
        .map(|p| vec![p.id.clone(), p.error.clone().unwrap_or_default()])
        .collect();
    if !failed.is_empty() {
        tables.push((
            "Failed points".into(),
            vec!["id".into(), "error".into()],
            failed,
        ));
    }
    let config = rec
        .spec_text
        .parse::<toml::Table>()
        .map(|t| featlab::config::table_to_json(&t))
        .unwrap_or(Value::Null);
    let wall: f64 = rec.points.iter().filter_map(|p| p.wall_seconds).sum();
    let name = std::path::Path::new(&rec.spec_file)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let input = crate::report::ReportInput {
        title: format!("featlab sweep: {name}"),
        subtitle: format!(
            "featlab {} · base {} · {} points · sweep seed {} · {:.1} s of compute",
            rec.featlab_version, rec.base, c.total, rec.sweep_seed, wall
        ),
        summary: &summary,
        config: &config,
        figures: rendered,
        tables,
        notes: if rec.description.is_empty() {
            notes
        } else {
            std::iter::once(rec.description.clone())
                .chain(notes)
                .collect()
        },
        description: String::new(),
        agreement: None,
        headline: None,
    };
    let html = crate::report::render_report(&input);
    let path = dir.root.join("report.html");
    featlab::data::io::write_atomic(&path, html.as_bytes())
        .with_context(|| format!("writing `{}`", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_labels_follow_the_named_law() {
        let x = [1e-1, 1e-2, 1e-3, 1e-4];
        // Plateau length 3 + 2·ln(1/x): the log fit recovers it, without a spread.
        let y: Vec<f64> = x.iter().map(|v: &f64| 3.0 + 2.0 * (1.0 / v).ln()).collect();
        let log = fit_label(FitKind::Log, &x, &y).unwrap();
        assert!(
            log.starts_with("3 + 2 ± ") && log.ends_with("·log(1/x)"),
            "{log}"
        );
        let p: Vec<f64> = x.iter().map(|v: &f64| 5.0 * v.powf(-0.5)).collect();
        assert!(fit_label(FitKind::Power, &x, &p)
            .unwrap()
            .starts_with("exponent -0.5"));
        let l = [1.0, 3.0, 5.0];
        let lin = fit_label(FitKind::Linear, &[0.0, 1.0, 2.0], &l).unwrap();
        assert!(lin.starts_with("1 + 2") && lin.ends_with("·x"), "{lin}");
        assert!(fit_label(FitKind::Log, &[1.0], &[1.0]).is_none());
        assert_eq!(FitKind::parse("cubic"), None);
    }
}
