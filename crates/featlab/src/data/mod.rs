//! Datasets: inputs `x` (n × d) and targets `y` (n × c), generators and file loaders.

pub mod config;
pub mod generate;
pub mod group_composition;
pub mod in_context;
pub mod io;
pub mod labelled;
pub mod modular;
pub mod preprocess;
pub mod vision;

pub use config::DataConfig;

use faer::Mat;

/// A training (or test) set: one sample per row.
///
/// `x` is n × d (inputs as the network sees them), `y` is n × c (targets, one row per
/// sample; class labels are one-hot rows for cross-entropy).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub x: Mat<f64>,
    pub y: Mat<f64>,
}

impl Dataset {
    /// Build a dataset, checking that `x` and `y` have the same number of rows.
    pub fn new(x: Mat<f64>, y: Mat<f64>) -> crate::Result<Self> {
        if x.nrows() != y.nrows() {
            return Err(crate::Error::Shape(format!(
                "x has {} rows but y has {} rows",
                x.nrows(),
                y.nrows()
            )));
        }
        Ok(Dataset { x, y })
    }
    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }
    /// Output dimension c.
    pub fn c(&self) -> usize {
        self.y.ncols()
    }
}
