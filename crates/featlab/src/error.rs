//! Typed errors of the featlab library.
//!
//! Every failure a user can cause (bad config, bad file, impossible shape, diverging
//! training) is a variant here with enough context to print one clear paragraph at the
//! edge (the CLI or the Python bindings). Panics are reserved for documented contract
//! violations inside kernels (shape asserts), never for user input.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// All errors the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is missing, malformed, out of range or unknown.
    /// `key` is the dotted path of the offending key (e.g. `model.width`).
    #[error("invalid configuration at `{key}`: {msg}")]
    Config { key: String, msg: String },

    /// A TOML document could not be parsed.
    #[error("cannot parse {origin}: {msg}")]
    Toml { origin: String, msg: String },

    /// Array shapes that do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// A file could not be read or written.
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A data file was read but its content is not valid for its format.
    #[error("bad data file `{path}`: {msg}")]
    Data { path: PathBuf, msg: String },

    /// Training produced a non-finite loss or parameter.
    #[error("training diverged at step {step} (t = {t:.6e}): {what} became non-finite. {hint}")]
    Diverged {
        step: u64,
        t: f64,
        what: String,
        hint: String,
    },

    /// A numerical routine failed (e.g. an eigendecomposition did not converge, an ODE
    /// step size underflowed).
    #[error("numerical failure: {0}")]
    Numerical(String),

    /// The run was interrupted by the user (Ctrl-C / KeyboardInterrupt).
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            msg: msg.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Data`].
    pub fn data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
