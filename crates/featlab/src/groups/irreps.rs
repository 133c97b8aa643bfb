//! Irreducible representations computed numerically (no character tables typed in).
//!
//! Complex irreps (Dixon's idea, in the form of commuting Hermitian operators):
//! 1. Z = Σ_j a_j Σ_{g∈K_j} λ(g), a random element of the centre of the group algebra in
//!    the left regular representation, Hermitian because a_{j*} = conj(a_j) (K_{j*} the
//!    class of inverses). Z acts on the isotypic component W_ρ (dim d_ρ²) as the scalar
//!    (1/d_ρ)Σ_g a(g)χ_ρ(g), distinct for distinct ρ with probability 1: its eigenspaces
//!    are the W_ρ.
//! 2. On W_ρ ≅ ρ ⊗ ρ* the right regular action R(g)e_h = e_{hg⁻¹} commutes with λ; a random
//!    Hermitian B = Σ_g b_g R(g) (b_{g⁻¹} = conj(b_g)) restricted to W_ρ has d_ρ eigenvalues
//!    of multiplicity d_ρ; one eigenspace with orthonormal basis V (|G| × d_ρ) is an
//!    irreducible λ-invariant subspace, and ρ(g) = V^H λ(g) V is unitary.
//!
//! Real irreps (what a network on real vectors learns): the same with real symmetric
//! operators (a_j = a_{j*} real, b_g = b_{g⁻¹} real). Conjugate pairs ρ, ρ̄ then share one
//! eigenspace of Z, the real isotypic component E_σ, and the eigenspaces of B on E_σ are
//! one real irrep σ of dimension r = d (ρ of real type, Frobenius–Schur indicator +1),
//! 2d (complex type, indicator 0: σ ≅ ρ ⊕ ρ̄ realified) or 2d (quaternionic, indicator
//! −1). The type is e_σ = (1/|G|)Σ_g χ_σ(g)² ∈ {1, 2, 4}, and dim E_σ = r²/e_σ.

use super::classes::{class_index, conjugacy_classes};
use super::families::{complex_label, name_generic, real_label};
use super::group::Family;
use super::group::FiniteGroup;
use crate::rng::{normal, stream};
use crate::{Error, Result};
use faer::{c64, Mat, Side};

/// Real, complex or quaternionic type of an irrep (Frobenius–Schur indicator +1, 0, −1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IrrepKind {
    /// ρ ≅ ρ̄ with a real form: the real irrep is ρ itself.
    Real,
    /// ρ ≇ ρ̄: the real irrep merges the pair (dimension 2d).
    Complex,
    /// ρ ≅ ρ̄ without a real form: the real irrep is ρ realified (dimension 2d).
    Quaternionic,
}

/// A unitary complex irrep: `matrices[g]` = ρ(g) (d × d), χ(g) = Tr ρ(g).
#[derive(Debug, Clone)]
pub struct ComplexIrrep {
    pub name: String,
    pub dim: usize,
    pub matrices: Vec<Mat<c64>>,
    pub character: Vec<c64>,
    /// Frobenius–Schur indicator (1/|G|)Σ_g χ(g²) ∈ {1, 0, −1}.
    pub indicator: i32,
}

/// An orthogonal real irrep: `matrices[g]` = σ(g) (r × r), χ_σ(g) = Tr σ(g).
#[derive(Debug, Clone)]
pub struct RealIrrep {
    pub name: String,
    pub dim: usize,
    pub kind: IrrepKind,
    pub matrices: Vec<Mat<f64>>,
    pub character: Vec<f64>,
    /// Indices (into [`Irreps::complex`]) of the complex irreps it contains.
    pub complex: Vec<usize>,
}

impl RealIrrep {
    /// e_σ = (1/|G|)Σ_g χ_σ(g)² = 1, 2, 4 for real, complex, quaternionic type (the real
    /// dimension of the commutant of σ).
    pub fn schur_index(&self) -> f64 {
        match self.kind {
            IrrepKind::Real => 1.0,
            IrrepKind::Complex => 2.0,
            IrrepKind::Quaternionic => 4.0,
        }
    }
}

/// All irreps of a group, complex and real; trivial first, then by dimension and name.
#[derive(Debug, Clone)]
pub struct Irreps {
    pub complex: Vec<ComplexIrrep>,
    pub real: Vec<RealIrrep>,
}

/// Groups eigenvalues (ascending) into clusters closer than `tol`; returns index ranges.
fn clusters(vals: &[f64], tol: f64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=vals.len() {
        if i == vals.len() || vals[i] - vals[i - 1] > tol {
            out.push(start..i);
            start = i;
        }
    }
    out
}

fn cherm_eig(m: &Mat<c64>) -> Result<(Mat<c64>, Vec<f64>)> {
    let evd = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Numerical(format!("Hermitian eigendecomposition failed: {e:?}")))?;
    let l = evd.S().column_vector().iter().map(|z| z.re).collect();
    Ok((evd.U().to_owned(), l))
}

fn isqrt(s: usize) -> Option<usize> {
    let d = (s as f64).sqrt().round() as usize;
    (d * d == s).then_some(d)
}

/// Cluster tolerance for eigenvalues of a random operator of scale `scale`.
fn tol(scale: f64) -> f64 {
    1e-7 * (1.0 + scale)
}

impl Irreps {
    /// Computes the complex and real irreps of `g` (deterministic: fixed internal seeds;
    /// a degenerate random draw is retried with the next seed).
    pub fn compute(g: &FiniteGroup) -> Result<Irreps> {
        let mut last = String::new();
        for attempt in 0..8u64 {
            match Self::compute_with_seed(g, attempt) {
                Ok(ir) => return Ok(ir),
                Err(e) => last = e.to_string(),
            }
        }
        Err(Error::Numerical(format!(
            "could not split the regular representation of {} into irreps: {last}",
            g.name
        )))
    }

    fn compute_with_seed(g: &FiniteGroup, seed: u64) -> Result<Irreps> {
        let n = g.order();
        let classes = conjugacy_classes(g);
        let cidx = class_index(&classes, n);
        let inv_class: Vec<usize> = classes.iter().map(|k| cidx[g.inv(k[0])]).collect();
        let mut rng = stream(seed, "groups/irreps");
        // --- complex ---
        let mut a = vec![c64::new(0.0, 0.0); classes.len()];
        for j in 0..classes.len() {
            let js = inv_class[j];
            if js == j {
                a[j] = c64::new(normal(&mut rng), 0.0);
            } else if js > j {
                a[j] = c64::new(normal(&mut rng), normal(&mut rng));
                a[js] = a[j].conj();
            }
        }
        let mut z = Mat::<c64>::zeros(n, n);
        for x in 0..n {
            for h in 0..n {
                z[(g.mul(x, h), h)] += a[cidx[x]];
            }
        }
        let (u, l) = cherm_eig(&z)?;
        let scale = l.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut b = vec![c64::new(0.0, 0.0); n];
        for x in 0..n {
            let xi = g.inv(x);
            if xi == x {
                b[x] = c64::new(normal(&mut rng), 0.0);
            } else if xi > x {
                b[x] = c64::new(normal(&mut rng), normal(&mut rng));
                b[xi] = b[x].conj();
            }
        }
        let mut rop = Mat::<c64>::zeros(n, n);
        for x in 0..n {
            for h in 0..n {
                rop[(g.mul(h, g.inv(x)), h)] += b[x];
            }
        }
        let mut complex = Vec::new();
        for c in clusters(&l, tol(scale)) {
            let s = c.len();
            let d = isqrt(s).ok_or_else(|| {
                Error::Numerical(format!(
                    "an isotypic component has dimension {s}, not a square"
                ))
            })?;
            let uc = u.subcols(c.start, s).to_owned();
            let bw = uc.adjoint() * &rop * &uc;
            let (w, lw) = cherm_eig(&bw)?;
            let sc = lw.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let cl = clusters(&lw, tol(sc));
            if cl.len() != d || cl.iter().any(|r| r.len() != d) {
                return Err(Error::Numerical(format!(
                    "the right action on an isotypic component of dimension {s} did not split into {d} copies"
                )));
            }
            let v = &uc * w.subcols(0, d);
            let mats: Vec<Mat<c64>> = (0..n)
                .map(|x| {
                    Mat::from_fn(d, d, |i, j| {
                        (0..n).fold(c64::new(0.0, 0.0), |acc, h| {
                            acc + v[(g.mul(x, h), i)].conj() * v[(h, j)]
                        })
                    })
                })
                .collect();
            let character: Vec<c64> = mats
                .iter()
                .map(|m| (0..d).fold(c64::new(0.0, 0.0), |acc, i| acc + m[(i, i)]))
                .collect();
            let fs: f64 = (0..n).map(|x| character[g.mul(x, x)].re).sum::<f64>() / n as f64;
            complex.push(ComplexIrrep {
                name: String::new(),
                dim: d,
                matrices: mats,
                character,
                indicator: fs.round() as i32,
            });
        }
        let total: usize = complex.iter().map(|r| r.dim * r.dim).sum();
        if total != n || complex.len() != classes.len() {
            return Err(Error::Numerical(format!(
                "found {} irreps with Σd² = {total} for |G| = {n} and {} classes",
                complex.len(),
                classes.len()
            )));
        }
        // names and order (trivial first, then by dimension and family sort key)
        let mut keyed: Vec<(Vec<i64>, ComplexIrrep)> = complex
            .into_iter()
            .map(|mut r| {
                let (name, key) = complex_label(g, r.dim, &r.character);
                r.name = name;
                (key, r)
            })
            .collect();
        keyed.sort_by(|x, y| {
            let triv = |r: &ComplexIrrep| {
                !(r.dim == 1 && r.character.iter().all(|c| (c.re - 1.0).abs() < 1e-8))
            };
            (triv(&x.1), x.1.dim, &x.0).cmp(&(triv(&y.1), y.1.dim, &y.0))
        });
        let complex_keys: Vec<Vec<i64>> = keyed.iter().map(|k| k.0.clone()).collect();
        let mut complex: Vec<ComplexIrrep> = keyed.into_iter().map(|k| k.1).collect();
        if g.family == Family::Generic {
            name_generic(&mut complex);
        }

        // --- real ---
        let mut ar = vec![0.0; classes.len()];
        for j in 0..classes.len() {
            let js = inv_class[j];
            if js >= j {
                ar[j] = normal(&mut rng);
                ar[js] = ar[j];
            }
        }
        let mut zr = Mat::<f64>::zeros(n, n);
        for x in 0..n {
            for h in 0..n {
                zr[(g.mul(x, h), h)] += ar[cidx[x]];
            }
        }
        let (ur, lr) = crate::linalg::sym_eig(zr.as_ref())?;
        let scale = lr.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut br = vec![0.0; n];
        for x in 0..n {
            let xi = g.inv(x);
            if xi >= x {
                br[x] = normal(&mut rng);
                br[xi] = br[x];
            }
        }
        let mut ropr = Mat::<f64>::zeros(n, n);
        for x in 0..n {
            for h in 0..n {
                ropr[(g.mul(h, g.inv(x)), h)] += br[x];
            }
        }
        let mut real = Vec::new();
        for c in clusters(&lr, tol(scale)) {
            let m = c.len();
            let uc = ur.subcols(c.start, m).to_owned();
            let bw = uc.transpose() * &ropr * &uc;
            let (w, lw) = crate::linalg::sym_eig(bw.as_ref())?;
            let sc = lw.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
            let cl = clusters(&lw, tol(sc));
            let r = cl[0].len();
            if cl.iter().any(|x| x.len() != r) {
                return Err(Error::Numerical(format!(
                    "the right action on a real isotypic component of dimension {m} split unevenly"
                )));
            }
            let v = &uc * w.subcols(0, r);
            let mats: Vec<Mat<f64>> = (0..n)
                .map(|x| {
                    Mat::from_fn(r, r, |i, j| {
                        (0..n).map(|h| v[(g.mul(x, h), i)] * v[(h, j)]).sum()
                    })
                })
                .collect();
            let character: Vec<f64> = mats
                .iter()
                .map(|s| (0..r).map(|i| s[(i, i)]).sum())
                .collect();
            let e = (character.iter().map(|c| c * c).sum::<f64>() / n as f64).round() as usize;
            let kind = match e {
                1 => IrrepKind::Real,
                2 => IrrepKind::Complex,
                4 => IrrepKind::Quaternionic,
                _ => {
                    return Err(Error::Numerical(format!(
                        "a real irrep of dimension {r} has ⟨χ, χ⟩ = {e} (expected 1, 2 or 4)"
                    )))
                }
            };
            if m * e != r * r {
                return Err(Error::Numerical(format!(
                    "a real isotypic component of dimension {m} does not fit a {kind:?} irrep of dimension {r}"
                )));
            }
            // the complex irreps it contains: ⟨χ_σ, χ_ρ⟩ ≠ 0
            let parts: Vec<usize> = complex
                .iter()
                .enumerate()
                .filter(|(_, rho)| {
                    (0..n)
                        .map(|x| character[x] * rho.character[x].re)
                        .sum::<f64>()
                        .abs()
                        > 0.5 * n as f64
                        || (0..n)
                            .map(|x| character[x] * rho.character[x].im)
                            .sum::<f64>()
                            .abs()
                            > 0.5 * n as f64
                })
                .map(|(i, _)| i)
                .collect();
            if parts.is_empty() {
                return Err(Error::Numerical(
                    "a real irrep matches no complex irrep".into(),
                ));
            }
            let first = *parts
                .iter()
                .min_by(|&&i, &&j| complex_keys[i].cmp(&complex_keys[j]))
                .unwrap_or(&parts[0]);
            real.push(RealIrrep {
                name: real_label(g, &complex[first], parts.len()),
                dim: r,
                kind,
                matrices: mats,
                character,
                complex: parts,
            });
        }
        real.sort_by(|x, y| (x.complex.iter().min(), x.dim).cmp(&(y.complex.iter().min(), y.dim)));
        let total: usize = real.iter().map(|r| r.dim * r.dim).sum::<usize>();
        let want: usize = real
            .iter()
            .map(|r| (r.dim * r.dim) as f64 / r.schur_index())
            .sum::<f64>() as usize;
        if want != n {
            return Err(Error::Numerical(format!(
                "real irreps cover {want} of {n} dimensions (Σr² = {total})"
            )));
        }
        Ok(Irreps { complex, real })
    }

    /// The real irrep called `name`.
    pub fn real_by_name(&self, name: &str) -> Option<usize> {
        self.real.iter().position(|r| r.name == name)
    }
}
