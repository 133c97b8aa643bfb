//! Merging a sweep's shard files into `results.csv` (and `results.parquet`), streaming.
//!
//! Two passes over the points in expansion order: the first collects the summary columns
//! (the union over finished points, in first-seen order, as [`featlab::sweep::results`]
//! defines them), the second writes one row per point. Each pass holds one summary at a
//! time, so memory is bounded by the index of point locations, not by the results.

use super::store::{SweepDir, SweepRecord};
use anyhow::{Context, Result};
use featlab::sweep::results::{csv_header, csv_row, flatten_summary};
use std::io::Write;
use std::path::PathBuf;

/// Files written by [`write_tables`].
#[derive(Debug)]
pub struct Tables {
    pub csv: PathBuf,
}

/// Write `results.csv` for the points of `rec` from the records indexed in `index`.
pub fn write_tables(
    dir: &SweepDir,
    rec: &SweepRecord,
    index: &super::store::Index,
) -> Result<Tables> {
    // Pass 1: columns.
    let mut cols: Vec<String> = Vec::new();
    let mut known = std::collections::HashSet::new();
    let mut reader = dir.summaries(index);
    for p in rec.points.iter().filter(|p| p.status == "done") {
        if let Some(s) = reader.summary(&p.id)? {
            for (k, _) in flatten_summary(&s) {
                if !known.contains(&k) {
                    known.insert(k.clone());
                    cols.push(k);
                }
            }
        }
    }
    // Pass 2: rows.
    let path = dir.root.join("results.csv");
    let tmp = dir
        .root
        .join(format!(".results.csv.tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp)
        .with_context(|| format!("cannot create `{}`", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
    w.write_all(csv_header(&rec.varied, &cols).as_bytes())?;
    let mut reader = dir.summaries(index);
    for p in &rec.points {
        let row = SweepDir::row(rec, p, &mut reader)?;
        let flat = row
            .summary
            .as_ref()
            .map(flatten_summary)
            .unwrap_or_default();
        w.write_all(csv_row(&rec.varied, &cols, &row, &flat).as_bytes())?;
    }
    let file = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {}", tmp.display(), e.error()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot move `{}` to `{}`", tmp.display(), path.display()))?;
    Ok(Tables { csv: path })
}
