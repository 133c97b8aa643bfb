//! Long-time scaling laws of unlearning, derived from the reduced slow flow (featlab's own
//! derivation; the paper's exponents are not available to us).
//!
//! At late times the state follows the interior branch near `m → 0`, where
//! `A(m) ≈ C / m`, `C = c*_1 / c_1` (the linear part of the teacher stays fitted). On
//! `a = C/m` the criterion `S = Σ_{k≥2} (k−1) c_k m^k (a c_k m^k − c*_k)` is a sum of monomials
//! `(k−1) c_k² C m^{2k−1}` (student overshoot) and `−(k−1) c_k c*_k m^k` (teacher term). Let
//! `κ m^q` be the lowest-order non-zero one. If `κ > 0`, `da/dt = ε κ C^q a^{−q}` gives
//!
//! `a(t) ≈ [(q+1) ε κ C^q t]^{1/(q+1)}`, `m(t) ≈ C / a(t)`: exponents `β = α = 1/(q+1)`.
//!
//! With p the student's primary nonlinear order: `q = 2p − 1` (`t^{±1/(2p)}`) when the teacher
//! lacks order p, `q = p` (`t^{±1/(p+1)}`) when `c_p c*_p < 0`. If `κ < 0` the alignment is
//! anchored (a slow fixed point) and there is no decay law.

use super::limit::LimitModel;

/// The derived late-time law `a ≈ A_∞ t^β`, `m ≈ (C/A_∞) t^{−β}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScalingLaw {
    /// Order q of the leading monomial `κ m^q` of S on the hyperbola.
    pub q: i32,
    /// Its coefficient κ (> 0).
    pub kappa: f64,
    /// `C = c*_1 / c_1`.
    pub c: f64,
    /// Growth exponent of a (= decay exponent of m), `1/(q+1)`.
    pub exponent: f64,
    /// `A_∞ = [(q+1) ε κ C^q]^{1/(q+1)}`.
    pub a_prefactor: f64,
}

impl LimitModel {
    /// The late-time decay law, or `None` if the alignment does not decay to 0 (no k = 1
    /// match `c_1 c*_1 > 0`, no nonlinear student term, or the leading term anchors m).
    pub fn scaling_law(&self) -> Option<ScalingLaw> {
        let c = self.teacher.c(1) / self.student.c(1);
        if !(c.is_finite() && c > 0.0) {
            return None;
        }
        let n = self.orders();
        let mut coef = vec![0.0; 2 * n + 1];
        for k in 2..n {
            let (ck, tk, kf) = (self.student.c(k), self.teacher.c(k), k as f64 - 1.0);
            coef[2 * k - 1] += kf * ck * ck * c;
            coef[k] -= kf * ck * tk;
        }
        let (q, kappa) = coef
            .iter()
            .enumerate()
            .find(|(_, v)| **v != 0.0)
            .map(|(q, v)| (q as i32, *v))?;
        if kappa <= 0.0 {
            return None;
        }
        let qf = q as f64;
        let a_prefactor = ((qf + 1.0) * self.eps * kappa * c.powi(q)).powf(1.0 / (qf + 1.0));
        Some(ScalingLaw {
            q,
            kappa,
            c,
            exponent: 1.0 / (qf + 1.0),
            a_prefactor,
        })
    }
}
