//! `featlab.run`: the CLI's `featlab run` from Python. The experiment runs with the GIL
//! released ([`detached`]: on the calling thread, or on a persistent pool for `threads` > 1);
//! Ctrl-C stops it before the next step and raises `KeyboardInterrupt`.

use crate::convert::{columns_dict, columns_of, ndarray_to_py, py_dict_to_table, py_to_toml};
use crate::errors::{anyhow_err, lib_err};
use crate::job::detached;
use featlab::config::apply_set;
use featlab::experiments::{select, RunOutput};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::PathBuf;
use std::time::Instant;

/// The config table and its label (file stem, preset name, or `dict`) for `featlab.run`'s
/// first argument.
fn load_table(config: &Bound<'_, PyAny>) -> PyResult<(toml::Table, String, String)> {
    if let Ok(s) = config.cast::<PyString>() {
        let spec = s.to_cow()?.into_owned();
        let (table, label) = featlab::presets::load(&spec).map_err(lib_err)?;
        Ok((table, label, spec))
    } else if let Ok(d) = config.cast::<PyDict>() {
        Ok((py_dict_to_table(d, "")?, "dict".into(), "dict".into()))
    } else {
        Err(PyTypeError::new_err(format!(
            "featlab.run: the config must be a preset name, a path to a TOML file or a dict, got a `{}`",
            config.get_type().name()?
        )))
    }
}

/// Apply `overrides` (dotted key → Python value) exactly as the CLI applies
/// `--set key=value`: the value is written as a TOML literal and parsed back.
fn apply_overrides(table: &mut toml::Table, overrides: &Bound<'_, PyDict>) -> PyResult<()> {
    for (k, v) in overrides.iter() {
        let key: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "featlab.run: override keys must be dotted key strings like \"model.width\", got {k:?}"
            ))
        })?;
        let value = py_to_toml(&v, &key)?;
        let assignment = format!("{key}={value}");
        apply_set(table, &assignment).map_err(|e| {
            anyhow_err(anyhow::Error::new(e).context(format!("in override {assignment}")))
        })?;
    }
    Ok(())
}

/// Everything a finished run hands back to Python.
struct Finished {
    out: RunOutput,
    wall: f64,
}

/// Low-level `featlab.run` (the Python wrapper builds the `Run` object): resolve the config
/// like `featlab run`, run it, optionally write the CLI's output directory, and return a
/// dict with `run_json` (the text of run.json), `trajectory` (column → 1-D array),
/// `arrays` (relative path → array), `tables` (name → column → array) and `out`.
#[pyfunction]
#[pyo3(signature = (config, overrides=None, out=None, seed=None, threads=1, png=true, progress=None, quick=false))]
#[allow(clippy::too_many_arguments)]
pub fn run<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    overrides: Option<&Bound<'py, PyDict>>,
    out: Option<PathBuf>,
    seed: Option<u64>,
    threads: usize,
    png: bool,
    progress: Option<Bound<'py, PyAny>>,
    quick: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (table, preset, spec) = load_table(config)?;
    let mut table = featlab::config::prepare(table, quick)
        .map_err(|e| anyhow_err(anyhow::Error::new(e).context(format!("in config `{spec}`"))))?;
    if let Some(o) = overrides {
        apply_overrides(&mut table, o)?;
    }
    if let Some(seed) = seed {
        table.insert("seed".into(), toml::Value::Integer(seed as i64));
    }
    let exp = select(&table).map_err(lib_err)?;
    let resolved = exp
        .resolve(&table)
        .map_err(|e| anyhow_err(anyhow::Error::new(e).context(format!("in config `{spec}`"))))?;
    let Finished { out: output, wall } = detached(py, threads, progress, |ctx| {
        let start = Instant::now();
        let out = exp.run(&resolved, ctx)?;
        Ok(Finished {
            out,
            wall: start.elapsed().as_secs_f64(),
        })
    })?;
    if let Some(dir) = &out {
        py.detach(|| {
            featlab_output::write::write_all(dir, &output, &preset, exp.name(), wall, png)
        })
        .map_err(anyhow_err)?;
    }
    let doc = featlab::output::run_json(&output, &preset, exp.name(), wall);
    result_dict(
        py,
        serde_json::to_string(&doc).map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
        output,
        out,
    )
}

/// The dict handed to the Python `Run` constructor.
fn result_dict<'py>(
    py: Python<'py>,
    run_json: String,
    output: RunOutput,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("run_json", run_json)?;
    let traj = output.trajectory;
    let cols = columns_of(&traj.rows, traj.columns.len());
    d.set_item("trajectory", columns_dict(py, &traj.columns, cols)?)?;
    let arrays = PyDict::new(py);
    for (rel, a) in output.arrays {
        arrays.set_item(rel, ndarray_to_py(py, a)?)?;
    }
    d.set_item("arrays", arrays)?;
    let tables = PyDict::new(py);
    for t in output.tables {
        tables.set_item(&t.name, columns_dict(py, &t.columns, t.values)?)?;
    }
    d.set_item("tables", tables)?;
    d.set_item("out", out)?;
    Ok(d)
}
