//! `featlab.load_run`: read a run directory written by `featlab run`, a sweep or
//! `featlab.run(..., out=DIR)` back into the same dict `featlab.run` returns.

use crate::convert::{columns_dict, columns_of, ndarray_to_py};
use crate::errors::lib_err;
use featlab::data::io::{read_csv_with, read_npy, CsvHeader, CsvOptions};
use featlab::Error;
use pyo3::exceptions::PyFileNotFoundError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

/// `.npy` files under `dir`, as sorted relative paths with `/` separators.
fn npy_files(dir: &Path, rel: &str, found: &mut Vec<String>) -> featlab::Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().to_string();
        let sub = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = e.path();
        if path.is_dir() {
            npy_files(&path, &sub, found)?;
        } else if name.ends_with(".npy") {
            found.push(sub);
        }
    }
    Ok(())
}

/// A CSV table with a header row as (column names, columns); an empty file is an empty table.
fn read_table(path: &Path) -> featlab::Result<(Vec<String>, Vec<Vec<f64>>)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if meta.len() == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let opts = CsvOptions {
        header: CsvHeader::Present,
        ..CsvOptions::default()
    };
    let (header, a) = read_csv_with(path, &opts)?;
    let names = header.unwrap_or_default();
    let (n, k) = a.rows_cols();
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| a.data[i * k..(i + 1) * k].to_vec())
        .collect();
    Ok((names, columns_of(&rows, k)))
}

/// Low-level `featlab.load_run` (the Python wrapper builds the `Run` object).
#[pyfunction]
pub fn load_run(py: Python<'_>, dir: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    if !dir.is_dir() {
        return Err(PyFileNotFoundError::new_err(format!(
            "no run directory `{}` (expected the --out directory of `featlab run`, with run.json inside)",
            dir.display()
        )));
    }
    let run_json_path = dir.join("run.json");
    let loaded = py.detach(|| -> featlab::Result<_> {
        let text = std::fs::read_to_string(&run_json_path)
            .map_err(|e| Error::io("read", &run_json_path, e))?;
        let traj = read_table(&dir.join("trajectory.csv"))?;
        let mut rels = Vec::new();
        npy_files(&dir, "", &mut rels)?;
        let arrays = rels
            .into_iter()
            .map(|rel| read_npy(&dir.join(&rel)).map(|a| (rel, a)))
            .collect::<featlab::Result<Vec<_>>>()?;
        let mut tables = Vec::new();
        let mut csvs: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io("read directory", &dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "csv")
                    && p.file_name().is_some_and(|n| n != "trajectory.csv")
            })
            .collect();
        csvs.sort();
        for p in csvs {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            tables.push((name, read_table(&p)?));
        }
        Ok((text, traj, arrays, tables))
    });
    let (text, (traj_names, traj_cols), arrays, tables) = loaded.map_err(lib_err)?;
    let d = PyDict::new(py);
    d.set_item("run_json", text)?;
    d.set_item("trajectory", columns_dict(py, &traj_names, traj_cols)?)?;
    let a = PyDict::new(py);
    for (rel, arr) in arrays {
        a.set_item(rel, ndarray_to_py(py, arr)?)?;
    }
    d.set_item("arrays", a)?;
    let t = PyDict::new(py);
    for (name, (names, cols)) in tables {
        t.set_item(name, columns_dict(py, &names, cols)?)?;
    }
    d.set_item("tables", t)?;
    d.set_item("out", dir)?;
    Ok(d)
}
