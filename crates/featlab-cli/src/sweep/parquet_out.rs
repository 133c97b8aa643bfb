//! `results.parquet`: the merged table in columnar form, written row group by row group
//! with the `parquet` crate's low-level column writers (no Arrow).
//!
//! Columns: `id`, `status` (strings), `seed` (int64, unless varied), each varied key typed
//! by its values (all integers → int64, numbers → double, booleans → boolean, else string),
//! then every scalar summary column of results.csv typed the same way over the finished
//! points (mixed kinds → string holding the CSV cell). Every column but `id`/`status` is
//! optional: null where results.csv has an empty cell. Uncompressed, dictionary-encoded.

use anyhow::{Context, Result};
use parquet::basic::{LogicalType, Repetition, Type as Physical};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// Rows buffered per row group (bounds memory at ~ROW_GROUP × columns × 8 bytes + strings).
pub const ROW_GROUP: usize = 65536;

/// The type of one column, decided from all its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No value seen yet (written as an all-null double column).
    Unknown,
    Int,
    Float,
    Bool,
    Str,
}

impl Kind {
    /// The kind after also seeing `v` (null leaves it unchanged).
    pub fn with(self, v: &Value) -> Kind {
        let k = match v {
            Value::Null => return self,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(_) => Kind::Float,
            _ => Kind::Str,
        };
        match (self, k) {
            (Kind::Unknown, k) => k,
            (a, b) if a == b => a,
            (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
            _ => Kind::Str,
        }
    }
}

/// One cell.
#[derive(Debug, Clone)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Cell {
    /// A JSON scalar as a cell of a column of `kind` (`csv` = its results.csv text).
    pub fn of(v: &Value, kind: Kind, csv: &str) -> Cell {
        match (kind, v) {
            (_, Value::Null) => Cell::Null,
            (Kind::Int, Value::Number(n)) => n.as_i64().map(Cell::Int).unwrap_or(Cell::Null),
            (Kind::Float, Value::Number(n)) => n.as_f64().map(Cell::Float).unwrap_or(Cell::Null),
            (Kind::Bool, Value::Bool(b)) => Cell::Bool(*b),
            (Kind::Str, Value::String(s)) => Cell::Str(s.clone()),
            (Kind::Str, _) => Cell::Str(csv.to_string()),
            _ => Cell::Null,
        }
    }
}

/// A streaming writer of a table with fixed columns.
pub struct TableWriter {
    kinds: Vec<Kind>,
    required: Vec<bool>,
    buf: Vec<Vec<Cell>>,
    rows: usize,
    writer: SerializedFileWriter<std::io::BufWriter<std::fs::File>>,
}

impl TableWriter {
    /// Create `path` with columns `(name, kind, required)`.
    pub fn create(path: &Path, cols: &[(String, Kind, bool)]) -> Result<TableWriter> {
        let fields = cols
            .iter()
            .map(|(name, kind, required)| {
                let (phys, logical) = match kind {
                    Kind::Int => (Physical::INT64, None),
                    Kind::Float | Kind::Unknown => (Physical::DOUBLE, None),
                    Kind::Bool => (Physical::BOOLEAN, None),
                    Kind::Str => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                };
                Type::primitive_type_builder(name, phys)
                    .with_repetition(if *required {
                        Repetition::REQUIRED
                    } else {
                        Repetition::OPTIONAL
                    })
                    .with_logical_type(logical)
                    .build()
                    .map(Arc::new)
            })
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        let schema = Arc::new(
            Type::group_type_builder("featlab_sweep")
                .with_fields(fields)
                .build()?,
        );
        let props = Arc::new(WriterProperties::builder().build());
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        let writer = SerializedFileWriter::new(
            std::io::BufWriter::with_capacity(1 << 16, file),
            schema,
            props,
        )?;
        Ok(TableWriter {
            kinds: cols.iter().map(|c| c.1).collect(),
            required: cols.iter().map(|c| c.2).collect(),
            buf: cols.iter().map(|_| Vec::with_capacity(1024)).collect(),
            rows: 0,
            writer,
        })
    }

    /// Append one row (one cell per column).
    pub fn push(&mut self, row: Vec<Cell>) -> Result<()> {
        debug_assert_eq!(row.len(), self.buf.len());
        for (b, c) in self.buf.iter_mut().zip(row) {
            b.push(c);
        }
        self.rows += 1;
        if self.rows == ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut rg = self.writer.next_row_group()?;
        let mut j = 0;
        while let Some(mut col) = rg.next_column()? {
            let cells = std::mem::take(&mut self.buf[j]);
            let defs: Vec<i16> = cells
                .iter()
                .map(|c| i16::from(!matches!(c, Cell::Null)))
                .collect();
            let defs = (!self.required[j]).then_some(defs.as_slice());
            match self.kinds[j] {
                Kind::Int => {
                    let v: Vec<i64> = cells
                        .iter()
                        .filter_map(|c| match c {
                            Cell::Int(i) => Some(*i),
                            _ => None,
                        })
                        .collect();
                    col.typed::<Int64Type>().write_batch(&v, defs, None)?;
                }
                Kind::Float | Kind::Unknown => {
                    let v: Vec<f64> = cells
                        .iter()
                        .filter_map(|c| match c {
                            Cell::Float(f) => Some(*f),
                            _ => None,
                        })
                        .collect();
                    col.typed::<DoubleType>().write_batch(&v, defs, None)?;
                }
                Kind::Bool => {
                    let v: Vec<bool> = cells
                        .iter()
                        .filter_map(|c| match c {
                            Cell::Bool(b) => Some(*b),
                            _ => None,
                        })
                        .collect();
                    col.typed::<BoolType>().write_batch(&v, defs, None)?;
                }
                Kind::Str => {
                    let v: Vec<ByteArray> = cells
                        .into_iter()
                        .filter_map(|c| match c {
                            Cell::Str(s) => Some(ByteArray::from(s.into_bytes())),
                            _ => None,
                        })
                        .collect();
                    col.typed::<ByteArrayType>().write_batch(&v, defs, None)?;
                }
            }
            col.close()?;
            self.buf[j] = Vec::with_capacity(1024);
            j += 1;
        }
        rg.close()?;
        self.rows = 0;
        Ok(())
    }

    /// Write the last row group and the footer; sync the file.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        let w = self.writer.into_inner()?;
        let f = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write results.parquet: {}", e.error()))?;
        f.sync_all()?;
        Ok(())
    }
}
