//! Irrep and Fourier identities for every family, a group given only by generators (S₄,
//! matched to the octahedral group) and one with a quaternionic irrep (Q₈); tolerance
//! 1e-12 on entries, 1e-12·|G| on sums over the group.

use super::*;
use crate::rng::{normal_vec, stream};
use faer::{c64, Mat};

fn s4() -> FiniteGroup {
    FiniteGroup::from_permutations("S4", &[vec![1, 2, 3, 0], vec![1, 0, 2, 3]], "test").unwrap()
}

/// Q₈ from the 2 × 2 Gaussian-integer matrices i = diag(i, −i), j = [[0, 1], [−1, 0]].
fn q8() -> FiniteGroup {
    type Q = [[(i8, i8); 2]; 2];
    let mul = |a: &Q, b: &Q| -> Q {
        let mut c = [[(0i8, 0i8); 2]; 2];
        for r in 0..2 {
            for s in 0..2 {
                for k in 0..2 {
                    let (x, y) = (a[r][k], b[k][s]);
                    c[r][s].0 += x.0 * y.0 - x.1 * y.1;
                    c[r][s].1 += x.0 * y.1 + x.1 * y.0;
                }
            }
        }
        c
    };
    let id: Q = [[(1, 0), (0, 0)], [(0, 0), (1, 0)]];
    let i: Q = [[(0, 1), (0, 0)], [(0, 0), (0, -1)]];
    let j: Q = [[(0, 0), (1, 0)], [(-1, 0), (0, 0)]];
    FiniteGroup::from_generators("Q8", id, &[i, j], mul, "test").unwrap()
}

fn all_groups() -> Vec<FiniteGroup> {
    vec![
        cyclic(11).unwrap(),
        cyclic(10).unwrap(),
        product(&cyclic(5).unwrap(), &cyclic(5).unwrap()).unwrap(),
        dihedral(5).unwrap(),
        dihedral(6).unwrap(),
        octahedral().unwrap(),
        icosahedral().unwrap(),
        s4(),
        q8(),
    ]
}

fn cdist(a: c64, b: c64) -> f64 {
    (a - b).norm()
}

fn check_complex(g: &FiniteGroup, ir: &Irreps) {
    let n = g.order();
    let tol = 1e-12;
    assert_eq!(
        ir.complex.iter().map(|r| r.dim * r.dim).sum::<usize>(),
        n,
        "{}",
        g.name
    );
    for r in &ir.complex {
        for a in 0..n {
            let m = &r.matrices[a];
            let uu = m * m.adjoint();
            for i in 0..r.dim {
                for j in 0..r.dim {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        cdist(uu[(i, j)], c64::new(want, 0.0)) < tol,
                        "unitarity {} {}",
                        g.name,
                        r.name
                    );
                }
            }
            for b in 0..n {
                let ab = &r.matrices[g.mul(a, b)];
                let prod = m * &r.matrices[b];
                for i in 0..r.dim {
                    for j in 0..r.dim {
                        assert!(
                            cdist(ab[(i, j)], prod[(i, j)]) < tol,
                            "homomorphism {} {}",
                            g.name,
                            r.name
                        );
                    }
                }
            }
        }
    }
    // Schur orthogonality: Σ_g ρ_ij(g) conj(ρ'_kl(g)) = (|G|/d) δ_ρρ' δ_ik δ_jl
    for (p, r) in ir.complex.iter().enumerate() {
        for (q, s) in ir.complex.iter().enumerate() {
            for i in 0..r.dim {
                for j in 0..r.dim {
                    for k in 0..s.dim {
                        for l in 0..s.dim {
                            let sum = (0..n).fold(c64::new(0.0, 0.0), |acc, a| {
                                acc + r.matrices[a][(i, j)] * s.matrices[a][(k, l)].conj()
                            });
                            let want = if p == q && i == k && j == l {
                                n as f64 / r.dim as f64
                            } else {
                                0.0
                            };
                            assert!(
                                cdist(sum, c64::new(want, 0.0)) < tol * n as f64,
                                "Schur {} {} {}",
                                g.name,
                                r.name,
                                s.name
                            );
                        }
                    }
                }
            }
            let cs = (0..n).fold(c64::new(0.0, 0.0), |acc, a| {
                acc + r.character[a] * s.character[a].conj()
            });
            let want = if p == q { n as f64 } else { 0.0 };
            assert!(
                cdist(cs, c64::new(want, 0.0)) < tol * n as f64,
                "characters {}",
                g.name
            );
        }
    }
    // names unique
    let mut names: Vec<&str> = ir.complex.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ir.complex.len(), "{}: {names:?}", g.name);
}

fn check_real(g: &FiniteGroup, ir: &Irreps) {
    let n = g.order();
    let tol = 1e-12;
    for r in &ir.real {
        for a in 0..n {
            let m = &r.matrices[a];
            let oo = m * m.transpose();
            for i in 0..r.dim {
                for j in 0..r.dim {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (oo[(i, j)] - want).abs() < tol,
                        "orthogonality {} {}",
                        g.name,
                        r.name
                    );
                }
            }
            for b in 0..n {
                let prod = m * &r.matrices[b];
                let ab = &r.matrices[g.mul(a, b)];
                for i in 0..r.dim {
                    for j in 0..r.dim {
                        assert!(
                            (ab[(i, j)] - prod[(i, j)]).abs() < tol,
                            "homomorphism {} {}",
                            g.name,
                            r.name
                        );
                    }
                }
            }
        }
        // the type from the complex parts: real ↔ one part of indicator +1, complex ↔ a
        // conjugate pair, quaternionic ↔ one part of indicator −1 (dimension doubled)
        let parts: Vec<&ComplexIrrep> = r.complex.iter().map(|&i| &ir.complex[i]).collect();
        match r.kind {
            IrrepKind::Real => {
                assert!(parts.len() == 1 && parts[0].indicator == 1 && parts[0].dim == r.dim)
            }
            IrrepKind::Complex => assert!(
                parts.len() == 2 && parts.iter().all(|p| p.indicator == 0 && 2 * p.dim == r.dim)
            ),
            IrrepKind::Quaternionic => {
                assert!(parts.len() == 1 && parts[0].indicator == -1 && 2 * parts[0].dim == r.dim)
            }
        }
        // χ_σ = Σ of parts (real, complex) or twice the part (quaternionic)
        let mult = if r.kind == IrrepKind::Quaternionic {
            2.0
        } else {
            1.0
        };
        for a in 0..n {
            let s: f64 = parts.iter().map(|p| p.character[a].re).sum::<f64>() * mult;
            assert!((s - r.character[a]).abs() < tol, "{} {}", g.name, r.name);
        }
    }
    // Schur orthogonality between different real irreps, and within real-type ones
    for (p, r) in ir.real.iter().enumerate() {
        for (q, s) in ir.real.iter().enumerate() {
            if p != q || r.kind == IrrepKind::Real {
                for i in 0..r.dim {
                    for j in 0..r.dim {
                        for k in 0..s.dim {
                            for l in 0..s.dim {
                                let sum: f64 = (0..n)
                                    .map(|a| r.matrices[a][(i, j)] * s.matrices[a][(k, l)])
                                    .sum();
                                let want = if p == q && i == k && j == l {
                                    n as f64 / r.dim as f64
                                } else {
                                    0.0
                                };
                                assert!(
                                    (sum - want).abs() < tol * n as f64,
                                    "real Schur {} {} {}",
                                    g.name,
                                    r.name,
                                    s.name
                                );
                            }
                        }
                    }
                }
            }
            let cs: f64 = (0..n).map(|a| r.character[a] * s.character[a]).sum();
            let want = if p == q {
                r.schur_index() * n as f64
            } else {
                0.0
            };
            assert!(
                (cs - want).abs() < tol * n as f64,
                "real characters {}",
                g.name
            );
        }
    }
}

fn check_fourier(g: &FiniteGroup, ir: &Irreps) {
    let n = g.order();
    let tol = 1e-12;
    let x = normal_vec(&mut stream(7, &g.name), n, 1.0);
    let norm2: f64 = x.iter().map(|v| v * v).sum();
    // complex: inversion, Plancherel
    let xh = complex_fourier(&ir.complex, &x);
    let back = complex_inverse_fourier(&ir.complex, &xh);
    for (a, b) in x.iter().zip(&back) {
        assert!(
            cdist(c64::new(*a, 0.0), *b) < tol,
            "complex inversion {}",
            g.name
        );
    }
    let pc = complex_power_spectrum(&ir.complex, &x);
    assert!(
        (pc.iter().sum::<f64>() - norm2).abs() < tol * norm2,
        "Plancherel {}",
        g.name
    );
    // real: inversion, Plancherel, P(σ) = Σ of its parts' P(ρ)
    let xr = real_fourier(&ir.real, &x);
    let back = real_inverse_fourier(&ir.real, &xr);
    for (a, b) in x.iter().zip(&back) {
        assert!((a - b).abs() < tol, "real inversion {}", g.name);
    }
    let pr = real_power_spectrum(&ir.real, &x);
    assert!(
        (pr.iter().sum::<f64>() - norm2).abs() < tol * norm2,
        "real Plancherel {}",
        g.name
    );
    for (r, p) in ir.real.iter().zip(&pr) {
        let s: f64 = r.complex.iter().map(|&i| pc[i]).sum();
        assert!((s - p).abs() < tol * norm2, "{} {}", g.name, r.name);
    }
    // templates with prescribed powers (trivial irrep 0: mean zero); complex coefficients
    // are multiples of the identity, as in the reference code
    let powers: Vec<f64> = (0..ir.real.len())
        .map(|i| if i == 0 { 0.0 } else { 1.0 + i as f64 })
        .collect();
    let t = template_from_powers(&ir.real, &powers, "test").unwrap();
    assert!(t.iter().sum::<f64>().abs() < tol * n as f64);
    for (a, b) in real_power_spectrum(&ir.real, &t).iter().zip(&powers) {
        assert!(
            (a - b).abs() < tol * b.max(1.0),
            "{} template power",
            g.name
        );
    }
    for (r, m) in ir.complex.iter().zip(complex_fourier(&ir.complex, &t)) {
        let off: f64 = (0..r.dim)
            .flat_map(|i| (0..r.dim).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| m[(i, j)].norm())
            .fold(0.0, f64::max);
        let diag: Vec<c64> = (0..r.dim).map(|i| m[(i, i)]).collect();
        assert!(
            off < 1e-10 && diag.iter().all(|z| cdist(*z, diag[0]) < 1e-10),
            "{} {}",
            g.name,
            r.name
        );
    }
}

#[test]
fn irreps_of_every_group_satisfy_the_identities() {
    for g in all_groups() {
        let ir = Irreps::compute(&g).unwrap();
        check_complex(&g, &ir);
        check_real(&g, &ir);
        check_fourier(&g, &ir);
    }
}

#[test]
fn irrep_names_and_dimensions() {
    let dims = |g: &FiniteGroup| -> Vec<(String, usize)> {
        Irreps::compute(g)
            .unwrap()
            .real
            .iter()
            .map(|r| (r.name.clone(), r.dim))
            .collect()
    };
    let s = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    };
    assert_eq!(
        dims(&cyclic(11).unwrap()),
        s(&[
            ("k0", 1),
            ("k1", 2),
            ("k2", 2),
            ("k3", 2),
            ("k4", 2),
            ("k5", 2)
        ])
    );
    assert_eq!(
        dims(&dihedral(5).unwrap()),
        s(&[("1", 1), ("1'", 1), ("2_1", 2), ("2_2", 2)])
    );
    assert_eq!(
        dims(&octahedral().unwrap()),
        s(&[("1", 1), ("1'", 1), ("2", 2), ("3", 3), ("3'", 3)])
    );
    assert_eq!(
        dims(&icosahedral().unwrap()),
        s(&[("1", 1), ("3", 3), ("3'", 3), ("4", 4), ("5", 5)])
    );
    let c55 = dims(&product(&cyclic(5).unwrap(), &cyclic(5).unwrap()).unwrap());
    assert_eq!(c55.len(), 13);
    for name in [
        "(0,0)", "(1,0)", "(0,1)", "(1,1)", "(2,0)", "(0,2)", "(1,4)",
    ] {
        assert!(c55.iter().any(|(n, _)| n == name), "{name} in {c55:?}");
    }
    // S₄ from two generators has the octahedral group's irrep dimensions and character
    // table (as multisets over (class size, element order))
    let (s4, oh) = (s4(), octahedral().unwrap());
    assert_eq!(s4.order(), 24);
    let sorted_dims = |g: &FiniteGroup| {
        let mut d: Vec<usize> = Irreps::compute(g)
            .unwrap()
            .complex
            .iter()
            .map(|r| r.dim)
            .collect();
        d.sort_unstable();
        d
    };
    assert_eq!(sorted_dims(&s4), vec![1, 1, 2, 3, 3]);
    assert_eq!(sorted_dims(&s4), sorted_dims(&oh));
    let table = |g: &FiniteGroup| {
        let ir = Irreps::compute(g).unwrap();
        let cl = classes::conjugacy_classes(g);
        let mut rows: Vec<Vec<(usize, usize, i64)>> = ir
            .real
            .iter()
            .map(|r| {
                let mut row: Vec<(usize, usize, i64)> = cl
                    .iter()
                    .map(|k| {
                        (
                            k.len(),
                            g.element_order(k[0]),
                            r.character[k[0]].round() as i64,
                        )
                    })
                    .collect();
                row.sort_unstable();
                row
            })
            .collect();
        rows.sort_unstable();
        rows
    };
    assert_eq!(table(&s4), table(&oh));
    // Q₈: one quaternionic 2-D complex irrep, realified to a 4-D real irrep
    let q = Irreps::compute(&q8()).unwrap();
    assert_eq!(
        q.real
            .iter()
            .filter(|r| r.kind == IrrepKind::Quaternionic && r.dim == 4)
            .count(),
        1
    );
    // C₁₀: the real irreps k0 and k5 are 1-D (real type), the others merge a pair
    let c10 = Irreps::compute(&cyclic(10).unwrap()).unwrap();
    assert_eq!(
        c10.real
            .iter()
            .filter(|r| r.kind == IrrepKind::Complex)
            .count(),
        4
    );
}

#[test]
fn bad_tables_and_generators_are_refused_with_the_reason() {
    let err = |t: Vec<Vec<usize>>| {
        FiniteGroup::from_table("t", &t, "group.table")
            .unwrap_err()
            .to_string()
    };
    let e = err(vec![vec![0, 1], vec![1, 1]]);
    assert!(e.contains("group.table") && e.contains("inverse"), "{e}");
    let e = err(vec![vec![1, 0], vec![0, 0]]);
    assert!(e.contains("identity"), "{e}");
    let e = err(vec![vec![0, 1], vec![1]]);
    assert!(e.contains("row 1"), "{e}");
    let e = err(vec![vec![0, 3], vec![1, 0]]);
    assert!(e.contains("[0][1]"), "{e}");
    // a Latin square with identity and inverses that is not associative (order 5 loop)
    let loop5 = vec![
        vec![0, 1, 2, 3, 4],
        vec![1, 0, 3, 4, 2],
        vec![2, 4, 0, 1, 3],
        vec![3, 2, 4, 0, 1],
        vec![4, 3, 1, 2, 0],
    ];
    let e = err(loop5);
    assert!(e.contains("associative"), "{e}");
    let e = FiniteGroup::from_permutations("p", &[vec![0, 0, 1]], "group.generators")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("group.generators") && e.contains("not a permutation"),
        "{e}"
    );
    let e = FiniteGroup::from_permutations("p", &[vec![1, 0], vec![0, 1, 2]], "group.generators")
        .unwrap_err()
        .to_string();
    assert!(e.contains("length"), "{e}");
    assert!(dihedral(2).unwrap_err().to_string().contains("n ≥ 3"));
    // a table-given group equals the family construction (D₃ ≅ S₃ from permutations)
    let s3 = FiniteGroup::from_permutations("S3", &[vec![1, 2, 0], vec![1, 0, 2]], "g").unwrap();
    let t: Vec<Vec<usize>> = (0..6)
        .map(|a| (0..6).map(|b| s3.mul(a, b)).collect())
        .collect();
    let g = FiniteGroup::from_table("S3", &t, "g").unwrap();
    assert!(!g.is_abelian());
    let _ = Mat::<f64>::zeros(1, 1);
}
