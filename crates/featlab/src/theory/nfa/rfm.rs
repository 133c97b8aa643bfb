//! Recursive Feature Machine (Radhakrishnan, Beaglehole, Pandit & Belkin, Science 2024;
//! aradha/recursive_feature_machines): kernel ridge regression with a Mahalanobis kernel
//! whose matrix M is replaced, each iteration, by the AGOP of the fitted predictor.
//!
//! Kernels, `‖u‖_M = √(uᵀMu)`, bandwidth L:
//!   Laplace  `k(x,z) = exp(−‖x − z‖_M / L)`,  Gaussian `k(x,z) = exp(−‖x − z‖²_M / (2L²))`.
//! Iteration (M₀ = I, or the all-ones diagonal when `diag`):
//!   1. `a = (K_M(X,X) + reg·I)⁻¹ Y` (dense Cholesky while the n² kernel fits in
//!      `rfm.dense_max_gib`, else matrix-free preconditioned conjugate gradients: see
//!      [`Solver`]), `f(x) = Σ_j a_j k(x, x_j)`;
//!   2. `∇f_c(x_i) = −M Σ_j w_ij a_jc (x_i − x_j)` with `w_ij = k_ij/(L‖x_i − x_j‖_M)`
//!      (Laplace; 0 when the distance is < 1e-10) or `w_ij = k_ij/L²` (Gaussian);
//!   3. `M ← (1/n) Σ_{i,c} ∇f_c(x_i)∇f_c(x_i)ᵀ` (optionally with the mean gradient
//!      subtracted; `diag`: only the diagonal), computed in batches of rows, then
//!      rescaled by its largest entry (`m_scale = "max"`, the package's choice) or left
//!      as the 1/n average (`"mean"`, the original notebook's).
//!
//! Self pairs: the kernel matrix of the training points has `k(x_i, x_i) = k(0) = 1` on its
//! diagonal, exactly, in [`Rfm::solve`] and [`Rfm::predict_train`], not the map of the
//! GEMM-based `d²_ii = ‖x_i‖² + ‖x_i‖² − 2⟨x_i, x_i⟩`: that is round-off (~1e-14 on
//! digits), which the Laplace kernel's `√` turns into `d_ii ≈ 1e-7`, i.e.
//! `K_ii ≈ 1 − 1e-8`, an error that moved the train MSE by ~1e-8 relative whenever the
//! GEMM's summation order changed (docs/changes.md, 2026-12-08). The AGOP gives self pairs
//! weight 0 for the same reason (their term `w_ii a_i (x_i − x_i)` is exactly 0).

use crate::linalg::{col, col_mut, for_column_blocks, gram_lower, matmul};
use crate::vexp;
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

/// Linear solver of the kernel system `(K + reg·I) a = Y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Cholesky while the n × n kernel matrix (8n² bytes) fits in `rfm.dense_max_gib`,
    /// else `cg` (the default switch-over: 4 GiB, n ≤ 23,170).
    #[default]
    Auto,
    /// Dense Cholesky factorisation in place (faer): n² memory, n³/3 flops.
    Cholesky,
    /// Preconditioned conjugate gradients on all outputs at once, matrix-free (the kernel
    /// is recomputed in blocks of rows for every product: memory O(n·(r + c + 1024))),
    /// with the Nyström preconditioner of `cg_rank` landmark points (Woodbury form, see
    /// [`Rfm::solve_cg`]); stops when every output's residual is ≤ `cg_tol`·‖y‖.
    Cg,
}

fn d_dense_max_gib() -> f64 {
    4.0
}
fn d_cg_tol() -> f64 {
    1e-10
}
fn d_cg_max_iters() -> usize {
    2000
}
fn d_cg_rank() -> usize {
    1024
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
    /// Linear solver (`auto`, `cholesky`, `cg`).
    #[serde(default)]
    pub solver: Solver,
    /// `auto` uses the dense Cholesky while the kernel matrix (8n² bytes) is at most this
    /// many GiB.
    #[serde(default = "d_dense_max_gib")]
    pub dense_max_gib: f64,
    /// CG stopping rule: relative residual `‖(K + reg·I)a − y‖ ≤ cg_tol·‖y‖` per output.
    #[serde(default = "d_cg_tol")]
    pub cg_tol: f64,
    /// CG iteration limit (an error names the residual reached when it is hit).
    #[serde(default = "d_cg_max_iters")]
    pub cg_max_iters: usize,
    /// Landmark points of the Nyström preconditioner (min(n, cg_rank) of them).
    #[serde(default = "d_cg_rank")]
    pub cg_rank: usize,
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
            solver: Solver::Auto,
            dense_max_gib: d_dense_max_gib(),
            cg_tol: d_cg_tol(),
            cg_max_iters: d_cg_max_iters(),
            cg_rank: d_cg_rank(),
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
        if !(self.dense_max_gib.is_finite() && self.dense_max_gib >= 0.0) {
            return Err(Error::config(
                "rfm.dense_max_gib",
                format!("must be a finite number ≥ 0, got {}", self.dense_max_gib),
            ));
        }
        if !(self.cg_tol.is_finite() && self.cg_tol > 0.0 && self.cg_tol < 1.0) {
            return Err(Error::config(
                "rfm.cg_tol",
                format!("must be in (0, 1), got {}", self.cg_tol),
            ));
        }
        if self.cg_max_iters == 0 {
            return Err(Error::config("rfm.cg_max_iters", "must be ≥ 1"));
        }
        if self.cg_rank == 0 {
            return Err(Error::config("rfm.cg_rank", "must be ≥ 1"));
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

/// Rows of the kernel per chunk of a CG kernel product (memory: this many × n per thread).
const CG_ROWS: usize = 256;

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

/// What [`kernel_map_into`] writes for a squared M-distance `d²`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entry {
    /// The kernel value `k(d²)`: Laplace `exp(−√d²/L)`, Gaussian `exp(−d²/(2L²))`.
    Value,
    /// The AGOP weight: Laplace `exp(−d/L)/(L·d)` (0 when `d < 1e-10`), Gaussian
    /// `exp(−d²/(2L²))/L²`.
    Weight,
}

/// `col[i] ← entry(max(sq_a[i] + nb − 2·col[i], 0))`: one column of a kernel block, with
/// the branch-free [`vexp::exp`] at the CPU's SIMD width (one loop per kernel and entry,
/// so each is vectorised on its own).
fn map_column(col: &mut [f64], sq_a: &[f64], nb: f64, kernel: Kernel, entry: Entry, l: f64) {
    let d2 = move |v: f64, na: f64| (na + nb - 2.0 * v).max(0.0);
    match (kernel, entry) {
        (Kernel::Laplace, Entry::Value) => {
            vexp::map_zip(col, sq_a, |v, na| vexp::exp(-d2(v, na).sqrt() / l))
        }
        (Kernel::Gaussian, Entry::Value) => {
            vexp::map_zip(col, sq_a, |v, na| vexp::exp(-d2(v, na) / (2.0 * l * l)))
        }
        (Kernel::Laplace, Entry::Weight) => vexp::map_zip(col, sq_a, |v, na| {
            let dist = d2(v, na).sqrt();
            let w = vexp::exp(-dist / l) / (l * dist);
            if dist < 1e-10 {
                0.0
            } else {
                w
            }
        }),
        (Kernel::Gaussian, Entry::Weight) => vexp::map_zip(col, sq_a, |v, na| {
            vexp::exp(-d2(v, na) / (2.0 * l * l)) / (l * l)
        }),
    }
}

/// `dst[i, j] ← entry(d²_ij)` (see [`Entry`]) for the squared M-distances
/// `d²_ij = max(‖a_i‖²_M + ‖b_j‖²_M − 2 a_i M b_jᵀ, 0)` between the rows of `a` (with
/// `‖a_i‖²_M` = `sq_a`) and of b (given in the metric, `mb`): one GEMM `a (bM)ᵀ` into
/// `dst`, then the map over column slices ([`map_column`]), in parallel over column
/// blocks (results do not depend on `par`).
#[allow(clippy::too_many_arguments)]
fn kernel_map_into(
    mut dst: MatMut<'_, f64>,
    a: MatRef<'_, f64>,
    sq_a: &[f64],
    mb: &Metric,
    par: Par,
    kernel: Kernel,
    entry: Entry,
    l: f64,
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
            map_column(col_mut(blk.as_mut(), j), sq_a, sq[(0, j)], kernel, entry, l);
        }
    });
}

/// What one kernel solve did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SolveInfo {
    /// The solver used (`cholesky` or `cg`).
    pub solver: Solver,
    /// CG iterations (0 for the Cholesky).
    pub iterations: usize,
    /// Largest relative residual `‖(K + reg·I)a − y‖/‖y‖` over the outputs (CG only; the
    /// Cholesky's is not computed: NaN).
    pub rel_residual: f64,
    /// Bytes of the largest matrices the solve held (the n² kernel for the Cholesky; the
    /// n × r Nyström factor, the block of kernel rows and the CG vectors for CG).
    pub bytes: usize,
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

    /// The solver `solve` uses for n training points (`auto` resolved).
    pub fn solver_for(cfg: &RfmConfig, n: usize) -> Solver {
        match cfg.solver {
            Solver::Auto => {
                let bytes = 8.0 * (n as f64) * (n as f64);
                if bytes <= cfg.dense_max_gib * (1u64 << 30) as f64 {
                    Solver::Cholesky
                } else {
                    Solver::Cg
                }
            }
            s => s,
        }
    }

    /// Kernel ridge regression with the current M: `a = (K_M(X, X) + reg·I)⁻¹ Y`, by the
    /// solver [`Rfm::solver_for`] picks ([`Rfm::solve_dense`] or [`Rfm::solve_cg`]).
    pub fn solve(&mut self, y: MatRef<'_, f64>) -> Result<SolveInfo> {
        match Self::solver_for(&self.cfg, self.x.nrows()) {
            Solver::Cg => self.solve_cg(y),
            _ => self.solve_dense(y),
        }
    }

    /// The dense solve: the kernel matrix (one GEMM and a vectorised map), factorised by
    /// Cholesky in place (n² numbers; faer, with this machine's `par`, whose results do
    /// not depend on the thread count: test `rfm_fit_is_bitwise_identical_for_any_thread_count`).
    pub fn solve_dense(&mut self, y: MatRef<'_, f64>) -> Result<SolveInfo> {
        let n = self.x.nrows();
        let metric = Metric::new(self.x.as_ref(), self.m.as_ref(), self.par);
        let mut k = Mat::<f64>::zeros(n, n);
        kernel_map_into(
            k.as_mut(),
            self.x.as_ref(),
            &metric.sq,
            &metric,
            self.par,
            self.cfg.kernel,
            Entry::Value,
            self.cfg.bandwidth,
        );
        for i in 0..n {
            k[(i, i)] = 1.0 + self.cfg.reg;
        }
        let par = self.par;
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
        Ok(SolveInfo {
            solver: Solver::Cholesky,
            iterations: 0,
            rel_residual: f64::NAN,
            bytes: 8 * n * n,
        })
    }

    /// `out ← (K_M(X, X) + reg·I) v` (n × c), matrix-free: the kernel in chunks of
    /// [`CG_ROWS`] rows, each chunk's kernel block (one sequential GEMM and map) times v;
    /// the chunks run in parallel on `par`'s threads (the product has only c columns, too
    /// few to split), each into its own rows of `out`, so results do not depend on the
    /// thread count. Memory: one CG_ROWS × n block per thread.
    fn kernel_product(&self, metric: &Metric, v: MatRef<'_, f64>, out: MatMut<'_, f64>) {
        let (kernel, l, reg) = (self.cfg.kernel, self.cfg.bandwidth, self.cfg.reg);
        let x = self.x.as_ref();
        let chunk = |start: usize, mut dst: MatMut<'_, f64>| {
            let b = dst.nrows();
            let mut kb = Mat::<f64>::zeros(b, x.nrows());
            kernel_map_into(
                kb.as_mut(),
                x.subrows(start, b),
                &metric.sq[start..start + b],
                metric,
                Par::Seq,
                kernel,
                Entry::Value,
                l,
            );
            for i in 0..b {
                kb[(i, start + i)] = 1.0;
            }
            matmul(dst.as_mut(), Accum::Replace, kb.as_ref(), v, 1.0, Par::Seq);
            for j in 0..v.ncols() {
                let vj = &col(v, j)[start..start + b];
                for (o, vi) in col_mut(dst.as_mut(), j).iter_mut().zip(vj) {
                    *o += reg * vi;
                }
            }
        };
        fn split<'a>(
            start: usize,
            dst: MatMut<'a, f64>,
            par: bool,
            f: &(impl Fn(usize, MatMut<'a, f64>) + Sync),
        ) {
            let rows = dst.nrows();
            if rows <= CG_ROWS {
                f(start, dst);
                return;
            }
            // split at a multiple of CG_ROWS: the chunks are the same for any thread count
            let mid = rows.div_ceil(CG_ROWS) / 2 * CG_ROWS;
            let (top, bottom) = dst.split_at_row_mut(mid);
            if par {
                rayon::join(
                    || split(start, top, par, f),
                    || split(start + mid, bottom, par, f),
                );
            } else {
                split(start, top, par, f);
                split(start + mid, bottom, par, f);
            }
        }
        let par = matches!(self.par, Par::Rayon(t) if t.get() > 1);
        split(0, out, par, &chunk);
    }

    /// The iterative solve: preconditioned conjugate gradients (Hestenes–Stiefel), one
    /// recursion per output sharing each kernel product, from a = 0, until
    /// `‖r_c‖ ≤ cg_tol·‖y_c‖` for every output c (a converged output is frozen).
    /// Preconditioner: the Nyström approximation from r = min(n, `cg_rank`) landmark
    /// points `L` (every ⌊n/r⌋-th row), `P = C W⁻¹ Cᵀ + reg·I` with `C = K(X, X_L)` (n × r)
    /// and `W = K(X_L, X_L)`, applied by the Woodbury identity
    /// `P⁻¹ v = (v − C (reg·W + CᵀC)⁻¹ Cᵀ v)/reg` (one r × r Cholesky). Memory: the n × r
    /// factor C, one [`CG_ROWS`] × n block of kernel rows per thread and five n × c
    /// matrices — never n².
    /// (Falkon, Rudi, Carratino & Rosasco, NeurIPS 2017, use the same preconditioner.)
    pub fn solve_cg(&mut self, y: MatRef<'_, f64>) -> Result<SolveInfo> {
        let (n, c) = (self.x.nrows(), y.ncols());
        let reg = self.cfg.reg;
        if reg <= 0.0 {
            return Err(Error::config(
                "rfm.reg",
                "the cg solver needs rfm.reg > 0 (its preconditioner divides by it)",
            ));
        }
        let par = self.par;
        let metric = Metric::new(self.x.as_ref(), self.m.as_ref(), par);
        // Nyström landmarks and factor
        let r = self.cfg.cg_rank.min(n);
        let idx: Vec<usize> = (0..r).map(|i| i * n / r).collect();
        let xl = Mat::from_fn(r, self.x.ncols(), |i, k| self.x[(idx[i], k)]);
        let ml = Metric::new(xl.as_ref(), self.m.as_ref(), par);
        let mut cmat = Mat::<f64>::zeros(n, r);
        kernel_map_into(
            cmat.as_mut(),
            self.x.as_ref(),
            &metric.sq,
            &ml,
            par,
            self.cfg.kernel,
            Entry::Value,
            self.cfg.bandwidth,
        );
        for (j, &i) in idx.iter().enumerate() {
            cmat[(i, j)] = 1.0;
        }
        // S = reg·W + CᵀC, W = rows L of C
        let mut smat = Mat::<f64>::zeros(r, r);
        matmul(
            smat.as_mut(),
            Accum::Replace,
            cmat.as_ref().transpose(),
            cmat.as_ref(),
            1.0,
            par,
        );
        for j in 0..r {
            for i in 0..r {
                smat[(i, j)] += reg * 0.5 * (cmat[(idx[i], j)] + cmat[(idx[j], i)]);
            }
        }
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
            r,
            par,
            Default::default(),
        ));
        llt::factor::cholesky_in_place(
            smat.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .map_err(|e| {
            Error::Numerical(format!(
                "RFM Nyström preconditioner is not positive definite ({e:?}); lower rfm.cg_rank or raise rfm.reg"
            ))
        })?;
        let mut smem = MemBuffer::new(llt::solve::solve_in_place_scratch::<f64>(r, c, par));
        let mut ctv = Mat::<f64>::zeros(r, c);
        // z ← P⁻¹ v
        let mut precond = |v: MatRef<'_, f64>, mut z: MatMut<'_, f64>| {
            matmul(
                ctv.as_mut(),
                Accum::Replace,
                cmat.as_ref().transpose(),
                v,
                1.0,
                par,
            );
            llt::solve::solve_in_place(smat.as_ref(), ctv.as_mut(), par, MemStack::new(&mut smem));
            z.copy_from(v);
            matmul(
                z.as_mut(),
                Accum::Add,
                cmat.as_ref(),
                ctv.as_ref(),
                -1.0,
                par,
            );
            for j in 0..c {
                for zi in col_mut(z.as_mut(), j) {
                    *zi /= reg;
                }
            }
        };
        let dot = |a: MatRef<'_, f64>, b: MatRef<'_, f64>, j: usize| -> f64 {
            col(a, j).iter().zip(col(b, j)).map(|(x, y)| x * y).sum()
        };
        let mut a = Mat::<f64>::zeros(n, c);
        let mut res = y.to_owned();
        let mut z = Mat::<f64>::zeros(n, c);
        precond(res.as_ref(), z.as_mut());
        let mut p = z.clone();
        let mut q = Mat::<f64>::zeros(n, c);
        let ynorm: Vec<f64> = (0..c).map(|j| dot(y, y, j).sqrt()).collect();
        let mut rz: Vec<f64> = (0..c).map(|j| dot(res.as_ref(), z.as_ref(), j)).collect();
        let mut active: Vec<bool> = (0..c)
            .map(|j| dot(res.as_ref(), res.as_ref(), j).sqrt() > self.cfg.cg_tol * ynorm[j])
            .collect();
        for (j, &on) in active.iter().enumerate() {
            if !on {
                col_mut(p.as_mut(), j).fill(0.0);
            }
        }
        let mut iters = 0;
        while active.iter().any(|&a| a) {
            if iters == self.cfg.cg_max_iters {
                let worst = (0..c)
                    .map(|j| {
                        dot(res.as_ref(), res.as_ref(), j).sqrt() / ynorm[j].max(f64::MIN_POSITIVE)
                    })
                    .fold(0.0f64, f64::max);
                return Err(Error::Numerical(format!(
                    "RFM conjugate gradients reached rfm.cg_max_iters = {} with relative residual {worst:.3e} > rfm.cg_tol = {:e}; raise rfm.cg_max_iters or rfm.cg_rank, or use rfm.solver = \"cholesky\"",
                    self.cfg.cg_max_iters, self.cfg.cg_tol
                )));
            }
            self.kernel_product(&metric, p.as_ref(), q.as_mut());
            for j in 0..c {
                if !active[j] {
                    continue;
                }
                let alpha = rz[j] / dot(p.as_ref(), q.as_ref(), j);
                for (ai, pi) in col_mut(a.as_mut(), j).iter_mut().zip(col(p.as_ref(), j)) {
                    *ai += alpha * pi;
                }
                for (ri, qi) in col_mut(res.as_mut(), j).iter_mut().zip(col(q.as_ref(), j)) {
                    *ri -= alpha * qi;
                }
            }
            precond(res.as_ref(), z.as_mut());
            for j in 0..c {
                if !active[j] {
                    continue;
                }
                if dot(res.as_ref(), res.as_ref(), j).sqrt() <= self.cfg.cg_tol * ynorm[j] {
                    active[j] = false;
                    col_mut(p.as_mut(), j).fill(0.0);
                    continue;
                }
                let rz_new = dot(res.as_ref(), z.as_ref(), j);
                let beta = rz_new / rz[j];
                rz[j] = rz_new;
                for (pi, zi) in col_mut(p.as_mut(), j).iter_mut().zip(col(z.as_ref(), j)) {
                    *pi = zi + beta * *pi;
                }
            }
            iters += 1;
        }
        let worst = (0..c)
            .map(|j| dot(res.as_ref(), res.as_ref(), j).sqrt() / ynorm[j].max(f64::MIN_POSITIVE))
            .fold(0.0f64, f64::max);
        let threads = match par {
            Par::Seq => 1,
            Par::Rayon(t) => t.get(),
        };
        self.coef = a;
        Ok(SolveInfo {
            solver: Solver::Cg,
            iterations: iters,
            rel_residual: worst,
            bytes: 8 * (n * r + threads * CG_ROWS.min(n) * n + 5 * n * c + r * r),
        })
    }

    /// Predictions on `x` (q × c): `K_M(x, X) a`, in blocks of [`KERNEL_ROWS`] rows.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        self.predict_impl(x, false)
    }

    /// Predictions at the training points themselves, `K_M(X, X) a`, with every self pair's
    /// kernel value exactly `k(0) = 1` (as in [`Rfm::solve`]; module docs, *Self pairs*).
    pub fn predict_train(&self) -> Mat<f64> {
        self.predict_impl(self.x.as_ref(), true)
    }

    fn predict_impl(&self, x: MatRef<'_, f64>, training: bool) -> Mat<f64> {
        let metric = Metric::new(self.x.as_ref(), self.m.as_ref(), self.par);
        let (q, n) = (x.nrows(), self.x.nrows());
        let mut out = Mat::zeros(q, self.coef.ncols());
        let mut kb = Mat::<f64>::zeros(KERNEL_ROWS.min(q), n);
        let mut start = 0;
        while start < q {
            let b = KERNEL_ROWS.min(q - start);
            let xb = x.subrows(start, b);
            let mb = Metric::new(xb, self.m.as_ref(), self.par);
            let mut kbv = kb.as_mut().subrows_mut(0, b);
            kernel_map_into(
                kbv.as_mut(),
                xb,
                &mb.sq,
                &metric,
                self.par,
                self.cfg.kernel,
                Entry::Value,
                self.cfg.bandwidth,
            );
            if training {
                for i in 0..b {
                    kbv[(i, start + i)] = 1.0;
                }
            }
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
                kind,
                Entry::Weight,
                l,
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
            train_mse: mse(rfm.predict_train(), y),
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
