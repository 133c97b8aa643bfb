//! Closed-form AGF predictions for the attention-only linear transformer on in-context
//! linear regression (Kunin et al. 2025, §3.3; checked numbers in the AGF digest §7.2).
//!
//! Conventions: loss L = ½ E[(ŷ − y_{N+1})²] (population), gradient flow dθ/dt = −∇L, time t
//! in gradient-flow units. Σ has eigenvalues λ_1 ≥ … ≥ λ_D with eigenvectors e_k (the
//! principal components), context length N, task vector w ~ N(0, I).
//!
//! * Heads learn principal components one at a time in decreasing λ order; after head k
//!   its contribution to M = Σ_h v_h k_h q_hᵀ is m_k e_k e_kᵀ with
//!   `m_k = 1 / (trΣ + (N+1) λ_k)` (the singular values of M).
//! * Loss levels `ℓ^(k) = ½ [trΣ − Σ_{i≤k} N λ_i² / ((N+1) λ_i + trΣ)]`, ℓ^(0) = ½ trΣ.
//! * While PCs 1..k−1 are learned, the residual utility of a dormant head is
//!   U = v kᵀ (N Σ_{i≥k} λ_i² e_i e_iᵀ) q, maximal on the unit sphere v² + ‖k‖² + ‖q‖² = 1 at
//!   `Ū*_k = N λ_k² / (3√3)` (v = ‖k‖ = ‖q‖ = 1/√3, k, q ∝ e_k).
//! * Jump-time lower bound: a dormant head of norm ρ at t_{k−1} grows at most like
//!   dρ/dt = 3 ρ² Ū*_k, which blows up after `√3 / (N λ_k² ρ)`:
//!   `t_k ≥ t_{k−1} + √3 / (N λ_k² max_{dormant h} ‖θ_h(t_{k−1})‖)`.
#![allow(clippy::needless_range_loop, clippy::useless_vec)] // index-heavy numeric kernels (shapes in comments)

/// Closed forms for one covariance spectrum and context length.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionTheory {
    /// Eigenvalues of Σ, decreasing.
    pub eigenvalues: Vec<f64>,
    /// Context length N.
    pub context: usize,
}

impl AttentionTheory {
    /// Theory for Σ's eigenvalues (any order; sorted decreasingly here) and context N.
    pub fn new(eigenvalues: &[f64], context: usize) -> Self {
        let mut l = eigenvalues.to_vec();
        l.sort_by(|a, b| b.total_cmp(a));
        AttentionTheory {
            eigenvalues: l,
            context,
        }
    }

    /// trΣ.
    pub fn trace(&self) -> f64 {
        self.eigenvalues.iter().sum()
    }

    /// Learned values m_k = 1/(trΣ + (N+1)λ_k), k = 1..D (index 0 = first PC).
    pub fn values(&self) -> Vec<f64> {
        let (n, tr) = (self.context as f64, self.trace());
        self.eigenvalues
            .iter()
            .map(|l| 1.0 / (tr + (n + 1.0) * l))
            .collect()
    }

    /// Loss levels ℓ^(0..=D).
    pub fn levels(&self) -> Vec<f64> {
        let (n, tr) = (self.context as f64, self.trace());
        let mut out = vec![0.5 * tr];
        let mut l = 0.5 * tr;
        for &lam in &self.eigenvalues {
            if lam > 0.0 {
                l -= 0.5 * n * lam * lam / ((n + 1.0) * lam + tr);
            }
            out.push(l);
        }
        out
    }

    /// Maximal normalised utility Ū*_k = Nλ_k²/(3√3) while PC k is the largest unlearned one.
    pub fn max_utility(&self, k: usize) -> f64 {
        self.context as f64 * self.eigenvalues[k].powi(2) / (3.0 * 3f64.sqrt())
    }

    /// Lower bound on the jump time of PC k given the previous jump time and the largest
    /// dormant head norm then: t_prev + √3/(N λ_k² ρ).
    pub fn jump_lower_bound(&self, k: usize, t_prev: f64, rho: f64) -> f64 {
        t_prev + 1.0 / (3.0 * self.max_utility(k) * rho)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_numbers_of_the_digest() {
        // D = 4, N = 32, λ ∝ (1, 1/2, 1/3, 1/4) with Σλ = 2 (AGF digest §7.2).
        let z: f64 = [1.0, 0.5, 1.0 / 3.0, 0.25].iter().sum();
        let lam: Vec<f64> = [1.0, 0.5, 1.0 / 3.0, 0.25]
            .iter()
            .map(|l| 2.0 * l / z)
            .collect();
        let th = AttentionTheory::new(&lam, 32);
        let m = th.values();
        for (a, b) in m.iter().zip([0.02969, 0.05605, 0.07962, 0.10081]) {
            assert!((a - b).abs() < 6e-6, "{a} vs {b}");
        }
        for (a, b) in th
            .levels()
            .iter()
            .zip([1.0, 0.562185, 0.355549, 0.225103, 0.132199])
        {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
