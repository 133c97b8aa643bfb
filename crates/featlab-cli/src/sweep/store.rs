//! The on-disk layout of a sweep directory and the state of each point.
//!
//! ```text
//! DIR/sweep.json            spec, varied keys, every point (id, overrides, seed, status, error, wall time)
//! DIR/results.csv           one row per point (see featlab::sweep::results)
//! DIR/points/<id>/          a finished point: the files of `featlab run` + `done`
//! DIR/points/<id>/failed.json   a failed point: {"error", "config"} (no `done`)
//! DIR/points/.tmp-<id>-<pid>/   a point being written (renamed to points/<id> when complete)
//! DIR/report.html, DIR/plots/   the sweep report
//! ```
//!
//! A point directory appears only by an atomic rename of a complete temporary directory,
//! so `points/<id>/done` exists exactly when the point finished; anything else is redone.

use anyhow::{Context, Result};
use featlab::sweep::results::ResultRow;
use featlab::sweep::{Point, SweepSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Marker file of a finished point (content: `{"wall_seconds": …}`).
pub const DONE: &str = "done";
/// Record of a failed point.
pub const FAILED: &str = "failed.json";

/// State of one point on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Done { wall_seconds: Option<f64> },
    Failed { error: String },
    Missing,
}

impl Status {
    /// `done`, `failed` or `missing` (the `status` column of results.csv).
    pub fn label(&self) -> &'static str {
        match self {
            Status::Done { .. } => "done",
            Status::Failed { .. } => "failed",
            Status::Missing => "missing",
        }
    }
}

/// One point as recorded in sweep.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointRecord {
    pub index: usize,
    pub id: String,
    /// Varied values by key (the key order is `SweepRecord::varied`).
    pub overrides: Map<String, Value>,
    pub seed: u64,
    pub seed_derived: bool,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

/// Report defaults recorded in sweep.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportRecord {
    #[serde(default)]
    pub z: Vec<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// Point counts by status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    pub missing: usize,
}

/// The content of sweep.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    pub featlab_version: String,
    /// The sweep file as given on the command line.
    pub spec_file: String,
    /// Its text (so merge and report need nothing but this directory).
    pub spec_text: String,
    pub description: String,
    /// Base preset or base file stem.
    pub base: String,
    pub sweep_seed: u64,
    /// Varied keys, in axis order.
    pub varied: Vec<String>,
    /// How shards are assigned.
    pub shard_rule: String,
    pub report: ReportRecord,
    pub counts: Counts,
    pub points: Vec<PointRecord>,
}

/// A sweep output directory.
pub struct SweepDir {
    pub root: PathBuf,
}

/// A TOML value as JSON.
pub fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A JSON value back as TOML (the varied values of sweep.json).
pub fn json_to_toml(v: &Value) -> toml::Value {
    match v {
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().map(json_to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_toml(v)))
                .collect(),
        ),
        Value::Null => toml::Value::String(String::new()),
    }
}

impl SweepDir {
    pub fn new(root: &Path) -> Self {
        SweepDir {
            root: root.to_path_buf(),
        }
    }
    pub fn points_dir(&self) -> PathBuf {
        self.root.join("points")
    }
    pub fn point_dir(&self, id: &str) -> PathBuf {
        self.points_dir().join(id)
    }

    /// The state of point `id` on disk.
    pub fn status(&self, id: &str) -> Status {
        let d = self.point_dir(id);
        if let Ok(text) = std::fs::read_to_string(d.join(DONE)) {
            let wall = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["wall_seconds"].as_f64());
            return Status::Done { wall_seconds: wall };
        }
        if let Ok(text) = std::fs::read_to_string(d.join(FAILED)) {
            let error = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Status::Failed { error };
        }
        Status::Missing
    }

    /// The summary of a finished point (from its run.json).
    pub fn summary(&self, id: &str) -> Result<Map<String, Value>> {
        let path = self.point_dir(id).join("run.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        Ok(doc["summary"].as_object().cloned().unwrap_or_default())
    }

    /// Build the sweep.json record of `spec` with every point's state read from disk.
    pub fn record_from_spec(
        &self,
        spec: &SweepSpec,
        spec_file: &str,
        points: &[Point],
    ) -> SweepRecord {
        let records = points
            .iter()
            .map(|p| PointRecord {
                index: p.index,
                id: p.id.clone(),
                overrides: p
                    .overrides
                    .iter()
                    .map(|(k, v)| (k.clone(), toml_to_json(v)))
                    .collect(),
                seed: p.seed,
                seed_derived: p.seed_derived,
                status: String::new(),
                error: None,
                wall_seconds: None,
            })
            .collect();
        let mut rec = SweepRecord {
            featlab_version: featlab::output::VERSION.into(),
            spec_file: spec_file.into(),
            spec_text: spec.text.clone(),
            description: spec.description.clone(),
            base: spec.base_name.clone(),
            sweep_seed: spec.seed,
            varied: spec.varied_keys(),
            shard_rule: "shard i of n runs the points whose index k has k mod n = i".into(),
            report: ReportRecord {
                z: spec.report.z.clone(),
                x: spec.report.x.clone(),
                y: spec.report.y.clone(),
            },
            counts: Counts::default(),
            points: records,
        };
        self.refresh(&mut rec);
        rec
    }

    /// Re-read every point's state from disk into the record (status, error, wall time, counts).
    pub fn refresh(&self, rec: &mut SweepRecord) {
        let mut c = Counts {
            total: rec.points.len(),
            ..Default::default()
        };
        for p in &mut rec.points {
            let st = self.status(&p.id);
            p.status = st.label().into();
            p.error = None;
            p.wall_seconds = None;
            match st {
                Status::Done { wall_seconds } => {
                    c.done += 1;
                    p.wall_seconds = wall_seconds;
                }
                Status::Failed { error } => {
                    c.failed += 1;
                    p.error = Some(error);
                }
                Status::Missing => c.missing += 1,
            }
        }
        rec.counts = c;
    }

    /// Write sweep.json atomically.
    pub fn write_record(&self, rec: &SweepRecord) -> Result<()> {
        let text = serde_json::to_string_pretty(rec).context("serialising sweep.json")?;
        featlab::data::io::write_atomic(&self.root.join("sweep.json"), text.as_bytes())?;
        Ok(())
    }

    /// Read sweep.json.
    pub fn read_record(&self) -> Result<SweepRecord> {
        let path = self.root.join("sweep.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read `{}` (is this a sweep directory?)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a valid sweep record", path.display()))
    }

    /// The rows of results.csv, in point order, with summaries of finished points.
    pub fn rows(&self, rec: &SweepRecord) -> Result<Vec<ResultRow>> {
        rec.points
            .iter()
            .map(|p| {
                let summary = if p.status == "done" {
                    Some(self.summary(&p.id)?)
                } else {
                    None
                };
                let overrides = rec
                    .varied
                    .iter()
                    .filter_map(|k| p.overrides.get(k).map(|v| (k.clone(), json_to_toml(v))))
                    .collect();
                Ok(ResultRow {
                    id: p.id.clone(),
                    status: p.status.clone(),
                    seed: p.seed,
                    overrides,
                    summary,
                })
            })
            .collect()
    }

    /// Write results.csv from the points on disk.
    pub fn write_results(&self, rec: &SweepRecord) -> Result<PathBuf> {
        let rows = self.rows(rec)?;
        let csv = featlab::sweep::results::results_csv(&rec.varied, &rows);
        let path = self.root.join("results.csv");
        featlab::data::io::write_atomic(&path, csv.as_bytes())?;
        Ok(path)
    }

    /// Entries of `points/` that are not points of this record (from an earlier spec).
    pub fn orphans(&self, rec: &SweepRecord) -> Vec<String> {
        let ids: std::collections::HashSet<&str> =
            rec.points.iter().map(|p| p.id.as_str()).collect();
        let Ok(rd) = std::fs::read_dir(self.points_dir()) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with(".tmp-") && !ids.contains(n.as_str()))
            .collect();
        v.sort();
        v
    }
}
