//! AGF on the researcher's own data: the checked training set, the network of a named
//! architecture and its unit-scale initial direction (init = α × direction), as the `agf`
//! experiment's `[problem] kind = "files"` and Python's `featlab.agf.run` both build them.
//!
//! | `model` | network (Kunin et al. 2025) | κ | initial direction from `stream(seed, "init")` |
//! |---|---|---|---|
//! | `diagonal` | β = u ⊙ v, f = βᵀx (§3.1) | 2 | (u, v) = (√2, 0) (`agf-diagonal`) |
//! | `linear` | f = A W x (§3.2) | 2 | W ~ N(0, 1/d), A ~ N(0, 1/c) (`agf-linear`) |
//! | `relu` | f = A ReLU(W x) (§3.5) | 2 | W ~ N(0, 1/d), A ~ N(0, 1/c) (`agf-relu`) |
//! | `quadratic` | f = A (W x)² (§3.4) | 3 | W ~ N(0, 1/d), then A ~ N(0, 1/c) (`agf-modular`) |
//!
//! No biases (they break the homogeneity AGF needs). Loss L = (1/2n)Σ‖f(x_n) − y_n‖².

use crate::data::Dataset;
use crate::model::diagonal::{Diagonal, DiagonalForm};
use crate::model::two_layer::quadratic_init_direction;
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Model};
use crate::rng::{normal_vec, stream};
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};

/// The architectures AGF runs on given data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataModel {
    /// Diagonal linear net β = u ⊙ v (one output).
    Diagonal,
    /// Two-layer linear net f = A W x.
    Linear,
    /// Two-layer ReLU net f = A ReLU(W x).
    Relu,
    /// Two-layer quadratic net f = A (W x)².
    Quadratic,
}

impl DataModel {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            DataModel::Diagonal => "diagonal",
            DataModel::Linear => "linear",
            DataModel::Relu => "relu",
            DataModel::Quadratic => "quadratic",
        }
    }
}

/// A built network: diagonal or two-layer.
#[derive(Debug, Clone)]
pub enum DataNet {
    Diag(Diagonal),
    Two(TwoLayer),
}

impl DataNet {
    /// The network as a [`Model`].
    pub fn model(&self) -> &dyn Model {
        match self {
            DataNet::Diag(m) => m,
            DataNet::Two(m) => m,
        }
    }
}

/// The training set (x n × d, y n × c), checked: as many rows in both, at least one sample,
/// input and output, every value finite. `x_name`/`y_name` label the arrays in errors
/// (`x`, or `problem.x (`x.npy`)`).
pub fn checked_dataset(x: Mat<f64>, y: Mat<f64>, x_name: &str, y_name: &str) -> Result<Dataset> {
    if x.nrows() != y.nrows() {
        return Err(Error::Shape(format!(
            "{x_name} has {} rows (samples) but {y_name} has {}",
            x.nrows(),
            y.nrows()
        )));
    }
    if x.nrows() == 0 || x.ncols() == 0 || y.ncols() == 0 {
        return Err(Error::Shape(format!(
            "need at least one sample, input and output; {x_name} is {}×{}, {y_name} is {}×{}",
            x.nrows(),
            x.ncols(),
            y.nrows(),
            y.ncols()
        )));
    }
    for (name, m) in [(x_name, &x), (y_name, &y)] {
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                if !m[(i, j)].is_finite() {
                    return Err(Error::config(
                        name,
                        format!("{name}[{i}, {j}] = {} is not finite", m[(i, j)]),
                    ));
                }
            }
        }
    }
    Dataset::new(x, y)
}

/// The network of `model` for d inputs and c outputs; `width` (hidden neurons) is needed by
/// the two-layer nets and refused by the diagonal one. `width_key` names it in errors.
pub fn build_net(
    model: DataModel,
    d: usize,
    c: usize,
    width: Option<usize>,
    width_key: &str,
) -> Result<DataNet> {
    match model {
        DataModel::Diagonal => {
            if c != 1 {
                return Err(Error::Shape(format!(
                    "the diagonal net has one output, y has {c} columns"
                )));
            }
            if width.is_some() {
                return Err(Error::config(
                    width_key,
                    "the diagonal net has one neuron per input coordinate: leave `width` out",
                ));
            }
            Ok(DataNet::Diag(Diagonal::new(d, DiagonalForm::Uv, 1.0)))
        }
        DataModel::Linear | DataModel::Relu | DataModel::Quadratic => {
            let act = match model {
                DataModel::Linear => Activation::Linear,
                DataModel::Relu => Activation::Relu,
                _ => Activation::Quadratic,
            };
            let h = match width {
                Some(h) if h >= 1 => h,
                Some(_) => return Err(Error::config(width_key, "must be ≥ 1")),
                None => {
                    return Err(Error::config(
                        width_key,
                        format!(
                            "the {} net needs `width` (its number of hidden neurons)",
                            model.name()
                        ),
                    ))
                }
            };
            Ok(DataNet::Two(TwoLayer::new(d, h, c, act, false)))
        }
    }
}

/// The unit-scale initial direction of the module table (the init is α times it).
pub fn init_direction(model: DataModel, net: &DataNet, seed: u64) -> Vec<f64> {
    match net {
        DataNet::Diag(m) => {
            let mut v = vec![0.0; 2 * m.d];
            v[..m.d].fill(2f64.sqrt());
            v
        }
        DataNet::Two(m) if model == DataModel::Quadratic => {
            quadratic_init_direction(seed, m.d, m.width, m.c)
        }
        DataNet::Two(m) => {
            let mut v = normal_vec(&mut stream(seed, "init"), m.num_params(), 1.0);
            let nw = m.width * m.d;
            let (sw, sa) = (1.0 / (m.d as f64).sqrt(), 1.0 / (m.c as f64).sqrt());
            for (k, x) in v.iter_mut().enumerate() {
                *x *= if k < nw { sw } else { sa };
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_arrays() {
        let x = Mat::from_fn(4, 2, |i, j| (i + j) as f64);
        let e = checked_dataset(x.clone(), Mat::zeros(3, 1), "x", "y").unwrap_err();
        assert!(
            e.to_string().contains("x has 4 rows (samples) but y has 3"),
            "{e}"
        );
        let mut bad = x.clone();
        bad[(2, 1)] = f64::NAN;
        let e = checked_dataset(bad, Mat::zeros(4, 1), "problem.x", "problem.y").unwrap_err();
        assert!(e.to_string().contains("problem.x[2, 1] = NaN"), "{e}");
        let e = build_net(DataModel::Relu, 2, 1, None, "problem.width").unwrap_err();
        assert!(e.to_string().contains("`problem.width`"), "{e}");
        let e = build_net(DataModel::Diagonal, 2, 2, None, "w").unwrap_err();
        assert!(e.to_string().contains("one output, y has 2 columns"), "{e}");
        let e = build_net(DataModel::Diagonal, 2, 1, Some(3), "w").unwrap_err();
        assert!(e.to_string().contains("leave `width` out"), "{e}");
    }

    #[test]
    fn directions_have_the_stated_scales() {
        // W ~ N(0, 1/d), A ~ N(0, 1/c): sample variances of a large draw within 5 %
        let (d, h, c) = (50, 200, 4);
        for model in [DataModel::Linear, DataModel::Relu, DataModel::Quadratic] {
            let net = build_net(model, d, c, Some(h), "w").unwrap();
            let v = init_direction(model, &net, 3);
            assert_eq!(v.len(), net.model().num_params());
            let var = |s: &[f64]| s.iter().map(|x| x * x).sum::<f64>() / s.len() as f64;
            let (w, a) = v.split_at(h * d);
            assert!((var(w) * d as f64 - 1.0).abs() < 0.05, "{model:?} W");
            assert!((var(a) * c as f64 - 1.0).abs() < 0.15, "{model:?} A");
        }
        let net = build_net(DataModel::Diagonal, 3, 1, None, "w").unwrap();
        let v = init_direction(DataModel::Diagonal, &net, 0);
        assert_eq!(
            v,
            vec![2f64.sqrt(), 2f64.sqrt(), 2f64.sqrt(), 0.0, 0.0, 0.0]
        );
    }
}
