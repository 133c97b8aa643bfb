//! AGF theory of group composition (Marchetti, Kunin, Myers, Acosta, Miolane, *Sequential
//! group composition*, arXiv 2602.03655): a two-layer net f = Σ_i w_i (u_iᵀ x)^k on the
//! concatenated encodings learns the real irreps of G one at a time.
//!
//! Loss convention (ours, AGF's): L = (1/2n) Σ_n ‖f(x_n) − y_n‖² over the n = |G|^k
//! sequences. The reference code's `nn.MSELoss` also averages over the |G| outputs and has
//! no ½: L_ref = (2/|G|)·L ([`torch_mse_factor`]).
//!
//! * Utility of a neuron θ = (u, w), ‖θ‖ = 1: U(θ) = (1/n) Σ_n (uᵀx_n)^k ⟨w, r_n⟩ with r the
//!   residual. Encodings are translates of x, so the correlation uᵀλ(g)x only sees the
//!   irreps present in both u and x, and U splits over real isotypic components E_σ into a
//!   sum of homogeneous forms of degree k+1; its maximum on the sphere is attained inside
//!   one component: Ū* = max_σ Ū*_σ, Ū*_σ = max over u_t, w ∈ E_σ ([`max_irrep_utility`],
//!   computed numerically by projected ascent on the sphere from several starts).
//! * Learning one irrep leaves the residual's other components unchanged, so dormant
//!   neurons of the other irreps keep their utilities: AGF learns irreps in decreasing
//!   Ū*_σ ([`GroupAgfTheory::order`]), and a neuron of norm ρ started at the maximiser
//!   blows up at τ_σ = ρ^{−(k−1)}/((k−1)(k+1)Ū*_σ) (κ = k+1).
//! * Plateau levels: after the irreps in S are learned, the loss is the power left,
//!   ℓ_S = ½ Σ_{σ∉S} P(σ) ([`GroupAgfTheory::levels`]); checked against the least-squares
//!   optimum of a quadratic net whose neurons live in ⊕_{σ∈S} E_σ
//!   ([`restricted_optimal_loss`]).

use crate::data::Dataset;
use crate::groups::{FiniteGroup, IrrepKind, Irreps, RealIrrep};
use crate::linalg::{dot, norm2, sym_eig};
use crate::rng::{normal_vec, stream};
use crate::{Error, Result};
use faer::Mat;

/// L_ref / L for the reference code's `nn.MSELoss` (mean over samples and the |G| outputs,
/// no ½) against L = (1/2n)Σ‖f − y‖²: 2/|G|.
pub fn torch_mse_factor(order: usize) -> f64 {
    2.0 / order as f64
}

/// Orthonormal basis (|G| × dim E_σ) of the real isotypic component of σ, the range of the
/// projector π_σ = (r/(e_σ|G|)) Σ_g χ_σ(g⁻¹) λ(g).
pub fn isotypic_basis(g: &FiniteGroup, sigma: &RealIrrep) -> Result<Mat<f64>> {
    let n = g.order();
    let c = sigma.dim as f64 / (sigma.schur_index() * n as f64);
    let mut p = Mat::<f64>::zeros(n, n);
    for a in 0..n {
        let w = c * sigma.character[g.inv(a)];
        for h in 0..n {
            p[(g.mul(a, h), h)] += w;
        }
    }
    let (u, l) = sym_eig(p.as_ref())?;
    let cols: Vec<usize> = (0..n).filter(|&i| l[i] > 0.5).collect();
    Ok(Mat::from_fn(n, cols.len(), |i, j| u[(i, cols[j])]))
}

/// Orthonormal basis of ⊕_{σ∈S} E_σ.
pub fn isotypic_basis_of(g: &FiniteGroup, irreps: &Irreps, set: &[usize]) -> Result<Mat<f64>> {
    let bases: Vec<Mat<f64>> = set
        .iter()
        .map(|&s| isotypic_basis(g, &irreps.real[s]))
        .collect::<Result<_>>()?;
    let m: usize = bases.iter().map(|b| b.ncols()).sum();
    let mut out = Mat::<f64>::zeros(g.order(), m);
    let mut j = 0;
    for b in &bases {
        for c in 0..b.ncols() {
            for i in 0..g.order() {
                out[(i, j)] = b[(i, c)];
            }
            j += 1;
        }
    }
    Ok(out)
}

/// Inputs and targets in isotypic coordinates: Z = [X₁Q, …, X_kQ] (n × km), T = YQ (n × m).
fn coordinates(data: &Dataset, q: &Mat<f64>, k: usize) -> (Mat<f64>, Mat<f64>) {
    let n_g = q.nrows();
    let m = q.ncols();
    let mut z = Mat::<f64>::zeros(data.n(), k * m);
    for t in 0..k {
        let xt = data.x.subcols(t * n_g, n_g) * q;
        for i in 0..data.n() {
            for j in 0..m {
                z[(i, t * m + j)] = xt[(i, j)];
            }
        }
    }
    (z, &data.y * q)
}

/// U(θ) and ∇U for θ = (u ∈ ℝ^{km}, w ∈ ℝ^m) in isotypic coordinates:
/// U = (1/n)Σ_n (uᵀz_n)^k ⟨w, t_n⟩.
fn utility_and_grad(z: &Mat<f64>, t: &Mat<f64>, k: usize, th: &[f64], grad: &mut [f64]) -> f64 {
    let (n, km, m) = (z.nrows(), z.ncols(), t.ncols());
    let (u, w) = th.split_at(km);
    grad.iter_mut().for_each(|v| *v = 0.0);
    let mut total = 0.0;
    for i in 0..n {
        let a: f64 = (0..km).map(|j| z[(i, j)] * u[j]).sum();
        let b: f64 = (0..m).map(|j| t[(i, j)] * w[j]).sum();
        let ak = a.powi(k as i32);
        total += ak * b;
        let du = k as f64 * a.powi(k as i32 - 1) * b;
        for j in 0..km {
            grad[j] += du * z[(i, j)];
        }
        for j in 0..m {
            grad[km + j] += ak * t[(i, j)];
        }
    }
    grad.iter_mut().for_each(|v| *v /= n as f64);
    total / n as f64
}

/// Ū*_σ: the largest utility (residual = targets) of a unit-norm neuron w(uᵀx)^k whose
/// input weights u_t and output weights w lie in the span of `q` (an isotypic basis),
/// found by projected gradient ascent on the sphere (step doubling/halving, stop when the
/// tangent gradient is below 1e-10·|U|) from `restarts` seeded random starts.
pub fn max_irrep_utility(
    data: &Dataset,
    q: &Mat<f64>,
    k: usize,
    seed: u64,
    restarts: usize,
) -> f64 {
    let (z, t) = coordinates(data, q, k);
    let dim = z.ncols() + t.ncols();
    let kappa = (k + 1) as f64;
    let mut best = f64::NEG_INFINITY;
    let mut rng = stream(seed, "group_agf/utility");
    let mut g = vec![0.0; dim];
    let mut g2 = vec![0.0; dim];
    for _ in 0..restarts.max(1) {
        let mut th = normal_vec(&mut rng, dim, 1.0);
        let nr = norm2(&th);
        th.iter_mut().for_each(|v| *v /= nr);
        let mut u = utility_and_grad(&z, &t, k, &th, &mut g);
        if u < 0.0 {
            // w → −w flips the sign of U
            let km = z.ncols();
            th[km..].iter_mut().for_each(|v| *v = -*v);
            u = utility_and_grad(&z, &t, k, &th, &mut g);
        }
        let mut eta = 0.1 / norm2(&g).max(1e-300);
        for _ in 0..200_000 {
            let tang: Vec<f64> = g
                .iter()
                .zip(&th)
                .map(|(gi, ti)| gi - kappa * u * ti)
                .collect();
            let tn = norm2(&tang);
            if tn <= 1e-10 * u.abs().max(1e-300) {
                break;
            }
            let mut cand: Vec<f64> = th.iter().zip(&tang).map(|(a, b)| a + eta * b).collect();
            let nc = norm2(&cand);
            cand.iter_mut().for_each(|v| *v /= nc);
            let uc = utility_and_grad(&z, &t, k, &cand, &mut g2);
            if uc >= u {
                th = cand;
                u = uc;
                std::mem::swap(&mut g, &mut g2);
                eta *= 1.5;
            } else {
                eta *= 0.5;
                if eta * tn < 1e-16 {
                    break;
                }
            }
        }
        debug_assert!((dot(&g, &th) - kappa * u).abs() <= 1e-8 * u.abs().max(1.0));
        best = best.max(u);
    }
    best
}

/// The smallest loss L = (1/2n)Σ‖f − y‖² of a quadratic net (k = 2) of unlimited width
/// whose neurons lie in span(q): outputs in span(q), inputs through the coordinates
/// z = (Qᵀx₁, Qᵀx₂); the functions reachable are span(q) ⊗ {quadratic forms in z}, so the
/// optimum is ‖(I − QQᵀ)Y‖² plus the least-squares residual of YQ on all monomials z_i z_j.
pub fn restricted_optimal_loss(data: &Dataset, q: &Mat<f64>) -> Result<f64> {
    let (z, t) = coordinates(data, q, 2);
    let n = data.n();
    let km = z.ncols();
    let pairs: Vec<(usize, usize)> = (0..km).flat_map(|i| (i..km).map(move |j| (i, j))).collect();
    let f = Mat::from_fn(n, pairs.len().max(1), |r, c| {
        pairs.get(c).map_or(0.0, |&(i, j)| z[(r, i)] * z[(r, j)])
    });
    let (u, s, _) = crate::linalg::thin_svd(f.as_ref())?;
    let smax = s.first().copied().unwrap_or(0.0);
    let rank = s.iter().filter(|&&v| v > 1e-10 * smax).count();
    let ur = u.subcols(0, rank);
    let proj = ur.transpose() * &t;
    let y2: f64 = data
        .y
        .col_iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>())
        .sum();
    let t2: f64 = t
        .col_iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>())
        .sum();
    let p2: f64 = proj
        .col_iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>())
        .sum();
    Ok((y2 - t2 + (t2 - p2)) / (2.0 * n as f64))
}

/// One real irrep's part of the template and its predicted role.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IrrepTheory {
    pub name: String,
    pub dim: usize,
    pub kind: IrrepKind,
    /// P(σ) = ‖π_σ x‖².
    pub power: f64,
    /// Ū*_σ (None when P(σ) is negligible: nothing to learn).
    pub max_utility: Option<f64>,
}

/// Theory for one group, template and k.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupAgfTheory {
    pub group_order: usize,
    pub k: usize,
    pub irreps: Vec<IrrepTheory>,
}

impl GroupAgfTheory {
    /// Powers from the template, Ū*_σ by [`max_irrep_utility`] for every irrep with
    /// P(σ) > 1e-12 ΣP, on the exhaustive `data` (targets = the residual at t = 0).
    pub fn new(
        g: &FiniteGroup,
        irreps: &Irreps,
        template: &[f64],
        data: &Dataset,
        k: usize,
        seed: u64,
    ) -> Result<Self> {
        if data.c() != g.order() || data.d() != k * g.order() {
            return Err(Error::Shape(format!(
                "group-composition data {}×{} does not fit |G| = {} and k = {k}",
                data.d(),
                data.c(),
                g.order()
            )));
        }
        let powers = crate::groups::real_power_spectrum(&irreps.real, template);
        let total: f64 = powers.iter().sum();
        let out = irreps
            .real
            .iter()
            .zip(&powers)
            .map(|(r, &p)| {
                let u = if p > 1e-12 * total {
                    let q = isotypic_basis(g, r)?;
                    Some(max_irrep_utility(data, &q, k, seed, 6))
                } else {
                    None
                };
                Ok(IrrepTheory {
                    name: r.name.clone(),
                    dim: r.dim,
                    kind: r.kind,
                    power: p,
                    max_utility: u,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GroupAgfTheory {
            group_order: g.order(),
            k,
            irreps: out,
        })
    }

    /// Irreps with power, in predicted learning order: decreasing Ū*_σ, ties by index.
    pub fn order(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.irreps.len())
            .filter(|&i| self.irreps[i].max_utility.is_some())
            .collect();
        idx.sort_by(|&a, &b| {
            let (ua, ub) = (
                self.irreps[a].max_utility.unwrap_or(0.0),
                self.irreps[b].max_utility.unwrap_or(0.0),
            );
            ub.total_cmp(&ua).then(a.cmp(&b))
        });
        idx
    }

    /// Whether two consecutive irreps of [`order`](Self::order) have Ū* within `rel`.
    pub fn has_ties(&self, rel: f64) -> bool {
        let o = self.order();
        let u = |i: usize| self.irreps[i].max_utility.unwrap_or(0.0);
        o.windows(2)
            .any(|w| (u(w[0]) - u(w[1])).abs() <= rel * u(w[0]))
    }

    /// ℓ₀ = ½ΣP, then ½ × the power left after each irrep of [`order`](Self::order).
    pub fn levels(&self) -> Vec<f64> {
        let mut l: f64 = 0.5 * self.irreps.iter().map(|r| r.power).sum::<f64>();
        let mut out = vec![l];
        for i in self.order() {
            l -= 0.5 * self.irreps[i].power;
            out.push(l.max(0.0));
        }
        out
    }

    /// τ_σ = ρ^{−(k−1)}/((k−1)(k+1)Ū*_σ): blow-up time of a neuron of norm ρ started at the
    /// maximiser (AGF's blow-up threshold for κ = k+1).
    pub fn jump_time(&self, irrep: usize, rho: f64) -> Option<f64> {
        let k = self.k as f64;
        self.irreps[irrep]
            .max_utility
            .map(|u| rho.powf(-(k - 1.0)) / ((k - 1.0) * (k + 1.0) * u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::group_composition::group_composition;
    use crate::groups::{cyclic, dihedral, octahedral, product, template_from_powers};

    fn setup(g: &FiniteGroup, powers: &[(&str, f64)]) -> (Irreps, Vec<f64>, Dataset) {
        let ir = Irreps::compute(g).unwrap();
        let mut p = vec![0.0; ir.real.len()];
        for (name, v) in powers {
            p[ir.real_by_name(name).unwrap()] = *v;
        }
        let x = template_from_powers(&ir.real, &p, "test").unwrap();
        let d = group_composition(g, &x, 2).unwrap();
        (ir, x, d)
    }

    /// On C_p the per-irrep utility reproduces the modular-addition closed form
    /// Ū*_k = √(2/27)|x̂_k|³/p^{3/2} (AGF §3.4), and the unrestricted ascent finds no neuron
    /// better than the best irrep (the maximum lives in one isotypic component).
    #[test]
    fn cyclic_utilities_match_the_modular_closed_form_and_the_global_maximum() {
        let g = cyclic(7).unwrap();
        let (ir, x, d) = setup(&g, &[("k1", 6.0), ("k2", 3.0), ("k3", 1.0)]);
        let th = GroupAgfTheory::new(&g, &ir, &x, &d, 2, 0).unwrap();
        let modular = crate::theory::agf::modular::ModularTheory::new(&x);
        for j in 1..=3 {
            let i = ir.real_by_name(&format!("k{j}")).unwrap();
            let got = th.irreps[i].max_utility.unwrap();
            let want = modular.max_utility(j);
            assert!((got - want).abs() < 1e-8 * want, "k{j}: {got} vs {want}");
        }
        assert_eq!(th.order(), vec![1, 2, 3]);
        let full = Mat::<f64>::identity(7, 7);
        let global = max_irrep_utility(&d, &full, 2, 1, 8);
        let best = th.irreps[1].max_utility.unwrap();
        assert!((global - best).abs() < 1e-8 * best, "{global} vs {best}");
    }

    /// Levels ½Σ_{σ∉S}P(σ) equal the least-squares optimum of a quadratic net restricted to
    /// the learned irreps, for every prefix of the order (D₅, octahedral, C₅ × C₅).
    #[test]
    fn plateau_levels_equal_the_restricted_least_squares_optimum() {
        let cases: Vec<(FiniteGroup, Vec<(&str, f64)>)> = vec![
            (
                dihedral(5).unwrap(),
                vec![("1'", 3.0), ("2_1", 2.0), ("2_2", 1.0)],
            ),
            (
                octahedral().unwrap(),
                vec![("1'", 1.0), ("2", 0.9), ("3", 0.43), ("3'", 0.1)],
            ),
            (
                product(&cyclic(5).unwrap(), &cyclic(5).unwrap()).unwrap(),
                vec![
                    ("(1,0)", 2.4),
                    ("(0,1)", 2.0),
                    ("(1,1)", 1.6),
                    ("(2,0)", 1.2),
                    ("(0,2)", 0.8),
                ],
            ),
        ];
        for (g, powers) in cases {
            let (ir, x, d) = setup(&g, &powers);
            let th = GroupAgfTheory::new(&g, &ir, &x, &d, 2, 0).unwrap();
            let order = th.order();
            let levels = th.levels();
            assert_eq!(order.len(), powers.len());
            for j in 0..=order.len() {
                let got = if j == 0 {
                    0.5 * (0..d.n())
                        .map(|i| (0..g.order()).map(|c| d.y[(i, c)].powi(2)).sum::<f64>())
                        .sum::<f64>()
                        / d.n() as f64
                } else {
                    let q = isotypic_basis_of(&g, &ir, &order[..j]).unwrap();
                    restricted_optimal_loss(&d, &q).unwrap()
                };
                assert!(
                    (got - levels[j]).abs() < 1e-9 * levels[0],
                    "{} after {j}: {got} vs {}",
                    g.name,
                    levels[j]
                );
            }
        }
    }
}
#[cfg(test)]
mod scaling {
    use super::*;
    use crate::data::group_composition::group_composition;
    use crate::groups::*;

    /// Measured law (not derived here): for templates with x̂(ρ) ∝ I, a real-type irrep of
    /// dimension d has Ū*_σ = √(4/27)·P(σ)^{3/2}·d^{−7/2} (d = 1…5 on D₅, the octahedral
    /// group and A₅), and a merged complex pair of 1-D irreps (C₁₁) √(4/27)·P^{3/2}/4 =
    /// √(2/27)·(P/2)^{3/2}, the modular-addition closed form. The order therefore follows
    /// P/d^{7/3}, not P.
    #[test]
    fn max_utility_scales_as_power_to_three_halves_over_dimension_to_seven_halves() {
        let cases: Vec<(FiniteGroup, Vec<(&str, f64)>)> = vec![
            (
                cyclic(11).unwrap(),
                vec![("k1", 25.0), ("k3", 15.0), ("k5", 5.0)],
            ),
            (
                dihedral(5).unwrap(),
                vec![("1'", 3000.0), ("2_1", 2000.0), ("2_2", 1000.0)],
            ),
            (
                octahedral().unwrap(),
                vec![("1'", 1000.0), ("2", 900.0), ("3", 430.0), ("3'", 100.0)],
            ),
            (
                icosahedral().unwrap(),
                vec![("3", 1300.0), ("5", 100.0), ("3'", 2000.0), ("4", 600.0)],
            ),
        ];
        for (g, powers) in cases {
            let ir = Irreps::compute(&g).unwrap();
            let mut p = vec![0.0; ir.real.len()];
            for (name, v) in &powers {
                p[ir.real_by_name(name).unwrap()] = *v;
            }
            let x = template_from_powers(&ir.real, &p, "t").unwrap();
            let d = group_composition(&g, &x, 2).unwrap();
            let th = GroupAgfTheory::new(&g, &ir, &x, &d, 2, 0).unwrap();
            for r in th.irreps.iter().filter(|r| r.max_utility.is_some()) {
                let u = r.max_utility.unwrap_or(0.0);
                let law = (4.0f64 / 27.0).sqrt()
                    * r.power.powf(1.5)
                    * match r.kind {
                        IrrepKind::Real => (r.dim as f64).powf(-3.5),
                        _ => 0.25,
                    };
                assert!(
                    (u - law).abs() < 1e-7 * law,
                    "{} {}: {u} vs {law}",
                    g.name,
                    r.name
                );
            }
        }
    }
}
