//! Linearly implicit (Rosenbrock–W) integration for stiff problems, e.g. gradient flow once
//! some neurons are fitted: fast O(1) curvature modes next to plateaus lasting ∝ 1/α, where an
//! explicit method is held to steps ~1/λ_max by stability alone.
//!
//! One step of an `s`-stage Rosenbrock–W method (Hairer–Wanner II, §IV.7, eq. (7.4');
//! Rang & Angermann 2005, eq. (2)) for `y' = f(t, y)` with an *approximate* Jacobian
//! `A ≈ ∂f/∂y` and `f_t ≈ ∂f/∂t`, in the transformed stage variables `u_i = Σ_{j≤i} γ_ij k_j`:
//!
//! ```text
//! W = I/(hγ) − A
//! W u_i = f(t + α_i h, y + Σ_{j<i} a'_ij u_j) + Σ_{j<i} (c'_ij / h) u_j + γ_i h f_t
//! y1  = y + Σ_i m_i u_i            (order p)
//! err = Σ_i (m_i − m̂_i) u_i        (b̂: embedded order p̂ = p − 1)
//! ```
//!
//! with `A' = (a_ij) Γ⁻¹`, `C' = diag(1/γ) − Γ⁻¹`, `m = bᵀΓ⁻¹`, `m̂ = b̂ᵀΓ⁻¹`,
//! `α_i = Σ_j a_ij`, `γ_i = Σ_j γ_ij` computed from the classical coefficients
//! `(a_ij, γ_ij, b, b̂)` of the [`RosenbrockTableau`]. A *W*-method keeps its order for any
//! `A`, so the Jacobian is reused over many steps ([`RosenbrockStepper`]'s policy below) and
//! only `W` is refactorised (dense LU, faer, sequential: bitwise deterministic) when `h`
//! changes.
//!
//! References:
//! * E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer
//!   1996, §IV.7 (Rosenbrock and W-methods, the transformed form, step-size control).
//! * J. Rang, L. Angermann, *New Rosenbrock W-methods of order 3 for partial
//!   differential algebraic equations of index 1*, BIT Numer. Math. 45 (2005) 761–787
//!   (ROS34PW2, Table 3.2; the same coefficients as PETSc's `TSROSWRA34PW2`).

use super::stepper::{check_start, evaluate_start, first_step};
use super::{PidController, PidState, Stats, StepInterval, VectorField};
use crate::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::linalg::matmul::matmul;
use faer::perm::PermRef;
use faer::{Accum, Mat, MatMut, Par};

/// Classical coefficients of a Rosenbrock–W method with an embedded error estimate
/// (Hairer–Wanner II, eq. (7.1)): stage coupling `a_ij` (strictly lower), `γ_ij` (lower,
/// constant diagonal `γ`), weights `b` (order `order`) and `b̂` (order `order − 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RosenbrockTableau {
    /// Config name (`"ros34pw2"`).
    pub name: &'static str,
    /// Order `p` of `y1` (the embedded solution has order `p − 1`).
    pub order: u32,
    /// Diagonal `γ` of Γ.
    pub gamma: f64,
    /// `a[i]` = `a_i0 … a_i(i−1)`.
    pub a: &'static [&'static [f64]],
    /// `g[i]` = `γ_i0 … γ_i(i−1)` (the strictly lower part of Γ).
    pub g: &'static [&'static [f64]],
    /// Weights `b`.
    pub b: &'static [f64],
    /// Embedded weights `b̂`.
    pub b_hat: &'static [f64],
}

impl RosenbrockTableau {
    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.b.len()
    }
    /// Coupling coefficient `a_ij` (0 on and above the diagonal).
    pub fn a_ij(&self, i: usize, j: usize) -> f64 {
        if j < i {
            self.a[i][j]
        } else {
            0.0
        }
    }
    /// Entry `γ_ij` of the lower-triangular Γ (diagonal `γ`, 0 above it).
    pub fn gamma_ij(&self, i: usize, j: usize) -> f64 {
        match j.cmp(&i) {
            std::cmp::Ordering::Less => self.g[i][j],
            std::cmp::Ordering::Equal => self.gamma,
            std::cmp::Ordering::Greater => 0.0,
        }
    }
    /// Node sums `α_i = Σ_j a_ij`.
    pub fn alpha(&self) -> Vec<f64> {
        self.a.iter().map(|row| row.iter().sum()).collect()
    }
    /// Row sums of Γ, `g_i = Σ_{j≤i} γ_ij` (diagonal `γ` included).
    pub fn gamma_sums(&self) -> Vec<f64> {
        self.g
            .iter()
            .map(|row| row.iter().sum::<f64>() + self.gamma)
            .collect()
    }
    /// Weights `[b¹, b², b³]` of the continuous extension `y(t0 + θh) = y0 + Σ_i b_i(θ) k_i`,
    /// `b_i(θ) = θ b¹_i + θ² b²_i + θ³ b³_i` with `b¹ + b² + b³ = b` (so `θ = 1` gives the
    /// step's `y1`), derived here rather than tabulated. With `α_i = Σ_j a_ij`,
    /// `g_i = Σ_{j≤i} γ_ij`, `β_ij = a_ij + γ_ij` (diagonal `γ` included) and
    /// `β_i = Σ_{j≤i} β_ij`, the interpolant must reproduce the Taylor expansion of the exact
    /// solution over `θh`:
    ///
    /// ```text
    /// Σ b_i(θ) = θ,   Σ b_i(θ) α_i = θ²/2,   Σ b_i(θ) α_i² = θ³/3,   Σ_ij b_i(θ) β_ij β_j = θ³/6,
    /// Σ b_i(θ) g_i = 0
    /// ```
    ///
    /// (the order conditions of Hairer–Wanner II, §IV.7, with `θ^ρ(t)` on the right as for
    /// every continuous extension). Matching powers of θ, the first four fix `b¹` and `b²`
    /// (four stages, four conditions each); `b³ = b − b¹ − b²` then satisfies the θ³ terms
    /// because `b` is of order 3. The last condition is not imposed: for ROS34PW2 it follows
    /// (the rows are dependent; checked here to 1e-12). So the interpolant is of order 2 for
    /// any Jacobian approximation `A` (the W-method conditions `Σ bα = θ²/2`, `Σ bg = 0`) and
    /// of order 3 where `A = ∂f/∂y` — one order above the embedded solution, as the cubic
    /// Hermite interpolant it replaces. Built from the stages, it inherits their damping of
    /// stiff components: on `y' = λy`, `|R(z, θ)| ≤ 1` for every real `z ≤ 0` and
    /// `θ ∈ [0, 1]` (checked in the tests; `R(−∞, θ)` dips to ≈ −0.72 and returns to 0 at
    /// θ = 1), whereas the Hermite interpolant's end slopes `h·f` multiply a step end's
    /// tolerated distance from the slow manifold by `h·λ`.
    ///
    /// # Panics
    /// Unless the method has four stages and the conditions are regular and consistent; all
    /// hold for [`ROS34PW2`].
    pub fn continuous_extension(&self) -> [Vec<f64>; 3] {
        use faer::linalg::solvers::Solve;
        let s = self.stages();
        assert_eq!(
            s, 4,
            "continuous extension derived for 4-stage methods only"
        );
        let (a, gam) = (|i, j| self.a_ij(i, j), |i, j| self.gamma_ij(i, j));
        let (alpha, gsum) = (self.alpha(), self.gamma_sums());
        let beta: Vec<f64> = (0..s).map(|i| alpha[i] + gsum[i]).collect();
        let beta2: Vec<f64> = (0..s)
            .map(|i| (0..s).map(|j| (a(i, j) + gam(i, j)) * beta[j]).sum())
            .collect();
        let alpha2: Vec<f64> = alpha.iter().map(|x| x * x).collect();
        let rows = [vec![1.0; s], alpha, alpha2, beta2];
        let lu = Mat::from_fn(s, s, |r, c| rows[r][c]).partial_piv_lu();
        let solve = |rhs: [f64; 4]| -> Vec<f64> {
            let x = lu.solve(Mat::from_fn(s, 1, |r, _| rhs[r]));
            (0..s).map(|i| x[(i, 0)]).collect()
        };
        let b1 = solve([1.0, 0.0, 0.0, 0.0]);
        let b2 = solve([0.0, 0.5, 0.0, 0.0]);
        let b3: Vec<f64> = (0..s).map(|i| self.b[i] - b1[i] - b2[i]).collect();
        for w in [&b1, &b2, &b3] {
            let wg: f64 = w.iter().zip(&gsum).map(|(x, y)| x * y).sum();
            assert!(
                w.iter().all(|v| v.is_finite()) && wg.abs() < 1e-12,
                "no W-order-2 continuous extension of {} from these conditions",
                self.name
            );
        }
        [b1, b2, b3]
    }
    /// The built-in method called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<&'static RosenbrockTableau> {
        [&ROS34PW2]
            .into_iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

/// ROS34PW2 (Rang & Angermann 2005, Table 3.2): 4 stages, order 3 with an embedded order-2
/// solution, a W-method (order 3 for any Jacobian approximation), L-stable and stiffly
/// accurate (`b_i = a_4i + γ_4i`). Three new `f` evaluations per step plus `f(t1, y1)`.
#[allow(clippy::excessive_precision)] // the published 17-digit values, verbatim
pub const ROS34PW2: RosenbrockTableau = RosenbrockTableau {
    name: "ros34pw2",
    order: 3,
    gamma: 4.358_665_215_084_59e-1,
    a: &[
        &[],
        &[8.717_330_430_169_180_1e-1],
        &[8.445_706_001_536_942_3e-1, -1.129_906_423_648_418_5e-1],
        &[0.0, 0.0, 1.0],
    ],
    g: &[
        &[],
        &[-8.717_330_430_169_180_1e-1],
        &[-9.033_805_701_304_408_2e-1, 5.418_067_238_809_532_6e-2],
        &[
            2.421_238_070_609_534_6e-1,
            -1.223_250_583_904_514_7,
            5.452_602_553_351_021_4e-1,
        ],
    ],
    b: &[
        2.421_238_070_609_534_6e-1,
        -1.223_250_583_904_514_7,
        1.545_260_255_335_102,
        4.358_665_215_084_59e-1,
    ],
    b_hat: &[
        3.781_090_314_581_936_9e-1,
        -9.604_229_221_242_317_8e-2,
        0.5,
        2.179_332_607_542_295e-1,
    ],
};

/// Coefficients of the transformed form (module docs), computed once per stepper.
#[derive(Debug, Clone)]
struct Transformed {
    s: usize,
    gamma: f64,
    /// `a'_ij` (row-major s×s, strictly lower).
    a: Vec<f64>,
    /// `c'_ij` (row-major s×s, strictly lower).
    c: Vec<f64>,
    m: Vec<f64>,
    m_err: Vec<f64>,
    /// Continuous extension in the transformed variables: `y(t0 + θh) = y0 + Σ_i (θ d¹_i +
    /// θ² d²_i + θ³ d³_i) u_i`, `dᵏ = bᵏᵀ Γ⁻¹` ([`RosenbrockTableau::continuous_extension`]).
    dense: [Vec<f64>; 3],
    alpha: Vec<f64>,
    gsum: Vec<f64>,
}

impl Transformed {
    fn new(tab: &RosenbrockTableau) -> Self {
        let s = tab.stages();
        // Γ (lower triangular) and its inverse by forward substitution.
        let gam = |i, j| tab.gamma_ij(i, j);
        let mut ginv = vec![0.0; s * s];
        for col in 0..s {
            for i in 0..s {
                let rhs = if i == col { 1.0 } else { 0.0 };
                let acc: f64 = (0..i).map(|k| gam(i, k) * ginv[k * s + col]).sum();
                ginv[i * s + col] = (rhs - acc) / tab.gamma;
            }
        }
        let aa = |i, j| tab.a_ij(i, j);
        let mut a = vec![0.0; s * s];
        let mut c = vec![0.0; s * s];
        for i in 0..s {
            for j in 0..i {
                a[i * s + j] = (0..s).map(|k| aa(i, k) * ginv[k * s + j]).sum();
                c[i * s + j] = -ginv[i * s + j];
            }
        }
        let mt = |w: &[f64]| -> Vec<f64> {
            (0..s)
                .map(|j| (0..s).map(|k| w[k] * ginv[k * s + j]).sum())
                .collect()
        };
        let m = mt(tab.b);
        let m_hat = mt(tab.b_hat);
        let [b1, b2, b3] = tab.continuous_extension();
        Transformed {
            dense: [mt(&b1), mt(&b2), mt(&b3)],
            s,
            gamma: tab.gamma,
            m_err: m.iter().zip(&m_hat).map(|(x, y)| x - y).collect(),
            m,
            a,
            c,
            alpha: tab.alpha(),
            gsum: tab.gamma_sums(),
        }
    }
}

/// A scaled error above this (or non-finite) is taken as a stability failure of the stale
/// Jacobian rather than an inaccurate step: the Jacobian is refreshed before the retry.
const STABILITY_FAILURE: f64 = 1e3;

/// With coordinate selection, the Jacobian is refreshed before a step of size h with
/// h·max_{j∉S} Σ_i|A_ij| above this (the left-out part must stay well inside the explicit
/// stability region).
const SELECT_REFRESH: f64 = 0.5;

/// Default number of accepted steps after which the Jacobian is re-evaluated
/// ([`RosenbrockStepper::set_jacobian_max_age`]).
pub const DEFAULT_JACOBIAN_MAX_AGE: u64 = 20;

/// Adaptive Rosenbrock–W stepper (module docs) under a [`PidController`], one accepted step
/// per [`step`](RosenbrockStepper::step), with the same contract as [`super::RkStepper`]
/// (forward only, never past `t_max`, landing exactly on it, dense output inside the last
/// accepted step, [`Error::Numerical`] on step-size underflow).
///
/// **Jacobian.** `A = ∂f/∂y` from [`VectorField::jacobian`] if the field provides it, else by
/// forward differences `A e_j = (f(t, y + δ_j e_j) − f(t, y))/δ_j`,
/// `δ_j = √ε · max(|y_j|, 1)` (`n` evaluations), and `f_t = (f(t + δ, y) − f(t, y))/δ`,
/// `δ = √ε · max(|t|, 1)` (one evaluation). It is re-evaluated at the current point
/// (a) at the first step, (b) after rejections (below), and (c) after
/// [`set_jacobian_max_age`](RosenbrockStepper::set_jacobian_max_age) accepted steps. The
/// W-method keeps order 3 whatever `A`; a stale `A` only costs stability, which the error
/// control notices (rejections, then a fresh `A`).
///
/// **W reuse.** General fields: `W = I/(hγ) − A` is LU-factorised only when `A` or `h`
/// changes; to keep `h` (and the factorisation) the accepted-step growth factor is set to 1
/// when the controller proposes a factor in `[1, 1.2]` (Hairer–Wanner II, §IV.8, the `RADAU5`
/// rule). Fields with [`VectorField::symmetric_jacobian`] (gradient flow, `A = −∇²L`): `A`
/// is symmetrised and eigendecomposed once, `A = Q diag(λ) Qᵀ`, and
/// `W⁻¹ = Q diag(1/(1/(hγ) − λ)) Qᵀ` serves every step size (two dense mat-vecs per stage); a
/// singular `W` (`1/(hγ) ≈ λ_k`, possible at saddles where `λ_k > 0`) rejects the step. If the
/// eigendecomposition fails to converge, that Jacobian falls back to the LU path.
///
/// **Coordinate selection** ([`set_explicit_below`](RosenbrockStepper::set_explicit_below),
/// symmetric fields, off by default). Any `A` keeps the W-method's order, so coordinates
/// that are not stiff at the current step size can be left out of it: at each Jacobian
/// evaluation, with `h` the step about to be tried, `S = {j : h·Σ_i |A_ij| ≥ η}` and `A` is
/// replaced by `A_SS` (zero rows and columns off `S`); only the |S|×|S| block is
/// eigendecomposed (O(|S|³) instead of O(n³)) and `W⁻¹ = hγ·I` off `S`. The left-out part
/// `D = A − A_SS` is then treated explicitly (the method reduces to an explicit order-3
/// scheme on it), which is stable while `h·‖D‖` is small: before every attempt with
/// `h·max_{j∉S} Σ_i |A_ij|` > 0.5 the Jacobian is re-evaluated (and `S` grows with `h`).
/// For gradient flow of a sum of neurons this leaves the dormant neurons (Hessian O(α))
/// out of the eigendecomposition on the fast phases.
///
/// **Spectral selection** ([`set_spectral_below`](RosenbrockStepper::set_spectral_below),
/// symmetric fields, off by default). The same argument on the eigenbasis of `A_SS`: at an
/// attempt of size `h` only the eigenpairs with `h·|λ_k| ≥ θ` enter the stage solves,
/// `W⁻¹ = hγ·I + Q_K diag(λ_k/(d(d − λ_k))) Q_Kᵀ`, `d = 1/(hγ)`, the others being treated
/// explicitly (stable: `h·|λ| < θ < 0.5`). The eigenpairs are stored by decreasing |λ|, so
/// `K` is a prefix for every `h` and no refactorisation is needed when `h` changes. A stage
/// solve costs `2·|S|·|K|` instead of `2·|S|²`; on quadratic-net gradient flow ≈ 70% of the
/// eigenvalues lie in the near-null space (`Stats::num_eigen_kept` / `num_eigen_total`).
/// A *rejected* attempt is retried with the same `A` (the W-method's error estimate is valid
/// whatever `A`); a second rejection in a row, or a scaled error above 10³ / non-finite (a
/// stability failure), re-evaluates `A` first.
///
/// **Dense output.** The continuous extension `y0 + Σ_i (θ d¹_i + θ² d²_i + θ³ d³_i) u_i` of
/// the accepted step's own stages ([`RosenbrockTableau::continuous_extension`]): third order
/// with an accurate Jacobian, second order for any, and bounded along stiff directions
/// (h·|λ| ≫ 1) by the step start's distance from the slow manifold. The cubic Hermite
/// interpolant of `(y0, f0, y1, f1)` used before multiplied that distance by the end slope
/// h·λ; on quadratic-net gradient flow at α ≤ 1e-4 it put recorded losses up to 23% above
/// the true, monotone GF loss (docs/agf.md).
///
/// Error order for the controller: `k = p = 3` (local error of the embedded order-2
/// solution), as [`super::RkStepper`] uses for its tableaux.
pub struct RosenbrockStepper {
    tableau: &'static RosenbrockTableau,
    co: Transformed,
    controller: PidController,
    dim: usize,
    initialized: bool,
    jac_max_age: u64,
    t: f64,
    y: Vec<f64>,
    f: Vec<f64>,
    dt_next: f64,
    pid: PidState,
    stats: Stats,
    t_prev: f64,
    y_prev: Vec<f64>,
    dense_valid: bool,
    // Jacobian (column-major n×n), f_t, its age in accepted steps and whether it was taken
    // at the current point.
    jac: Mat<f64>,
    ft: Vec<f64>,
    jac_valid: bool,
    jac_age: u64,
    jac_fresh: bool,
    // Symmetric mode (VectorField::symmetric_jacobian): A = Q diag(λ) Qᵀ, Q in `lu`, and
    // W⁻¹ = Q diag(1/(1/(hγ) − λ)) Qᵀ for every h without refactorising.
    symmetric: bool,
    /// Eigenvalues of A_SS (the first |S| entries).
    eig: Vec<f64>,
    /// Coordinate selection η of the symmetric mode (0: off): coordinates j with
    /// h·Σ_i|A_ij| < η are left out of A (type docs).
    select_eta: f64,
    /// Selected coordinates S (ascending) and the rest; Q (|S|×|S|, top-left block of `q`)
    /// is the eigenvector matrix of A_SS.
    sel: Vec<usize>,
    unsel: Vec<usize>,
    /// Scratch: eigenpair order by decreasing |λ|.
    order: Vec<usize>,
    /// max_{j∉S} Σ_i|A_ij| (0 when nothing is left out).
    dropped_max: f64,
    /// Spectral selection θ of the symmetric mode (0: off): eigenpairs of A_SS with
    /// h·|λ_k| < θ are treated explicitly at step size h (type docs). When on, the
    /// eigenpairs are stored by decreasing |λ|, so those kept at any h are a prefix.
    spectral_theta: f64,
    q: Mat<f64>,
    g: Vec<f64>,
    eig_buf: MemBuffer,
    z: Vec<f64>,
    // LU of W for step size `lu_h` (None: invalid).
    lu: Mat<f64>,
    perm_fwd: Vec<usize>,
    perm_bwd: Vec<usize>,
    lu_h: Option<f64>,
    lu_buf: MemBuffer,
    solve_buf: MemBuffer,
    // Scratch.
    u: Vec<f64>,
    y_stage: Vec<f64>,
    y_new: Vec<f64>,
    f_new: Vec<f64>,
    err: Vec<f64>,
}

impl RosenbrockStepper {
    /// A stepper for `dim`-dimensional states; allocates every buffer (two `dim × dim`
    /// matrices).
    pub fn new(tableau: &'static RosenbrockTableau, controller: PidController, dim: usize) -> Self {
        let co = Transformed::new(tableau);
        let s = co.s;
        RosenbrockStepper {
            tableau,
            co,
            controller,
            dim,
            initialized: false,
            jac_max_age: DEFAULT_JACOBIAN_MAX_AGE,
            t: 0.0,
            y: vec![0.0; dim],
            f: vec![0.0; dim],
            dt_next: 0.0,
            pid: PidState::default(),
            stats: Stats::default(),
            t_prev: 0.0,
            y_prev: vec![0.0; dim],
            dense_valid: false,
            jac: Mat::zeros(dim, dim),
            ft: vec![0.0; dim],
            jac_valid: false,
            jac_age: 0,
            jac_fresh: false,
            lu: Mat::zeros(dim, dim),
            perm_fwd: vec![0; dim],
            perm_bwd: vec![0; dim],
            lu_h: None,
            symmetric: false,
            eig: vec![0.0; dim],
            select_eta: 0.0,
            sel: Vec::with_capacity(dim),
            unsel: Vec::with_capacity(dim),
            order: Vec::with_capacity(dim),
            dropped_max: 0.0,
            spectral_theta: 0.0,
            q: Mat::zeros(dim, dim),
            g: vec![0.0; dim],
            eig_buf: MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
                dim,
                evd::ComputeEigenvectors::Yes,
                Par::Seq,
                Default::default(),
            )),
            z: vec![0.0; dim],
            lu_buf: MemBuffer::new(factor::lu_in_place_scratch::<usize, f64>(
                dim,
                dim,
                Par::Seq,
                Default::default(),
            )),
            solve_buf: MemBuffer::new(solve::solve_in_place_scratch::<usize, f64>(
                dim,
                1,
                Par::Seq,
            )),
            u: vec![0.0; s * dim],
            y_stage: vec![0.0; dim],
            y_new: vec![0.0; dim],
            f_new: vec![0.0; dim],
            err: vec![0.0; dim],
        }
    }

    /// Re-evaluate the Jacobian at least every `age` accepted steps (≥ 1; 1 makes this a
    /// classical Rosenbrock method with a fresh Jacobian each step). Default
    /// [`DEFAULT_JACOBIAN_MAX_AGE`].
    pub fn set_jacobian_max_age(&mut self, age: u64) {
        self.jac_max_age = age.max(1);
    }

    /// Coordinate selection for symmetric Jacobians (type docs): at each Jacobian
    /// evaluation, coordinates j with h·Σ_i|A_ij| < `eta` (h the step about to be tried)
    /// are left out of A, so only the block A_SS is eigendecomposed. 0 (the default)
    /// keeps every coordinate. Errors unless `eta` is finite and in [0, 0.5).
    pub fn set_explicit_below(&mut self, eta: f64) -> Result<()> {
        if !Self::explicit_below_ok(eta) {
            return Err(Error::config(
                "jacobian_explicit_below",
                Self::explicit_below_error(eta),
            ));
        }
        self.select_eta = eta;
        Ok(())
    }

    /// Spectral selection for symmetric Jacobians (type docs): at a step of size h the
    /// eigenpairs (λ_k, q_k) of the eigendecomposed block with h·|λ_k| < `theta` are left
    /// out of W⁻¹ (treated explicitly), so each stage solve costs 2·|S|·K instead of 2·|S|²
    /// (K the eigenpairs kept). 0 (the default) keeps every eigenpair. Errors unless
    /// `theta` is finite and in [0, 0.5).
    pub fn set_spectral_below(&mut self, theta: f64) -> Result<()> {
        if !Self::explicit_below_ok(theta) {
            return Err(Error::config(
                "jacobian_spectral_below",
                Self::explicit_below_error(theta),
            ));
        }
        self.spectral_theta = theta;
        Ok(())
    }

    /// Whether `eta` is a valid [`RosenbrockStepper::set_explicit_below`] threshold.
    pub fn explicit_below_ok(eta: f64) -> bool {
        eta.is_finite() && (0.0..SELECT_REFRESH).contains(&eta)
    }

    /// What is wrong with an invalid threshold `eta`.
    pub(crate) fn explicit_below_error(eta: f64) -> String {
        format!("must be in [0, {SELECT_REFRESH}), got {eta}")
    }

    /// Number of coordinates in the current Jacobian (|S|; the dimension without
    /// coordinate selection or for non-symmetric Jacobians).
    pub fn jacobian_dim(&self) -> usize {
        if self.symmetric {
            self.sel.len()
        } else {
            self.dim
        }
    }

    /// Start at `(t0, y0)` (same contract as [`super::RkStepper::init`]).
    pub fn init(
        &mut self,
        field: &mut dyn VectorField,
        t0: f64,
        y0: &[f64],
        dt0: Option<f64>,
    ) -> Result<()> {
        self.controller.validate()?;
        self.stats = Stats::default();
        self.set_state(field, t0, y0)?;
        let order = f64::from(self.tableau.order);
        self.dt_next = first_step(&self.controller, dt0, || {
            self.stats.num_evals += 1;
            self.controller.initial_step(
                field,
                t0,
                &self.y,
                &self.f,
                order,
                &mut self.y_stage,
                &mut self.f_new,
            )
        })?;
        self.initialized = true;
        Ok(())
    }

    /// Replace the state by `(t, y)`: re-evaluates `f(t, y)`, invalidates dense output, the
    /// Jacobian and the controller history (as [`super::RkStepper::reset_state`]).
    pub fn reset_state(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        if !self.initialized {
            return Err(Error::Numerical(
                "RosenbrockStepper::reset_state called before init".into(),
            ));
        }
        self.set_state(field, t, y)
    }

    fn set_state(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        check_start(field, self.dim, t, y)?;
        self.dense_valid = false;
        self.jac_valid = false;
        self.jac_fresh = false;
        self.lu_h = None;
        self.pid = PidState::default();
        self.t = t;
        evaluate_start(field, t, y, &mut self.y, &mut self.f, &mut self.stats)
    }

    /// Evaluate `A ≈ ∂f/∂y` and `f_t` at the current point (type docs).
    fn update_jacobian(&mut self, field: &mut dyn VectorField, h_ref: f64) -> Result<()> {
        let n = self.dim;
        self.stats.num_jacobians += 1;
        let exact = field.jacobian(self.t, &self.y, self.jac.as_mut())?;
        if !exact {
            let sq = f64::EPSILON.sqrt();
            self.y_stage.copy_from_slice(&self.y);
            for j in 0..n {
                let d = sq * self.y[j].abs().max(1.0);
                self.y_stage[j] = self.y[j] + d;
                let d = self.y_stage[j] - self.y[j]; // exactly representable step
                self.stats.num_evals += 1;
                field.eval(self.t, &self.y_stage, &mut self.f_new)?;
                for i in 0..n {
                    self.jac[(i, j)] = (self.f_new[i] - self.f[i]) / d;
                }
                self.y_stage[j] = self.y[j];
            }
        }
        let dt = f64::EPSILON.sqrt() * self.t.abs().max(1.0);
        let t1 = self.t + dt;
        let dt = t1 - self.t;
        self.stats.num_evals += 1;
        field.eval(t1, &self.y, &mut self.f_new)?;
        for i in 0..n {
            self.ft[i] = (self.f_new[i] - self.f[i]) / dt;
        }
        let finite = (0..n).all(|j| self.jac.col(j).iter().all(|v| v.is_finite()))
            && self.ft.iter().all(|v| v.is_finite());
        if !finite {
            return Err(Error::Numerical(format!(
                "the Jacobian of the vector field is non-finite at t = {:.6e}",
                self.t
            )));
        }
        self.symmetric = field.symmetric_jacobian();
        if self.symmetric {
            // A ← (A + Aᵀ)/2 by 64 × 64 tiles (each pair i < j once, as an element loop would,
            // without striding through all of the column-major A for the transpose)
            const TILE: usize = 64;
            for j0 in (0..n).step_by(TILE) {
                for i0 in (0..=j0).step_by(TILE) {
                    for j in j0..(j0 + TILE).min(n) {
                        for i in i0..(i0 + TILE).min(j) {
                            let v = 0.5 * (self.jac[(i, j)] + self.jac[(j, i)]);
                            self.jac[(i, j)] = v;
                            self.jac[(j, i)] = v;
                        }
                    }
                }
            }
            // coordinates left out of A: h_ref·(column sum) < η
            self.sel.clear();
            self.unsel.clear();
            self.dropped_max = 0.0;
            for j in 0..n {
                let cs: f64 = self.jac.col(j).iter().map(|v| v.abs()).sum();
                if self.select_eta <= 0.0 || h_ref * cs >= self.select_eta {
                    self.sel.push(j);
                } else {
                    self.unsel.push(j);
                    self.dropped_max = self.dropped_max.max(cs);
                }
            }
            let m = self.sel.len();
            for (b, &jb) in self.sel.iter().enumerate() {
                for (a, &ja) in self.sel.iter().enumerate() {
                    self.lu[(a, b)] = self.jac[(ja, jb)];
                }
            }
            let mut lam = faer::diag::Diag::<f64>::zeros(m);
            self.stats.num_factorizations += 1;
            let ok = m == 0
                || evd::self_adjoint_evd(
                    self.lu.as_ref().submatrix(0, 0, m, m),
                    lam.as_mut(),
                    Some(self.q.as_mut().submatrix_mut(0, 0, m, m)),
                    Par::Seq,
                    MemStack::new(&mut self.eig_buf),
                    Default::default(),
                )
                .is_ok();
            if ok {
                let lam = lam.column_vector();
                if self.spectral_theta > 0.0 {
                    // eigenpairs by decreasing |λ| (ties by index: deterministic), so that
                    // those with h·|λ| ≥ θ are the first K columns of Q for every h
                    self.order.clear();
                    self.order.extend(0..m);
                    self.order
                        .sort_by(|&a, &b| lam[b].abs().total_cmp(&lam[a].abs()).then(a.cmp(&b)));
                    for (dst, &src) in self.order.iter().enumerate() {
                        self.eig[dst] = lam[src];
                        self.lu
                            .as_mut()
                            .col_mut(dst)
                            .subrows_mut(0, m)
                            .copy_from(self.q.as_ref().col(src).subrows(0, m));
                    }
                    std::mem::swap(&mut self.lu, &mut self.q);
                } else {
                    for (e, l) in self.eig.iter_mut().zip(lam.iter()) {
                        *e = *l;
                    }
                }
            } else {
                // the QR iteration did not converge: fall back to LU of W for this Jacobian
                self.symmetric = false;
            }
        }
        self.jac_valid = true;
        self.jac_fresh = true;
        self.jac_age = 0;
        self.lu_h = None;
        Ok(())
    }

    /// `r ← W⁻¹ r` in symmetric mode: `W⁻¹ = Q diag(1/(1/(hγ) − λ)) Qᵀ` on the selected
    /// coordinates S, `hγ·I` on the rest (where A is zero). With spectral selection
    /// (`spectral`, eigenpairs by decreasing |λ|, the first `kept` used) the left-out
    /// eigenpairs get `hγ` too: `W⁻¹ = hγ·I + Q_K diag(λ_k/(d(d − λ_k))) Q_Kᵀ` with
    /// `d = 1/(hγ)` (the same operator when K is everything). Returns false if `W` is
    /// (numerically) singular, i.e. some kept `|1/(hγ) − λ_k| ≤ 1e-12/(hγ)`.
    #[allow(clippy::too_many_arguments)]
    fn eig_solve(
        q: &Mat<f64>,
        sel: &[usize],
        unsel: &[usize],
        eig: &[f64],
        spectral: Option<usize>,
        g: &mut [f64],
        z: &mut [f64],
        d: f64,
        r: &mut [f64],
    ) -> bool {
        let m = sel.len();
        let inv_d = 1.0 / d;
        for &j in unsel {
            r[j] *= inv_d;
        }
        if m == 0 {
            return true;
        }
        let full = m == r.len();
        if !full {
            for (k, &j) in sel.iter().enumerate() {
                g[k] = r[j];
            }
        }
        let kept = spectral.unwrap_or(m);
        let qm = q.as_ref().submatrix(0, 0, m, kept);
        {
            let v: &mut [f64] = if full { &mut *r } else { &mut g[..m] };
            if kept > 0 {
                matmul(
                    crate::linalg::view_mut(&mut z[..kept], kept, 1),
                    Accum::Replace,
                    qm.transpose(),
                    crate::linalg::view(v, m, 1),
                    1.0,
                    Par::Seq,
                );
            }
            for (zk, &l) in z[..kept].iter_mut().zip(eig) {
                let w = d - l;
                if w.abs() <= 1e-12 * d || w.is_nan() {
                    return false;
                }
                if spectral.is_some() {
                    *zk *= l / (d * w);
                } else {
                    *zk /= w;
                }
            }
            let accum = if spectral.is_some() {
                for x in v.iter_mut() {
                    *x *= inv_d;
                }
                Accum::Add
            } else {
                Accum::Replace
            };
            if kept > 0 {
                matmul(
                    crate::linalg::view_mut(v, m, 1),
                    accum,
                    qm,
                    crate::linalg::view(&z[..kept], kept, 1),
                    1.0,
                    Par::Seq,
                );
            }
        }
        if !full {
            for (k, &j) in sel.iter().enumerate() {
                r[j] = g[k];
            }
        }
        true
    }

    /// Number of eigenpairs kept at step size `h` under spectral selection (those with
    /// h·|λ| ≥ θ, a prefix of the eigenpairs stored by decreasing |λ|), or None when it
    /// is off.
    fn spectral_kept(&self, h: f64) -> Option<usize> {
        (self.spectral_theta > 0.0).then(|| {
            let m = self.sel.len();
            self.eig[..m].partition_point(|l| h * l.abs() >= self.spectral_theta)
        })
    }

    /// Factorise `W = I/(hγ) − A` (sequential partial-pivoting LU).
    fn factorize(&mut self, h: f64) {
        let n = self.dim;
        let d = 1.0 / (h * self.co.gamma);
        for j in 0..n {
            for i in 0..n {
                self.lu[(i, j)] = -self.jac[(i, j)];
            }
            self.lu[(j, j)] += d;
        }
        self.stats.num_factorizations += 1;
        factor::lu_in_place(
            self.lu.as_mut(),
            &mut self.perm_fwd,
            &mut self.perm_bwd,
            Par::Seq,
            MemStack::new(&mut self.lu_buf),
            Default::default(),
        );
        self.lu_h = Some(h);
    }

    /// `rhs ← W⁻¹ rhs` with the current factorisation.
    fn lu_solve(
        lu: &Mat<f64>,
        fwd: &[usize],
        bwd: &[usize],
        buf: &mut MemBuffer,
        rhs: MatMut<'_, f64>,
    ) {
        let perm = PermRef::new_checked(fwd, bwd, fwd.len());
        solve::solve_in_place(
            lu.as_ref(),
            lu.as_ref(),
            perm,
            rhs,
            Par::Seq,
            MemStack::new(buf),
        );
    }

    /// Advance by one accepted step (contract of [`super::RkStepper::step`]).
    pub fn step(&mut self, field: &mut dyn VectorField, t_max: f64) -> Result<StepInterval> {
        if !self.initialized {
            return Err(Error::Numerical(
                "RosenbrockStepper::step called before init".into(),
            ));
        }
        if t_max.is_nan() || t_max <= self.t {
            return Err(Error::Numerical(format!(
                "RosenbrockStepper::step integrates forward only: t_max = {t_max:e} must exceed t = {:e}",
                self.t
            )));
        }
        let order = f64::from(self.tableau.order);
        let mut rejections = 0u32;
        if !self.jac_valid || self.jac_age >= self.jac_max_age {
            self.update_jacobian(field, self.dt_next)?;
        }
        loop {
            let dt = self.dt_next;
            let attempt = self.controller.next_attempt(self.t, dt, t_max)?;
            let h = attempt.h;
            // the coordinates left out of A must stay explicitly stable at this h
            if self.symmetric && !self.jac_fresh && h * self.dropped_max > SELECT_REFRESH {
                self.update_jacobian(field, h)?;
            }
            self.dense_valid = false;
            let scaled = self.attempt(field, h, attempt.t_new)?;
            self.stats.num_steps += 1;
            let decision = self.controller.adapt(&mut self.pid, scaled, order);
            if decision.accept {
                self.stats.num_accepted += 1;
                self.t_prev = self.t;
                self.t = attempt.t_new;
                std::mem::swap(&mut self.y_prev, &mut self.y);
                std::mem::swap(&mut self.y, &mut self.y_new);
                std::mem::swap(&mut self.f, &mut self.f_new);
                self.dense_valid = true;
                self.jac_age += 1;
                self.jac_fresh = false;
                let factor = if !self.symmetric && (1.0..=1.2).contains(&decision.factor) {
                    1.0
                } else {
                    decision.factor
                };
                self.dt_next = self.controller.after_acceptance(&attempt, dt, factor);
                return Ok(StepInterval {
                    t0: self.t_prev,
                    t1: self.t,
                });
            }
            self.stats.num_rejected += 1;
            rejections += 1;
            self.dt_next = self.controller.after_rejection(
                self.t,
                dt,
                h,
                decision.factor,
                scaled,
                rejections,
                format_args!("{} Rosenbrock method", self.tableau.name),
            )?;
            // An inaccurate step is retried first with the same Jacobian (the W-method's
            // error estimate is valid for any Jacobian); a second rejection in a row, or a
            // non-finite / very large error (a stability failure), refreshes it.
            if !self.jac_fresh
                && (rejections >= 2 || scaled.is_nan() || scaled >= STABILITY_FAILURE)
            {
                self.update_jacobian(field, self.dt_next)?;
            }
        }
    }

    /// One attempt of size `h`: stages, `y_new`, `err`, and `f_new = f(t_new, y_new)` when
    /// acceptable. Returns the scaled error (NaN if anything is non-finite).
    fn attempt(&mut self, field: &mut dyn VectorField, h: f64, t_new: f64) -> Result<f64> {
        if !self.symmetric && self.lu_h != Some(h) {
            self.factorize(h);
        }
        let d = 1.0 / (h * self.co.gamma);
        let n = self.dim;
        let s = self.co.s;
        let kept = if self.symmetric {
            self.spectral_kept(h)
        } else {
            None
        };
        if let Some(k) = kept {
            self.stats.num_eigen_kept += k as u64;
            self.stats.num_eigen_total += self.sel.len() as u64;
        }
        for i in 0..s {
            // stage input and f at it
            let fi: &[f64] = if i == 0 {
                &self.f
            } else {
                self.y_stage.copy_from_slice(&self.y);
                for j in 0..i {
                    let a = self.co.a[i * s + j];
                    if a != 0.0 {
                        axpy(a, &self.u[j * n..(j + 1) * n], &mut self.y_stage);
                    }
                }
                let ti = if self.co.alpha[i] == 1.0 {
                    t_new
                } else {
                    self.t + self.co.alpha[i] * h
                };
                self.stats.num_evals += 1;
                field.eval(ti, &self.y_stage, &mut self.f_new)?;
                &self.f_new
            };
            let gh = self.co.gsum[i] * h;
            let (done, rest) = self.u.split_at_mut(i * n);
            let r = &mut rest[..n];
            for k in 0..n {
                r[k] = fi[k] + gh * self.ft[k];
            }
            for j in 0..i {
                let c = self.co.c[i * s + j] / h;
                if c != 0.0 {
                    axpy(c, &done[j * n..(j + 1) * n], r);
                }
            }
            if self.symmetric {
                if !Self::eig_solve(
                    &self.q,
                    &self.sel,
                    &self.unsel,
                    &self.eig,
                    kept,
                    &mut self.g,
                    &mut self.z,
                    d,
                    r,
                ) {
                    return Ok(f64::NAN); // singular W at this h: reject, shrink
                }
            } else {
                Self::lu_solve(
                    &self.lu,
                    &self.perm_fwd,
                    &self.perm_bwd,
                    &mut self.solve_buf,
                    crate::linalg::view_mut(r, n, 1),
                );
            }
        }
        self.y_new.copy_from_slice(&self.y);
        self.err.fill(0.0);
        for j in 0..s {
            let uj = &self.u[j * n..(j + 1) * n];
            if self.co.m[j] != 0.0 {
                axpy(self.co.m[j], uj, &mut self.y_new);
            }
            if self.co.m_err[j] != 0.0 {
                axpy(self.co.m_err[j], uj, &mut self.err);
            }
        }
        let scaled = self
            .controller
            .scaled_error(&self.err, &self.y, &self.y_new);
        if scaled.is_nan() || scaled > 1.0 {
            return Ok(scaled);
        }
        self.stats.num_evals += 1;
        field.eval(t_new, &self.y_new, &mut self.f_new)?;
        Ok(if self.f_new.iter().all(|v| v.is_finite()) {
            scaled
        } else {
            f64::NAN
        })
    }

    /// Dense output at `t` in the last accepted step: the continuous extension of its
    /// stages (type docs), exact at the ends. Panics as [`super::RkStepper::interpolate`].
    pub fn interpolate(&self, t: f64, out: &mut [f64]) {
        let Some((_, th)) = super::dense::locate(
            "RosenbrockStepper",
            self.dense_valid,
            self.t_prev,
            self.t,
            &self.y_prev,
            &self.y,
            t,
            out,
        ) else {
            return;
        };
        // `u` still holds the accepted attempt's stages: only the next attempt overwrites it.
        let n = self.dim;
        out.copy_from_slice(&self.y_prev);
        for (j, uj) in self.u.chunks_exact(n).enumerate() {
            let d = &self.co.dense;
            let w = th * (d[0][j] + th * (d[1][j] + th * d[2][j]));
            axpy(w, uj, out);
        }
    }

    /// Current time.
    pub fn t(&self) -> f64 {
        self.t
    }
    /// Current state.
    pub fn y(&self) -> &[f64] {
        &self.y
    }
    /// `f(t, y)` at the current point.
    pub fn dy(&self) -> &[f64] {
        &self.f
    }
    /// Work counters since the last `init`.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// The method.
    pub fn tableau(&self) -> &'static RosenbrockTableau {
        self.tableau
    }
    /// Size of the next attempted step.
    pub fn dt_next(&self) -> f64 {
        self.dt_next
    }
}

#[inline]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
