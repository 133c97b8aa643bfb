//! The infinite-width limit ODE of the order parameters (m, a) — featlab's own derivation
//! (the equations of Imai, Nishiyama & Imaizumi 2026, arXiv 2602.07378, are not available to us).
//!
//! Model: `f(x) = (1/N) Σ_j a_j σ(w_j·x)`, `|w_j| = 1`, `x ~ N(0, I_d)`, teacher
//! `y = σ*(z)`, `z = θ*·x`, `σ = Σ c_k h_k`, `σ* = Σ c*_k h_k`. With a symmetric
//! initialisation (all `w_j·θ* = m`, all `a_j = a`, orthogonal parts mutually orthogonal as
//! N, d → ∞) the network output becomes `f(x) → a Σ_k c_k m^k h_k(z)` and the population loss is
//!
//! `L(m, a) = ½ Σ_k r_k²`, residuals `r_k = c*_k − a c_k m^k`.
//!
//! Spherical (projected) gradient flow with first-layer rate 1 and second-layer rate ε gives
//!
//! * fast: `dm/dt = F(m, a) = −(1 − m²) ∂L/∂m = a (1 − m²) Σ_k k c_k m^{k−1} r_k`,
//! * slow: `da/dt = ε G(m, a)`, `G = −∂L/∂a = Σ_k c_k m^k r_k`.
//!
//! Optional per-neuron SGD-noise correction (from the science digest; **refuted** by SGD at
//! several batch sizes — it has the wrong sign, because the minibatch kicks are shared by the
//! neurons; see [`super::finite_width`] and `docs/unlearning.md`): `dm/dt += −(λ/2) a² m V(m, a)` with `λ = η d / B` and
//! `V = E[r(x)² σ'(u)²]`, `r = σ*(z) − a Σ c_k m^k h_k(z)`, `u = m z + sqrt(1−m²) g`.

use super::hermite::{GaussHermite, HermiteSeries};
use super::integrate_order_parameters;
use crate::train::ode::VectorField;
use crate::Result;

/// The two-order-parameter limit system of the unlearning model.
#[derive(Debug, Clone)]
pub struct LimitModel {
    /// Student activation σ (Hermite coefficients c_k).
    pub student: HermiteSeries,
    /// Teacher link σ* (Hermite coefficients c*_k).
    pub teacher: HermiteSeries,
    /// Ratio of second- to first-layer learning rates (the small parameter of the fast–slow split).
    pub eps: f64,
    /// SGD-noise strength `λ = η d / B` of the (refuted) per-neuron correction (0 = population flow).
    pub noise: f64,
    quad: Option<GaussHermite>,
}

impl LimitModel {
    /// The population flow (no noise correction).
    pub fn new(student: HermiteSeries, teacher: HermiteSeries, eps: f64) -> Self {
        LimitModel {
            student,
            teacher,
            eps,
            noise: 0.0,
            quad: None,
        }
    }
    /// Enable the SGD-noise correction with strength `λ = η d / B`; V is evaluated with a
    /// 2-D Gauss–Hermite rule of `points²` nodes (exact for polynomial σ, σ* when
    /// `points ≥ deg σ* + deg σ'`+1).
    pub fn with_noise(mut self, lambda: f64, points: usize) -> Result<Self> {
        self.noise = lambda;
        self.quad = if lambda != 0.0 {
            Some(GaussHermite::new(points)?)
        } else {
            None
        };
        Ok(self)
    }
    /// Number of Hermite orders involved (max of student and teacher lengths).
    pub fn orders(&self) -> usize {
        self.student.len().max(self.teacher.len())
    }
    /// Residual `r_k = c*_k − a c_k m^k`.
    pub fn residual(&self, k: usize, m: f64, a: f64) -> f64 {
        self.teacher.c(k) - a * self.student.c(k) * m.powi(k as i32)
    }
    /// Population loss `L(m, a) = ½ Σ_k (c*_k − a c_k m^k)²`.
    pub fn loss(&self, m: f64, a: f64) -> f64 {
        0.5 * (0..self.orders())
            .map(|k| self.residual(k, m, a).powi(2))
            .sum::<f64>()
    }
    /// `∂L/∂m = −a Σ_k k c_k m^{k−1} r_k`.
    pub fn dloss_dm(&self, m: f64, a: f64) -> f64 {
        -a * self.phi(m, a)
    }
    /// `∂L/∂a = −Σ_k c_k m^k r_k`.
    pub fn dloss_da(&self, m: f64, a: f64) -> f64 {
        -self.slow(m, a)
    }
    /// Interior factor of the fast field, `Φ(m, a) = Σ_k k c_k m^{k−1} r_k` (`F = a(1−m²)Φ`).
    pub fn phi(&self, m: f64, a: f64) -> f64 {
        (1..self.orders())
            .map(|k| k as f64 * self.student.c(k) * m.powi(k as i32 - 1) * self.residual(k, m, a))
            .sum()
    }
    /// `∂Φ/∂m = Σ_k k c_k [(k−1) m^{k−2} r_k − a k c_k m^{2k−2}]`.
    pub fn dphi_dm(&self, m: f64, a: f64) -> f64 {
        (1..self.orders())
            .map(|k| {
                let (kf, c) = (k as f64, self.student.c(k));
                let first = if k >= 2 {
                    (kf - 1.0) * m.powi(k as i32 - 2) * self.residual(k, m, a)
                } else {
                    0.0
                };
                kf * c * (first - a * kf * c * m.powi(2 * k as i32 - 2))
            })
            .sum()
    }
    /// `∂Φ/∂a = −Σ_k k c_k² m^{2k−1}`.
    pub fn dphi_da(&self, m: f64) -> f64 {
        -(1..self.orders())
            .map(|k| k as f64 * self.student.c(k).powi(2) * m.powi(2 * k as i32 - 1))
            .sum::<f64>()
    }
    /// Population fast field `F(m, a) = a (1 − m²) Φ(m, a) = −(1−m²) ∂L/∂m`.
    pub fn fast(&self, m: f64, a: f64) -> f64 {
        a * (1.0 - m * m) * self.phi(m, a)
    }
    /// `∂F/∂m = a[−2m Φ + (1−m²) ∂Φ/∂m]`: a root of F is attracting for the fast flow iff < 0.
    pub fn dfast_dm(&self, m: f64, a: f64) -> f64 {
        a * (-2.0 * m * self.phi(m, a) + (1.0 - m * m) * self.dphi_dm(m, a))
    }
    /// `∂F/∂a = (1−m²)[Φ + a ∂Φ/∂a]`.
    pub fn dfast_da(&self, m: f64, a: f64) -> f64 {
        (1.0 - m * m) * (self.phi(m, a) + a * self.dphi_da(m))
    }
    /// Slow field without ε: `G(m, a) = −∂L/∂a = Σ_k c_k m^k r_k` (`da/dt = ε G`).
    pub fn slow(&self, m: f64, a: f64) -> f64 {
        (0..self.orders())
            .map(|k| self.student.c(k) * m.powi(k as i32) * self.residual(k, m, a))
            .sum()
    }
    /// Noise variance `V(m, a) = E[r(x)² σ'(u)²]` (2-D Gauss–Hermite; 0 without noise).
    pub fn noise_variance(&self, m: f64, a: f64) -> f64 {
        let Some(q) = &self.quad else { return 0.0 };
        let fitted = self.student.smoothed(m);
        let s = (1.0 - m * m).max(0.0).sqrt();
        q.expect2(|z, g| {
            let r = self.teacher.value(z) - a * fitted.value(z);
            let (_, ds) = self.student.value_and_derivative(m * z + s * g);
            r * r * ds * ds
        })
    }
    /// Full right-hand side `(dm/dt, da/dt)` including the noise correction when enabled.
    pub fn rhs(&self, m: f64, a: f64) -> (f64, f64) {
        let mut dm = self.fast(m, a);
        if self.noise != 0.0 {
            dm -= 0.5 * self.noise * a * a * m * self.noise_variance(m, a);
        }
        (dm, self.eps * self.slow(m, a))
    }
    /// Integrate from `(m0, a0)` and return `(m, a)` at each time of `save_at` (sorted, ≥ 0).
    pub fn integrate(
        &self,
        m0: f64,
        a0: f64,
        save_at: &[f64],
        rtol: f64,
    ) -> Result<Vec<(f64, f64)>> {
        let mut field = LimitField(self);
        let ys = integrate_order_parameters(&mut field, rtol, &[m0, a0], save_at, 50_000_000)?;
        Ok(ys.iter().map(|y| (y[0], y[1])).collect())
    }
}

/// [`LimitModel`] as a [`VectorField`] on `(m, a)`.
pub struct LimitField<'a>(pub &'a LimitModel);

impl VectorField for LimitField<'_> {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        let (dm, da) = self.0.rhs(y[0], y[1]);
        dy[0] = dm;
        dy[1] = da;
        Ok(())
    }
}
