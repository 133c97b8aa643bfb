//! A plain n-dimensional f64 array in C (row-major) order: the exchange format for
//! `.npy` files, the Python bindings and run outputs.

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

/// Row-major (C order) n-d array of f64, as numpy stores it by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NdArray {
    /// Extent of each axis; the product equals `data.len()`.
    pub shape: Vec<usize>,
    /// Elements in C order (last axis fastest).
    pub data: Vec<f64>,
}

impl NdArray {
    /// A 1-D array.
    pub fn vector(data: Vec<f64>) -> Self {
        NdArray {
            shape: vec![data.len()],
            data,
        }
    }

    /// An array of the given shape; panics if `shape` does not match `data.len()`.
    #[track_caller]
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "NdArray shape {shape:?} does not match {} elements",
            data.len()
        );
        NdArray { shape, data }
    }

    /// Copy a matrix into a 2-D row-major array.
    pub fn from_mat(m: MatRef<'_, f64>) -> Self {
        let (r, c) = (m.nrows(), m.ncols());
        let mut data = Vec::with_capacity(r * c);
        for i in 0..r {
            for j in 0..c {
                data.push(m[(i, j)]);
            }
        }
        NdArray {
            shape: vec![r, c],
            data,
        }
    }

    /// A 2-D view as a matrix (copies; rows = shape[0], cols = product of the rest).
    /// A 1-D array becomes a column.
    pub fn to_mat(&self) -> Mat<f64> {
        let (r, c) = self.rows_cols();
        Mat::from_fn(r, c, |i, j| self.data[i * c + j])
    }

    /// (rows, cols) when read as a matrix: 1-D arrays are columns, n-d arrays flatten
    /// every axis after the first.
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.shape.len() {
            0 => (1, 1),
            1 => (self.shape[0], 1),
            _ => (self.shape[0], self.shape[1..].iter().product()),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
