//! Group composition data (Marchetti et al. 2026, §2; reference code `dataset.py`): a
//! template x ∈ ℝ^|G| encodes g as x_g = λ(g)x, (λ(g)x)(h) = x(g⁻¹h); a sequence
//! (g₁, …, g_k) is the input (x_{g₁}, …, x_{g_k}) ∈ ℝ^{k|G|} and the target is
//! λ(g_k)⋯λ(g₁)x = x_{g_k⋯g₁} (the reference code's cumulative product). Exhaustive: all
//! |G|^k sequences, sequence index i = Σ_t g_t |G|^t (g₁ fastest, as the reference).

use super::Dataset;
use crate::groups::FiniteGroup;
use crate::{Error, Result};
use faer::Mat;

/// Largest exhaustive dataset built (rows).
pub const MAX_SEQUENCES: usize = 1_000_000;

/// The exhaustive k-fold composition dataset of `template` on `g`.
pub fn group_composition(g: &FiniteGroup, template: &[f64], k: usize) -> Result<Dataset> {
    let n = g.order();
    if template.len() != n {
        return Err(Error::config(
            "data.template",
            format!("template has {} entries for |G| = {n}", template.len()),
        ));
    }
    if k < 2 {
        return Err(Error::config(
            "data.k",
            format!("need k ≥ 2 elements, got {k}"),
        ));
    }
    let rows = (0..k)
        .try_fold(1usize, |acc, _| acc.checked_mul(n))
        .filter(|&r| r <= MAX_SEQUENCES);
    let rows = rows.ok_or_else(|| {
        Error::config(
            "data.k",
            format!("|G|^k = {n}^{k} sequences exceed {MAX_SEQUENCES}"),
        )
    })?;
    let shifted: Vec<Vec<f64>> = (0..n).map(|a| g.left_translate(a, template)).collect();
    let mut x = Mat::<f64>::zeros(rows, k * n);
    let mut y = Mat::<f64>::zeros(rows, n);
    for i in 0..rows {
        let mut rest = i;
        let mut prod = g.identity();
        for t in 0..k {
            let a = rest % n;
            rest /= n;
            for j in 0..n {
                x[(i, t * n + j)] = shifted[a][j];
            }
            prod = g.mul(a, prod);
        }
        for j in 0..n {
            y[(i, j)] = shifted[prod][j];
        }
    }
    Dataset::new(x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::{cyclic, dihedral};

    #[test]
    fn cyclic_data_is_modular_addition_and_targets_compose_in_reference_order() {
        let x: Vec<f64> = vec![1.0, -2.0, 0.5, 3.0, -2.5];
        let d = group_composition(&cyclic(5).unwrap(), &x, 2).unwrap();
        let m = crate::data::modular::modular_addition(&x).unwrap();
        assert_eq!(d.n(), 25);
        // same set of rows as the modular-addition data (ordering may differ)
        for i in 0..25 {
            let found = (0..25).any(|r| {
                (0..10).all(|j| d.x[(i, j)] == m.x[(r, j)])
                    && (0..5).all(|j| d.y[(i, j)] == m.y[(r, j)])
            });
            assert!(found, "row {i}");
        }
        // D5, k = 3: the target is λ(g3)λ(g2)λ(g1)x
        let g = dihedral(5).unwrap();
        let t: Vec<f64> = (0..10).map(|v| (v as f64).sin()).collect();
        let d = group_composition(&g, &t, 3).unwrap();
        let (g1, g2, g3) = (7, 3, 6);
        let i = g1 + 10 * g2 + 100 * g3;
        let want = g.left_translate(g3, &g.left_translate(g2, &g.left_translate(g1, &t)));
        for (j, w) in want.iter().enumerate() {
            assert!((d.y[(i, j)] - w).abs() < 1e-15);
            assert_eq!(d.x[(i, 10 + j)], g.left_translate(g2, &t)[j]);
        }
        assert!(group_composition(&g, &t[..9], 2)
            .unwrap_err()
            .to_string()
            .contains("data.template"));
        assert!(group_composition(&g, &t, 7)
            .unwrap_err()
            .to_string()
            .contains("data.k"));
    }
}
