//! Recursive Feature Machine (Radhakrishnan, Beaglehole, Pandit & Belkin, Science 2024;
//! aradha/recursive_feature_machines): kernel ridge regression with a Mahalanobis kernel
//! whose matrix M is replaced, each iteration, by the AGOP of the fitted predictor.
//!
//! Kernels, `‖u‖_M = √(uᵀMu)`, bandwidth L:
//!   Laplace  `k(x,z) = exp(−‖x − z‖_M / L)`,  Gaussian `k(x,z) = exp(−‖x − z‖²_M / (2L²))`.
//! Iteration (M₀ = I, or the all-ones diagonal when `diag`):
//!   1. `a = (K_M(X,X) + reg·I)⁻¹ Y` (Cholesky), `f(x) = Σ_j a_j k(x, x_j)`;
//!   2. `∇f_c(x_i) = −M Σ_j w_ij a_jc (x_i − x_j)` with `w_ij = k_ij/(L‖x_i − x_j‖_M)`
//!      (Laplace; 0 when the distance is < 1e-10) or `w_ij = k_ij/L²` (Gaussian);
//!   3. `M ← (1/n) Σ_{i,c} ∇f_c(x_i)∇f_c(x_i)ᵀ` (optionally with the mean gradient
//!      subtracted; `diag`: only the diagonal), computed in batches of rows, then
//!      rescaled by its largest entry (`m_scale = "max"`, the package's choice) or left
//!      as the 1/n average (`"mean"`, the original notebook's).

use crate::linalg::matmul;
use crate::{Error, Result};
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef, Par, Side};
use serde::{Deserialize, Serialize};

/// Kernel family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    #[default]
    Laplace,
    Gaussian,
}

/// Rescaling of the new M.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MScale {
    /// M / max_ij |M_ij| (recursive_feature_machines package).
    #[default]
    Max,
    /// (1/n) Σ outer products, unscaled (original notebook).
    Mean,
}

fn d_bw() -> f64 {
    10.0
}
fn d_iters() -> usize {
    5
}
fn d_reg() -> f64 {
    1e-3
}
fn d_batch() -> usize {
    256
}

/// RFM options (the `[rfm]` table).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RfmConfig {
    #[serde(default)]
    pub kernel: Kernel,
    /// Bandwidth L.
    #[serde(default = "d_bw")]
    pub bandwidth: f64,
    /// Number of AGOP updates T (the final model is refit with the last M).
    #[serde(default = "d_iters")]
    pub iters: usize,
    /// Ridge added to the kernel matrix.
    #[serde(default = "d_reg")]
    pub reg: f64,
    /// Keep M diagonal.
    #[serde(default)]
    pub diag: bool,
    /// Subtract the mean gradient before the outer products.
    #[serde(default)]
    pub center: bool,
    /// Rows per AGOP batch (memory: batch × n kernel weights).
    #[serde(default = "d_batch")]
    pub batch: usize,
    #[serde(default)]
    pub m_scale: MScale,
}

impl Default for RfmConfig {
    fn default() -> Self {
        RfmConfig {
            kernel: Kernel::Laplace,
            bandwidth: 10.0,
            iters: 5,
            reg: 1e-3,
            diag: false,
            center: false,
            batch: 256,
            m_scale: MScale::Max,
        }
    }
}

impl RfmConfig {
    /// Check ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.bandwidth.is_finite() && self.bandwidth > 0.0) {
            return Err(Error::config(
                "rfm.bandwidth",
                format!("must be a finite number > 0, got {}", self.bandwidth),
            ));
        }
        if !(self.reg.is_finite() && self.reg >= 0.0) {
            return Err(Error::config(
                "rfm.reg",
                format!("must be ≥ 0, got {}", self.reg),
            ));
        }
        if self.batch == 0 {
            return Err(Error::config("rfm.batch", "must be ≥ 1"));
        }
        Ok(())
    }
}

/// A fitted kernel machine with feature matrix M.
pub struct Rfm {
    pub m: Mat<f64>,
    pub x: Mat<f64>,
    pub coef: Mat<f64>,
    pub cfg: RfmConfig,
}

/// `xMzᵀ`-based squared Mahalanobis distances between rows of a (p × d) and b (q × d).
fn sq_dists(a: MatRef<'_, f64>, b: MatRef<'_, f64>, m: MatRef<'_, f64>) -> Mat<f64> {
    let d = a.ncols();
    let mut bm = Mat::zeros(b.nrows(), d);
    matmul(bm.as_mut(), Accum::Replace, b, m, 1.0, Par::Seq);
    let mut am = Mat::zeros(a.nrows(), d);
    matmul(am.as_mut(), Accum::Replace, a, m, 1.0, Par::Seq);
    let mut cross = Mat::zeros(a.nrows(), b.nrows());
    matmul(
        cross.as_mut(),
        Accum::Replace,
        a,
        bm.transpose(),
        1.0,
        Par::Seq,
    );
    let na: Vec<f64> = (0..a.nrows())
        .map(|i| (0..d).map(|k| a[(i, k)] * am[(i, k)]).sum())
        .collect();
    let nb: Vec<f64> = (0..b.nrows())
        .map(|i| (0..d).map(|k| b[(i, k)] * bm[(i, k)]).sum())
        .collect();
    Mat::from_fn(a.nrows(), b.nrows(), |i, j| {
        (na[i] + nb[j] - 2.0 * cross[(i, j)]).max(0.0)
    })
}

impl Rfm {
    fn kernel(&self, a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
        let d2 = sq_dists(a, b, self.m.as_ref());
        let l = self.cfg.bandwidth;
        match self.cfg.kernel {
            Kernel::Laplace => Mat::from_fn(d2.nrows(), d2.ncols(), |i, j| {
                (-d2[(i, j)].sqrt() / l).exp()
            }),
            Kernel::Gaussian => Mat::from_fn(d2.nrows(), d2.ncols(), |i, j| {
                (-d2[(i, j)] / (2.0 * l * l)).exp()
            }),
        }
    }

    /// Kernel ridge regression with the current M.
    fn solve(&mut self, y: MatRef<'_, f64>) -> Result<()> {
        let mut k = self.kernel(self.x.as_ref(), self.x.as_ref());
        for i in 0..k.nrows() {
            k[(i, i)] += self.cfg.reg;
        }
        let llt = k.llt(Side::Lower).map_err(|e| {
            Error::Numerical(format!(
                "RFM kernel matrix is not positive definite ({e:?}); raise rfm.reg"
            ))
        })?;
        self.coef = llt.solve(y);
        Ok(())
    }

    /// Predictions on `x` (q × c).
    pub fn predict(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let k = self.kernel(x, self.x.as_ref());
        let mut out = Mat::zeros(x.nrows(), self.coef.ncols());
        matmul(
            out.as_mut(),
            Accum::Replace,
            k.as_ref(),
            self.coef.as_ref(),
            1.0,
            Par::Seq,
        );
        out
    }

    /// AGOP of the current predictor at the training points (un-normalised 1/n average).
    pub fn agop(&self) -> Mat<f64> {
        let (n, d) = (self.x.nrows(), self.x.ncols());
        let c = self.coef.ncols();
        let l = self.cfg.bandwidth;
        let mut g = Mat::<f64>::zeros(d, d);
        let mut sums = vec![vec![0.0; d]; c];
        let mut start = 0;
        while start < n {
            let b = self.cfg.batch.min(n - start);
            let xb = self.x.as_ref().subrows(start, b);
            let d2 = sq_dists(xb, self.x.as_ref(), self.m.as_ref());
            let w = Mat::from_fn(b, n, |i, j| {
                let dist = d2[(i, j)].sqrt();
                match self.cfg.kernel {
                    Kernel::Laplace => {
                        if dist < 1e-10 {
                            0.0
                        } else {
                            (-dist / l).exp() / (l * dist)
                        }
                    }
                    Kernel::Gaussian => (-d2[(i, j)] / (2.0 * l * l)).exp() / (l * l),
                }
            });
            for (o, sums_o) in sums.iter_mut().enumerate() {
                // A = w ⊙ a_oᵀ (b × n); u = Σ_j A_ij (x_i − x_j) = rowsum(A) x_i − A X
                let a = Mat::from_fn(b, n, |i, j| w[(i, j)] * self.coef[(j, o)]);
                let mut ax = Mat::zeros(b, d);
                matmul(
                    ax.as_mut(),
                    Accum::Replace,
                    a.as_ref(),
                    self.x.as_ref(),
                    1.0,
                    Par::Seq,
                );
                let u = Mat::from_fn(b, d, |i, k| {
                    let rs: f64 = (0..n).map(|j| a[(i, j)]).sum();
                    rs * xb[(i, k)] - ax[(i, k)]
                });
                // gradients: −u M (rows)
                let mut gr = Mat::zeros(b, d);
                matmul(
                    gr.as_mut(),
                    Accum::Replace,
                    u.as_ref(),
                    self.m.as_ref(),
                    -1.0,
                    Par::Seq,
                );
                if self.cfg.diag {
                    for k in 0..d {
                        g[(k, k)] += (0..b).map(|i| gr[(i, k)] * gr[(i, k)]).sum::<f64>();
                    }
                } else {
                    matmul(
                        g.as_mut(),
                        Accum::Add,
                        gr.transpose(),
                        gr.as_ref(),
                        1.0,
                        Par::Seq,
                    );
                }
                for (k, s) in sums_o.iter_mut().enumerate() {
                    *s += (0..b).map(|i| gr[(i, k)]).sum::<f64>();
                }
            }
            start += b;
        }
        let inv = 1.0 / n as f64;
        Mat::from_fn(d, d, |i, j| {
            if self.cfg.diag && i != j {
                return 0.0;
            }
            let mut v = g[(i, j)] * inv;
            if self.cfg.center {
                for s in &sums {
                    v -= s[i] * inv * s[j] * inv;
                }
            }
            v
        })
    }
}

/// One row of the RFM history: after iteration `iter` (0 = plain kernel with M = I).
#[derive(Debug, Clone, Serialize)]
pub struct RfmStep {
    pub iter: usize,
    pub train_mse: f64,
    pub test_mse: f64,
    pub test_acc: f64,
}

/// Fit an RFM on (x, y); evaluates on (xt, yt, labels) after every refit.
pub fn fit(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    xt: MatRef<'_, f64>,
    yt: MatRef<'_, f64>,
    lt: &[u8],
    cfg: &RfmConfig,
) -> Result<(Rfm, Vec<RfmStep>)> {
    cfg.validate()?;
    let d = x.ncols();
    let mut rfm = Rfm {
        m: Mat::identity(d, d),
        x: x.to_owned(),
        coef: Mat::zeros(0, 0),
        cfg: cfg.clone(),
    };
    let mut hist = Vec::new();
    for it in 0..=cfg.iters {
        rfm.solve(y)?;
        let mse = |p: Mat<f64>, t: MatRef<'_, f64>| {
            if t.nrows() == 0 {
                return f64::NAN;
            }
            let mut s = 0.0;
            for j in 0..t.ncols() {
                for i in 0..t.nrows() {
                    s += (p[(i, j)] - t[(i, j)]).powi(2);
                }
            }
            s / t.nrows() as f64
        };
        let pt = rfm.predict(xt);
        let acc = super::probe::accuracy(pt.as_ref(), lt);
        hist.push(RfmStep {
            iter: it,
            train_mse: mse(rfm.predict(x), y),
            test_mse: mse(pt, yt),
            test_acc: acc,
        });
        if it == cfg.iters {
            break;
        }
        let mut g = rfm.agop();
        if cfg.m_scale == MScale::Max {
            let mx = (0..d)
                .flat_map(|j| (0..d).map(move |i| (i, j)))
                .fold(0.0f64, |m, (i, j)| m.max(g[(i, j)].abs()));
            if mx > 0.0 {
                g = Mat::from_fn(d, d, |i, j| g[(i, j)] / mx);
            }
        }
        rfm.m = g;
    }
    Ok((rfm, hist))
}
