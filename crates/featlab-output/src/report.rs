//! The self-contained `report.html` of a run.
//!
//! One HTML file with inline CSS and every figure inline as SVG: no JavaScript, no external
//! files, so it can be mailed, archived or opened offline. The markup is also well-formed
//! XML (void elements are self-closed, only the five XML entities are used), which makes it
//! easy to check mechanically. All text coming from the run (titles, labels, config strings,
//! table cells) is HTML-escaped.
//!
//! Layout, verdict first: title, the one-line description, the headline figure (the
//! figure named by the summary's `headline_figure`, else the first figure) and the
//! agreement table (theory vs experiment, run.json `summary.agreement`) fill the first
//! screen; then the grouped notes ([`crate::notes`]), the other figures, and the details
//! (summary, extra tables, configuration).
//!
//! Summary rendering rules (`run.json` → tables):
//! * `agreement` (shown above) and `headline_figure` are not repeated;
//! * scalars and short arrays of scalars (≤ 8 items, shown as `1, 2.5, 3`) of an object →
//!   one key/value table;
//! * longer arrays of scalars, arrays of objects (one column per key, union of keys in
//!   first-seen order), arrays of arrays (one row each) and nested objects → collapsible
//!   `<details>` sections holding tables (recursively for nested objects);
//! * floats are shown with 6 significant digits (`%g` style), integers exactly,
//!   booleans and strings as is, `null` as "—".

use std::fmt::Write as _;

use featlab::compare::AgreementRow;
use featlab::figure::{Figure, FigureKind};
use serde_json::Value;

use crate::plot::format_number;

/// Everything that goes into `report.html`.
pub struct ReportInput<'a> {
    /// Page title, e.g. `"featlab run: staircase"`.
    pub title: String,
    /// One line under the title, e.g. featlab version, date, wall time, seed.
    pub subtitle: String,
    /// The `summary` object of `run.json` (see the module docs for how it is tabulated).
    pub summary: &'a Value,
    /// The fully resolved config, shown collapsible as TOML (JSON if it has no TOML form).
    pub config: &'a Value,
    /// Figures with their rendered SVG (from [`crate::plot::render_svg`]).
    pub figures: Vec<(Figure, String)>,
    /// Extra tables: `(title, headers, rows)`; cells are plain text.
    pub tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
    /// Free-text paragraphs (warnings, theory/experiment disagreements), shown after the
    /// verdict; notes that differ only in numbers are grouped ([`crate::notes`]).
    pub notes: Vec<String>,
    /// One line under the title: what the study is (a preset's `description`; empty: none).
    pub description: String,
    /// The agreement rows (theory vs experiment) shown first; `None`: the page has no
    /// verdict section (sweeps), `Some(empty)`: it says the run compares nothing.
    pub agreement: Option<Vec<AgreementRow>>,
    /// Index into `figures` of the headline figure shown on the first screen (`None`: all
    /// figures in the figures section).
    pub headline: Option<usize>,
}

/// The headline figure of a run: the figure named by `summary.headline_figure`, else the
/// first one (`None` without figures).
pub fn headline_index(summary: &Value, figures: &[Figure]) -> Option<usize> {
    let named = summary
        .get("headline_figure")
        .and_then(Value::as_str)
        .and_then(|n| figures.iter().position(|f| f.name == n));
    named.or(if figures.is_empty() { None } else { Some(0) })
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1b1b1b;
  background: #fff; max-width: 980px; margin: 0 auto; padding: 24px 28px 60px; line-height: 1.45; }
header { border-bottom: 2px solid #0072B2; margin-bottom: 18px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 34px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
h3 { font-size: 1.08em; margin: 22px 0 8px; }
h4 { font-size: 1em; margin: 16px 0 6px; }
.subtitle { color: #555; margin: 0 0 12px; font-size: 0.95em; }
nav { font-size: 0.92em; color: #555; margin-bottom: 8px; }
nav a { color: #0072B2; text-decoration: none; margin-right: 14px; }
nav a:hover { text-decoration: underline; }
.note { background: #fff7e6; border-left: 4px solid #E69F00; padding: 8px 12px; margin: 8px 0;
  white-space: pre-wrap; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 0.92em; }
th, td { border: 1px solid #d9d9d9; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f6f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums;
  font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
td.key { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
td.null { color: #999; text-align: center; }
tr:nth-child(even) td { background: #fbfbfb; }
figure { margin: 18px 0 30px; }
figure svg { display: block; width: 100%; max-width: 800px; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.93em; color: #333; margin-top: 6px; max-width: 800px; }
figcaption .fname { color: #888; font-family: monospace; font-size: 0.9em; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #0072B2; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 10px 12px; overflow-x: auto;
  font-size: 0.86em; line-height: 1.35; }
.empty { color: #888; font-style: italic; }
.description { margin: 2px 0 6px; font-size: 1.02em; }
figure.headline { margin: 10px 0 12px; }
figure.headline svg { max-height: 340px; width: auto; max-width: 100%; }
.verdict { font-weight: 600; margin: 10px 0 4px; }
.verdict.ok { color: #00704a; }
.verdict.bad { color: #b3261e; }
.verdict.none { color: #555; font-weight: 400; }
table.agreement td.holds { text-align: center; font-weight: 700; }
table.agreement tr.fails td { background: #fdecea; }
table.agreement tr.fails td.holds { color: #b3261e; }
table.agreement td.holds.yes { color: #00704a; }
table.agreement td.rownote { color: #444; font-size: 0.93em; }
.count { color: #777; font-size: 0.9em; }
details > table, details > details, details > h4 { margin-left: 14px; }
footer { margin-top: 40px; color: #999; font-size: 0.85em; }
@media print { nav { display: none; } figure { break-inside: avoid; } }
"#;

/// Escape text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in HTML/XML text; show them visibly.
            c if c.is_control() && c != '\n' && c != '\t' && c != '\r' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A figure name turned into a safe HTML id.
fn anchor(prefix: &str, name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}-{slug}")
}

/// Arrays of scalars up to this length are shown inline (`1, 2.5, 3`); longer ones get a
/// collapsible table.
const INLINE_ITEMS: usize = 8;

/// Format a JSON value for a table cell: (text, css class). Arrays are shown as
/// comma-separated values (at most 20, then the count), objects as `key: value; …`.
fn cell(v: &Value) -> (String, &'static str) {
    match v {
        Value::Null => ("—".into(), "null"),
        Value::Bool(b) => (b.to_string(), ""),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                (n.to_string(), "num")
            } else {
                (format_number(n.as_f64().unwrap_or(f64::NAN), 6), "num")
            }
        }
        Value::String(s) => (s.clone(), ""),
        Value::Array(a) => {
            let shown: Vec<String> = a.iter().take(20).map(|v| cell(v).0).collect();
            let mut s = shown.join(", ");
            if a.len() > 20 {
                let _ = write!(s, ", … ({} items)", a.len());
            }
            if a.iter().any(|v| !is_scalar(v)) {
                s = a
                    .iter()
                    .take(20)
                    .map(|v| format!("({})", cell(v).0))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            (s, "")
        }
        Value::Object(m) => (
            m.iter()
                .map(|(k, v)| format!("{k}: {}", cell(v).0))
                .collect::<Vec<_>>()
                .join("; "),
            "",
        ),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object))
}

/// A value shown in the key/value table of its object (not in a section of its own).
fn is_inline(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.len() <= INLINE_ITEMS && a.iter().all(is_scalar),
        Value::Object(_) => false,
        _ => true,
    }
}

fn td(out: &mut String, text: &str, class: &str) {
    if class.is_empty() {
        let _ = write!(out, "<td>{}</td>", escape_html(text));
    } else {
        let _ = write!(out, "<td class=\"{class}\">{}</td>", escape_html(text));
    }
}

/// An HTML table from headers and already-formatted cells `(text, class)`.
fn html_table(out: &mut String, headers: &[String], rows: &[Vec<(String, &'static str)>]) {
    out.push_str("<table>\n<thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape_html(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for k in 0..headers.len().max(r.len()) {
            match r.get(k) {
                Some((t, c)) => td(out, t, c),
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Table of an array of flat objects: one column per key (first-seen order).
fn object_array_table(out: &mut String, items: &[Value]) {
    let mut cols: Vec<String> = Vec::new();
    for it in items {
        if let Value::Object(m) = it {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let rows: Vec<Vec<(String, &'static str)>> = items
        .iter()
        .map(|it| {
            cols.iter()
                .map(|c| match it.get(c) {
                    Some(v) => cell(v),
                    None => (String::new(), ""),
                })
                .collect()
        })
        .collect();
    html_table(out, &cols, &rows);
}

/// Table of an array that is not an array of objects: one row per item, an index column,
/// and one column per element when the items are arrays (a matrix), else one value column.
fn array_table(out: &mut String, items: &[Value]) {
    let width = items
        .iter()
        .map(|v| v.as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    let matrix = items.iter().all(|v| v.is_array()) && width > 0;
    let headers: Vec<String> = if matrix {
        std::iter::once("i".to_string())
            .chain((0..width).map(|j| format!("[{j}]")))
            .collect()
    } else {
        vec!["i".into(), "value".into()]
    };
    let rows: Vec<Vec<(String, &'static str)>> = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = vec![(i.to_string(), "num")];
            match (matrix, v) {
                (true, Value::Array(a)) => r.extend(a.iter().map(cell)),
                _ => r.push(cell(v)),
            }
            r
        })
        .collect();
    html_table(out, &headers, &rows);
}

/// What a collapsed section holds, for its `<summary>` line.
fn section_label(v: &Value) -> String {
    match v {
        Value::Array(a) if is_table_array(v) => format!("table, {} rows", a.len()),
        Value::Array(a) => format!("{} values", a.len()),
        Value::Object(m) => format!("{} entries", m.len()),
        _ => String::new(),
    }
}

/// Render a summary object: inline values → key/value table; long arrays, arrays of
/// objects and nested objects → collapsible sections with their own tables. `depth`
/// bounds the recursion; `skip` lists top-level keys shown elsewhere.
fn summary_section(out: &mut String, v: &Value, depth: usize, skip: &[&str]) {
    let Value::Object(map) = v else {
        match v {
            Value::Null => out.push_str("<p class=\"empty\">No summary.</p>\n"),
            Value::Array(a) if is_table_array(v) => object_array_table(out, a),
            Value::Array(a) => array_table(out, a),
            other => {
                let c = cell(other);
                html_table(out, &["value".into()], &[vec![c]]);
            }
        }
        return;
    };
    let keys: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| depth > 0 || !skip.contains(&k.as_str()))
        .collect();
    if keys.is_empty() {
        out.push_str("<p class=\"empty\">Empty.</p>\n");
        return;
    }
    let rows: Vec<Vec<(String, &'static str)>> = keys
        .iter()
        .filter(|(_, v)| is_inline(v))
        .map(|(k, v)| vec![(k.to_string(), "key"), cell(v)])
        .collect();
    if !rows.is_empty() {
        html_table(out, &["quantity".into(), "value".into()], &rows);
    }
    for (k, v) in keys.iter().filter(|(_, v)| !is_inline(v)) {
        let _ = writeln!(
            out,
            "<details>\n<summary><b>{}</b> <span class=\"count\">({})</span></summary>",
            escape_html(k),
            section_label(v)
        );
        match v {
            Value::Array(a) if is_table_array(v) => object_array_table(out, a),
            Value::Array(a) => array_table(out, a),
            Value::Object(_) if depth < 6 => summary_section(out, v, depth + 1, skip),
            other => {
                let _ = writeln!(out, "<pre>{}</pre>", escape_html(&other.to_string()));
            }
        }
        out.push_str("</details>\n");
    }
}

/// The agreement table (theory vs experiment), preceded by a one-line verdict: one row per
/// quantity with theory, experiment, relative error, tolerance, ✓/✗ and the row's note;
/// rows that do not hold are highlighted. Used by the run report and the gallery.
pub fn agreement_html(out: &mut String, rows: &[AgreementRow]) {
    use featlab::compare::agreement::{failing, format_value};
    if rows.is_empty() {
        out.push_str(
            "<p class=\"verdict none\">No agreement rows: this run compares no theory with its \
             experiment at these settings (run.json <code>summary.agreement</code> is empty).</p>\n",
        );
        return;
    }
    let bad = failing(rows).len();
    let _ = writeln!(
        out,
        "<p class=\"verdict {}\">{} of {} rows hold{}</p>",
        if bad == 0 { "ok" } else { "bad" },
        rows.len() - bad,
        rows.len(),
        if bad == 0 {
            String::new()
        } else {
            format!(" — {bad} do not (highlighted)")
        }
    );
    let with_notes = rows
        .iter()
        .any(|r| r.note.is_some() || r.relative_to.is_some());
    out.push_str(
        "<table class=\"agreement\">\n<thead><tr><th>quantity</th><th>theory</th>\
         <th>experiment</th><th>rel. error</th><th>tolerance</th><th>holds</th>",
    );
    if with_notes {
        out.push_str("<th>note</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        let _ = write!(
            out,
            "<tr{}><td>{}</td>",
            if r.holds { "" } else { " class=\"fails\"" },
            escape_html(&r.quantity)
        );
        for v in [r.theory, r.experiment, r.rel_error, Some(r.tolerance)] {
            td(
                out,
                &format_value(v),
                if v.is_some() { "num" } else { "null" },
            );
        }
        let _ = write!(
            out,
            "<td class=\"holds{}\" title=\"{}\">{}</td>",
            if r.holds { " yes" } else { "" },
            if r.holds { "holds" } else { "does not hold" },
            if r.holds { "✓" } else { "✗" }
        );
        if with_notes {
            let mut note = r.note.clone().unwrap_or_default();
            if let Some(s) = r.relative_to {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str(&format!("error relative to {}", format_value(Some(s))));
            }
            td(out, &note, "rownote");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The config as TOML if it has a TOML form (an object without nulls), else pretty JSON.
fn config_text(config: &Value) -> (String, &'static str) {
    if config.is_object() {
        if let Ok(s) = toml::to_string_pretty(config) {
            return (s, "TOML");
        }
    }
    (
        serde_json::to_string_pretty(config).unwrap_or_else(|_| config.to_string()),
        "JSON",
    )
}

/// The SVG element of a rendered figure, without any XML prolog/doctype.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => svg[i..].trim_end(),
        None => "",
    }
}

fn figure_title(f: &Figure) -> &str {
    match &f.kind {
        FigureKind::Line(p) => &p.title,
        FigureKind::Heatmap(h) => &h.title,
    }
}

/// One figure as `<figure>` with its inline SVG and caption.
fn figure_html(o: &mut String, number: usize, fig: &Figure, svg: &str, class: &str) {
    let _ = writeln!(
        o,
        "<figure id=\"{}\"{}>",
        anchor("fig", &fig.name),
        if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        }
    );
    let svg = inline_svg(svg);
    if svg.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"empty\">Figure “{}” could not be rendered.</p>",
            escape_html(figure_title(fig))
        );
    } else {
        o.push_str(svg);
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "<figcaption><b>Figure {number}.</b> {} <span class=\"fname\">(plots/{}.svg)</span></figcaption>\n</figure>",
        escape_html(&fig.caption),
        escape_html(&fig.name)
    );
}

/// A self-contained HTML page: inline CSS, every figure inline as SVG (no external files,
/// no JS), verdict first (see the module docs): title, description, headline figure and
/// agreement table; then grouped notes, the other figures, and the details (summary
/// tables, extra tables, the resolved config in a collapsible block).
pub fn render_report(input: &ReportInput) -> String {
    let mut o = String::with_capacity(
        64 * 1024 + input.figures.iter().map(|(_, s)| s.len()).sum::<usize>(),
    );
    let title = escape_html(&input.title);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <meta name=\"generator\" content=\"featlab {}\"/>\n<title>{title}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n",
        env!("CARGO_PKG_VERSION")
    );
    if !input.description.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"description\">{}</p>",
            escape_html(&input.description)
        );
    }
    if !input.subtitle.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"subtitle\">{}</p>",
            escape_html(&input.subtitle)
        );
    }
    let headline = input.headline.filter(|&h| h < input.figures.len());
    let others: Vec<usize> = (0..input.figures.len())
        .filter(|&i| Some(i) != headline)
        .collect();
    let notes = crate::notes::group_notes(&input.notes);
    o.push_str("<nav>");
    if input.agreement.is_some() {
        o.push_str("<a href=\"#agreement\">Theory vs experiment</a>");
    }
    if !notes.is_empty() {
        o.push_str("<a href=\"#notes\">Notes</a>");
    }
    if !others.is_empty() {
        o.push_str("<a href=\"#figures\">Figures</a>");
    }
    o.push_str("<a href=\"#summary\">Summary</a>");
    if !input.tables.is_empty() {
        o.push_str("<a href=\"#tables\">Tables</a>");
    }
    o.push_str("<a href=\"#config\">Configuration</a></nav>\n</header>\n");

    if let Some(h) = headline {
        let (fig, svg) = &input.figures[h];
        figure_html(&mut o, h + 1, fig, svg, "headline");
    }
    if let Some(rows) = &input.agreement {
        o.push_str("<section id=\"agreement\">\n<h2>Theory vs experiment</h2>\n");
        agreement_html(&mut o, rows);
        o.push_str("</section>\n");
    }

    if !notes.is_empty() {
        o.push_str("<section id=\"notes\">\n<h2>Notes</h2>\n");
        for (count, n) in &notes {
            let _ = write!(o, "<div class=\"note\">");
            if *count > 1 {
                let _ = write!(o, "<span class=\"count\">{count} notes: </span>");
            }
            let _ = writeln!(o, "{}</div>", escape_html(n));
        }
        o.push_str("</section>\n");
    }

    if !others.is_empty() {
        o.push_str("<section id=\"figures\">\n<h2>Figures</h2>\n");
        for i in others {
            let (fig, svg) = &input.figures[i];
            figure_html(&mut o, i + 1, fig, svg, "");
        }
        o.push_str("</section>\n");
    }

    o.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    let skip: &[&str] = if input.agreement.is_some() {
        &["agreement", "headline_figure"]
    } else {
        &["headline_figure"]
    };
    summary_section(&mut o, input.summary, 0, skip);
    o.push_str("</section>\n");

    if !input.tables.is_empty() {
        o.push_str("<section id=\"tables\">\n<h2>Tables</h2>\n");
        for (t, headers, rows) in &input.tables {
            let _ = writeln!(
                o,
                "<details>\n<summary><b>{}</b> <span class=\"count\">({} rows)</span></summary>",
                escape_html(t),
                rows.len()
            );
            let rows: Vec<Vec<(String, &'static str)>> = rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|c| {
                            let num = c.trim().parse::<f64>().is_ok();
                            (c.clone(), if num { "num" } else { "" })
                        })
                        .collect()
                })
                .collect();
            html_table(&mut o, headers, &rows);
            o.push_str("</details>\n");
        }
        o.push_str("</section>\n");
    }

    o.push_str("<section id=\"config\">\n<h2>Configuration</h2>\n");
    if input.config.is_null() {
        o.push_str("<p class=\"empty\">No configuration recorded.</p>\n");
    } else {
        let (text, lang) = config_text(input.config);
        let _ = writeln!(
            o,
            "<details>\n<summary>Fully resolved configuration ({lang})</summary>\n<pre>{}</pre>\n</details>",
            escape_html(text.trim_end())
        );
    }
    o.push_str("</section>\n");
    let _ = writeln!(
        o,
        "<footer>Generated by featlab {}. Figures are also saved as SVG and PNG under <code>plots/</code>.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(cell(&serde_json::json!(0.123456789)).0, "0.123457");
        assert_eq!(cell(&serde_json::json!(12345678)).0, "12345678");
        assert_eq!(cell(&serde_json::json!(1.5e-9)).0, "1.5e-9");
        assert_eq!(cell(&Value::Null).0, "—");
        assert_eq!(cell(&serde_json::json!(true)).0, "true");
        assert_eq!(cell(&serde_json::json!([1, 2.5])).0, "1, 2.5");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(escape_html("a\u{1}b"), "a\\u{1}b");
    }
}
