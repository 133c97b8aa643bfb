//! Losses on the network output F (n × c) against targets Y (n × c).

use faer::{MatMut, MatRef};
use serde::{Deserialize, Serialize};

/// Training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error `L = (1/2n) Σ_i ‖f(x_i) − y_i‖²` (½, mean over samples, sum over
    /// outputs — the convention of the AGF and exact-solution papers).
    #[default]
    Mse,
    /// Softmax cross-entropy `L = (1/n) Σ_i Σ_c y_ic (logsumexp(f(x_i)) − f_c(x_i))`, with
    /// target rows y_i (one-hot or probability vectors).
    CrossEntropy,
}

impl Loss {
    /// Loss value and its gradient with respect to the outputs, `dF = ∂L/∂F` (n × c),
    /// written into `d_out`. Returns the loss.
    ///
    /// MSE: `dF = (F − Y)/n`. Cross-entropy: `dF_i = (softmax(F_i) Σ_c y_ic − y_i)/n`.
    #[track_caller]
    pub fn value_and_grad(
        self,
        out: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        mut d_out: MatMut<'_, f64>,
    ) -> f64 {
        assert_eq!(
            out.nrows(),
            y.nrows(),
            "loss: output and target rows differ"
        );
        assert_eq!(
            out.ncols(),
            y.ncols(),
            "loss: output and target columns differ"
        );
        let (n, c) = (out.nrows(), out.ncols());
        let inv_n = 1.0 / n as f64;
        match self {
            Loss::Mse => {
                let mut total = 0.0;
                for j in 0..c {
                    for i in 0..n {
                        let r = out[(i, j)] - y[(i, j)];
                        total += r * r;
                        d_out[(i, j)] = r * inv_n;
                    }
                }
                0.5 * total * inv_n
            }
            Loss::CrossEntropy => {
                let mut total = 0.0;
                for i in 0..n {
                    let mut mx = f64::NEG_INFINITY;
                    for j in 0..c {
                        mx = mx.max(out[(i, j)]);
                    }
                    let mut s = 0.0;
                    for j in 0..c {
                        s += (out[(i, j)] - mx).exp();
                    }
                    let lse = mx + s.ln();
                    let mut ysum = 0.0;
                    for j in 0..c {
                        ysum += y[(i, j)];
                        total += y[(i, j)] * (lse - out[(i, j)]);
                    }
                    for j in 0..c {
                        let p = (out[(i, j)] - lse).exp();
                        d_out[(i, j)] = (p * ysum - y[(i, j)]) * inv_n;
                    }
                }
                total * inv_n
            }
        }
    }

    /// Loss value only.
    pub fn value(self, out: MatRef<'_, f64>, y: MatRef<'_, f64>) -> f64 {
        let mut scratch = faer::Mat::zeros(out.nrows(), out.ncols());
        self.value_and_grad(out, y, scratch.as_mut())
    }
}
