//! The `[data]` table of a run config → a [`Dataset`].

use super::{generate, io, Dataset};
use crate::model::Activation;
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn default_true() -> bool {
    true
}
fn one() -> f64 {
    1.0
}

/// Teacher of a Gaussian-input dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Teacher {
    /// `y = B x`, B (outputs × d) with the given singular values and random singular vectors.
    Linear {
        /// Singular values of B, e.g. `[4, 2, 1, 0.5]` for a four-step staircase.
        singular_values: Vec<f64>,
        /// Number of outputs c (≥ number of singular values).
        outputs: usize,
    },
    /// `y = Σ_k strengths[k] · link(θ_k·x)` with orthonormal θ_k (single-/multi-index).
    Index {
        link: Activation,
        strengths: Vec<f64>,
    },
}

/// The `[data]` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataConfig {
    /// n samples x ~ N(0, I_d) (optionally exactly whitened), targets from a teacher plus
    /// Gaussian noise of std `noise`.
    Gaussian {
        n: usize,
        d: usize,
        #[serde(default = "default_true")]
        whiten: bool,
        teacher: Teacher,
        #[serde(default)]
        noise: f64,
    },
    /// Scalar inputs x ~ N(0, input_std²) and targets y = slope·x + noise (the exact 1-D
    /// solution needs only E[x²] and E[xy]).
    OneD {
        n: usize,
        #[serde(default = "one")]
        input_std: f64,
        slope: f64,
        #[serde(default)]
        noise: f64,
    },
    /// Inputs and targets from files (`.npy` or `.csv`); a 1-D target becomes one column.
    Files { x: PathBuf, y: PathBuf },
}

impl DataConfig {
    /// Generate or load the dataset.
    pub fn build(&self, rng: &mut Rng) -> Result<Dataset> {
        match self {
            DataConfig::Gaussian {
                n,
                d,
                whiten,
                teacher,
                noise,
            } => {
                if *n == 0 || *d == 0 {
                    return Err(Error::config(
                        "data.n",
                        format!("n and d must be ≥ 1 (n = {n}, d = {d})"),
                    ));
                }
                if !(noise.is_finite() && *noise >= 0.0) {
                    return Err(Error::config(
                        "data.noise",
                        format!("must be a finite number ≥ 0, got {noise}"),
                    ));
                }
                let mut x = generate::gaussian_inputs(rng, *n, *d);
                if *whiten {
                    x = generate::whiten(&x)?;
                }
                match teacher {
                    Teacher::Linear {
                        singular_values,
                        outputs,
                    } => {
                        if *outputs == 0 {
                            return Err(Error::config("data.teacher.outputs", "must be ≥ 1"));
                        }
                        let b = generate::teacher_matrix(rng, *outputs, *d, singular_values)?;
                        generate::linear_teacher(x, &b, *noise, rng)
                    }
                    Teacher::Index { link, strengths } => {
                        Ok(generate::index_teacher(x, *link, strengths, *noise, rng)?.0)
                    }
                }
            }
            DataConfig::OneD {
                n,
                input_std,
                slope,
                noise,
            } => {
                if *n == 0 {
                    return Err(Error::config("data.n", "must be ≥ 1"));
                }
                let xs = crate::rng::normal_vec(rng, *n, *input_std);
                let e = crate::rng::normal_vec(rng, *n, *noise);
                let x = faer::Mat::from_fn(*n, 1, |i, _| xs[i]);
                let y = faer::Mat::from_fn(*n, 1, |i, _| slope * xs[i] + e[i]);
                Dataset::new(x, y)
            }
            DataConfig::Files { x, y } => {
                let xa = read_array(x)?;
                let ya = read_array(y)?;
                let (xm, ym) = (xa.to_mat(), ya.to_mat());
                if xm.nrows() != ym.nrows() {
                    return Err(Error::Shape(format!(
                        "`{}` has {} samples (rows) but `{}` has {}",
                        x.display(),
                        xm.nrows(),
                        y.display(),
                        ym.nrows()
                    )));
                }
                Dataset::new(xm, ym)
            }
        }
    }
}

/// Read an array from `.npy` or `.csv` (chosen by extension).
pub fn read_array(path: &std::path::Path) -> Result<crate::NdArray> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
    {
        Some(e) if e == "npy" => io::read_npy(path),
        Some(e) if e == "csv" => Ok(io::read_csv(path)?.1),
        _ => Err(Error::data(
            path,
            "unknown file type: featlab reads `.npy` and `.csv` data files",
        )),
    }
}
