//! Linear probe: ridge regression from features (with an intercept) to one-hot targets,
//! classification by argmax — the feature-quality measure of the speed-limited runs.
//! `β = (ΦᵀΦ + λ n I)⁻¹ Φᵀ Y`, Φ = [features, 1] (the intercept column is penalised like
//! the weights; with a small λ this is immaterial).

use crate::linalg::matmul;
use crate::{Error, Result};
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef, Par, Side};

/// Ridge weights (p+1 × c) of a probe fitted on `feat` (n × p) and targets `y` (n × c).
pub fn fit(feat: MatRef<'_, f64>, y: MatRef<'_, f64>, ridge: f64) -> Result<Mat<f64>> {
    let (n, p) = (feat.nrows(), feat.ncols());
    let phi = Mat::from_fn(n, p + 1, |i, j| if j < p { feat[(i, j)] } else { 1.0 });
    let mut a = Mat::zeros(p + 1, p + 1);
    matmul(
        a.as_mut(),
        Accum::Replace,
        phi.transpose(),
        phi.as_ref(),
        1.0,
        Par::Seq,
    );
    for j in 0..=p {
        a[(j, j)] += ridge * n as f64;
    }
    let mut rhs = Mat::zeros(p + 1, y.ncols());
    matmul(
        rhs.as_mut(),
        Accum::Replace,
        phi.transpose(),
        y,
        1.0,
        Par::Seq,
    );
    let llt = a.llt(Side::Lower).map_err(|e| {
        Error::Numerical(format!(
            "linear probe: Cholesky failed ({e:?}); raise the ridge"
        ))
    })?;
    Ok(llt.solve(rhs.as_ref()))
}

/// Predictions Φβ (n × c).
pub fn predict(feat: MatRef<'_, f64>, beta: MatRef<'_, f64>) -> Mat<f64> {
    let p = feat.ncols();
    Mat::from_fn(feat.nrows(), beta.ncols(), |i, c| {
        (0..p).map(|j| feat[(i, j)] * beta[(j, c)]).sum::<f64>() + beta[(p, c)]
    })
}

/// Fraction of rows whose argmax equals the label.
pub fn accuracy(pred: MatRef<'_, f64>, labels: &[u8]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let hits = (0..pred.nrows())
        .filter(|&i| {
            let mut best = 0;
            for c in 1..pred.ncols() {
                if pred[(i, c)] > pred[(i, best)] {
                    best = c;
                }
            }
            best == labels[i] as usize
        })
        .count();
    hits as f64 / labels.len() as f64
}

/// Test accuracy of a probe trained on (train features, train targets).
pub fn probe_accuracy(
    ftr: MatRef<'_, f64>,
    ytr: MatRef<'_, f64>,
    fte: MatRef<'_, f64>,
    lte: &[u8],
    ridge: f64,
) -> Result<f64> {
    let beta = fit(ftr, ytr, ridge)?;
    Ok(accuracy(predict(fte, beta.as_ref()).as_ref(), lte))
}
