//! Finite-width and common-mode corrections to the unlearning limit ODE — featlab's own
//! derivation for its model of Imai, Nishiyama & Imaizumi 2026 (arXiv 2602.07378).
//!
//! **Equiangular reduction (exact at finite N).** Take N unit neurons
//! `w_j = m θ* + sqrt(1−m²) ξ_j` with equal second-layer weights a and *equal pair overlaps*
//! `ξ_i·ξ_j = q` (i ≠ j): orthonormal ξ (q = 0) or a regular simplex (q = −1/(N−1)). The
//! permutation symmetry is preserved by the population gradient flow, so the flow closes on
//! three numbers: m, the squared common orthogonal component `p = |mean_j w_j − m θ*|²`, and a.
//! With `b = |w̄|² = m² + p` the pair overlap is `ρ = (N b − 1)/(N − 1)` and the exact population
//! loss (mean-field, `f = (1/N) Σ a σ(w_j·x)`) is
//!
//! `L_N = ½Σc*_k² − a g(m) + (a²/2)[K(1)/N + (1 − 1/N) K(ρ)]`, `g = Σ c*_k c_k m^k`, `K = Σ c_k² ρ^k`.
//!
//! Projected gradient flow (first-layer rate N, second-layer rate εN, as in the simulator):
//! `dw_j/dt = P_j v`, `v = a g'(m) θ* − a² K'(ρ) w̄` (the self term is killed by the projection),
//! which gives
//!
//! * `dm/dt = a g'(m)(1 − m²) − a² K'(ρ) m (1 − m² − p)`,
//! * `dp/dt = −2p [a² K'(ρ)(1 − m² − p) + a g'(m) m]`,
//! * `da/dt = ε [g(m) − a (K(1)/N + (1 − 1/N) K(ρ))]`.
//!
//! N = ∞ gives `ρ = m² + p`; with p = 0 it is the 2-D limit ODE of [`super::LimitModel`].
//! The simplex (p = 0) is invariant: for `σ = c_1h_1 + c_2h_2` the loss is exactly
//! `L + (a²/2) c_2² (1 − m²)²/(N − 1)` (self-interaction), and for a linear teacher the
//! interior fixed point is `m_∞⁴ = 1/N` whatever c_1, c_2, c*_1: **finite width stops
//! unlearning at `m_∞ = N^{−1/4}`**.
//!
//! **SGD noise (large batch, `λ = η d / B`).** Per step each neuron receives a tangent kick of
//! mean square `η² a² (d/B) V`, `V = E[e² σ'(u_j)²]` (`e` the residual), and renormalising
//! shrinks m and the common component (Itô drift). The kicks are *shared* (same samples), so
//! their neuron average, of mean square `η² a² (d/B) V_c`, `V_c = E[e² (mean_j σ'(u_j))²]`,
//! feeds p:
//!
//! * `dm/dt += −(λ/2) a² m V`,   `dp/dt += λ a² (V_c − p V)`
//!
//! (leading order in λ and in 1/N separately: the O(λ/N) parts, e.g. the idiosyncratic
//! `(V − V_c)/N` of the neuron average, are dropped).
//!
//! The expectations run over `z = θ*·x`, the common direction `ζ` and an idiosyncratic g:
//! `u_j = m z + √p ζ + √(1−m²−p) g`, `e = a Σ c_k b^{k/2} h_k(ū/√b) − σ*(z)`, `ū = m z + √p ζ`
//! (mean-field output), by a 3-D Gauss–Hermite rule. With p ≡ 0 and without the `dp/dt` noise
//! feed this is the per-neuron correction of [`super::LimitModel::with_noise`].

use super::hermite::{hermite_values, GaussHermite, HermiteSeries};
use super::integrate_order_parameters;
use crate::train::ode::from_fn;
use crate::{Error, Result};

/// The equiangular (m, p, a) system at width N (∞ allowed), optionally with SGD noise.
#[derive(Debug, Clone)]
pub struct EquiangularModel {
    pub student: HermiteSeries,
    pub teacher: HermiteSeries,
    /// Second-/first-layer learning-rate ratio ε.
    pub eps: f64,
    /// Width N (`f64::INFINITY` for the limit).
    pub width: f64,
    /// Noise strength `λ = η d / B` (0: population flow).
    pub noise: f64,
    /// Keep the shared-noise feed `λ a² V_c` of p (false: only the per-neuron Itô terms).
    pub common_mode: bool,
    quad: GaussHermite,
}

impl EquiangularModel {
    /// The population flow at width `width` (> 1, or infinite).
    pub fn new(
        student: HermiteSeries,
        teacher: HermiteSeries,
        eps: f64,
        width: f64,
    ) -> Result<Self> {
        if width.is_nan() || width <= 1.0 {
            return Err(Error::config(
                "width",
                format!("the equiangular reduction needs N > 1 (or ∞), got {width}"),
            ));
        }
        // e² σ'² has degree 2·max(deg σ, deg σ*) + 2·(deg σ − 1); exact with n > half of it.
        let deg = student.len().max(teacher.len()) + student.len();
        let quad = GaussHermite::new(deg + 2)?;
        Ok(EquiangularModel {
            student,
            teacher,
            eps,
            width,
            noise: 0.0,
            common_mode: true,
            quad,
        })
    }
    /// Add SGD noise of strength `λ = η d / B`; `common_mode = false` keeps only the
    /// per-neuron Itô terms.
    pub fn with_noise(mut self, lambda: f64, common_mode: bool) -> Self {
        self.noise = lambda;
        self.common_mode = common_mode;
        self
    }
    /// `(g(m), g'(m))`, `g = Σ c*_k c_k m^k`.
    pub(super) fn g(&self, m: f64) -> (f64, f64) {
        let n = self.student.len().max(self.teacher.len());
        let (mut g, mut dg) = (0.0, 0.0);
        for k in 0..n {
            let c = self.teacher.c(k) * self.student.c(k);
            g += c * m.powi(k as i32);
            if k > 0 {
                dg += k as f64 * c * m.powi(k as i32 - 1);
            }
        }
        (g, dg)
    }
    /// Pair overlap `ρ = (N(m² + p) − 1)/(N − 1)` (`m² + p` at N = ∞).
    pub fn pair_overlap(&self, m: f64, p: f64) -> f64 {
        let b = m * m + p;
        if self.width.is_infinite() {
            b
        } else {
            (self.width * b - 1.0) / (self.width - 1.0)
        }
    }
    /// `1/N` (0 at N = ∞).
    pub(super) fn self_weight(&self) -> f64 {
        if self.width.is_infinite() {
            0.0
        } else {
            1.0 / self.width
        }
    }
    /// Exact population loss `L_N(m, p, a)` of the equiangular configuration.
    pub fn loss(&self, m: f64, p: f64, a: f64) -> f64 {
        let s = self.self_weight();
        let rho = self.pair_overlap(m, p);
        0.5 * self.teacher.coeffs.iter().map(|c| c * c).sum::<f64>() - a * self.g(m).0
            + 0.5 * a * a * (s * self.student.kernel(1.0) + (1.0 - s) * self.student.kernel(rho))
    }
    /// Noise variances `(V, V_c)`: `E[e² σ'(u)²]` and `E[e² (E_g σ'(u))²]` (3-D Gauss–Hermite).
    pub fn noise_variances(&self, m: f64, p: f64, a: f64) -> (f64, f64) {
        let b = (m * m + p).max(1e-300);
        let sp = p.max(0.0).sqrt();
        let si = (1.0 - m * m - p).max(0.0).sqrt();
        let sb = b.sqrt();
        let ns = self.student.len();
        let fitted: Vec<f64> = (0..ns)
            .map(|k| a * self.student.c(k) * b.powf(k as f64 / 2.0))
            .collect();
        let mut h = vec![0.0; ns];
        let q = &self.quad;
        let (mut v, mut vc) = (0.0, 0.0);
        for (z, wz) in q.nodes.iter().zip(&q.weights) {
            let y = self.teacher.value(*z);
            for (zeta, wy) in q.nodes.iter().zip(&q.weights) {
                let ubar = m * z + sp * zeta;
                hermite_values(ubar / sb, &mut h);
                let f: f64 = fitted.iter().zip(&h).map(|(c, hk)| c * hk).sum();
                let e2 = (f - y).powi(2);
                let (mut d1, mut d2) = (0.0, 0.0);
                for (g, wg) in q.nodes.iter().zip(&q.weights) {
                    let (_, ds) = self.student.value_and_derivative(ubar + si * g);
                    d1 += wg * ds;
                    d2 += wg * ds * ds;
                }
                v += wz * wy * e2 * d2;
                vc += wz * wy * e2 * d1 * d1;
            }
        }
        (v, vc)
    }
    /// Right-hand side `(dm/dt, dp/dt, da/dt)`.
    pub fn rhs(&self, m: f64, p: f64, a: f64) -> (f64, f64, f64) {
        let s = self.self_weight();
        let rho = self.pair_overlap(m, p);
        let (g, dg) = self.g(m);
        let kp = self.student.kernel_derivative(rho);
        let mut dm = a * dg * (1.0 - m * m) - a * a * kp * m * (1.0 - m * m - p);
        let mut dp = -2.0 * p * (a * a * kp * (1.0 - m * m - p) + a * dg * m);
        let da = self.eps
            * (g - a * (s * self.student.kernel(1.0) + (1.0 - s) * self.student.kernel(rho)));
        if self.noise != 0.0 {
            let (v, vc) = self.noise_variances(m, p, a);
            dm -= 0.5 * self.noise * a * a * m * v;
            dp -= self.noise * a * a * p * v;
            if self.common_mode {
                dp += self.noise * a * a * vc;
            }
        }
        (dm, dp, da)
    }
    /// Integrate from `(m0, p0, a0)`; returns `(m, p, a)` at `save_at` (sorted, ≥ 0).
    pub fn integrate(
        &self,
        m0: f64,
        p0: f64,
        a0: f64,
        save_at: &[f64],
        rtol: f64,
    ) -> Result<Vec<[f64; 3]>> {
        if !(m0 > -1.0 && m0 < 1.0 && p0 >= 0.0 && m0 * m0 + p0 <= 1.0) {
            return Err(Error::config(
                "equiangular.init",
                format!("need |m0| < 1, p0 ≥ 0, m0² + p0 ≤ 1; got m0 = {m0}, p0 = {p0}"),
            ));
        }
        let mut field = from_fn(3, |_t, y: &[f64], dy: &mut [f64]| {
            let (dm, dp, da) = self.rhs(y[0], y[1], y[2]);
            dy[0] = dm;
            dy[1] = dp;
            dy[2] = da;
            Ok(())
        });
        let ys = integrate_order_parameters(&mut field, rtol, &[m0, p0, a0], save_at, 50_000_000)?;
        Ok(ys.iter().map(|y| [y[0], y[1], y[2]]).collect())
    }
    /// Interior fixed points `(m, a)` in `0 < m < 1`, `a > 0` of the simplex (p = 0) population
    /// flow: `dm/dt = 0` gives `a = A_N(m) = g'(m) / (m K'(ρ))`, and the roots of
    /// `da/dt(m, A_N(m))` are found by a sign scan plus bisection.
    pub fn simplex_fixed_points(&self) -> Vec<(f64, f64)> {
        let s = self.self_weight();
        let a_of =
            |m: f64| self.g(m).1 / (m * self.student.kernel_derivative(self.pair_overlap(m, 0.0)));
        let h = |m: f64| {
            let a = a_of(m);
            let rho = self.pair_overlap(m, 0.0);
            self.g(m).0 - a * (s * self.student.kernel(1.0) + (1.0 - s) * self.student.kernel(rho))
        };
        super::fast_slow::scan_roots(h, 1e-6, 1.0 - 1e-9, 4000)
            .into_iter()
            .map(|m| (m, a_of(m)))
            .filter(|(_, a)| a.is_finite() && *a > 0.0)
            .collect()
    }
}
