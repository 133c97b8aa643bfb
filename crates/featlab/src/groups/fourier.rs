//! The group Fourier transform (conventions of Marchetti et al. 2026 and their code):
//! x̂(ρ) = Σ_g x(g) ρ(g)^H, x(g) = (1/|G|) Σ_ρ d_ρ Tr(ρ(g) x̂(ρ)),
//! P(ρ) = (d_ρ/|G|) ‖x̂(ρ)‖²_F, Σ_ρ P(ρ) = ‖x‖² (Plancherel).
//!
//! Real version (real irreps σ of dimension r and type e_σ ∈ {1, 2, 4}, see
//! [`super::irreps`]): x̂(σ) = Σ_g x(g) σ(g)ᵀ, x(g) = Σ_σ (r/(e_σ|G|)) Tr(σ(g) x̂(σ)),
//! P(σ) = (r/(e_σ|G|)) ‖x̂(σ)‖²_F = ‖π_σ x‖² (π_σ the projector on the real isotypic
//! component): P(σ) = P(ρ) + P(ρ̄) for a merged conjugate pair, P(ρ) otherwise.

use super::irreps::{ComplexIrrep, RealIrrep};
use crate::{Error, Result};
use faer::{c64, Mat};

/// x̂(ρ) = Σ_g x(g) ρ(g)^H for every complex irrep.
pub fn complex_fourier(irreps: &[ComplexIrrep], x: &[f64]) -> Vec<Mat<c64>> {
    irreps
        .iter()
        .map(|r| {
            let mut m = Mat::<c64>::zeros(r.dim, r.dim);
            for (g, xg) in x.iter().enumerate() {
                let rg = &r.matrices[g];
                for i in 0..r.dim {
                    for j in 0..r.dim {
                        m[(i, j)] += rg[(j, i)].conj() * *xg;
                    }
                }
            }
            m
        })
        .collect()
}

/// x(g) = (1/|G|) Σ_ρ d_ρ Tr(ρ(g) x̂(ρ)) (complex; real for the transform of a real signal).
pub fn complex_inverse_fourier(irreps: &[ComplexIrrep], xhat: &[Mat<c64>]) -> Vec<c64> {
    let n = irreps.first().map_or(0, |r| r.matrices.len());
    (0..n)
        .map(|g| {
            irreps
                .iter()
                .zip(xhat)
                .fold(c64::new(0.0, 0.0), |acc, (r, xh)| {
                    let t = (0..r.dim)
                        .flat_map(|i| (0..r.dim).map(move |j| (i, j)))
                        .fold(c64::new(0.0, 0.0), |s, (i, j)| {
                            s + r.matrices[g][(i, j)] * xh[(j, i)]
                        });
                    acc + t * (r.dim as f64 / n as f64)
                })
        })
        .collect()
}

/// P(ρ) = (d_ρ/|G|)‖x̂(ρ)‖²_F per complex irrep.
pub fn complex_power_spectrum(irreps: &[ComplexIrrep], x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    irreps
        .iter()
        .zip(complex_fourier(irreps, x))
        .map(|(r, m)| {
            let f: f64 = (0..r.dim)
                .flat_map(|i| (0..r.dim).map(move |j| (i, j)))
                .map(|(i, j)| m[(i, j)].norm_sqr())
                .sum();
            r.dim as f64 / n * f
        })
        .collect()
}

/// x̂(σ) = Σ_g x(g) σ(g)ᵀ for every real irrep.
pub fn real_fourier(irreps: &[RealIrrep], x: &[f64]) -> Vec<Mat<f64>> {
    irreps
        .iter()
        .map(|r| {
            let mut m = Mat::<f64>::zeros(r.dim, r.dim);
            for (g, xg) in x.iter().enumerate() {
                for i in 0..r.dim {
                    for j in 0..r.dim {
                        m[(i, j)] += r.matrices[g][(j, i)] * xg;
                    }
                }
            }
            m
        })
        .collect()
}

/// x(g) = Σ_σ (r/(e_σ|G|)) Tr(σ(g) x̂(σ)).
pub fn real_inverse_fourier(irreps: &[RealIrrep], xhat: &[Mat<f64>]) -> Vec<f64> {
    let n = irreps.first().map_or(0, |r| r.matrices.len());
    (0..n)
        .map(|g| {
            irreps
                .iter()
                .zip(xhat)
                .map(|(r, xh)| {
                    let t: f64 = (0..r.dim)
                        .flat_map(|i| (0..r.dim).map(move |j| (i, j)))
                        .map(|(i, j)| r.matrices[g][(i, j)] * xh[(j, i)])
                        .sum();
                    t * r.dim as f64 / (r.schur_index() * n as f64)
                })
                .sum()
        })
        .collect()
}

/// P(σ) = (r/(e_σ|G|))‖x̂(σ)‖²_F per real irrep (Σ_σ P(σ) = ‖x‖²).
pub fn real_power_spectrum(irreps: &[RealIrrep], x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    irreps
        .iter()
        .zip(real_fourier(irreps, x))
        .map(|(r, m)| {
            let f: f64 = m
                .col_iter()
                .flat_map(|c| c.iter().map(|v| v * v).collect::<Vec<_>>())
                .sum();
            r.dim as f64 / (r.schur_index() * n) * f
        })
        .collect()
}

/// The template with power `powers[σ]` in real irrep σ and Fourier coefficients multiples
/// of the identity (the reference code's `custom_fourier`: x̂(ρ) = √(|G|P(ρ)/d²)·I for each
/// complex irrep, a merged pair splitting P(σ) equally):
/// x = Σ_σ √(P(σ)/(e_σ|G|)) χ_σ, a class function with ‖π_σ x‖² = P(σ).
/// Powers must be finite and ≥ 0; `key` names the config key in the error.
pub fn template_from_powers(irreps: &[RealIrrep], powers: &[f64], key: &str) -> Result<Vec<f64>> {
    if powers.len() != irreps.len() {
        return Err(Error::config(
            key,
            format!("{} powers for {} real irreps", powers.len(), irreps.len()),
        ));
    }
    if let Some(p) = powers.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
        return Err(Error::config(
            key,
            format!("powers must be finite and ≥ 0, got {p}"),
        ));
    }
    let n = irreps.first().map_or(0, |r| r.character.len());
    let mut x = vec![0.0; n];
    for (r, p) in irreps.iter().zip(powers) {
        let c = (p / (r.schur_index() * n as f64)).sqrt();
        for (xg, chi) in x.iter_mut().zip(&r.character) {
            *xg += c * chi;
        }
    }
    Ok(x)
}
