//! The on-disk layout of a sweep directory and the state of each point.
//!
//! ```text
//! DIR/sweep.json                     spec, varied keys, every point (id, overrides, seed, status, error, wall time)
//! DIR/shards/shard-<i>-of-<n>.jsonl  the results of shard i of n: one record per finished or failed point
//! DIR/shards/shard-<i>-of-<n>.bin    the artifacts ([save] params/data/plots) those records point into
//! DIR/results.csv, results.parquet   one row per point (see featlab::sweep::results), written by merge
//! DIR/report.html, DIR/plots/        the sweep report
//! DIR/points/<id>/                   old layout (featlab before issue 26): read, never written
//! ```
//!
//! A point is done when a complete record says so in any shard file (see [`super::journal`]);
//! so a sweep run first locally and then as a job array (other shard counts) resumes from
//! either. When several complete records name one point, a `done` one wins over `failed`;
//! among equals the first `done` (files in name order) or the last `failed` is used.
//! Old sweep directories (a directory per point with a `done` marker or `failed.json`)
//! are read the same way, so they still resume and merge; new points go to shard files.

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
    pub overrides: Overrides,
    pub seed: u64,
    pub seed_derived: bool,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

/// A point's varied values by key: a JSON object in sweep.json, a short list in memory (a
/// map per point costs ~600 bytes at 10⁶ points; this, ~50 bytes per value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides(pub Vec<(String, Value)>);

impl Overrides {
    /// The value of `key`, if this point varies it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Serialize for Overrides {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Overrides {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let m = Map::<String, Value>::deserialize(d)?;
        Ok(Overrides(m.into_iter().collect()))
    }
}

impl PointRecord {
    /// The record of point `p` (state `missing` until [`SweepDir::refresh`] sets it).
    pub fn of(p: &Point) -> PointRecord {
        PointRecord {
            index: p.index,
            id: p.id.clone(),
            overrides: Overrides(
                p.overrides
                    .iter()
                    .map(|(k, v)| (k.clone(), toml_to_json(v)))
                    .collect(),
            ),
            seed: p.seed,
            seed_derived: p.seed_derived,
            status: "missing".into(),
            error: None,
            wall_seconds: None,
        }
    }
}

/// The first fields of sweep.json (reading them skips the list of points).
#[derive(Debug, Deserialize)]
struct RecordHeader {
    featlab_version: String,
    spec_file: String,
    spec_text: String,
    counts: Counts,
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

/// Where a point's record is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loc {
    /// Byte `offset` of shard file number `file` of [`Index::files`].
    Shard { file: u32, offset: u64 },
    /// `points/<id>/` of the old layout.
    Legacy,
}

/// The state of one point and where its record is.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub status: Status,
    pub loc: Loc,
}

/// Every point recorded in a sweep directory, by id.
#[derive(Debug, Default)]
pub struct Index {
    /// The shard files read, in name order.
    pub files: Vec<PathBuf>,
    pub entries: std::collections::HashMap<String, Entry>,
    /// Lines not counted (a torn last record, or not valid JSON).
    pub ignored_lines: usize,
    /// Further `done` records of a point already done (e.g. two shard counts overlapping).
    pub duplicates: usize,
    /// Points read from the old layout (points/<id>/).
    pub legacy: usize,
}

impl Index {
    /// The state of point `id`.
    pub fn status(&self, id: &str) -> Status {
        self.entries
            .get(id)
            .map(|e| e.status.clone())
            .unwrap_or(Status::Missing)
    }

    fn add(&mut self, id: String, status: Status, loc: Loc) {
        use std::collections::hash_map::Entry as E;
        match self.entries.entry(id) {
            E::Vacant(v) => {
                v.insert(Entry { status, loc });
            }
            E::Occupied(mut o) => match (&o.get().status, &status) {
                (Status::Done { .. }, Status::Done { .. }) => self.duplicates += 1,
                (Status::Done { .. }, _) => {}
                _ => {
                    o.insert(Entry { status, loc });
                }
            },
        }
    }
}

/// Reads summaries of indexed points (keeps the shard files open).
pub struct SummaryReader<'a> {
    dir: &'a SweepDir,
    index: &'a Index,
    readers: Vec<Option<super::journal::RecordReader>>,
}

impl SummaryReader<'_> {
    /// The summary of point `id` (`None` unless it is done).
    pub fn summary(&mut self, id: &str) -> Result<Option<Map<String, Value>>> {
        let Some(e) = self.index.entries.get(id) else {
            return Ok(None);
        };
        if !matches!(e.status, Status::Done { .. }) {
            return Ok(None);
        }
        match e.loc {
            Loc::Legacy => self.dir.legacy_summary(id).map(Some),
            Loc::Shard { file, offset } => {
                let path = &self.index.files[file as usize];
                let slot = &mut self.readers[file as usize];
                if slot.is_none() {
                    *slot = Some(super::journal::RecordReader::open(path)?);
                }
                let r = slot.as_mut().expect("opened");
                let rec: super::journal::RecordSummary = r.read_at(offset)?;
                if rec.id != id {
                    anyhow::bail!("`{}` changed while it was read (byte {offset} is not point {id}); is a shard still running?", path.display());
                }
                Ok(Some(rec.summary.unwrap_or_default()))
            }
        }
    }
}

impl SweepDir {
    pub fn new(root: &Path) -> Self {
        SweepDir {
            root: root.to_path_buf(),
        }
    }
    /// `DIR/shards`.
    pub fn shards_dir(&self) -> PathBuf {
        self.root.join("shards")
    }
    /// The results file of `shard`.
    pub fn shard_path(&self, shard: featlab::sweep::Shard) -> PathBuf {
        self.shards_dir()
            .join(format!("{}.jsonl", super::journal::stem(shard)))
    }
    /// `DIR/points` (old layout).
    pub fn points_dir(&self) -> PathBuf {
        self.root.join("points")
    }
    /// `DIR/points/<id>` (old layout).
    pub fn point_dir(&self, id: &str) -> PathBuf {
        self.points_dir().join(id)
    }

    /// Read every shard file (and the old layout's points/) into an index of point states.
    pub fn index(&self) -> Result<Index> {
        let mut idx = Index::default();
        if let Ok(rd) = std::fs::read_dir(self.shards_dir()) {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            files.sort();
            idx.files = files;
        }
        for (i, path) in idx.files.clone().iter().enumerate() {
            let mut found = Vec::new();
            let (_, ignored) = super::journal::scan(path, |offset, h| found.push((offset, h)))?;
            idx.ignored_lines += ignored;
            for (offset, h) in found {
                let status = match h.status.as_str() {
                    "done" => Status::Done {
                        wall_seconds: h.wall_seconds,
                    },
                    _ => Status::Failed {
                        error: h.error.unwrap_or_default(),
                    },
                };
                idx.add(
                    h.id,
                    status,
                    Loc::Shard {
                        file: i as u32,
                        offset,
                    },
                );
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.points_dir()) {
            for e in rd.filter_map(|e| e.ok()) {
                let id = e.file_name().to_string_lossy().to_string();
                if id.starts_with(".tmp-") {
                    continue;
                }
                let st = self.legacy_status(&id);
                if st != Status::Missing {
                    idx.legacy += 1;
                    idx.add(id, st, Loc::Legacy);
                }
            }
        }
        Ok(idx)
    }

    /// A reader of summaries of the points of `index`.
    pub fn summaries<'a>(&'a self, index: &'a Index) -> SummaryReader<'a> {
        SummaryReader {
            dir: self,
            index,
            readers: index.files.iter().map(|_| None).collect(),
        }
    }

    /// The state of point `id` in the old layout.
    fn legacy_status(&self, id: &str) -> Status {
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

    /// The summary of a finished point of the old layout (from its run.json).
    fn legacy_summary(&self, id: &str) -> Result<Map<String, Value>> {
        let path = self.point_dir(id).join("run.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        Ok(doc["summary"].as_object().cloned().unwrap_or_default())
    }

    /// Build the sweep.json record of `spec` from its points' records (see
    /// [`PointRecord::of`]) with every point's state from `index`.
    pub fn record_from_spec(
        &self,
        spec: &SweepSpec,
        spec_file: &str,
        points: Vec<PointRecord>,
        index: &Index,
    ) -> SweepRecord {
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
            points,
        };
        self.refresh(&mut rec, index);
        rec
    }

    /// Set every point's state in the record from `index` (status, error, wall time, counts).
    pub fn refresh(&self, rec: &mut SweepRecord, index: &Index) {
        let mut c = Counts {
            total: rec.points.len(),
            ..Default::default()
        };
        for p in &mut rec.points {
            let st = index.status(&p.id);
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

    /// Write sweep.json atomically (streamed to a temporary file, synced, renamed: no copy
    /// of the text in memory, which at 10⁶ points would be ~300 MB).
    pub fn write_record(&self, rec: &SweepRecord) -> Result<()> {
        use std::io::Write;
        let path = self.root.join("sweep.json");
        // Unique among the tasks of an array, on any node of a shared file system.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = self
            .root
            .join(format!(".sweep.json.tmp-{}-{nanos}", std::process::id()));
        let result = (|| -> Result<()> {
            let f = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .with_context(|| format!("cannot create `{}`", tmp.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
            serde_json::to_writer_pretty(&mut w, rec).context("serialising sweep.json")?;
            w.flush()
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
            let f = w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("cannot write `{}`: {}", tmp.display(), e.error()))?;
            f.sync_all()
                .with_context(|| format!("cannot sync `{}`", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot replace `{}`", path.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// sweep.json as written by a shard of a job array: the plan only — the spec and every
    /// point as `missing` — so that every task of the array writes the same bytes, and only
    /// when there is no sweep.json of this spec yet (one written by an earlier task, a
    /// merge or a local run is left alone). Tasks therefore never race on its content:
    /// whichever atomic rename comes last writes what the others would have. Point states
    /// are `featlab sweep merge`'s to write (it reads them from the shard files).
    /// (`rec` is left with every point `missing`; refresh it to use its states.)
    pub fn write_plan_once(&self, rec: &mut SweepRecord) -> Result<bool> {
        let path = self.root.join("sweep.json");
        if let Ok(f) = std::fs::File::open(&path) {
            let head: Option<RecordHeader> =
                serde_json::from_reader(std::io::BufReader::new(f)).ok();
            if head.is_some_and(|h| {
                h.spec_text == rec.spec_text
                    && h.spec_file == rec.spec_file
                    && h.featlab_version == rec.featlab_version
                    && h.counts.total == rec.points.len()
            }) {
                return Ok(false);
            }
        }
        self.refresh(rec, &Index::default());
        self.write_record(rec)?;
        Ok(true)
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

    /// The varied values of a recorded point as `(key, value)` in `varied` order.
    pub fn overrides(rec: &SweepRecord, p: &PointRecord) -> Vec<(String, toml::Value)> {
        rec.varied
            .iter()
            .filter_map(|k| p.overrides.get(k).map(|v| (k.clone(), json_to_toml(v))))
            .collect()
    }

    /// The row of results.csv of point `p` (its summary read through `reader`).
    pub fn row(
        rec: &SweepRecord,
        p: &PointRecord,
        reader: &mut SummaryReader<'_>,
    ) -> Result<ResultRow> {
        let summary = if p.status == "done" {
            reader.summary(&p.id)?
        } else {
            None
        };
        Ok(ResultRow {
            id: p.id.clone(),
            status: p.status.clone(),
            seed: p.seed,
            overrides: Self::overrides(rec, p),
            summary,
        })
    }

    /// Ids recorded in the directory that are not points of this record (an earlier spec).
    pub fn orphans(&self, rec: &SweepRecord, index: &Index) -> Vec<String> {
        let ids: std::collections::HashSet<&str> =
            rec.points.iter().map(|p| p.id.as_str()).collect();
        let mut v: Vec<String> = index
            .entries
            .keys()
            .filter(|n| !ids.contains(n.as_str()))
            .cloned()
            .collect();
        v.sort();
        v
    }
}
