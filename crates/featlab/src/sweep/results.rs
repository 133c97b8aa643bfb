//! Rows of `results.csv`: one per point, the varied values and the run's scalar summary.
//!
//! Flattening of a run's `summary` (see [`flatten_summary`]):
//! * numbers, booleans, strings, nulls → one column named by the key;
//! * arrays of scalars with at most [`MAX_ARRAY`] items → one column per item, `key[i]`;
//! * objects → their fields, `key.field` (recursively);
//! * arrays of objects, longer arrays → left out (they stay in each point's run.json);
//! * keys ending in `seconds` (timings) → left out, so that `results.csv` depends only on the
//!   sweep spec and is byte-identical however the sweep was run (timings are in `sweep.json`).
//!
//! Cells: integers in decimal, floats in Rust's shortest round-trip form (`0.1`, `1e-6`),
//! null/missing empty, strings quoted when needed (RFC 4180).

use serde_json::{Map, Value};

/// Longest summary array spread into columns.
pub const MAX_ARRAY: usize = 32;

/// Whether a summary key is a timing (left out of `results.csv`).
pub fn is_timing(key: &str) -> bool {
    key.ends_with("seconds")
}

/// The summary as `(column, scalar value)` pairs; see the module docs.
pub fn flatten_summary(summary: &Map<String, Value>) -> Vec<(String, Value)> {
    fn walk(m: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, Value)>) {
        for (k, v) in m {
            if is_timing(k) {
                continue;
            }
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(o) => walk(o, &name, out),
                Value::Array(a)
                    if a.len() <= MAX_ARRAY
                        && a.iter().all(|x| !x.is_array() && !x.is_object()) =>
                {
                    for (i, x) in a.iter().enumerate() {
                        out.push((format!("{name}[{i}]"), x.clone()));
                    }
                }
                Value::Array(_) => {}
                other => out.push((name, other.clone())),
            }
        }
    }
    let mut out = Vec::new();
    walk(summary, "", &mut out);
    out
}

/// Quote a CSV field when it contains a comma, quote, or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A JSON scalar as a CSV cell (see the module docs).
pub fn json_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{f:?}"),
            _ => n.to_string(),
        },
        Value::String(s) => csv_field(s),
        other => csv_field(&other.to_string()),
    }
}

/// A TOML value (a varied value) as a CSV cell.
pub fn toml_cell(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => csv_field(s),
        other => csv_field(&super::table::canonical_value(other)),
    }
}

/// One row of `results.csv`.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub id: String,
    /// `done`, `failed` or `missing`.
    pub status: String,
    pub seed: u64,
    /// Varied values, `(key, value)`.
    pub overrides: Vec<(String, toml::Value)>,
    /// The run's summary (`None` unless done).
    pub summary: Option<Map<String, Value>>,
}

/// The header line of `results.csv` (with `\n`): `id, status, seed, <varied keys>,
/// <summary columns>` (`seed` once if it is itself varied).
pub fn csv_header(varied: &[String], cols: &[String]) -> String {
    let seed_varied = varied.iter().any(|k| k == "seed");
    let mut header = vec!["id".to_string(), "status".into()];
    if !seed_varied {
        header.push("seed".into());
    }
    header.extend(varied.iter().cloned());
    header.extend(cols.iter().cloned());
    let mut s = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

/// One line of `results.csv` (with `\n`) for `row`, whose flattened summary is `flat`.
pub fn csv_row(
    varied: &[String],
    cols: &[String],
    r: &ResultRow,
    flat: &[(String, Value)],
) -> String {
    let seed_varied = varied.iter().any(|k| k == "seed");
    let mut cells = vec![csv_field(&r.id), r.status.clone()];
    if !seed_varied {
        cells.push(r.seed.to_string());
    }
    for k in varied {
        cells.push(
            r.overrides
                .iter()
                .find(|(o, _)| o == k)
                .map(|(_, v)| toml_cell(v))
                .unwrap_or_default(),
        );
    }
    let by_name: std::collections::HashMap<&str, &Value> =
        flat.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for c in cols {
        cells.push(
            by_name
                .get(c.as_str())
                .map(|v| json_cell(v))
                .unwrap_or_default(),
        );
    }
    let mut s = cells.join(",");
    s.push('\n');
    s
}

/// The text of `results.csv`: [`csv_header`] with the summary columns as the union over
/// rows in first-seen order, then one [`csv_row`] per row in the given order.
pub fn results_csv(varied: &[String], rows: &[ResultRow]) -> String {
    let flat: Vec<Vec<(String, Value)>> = rows
        .iter()
        .map(|r| r.summary.as_ref().map(flatten_summary).unwrap_or_default())
        .collect();
    let mut cols: Vec<String> = Vec::new();
    let mut known = std::collections::HashSet::new();
    for f in &flat {
        for (k, _) in f {
            if known.insert(k.clone()) {
                cols.push(k.clone());
            }
        }
    }
    let mut s = csv_header(varied, &cols);
    for (r, f) in rows.iter().zip(&flat) {
        s.push_str(&csv_row(varied, &cols, r, f));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattening_and_csv() {
        let summary = json!({
            "final_loss": 1e-6, "steps": 12, "model": "two_layer", "ok": true, "gap": null,
            "drop_times": [1.5, null], "integrator": {"accepted": 3, "rejected": 0},
            "drops": [{"t": 1.0}], "train_seconds": 0.3, "long": (0..40).collect::<Vec<i32>>()
        });
        let f = flatten_summary(summary.as_object().unwrap());
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "drop_times[0]",
                "drop_times[1]",
                "final_loss",
                "gap",
                "integrator.accepted",
                "integrator.rejected",
                "model",
                "ok",
                "steps"
            ]
        );
        let rows = vec![
            ResultRow {
                id: "w=4-abc".into(),
                status: "done".into(),
                seed: 7,
                overrides: vec![
                    ("model.width".into(), toml::Value::Integer(4)),
                    ("model.activation".into(), toml::Value::String("a,b".into())),
                ],
                summary: Some(summary.as_object().unwrap().clone()),
            },
            ResultRow {
                id: "w=8-def".into(),
                status: "failed".into(),
                seed: 8,
                overrides: vec![("model.width".into(), toml::Value::Integer(8))],
                summary: None,
            },
        ];
        let csv = results_csv(&["model.width".into(), "model.activation".into()], &rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "id,status,seed,model.width,model.activation,drop_times[0],drop_times[1],final_loss,gap,integrator.accepted,integrator.rejected,model,ok,steps"
        );
        assert_eq!(
            lines[1],
            "w=4-abc,done,7,4,\"a,b\",1.5,,1e-6,,3,0,two_layer,true,12"
        );
        assert_eq!(lines[2], "w=8-def,failed,8,8,,,,,,,,,,");
        assert_eq!(json_cell(&json!(0.1)), "0.1");
        assert_eq!(json_cell(&json!(2.0)), "2.0");
    }
}
