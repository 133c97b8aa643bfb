//! Synthetic datasets: Gaussian inputs with teachers, and 1-D data.

use super::Dataset;
use crate::linalg::{matmul, thin_svd, view};
use crate::model::Activation;
use crate::rng::{normal_vec, Rng};
use crate::{Error, Result};
use faer::{Accum, Mat, Par};

/// n × d matrix of i.i.d. N(0, 1) entries.
pub fn gaussian_inputs(rng: &mut Rng, n: usize, d: usize) -> Mat<f64> {
    let v = normal_vec(rng, n * d, 1.0);
    Mat::from_fn(n, d, |i, j| v[i * d + j])
}

/// Exact sample whitening: `X ← X (XᵀX/n)^{−1/2}`, so that `XᵀX/n = I_d`.
/// Needs n ≥ d and full column rank.
pub fn whiten(x: &Mat<f64>) -> Result<Mat<f64>> {
    let (n, d) = (x.nrows(), x.ncols());
    if n < d {
        return Err(Error::config(
            "data.whiten",
            format!("whitening needs n ≥ d, got n = {n}, d = {d}"),
        ));
    }
    let mut cov = Mat::zeros(d, d);
    matmul(
        cov.as_mut(),
        Accum::Replace,
        x.transpose(),
        x.as_ref(),
        1.0 / n as f64,
        Par::Seq,
    );
    // One eigendecomposition serves the rank check and the inverse square root.
    let (u, l) = crate::linalg::sym_eig(cov.as_ref())?;
    if l[0] <= 1e-12 * l[d - 1] {
        return Err(Error::Numerical(
            "input covariance is singular; cannot whiten".into(),
        ));
    }
    let inv_sqrt = crate::linalg::psd_pow_from_eig(u.as_ref(), &l, -0.5);
    let mut out = Mat::zeros(n, d);
    matmul(
        out.as_mut(),
        Accum::Replace,
        x.as_ref(),
        inv_sqrt.as_ref(),
        1.0,
        Par::Seq,
    );
    Ok(out)
}

/// Random matrix `B = U diag(s) Vᵀ` (c × d) with Haar-random orthonormal U (c × r),
/// V (d × r), r = len(s) ≤ min(c, d): a linear teacher with chosen singular values.
pub fn teacher_matrix(rng: &mut Rng, c: usize, d: usize, s: &[f64]) -> Result<Mat<f64>> {
    let r = s.len();
    if r > c.min(d) {
        return Err(Error::config(
            "data.singular_values",
            format!(
                "{r} singular values need outputs ≥ {r} and d ≥ {r}; got outputs = {c}, d = {d}"
            ),
        ));
    }
    let orth = |rng: &mut Rng, k: usize| -> Result<Mat<f64>> {
        let g = normal_vec(rng, k * r, 1.0);
        let (u, _, v) = thin_svd(view(&g, k, r))?;
        // polar factor U Vᵀ is Haar-distributed on the Stiefel manifold
        let mut q = Mat::zeros(k, r);
        matmul(
            q.as_mut(),
            Accum::Replace,
            u.as_ref(),
            v.transpose(),
            1.0,
            Par::Seq,
        );
        Ok(q)
    };
    let u = orth(rng, c)?;
    let v = orth(rng, d)?;
    Ok(Mat::from_fn(c, d, |i, j| {
        (0..r).map(|k| u[(i, k)] * s[k] * v[(j, k)]).sum()
    }))
}

/// Linear teacher dataset `y = B x + noise`.
pub fn linear_teacher(x: Mat<f64>, b: &Mat<f64>, noise: f64, rng: &mut Rng) -> Result<Dataset> {
    let n = x.nrows();
    let c = b.nrows();
    let mut y = Mat::zeros(n, c);
    matmul(
        y.as_mut(),
        Accum::Replace,
        x.as_ref(),
        b.transpose(),
        1.0,
        Par::Seq,
    );
    if noise > 0.0 {
        let e = normal_vec(rng, n * c, noise);
        for i in 0..n {
            for j in 0..c {
                y[(i, j)] += e[i * c + j];
            }
        }
    }
    Dataset::new(x, y)
}

/// Multi-index teacher `y = Σ_k a_k · link(θ_k · x) + noise` with orthonormal directions
/// θ_k (the first `a.len()` columns of a Haar-random orthogonal matrix).
pub fn index_teacher(
    x: Mat<f64>,
    link: Activation,
    a: &[f64],
    noise: f64,
    rng: &mut Rng,
) -> Result<(Dataset, Mat<f64>)> {
    let (n, d) = (x.nrows(), x.ncols());
    let k = a.len();
    if k == 0 || k > d {
        return Err(Error::config(
            "data.strengths",
            format!("need 1 ≤ number of directions ≤ d = {d}, got {k}"),
        ));
    }
    let g = normal_vec(rng, d * k, 1.0);
    let (u, _, v) = thin_svd(view(&g, d, k))?;
    let mut theta = Mat::zeros(d, k);
    matmul(
        theta.as_mut(),
        Accum::Replace,
        u.as_ref(),
        v.transpose(),
        1.0,
        Par::Seq,
    );
    let mut z = Mat::zeros(n, k);
    matmul(
        z.as_mut(),
        Accum::Replace,
        x.as_ref(),
        theta.as_ref(),
        1.0,
        Par::Seq,
    );
    let e = normal_vec(rng, n, noise);
    let y = Mat::from_fn(n, 1, |i, _| {
        (0..k).map(|j| a[j] * link.apply(z[(i, j)])).sum::<f64>() + e[i]
    });
    Ok((Dataset::new(x, y)?, theta))
}
