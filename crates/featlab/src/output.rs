//! Writing a run to disk: the output contract of `featlab run`.
//!
//! | file | content |
//! |---|---|
//! | `run.json` | `{"featlab_version", "preset", "experiment", "config", "seed", "wall_seconds", "summary"}`; `summary.agreement` lists the theory-vs-experiment rows ([`crate::compare::agreement`]) |
//! | `trajectory.csv` | header row, one row per recorded time; columns include `t` and `loss`; theory columns end in `_theory` |
//! | `data/x.npy`, `data/y.npy` | the training set actually used |
//! | `params/init/*.npy`, `params/final/*.npy` | parameters, one file per block |
//! | `<table>.csv` | extra tables of the experiment |
//!
//! Every file is written atomically (temp file + rename). Non-finite numbers in JSON are
//! written as `null` (JSON has no NaN).

use crate::data::io::{write_atomic, write_csv_table, write_npy};
use crate::experiments::RunOutput;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;

/// featlab version string.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The run.json document.
pub fn run_json(out: &RunOutput, preset: &str, experiment: &str, wall_seconds: f64) -> Value {
    json!({
        "featlab_version": VERSION,
        "preset": preset,
        "experiment": experiment,
        "config": crate::config::table_to_json(&out.config),
        "seed": out.seed,
        "wall_seconds": wall_seconds,
        "summary": sanitize(&Value::Object(summary_with_agreement(out))),
        "notes": out.notes,
    })
}

/// The run's summary with its typed agreement rows under `agreement` (they replace any
/// `agreement` key the study wrote by hand).
pub fn summary_with_agreement(out: &RunOutput) -> serde_json::Map<String, Value> {
    let mut summary = out.summary.clone();
    summary.insert(
        "agreement".into(),
        serde_json::to_value(&out.agreement).unwrap_or(Value::Array(Vec::new())),
    );
    summary
}

/// Replace non-finite floats by null, recursively (serde_json already refuses them, this
/// makes the intent explicit for values built by hand).
pub fn sanitize(v: &Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if !f.is_finite() => Value::Null,
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(sanitize).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), sanitize(v))).collect())
        }
        _ => v.clone(),
    }
}

/// Write run.json, trajectory.csv, arrays and tables into `dir`.
pub fn write_run(
    dir: &Path,
    out: &RunOutput,
    preset: &str,
    experiment: &str,
    wall_seconds: f64,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let doc = run_json(out, preset, experiment, wall_seconds);
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::Numerical(format!("run.json: {e}")))?;
    write_atomic(&dir.join("run.json"), text.as_bytes())?;
    let cols: Vec<Vec<f64>> = (0..out.trajectory.columns.len())
        .map(|j| out.trajectory.rows.iter().map(|r| r[j]).collect())
        .collect();
    let named: Vec<(&str, &[f64])> = out
        .trajectory
        .columns
        .iter()
        .map(|c| c.as_str())
        .zip(cols.iter().map(|c| c.as_slice()))
        .collect();
    write_csv_table(&dir.join("trajectory.csv"), &named)?;
    for (rel, arr) in &out.arrays {
        write_npy(&dir.join(rel), arr)?;
    }
    for t in &out.tables {
        let named: Vec<(&str, &[f64])> = t
            .columns
            .iter()
            .map(|c| c.as_str())
            .zip(t.values.iter().map(|c| c.as_slice()))
            .collect();
        write_csv_table(&dir.join(format!("{}.csv", t.name)), &named)?;
    }
    Ok(())
}
