//! Numerical checks of every derivation step of the unlearning theory.

use super::fast_slow::Branch;
use super::fit::{least_squares, power_law};
use super::hermite::{hermite_values, GaussHermite, HermiteSeries};
use super::limit::LimitModel;
use crate::experiments::unlearning::simulator::{
    population_gradient, population_loss, symmetric_init, BatchMode, ParticleFlow, SimConfig,
    Simulator,
};
use crate::rng::{normal, stream};
use crate::train::ode::{solve, PidController, DOPRI5};
use faer::Par;

fn series(c: &[f64]) -> HermiteSeries {
    HermiteSeries::new(c.to_vec(), "test").unwrap()
}

fn model(cstar2: f64, eps: f64) -> LimitModel {
    LimitModel::new(series(&[0.0, 1.0, 0.5]), series(&[0.0, 1.0, cstar2]), eps)
}

#[test]
fn hermite_orthonormal_and_derivative() {
    let q = GaussHermite::new(20).unwrap();
    let mut h = vec![0.0; 8];
    for k in 0..8 {
        for l in 0..8 {
            let v = q.expect(|z| {
                hermite_values(z, &mut h);
                h[k] * h[l]
            });
            assert!(
                (v - if k == l { 1.0 } else { 0.0 }).abs() < 1e-11,
                "E[h{k} h{l}] = {v}"
            );
        }
    }
    // h_3 = (z³ − 3z)/√6 explicitly, and σ' against central differences.
    hermite_values(1.7, &mut h);
    assert!((h[3] - (1.7f64.powi(3) - 3.0 * 1.7) / 6f64.sqrt()).abs() < 1e-13);
    let s = series(&[0.3, -1.0, 0.5, 0.25, -0.1]);
    for z in [-2.0, -0.3, 0.0, 0.8, 2.5] {
        let (_, d) = s.value_and_derivative(z);
        let fd = (s.value(z + 1e-5) - s.value(z - 1e-5)) / 2e-5;
        assert!((d - fd).abs() < 1e-8, "σ'({z}) = {d} vs {fd}");
    }
}

#[test]
fn hermite_smoothing_and_kernel_identities() {
    let q = GaussHermite::new(16).unwrap();
    let s = series(&[0.2, 1.0, 0.5, -0.3]);
    for m in [0.0, 0.3, 0.9] {
        let sm = s.smoothed(m);
        let r = (1.0 - m * m).sqrt();
        for z in [-1.3, 0.4, 2.0] {
            let lhs = q.expect(|g| s.value(m * z + r * g));
            assert!(
                (lhs - sm.value(z)).abs() < 1e-12,
                "smoothing at m={m}, z={z}"
            );
        }
    }
    for rho in [-0.7, 0.0, 0.5, 0.95] {
        let r = (1.0f64 - rho * rho).sqrt();
        let lhs = q.expect2(|z, g| s.value(z) * s.value(rho * z + r * g));
        assert!((lhs - s.kernel(rho)).abs() < 1e-12, "kernel at ρ={rho}");
        let fd = (s.kernel(rho + 1e-6) - s.kernel(rho - 1e-6)) / 2e-6;
        assert!((s.kernel_derivative(rho) - fd).abs() < 1e-8);
    }
}

#[test]
fn limit_loss_matches_monte_carlo_of_the_smoothed_network() {
    // L(m,a) = ½E[(σ*(z) − a Σ c_k m^k h_k(z))²] by Monte Carlo with 4e5 samples.
    let lm = LimitModel::new(
        series(&[0.1, 1.0, 0.5, 0.2]),
        series(&[0.0, 0.8, -0.4, 0.3]),
        0.1,
    );
    let mut r = stream(3, "mc");
    let (m, a) = (0.6, 1.3);
    let sm = lm.student.smoothed(m);
    let n = 400_000;
    let vals: Vec<f64> = (0..n)
        .map(|_| {
            let z = normal(&mut r);
            0.5 * (lm.teacher.value(z) - a * sm.value(z)).powi(2)
        })
        .collect();
    let mean = vals.iter().sum::<f64>() / n as f64;
    let se = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 * (n as f64 - 1.0)))
        .sqrt();
    assert!(
        (mean - lm.loss(m, a)).abs() < 4.0 * se,
        "MC {mean} ± {se} vs {}",
        lm.loss(m, a)
    );
}

#[test]
fn finite_network_population_loss_matches_monte_carlo_and_limit() {
    let cfg = SimConfig {
        width: 12,
        dim: 20,
        student: series(&[0.0, 1.0, 0.5]),
        teacher: series(&[0.0, 1.0, 0.25]),
        m0: 0.4,
        a0: 0.7,
        lr: 0.05,
        eps: 0.1,
        gamma: 1.0,
        batch: BatchMode::Population,
        spherical: true,
        orthogonal_init: true,
    };
    let (w, a) = symmetric_init(&cfg, &mut stream(1, "init"));
    let q = GaussHermite::new(16).unwrap();
    let exact = population_loss(&cfg, &w, &a, &q);
    // Orthonormal ξ: ρ_ij = m² exactly, so L_N = L(m,a) + a²/(2N)[K(1) − K(m²)].
    let lm = LimitModel::new(cfg.student.clone(), cfg.teacher.clone(), 0.1);
    let k = |r: f64| cfg.student.kernel(r);
    let closed = lm.loss(0.4, 0.7) + 0.7f64.powi(2) / (2.0 * 12.0) * (k(1.0) - k(0.16));
    assert!((exact - closed).abs() < 1e-12, "{exact} vs {closed}");
    // Monte Carlo with non-unit rows (norm-rescaled Hermite coefficients).
    let w2: Vec<f64> = w
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + 0.3 * ((i / 20) as f64 / 12.0)))
        .collect();
    let exact2 = population_loss(&cfg, &w2, &a, &q);
    let mut r = stream(2, "mc");
    let n = 200_000;
    let mut vals = Vec::with_capacity(n);
    let mut x = [0.0; 20];
    for _ in 0..n {
        x.iter_mut().for_each(|v| *v = normal(&mut r));
        let f: f64 = (0..12)
            .map(|j| {
                a[j] * cfg
                    .student
                    .value((0..20).map(|i| w2[j * 20 + i] * x[i]).sum())
            })
            .sum::<f64>()
            / 12.0;
        vals.push(0.5 * (f - cfg.teacher.value(x[0])).powi(2));
    }
    let mean = vals.iter().sum::<f64>() / n as f64;
    let se = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 * (n as f64 - 1.0)))
        .sqrt();
    assert!(
        (mean - exact2).abs() < 4.0 * se,
        "MC {mean} ± {se} vs exact {exact2}"
    );
}

#[test]
fn limit_rhs_is_projected_gradient_of_the_loss() {
    let lm = LimitModel::new(
        series(&[0.1, 1.0, 0.5, -0.2]),
        series(&[0.0, 0.9, -0.3, 0.4]),
        0.07,
    );
    let h = 1e-6;
    for (m, a) in [(0.2, 0.5), (0.7, 1.5), (-0.4, 2.0), (0.95, 0.3)] {
        let dl_dm = (lm.loss(m + h, a) - lm.loss(m - h, a)) / (2.0 * h);
        let dl_da = (lm.loss(m, a + h) - lm.loss(m, a - h)) / (2.0 * h);
        let (dm, da) = lm.rhs(m, a);
        assert!(
            (dm + (1.0 - m * m) * dl_dm).abs() < 1e-8,
            "dm/dt at ({m},{a})"
        );
        assert!((da + 0.07 * dl_da).abs() < 1e-9, "da/dt at ({m},{a})");
        let fd_fm = (lm.fast(m + h, a) - lm.fast(m - h, a)) / (2.0 * h);
        let fd_fa = (lm.fast(m, a + h) - lm.fast(m, a - h)) / (2.0 * h);
        assert!((lm.dfast_dm(m, a) - fd_fm).abs() < 1e-7, "∂F/∂m");
        assert!((lm.dfast_da(m, a) - fd_fa).abs() < 1e-7, "∂F/∂a");
    }
}

#[test]
fn finite_population_gradient_matches_finite_differences() {
    let cfg = SimConfig {
        width: 5,
        dim: 7,
        student: series(&[0.1, 1.0, 0.5, 0.3]),
        teacher: series(&[0.0, 1.0, -0.4]),
        m0: 0.3,
        a0: 0.8,
        lr: 0.05,
        eps: 0.1,
        gamma: 0.75,
        batch: BatchMode::Population,
        spherical: true,
        orthogonal_init: false,
    };
    let (w, mut a) = symmetric_init(&cfg, &mut stream(4, "init"));
    a.iter_mut()
        .enumerate()
        .for_each(|(j, v)| *v += 0.1 * j as f64);
    let q = GaussHermite::new(16).unwrap();
    let (mut gw, mut ga) = (vec![0.0; 35], vec![0.0; 5]);
    population_gradient(&cfg, &w, &a, &mut gw, &mut ga, Par::Seq);
    let h = 1e-6;
    for j in 0..5 {
        let mut ap = a.clone();
        ap[j] += h;
        let mut am = a.clone();
        am[j] -= h;
        let fd =
            (population_loss(&cfg, &w, &ap, &q) - population_loss(&cfg, &w, &am, &q)) / (2.0 * h);
        assert!((ga[j] - fd).abs() < 1e-8, "∂L/∂a_{j}: {} vs {fd}", ga[j]);
        // Tangent direction t ⟂ w_j: directional derivative on the sphere (retraction w + h t normalised).
        let wj = &w[j * 7..(j + 1) * 7];
        let mut t: Vec<f64> = (0..7).map(|i| ((i * 3 + j) % 5) as f64 - 2.0).collect();
        let p: f64 = t.iter().zip(wj).map(|(x, y)| x * y).sum();
        t.iter_mut().zip(wj).for_each(|(x, y)| *x -= p * y);
        let moved = |s: f64| {
            let mut w2 = w.clone();
            let nn: f64 = (0..7)
                .map(|i| (wj[i] + s * t[i]).powi(2))
                .sum::<f64>()
                .sqrt();
            for i in 0..7 {
                w2[j * 7 + i] = (wj[i] + s * t[i]) / nn;
            }
            population_loss(&cfg, &w2, &a, &q)
        };
        let fd = (moved(h) - moved(-h)) / (2.0 * h);
        let an: f64 = (0..7).map(|i| gw[j * 7 + i] * t[i]).sum();
        assert!(
            (an - fd).abs() < 1e-7,
            "tangent derivative neuron {j}: {an} vs {fd}"
        );
    }
}

#[test]
fn minibatch_gradient_matches_finite_differences() {
    let cfg = SimConfig {
        width: 4,
        dim: 6,
        student: series(&[0.0, 1.0, 0.5]),
        teacher: series(&[0.0, 1.0, 0.7]),
        m0: 0.2,
        a0: 0.5,
        lr: 0.05,
        eps: 0.1,
        gamma: 1.0,
        batch: BatchMode::Fixed {
            samples: 9,
            batch: 9,
        },
        spherical: false,
        orthogonal_init: false,
    };
    let mut sim = Simulator::new(cfg.clone(), 5).unwrap();
    sim.minibatch_gradient(Par::Seq);
    let (x, y) = (sim.last_batch().0.to_vec(), sim.last_batch().1.to_vec());
    let (gw, ga) = (sim.gradients().0.to_vec(), sim.gradients().1.to_vec());
    let loss = |w: &[f64], a: &[f64]| {
        (0..9)
            .map(|i| {
                let f: f64 = (0..4)
                    .map(|j| {
                        a[j] * cfg
                            .student
                            .value((0..6).map(|k| w[j * 6 + k] * x[i * 6 + k]).sum())
                    })
                    .sum::<f64>()
                    / 4.0;
                0.5 * (f - y[i]).powi(2)
            })
            .sum::<f64>()
            / 9.0
    };
    let h = 1e-6;
    for p in 0..24 {
        let (mut wp, mut wm) = (sim.w.clone(), sim.w.clone());
        wp[p] += h;
        wm[p] -= h;
        let fd = (loss(&wp, &sim.a) - loss(&wm, &sim.a)) / (2.0 * h);
        assert!((gw[p] - fd).abs() < 1e-8, "∂/∂W[{p}]");
    }
    for j in 0..4 {
        let (mut ap, mut am) = (sim.a.clone(), sim.a.clone());
        ap[j] += h;
        am[j] -= h;
        let fd = (loss(&sim.w, &ap) - loss(&sim.w, &am)) / (2.0 * h);
        assert!((ga[j] - fd).abs() < 1e-8, "∂/∂a[{j}]");
    }
}

#[test]
fn critical_manifold_roots_and_stability() {
    let lm = model(0.25, 0.05);
    // Below A(1) = 1.25/1.5 there is no interior root in (0, 1): only m = 1 (attracting).
    let low = lm.critical_points(0.3, 2000);
    assert!(low
        .iter()
        .all(|p| p.branch == Branch::Boundary || p.m < 0.0));
    assert!(low.iter().any(|p| p.m == 1.0 && p.attracting));
    for a in [1.0, 2.0, 5.0] {
        let pts = lm.critical_points(a, 2000);
        let interior: Vec<_> = pts
            .iter()
            .filter(|p| p.branch == Branch::Interior)
            .collect();
        assert!(!interior.is_empty(), "no interior root at a = {a}");
        for p in &interior {
            assert!(lm.fast(p.m, a).abs() < 1e-10);
            assert!(
                (lm.manifold_a(p.m) - a).abs() < 1e-8 * a.max(1.0),
                "root m={} gives A(m)={}",
                p.m,
                lm.manifold_a(p.m)
            );
            let fd = (lm.fast(p.m + 1e-6, a) - lm.fast(p.m - 1e-6, a)) / 2e-6;
            assert_eq!(p.attracting, fd < 0.0);
        }
        // Degree-2 closed form A(m) = (c1 c*1 + 2 c2 c*2 m)/(c1² m + 2 c2² m³) on the positive branch.
        let pos = interior.iter().find(|p| p.m > 0.0).unwrap();
        let m = pos.m;
        assert!(((1.0 + 2.0 * 0.5 * 0.25 * m) / (m + 2.0 * 0.25 * m.powi(3)) - a).abs() < 1e-8);
        assert!(pos.attracting, "the positive interior branch is attracting");
        // Boundary m = 1 attracting iff a < A(1).
        let b = pts
            .iter()
            .find(|p| p.branch == Branch::Boundary && p.m == 1.0)
            .unwrap();
        assert_eq!(b.attracting, a < lm.manifold_a(1.0));
    }
}

#[test]
fn slow_flow_equals_criterion_and_fixed_point_closed_form() {
    for cs in [-0.5, 0.0, 0.25, 0.4] {
        let lm = model(cs, 0.05);
        for m in [0.1, 0.4, 0.8] {
            let a = lm.manifold_a(m);
            assert!((lm.slow(m, a) - lm.unlearning_criterion(m, a)).abs() < 1e-12);
            // A'(m) by implicit differentiation vs finite differences.
            let fd = (lm.manifold_a(m + 1e-6) - lm.manifold_a(m - 1e-6)) / 2e-6;
            assert!((lm.manifold_slope(m) - fd).abs() < 1e-6 * fd.abs().max(1.0));
        }
        let fps = lm.slow_fixed_points();
        let (c1, c2, t1) = (1.0, 0.5, 1.0);
        let m_eq = c1 * cs / (c2 * t1);
        if m_eq > 0.0 && m_eq < 1.0 {
            assert_eq!(fps.len(), 1, "c*2 = {cs}: {fps:?}");
            assert!((fps[0].0 - m_eq).abs() < 1e-9);
            assert!((fps[0].1 - t1 * t1 * c2 / (c1 * c1 * cs)).abs() < 1e-8);
        } else {
            assert!(fps.is_empty(), "c*2 = {cs}: {fps:?}");
        }
    }
}

#[test]
fn reduced_flow_matches_full_ode_as_eps_shrinks() {
    // Start on the attracting interior branch; compare at slow time τ = ε t.
    let m0 = 0.8;
    let taus = [2.0, 5.0, 10.0];
    let mut errs = Vec::new();
    for eps in [0.02, 0.005] {
        let lm = model(0.0, eps);
        let a0 = lm.manifold_a(m0);
        let ts: Vec<f64> = taus.iter().map(|t| t / eps).collect();
        let full = lm.integrate(m0, a0, &ts, 1e-10).unwrap();
        let red = lm.integrate_reduced(m0, &ts, 1e-10).unwrap();
        let e = full
            .iter()
            .zip(&red)
            .map(|(f, r)| (f.0 - r.0).abs())
            .fold(0.0, f64::max);
        errs.push(e);
    }
    assert!(errs[0] < 0.01, "ε=0.02 error {}", errs[0]);
    // Tikhonov: the error is O(ε) — quartering ε should cut it by ≥ 3×.
    assert!(errs[1] < errs[0] / 3.0, "errors {errs:?}");
}

#[test]
fn noise_variance_for_linear_student_is_twice_the_loss() {
    // σ = h1: σ' ≡ 1 so V = E[r²] = 2 L(m, a) exactly.
    let lm = LimitModel::new(series(&[0.0, 1.0]), series(&[0.0, 1.0, 0.6]), 0.1)
        .with_noise(0.01, 12)
        .unwrap();
    for (m, a) in [(0.3, 1.0), (0.9, 0.5)] {
        assert!((lm.noise_variance(m, a) - 2.0 * lm.loss(m, a)).abs() < 1e-12);
    }
}

#[test]
fn least_squares_recovers_coefficients_and_standard_errors() {
    let x: Vec<f64> = (0..200).map(|i| i as f64 / 20.0).collect();
    let y: Vec<f64> = x.iter().map(|v| 1.5 - 0.25 * v).collect();
    let ls = least_squares(&[vec![1.0; 200], x.clone()], &y).unwrap();
    assert!(
        (ls.coef[0] - 1.5).abs() < 1e-12
            && (ls.coef[1] + 0.25).abs() < 1e-12
            && ls.stderr[1] < 1e-12
    );
    // Noise σ = 0.1: se(slope) = σ / sqrt(Σ(x−x̄)²); 95 % intervals cover the truth ~95 % of the time.
    let sxx: f64 = {
        let mu = x.iter().sum::<f64>() / 200.0;
        x.iter().map(|v| (v - mu).powi(2)).sum()
    };
    let mut r = stream(9, "ls");
    let mut cover = 0;
    for _ in 0..400 {
        let yn: Vec<f64> = y.iter().map(|v| v + 0.1 * normal(&mut r)).collect();
        let f = least_squares(&[vec![1.0; 200], x.clone()], &yn).unwrap();
        assert!((f.stderr[1] / (0.1 / sxx.sqrt()) - 1.0).abs() < 0.2);
        if (f.coef[1] + 0.25).abs() <= f.ci95[1] {
            cover += 1;
        }
    }
    assert!((360..=395).contains(&cover), "coverage {cover}/400");
}

#[test]
fn scaling_law_exponents_match_long_time_fits() {
    // (c*2 = 0: q = 3, exponent 1/4) and (c*2 = −0.5: q = 2, exponent 1/3). The full ODE is stiff
    // at late times (fast rate ∝ a²), so the asymptotic window t ∈ [1e6, 1e9] uses the reduced
    // flow, and the full ODE is checked against the reduced flow up to t = 1e5.
    for (cs, expo) in [(0.0, 0.25), (-0.5, 1.0 / 3.0)] {
        let lm = model(cs, 0.05);
        let law = lm.scaling_law().unwrap();
        assert!((law.exponent - expo).abs() < 1e-15);
        let ts: Vec<f64> = (0..=40)
            .map(|i| 10f64.powf(6.0 + 3.0 * i as f64 / 40.0))
            .collect();
        let sol = lm.integrate_reduced(0.5, &ts, 1e-10).unwrap();
        let a: Vec<f64> = sol.iter().map(|s| s.1).collect();
        let m: Vec<f64> = sol.iter().map(|s| s.0).collect();
        let fa = power_law(&ts, &a, 1e6, 1e9).unwrap();
        let fm = power_law(&ts, &m, 1e6, 1e9).unwrap();
        assert!(
            (fa.exponent - expo).abs() < 3e-3,
            "a exponent {fa:?} vs {expo}"
        );
        assert!(
            (fm.exponent + expo).abs() < 3e-3,
            "m exponent {fm:?} vs {expo}"
        );
        assert!(
            (fa.prefactor / law.a_prefactor - 1.0).abs() < 0.05,
            "prefactor {} vs {}",
            fa.prefactor,
            law.a_prefactor
        );
        // Full ODE from (0.1, 0.1) vs reduced flow started on the branch: same late-time law.
        let late = [1e4, 1e5];
        let full = lm.integrate(0.1, 0.1, &late, 1e-9).unwrap();
        for (t, (mf, af)) in late.iter().zip(&full) {
            let pred = law.a_prefactor * t.powf(expo);
            assert!(
                (af / pred - 1.0).abs() < 0.25 && (mf * af / law.c - 1.0).abs() < 0.2,
                "t={t}: a={af} vs {pred}, a·m={}",
                mf * af
            );
        }
    }
    assert!(
        model(0.25, 0.05).scaling_law().is_none(),
        "same-sign c*2 anchors the alignment"
    );
}

#[test]
fn particle_flow_approaches_limit_ode_as_width_grows() {
    // N neurons with exactly orthonormal orthogonal parts in d = N + 1: the limit ODE holds up
    // to the O(1/N) self-interaction, so the error must shrink ~ 1/N.
    let errs: Vec<f64> = [15usize, 60]
        .iter()
        .map(|&n| {
            let cfg = SimConfig {
                width: n,
                dim: n + 1,
                student: series(&[0.0, 1.0, 0.5]),
                teacher: series(&[0.0, 1.0, 0.0]),
                m0: 0.1,
                a0: 0.1,
                lr: 0.05,
                eps: 0.2,
                gamma: 1.0,
                batch: BatchMode::Population,
                spherical: true,
                orthogonal_init: true,
            };
            let (mut flow, y0) = ParticleFlow::new(cfg.clone(), 0).unwrap();
            let ts = [10.0, 40.0, 100.0];
            let sol = solve(
                &mut flow,
                &DOPRI5,
                PidController::new(1e-7, 1e-10),
                0.0,
                100.0,
                &y0,
                &ts,
                100_000,
            )
            .unwrap();
            let lm = LimitModel::new(cfg.student.clone(), cfg.teacher.clone(), 0.2);
            let ode = lm.integrate(0.1, 0.1, &ts, 1e-10).unwrap();
            let q = GaussHermite::new(12).unwrap();
            sol.ys
                .iter()
                .zip(&ode)
                .map(|(y, (m, _))| {
                    (crate::experiments::unlearning::simulator::order_params(
                        &cfg,
                        &y[..n * (n + 1)],
                        &y[n * (n + 1)..],
                        &q,
                    )
                    .m - m)
                        .abs()
                })
                .fold(0.0, f64::max)
        })
        .collect();
    assert!(errs[0] < 0.15, "{errs:?}");
    assert!(
        errs[1] < errs[0] / 2.5,
        "error should fall ~1/N from N=15 to N=60: {errs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finite width: the equiangular reduction, the simplex self-interaction and the N^{−1/4} law.

use super::finite_width::EquiangularModel;

fn equiangular_state(cfg: &SimConfig, w: &[f64]) -> (f64, f64) {
    let q = GaussHermite::new(8).unwrap();
    let op =
        crate::experiments::unlearning::simulator::order_params(cfg, w, &vec![1.0; cfg.width], &q);
    (op.m, op.common_sq)
}

#[test]
fn equiangular_reduction_is_exact_for_the_particle_flow() {
    // Orthonormal ξ (equal pair overlaps) stay equiangular under the population flow, which then
    // closes on (m, p, a): compare the N-particle flow with the 3-D ODE.
    let (n, d) = (6, 9);
    let cfg = SimConfig {
        width: n,
        dim: d,
        student: series(&[0.1, 1.0, 0.5, 0.3]),
        teacher: series(&[0.0, 1.0, 0.3, -0.2]),
        m0: 0.2,
        a0: 0.4,
        lr: 0.05,
        eps: 0.3,
        gamma: 1.0,
        batch: BatchMode::Population,
        spherical: true,
        orthogonal_init: true,
    };
    let (mut flow, y0) = ParticleFlow::new(cfg.clone(), 7).unwrap();
    let ts = [0.0, 2.0, 5.0, 15.0, 40.0];
    let sol = solve(
        &mut flow,
        &DOPRI5,
        PidController::new(1e-10, 1e-13),
        0.0,
        40.0,
        &y0,
        &ts,
        1_000_000,
    )
    .unwrap();
    let eq =
        EquiangularModel::new(cfg.student.clone(), cfg.teacher.clone(), 0.3, n as f64).unwrap();
    let (m0, p0) = equiangular_state(&cfg, &y0[..n * d]);
    assert!((p0 - (1.0 - 0.04) / n as f64).abs() < 1e-12, "p0 = {p0}");
    let red = eq.integrate(m0, p0, 0.4, &ts, 1e-11).unwrap();
    let q = GaussHermite::new(12).unwrap();
    for (y, r) in sol.ys.iter().zip(&red) {
        let op = crate::experiments::unlearning::simulator::order_params(
            &cfg,
            &y[..n * d],
            &y[n * d..],
            &q,
        );
        assert!(
            op.m_std < 1e-8 && op.a_std < 1e-8,
            "symmetry broken: {op:?}"
        );
        assert!((op.m - r[0]).abs() < 1e-7, "m {} vs {}", op.m, r[0]);
        assert!(
            (op.common_sq - r[1]).abs() < 1e-7,
            "p {} vs {}",
            op.common_sq,
            r[1]
        );
        assert!((op.a - r[2]).abs() < 1e-7, "a {} vs {}", op.a, r[2]);
        assert!((op.loss - eq.loss(r[0], r[1], r[2])).abs() < 1e-7);
    }
    // The common component decays (it only costs loss): p(40) ≪ p(0).
    assert!(red[4][1] < 1e-3 * p0, "p(40) = {}", red[4][1]);
    // N = ∞, p = 0 is the 2-D limit ODE.
    let inf = EquiangularModel::new(cfg.student.clone(), cfg.teacher.clone(), 0.3, f64::INFINITY)
        .unwrap();
    let lm = LimitModel::new(cfg.student.clone(), cfg.teacher.clone(), 0.3);
    for (m, a) in [(0.3, 0.5), (0.8, 2.0)] {
        let (dm, dp, da) = inf.rhs(m, 0.0, a);
        let (fm, fa) = lm.rhs(m, a);
        assert!((dm - fm).abs() < 1e-13 && dp == 0.0 && (da - fa).abs() < 1e-13);
        assert!((inf.loss(m, 0.0, a) - lm.loss(m, a)).abs() < 1e-13);
    }
}

#[test]
fn simplex_self_interaction_and_the_quarter_power_saturation() {
    // A regular simplex of orthogonal parts (p = 0) in the simulator's exact population loss.
    let (n, d) = (8, 10);
    let cfg = SimConfig {
        width: n,
        dim: d,
        student: series(&[0.0, 1.0, 0.5]),
        teacher: series(&[0.0, 1.0, 0.0]),
        m0: 0.3,
        a0: 1.7,
        lr: 0.05,
        eps: 1.0,
        gamma: 1.0,
        batch: BatchMode::Population,
        spherical: true,
        orthogonal_init: false,
    };
    let (m, a) = (0.3, 1.7);
    let s = ((1.0 - m * m) * n as f64 / (n as f64 - 1.0)).sqrt();
    let mut w = vec![0.0; n * d];
    for j in 0..n {
        w[j * d] = m;
        for i in 0..n {
            w[j * d + 1 + i] = s * (if i == j { 1.0 } else { 0.0 } - 1.0 / n as f64);
        }
    }
    let (mm, p) = equiangular_state(&cfg, &w);
    assert!(
        (mm - m).abs() < 1e-14 && p < 1e-28,
        "simplex: m {mm}, p {p}"
    );
    let q = GaussHermite::new(12).unwrap();
    let exact = population_loss(&cfg, &w, &vec![a; n], &q);
    let eq =
        EquiangularModel::new(cfg.student.clone(), cfg.teacher.clone(), 1.0, n as f64).unwrap();
    assert!((exact - eq.loss(m, 0.0, a)).abs() < 1e-13);
    // Degree 2: L_N = L + (a²/2) c_2² (1 − m²)²/(N − 1) exactly.
    let lm = LimitModel::new(cfg.student.clone(), cfg.teacher.clone(), 1.0);
    let closed = lm.loss(m, a) + 0.5 * a * a * 0.25 * (1.0 - m * m).powi(2) / (n as f64 - 1.0);
    assert!((exact - closed).abs() < 1e-13, "{exact} vs {closed}");
    // Interior fixed point: m⁴ = 1/N for any c_1, c_2, c*_1 (linear teacher), and it attracts.
    for (c1, c2, t1) in [(1.0, 0.5, 1.0), (0.8, -0.3, 0.6)] {
        for nn in [16.0, 64.0, 256.0, 1024.0] {
            let eq =
                EquiangularModel::new(series(&[0.0, c1, c2]), series(&[0.0, t1]), 1.0, nn).unwrap();
            let fps = eq.simplex_fixed_points();
            assert_eq!(fps.len(), 1, "N={nn}: {fps:?}");
            let (mf, af) = fps[0];
            let (dm, _, da) = eq.rhs(mf, 0.0, af);
            assert!(dm.abs() < 1e-10 && da.abs() < 1e-10);
            assert!((mf.powi(4) * nn - 1.0).abs() < 1e-9, "N={nn}: m = {mf}");
            let qv = mf.powi(4) + (1.0 - mf * mf).powi(2) / (nn - 1.0);
            let a_closed = t1 * c1 * mf / (c1 * c1 * mf * mf + c2 * c2 * qv);
            assert!(
                (af - a_closed).abs() < 1e-9 * a_closed,
                "a {af} vs {a_closed}"
            );
        }
    }
    let eq16 =
        EquiangularModel::new(series(&[0.0, 1.0, 0.5]), series(&[0.0, 1.0]), 1.0, 16.0).unwrap();
    let end = eq16.integrate(0.1, 0.0, 0.1, &[3000.0], 1e-9).unwrap()[0];
    assert!(
        (end[0] - 0.5).abs() < 2e-3,
        "N = 16 saturates at 16^(-1/4) = 0.5: {end:?}"
    );
}

#[test]
fn noise_variances_closed_forms() {
    // p = 0: V equals the 2-D per-neuron V of LimitModel; for σ = c1 h1 + c2 h2, σ' = c1 + √2 c2 u
    // is linear so V − V_c = 2 c2² (1 − m² − p) E[e²], E[e²] = Σc*² − 2aΣc*c m^k + a²Σc² b^k.
    let (st, te) = (series(&[0.0, 1.0, 0.5]), series(&[0.0, 1.0, -0.4, 0.3]));
    let eq = EquiangularModel::new(st.clone(), te.clone(), 0.2, f64::INFINITY).unwrap();
    let lm = LimitModel::new(st.clone(), te.clone(), 0.2)
        .with_noise(0.1, 12)
        .unwrap();
    for (m, a) in [(0.2, 0.7), (0.7, 1.9)] {
        assert!((eq.noise_variances(m, 0.0, a).0 - lm.noise_variance(m, a)).abs() < 1e-11);
    }
    for (m, p, a) in [(0.2, 0.1, 0.7), (0.6, 0.3, 1.5), (0.9, 0.0, 2.0)] {
        let (v, vc) = eq.noise_variances(m, p, a);
        let b: f64 = m * m + p;
        let ee: f64 = (0..4)
            .map(|k| {
                let (c, t) = (st.c(k), te.c(k));
                t * t - 2.0 * a * t * c * m.powi(k as i32) + a * a * c * c * b.powi(k as i32)
            })
            .sum();
        let want = 2.0 * 0.25 * (1.0 - m * m - p) * ee;
        assert!(
            (v - vc - want).abs() < 1e-11,
            "V − V_c = {} vs {want}",
            v - vc
        );
    }
}

#[test]
fn one_sgd_step_drift_matches_the_ito_noise_terms() {
    // From an equiangular state, the mean change of (m, p) over many independent online-SGD
    // steps minus the population-GD step of the same state is the Itô drift of the noise,
    // η λ (−½ a² m V, a² (V_c − pV)), λ = ηd/B, with the exact finite-N variances (shared
    // samples: V_c is the variance of the neuron-averaged kick), up to O(1/d) and O(η) relative.
    let (n, d, b, eta) = (4usize, 400usize, 20usize, 0.01);
    let (m, a, s): (f64, f64, f64) = (0.5, 1.2, 0.3);
    let base = SimConfig {
        width: n,
        dim: d,
        student: series(&[0.0, 1.0, 0.5]),
        teacher: series(&[0.0, 1.0, 0.2]),
        m0: m,
        a0: a,
        lr: eta,
        eps: 0.5,
        gamma: 1.0,
        batch: BatchMode::Online { batch: b },
        spherical: true,
        orthogonal_init: false,
    };
    // w_j = m e0 + sqrt(1−m²)(√s e1 + √(1−s) e_{2+j}).
    let mut w = vec![0.0; n * d];
    for j in 0..n {
        w[j * d] = m;
        w[j * d + 1] = (1.0 - m * m).sqrt() * s.sqrt();
        w[j * d + 2 + j] = (1.0 - m * m).sqrt() * (1.0 - s).sqrt();
    }
    let state = |cfg: &SimConfig, w: &[f64]| equiangular_state(cfg, w);
    let (_, p0) = state(&base, &w);
    let mut pop = Simulator::new(
        SimConfig {
            batch: BatchMode::Population,
            ..base.clone()
        },
        1,
    )
    .unwrap();
    pop.w = w.clone();
    pop.a = vec![a; n];
    pop.step(Par::Seq);
    let (m_pop, p_pop) = state(&base, &pop.w);
    let mut sim = Simulator::new(base.clone(), 2).unwrap();
    let reps = 20_000;
    let (mut dm, mut dp, mut dm2, mut dp2) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..reps {
        sim.w = w.clone();
        sim.a = vec![a; n];
        sim.step(Par::Seq);
        let (m1, p1) = state(&base, &sim.w);
        dm += m1 - m_pop;
        dp += p1 - p_pop;
        dm2 += (m1 - m_pop).powi(2);
        dp2 += (p1 - p_pop).powi(2);
    }
    let r = reps as f64;
    let (dm, dp) = (dm / r, dp / r);
    let (se_m, se_p) = (
        ((dm2 / r - dm * dm) / r).sqrt(),
        ((dp2 / r - dp * dp) / r).sqrt(),
    );
    // Exact finite-N variances by Monte Carlo over the 2 + N relevant coordinates of x:
    // V_N = E[e² σ'(u_1)²], V_cN = E[e² (mean_j σ'(u_j))²], e = f(x) − y.
    let mut rng = stream(5, "variances");
    let (mut v, mut vc) = (0.0, 0.0);
    let mc = 200_000;
    let mut xs = vec![0.0; 2 + n];
    for _ in 0..mc {
        xs.iter_mut().for_each(|x| *x = normal(&mut rng));
        let (mut f, mut sbar, mut d0) = (0.0, 0.0, 0.0);
        for j in 0..n {
            let u = m * xs[0]
                + (1.0 - m * m).sqrt() * (s.sqrt() * xs[1] + (1.0 - s).sqrt() * xs[2 + j]);
            let (val, der) = base.student.value_and_derivative(u);
            f += a * val / n as f64;
            sbar += der / n as f64;
            if j == 0 {
                d0 = der;
            }
        }
        let e2 = (f - base.teacher.value(xs[0])).powi(2);
        v += e2 * d0 * d0 / mc as f64;
        vc += e2 * sbar * sbar / mc as f64;
    }
    let lambda = eta * d as f64 / b as f64;
    let want_m = -eta * 0.5 * lambda * a * a * m * v;
    let want_p = eta * lambda * a * a * (vc - p0 * v);
    assert!(
        (dm - want_m).abs() < 4.0 * se_m + 0.05 * want_m.abs(),
        "Δm {dm} ± {se_m} vs {want_m}"
    );
    assert!(
        (dp - want_p).abs() < 4.0 * se_p + 0.05 * want_p.abs(),
        "Δp {dp} ± {se_p} vs {want_p}"
    );
    // The signals are resolved (so the check can fail): ≥ 10 standard errors.
    assert!(want_m.abs() > 10.0 * se_m && want_p.abs() > 10.0 * se_p);
}

#[test]
fn row_evaluator_is_bitwise_identical_to_the_series() {
    // The vectorised row evaluation of the SGD loop must reproduce σ, σ' bit for bit.
    let mut r = stream(11, "row");
    for c in [
        vec![0.0, 1.0, 0.5],
        vec![0.3, -1.0, 0.5, 0.25, -0.1, 0.05],
        vec![0.7],
    ] {
        let s = series(&c);
        let u: Vec<f64> = (0..37).map(|_| 2.0 * normal(&mut r)).collect();
        let mut ev = crate::experiments::unlearning::simulator::RowEvaluator::new(&s, 37);
        let (mut v, mut d) = (vec![0.0; 37], vec![0.0; 37]);
        ev.eval(&u, &mut v, &mut d);
        for j in 0..37 {
            let (v0, d0) = s.value_and_derivative(u[j]);
            assert_eq!(v[j].to_bits(), v0.to_bits(), "σ at {}", u[j]);
            assert_eq!(d[j].to_bits(), d0.to_bits(), "σ' at {}", u[j]);
        }
    }
}

#[test]
fn window_spread_covers_unmodelled_corrections_and_bootstrap_matches_normal_theory() {
    use super::fit::{bootstrap_ci, windowed_exponent};
    let t: Vec<f64> = (0..=120)
        .map(|i| 1e2 * 1e5f64.powf(i as f64 / 120.0))
        .collect();
    // Corrections exactly of the fitted form: every window recovers β, spread ≈ 0.
    let exact: Vec<f64> = t
        .iter()
        .map(|t| 2.0 * t.powf(0.25) * (0.3 * t.powf(-0.25) + 0.1 * t.powf(-0.5)).exp())
        .collect();
    let w = windowed_exponent(&t, &exact, 1e2, 1e7, 10.0, 5, &[0.25, 0.5]).unwrap();
    assert!((w.exponent - 0.25).abs() < 1e-9 && w.spread < 1e-9, "{w:?}");
    // An unmodelled correction t^{−3/4}: the estimate is biased, and the window spread (not
    // the regression error) bounds the bias.
    let biased: Vec<f64> = exact
        .iter()
        .zip(&t)
        .map(|(y, t)| y * (1.0 + 2.0 * t.powf(-0.75)))
        .collect();
    let w = windowed_exponent(&t, &biased, 1e2, 1e7, 10.0, 5, &[0.25, 0.5]).unwrap();
    let bias = (w.exponent - 0.25).abs();
    assert!(bias > 1e-7, "the unmodelled term must bias the fit: {w:?}");
    assert!(
        bias <= w.spread,
        "spread {} must cover the bias {bias}",
        w.spread
    );
    // Bootstrap percentile interval of a mean of 40 N(0,1) replicates ≈ ±1.96/√40.
    let mut r = stream(21, "boot");
    let xs: Vec<f64> = (0..40).map(|_| normal(&mut r)).collect();
    let (full, lo, hi) = bootstrap_ci(40, 4000, &mut r, |idx| {
        Ok(idx.iter().map(|&i| xs[i]).sum::<f64>() / idx.len() as f64)
    })
    .unwrap();
    let sd = {
        let mu = xs.iter().sum::<f64>() / 40.0;
        (xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / 39.0).sqrt()
    };
    let half = 1.96 * sd / 40f64.sqrt();
    assert!(lo < full && full < hi);
    assert!(
        ((hi - lo) / 2.0 / half - 1.0).abs() < 0.2,
        "{lo} {hi} vs ±{half}"
    );
}
