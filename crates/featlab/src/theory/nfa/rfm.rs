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

use crate::linalg::{col, col_mut, for_column_blocks, gram_lower, matmul};
use crate::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::{Accum, Mat, MatMut, MatRef, Par};
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
    /// Parallelism of the kernel GEMMs and maps (results do not depend on it).
    pub par: Par,
}

/// Rows of the kernel computed per block in predictions and AGOPs of large problems
/// (memory: this many × n kernel values).
const KERNEL_ROWS: usize = 1024;

/// `‖a_i‖²_M` of every row of `a`, given `am = a M`.
fn m_norms(a: MatRef<'_, f64>, am: MatRef<'_, f64>) -> Vec<f64> {
    let d = a.ncols();
    (0..a.nrows())
        .map(|i| (0..d).map(|k| a[(i, k)] * am[(i, k)]).sum())
        .collect()
}

/// Rows of `a` in the metric M: `a M` and `‖a_i‖²_M`.
struct Metric {
    am: Mat<f64>,
    sq: Vec<f64>,
}

impl Metric {
    fn new(a: MatRef<'_, f64>, m: MatRef<'_, f64>, par: Par) -> Self {
        let mut am = Mat::zeros(a.nrows(), a.ncols());
        matmul(am.as_mut(), Accum::Replace, a, m, 1.0, par);
        let sq = m_norms(a, am.as_ref());
        Metric { am, sq }
    }
}

/// `dst[i, j] ← g(d²_ij)` for the squared M-distances
/// `d²_ij = max(‖a_i‖²_M + ‖b_j‖²_M − 2 a_i M b_jᵀ, 0)` between the rows of `a` (with
/// `‖a_i‖²_M` = `sq_a`) and of b (given in the metric, `mb`): one GEMM `a (bM)ᵀ` into
/// `dst`, then `g` applied over column slices, in parallel over column blocks (results do
/// not depend on `par`).
fn kernel_map_into(
    mut dst: MatMut<'_, f64>,
    a: MatRef<'_, f64>,
    sq_a: &[f64],
    mb: &Metric,
    par: Par,
    g: &(impl Fn(f64) -> f64 + Sync),
) {
    matmul(
        dst.as_mut(),
        Accum::Replace,
        a,
        mb.am.as_ref().transpose(),
        1.0,
        par,
    );
    let elements = dst.nrows() * dst.ncols();
    let sq_b = MatRef::from_row_major_slice(&mb.sq, 1, mb.sq.len());
    for_column_blocks(par, elements, (dst, sq_b), &|(mut blk, sq): (
        MatMut<'_, f64>,
        MatRef<'_, f64>,
    )| {
        for j in 0..blk.ncols() {
            let nb = sq[(0, j)];
            for (v, na) in col_mut(blk.as_mut(), j).iter_mut().zip(sq_a) {
                *v = g((na + nb - 2.0 * *v).max(0.0));
            }
        }
    });
}

impl Rfm {
    /// A kernel machine on the training points `x` with M = I (the `diag` start is the
    /// same matrix) and no coefficients yet.
    pub fn new(x: MatRef<'_, f64>, cfg: &RfmConfig, par: Par) -> Self {
        let d = x.ncols();
        Rfm {
            m: Mat::identity(d, d),
            x: x.to_owned(),
            coef: Mat::zeros(0, 0),
            cfg: cfg.clone(),
            par,
        }
    }

    /// `k(d²)`: Laplace `exp(−√d²/L)`, Gaussian `exp(−d²/(2L²))`.
    fn kernel_fn(&self) -> impl Fn(f64) -> f64 + Sync {
        let (kind, l) = (self.cfg.kernel, self.cfg.bandwidth);
        move |d2: f64| match kind {
            Kernel::Laplace => (-d2.sqrt() / l).exp(),
            Kernel::Gaussian => (-d2 / (2.0 * l * l)).exp(),
        }
    }

    /// Kernel ridge regression with the current M: `a = (K_M(X, X) + reg·I)⁻¹ Y` by a
    /// Cholesky factorisation of the kernel matrix in place (n² numbers; faer, the global
    /// parallelism as `Mat::llt`).
    pub fn solve(&mut self, y: MatRef<'_, f64>) -> Result<()> {
        let n = self.x.nrows();
        let metric = Metric::new(self.x.as_ref(), self.m.as_ref(), self.par);
        let mut k = Mat::<f64>::zeros(n, n);
        kernel_map_into(
            k.as_mut(),
            self.x.as_ref(),
            &metric.sq,
            &metric,
            self.par,
            &self.kernel_fn(),
        );
        for i in 0..n {
            k[(i, i)] += self.cfg.reg;
        }
        let par = faer::get_global_parallelism();
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
            n,
            par,
            Default::default(),
        ));
        llt::factor::cholesky_in_place(
            k.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .map_err(|e| {
            Error::Numerical(format!(
                "RFM kernel matrix is not positive definite ({e:?}); raise rfm.reg"
            ))
        })?;
        let mut coef = y.to_owned();
        let mut mem = MemBuffer::new(llt::solve::solve_in_place_scratch::<f64>(
            n,
            coef.ncols(),
            par,
        ));
        llt::solve::solve_in_place(k.as_ref(), coef.as_mut(), par, MemStack::new(&mut mem));
        self.coef = coef;
        Ok(())
    }

    /// Predictions on `x` (q × c): `K_M(x, X) a`, in blocks of [`KERNEL_ROWS`] rows.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let metric = Metric::new(self.x.as_ref(), self.m.as_ref(), self.par);
        let (q, n) = (x.nrows(), self.x.nrows());
        let mut out = Mat::zeros(q, self.coef.ncols());
        let kf = self.kernel_fn();
        let mut kb = Mat::<f64>::zeros(KERNEL_ROWS.min(q), n);
        let mut start = 0;
        while start < q {
            let b = KERNEL_ROWS.min(q - start);
            let xb = x.subrows(start, b);
            let mb = Metric::new(xb, self.m.as_ref(), self.par);
            let mut kbv = kb.as_mut().subrows_mut(0, b);
            kernel_map_into(kbv.as_mut(), xb, &mb.sq, &metric, self.par, &kf);
            matmul(
                out.as_mut().subrows_mut(start, b),
                Accum::Replace,
                kbv.as_ref(),
                self.coef.as_ref(),
                1.0,
                self.par,
            );
            start += b;
        }
        out
    }

    /// AGOP of the current predictor at the training points (un-normalised 1/n average),
    /// as blocked GEMMs. With `w_ij = k'(d_ij)` (Laplace `k_ij/(L d_ij)`, 0 below distance
    /// 1e-10; Gaussian `k_ij/L²`; `w_ii = 0`, the self pair's term being 0) and `Z = [diag(a_1)X, …, diag(a_c)X]` (n × c·d),
    /// `∇f_c(x_i) = −u_ic M` with `u_ic = (Σ_j w_ij a_jc) x_i − (W Z)_{i, c-th d-block}`:
    /// per block of rows, `S = W A` (b × c) and `W Z` (b × c·d) are two GEMMs, and
    /// `G = M (Σ_{i,c} u_icᵀu_ic) M / n` (minus `Σ_c ḡ_cᵀḡ_c` when centred) — one Gram of
    /// the n·c rows u_ic and two d × d products. Flops: `2n²(c·d + c + d)` (W Z, W A and the
    /// distances) `+ n·c·d(d + 1)` (the Gram) `+ 4d³`, plus n² kernel evaluations.
    pub fn agop(&self) -> Mat<f64> {
        let (n, d) = (self.x.nrows(), self.x.ncols());
        let c = self.coef.ncols();
        let par = self.par;
        let l = self.cfg.bandwidth;
        let kind = self.cfg.kernel;
        let metric = Metric::new(self.x.as_ref(), self.m.as_ref(), par);
        // Z = [diag(a_1) X, …, diag(a_c) X]
        let mut z = Mat::<f64>::zeros(n, c * d);
        for o in 0..c {
            for k in 0..d {
                let a = self.coef.col_as_slice(o);
                let xc = self.x.col_as_slice(k);
                for ((v, ai), xi) in z.col_as_slice_mut(o * d + k).iter_mut().zip(a).zip(xc) {
                    *v = ai * xi;
                }
            }
        }
        let weight = move |d2: f64| match kind {
            Kernel::Laplace => {
                let dist = d2.sqrt();
                if dist < 1e-10 {
                    0.0
                } else {
                    (-dist / l).exp() / (l * dist)
                }
            }
            Kernel::Gaussian => (-d2 / (2.0 * l * l)).exp() / (l * l),
        };
        let rows = self.cfg.batch.min(n);
        let mut w = Mat::<f64>::zeros(rows, n);
        let mut wz = Mat::<f64>::zeros(rows, c * d);
        let mut s = Mat::<f64>::zeros(rows, c);
        let mut u = Mat::<f64>::zeros(rows * c, d);
        let mut gram = Mat::<f64>::zeros(d, d);
        let mut usum = Mat::<f64>::zeros(c, d);
        let mut start = 0;
        while start < n {
            let b = rows.min(n - start);
            let xb = self.x.as_ref().subrows(start, b);
            let mut wv = w.as_mut().subrows_mut(0, b);
            kernel_map_into(
                wv.as_mut(),
                xb,
                &metric.sq[start..start + b],
                &metric,
                par,
                &weight,
            );
            // the self pair contributes w_ii a_i (x_i − x_i) = 0: exactly 0 here, so
            // round-off in d²_ii (≈ 1e-15, hence a Laplace weight ≈ 1e6) cannot leak in
            for i in 0..b {
                wv[(i, start + i)] = 0.0;
            }
            let mut wzv = wz.as_mut().subrows_mut(0, b);
            matmul(
                wzv.as_mut(),
                Accum::Replace,
                wv.as_ref(),
                z.as_ref(),
                1.0,
                par,
            );
            let mut sv = s.as_mut().subrows_mut(0, b);
            matmul(
                sv.as_mut(),
                Accum::Replace,
                wv.as_ref(),
                self.coef.as_ref(),
                1.0,
                par,
            );
            // u rows o·b + i: S_io x_i − (W Z)_{i, o-th block}
            let mut uv = u.as_mut().subrows_mut(0, b * c);
            for k in 0..d {
                let xc = xb.col(k);
                let ucol = col_mut(uv.as_mut(), k);
                for o in 0..c {
                    let wzc = col(wzv.as_ref(), o * d + k);
                    let sc = col(sv.as_ref(), o);
                    for (i, v) in ucol[o * b..(o + 1) * b].iter_mut().enumerate() {
                        *v = sc[i] * xc[i] - wzc[i];
                    }
                }
            }
            gram_lower(gram.as_mut(), uv.as_ref(), 1.0);
            if self.cfg.center {
                for k in 0..d {
                    let ucol = col(uv.as_ref(), k);
                    for o in 0..c {
                        usum[(o, k)] += ucol[o * b..(o + 1) * b].iter().sum::<f64>();
                    }
                }
            }
            start += b;
        }
        // (1/n) Σ uᵀu − Σ_c ū_cᵀū_c (centred), then sandwiched by M
        let inv = 1.0 / n as f64;
        for j in 0..d {
            for i in j..d {
                let mut v = gram[(i, j)] * inv;
                if self.cfg.center {
                    for o in 0..c {
                        v -= usum[(o, i)] * inv * usum[(o, j)] * inv;
                    }
                }
                gram[(i, j)] = v;
                gram[(j, i)] = v;
            }
        }
        let mut um = Mat::<f64>::zeros(d, d);
        matmul(
            um.as_mut(),
            Accum::Replace,
            gram.as_ref(),
            self.m.as_ref(),
            1.0,
            Par::Seq,
        );
        let mut g = Mat::<f64>::zeros(d, d);
        matmul(
            g.as_mut(),
            Accum::Replace,
            self.m.as_ref().transpose(),
            um.as_ref(),
            1.0,
            Par::Seq,
        );
        Mat::from_fn(d, d, |i, j| {
            if self.cfg.diag && i != j {
                0.0
            } else {
                0.5 * (g[(i, j)] + g[(j, i)])
            }
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
    par: Par,
) -> Result<(Rfm, Vec<RfmStep>)> {
    cfg.validate()?;
    let d = x.ncols();
    let mut rfm = Rfm::new(x, cfg, par);
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
