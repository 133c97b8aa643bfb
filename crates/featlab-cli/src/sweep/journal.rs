//! The results file of one shard: append-only JSON Lines, one complete record per point,
//! plus the shard's artifact file (the bytes of kept `.npy` arrays and SVG figures).
//!
//! A record is one line `{"id", "index", "status", "seed", "wall_seconds", "summary",
//! "trajectory"?, "tables"?, "artifacts"?, "error"?, "config"?}` ended by `\n`. A point is
//! done when its line is complete. Every record is handed to the kernel with a single
//! `write` as soon as the point finishes (its artifacts first, appended to `<shard>.bin`
//! and referenced as `artifacts: [{name, offset, len}]`), so a killed process loses at
//! most the line being written. Both files are `fdatasync`ed (`.bin` first) at most
//! [`SYNC_INTERVAL`] apart and when the shard stops — group commit: one sync per point
//! cost ~4 ms here, 10× a small point's training — so a machine crash loses at most the
//! last second of points, which are then recomputed. A point counts as done only once the
//! sync covering its record has returned ([`Journal::append`] and [`Journal::sync_pending`]
//! return how many records became durable; the sweep reports no other).
//!
//! After a SIGKILL or a crash the last line may be torn (no final `\n`, or not valid JSON).
//! Readers ignore it; [`Journal::open`] cuts it off (and the artifact bytes no complete
//! record references; after a machine crash also the records whose artifacts did not reach
//! the disk) before appending, so those points are recomputed and recorded once.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest time between two `fdatasync`s of a shard's files while points are appended.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Where one artifact lives in the shard's `.bin` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactRef {
    /// Relative name as in a run directory (`params/final/W1.npy`, `plots/loss.svg`).
    pub name: String,
    /// Byte offset in the `.bin` file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// One point's record (a line of the shard file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub id: String,
    /// Expansion index when it ran (informational: ids, not indices, identify points).
    pub index: usize,
    /// `done` or `failed`.
    pub status: String,
    pub seed: u64,
    pub wall_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run's summary (done points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Map<String, Value>>,
    /// `{"columns": [...], "values": [[column 0], [column 1], …]}` when kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<Value>,
    /// Extra tables of the experiment, `{name: {"columns", "values"}}`, kept with the trajectory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ArtifactRef>,
    /// The point's config (failed points, to reproduce the failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// The fields of a record needed to know a point's state (parsing skips the rest).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordHead {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub wall_seconds: Option<f64>,
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
}

/// The summary part of a record (for merging).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordSummary {
    pub id: String,
    #[serde(default)]
    pub summary: Option<Map<String, Value>>,
}

/// Shard file name stem: `shard-<i>-of-<n>`.
pub fn stem(shard: featlab::sweep::Shard) -> String {
    format!("shard-{}-of-{}", shard.index, shard.count)
}

/// The artifact file beside a shard file (`x.jsonl` → `x.bin`).
pub fn bin_path(jsonl: &Path) -> PathBuf {
    jsonl.with_extension("bin")
}

/// Call `f(offset, head)` for every complete record of `path` in file order; returns the
/// byte length of the complete part (a torn last line is not included) and the number of
/// lines ignored (torn or not valid JSON). A missing file has no records.
pub fn scan(path: &Path, mut f: impl FnMut(u64, RecordHead)) -> Result<(u64, usize)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    };
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut complete = 0u64;
    let mut ignored = 0;
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            ignored += 1; // torn: the writer was killed mid-line
            break;
        }
        match serde_json::from_slice::<RecordHead>(&line) {
            Ok(h) => {
                f(offset, h);
                complete = offset + n as u64;
            }
            Err(_) => ignored += 1,
        }
        offset += n as u64;
    }
    Ok((complete, ignored))
}

/// Random access to the records of one shard file: a buffered reader that moves within
/// its buffer when it can (records read in about file order cost no extra system calls).
pub struct RecordReader {
    r: BufReader<File>,
    path: PathBuf,
    /// File position of the reader's logical cursor.
    pos: u64,
    line: Vec<u8>,
}

impl RecordReader {
    /// Open `path`.
    pub fn open(path: &Path) -> Result<RecordReader> {
        let f = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        Ok(RecordReader {
            r: BufReader::with_capacity(1 << 16, f),
            path: path.to_path_buf(),
            pos: 0,
            line: Vec::with_capacity(4096),
        })
    }

    /// The record starting at byte `offset`, as `T`.
    pub fn read_at<T: serde::de::DeserializeOwned>(&mut self, offset: u64) -> Result<T> {
        if offset != self.pos {
            self.r
                .seek_relative(offset as i64 - self.pos as i64)
                .with_context(|| format!("cannot seek in `{}`", self.path.display()))?;
            self.pos = offset;
        }
        self.line.clear();
        let n = self
            .r
            .read_until(b'\n', &mut self.line)
            .with_context(|| format!("cannot read `{}`", self.path.display()))?;
        self.pos += n as u64;
        serde_json::from_slice(&self.line)
            .with_context(|| format!("bad record at byte {offset} of `{}`", self.path.display()))
    }
}

/// A shard's results file opened for appending.
pub struct Journal {
    path: PathBuf,
    lines: File,
    bin: Option<File>,
    bin_len: u64,
    last_sync: Instant,
    /// Records appended since the last sync (written, not yet durable).
    pending: usize,
}

/// What [`Journal::open`] found and repaired.
#[derive(Debug, Default, Clone, Copy)]
pub struct Repair {
    /// Bytes of a torn last record cut off.
    pub torn_bytes: u64,
    /// Artifact bytes no complete record referenced, cut off.
    pub orphan_artifact_bytes: u64,
    /// Complete records cut off because their artifacts were not all on disk (a machine
    /// crash between two syncs).
    pub records_without_artifacts: usize,
}

impl Journal {
    /// Open (creating) `path` for appending, cutting off a torn last record and any artifact
    /// bytes that no complete record references.
    pub fn open(path: &Path) -> Result<(Journal, Repair)> {
        let bin_path = bin_path(path);
        let bin_len = std::fs::metadata(&bin_path).map(|m| m.len()).unwrap_or(0);
        // Keep the records up to the first one whose artifacts are not all in the .bin.
        let mut complete = 0u64;
        let mut bin_needed = 0u64;
        let mut dropped = 0usize;
        let mut cut = false;
        let (scanned_complete, _) = scan(path, |offset, h| {
            if cut {
                dropped += 1;
                return;
            }
            let end = h
                .artifacts
                .iter()
                .map(|a| a.offset + a.len)
                .max()
                .unwrap_or(0);
            if end > bin_len {
                cut = true;
                dropped += 1;
                complete = offset;
                return;
            }
            bin_needed = bin_needed.max(end);
        })?;
        if !cut {
            complete = scanned_complete;
        }
        let lines = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open `{}` for writing", path.display()))?;
        let len = lines.metadata()?.len();
        let mut repair = Repair {
            records_without_artifacts: dropped,
            ..Repair::default()
        };
        if len > complete {
            lines
                .set_len(complete)
                .with_context(|| format!("cannot truncate `{}`", path.display()))?;
            lines.sync_all()?;
            if !cut {
                repair.torn_bytes = len - complete;
            }
        }
        let bin = if bin_len > 0 {
            let f = OpenOptions::new()
                .write(true)
                .open(&bin_path)
                .with_context(|| format!("cannot open `{}`", bin_path.display()))?;
            if bin_len > bin_needed {
                f.set_len(bin_needed)?;
                f.sync_all()?;
                repair.orphan_artifact_bytes = bin_len - bin_needed;
            }
            Some(f)
        } else {
            None
        };
        let mut j = Journal {
            path: path.to_path_buf(),
            lines,
            bin,
            bin_len: bin_needed,
            last_sync: Instant::now(),
            pending: 0,
        };
        j.lines.seek(SeekFrom::End(0))?;
        if let Some(b) = &mut j.bin {
            b.seek(SeekFrom::End(0))?;
        }
        Ok((j, repair))
    }

    /// `fdatasync` the artifact file, then the records.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(b) = &self.bin {
            b.sync_data()
                .with_context(|| format!("cannot sync `{}`", bin_path(&self.path).display()))?;
        }
        self.lines
            .sync_data()
            .with_context(|| format!("cannot sync `{}`", self.path.display()))?;
        self.last_sync = Instant::now();
        self.pending = 0;
        Ok(())
    }

    /// Sync if records are pending; the number of records made durable.
    pub fn sync_pending(&mut self) -> Result<usize> {
        let n = self.pending;
        if n > 0 {
            self.sync()?;
        }
        Ok(n)
    }

    /// Append one point: its artifacts, then its record line (one `write` each); sync both
    /// when the last sync is [`SYNC_INTERVAL`] old. Returns the number of records this call
    /// made durable (0 when the sync is not due yet): callers count a point as finished
    /// only once it is durable, never before.
    pub fn append(
        &mut self,
        mut rec: ShardRecord,
        artifacts: &[(String, Vec<u8>)],
    ) -> Result<usize> {
        if !artifacts.is_empty() {
            if self.bin.is_none() {
                let p = bin_path(&self.path);
                self.bin = Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .with_context(|| format!("cannot open `{}`", p.display()))?,
                );
            }
            let bin = self.bin.as_mut().expect("opened");
            let mut buf = Vec::new();
            for (name, bytes) in artifacts {
                rec.artifacts.push(ArtifactRef {
                    name: name.clone(),
                    offset: self.bin_len + buf.len() as u64,
                    len: bytes.len() as u64,
                });
                buf.extend_from_slice(bytes);
            }
            bin.write_all(&buf)
                .with_context(|| format!("cannot write `{}`", bin_path(&self.path).display()))?;
            self.bin_len += buf.len() as u64;
        }
        let mut line = serde_json::to_vec(&rec).context("serialising a point record")?;
        line.push(b'\n');
        self.lines
            .write_all(&line)
            .with_context(|| format!("cannot write `{}`", self.path.display()))?;
        self.pending += 1;
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            return self.sync_pending();
        }
        Ok(0)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.pending > 0 {
            let _ = self.sync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> ShardRecord {
        ShardRecord {
            id: id.into(),
            index: 0,
            status: "done".into(),
            seed: 1,
            wall_seconds: 0.5,
            error: None,
            summary: Some(
                serde_json::json!({"final_loss": 0.25})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            trajectory: None,
            tables: None,
            artifacts: Vec::new(),
            config: None,
        }
    }

    fn ids(path: &Path) -> Vec<String> {
        let mut v = Vec::new();
        scan(path, |_, h| v.push(h.id)).unwrap();
        v
    }

    #[test]
    fn torn_records_and_orphan_artifacts_are_cut_off() {
        let dir = std::env::temp_dir().join(format!("featlab-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shard-0-of-1.jsonl");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(bin_path(&path));
        let (mut j, rep) = Journal::open(&path).unwrap();
        assert_eq!(rep.torn_bytes, 0);
        // Group commit: appends within SYNC_INTERVAL report nothing durable yet; the sync
        // reports both records.
        let a = j
            .append(rec("a"), &[("params/final/W.npy".into(), vec![1, 2, 3])])
            .unwrap();
        let b = j
            .append(rec("b"), &[("params/final/W.npy".into(), vec![4, 5])])
            .unwrap();
        assert_eq!((a, b), (0, 0), "durable before the sync is due");
        assert_eq!(j.sync_pending().unwrap(), 2);
        assert_eq!(j.sync_pending().unwrap(), 0);
        drop(j);
        let full = std::fs::read(&path).unwrap();
        // Simulate a kill while writing point c: half its artifacts and half its line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(bin_path(&path))
            .unwrap();
        f.write_all(&[9, 9, 9, 9]).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"id":"c","index":2,"status":"do"#).unwrap();
        drop(f);
        assert_eq!(ids(&path), ["a", "b"], "readers ignore the torn line");
        let (complete, ignored) = scan(&path, |_, _| {}).unwrap();
        assert_eq!((complete, ignored), (full.len() as u64, 1));
        let (mut j, rep) = Journal::open(&path).unwrap();
        assert_eq!(rep.torn_bytes, 32);
        assert_eq!(rep.orphan_artifact_bytes, 4);
        assert_eq!(std::fs::read(&path).unwrap(), full);
        j.append(rec("c"), &[("params/final/W.npy".into(), vec![6])])
            .unwrap();
        drop(j);
        assert_eq!(ids(&path), ["a", "b", "c"], "c once, after a and b");
        assert_eq!(std::fs::read(bin_path(&path)).unwrap(), [1, 2, 3, 4, 5, 6]);
        let mut offsets = Vec::new();
        scan(&path, |o, h| offsets.push((o, h.artifacts))).unwrap();
        assert_eq!(offsets[2].1[0].offset, 5);
        // A machine crash that kept c's line but not its artifact byte: c is dropped.
        let bin = std::fs::read(bin_path(&path)).unwrap();
        std::fs::write(bin_path(&path), &bin[..5]).unwrap();
        let (j, rep) = Journal::open(&path).unwrap();
        drop(j);
        assert_eq!(rep.records_without_artifacts, 1);
        assert_eq!(ids(&path), ["a", "b"]);
        assert_eq!(std::fs::read(&path).unwrap(), full);
        let mut r = RecordReader::open(&path).unwrap();
        let s: RecordSummary = r.read_at(offsets[1].0).unwrap();
        assert_eq!(s.id, "b");
        let s: RecordSummary = r.read_at(offsets[0].0).unwrap();
        assert_eq!(s.id, "a");
        let s: RecordSummary = r.read_at(offsets[1].0).unwrap();
        assert_eq!(s.id, "b");
        assert_eq!(s.summary.unwrap()["final_loss"], 0.25);
        std::fs::remove_dir_all(&dir).ok();
    }
}
