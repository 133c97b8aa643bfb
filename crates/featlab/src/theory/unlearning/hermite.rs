//! Normalised (probabilists') Hermite polynomials and Hermite series.
//!
//! `h_k = He_k / sqrt(k!)`, orthonormal under the standard Gaussian: `E[h_k(z) h_l(z)] = δ_kl`.
//! Three-term recurrence `h_{k+1}(z) = (z h_k(z) − sqrt(k) h_{k−1}(z)) / sqrt(k+1)`, derivative
//! `h_k' = sqrt(k) h_{k−1}`. Identities used by the unlearning theory (Mehler / O'Donnell,
//! *Analysis of Boolean Functions* §11.2), each checked numerically in the tests:
//! * smoothing: `E_g[h_k(m z + sqrt(1−m²) g)] = m^k h_k(z)` for g ~ N(0,1) independent of z;
//! * correlation: for standard Gaussians u, v with `E[uv] = ρ`, `E[h_k(u) h_l(v)] = δ_kl ρ^k`.
//!
//! Gauss–Hermite quadrature (weight `e^{−z²/2}/sqrt(2π)`) by Golub–Welsch on the Jacobi matrix
//! of the `h_k` recurrence; exact for polynomials of degree `≤ 2n − 1`.

use crate::linalg::sym_eig;
use crate::{Error, Result};
use faer::Mat;

/// `[h_0(z), …, h_{n−1}(z)]` written into `out` (length n) by the three-term recurrence.
pub fn hermite_values(z: f64, out: &mut [f64]) {
    if out.is_empty() {
        return;
    }
    out[0] = 1.0;
    if out.len() > 1 {
        out[1] = z;
    }
    for k in 1..out.len().saturating_sub(1) {
        out[k + 1] = (z * out[k] - (k as f64).sqrt() * out[k - 1]) / ((k + 1) as f64).sqrt();
    }
}

/// A function `σ(z) = Σ_k c_k h_k(z)` given by its normalised Hermite coefficients
/// (`coeffs[k] = c_k = E[σ(z) h_k(z)]`), as used for both the teacher link σ* and the student
/// activation σ in the unlearning model (Imai, Nishiyama & Imaizumi 2026, arXiv 2602.07378).
#[derive(Debug, Clone, PartialEq)]
pub struct HermiteSeries {
    /// `c_0, c_1, …` (trailing zeros allowed).
    pub coeffs: Vec<f64>,
}

impl HermiteSeries {
    /// A series from its coefficients; errors (naming `key`) if empty or non-finite.
    pub fn new(coeffs: Vec<f64>, key: &str) -> Result<Self> {
        if coeffs.is_empty() {
            return Err(Error::config(
                key,
                "needs at least one Hermite coefficient, e.g. [0.0, 1.0, 0.5]",
            ));
        }
        if let Some(i) = coeffs.iter().position(|c| !c.is_finite()) {
            return Err(Error::config(
                key,
                format!("coefficient {i} is not finite ({})", coeffs[i]),
            ));
        }
        if coeffs.len() > 12 {
            return Err(Error::config(
                key,
                format!(
                    "at most 12 coefficients (degree 11) are supported, got {}",
                    coeffs.len()
                ),
            ));
        }
        Ok(HermiteSeries { coeffs })
    }
    /// Coefficient `c_k` (0 beyond the stored degree).
    pub fn c(&self, k: usize) -> f64 {
        self.coeffs.get(k).copied().unwrap_or(0.0)
    }
    /// Number of stored coefficients.
    pub fn len(&self) -> usize {
        self.coeffs.len()
    }
    /// True if no coefficients are stored.
    pub fn is_empty(&self) -> bool {
        self.coeffs.is_empty()
    }
    /// `σ(z) = Σ c_k h_k(z)` and `σ'(z) = Σ c_k sqrt(k) h_{k−1}(z)`, by one recurrence pass.
    pub fn value_and_derivative(&self, z: f64) -> (f64, f64) {
        let n = self.coeffs.len();
        let (mut hm1, mut h) = (0.0, 1.0);
        let (mut v, mut dv) = (0.0, 0.0);
        for k in 0..n {
            v += self.coeffs[k] * h;
            if k > 0 {
                dv += self.coeffs[k] * (k as f64).sqrt() * hm1;
            }
            let hn = (z * h - (k as f64).sqrt() * hm1) / ((k + 1) as f64).sqrt();
            hm1 = h;
            h = hn;
        }
        (v, dv)
    }
    /// `σ(z)`.
    pub fn value(&self, z: f64) -> f64 {
        self.value_and_derivative(z).0
    }
    /// Gaussian smoothing `E_g[σ(m z + sqrt(1−m²) g)] = Σ c_k m^k h_k(z)` as a new series.
    pub fn smoothed(&self, m: f64) -> HermiteSeries {
        HermiteSeries {
            coeffs: self
                .coeffs
                .iter()
                .enumerate()
                .map(|(k, c)| c * m.powi(k as i32))
                .collect(),
        }
    }
    /// Dual kernel `K(ρ) = E[σ(u)σ(v)] = Σ c_k² ρ^k` for unit-variance u, v with correlation ρ.
    pub fn kernel(&self, rho: f64) -> f64 {
        poly(&self.coeffs.iter().map(|c| c * c).collect::<Vec<_>>(), rho)
    }
    /// `K'(ρ) = Σ k c_k² ρ^{k−1}`.
    pub fn kernel_derivative(&self, rho: f64) -> f64 {
        self.coeffs
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, c)| k as f64 * c * c * rho.powi(k as i32 - 1))
            .sum()
    }
    /// Lowest order `k ≥ 2` with `c_k ≠ 0` (the "primary nonlinear term"), if any.
    pub fn primary_nonlinear_order(&self) -> Option<usize> {
        (2..self.coeffs.len()).find(|&k| self.coeffs[k] != 0.0)
    }
}

/// `Σ_k p_k x^k` by Horner's rule.
pub fn poly(p: &[f64], x: f64) -> f64 {
    p.iter().rev().fold(0.0, |acc, c| acc * x + c)
}

/// Gauss–Hermite nodes and weights for the standard normal weight (weights sum to 1).
#[derive(Debug, Clone)]
pub struct GaussHermite {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

impl GaussHermite {
    /// The `n`-point rule (Golub–Welsch: eigenvalues of the symmetric tridiagonal Jacobi matrix
    /// with off-diagonal `sqrt(k)`, weights = squared first eigenvector components).
    pub fn new(n: usize) -> Result<Self> {
        if n == 0 || n > 200 {
            return Err(Error::config(
                "quadrature.points",
                format!("need 1..=200 Gauss–Hermite points, got {n}"),
            ));
        }
        let j = Mat::from_fn(n, n, |r, c| {
            if r + 1 == c || c + 1 == r {
                (r.max(c) as f64).sqrt()
            } else {
                0.0
            }
        });
        let (u, l) = sym_eig(j.as_ref())?;
        let weights: Vec<f64> = (0..n).map(|i| u[(0, i)] * u[(0, i)]).collect();
        Ok(GaussHermite { nodes: l, weights })
    }
    /// `E[f(z)]`, z ~ N(0,1).
    pub fn expect(&self, mut f: impl FnMut(f64) -> f64) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(z, w)| w * f(*z))
            .sum()
    }
    /// `E[f(z, g)]`, z, g i.i.d. N(0,1) (tensor rule).
    pub fn expect2(&self, mut f: impl FnMut(f64, f64) -> f64) -> f64 {
        let mut s = 0.0;
        for (z, wz) in self.nodes.iter().zip(&self.weights) {
            for (g, wg) in self.nodes.iter().zip(&self.weights) {
                s += wz * wg * f(*z, *g);
            }
        }
        s
    }
}
