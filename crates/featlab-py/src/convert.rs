//! Conversions between Python objects and featlab's types: Python values → TOML config
//! values, `NdArray`/columns → numpy arrays.

use featlab::NdArray;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A Python value as a TOML value: `bool` → boolean, `int` → integer (64-bit), `float` →
/// float, `str` → string, `list`/`tuple` → array, `dict` (string keys) → table; numpy
/// scalars and arrays go through their `tolist()`. `key` names the value in errors.
pub fn py_to_toml(v: &Bound<'_, PyAny>, key: &str) -> PyResult<toml::Value> {
    if v.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        return v.extract::<i64>().map(toml::Value::Integer).map_err(|_| {
            PyValueError::new_err(format!(
                "invalid configuration at `{key}`: integer {v} does not fit in 64 bits"
            ))
        });
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(v.extract()?));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(toml::Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return Ok(toml::Value::Table(py_dict_to_table(d, key)?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in v.try_iter()?.enumerate() {
            items.push(py_to_toml(&item?, &format!("{key}[{i}]"))?);
        }
        return Ok(toml::Value::Array(items));
    }
    if v.is_none() {
        return Err(PyTypeError::new_err(format!(
            "invalid configuration at `{key}`: None is not a config value (TOML has no null); leave the key out to get its default"
        )));
    }
    if v.hasattr("tolist")? {
        // numpy scalars (np.float64 is already a float; np.int64, np.bool_ are not) and arrays
        return py_to_toml(&v.call_method0("tolist")?, key);
    }
    Err(PyTypeError::new_err(format!(
        "invalid configuration at `{key}`: cannot use a `{}` as a config value (use bool, int, float, str, list or dict)",
        v.get_type().name()?
    )))
}

/// A Python dict with string keys as a TOML table (`prefix` names it in errors).
pub fn py_dict_to_table(d: &Bound<'_, PyDict>, prefix: &str) -> PyResult<toml::Table> {
    let mut t = toml::Table::new();
    for (k, v) in d.iter() {
        let k: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "invalid configuration at `{}`: table keys must be strings, got {k:?}",
                if prefix.is_empty() {
                    "(top level)"
                } else {
                    prefix
                }
            ))
        })?;
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        t.insert(k, py_to_toml(&v, &path)?);
    }
    Ok(t)
}

/// An `NdArray` as a numpy float64 array of the same shape (C order), moving the data.
pub fn ndarray_to_py<'py>(py: Python<'py>, a: NdArray) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, a.data);
    Ok(flat.reshape(a.shape.as_slice())?.into_any())
}

/// Columns of a row-major table: `rows[i][j]` → `cols[j][i]`.
pub fn columns_of(rows: &[Vec<f64>], ncols: usize) -> Vec<Vec<f64>> {
    (0..ncols)
        .map(|j| rows.iter().map(|r| r[j]).collect())
        .collect()
}

/// A dict of named 1-D float64 arrays, in the given order.
pub fn columns_dict<'py>(
    py: Python<'py>,
    names: &[String],
    cols: Vec<Vec<f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, col) in names.iter().zip(cols) {
        d.set_item(name, PyArray1::from_vec(py, col))?;
    }
    Ok(d)
}
