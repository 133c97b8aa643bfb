//! Merging a sweep's shard files into `results.csv` and `results.parquet`, streaming.
//!
//! Two passes over the points in expansion order: the first collects the summary columns
//! (the union over finished points, in first-seen order, as [`featlab::sweep::results`]
//! defines them), the second writes one row per point. Each pass holds one summary at a
//! time, so memory is bounded by the index of point locations, not by the results.

use super::parquet_out::{Cell, Kind, TableWriter};
use super::store::{SweepDir, SweepRecord};
use anyhow::{Context, Result};
use featlab::sweep::results::{csv_header, csv_row, flatten_summary, json_cell, toml_cell};
use std::io::Write;
use std::path::PathBuf;

/// Files written by [`write_tables`].
#[derive(Debug)]
pub struct Tables {
    pub csv: PathBuf,
    pub parquet: PathBuf,
}

/// Write `results.csv` and `results.parquet` for the points of `rec` from the records indexed in `index`.
pub fn write_tables(
    dir: &SweepDir,
    rec: &SweepRecord,
    index: &super::store::Index,
) -> Result<Tables> {
    // Pass 1: columns.
    let mut cols: Vec<String> = Vec::new();
    let mut kinds: Vec<Kind> = Vec::new();
    let mut known = std::collections::HashMap::new();
    let mut reader = dir.summaries(index);
    for p in rec.points.iter().filter(|p| p.status == "done") {
        if let Some(s) = reader.summary(&p.id)? {
            for (k, v) in flatten_summary(&s) {
                let j = *known.entry(k.clone()).or_insert_with(|| {
                    cols.push(k);
                    kinds.push(Kind::Unknown);
                    cols.len() - 1
                });
                kinds[j] = kinds[j].with(&v);
            }
        }
    }
    let seed_varied = rec.varied.iter().any(|k| k == "seed");
    let varied_kinds: Vec<Kind> = rec
        .varied
        .iter()
        .map(|k| {
            rec.points
                .iter()
                .filter_map(|p| p.overrides.get(k))
                .fold(Kind::Unknown, |a, v| a.with(v))
        })
        .collect();
    let mut schema: Vec<(String, Kind, bool)> = vec![
        ("id".into(), Kind::Str, true),
        ("status".into(), Kind::Str, true),
    ];
    if !seed_varied {
        schema.push(("seed".into(), Kind::Int, true));
    }
    for (k, kind) in rec.varied.iter().zip(&varied_kinds) {
        schema.push((k.clone(), *kind, false));
    }
    for (k, kind) in cols.iter().zip(&kinds) {
        schema.push((k.clone(), *kind, false));
    }
    let pq_path = dir.root.join("results.parquet");
    let pq_tmp = dir
        .root
        .join(format!(".results.parquet.tmp-{}", std::process::id()));
    let mut pq = TableWriter::create(&pq_tmp, &schema)?;
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
        let mut cells = vec![Cell::Str(row.id.clone()), Cell::Str(row.status.clone())];
        if !seed_varied {
            cells.push(Cell::Int(row.seed as i64));
        }
        for (k, kind) in rec.varied.iter().zip(&varied_kinds) {
            cells.push(match p.overrides.get(k) {
                None => Cell::Null,
                Some(v) => {
                    let text = row
                        .overrides
                        .iter()
                        .find(|(o, _)| o == k)
                        .map(|(_, t)| toml_cell(t))
                        .unwrap_or_default();
                    Cell::of(v, *kind, &text)
                }
            });
        }
        let by_name: std::collections::HashMap<&str, &serde_json::Value> =
            flat.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for (c, kind) in cols.iter().zip(&kinds) {
            cells.push(match by_name.get(c.as_str()) {
                None => Cell::Null,
                Some(v) => Cell::of(v, *kind, &json_cell(v)),
            });
        }
        pq.push(cells)?;
    }
    pq.finish()?;
    std::fs::rename(&pq_tmp, &pq_path).with_context(|| {
        format!(
            "cannot move `{}` to `{}`",
            pq_tmp.display(),
            pq_path.display()
        )
    })?;
    let file = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {}", tmp.display(), e.error()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot move `{}` to `{}`", tmp.display(), path.display()))?;
    Ok(Tables {
        csv: path,
        parquet: pq_path,
    })
}
