//! Tests of the exact 1-D solution against the engine's own gradient flow (adaptive
//! DOPRI5 on `TwoLayer`), edge cases, symmetries and the measurement helpers.

use super::measure::{consecutive_alignments, empirical_ntk, gram_alignment, layer_norms};
use super::phase::sample_init_stats;
use super::*;
use crate::data::Dataset;
use crate::linalg::view;
use crate::rng::{normal_vec, stream};
use faer::Mat;
use proptest::prelude::*;

fn dataset(x: &[f64], y: &[f64]) -> Dataset {
    Dataset::new(
        Mat::from_fn(x.len(), 1, |i, _| x[i]),
        Mat::from_fn(y.len(), 1, |i, _| y[i]),
    )
    .unwrap()
}

/// Data with E[x²] = s and slope k exactly (plus noise orthogonal to x).
fn data_with(s: f64, k: f64) -> Dataset {
    // x = √s·(1, −1, 1, −1)·…, noise ⟂ x
    let x = [s.sqrt(), -s.sqrt(), s.sqrt(), -s.sqrt()];
    let noise = [0.3, 0.3, -0.3, -0.3];
    let y: Vec<f64> = x.iter().zip(noise).map(|(a, e)| k * a + e).collect();
    dataset(&x, &y)
}

struct Compare {
    max_err_beta: f64,
    max_err_ntk: f64,
    max_err_vec: f64,
}

/// Integrate the engine and compare β, K (empirical NTK at x = 1) and the vectors.
fn compare_with_engine(
    hyper: Hyper1d,
    data: &Dataset,
    u0: &[f64],
    w0: &[f64],
    times: &[f64],
    rtol: f64,
) -> Compare {
    let mom = Moments1d::from_dataset(data).unwrap();
    let sol = ExactLinear1d::from_vectors(hyper, mom, u0, w0).unwrap();
    let model = two_layer_model(u0.len(), hyper.gamma, hyper.lr_u, hyper.lr_w);
    let scale = u0.iter().chain(w0).fold(0.0f64, |m, v| m.max(v.abs()));
    let atol = rtol * 1e-3 * scale.max(1e-300);
    let ys = integrate_engine(&model, data, &pack(u0, w0), times, rtol, atol).unwrap();
    let one = Mat::from_fn(1, 1, |_, _| 1.0);
    let mut c = Compare {
        max_err_beta: 0.0,
        max_err_ntk: 0.0,
        max_err_vec: 0.0,
    };
    for (&t, y) in times.iter().zip(&ys) {
        let st = sol.at(t);
        let (u, w) = unpack(y);
        let beta = hyper.gamma * u.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        let k = empirical_ntk(&model, y, one.as_ref())[(0, 0)];
        let eb = (beta - st.beta).abs() / st.beta.hypot(sol.omega());
        let ek = (k - st.ntk).abs() / st.ntk;
        let (ut, wt) = sol.vectors_at(t).unwrap();
        let nrm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
        let du: Vec<f64> = u.iter().zip(&ut).map(|(a, b)| a - b).collect();
        let dw: Vec<f64> = w.iter().zip(&wt).map(|(a, b)| a - b).collect();
        let ev = (nrm(&du) / nrm(&ut).max(f64::MIN_POSITIVE))
            .max(nrm(&dw) / nrm(&wt).max(f64::MIN_POSITIVE));
        assert!(
            eb.is_finite() || (beta == st.beta),
            "non-finite β error at t = {t}: {beta} vs {}",
            st.beta
        );
        c.max_err_beta = c.max_err_beta.max(if eb.is_nan() { 0.0 } else { eb });
        c.max_err_ntk = c.max_err_ntk.max(if ek.is_nan() { 0.0 } else { ek });
        c.max_err_vec = c.max_err_vec.max(if ev.is_nan() { 0.0 } else { ev });
    }
    c
}

fn times_for(sol_scale: f64, horizon: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| horizon * sol_scale * i as f64 / n as f64)
        .collect()
}

fn horizon_times(hyper: Hyper1d, data: &Dataset, u0: &[f64], w0: &[f64], horizon: f64) -> Vec<f64> {
    let sol =
        ExactLinear1d::from_vectors(hyper, Moments1d::from_dataset(data).unwrap(), u0, w0).unwrap();
    times_for(sol.time_scale(), horizon, 12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// The closed form against the engine's adaptive gradient flow, parameters drawn over
    /// many decades: relative error ≤ 1e-8 on β (relative to its scale √(β² + ω²) =
    /// |γ||u||w|, since β itself may cross zero) and on K.
    #[test]
    fn closed_form_matches_engine_gradient_flow(
        seed in any::<u64>(),
        d in 1usize..24,
        lg in -1.5f64..1.5, neg_gamma in any::<bool>(),
        leu in -1.5f64..1.5, lew in -1.5f64..1.5,
        lsu in -2.0f64..1.0, lsw in -2.0f64..1.0,
        ls in -1.0f64..1.0,
        lk in -2.0f64..1.0, k_sign in 0usize..3,
        horizon in 0.5f64..8.0,
    ) {
        let gamma = if neg_gamma { -(10f64.powf(lg)) } else { 10f64.powf(lg) };
        let hyper = Hyper1d { gamma, lr_u: 10f64.powf(leu), lr_w: 10f64.powf(lew) };
        let k = match k_sign { 0 => 0.0, 1 => 10f64.powf(lk), _ => -(10f64.powf(lk)) };
        let data = data_with(10f64.powf(ls), k);
        let mut rng = stream(seed, "prop");
        let u0 = normal_vec(&mut rng, d, 10f64.powf(lsu));
        let w0 = normal_vec(&mut rng, d, 10f64.powf(lsw));
        let times = horizon_times(hyper, &data, &u0, &w0, horizon);
        let c = compare_with_engine(hyper, &data, &u0, &w0, &times, 1e-12);
        prop_assert!(c.max_err_beta <= 1e-8, "β error {:.3e}", c.max_err_beta);
        prop_assert!(c.max_err_ntk <= 1e-8, "K error {:.3e}", c.max_err_ntk);
        prop_assert!(c.max_err_vec <= 1e-7, "vector error {:.3e}", c.max_err_vec);
    }
}

fn check_case(hyper: Hyper1d, k: f64, u0: &[f64], w0: &[f64], horizon: f64) -> Compare {
    let data = data_with(1.3, k);
    let times = horizon_times(hyper, &data, u0, w0, horizon);
    let c = compare_with_engine(hyper, &data, u0, w0, &times, 1e-12);
    assert!(
        c.max_err_beta <= 1e-8 && c.max_err_ntk <= 1e-8 && c.max_err_vec <= 1e-7,
        "errors β {:.2e} K {:.2e} vec {:.2e}",
        c.max_err_beta,
        c.max_err_ntk,
        c.max_err_vec
    );
    c
}

const H1: Hyper1d = Hyper1d {
    gamma: 0.7,
    lr_u: 1.0,
    lr_w: 1.0,
};

#[test]
fn edge_a_zero_and_b_zero() {
    // B = 0: u = w (η_u = η_w); β ≥ 0 forever. k > 0 reachable, k < 0 not (β → 0⁺).
    let u = [0.3, -0.2, 0.5];
    check_case(H1, 1.5, &u, &u, 6.0);
    check_case(H1, -1.5, &u, &u, 6.0);
    let mom = Moments1d {
        s: 1.0,
        k: -1.5,
        loss_floor: 0.0,
    };
    let sol = ExactLinear1d::from_vectors(H1, mom, &u, &u).unwrap();
    assert_eq!(sol.beta_inf(), 0.0);
    let late = sol.at(1e6);
    assert!(
        late.beta >= 0.0 && late.beta < 1e-12 && late.residual.is_finite(),
        "{late:?}"
    );
    assert!((late.residual - 1.5).abs() < 1e-12);
    // A = 0: u = −w; β ≤ 0.
    let m: Vec<f64> = u.iter().map(|v| -v).collect();
    check_case(H1, 1.5, &m, &u, 6.0);
    check_case(H1, -1.5, &m, &u, 6.0);
    let sol = ExactLinear1d::from_vectors(
        H1,
        Moments1d {
            s: 1.0,
            k: 1.5,
            loss_floor: 0.0,
        },
        &m,
        &u,
    )
    .unwrap();
    assert_eq!(sol.beta_inf(), 0.0);
    assert!(sol.at(f64::INFINITY).beta == 0.0);
}

#[test]
fn edge_k_zero_algebraic_decay() {
    // k = 0 and B = 0: D = 0, z = 1 + 2cλA t, β = λA/z exactly (algebraic, no exponential).
    let u = [0.4, 0.1];
    let sol = ExactLinear1d::from_vectors(
        H1,
        Moments1d {
            s: 1.3,
            k: 0.0,
            loss_floor: 0.0,
        },
        &u,
        &u,
    )
    .unwrap();
    assert_eq!(sol.rate(), 0.0);
    let (g, s) = (0.7, 1.3);
    let a: f64 = u.iter().map(|v| 4.0 * v * v).sum();
    let lam = g / 4.0;
    let c = g * s;
    for t in [0.0, 0.1, 1.0, 10.0, 1e3, 1e8] {
        let want = lam * a / (1.0 + 2.0 * c * lam * a * t);
        let got = sol.at(t).beta;
        assert!(
            (got - want).abs() <= 1e-14 * want,
            "t = {t}: {got} vs {want}"
        );
    }
    check_case(H1, 0.0, &u, &u, 20.0);
    // k = 0 generic: converges to 0 exponentially.
    check_case(H1, 0.0, &[0.4, -0.3, 0.2], &[0.1, 0.5, -0.6], 6.0);
}

#[test]
fn edge_z_plus_one_is_stationary() {
    // β₀ = k: z ≡ 1, nothing moves.
    let (u, w) = ([0.4, -0.3, 0.2], [0.1, 0.5, -0.6]);
    let beta0 = 0.7 * (0.04 - 0.15 - 0.12);
    let sol = ExactLinear1d::from_vectors(
        H1,
        Moments1d {
            s: 2.0,
            k: beta0,
            loss_floor: 0.1,
        },
        &u,
        &w,
    )
    .unwrap();
    for t in [0.0, 1.0, 1e3, f64::INFINITY] {
        let st = sol.at(t);
        assert!((st.beta - beta0).abs() <= 1e-15 * beta0.abs(), "{st:?}");
        assert_eq!(st.residual, 0.0);
        assert!(st.log_z.abs() < 1e-15);
    }
    let (ut, wt) = sol.vectors_at(5.0).unwrap();
    for i in 0..3 {
        assert!((ut[i] - u[i]).abs() < 1e-15 && (wt[i] - w[i]).abs() < 1e-15);
    }
    assert_eq!(sol.order_parameters().ntk_rel_change, 0.0);
}

#[test]
fn edge_negative_k_unequal_rates_negative_gamma() {
    let h = Hyper1d {
        gamma: -2.0,
        lr_u: 1e-2,
        lr_w: 30.0,
    };
    check_case(
        h,
        -0.8,
        &[0.2, 0.05, -0.3, 0.1],
        &[-0.1, 0.4, 0.2, 0.3],
        8.0,
    );
    let h = Hyper1d {
        gamma: 0.05,
        lr_u: 300.0,
        lr_w: 0.02,
    };
    check_case(h, 2.0, &[1e-3, -2e-3], &[3e-3, 1e-3], 8.0);
}

#[test]
fn gamma_zero_and_zero_init_are_frozen() {
    let h = Hyper1d {
        gamma: 0.0,
        lr_u: 1.0,
        lr_w: 1.0,
    };
    let sol = ExactLinear1d::from_vectors(
        h,
        Moments1d {
            s: 1.0,
            k: 1.0,
            loss_floor: 0.0,
        },
        &[0.3, 0.4],
        &[0.1, 0.2],
    )
    .unwrap();
    let st = sol.at(10.0);
    assert_eq!(st.beta, 0.0);
    assert_eq!(st.residual, -1.0);
    assert!((st.norm_u - 0.5).abs() < 1e-15);
    let sol = ExactLinear1d::from_vectors(
        H1,
        Moments1d {
            s: 1.0,
            k: 1.0,
            loss_floor: 0.0,
        },
        &[0.0; 3],
        &[0.0; 3],
    )
    .unwrap();
    for t in [0.0, 1.0, f64::INFINITY] {
        let st = sol.at(t);
        assert_eq!(
            (st.beta, st.residual, st.ntk, st.norm_u, st.norm_w),
            (0.0, -1.0, 0.0, 0.0, 0.0),
            "t = {t}"
        );
    }
}

#[test]
fn huge_and_tiny_scales_by_exact_symmetry() {
    // (u, w, γ, η) → (a u, a w, γ/a², η a²) leaves β(t) unchanged; (γ, u) → (−γ, −u) too.
    let (u, w) = (vec![0.3, -0.2, 0.5, 0.1], vec![0.2, 0.4, -0.1, 0.3]);
    let m = Moments1d {
        s: 1.1,
        k: 0.9,
        loss_floor: 0.0,
    };
    let h = Hyper1d {
        gamma: 1.3,
        lr_u: 0.5,
        lr_w: 2.0,
    };
    let base = ExactLinear1d::from_vectors(h, m, &u, &w).unwrap();
    for a in [1e-120f64, 1e-30, 1e-3, 1e4, 1e60] {
        let ua: Vec<f64> = u.iter().map(|v| v * a).collect();
        let wa: Vec<f64> = w.iter().map(|v| v * a).collect();
        let ha = Hyper1d {
            gamma: h.gamma / (a * a),
            lr_u: h.lr_u * a * a,
            lr_w: h.lr_w * a * a,
        };
        let sa = ExactLinear1d::from_vectors(ha, m, &ua, &wa).unwrap();
        for t in [0.0, 0.3, 2.0, 50.0, f64::INFINITY] {
            let (b0, b1) = (base.at(t), sa.at(t));
            assert!(
                (b0.beta - b1.beta).abs() <= 1e-12 * b0.beta.abs(),
                "a = {a:e}, t = {t}: {} vs {}",
                b0.beta,
                b1.beta
            );
            assert!(
                (b0.cos_angle - b1.cos_angle).abs() <= 1e-12,
                "a = {a:e} t = {t}: {b0:?} {b1:?}"
            );
            assert!(
                (b1.norm_u / (a * b0.norm_u) - 1.0).abs() <= 1e-12,
                "a = {a:e}"
            );
        }
    }
    let um: Vec<f64> = u.iter().map(|v| -v).collect();
    let sn = ExactLinear1d::from_vectors(
        Hyper1d {
            gamma: -h.gamma,
            ..h
        },
        m,
        &um,
        &w,
    )
    .unwrap();
    for t in [0.1, 1.0, 10.0] {
        let (b0, b1) = (base.at(t), sn.at(t));
        assert!((b0.beta - b1.beta).abs() <= 1e-14 * b0.beta.abs());
        assert!(
            (b0.cos_angle + b1.cos_angle).abs() <= 1e-14,
            "cos∠(−u, w) = −cos∠(u, w)"
        );
        let (v0, v1) = (base.vectors_at(t).unwrap(), sn.vectors_at(t).unwrap());
        assert!(v0
            .0
            .iter()
            .zip(&v1.0)
            .all(|(a, b)| (a + b).abs() <= 1e-14 * a.abs().max(1e-300)));
    }
    // tiny init: β₀ ~ 1e-200, still converges to k with finite values everywhere.
    let tiny = ExactLinear1d::from_vectors(h, m, &[1e-100, 2e-100], &[3e-100, -1e-100]).unwrap();
    let mut last = 0.0;
    for lt in (0..=60).map(|i| i as f64 * 0.5) {
        let st = tiny.at(10f64.powf(lt) * 1e-3);
        assert!(
            st.beta.is_finite()
                && st.ntk.is_finite()
                && st.norm_u.is_finite()
                && st.cos_angle.is_finite(),
            "{st:?}"
        );
        last = st.beta;
    }
    assert!(
        (last - 0.9).abs() < 1e-12,
        "tiny init converges to k: {last}"
    );
}

#[test]
fn huge_init_and_imbalanced_rates_against_engine() {
    // large init, k small: disalignment regime; and extreme rate ratio 1e6.
    check_case(
        Hyper1d {
            gamma: 1.0,
            lr_u: 1.0,
            lr_w: 1.0,
        },
        0.1,
        &[30.0, 20.0, -5.0],
        &[25.0, 15.0, 4.0],
        6.0,
    );
    check_case(
        Hyper1d {
            gamma: 1.0,
            lr_u: 1e3,
            lr_w: 1e-3,
        },
        1.0,
        &[0.3, 0.1, -0.2],
        &[0.2, -0.4, 0.1],
        6.0,
    );
}

#[test]
fn closed_form_identities() {
    let (u, w) = ([0.3, -0.2, 0.5, 0.1], [0.2, 0.4, -0.1, 0.3]);
    let m = Moments1d {
        s: 0.8,
        k: -1.2,
        loss_floor: 0.05,
    };
    let h = Hyper1d {
        gamma: 1.7,
        lr_u: 0.3,
        lr_w: 2.5,
    };
    let sol = ExactLinear1d::from_vectors(h, m, &u, &w).unwrap();
    for t in [0.0, 0.05, 0.5, 3.0, 30.0] {
        let st = sol.at(t);
        let (ut, wt) = sol.vectors_at(t).unwrap();
        let d = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (nu, nw, uw) = (d(&ut, &ut).sqrt(), d(&wt, &wt).sqrt(), d(&ut, &wt));
        assert!((h.gamma * uw - st.beta).abs() < 1e-13, "β from vectors");
        assert!(
            (nu - st.norm_u).abs() < 1e-13 * nu && (nw - st.norm_w).abs() < 1e-13 * nw,
            "norms"
        );
        assert!((uw / (nu * nw) - st.cos_angle).abs() < 1e-13, "cos");
        let k = h.gamma.powi(2) * (h.lr_u * nw * nw + h.lr_w * nu * nu);
        assert!((k - st.ntk).abs() < 1e-13 * k, "K");
        // conserved C and wedge
        assert!((h.lr_w * nu * nu - h.lr_u * nw * nw - sol.imbalance()).abs() < 1e-13);
        assert!((super::solution::wedge_norm(&ut, &wt) * h.gamma - sol.omega()).abs() < 1e-13);
        assert!((st.loss - (0.5 * m.s * (st.beta - m.k).powi(2) + m.loss_floor)).abs() < 1e-14);
    }
    // exact Δ formula vs the state at ∞
    let op = sol.order_parameters();
    let want = sol.at(f64::INFINITY).ntk / sol.at(0.0).ntk - 1.0;
    assert!(
        (op.ntk_rel_change - want).abs() < 1e-14,
        "{} vs {want}",
        op.ntk_rel_change
    );
    let kbar = op.kbar;
    let exact = (1.0 + (m.k * m.k - op.beta0 * op.beta0) / (kbar * kbar)).sqrt() - 1.0;
    assert!((op.ntk_rel_change - exact).abs() < 1e-14);
    // limit equals a very late time
    let (a, b) = (sol.at(1e5), sol.at(f64::INFINITY));
    assert!((a.beta - b.beta).abs() < 1e-15 && (a.log_z - b.log_z).abs() < 1e-12);
}

#[test]
fn moments_and_errors() {
    let m = Moments1d::from_samples(&[1.0, 2.0, -1.0], &[2.0, 3.0, -2.0]).unwrap();
    assert!((m.s - 2.0).abs() < 1e-15);
    assert!(
        (m.k - 10.0 / 6.0 / 2.0 * 1.2).abs() < 1e-12
            || (m.k - (2.0 + 6.0 + 2.0) / 3.0 / 2.0).abs() < 1e-15
    );
    let floor: f64 = [(1.0, 2.0), (2.0, 3.0), (-1.0, -2.0)]
        .iter()
        .map(|(x, y)| (y - m.k * x) * (y - m.k * x))
        .sum::<f64>()
        / 6.0;
    assert!((m.loss_floor - floor).abs() < 1e-15);
    assert!(Moments1d::from_samples(&[0.0, 0.0], &[1.0, 2.0]).is_err());
    assert!(Moments1d::from_samples(&[], &[]).is_err());
    let e = ExactLinear1d::from_vectors(
        Hyper1d {
            gamma: 1.0,
            lr_u: 0.0,
            lr_w: 1.0,
        },
        m,
        &[1.0],
        &[1.0],
    )
    .unwrap_err();
    assert!(e.to_string().contains("model.lr_u"), "{e}");
    assert!(ExactLinear1d::from_vectors(H1, m, &[1.0], &[1.0, 2.0]).is_err());
}

#[test]
fn from_stats_matches_from_vectors() {
    let (u, w) = ([0.3, -0.2, 0.5, 0.1], [0.2, 0.4, -0.1, 0.3]);
    let m = Moments1d {
        s: 0.8,
        k: 1.2,
        loss_floor: 0.0,
    };
    let h = Hyper1d {
        gamma: -1.7,
        lr_u: 0.3,
        lr_w: 2.5,
    };
    let d = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let a = ExactLinear1d::from_vectors(h, m, &u, &w).unwrap();
    let b = ExactLinear1d::from_stats(h, m, d(&u, &u), d(&w, &w), d(&u, &w)).unwrap();
    for t in [0.0, 0.3, 3.0, f64::INFINITY] {
        let (x, y) = (a.at(t), b.at(t));
        assert!(
            (x.beta - y.beta).abs() < 1e-13
                && (x.ntk - y.ntk).abs() < 1e-13 * x.ntk
                && (x.cos_angle - y.cos_angle).abs() < 1e-12,
            "t = {t}: {x:?} {y:?}"
        );
    }
}

#[test]
fn init_stats_sampler_has_the_right_distribution() {
    // E|u|² = dσ_u², E|w|² = dσ_w², E(u·w) = 0, E(u·w)² = dσ_u²σ_w², Var|u|² = 2dσ_u⁴
    let (d, su, sw, n) = (7usize, 0.5, 2.0, 40_000);
    let mut rng = stream(3, "stats");
    let (mut m1, mut m2, mut m3, mut m4, mut v1) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for _ in 0..n {
        let (a, b, c) = sample_init_stats(&mut rng, d, su, sw);
        m1 += a;
        m2 += b;
        m3 += c;
        m4 += c * c;
        v1 += a * a;
    }
    let nf = n as f64;
    let (m1, m2, m3, m4) = (m1 / nf, m2 / nf, m3 / nf, m4 / nf);
    let var1 = v1 / nf - m1 * m1;
    let df = d as f64;
    let tol = |sd: f64| 5.0 * sd / nf.sqrt();
    assert!(
        (m1 - df * su * su).abs() < tol((2.0 * df).sqrt() * su * su),
        "{m1}"
    );
    assert!(
        (m2 - df * sw * sw).abs() < tol((2.0 * df).sqrt() * sw * sw),
        "{m2}"
    );
    assert!(m3.abs() < tol(df.sqrt() * su * sw), "{m3}");
    // E(u·w)⁴ = 3d(d+2)σ⁴… ⇒ sd of (u·w)² ≈ √(3d(d+2) − d²) σ_u²σ_w²
    assert!(
        (m4 - df * su * su * sw * sw).abs()
            < tol((3.0 * df * (df + 2.0) - df * df).sqrt() * su * su * sw * sw),
        "{m4}"
    );
    assert!(
        (var1 - 2.0 * df * su.powi(4)).abs() < 0.1 * 2.0 * df * su.powi(4),
        "{var1}"
    );
}

#[test]
fn wedge_is_accurate_for_nearly_parallel_vectors() {
    let a = [1.0, 2.0, 3.0];
    let b = [1.0, 2.0, 3.0 + 1e-9];
    // exact: |a ∧ b| = 1e-9 · |a × e3|... cross product a × b = (2·(3+ε) − 3·2, 3 − (3+ε), 0) = (2ε, −ε, 0)
    let want = 1e-9 * 5f64.sqrt();
    let got = super::solution::wedge_norm(&a, &b);
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
}

#[test]
fn measurements_on_the_1d_model_reduce_to_the_formulas() {
    let (u, w) = ([0.3, -0.2, 0.5], [0.2, 0.4, -0.1]);
    let h = Hyper1d {
        gamma: 1.3,
        lr_u: 0.4,
        lr_w: 2.0,
    };
    let model = two_layer_model(3, h.gamma, h.lr_u, h.lr_w);
    let p = pack(&u, &w);
    let sol = ExactLinear1d::from_vectors(
        h,
        Moments1d {
            s: 1.0,
            k: 1.0,
            loss_floor: 0.0,
        },
        &u,
        &w,
    )
    .unwrap();
    let st = sol.at(0.0);
    let a = consecutive_alignments(&model, &p);
    assert_eq!(a.len(), 1);
    assert!((a[0] - st.cos_angle.powi(2)).abs() < 1e-14);
    let n = layer_norms(&model, &p);
    assert!((n[0] - st.norm_w).abs() < 1e-14 && (n[1] - st.norm_u).abs() < 1e-14);
    let x = Mat::from_fn(2, 1, |i, _| [1.0, -2.0][i]);
    let k = empirical_ntk(&model, &p, x.as_ref());
    assert!((k[(0, 1)] + 2.0 * st.ntk).abs() < 1e-13 && (k[(1, 1)] - 4.0 * st.ntk).abs() < 1e-13);
}

#[test]
fn empirical_ntk_matches_central_finite_differences() {
    use crate::model::mlp::Mlp;
    use crate::model::{Activation, Model};
    let model = Mlp::new(
        vec![3, 4, 5, 2],
        Activation::Tanh,
        true,
        vec![1.0, 0.7, 0.5],
        vec![1.0, 2.0, 0.5],
    );
    let mut rng = stream(9, "fd");
    let p = normal_vec(&mut rng, model.num_params(), 0.6);
    let xd = normal_vec(&mut rng, 3 * 3, 1.0);
    let x = view(&xd, 3, 3);
    let theta = empirical_ntk(&model, &p, x);
    // J by central differences of the forward pass
    let h = 1e-6;
    let np = model.num_params();
    let mut r = vec![0.0; np];
    for b in model.blocks() {
        r[b.range()].fill(b.lr_mult);
    }
    let mut jac = vec![vec![[0.0; 2]; np]; 3];
    for q in 0..np {
        let mut pp = p.clone();
        pp[q] += h;
        let fp = model.predict(&pp, x);
        pp[q] -= 2.0 * h;
        let fm = model.predict(&pp, x);
        for i in 0..3 {
            for a in 0..2 {
                jac[i][q][a] = (fp[(i, a)] - fm[(i, a)]) / (2.0 * h);
            }
        }
    }
    for i in 0..3 {
        for j in 0..3 {
            let want: f64 = (0..np)
                .map(|q| r[q] * (jac[i][q][0] * jac[j][q][0] + jac[i][q][1] * jac[j][q][1]))
                .sum::<f64>()
                / 2.0;
            assert!(
                (theta[(i, j)] - want).abs() < 1e-7 * want.abs().max(1.0),
                "Θ[{i},{j}] = {} vs FD {want}",
                theta[(i, j)]
            );
        }
    }
}

#[test]
fn gram_alignment_bounds() {
    let a = Mat::from_fn(3, 2, |i, j| (i + 2 * j) as f64 - 1.5);
    let b = Mat::from_fn(4, 3, |i, j| ((i * j) % 3) as f64 - 0.7);
    let g = gram_alignment(a.as_ref(), b.as_ref());
    assert!(g > 0.0 && g <= 1.0);
    // W_{l+1} = W_lᵀ ⇒ perfectly aligned
    assert!((gram_alignment(a.as_ref(), a.transpose()) - 1.0).abs() < 1e-14);
    assert_eq!(
        gram_alignment(a.as_ref(), Mat::<f64>::zeros(2, 3).as_ref()),
        0.0
    );
}

#[test]
fn classifier_rules() {
    let th = Thresholds::default();
    let m = |dk: f64, a0: f64, a1: f64, n: f64| DynamicsMeasures {
        ntk_rel_change: dk,
        alignment_start: vec![a0],
        alignment_end: vec![a1],
        log_norm_ratios: vec![n, 0.0],
    };
    assert_eq!(
        classify(&m(0.05, 0.1, 0.9, 2.0), &th).mechanism,
        Mechanism::Kernel
    );
    assert_eq!(
        classify(&m(0.5, 0.1, 0.9, 2.0), &th).mechanism,
        Mechanism::Alignment
    );
    assert_eq!(
        classify(&m(0.5, 0.9, 0.1, -0.5), &th).mechanism,
        Mechanism::Disalignment
    );
    assert_eq!(
        classify(&m(0.5, 1.0, 1.0, 0.7), &th).mechanism,
        Mechanism::Rescaling
    );
    assert_eq!(
        classify(&m(0.5, 0.5, 0.52, 0.01), &th).mechanism,
        Mechanism::Unexplained
    );
    // the pair with the largest change decides
    let mm = DynamicsMeasures {
        ntk_rel_change: 1.0,
        alignment_start: vec![0.5, 0.8],
        alignment_end: vec![0.55, 0.3],
        log_norm_ratios: vec![],
    };
    assert_eq!(classify(&mm, &th).mechanism, Mechanism::Disalignment);
}

#[test]
fn prototypes_of_the_exact_model_are_classified() {
    use super::mechanism::classify_exact;
    let th = Thresholds::default();
    let m = Moments1d {
        s: 1.0,
        k: 1.0,
        loss_floor: 0.0,
    };
    let h = Hyper1d {
        gamma: 1.0,
        lr_u: 1.0,
        lr_w: 1.0,
    };
    let mut rng = stream(1, "proto");
    // small init: alignment
    let (u, w) = (
        normal_vec(&mut rng, 32, 1e-3),
        normal_vec(&mut rng, 32, 1e-3),
    );
    let sol = ExactLinear1d::from_vectors(h, m, &u, &w).unwrap();
    assert_eq!(
        classify_exact(&sol, f64::INFINITY, &th).mechanism,
        Mechanism::Alignment
    );
    // NTK scaling, wide: kernel
    let d = 4096;
    let (u, w) = (normal_vec(&mut rng, d, 1.0), normal_vec(&mut rng, d, 1.0));
    let hk = Hyper1d {
        gamma: 1.0 / (d as f64).sqrt(),
        ..h
    };
    let sol = ExactLinear1d::from_vectors(hk, m, &u, &w).unwrap();
    assert_eq!(
        classify_exact(&sol, f64::INFINITY, &th).mechanism,
        Mechanism::Kernel
    );
    // balanced aligned init: rescaling
    let u = normal_vec(&mut rng, 8, 0.1);
    let sol = ExactLinear1d::from_vectors(h, m, &u, &u).unwrap();
    assert_eq!(
        classify_exact(&sol, f64::INFINITY, &th).mechanism,
        Mechanism::Rescaling
    );
    // large correlated init, small target: disalignment
    let (u, w) = ([2.0, 1.0, -0.5, 0.3], [1.8, 1.2, -0.2, 0.6]);
    let sol = ExactLinear1d::from_vectors(h, Moments1d { k: 0.1, ..m }, &u, &w).unwrap();
    assert_eq!(
        classify_exact(&sol, f64::INFINITY, &th).mechanism,
        Mechanism::Disalignment
    );
}
