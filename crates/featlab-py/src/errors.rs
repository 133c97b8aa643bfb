//! featlab errors as Python exceptions, with the CLI's messages.
//!
//! | `featlab::Error` | Python exception |
//! |---|---|
//! | `Config`, `Toml`, `Shape`, `Data` | `ValueError` |
//! | `Io` (file missing) | `FileNotFoundError` (`PermissionError`, `OSError` for other failures) |
//! | `Diverged` | `featlab.DivergenceError` (a `RuntimeError`) |
//! | `Numerical` | `RuntimeError` |
//! | `Interrupted` | `KeyboardInterrupt` |
//!
//! The message is the CLI's `error: …` line without the `error: ` prefix (the whole
//! context chain, `{:#}`).

use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::PyErr;
use std::io::ErrorKind;

create_exception!(
    featlab,
    DivergenceError,
    PyRuntimeError,
    "Training produced a non-finite loss or parameter (the runner checks both after every step). \
The message names the step, the time t and a hint (usually: lower the learning rate)."
);

/// The Python exception for a library error, with message `msg`.
fn map(e: &featlab::Error, msg: String) -> PyErr {
    use featlab::Error as E;
    match e {
        E::Config { .. } | E::Toml { .. } | E::Shape(_) | E::Data { .. } => {
            PyValueError::new_err(msg)
        }
        E::Io { source, .. } => io_map(source.kind(), msg),
        E::Diverged { .. } => DivergenceError::new_err(msg),
        E::Numerical(_) => PyRuntimeError::new_err(msg),
        E::Interrupted => PyKeyboardInterrupt::new_err(msg),
    }
}

fn io_map(kind: ErrorKind, msg: String) -> PyErr {
    match kind {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// A library error as a Python exception.
pub fn lib_err(e: featlab::Error) -> PyErr {
    let msg = e.to_string();
    map(&e, msg)
}

/// An error with context (as the CLI reports it) as a Python exception: the type comes from
/// the innermost featlab or I/O error of the chain, `ValueError` when there is none (e.g.
/// "neither a config file nor a preset").
pub fn anyhow_err(e: anyhow::Error) -> PyErr {
    let msg = featlab_output::error_message(&e);
    for cause in e.chain() {
        if let Some(fe) = cause.downcast_ref::<featlab::Error>() {
            return map(fe, msg);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io_map(io.kind(), msg);
        }
    }
    PyValueError::new_err(msg)
}
