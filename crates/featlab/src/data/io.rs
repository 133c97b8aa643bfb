//! File formats (temporary minimal writer; the full reader/writer lands from branch `io`).

use crate::{Error, NdArray, Result};
use std::io::Write;
use std::path::Path;

/// Write bytes atomically (temp file + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
}

/// NPY v1.0 bytes.
pub fn npy_bytes(a: &NdArray) -> Vec<u8> {
    let shape = match a.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", a.shape[0]),
        _ => format!("({})", a.shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in &a.data {
        out.extend(v.to_le_bytes());
    }
    out
}

/// Write an `.npy` file atomically.
pub fn write_npy(path: &Path, a: &NdArray) -> Result<()> {
    write_atomic(path, &npy_bytes(a))
}

/// CSV table bytes.
pub fn csv_table_bytes(columns: &[(&str, &[f64])]) -> Result<Vec<u8>> {
    let n = columns.first().map(|c| c.1.len()).unwrap_or(0);
    let mut s = columns.iter().map(|c| c.0).collect::<Vec<_>>().join(",");
    s.push('\n');
    for i in 0..n {
        let row: Vec<String> = columns.iter().map(|c| format!("{}", c.1[i])).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    Ok(s.into_bytes())
}

/// Write a CSV table atomically.
pub fn write_csv_table(path: &Path, columns: &[(&str, &[f64])]) -> Result<()> {
    write_atomic(path, &csv_table_bytes(columns)?)
}

/// Read `.npy`.
pub fn read_npy(path: &Path) -> Result<NdArray> {
    Err(Error::data(path, "npy reading not available yet"))
}

/// Read CSV.
pub fn read_csv(path: &Path) -> Result<(Option<Vec<String>>, NdArray)> {
    Err(Error::data(path, "csv reading not available yet"))
}
