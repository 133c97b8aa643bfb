//! Tests of the ODE module against closed-form solutions. Run with `--nocapture` to see the
//! measured numbers; error bounds leave a margin of about 3–10× over them (release build,
//! x86-64), evaluation-count bounds about 1.5×.

use super::*;
use crate::{Error, Result};

// ---------------------------------------------------------------------------------------
// Test problems with closed-form solutions
// ---------------------------------------------------------------------------------------

/// `y' = A y` with `A = [[−a, w, 0], [−w, −a, 0], [0, 0, −b]]`: a decaying rotation and a
/// decaying mode. `exp(tA) = diag(e^{−at} R(wt), e^{−bt})`, `R(φ) = [[cos φ, sin φ],
/// [−sin φ, cos φ]]`.
#[derive(Clone, Copy)]
struct Linear3 {
    a: f64,
    w: f64,
    b: f64,
}

const LIN: Linear3 = Linear3 {
    a: 0.1,
    w: 2.0,
    b: 0.5,
};
const LIN_Y0: [f64; 3] = [1.0, 0.5, -2.0];

impl VectorField for Linear3 {
    fn dim(&self) -> usize {
        3
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        dy[0] = -self.a * y[0] + self.w * y[1];
        dy[1] = -self.w * y[0] - self.a * y[1];
        dy[2] = -self.b * y[2];
        Ok(())
    }
}

impl Linear3 {
    fn exact(&self, t: f64, y0: &[f64]) -> [f64; 3] {
        let e = (-self.a * t).exp();
        let (s, c) = (self.w * t).sin_cos();
        [
            e * (c * y0[0] + s * y0[1]),
            e * (-s * y0[0] + c * y0[1]),
            (-self.b * t).exp() * y0[2],
        ]
    }
}

/// `y' = −y + sin t`: `y(t) = (y0 + 1/2) e^{−t} + (sin t − cos t)/2` (non-autonomous).
fn forced_decay() -> impl VectorField {
    from_fn(1, |t, y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0] + t.sin();
        Ok(())
    })
}
fn forced_decay_exact(t: f64, y0: f64) -> f64 {
    (y0 + 0.5) * (-t).exp() + (t.sin() - t.cos()) / 2.0
}

/// Logistic `y' = r y (1 − y)`: `y(t) = 1 / (1 + (1/y0 − 1) e^{−rt})`.
fn logistic(r: f64) -> impl VectorField {
    from_fn(1, move |_t, y: &[f64], dy: &mut [f64]| {
        dy[0] = r * y[0] * (1.0 - y[0]);
        Ok(())
    })
}
fn logistic_exact(r: f64, t: f64, y0: f64) -> f64 {
    1.0 / (1.0 + (1.0 / y0 - 1.0) * (-r * t).exp())
}

/// Gradient flow on `L(a, b) = ½(ab − 1)²`: `a' = (1 − ab) b`, `b' = (1 − ab) a`.
fn two_layer_scalar_flow() -> impl VectorField {
    from_fn(2, |_t, th: &[f64], dth: &mut [f64]| {
        let r = 1.0 - th[0] * th[1];
        dth[0] = r * th[1];
        dth[1] = r * th[0];
        Ok(())
    })
}
/// For `a = b = x`: `x' = x(1 − x²)`, `x(t) = x0 e^t / sqrt(1 + x0²(e^{2t} − 1))`.
fn plateau_exact(t: f64, x0: f64) -> f64 {
    // Written with e^{−t} so it does not overflow for large t.
    let em = (-t).exp();
    x0 / (em * em + x0 * x0 * (1.0 - em * em)).sqrt()
}

/// Counts calls independently of the stepper's own statistics.
struct Counted<F> {
    inner: F,
    evals: u64,
}
impl<F: VectorField> VectorField for Counted<F> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        self.evals += 1;
        self.inner.eval(t, y, dy)
    }
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect();
    v[n - 1] = b;
    v
}

/// Least-squares slope of `log y` against `log x`.
fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let n = lx.len() as f64;
    let mx = lx.iter().sum::<f64>() / n;
    let my = ly.iter().sum::<f64>() / n;
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

fn sci(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.2e}")).collect();
    format!("[{}]", parts.join(", "))
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// A controller that accepts every step and never changes `dt` (after `init(.., Some(h))`):
/// constant-step Runge–Kutta.
fn constant_step(h: f64) -> PidController {
    PidController {
        dtmax: Some(h),
        ..PidController::new(1e30, 1e30)
    }
}

// ---------------------------------------------------------------------------------------
// Tableaux
// ---------------------------------------------------------------------------------------

/// The 17 order conditions up to order 5 (Hairer–Nørsett–Wanner I, Table II.2.2):
/// `(order, residual)` for weights `w`.
fn order_residuals(t: &Tableau, w: &[f64]) -> Vec<(u32, f64)> {
    let s = t.stages();
    let c = t.c;
    let amul = |v: &[f64]| -> Vec<f64> {
        (0..s)
            .map(|i| t.a[i].iter().zip(v).map(|(a, x)| a * x).sum())
            .collect()
    };
    let dot = |v: &[f64]| -> f64 { w.iter().zip(v).map(|(a, b)| a * b).sum() };
    let pw = |k: i32| -> Vec<f64> { c.iter().map(|x| x.powi(k)).collect() };
    let mul = |u: &[f64], v: &[f64]| -> Vec<f64> { u.iter().zip(v).map(|(a, b)| a * b).collect() };
    let ones = vec![1.0; s];
    let ac = amul(c);
    let ac2 = amul(&pw(2));
    let aac = amul(&ac);
    vec![
        (1, dot(&ones) - 1.0),
        (2, dot(c) - 1.0 / 2.0),
        (3, dot(&pw(2)) - 1.0 / 3.0),
        (3, dot(&ac) - 1.0 / 6.0),
        (4, dot(&pw(3)) - 1.0 / 4.0),
        (4, dot(&mul(c, &ac)) - 1.0 / 8.0),
        (4, dot(&ac2) - 1.0 / 12.0),
        (4, dot(&aac) - 1.0 / 24.0),
        (5, dot(&pw(4)) - 1.0 / 5.0),
        (5, dot(&mul(&pw(2), &ac)) - 1.0 / 10.0),
        (5, dot(&mul(c, &ac2)) - 1.0 / 15.0),
        (5, dot(&mul(c, &aac)) - 1.0 / 30.0),
        (5, dot(&mul(&ac, &ac)) - 1.0 / 20.0),
        (5, dot(&amul(&pw(3))) - 1.0 / 20.0),
        (5, dot(&amul(&mul(c, &ac))) - 1.0 / 40.0),
        (5, dot(&amul(&ac2)) - 1.0 / 60.0),
        (5, dot(&amul(&aac)) - 1.0 / 120.0),
    ]
}

#[test]
fn tableaux_satisfy_their_order_conditions() {
    for t in Tableau::ALL {
        let s = t.stages();
        // Row sums c_i = Σ_j a_ij.
        for i in 0..s {
            let row: f64 = t.a[i].iter().sum();
            assert!((row - t.c[i]).abs() < 1e-14, "{}: row {i}", t.name);
        }
        let bhat: Vec<f64> = t.b.iter().zip(t.b_err).map(|(b, e)| b - e).collect();
        for (p, r) in order_residuals(t, t.b) {
            if p <= t.order {
                assert!(
                    r.abs() < 1e-14,
                    "{}: b fails an order-{p} condition ({r:e})",
                    t.name
                );
            }
        }
        let mut embedded_exact_next = true;
        for (p, r) in order_residuals(t, &bhat) {
            if p < t.order {
                assert!(
                    r.abs() < 1e-14,
                    "{}: b̂ fails an order-{p} condition ({r:e})",
                    t.name
                );
            } else if p == t.order && r.abs() > 1e-6 {
                embedded_exact_next = false;
            }
        }
        // The embedded method has order exactly p − 1, so err = O(h^p) is a real estimate.
        assert!(!embedded_exact_next, "{}: b̂ is of order p", t.name);
        // The construction checks of RkStepper::new must pass.
        let _ = RkStepper::new(t, PidController::new(1e-6, 1e-9), 2);
    }
    assert_eq!(Tableau::from_name("DOPRI5"), Some(&DOPRI5));
    assert_eq!(Tableau::from_name("heun_euler"), Some(&HEUN_EULER));
    assert_eq!(Tableau::from_name("rk4"), None);
}

#[test]
#[should_panic(expected = "FSAL requires")]
fn malformed_tableau_is_rejected_at_construction() {
    static BAD: Tableau = Tableau {
        fsal: true,
        ..HEUN_EULER
    };
    let _ = RkStepper::new(&BAD, PidController::new(1e-6, 1e-9), 1);
}

// ---------------------------------------------------------------------------------------
// Accuracy against closed forms
// ---------------------------------------------------------------------------------------

#[test]
fn linear_system_matches_matrix_exponential_for_every_tableau() {
    // (tableau, rtol, bound on max |error| over 41 save times in [0, 10]).
    let cases: [(&'static Tableau, f64, f64); 4] = [
        (&DOPRI5, 1e-10, 1e-8),
        (&TSIT5, 1e-10, 1e-8),
        (&BOSH3, 1e-8, 1e-6),
        (&HEUN_EULER, 1e-6, 1e-4),
    ];
    let ts = linspace(0.0, 10.0, 41);
    for (tab, rtol, bound) in cases {
        let mut f = LIN;
        let sol = solve(
            &mut f,
            tab,
            PidController::new(rtol, rtol * 1e-2),
            0.0,
            10.0,
            &LIN_Y0,
            &ts,
            1_000_000,
        )
        .unwrap();
        assert_eq!(sol.ts, ts);
        let err = ts
            .iter()
            .zip(&sol.ys)
            .map(|(&t, y)| max_abs_diff(y, &LIN.exact(t, &LIN_Y0)))
            .fold(0.0, f64::max);
        eprintln!(
            "linear3 {:>10} rtol {rtol:.0e}: max err {err:.2e}, {} steps, {} evals",
            tab.name, sol.stats.num_steps, sol.stats.num_evals
        );
        assert!(err <= bound, "{}: error {err:e} > {bound:e}", tab.name);
        assert!(err > 0.0);
    }
}

#[test]
fn logistic_and_forced_decay_match_closed_forms_at_exact_save_times() {
    // Irregular save times, with repeats and both endpoints.
    let save = [0.0, 0.0, 0.3, 1.7, 1.7 + 1e-9, 2.0, 5.5, 5.5, 9.99, 10.0];
    for tab in [&DOPRI5, &TSIT5] {
        let r = 1.5;
        let y0 = 1e-2;
        let sol = solve(
            &mut logistic(r),
            tab,
            PidController::new(1e-10, 1e-12),
            0.0,
            10.0,
            &[y0],
            &save,
            100_000,
        )
        .unwrap();
        assert_eq!(sol.ts, save, "ts are the requested times, verbatim");
        assert_eq!(sol.ys.len(), save.len());
        assert_eq!(sol.ys[0], vec![y0], "t0 gives y0 exactly");
        let err_log = save
            .iter()
            .zip(&sol.ys)
            .map(|(&t, y)| (y[0] - logistic_exact(r, t, y0)).abs())
            .fold(0.0, f64::max);

        let y0 = 1.0;
        let sol = solve(
            &mut forced_decay(),
            tab,
            PidController::new(1e-10, 1e-12),
            0.0,
            10.0,
            &[y0],
            &save,
            100_000,
        )
        .unwrap();
        assert_eq!(sol.ts, save);
        let err_sin = save
            .iter()
            .zip(&sol.ys)
            .map(|(&t, y)| (y[0] - forced_decay_exact(t, y0)).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{:>6}: logistic max err {err_log:.2e}, forced decay max err {err_sin:.2e}",
            tab.name
        );
        assert!(err_log < 1e-8, "{} logistic: {err_log:e}", tab.name);
        assert!(err_sin < 1e-8, "{} forced decay: {err_sin:e}", tab.name);
    }
}

// ---------------------------------------------------------------------------------------
// Convergence order
// ---------------------------------------------------------------------------------------

/// Global error at `T = 4` of constant-step integration of the linear system.
fn fixed_step_error(tab: &'static Tableau, h: f64) -> f64 {
    let t_end = 4.0;
    let mut f = LIN;
    let mut st = RkStepper::new(tab, constant_step(h), 3);
    st.init(&mut f, 0.0, &LIN_Y0, Some(h)).unwrap();
    while st.t() < t_end {
        st.step(&mut f, t_end).unwrap();
    }
    let n = (t_end / h).round() as u64;
    assert_eq!(st.stats().num_accepted, n, "constant step {h}");
    assert_eq!(st.stats().num_rejected, 0);
    max_abs_diff(st.y(), &LIN.exact(t_end, &LIN_Y0))
}

#[test]
fn fixed_step_global_error_has_the_tableau_order() {
    for tab in Tableau::ALL {
        // Small enough for TSIT5 to be in its asymptotic regime (its slope is 5.4 on
        // [0.2, 0.025]: its error constants are tuned small, so higher terms show early).
        let hs = [0.1, 0.05, 0.025, 0.0125];
        let errs: Vec<f64> = hs.iter().map(|&h| fixed_step_error(tab, h)).collect();
        let slope = loglog_slope(&hs, &errs);
        eprintln!(
            "fixed step {:>10}: errors {}, slope {slope:.3}",
            tab.name,
            sci(&errs)
        );
        let p = f64::from(tab.order);
        assert!(
            (slope - p).abs() < 0.25,
            "{}: slope {slope} vs order {p}",
            tab.name
        );
    }
}

#[test]
fn adaptive_error_is_proportional_to_tolerance_and_work_scales_with_order() {
    // (tableau, rtols). Global error ∝ rtol (error-per-step control with local
    // extrapolation: h ∝ rtol^{1/p}, global error ∝ h^p), so evals ∝ rtol^{−1/p} and
    // error ∝ evals^{−p}.
    let cases: [(&'static Tableau, &[f64]); 4] = [
        (&DOPRI5, &[1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11]),
        (&TSIT5, &[1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11]),
        (&BOSH3, &[1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]),
        (&HEUN_EULER, &[1e-3, 1e-4, 1e-5, 1e-6, 1e-7]),
    ];
    for (tab, rtols) in cases {
        let mut errs = vec![];
        let mut evals = vec![];
        for &rtol in rtols {
            let mut f = LIN;
            let sol = solve(
                &mut f,
                tab,
                PidController::new(rtol, rtol * 1e-3),
                0.0,
                10.0,
                &LIN_Y0,
                &[10.0],
                10_000_000,
            )
            .unwrap();
            errs.push(max_abs_diff(&sol.ys[0], &LIN.exact(10.0, &LIN_Y0)));
            evals.push(sol.stats.num_evals as f64);
        }
        let s_tol = loglog_slope(rtols, &errs);
        let s_work = loglog_slope(&evals, &errs);
        eprintln!(
            "adaptive {:>10}: err/rtol slope {s_tol:.3}, err/evals slope {s_work:.3}; errors {}; evals {evals:?}",
            tab.name,
            sci(&errs)
        );
        let p = f64::from(tab.order);
        assert!(
            (s_tol - 1.0).abs() < 0.2,
            "{}: err vs rtol slope {s_tol}",
            tab.name
        );
        assert!(
            (s_work + p).abs() < 0.2 * p,
            "{}: err vs evals slope {s_work}, expected {}",
            tab.name,
            -p
        );
    }
}

// ---------------------------------------------------------------------------------------
// Dense output
// ---------------------------------------------------------------------------------------

/// Largest error of the dense output inside one step of size `h` from `(0, y0)` against the
/// exact local solution, over θ ∈ {0.1, 0.25, 0.5, 0.75, 0.9}.
fn one_step_dense_error(tab: &'static Tableau, h: f64) -> f64 {
    let mut f = LIN;
    let mut st = RkStepper::new(tab, constant_step(h), 3);
    st.init(&mut f, 0.0, &LIN_Y0, Some(h)).unwrap();
    let iv = st.step(&mut f, 10.0).unwrap();
    assert_eq!(iv, StepInterval { t0: 0.0, t1: h });
    let mut out = [0.0; 3];
    [0.1, 0.25, 0.5, 0.75, 0.9]
        .iter()
        .map(|th| {
            st.interpolate(th * h, &mut out);
            max_abs_diff(&out, &LIN.exact(th * h, &LIN_Y0))
        })
        .fold(0.0, f64::max)
}

#[test]
fn dense_output_local_error_has_the_expected_order() {
    // DOPRI5's and TSIT5's continuous extensions have order 4 (local error O(h^5)); cubic
    // Hermite has local error O(h^4), limited by y1 for HEUN_EULER (local error O(h^3)).
    static TSIT5_HERMITE: Tableau = Tableau {
        dense: DenseOutput::Hermite,
        ..TSIT5
    };
    let cases: [(&'static Tableau, f64); 5] = [
        (&DOPRI5, 5.0),
        (&TSIT5, 5.0),
        (&TSIT5_HERMITE, 4.0),
        (&BOSH3, 4.0),
        (&HEUN_EULER, 3.0),
    ];
    let hs = [0.2, 0.1, 0.05, 0.025];
    for (tab, expected) in cases {
        let errs: Vec<f64> = hs.iter().map(|&h| one_step_dense_error(tab, h)).collect();
        let slope = loglog_slope(&hs, &errs);
        eprintln!(
            "dense {:>10}: errors {}, slope {slope:.3}",
            tab.name,
            sci(&errs)
        );
        assert!(
            (slope - expected).abs() < 0.3,
            "{}: dense-output slope {slope}, expected {expected}",
            tab.name
        );
    }
    // Same stages, h = 0.1: Tsitouras' interpolant beats cubic Hermite by a wide margin.
    let own = one_step_dense_error(&TSIT5, 0.1);
    let hermite = one_step_dense_error(&TSIT5_HERMITE, 0.1);
    assert!(own < hermite / 10.0, "tsit5 {own:e} vs hermite {hermite:e}");
}

#[test]
fn polynomial_dense_weights_are_consistent() {
    // b_j(1) = b_j and Σ_j b_j(θ) = θ (exact for y' = 1).
    let DenseOutput::Polynomial(coef) = TSIT5.dense else {
        panic!("TSIT5 uses a polynomial interpolant")
    };
    let bj = |j: usize, th: f64| th * coef[j].iter().rev().fold(0.0, |a, &c| a * th + c);
    for (j, &b) in TSIT5.b.iter().enumerate() {
        assert!(
            (bj(j, 1.0) - b).abs() < 1e-14,
            "b_{j}(1) = {} vs {b}",
            bj(j, 1.0)
        );
    }
    for th in [0.1, 0.5, 0.9] {
        let sum: f64 = (0..TSIT5.stages()).map(|j| bj(j, th)).sum();
        assert!((sum - th).abs() < 1e-14);
    }
}

#[test]
fn dense_output_is_exact_for_polynomials_of_its_degree() {
    // y' = Σ_{j<q} (j+1) t^j  ⇒  y = Σ_{j≤q} t^j − 1 (+ y0): degree q, reproduced exactly
    // when q ≤ min(order of y1, order of the interpolant) (4 for DOPRI5, else ≤ 3).
    for tab in Tableau::ALL {
        let dense_order = if tab.dense == DenseOutput::Hermite {
            3
        } else {
            4
        };
        let q = tab.order.min(dense_order) as i32;
        let mut f = from_fn(1, move |t, _y: &[f64], dy: &mut [f64]| {
            dy[0] = (0..q).map(|j| f64::from(j + 1) * t.powi(j)).sum();
            Ok(())
        });
        let exact = |t: f64| (1..=q).map(|j| t.powi(j)).sum::<f64>();
        let h = 0.7;
        let mut st = RkStepper::new(tab, constant_step(h), 1);
        st.init(&mut f, 0.3, &[exact(0.3)], Some(h)).unwrap();
        st.step(&mut f, 10.0).unwrap();
        let mut out = [0.0];
        for th in [0.0, 0.2, 0.5, 0.8, 1.0] {
            let t = 0.3 + th * h;
            st.interpolate(t, &mut out);
            assert!(
                (out[0] - exact(t)).abs() < 1e-14,
                "{}: degree {q} at θ = {th}: {} vs {}",
                tab.name,
                out[0],
                exact(t)
            );
        }
    }
}

#[test]
fn interpolation_is_exact_at_step_endpoints() {
    let mut f = LIN;
    let mut st = RkStepper::new(&DOPRI5, PidController::new(1e-6, 1e-9), 3);
    st.init(&mut f, 0.0, &LIN_Y0, None).unwrap();
    st.step(&mut f, 10.0).unwrap();
    let y_prev = st.y().to_vec();
    let iv = st.step(&mut f, 10.0).unwrap();
    let mut out = [0.0; 3];
    st.interpolate(iv.t0, &mut out);
    assert_eq!(out.as_slice(), y_prev.as_slice());
    st.interpolate(iv.t1, &mut out);
    assert_eq!(out.as_slice(), st.y());
    assert_eq!(st.last_step(), Some(iv));
}

#[test]
#[should_panic(expected = "outside the last accepted step")]
fn interpolate_outside_the_last_step_panics() {
    let mut f = LIN;
    let mut st = RkStepper::new(&DOPRI5, PidController::new(1e-6, 1e-9), 3);
    st.init(&mut f, 0.0, &LIN_Y0, None).unwrap();
    let iv = st.step(&mut f, 10.0).unwrap();
    let mut out = [0.0; 3];
    st.interpolate(iv.t1 + 0.5 * (iv.t1 - iv.t0), &mut out);
}

#[test]
#[should_panic(expected = "no accepted step")]
fn interpolate_before_any_step_panics() {
    let mut f = LIN;
    let mut st = RkStepper::new(&DOPRI5, PidController::new(1e-6, 1e-9), 3);
    st.init(&mut f, 0.0, &LIN_Y0, None).unwrap();
    st.interpolate(0.0, &mut [0.0; 3]);
}

// ---------------------------------------------------------------------------------------
// Gradient-flow plateau
// ---------------------------------------------------------------------------------------

#[test]
fn gradient_flow_plateau_is_crossed_in_few_steps() {
    // L = ½(ab − 1)², a = b = 1e-8: the loss sits at ½ for t ≲ ln(1e8) ≈ 18.4, then drops
    // to 0 in a few time units. Gradient descent with learning rate 1e-2 needs 4000
    // gradient evaluations to reach t = 40.
    let x0 = 1e-8;
    let t_end = 40.0;
    let ts = linspace(0.0, t_end, 161);
    for (tab, rtol, max_evals, max_rel_err) in [
        (&DOPRI5, 1e-6, 1_000, 2e-5),
        (&DOPRI5, 1e-9, 3_000, 1e-7),
        (&TSIT5, 1e-6, 1_000, 2e-5),
        (&BOSH3, 1e-6, 3_000, 1e-4),
    ] {
        let mut f = Counted {
            inner: two_layer_scalar_flow(),
            evals: 0,
        };
        // atol far below the initial scale: the tiny phase is controlled relatively.
        let ctrl = PidController::new(rtol, 1e-20);
        let sol = solve(&mut f, tab, ctrl, 0.0, t_end, &[x0, x0], &ts, 100_000).unwrap();
        let rel = ts
            .iter()
            .zip(&sol.ys)
            .map(|(&t, y)| {
                let x = plateau_exact(t, x0);
                ((y[0] - x) / x).abs().max(((y[1] - x) / x).abs())
            })
            .fold(0.0, f64::max);
        let st = sol.stats;
        eprintln!(
            "plateau {:>6} rtol {rtol:.0e}: {} accepted + {} rejected steps, {} evals, max rel err {rel:.2e}; x(40) = {:.15}",
            tab.name,
            st.num_accepted,
            st.num_rejected,
            st.num_evals,
            sol.ys.last().unwrap()[0]
        );
        assert_eq!(f.evals, st.num_evals);
        assert!(
            st.num_evals <= max_evals,
            "{}: {} evals",
            tab.name,
            st.num_evals
        );
        assert!(rel <= max_rel_err, "{}: relative error {rel:e}", tab.name);
        // The plateau was actually crossed: x(40) = 1 to the tolerance.
        assert!((sol.ys.last().unwrap()[0] - 1.0).abs() < 10.0 * rtol);
        // Symmetry a = b is preserved exactly (the field is symmetric).
        assert!(sol.ys.iter().all(|y| y[0] == y[1]));
    }
}

// ---------------------------------------------------------------------------------------
// Statistics, stepping contract
// ---------------------------------------------------------------------------------------

#[test]
fn stats_are_consistent_and_count_every_evaluation() {
    for tab in Tableau::ALL {
        let s = tab.stages() as u64;
        for dt0 in [None, Some(5.0)] {
            let mut f = Counted {
                inner: LIN,
                evals: 0,
            };
            let mut st = RkStepper::new(tab, PidController::new(1e-7, 1e-9), 3);
            st.init(&mut f, 0.0, &LIN_Y0, dt0).unwrap();
            while st.t() < 3.0 {
                st.step(&mut f, 3.0).unwrap();
            }
            let k = st.stats();
            assert_eq!(k.num_steps, k.num_accepted + k.num_rejected, "{}", tab.name);
            assert_eq!(k.num_evals, f.evals, "{}", tab.name);
            // f(t0, y0), plus one for the initial-step heuristic.
            let init = 1 + u64::from(dt0.is_none());
            let expected = if tab.fsal {
                init + (s - 1) * k.num_steps
            } else {
                // Rejected attempts never evaluate f(t1, y1).
                init + (s - 1) * k.num_steps + k.num_accepted
            };
            assert_eq!(k.num_evals, expected, "{} dt0 = {dt0:?}", tab.name);
            if dt0.is_some() {
                // dt0 = 5 is far too large at rtol 1e-7: the first attempts are rejected.
                assert!(k.num_rejected >= 1, "{}", tab.name);
            }
        }
    }
}

#[test]
fn step_never_passes_t_max_and_lands_on_it_exactly() {
    let mut f = LIN;
    let mut st = RkStepper::new(&DOPRI5, PidController::new(1e-8, 1e-10), 3);
    st.init(&mut f, 0.0, &LIN_Y0, None).unwrap();
    let mut prev = 0.0;
    for t_max in [0.1, 0.35, 0.350001, 2.0, 2.0 + 1e-12, 7.3] {
        while st.t() < t_max {
            let dt_before = st.dt_next();
            let iv = st.step(&mut f, t_max).unwrap();
            assert_eq!(iv.t0, prev);
            assert!(iv.t0 < iv.t1 && iv.t1 <= t_max, "{iv:?} past {t_max}");
            assert_eq!(st.t(), iv.t1);
            if iv.t1 == t_max {
                // A step cut short to hit t_max does not shrink the next step.
                assert!(st.dt_next() >= dt_before.min(iv.t1 - iv.t0));
            }
            prev = iv.t1;
        }
        assert_eq!(st.t(), t_max, "lands exactly");
    }
    let y = st.y().to_vec();
    assert!(max_abs_diff(&y, &LIN.exact(7.3, &LIN_Y0)) < 1e-6);
    // Derivative at the current point is the FSAL value f(t, y).
    let mut dy = [0.0; 3];
    f.eval(st.t(), &y, &mut dy).unwrap();
    assert_eq!(st.dy(), dy.as_slice());
    // Forward only.
    assert!(matches!(st.step(&mut f, 7.3), Err(Error::Numerical(_))));
    assert!(matches!(st.step(&mut f, 1.0), Err(Error::Numerical(_))));
}

#[test]
fn dtmax_caps_every_step() {
    let mut f = LIN;
    let ctrl = PidController {
        dtmax: Some(0.05),
        ..PidController::new(1e-3, 1e-6)
    };
    let mut st = RkStepper::new(&TSIT5, ctrl, 3);
    st.init(&mut f, 0.0, &LIN_Y0, None).unwrap();
    while st.t() < 1.0 {
        let iv = st.step(&mut f, 1.0).unwrap();
        assert!(iv.t1 - iv.t0 <= 0.05 * (1.0 + 1e-12));
    }
    assert!(st.stats().num_accepted >= 20);
}

#[test]
fn reset_state_continues_from_the_new_state() {
    // y' = −y to t = 1, project y ← 2y, continue to t = 2: y(2) = 2 e^{−2}.
    let mut f = from_fn(1, |_t, y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0];
        Ok(())
    });
    let mut st = RkStepper::new(&DOPRI5, PidController::new(1e-10, 1e-12), 1);
    st.init(&mut f, 0.0, &[1.0], None).unwrap();
    while st.t() < 1.0 {
        st.step(&mut f, 1.0).unwrap();
    }
    let evals = st.stats().num_evals;
    let y = [2.0 * st.y()[0]];
    st.reset_state(&mut f, 1.0, &y).unwrap();
    assert_eq!(st.stats().num_evals, evals + 1, "reset evaluates f once");
    assert_eq!(st.dy(), &[-y[0]], "FSAL value refreshed");
    assert_eq!(st.last_step(), None, "dense output invalidated");
    while st.t() < 2.0 {
        st.step(&mut f, 2.0).unwrap();
    }
    assert!((st.y()[0] - 2.0 * (-2.0f64).exp()).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn vector_field_errors_propagate_unchanged() {
    let mut f = from_fn(1, |t, _y: &[f64], dy: &mut [f64]| {
        if t > 1.0 {
            return Err(Error::Interrupted);
        }
        dy[0] = 1.0;
        Ok(())
    });
    let r = solve(
        &mut f,
        &DOPRI5,
        PidController::new(1e-6, 1e-9),
        0.0,
        2.0,
        &[0.0],
        &[2.0],
        1000,
    );
    assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
    // Also from init (f(t0, y0)).
    let mut g = from_fn(1, |_t, _y: &[f64], _dy: &mut [f64]| {
        Err(Error::Shape("sentinel".into()))
    });
    let r = solve(
        &mut g,
        &BOSH3,
        PidController::new(1e-6, 1e-9),
        0.0,
        1.0,
        &[0.0],
        &[],
        10,
    );
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m == "sentinel"),
        "{r:?}"
    );
}

fn numerical_message<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::Numerical(m)) => m,
        other => panic!("expected Error::Numerical, got {other:?}"),
    }
}

#[test]
fn nan_producing_field_gives_a_numerical_error_not_a_hang() {
    // y' = sqrt(1 − t) is NaN for t > 1: the solver creeps up to t = 1, then underflows.
    let mut f = Counted {
        inner: from_fn(1, |t, _y: &[f64], dy: &mut [f64]| {
            dy[0] = (1.0 - t).sqrt();
            Ok(())
        }),
        evals: 0,
    };
    let mut st = RkStepper::new(&DOPRI5, PidController::new(1e-6, 1e-9), 1);
    st.init(&mut f, 0.0, &[0.0], None).unwrap();
    let err = loop {
        match st.step(&mut f, 2.0) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let msg = numerical_message::<()>(Err(err));
    eprintln!(
        "NaN field: stopped at t = {}, {} evals: {msg}",
        st.t(),
        f.evals
    );
    assert!(msg.contains("t = ") && msg.contains("dt = "), "{msg}");
    assert!(msg.contains("non-finite"), "{msg}");
    assert!(
        st.t() <= 1.0 && st.t() > 1.0 - 1e-6,
        "stopped at {}",
        st.t()
    );
    assert!(f.evals < 5_000, "{} evals", f.evals);
    // The last accepted state is intact: y(t) = (2/3)(1 − (1 − t)^{3/2}).
    let exact = 2.0 / 3.0 * (1.0 - (1.0 - st.t()).powf(1.5));
    assert!((st.y()[0] - exact).abs() < 1e-6);

    // NaN everywhere except at t0 = 0, where the 1e-14·|t| floor is 0: the consecutive
    // rejection cap stops it.
    let mut g = Counted {
        inner: from_fn(1, |t, _y: &[f64], dy: &mut [f64]| {
            dy[0] = if t == 0.0 { 1.0 } else { f64::NAN };
            Ok(())
        }),
        evals: 0,
    };
    let r = solve(
        &mut g,
        &TSIT5,
        PidController::new(1e-6, 1e-9),
        0.0,
        1.0,
        &[0.0],
        &[1.0],
        1_000_000,
    );
    let msg = numerical_message(r);
    assert!(
        msg.contains("consecutive rejected") && msg.contains("non-finite"),
        "{msg}"
    );
    assert!(
        g.evals <= 2 + 6 * u64::from(MAX_CONSECUTIVE_REJECTIONS),
        "{}",
        g.evals
    );

    // With dtmin set, the floor is dtmin.
    let mut f = from_fn(1, |t, _y: &[f64], dy: &mut [f64]| {
        dy[0] = (1.0 - t).sqrt();
        Ok(())
    });
    let ctrl = PidController {
        dtmin: Some(1e-4),
        ..PidController::new(1e-6, 1e-9)
    };
    let msg = numerical_message(solve(&mut f, &DOPRI5, ctrl, 0.0, 2.0, &[0.0], &[], 100_000));
    assert!(msg.contains("(dtmin)"), "{msg}");

    // Non-finite start.
    let mut h = from_fn(1, |_t, _y: &[f64], dy: &mut [f64]| {
        dy[0] = f64::INFINITY;
        Ok(())
    });
    let msg = numerical_message(solve(
        &mut h,
        &DOPRI5,
        PidController::new(1e-6, 1e-9),
        0.0,
        1.0,
        &[0.0],
        &[],
        10,
    ));
    assert!(msg.contains("start point"), "{msg}");
}

#[test]
fn max_steps_exceeded_is_reported() {
    let mut f = LIN;
    let r = solve(
        &mut f,
        &DOPRI5,
        PidController::new(1e-10, 1e-12),
        0.0,
        10.0,
        &LIN_Y0,
        &[10.0],
        20,
    );
    let msg = numerical_message(r);
    assert!(
        msg.contains("max_steps = 20") && msg.contains("loosen rtol"),
        "{msg}"
    );
}

#[test]
fn invalid_arguments_are_config_or_shape_errors() {
    let ctrl = || PidController::new(1e-6, 1e-9);
    let key = |r: Result<Solution>| match r {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected Error::Config, got {other:?}"),
    };
    let mut f = LIN;
    // Backwards.
    assert_eq!(
        key(solve(&mut f, &DOPRI5, ctrl(), 1.0, 0.0, &LIN_Y0, &[], 10)),
        "t1"
    );
    // Unsorted / out of range save times.
    assert_eq!(
        key(solve(
            &mut f,
            &DOPRI5,
            ctrl(),
            0.0,
            1.0,
            &LIN_Y0,
            &[0.5, 0.2],
            10
        )),
        "save_at"
    );
    assert_eq!(
        key(solve(
            &mut f,
            &DOPRI5,
            ctrl(),
            0.0,
            1.0,
            &LIN_Y0,
            &[1.5],
            10
        )),
        "save_at"
    );
    assert_eq!(
        key(solve(
            &mut f,
            &DOPRI5,
            ctrl(),
            0.0,
            1.0,
            &LIN_Y0,
            &[f64::NAN],
            10
        )),
        "save_at"
    );
    // Bad controller.
    let bad = PidController::new(-1.0, 1e-9);
    assert_eq!(
        key(solve(&mut f, &DOPRI5, bad, 0.0, 1.0, &LIN_Y0, &[], 10)),
        "rtol"
    );
    // Wrong dimension.
    let r = solve(&mut f, &DOPRI5, ctrl(), 0.0, 1.0, &[1.0, 2.0], &[], 10);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    // Empty interval: no step, y0 returned.
    let sol = solve(&mut f, &DOPRI5, ctrl(), 1.0, 1.0, &LIN_Y0, &[1.0], 10).unwrap();
    assert_eq!(sol.ys, vec![LIN_Y0.to_vec()]);
    assert_eq!(sol.stats.num_steps, 0);
    // Step before init.
    let mut st = RkStepper::new(&DOPRI5, ctrl(), 3);
    assert!(matches!(st.step(&mut f, 1.0), Err(Error::Numerical(_))));
}

// ---------------------------------------------------------------------------------------
// Controller
// ---------------------------------------------------------------------------------------

#[test]
fn controller_defaults_match_diffrax_and_deserialize() {
    let c = PidController::new(1e-6, 1e-9);
    assert_eq!((c.pcoeff, c.icoeff, c.dcoeff), (0.0, 1.0, 0.0));
    assert_eq!((c.factormin, c.factormax, c.safety), (0.2, 10.0, 0.9));
    assert_eq!((c.dtmin, c.dtmax), (None, None));
    let parsed: PidController = serde_json::from_str(r#"{"rtol": 1e-6, "atol": 1e-9}"#).unwrap();
    assert_eq!(parsed, c);
    let pi: PidController =
        serde_json::from_str(r#"{"rtol": 1e-6, "atol": 1e-9, "pcoeff": 0.4, "icoeff": 0.3}"#)
            .unwrap();
    assert_eq!(pi, PidController::pi(1e-6, 1e-9));
    let round: PidController = serde_json::from_str(&serde_json::to_string(&pi).unwrap()).unwrap();
    assert_eq!(round, pi);
    assert!(
        serde_json::from_str::<PidController>(r#"{"rtol": 1e-6, "atol": 1e-9, "rtoll": 1}"#)
            .is_err()
    );
    assert!(c.validate().is_ok() && pi.validate().is_ok());
    for bad in [
        PidController {
            atol: 0.0,
            rtol: 0.0,
            ..c.clone()
        },
        PidController {
            safety: 1.5,
            ..c.clone()
        },
        PidController {
            factormin: 0.0,
            ..c.clone()
        },
        PidController {
            factormax: 0.5,
            ..c.clone()
        },
        PidController {
            dtmin: Some(1.0),
            dtmax: Some(0.1),
            ..c.clone()
        },
        PidController {
            icoeff: 0.0,
            ..c.clone()
        },
        PidController {
            rtol: f64::NAN,
            ..c.clone()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::Config { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn controller_update_rule() {
    let k = 5.0;
    let c = PidController::new(1e-6, 1e-9);
    let mut s = PidState::default();
    // I controller: factor = safety · err^{−1/k}, clipped.
    let d = c.adapt(&mut s, 0.5, k);
    assert!(d.accept && (d.factor - 0.9 * 0.5f64.powf(-0.2)).abs() < 1e-15);
    assert_eq!(s.prev_inv, 2.0);
    let d = c.adapt(&mut s, 0.99, k);
    assert!(
        d.accept && d.factor == 1.0,
        "accepted steps never shrink: {d:?}"
    );
    let d = c.adapt(&mut s, 0.0, k);
    assert!(d.accept && d.factor == 10.0);
    assert_eq!(s.prev_inv, 1.0, "zero error is stored as 1 (as diffrax)");
    let before = s;
    let d = c.adapt(&mut s, 2.0, k);
    assert!(!d.accept && (d.factor - 0.9 * 2f64.powf(-0.2)).abs() < 1e-15);
    assert_eq!(s, before, "rejections leave the history alone");
    let d = c.adapt(&mut s, 1e6, k);
    assert_eq!((d.accept, d.factor), (false, 0.2));
    for bad in [f64::NAN, f64::INFINITY] {
        let d = c.adapt(&mut s, bad, k);
        assert_eq!((d.accept, d.factor), (false, 0.2));
    }
    assert_eq!(s, before);
    // PI: h_{n+1}/h_n = safety · r_n^{0.7/k} · r_{n−1}^{−0.4/k}.
    let pi = PidController::pi(1e-6, 1e-9);
    let mut s = PidState {
        prev_inv: 4.0,
        prev_prev_inv: 1.0,
    };
    let d = pi.adapt(&mut s, 0.5, k);
    let expected = 0.9 * 2f64.powf(0.7 / k) * 4f64.powf(-0.4 / k);
    assert!(
        d.accept && (d.factor - expected.max(1.0)).abs() < 1e-15,
        "{d:?}"
    );
    assert_eq!(
        s,
        PidState {
            prev_inv: 2.0,
            prev_prev_inv: 4.0
        }
    );
    // Norm: RMS of err_i / (atol + rtol · max(|y0_i|, |y1_i|)).
    let c = PidController::new(0.1, 1.0);
    let e = c.scaled_error(&[1.0, 2.0], &[0.0, 10.0], &[-10.0, 0.0]);
    assert!((e - (0.5f64.powi(2) * 0.5 + 1.0f64 * 0.5).sqrt()).abs() < 1e-15);
    assert!(c.scaled_error(&[1.0], &[0.0], &[f64::NAN]).is_nan());
    assert_eq!(c.scaled_error(&[], &[], &[]), 0.0);
}

#[test]
fn initial_step_heuristic_follows_hairer() {
    // For y' = λ y: d1 = |λ| d0, h0 = 0.01/|λ|, d2 = λ² d0, so
    // dt0 = min(100 h0, (0.01 / max(|λ| d0, λ² d0))^{1/5}).
    let (rtol, atol) = (1e-6, 1e-9);
    let y0: [f64; 2] = [1.0, -0.5];
    let d0 = (y0
        .iter()
        .map(|y| (y / (atol + rtol * y.abs())).powi(2))
        .sum::<f64>()
        / 2.0)
        .sqrt();
    for lambda in [-1.0, -100.0, 0.3] {
        let mut f = from_fn(2, move |_t, y: &[f64], dy: &mut [f64]| {
            dy[0] = lambda * y[0];
            dy[1] = lambda * y[1];
            Ok(())
        });
        let mut st = RkStepper::new(&DOPRI5, PidController::new(rtol, atol), 2);
        st.init(&mut f, 0.0, &y0, None).unwrap();
        assert_eq!(st.stats().num_evals, 2);
        let l = f64::abs(lambda);
        let expected = (1.0 / l).min((0.01 / (l * d0).max(l * l * d0)).powf(0.2));
        eprintln!(
            "initial step λ = {lambda}: {:.4e} (expected {expected:.4e})",
            st.dt_next()
        );
        assert!((st.dt_next() / expected - 1.0).abs() < 1e-9);
    }
    // A zero vector field: h0 = 1e-6, max(d1, d2) = 0  ⇒  dt0 = min(1e-4, max(1e-6, 1e-9)).
    let mut zero = from_fn(1, |_t, _y: &[f64], dy: &mut [f64]| {
        dy[0] = 0.0;
        Ok(())
    });
    let mut st = RkStepper::new(&DOPRI5, PidController::new(rtol, atol), 1);
    st.init(&mut zero, 0.0, &[1.0], None).unwrap();
    assert_eq!(st.dt_next(), 1e-6);
    // dtmax caps it.
    let ctrl = PidController {
        dtmax: Some(1e-8),
        ..PidController::new(rtol, atol)
    };
    let mut st = RkStepper::new(&DOPRI5, ctrl, 1);
    st.init(&mut zero, 0.0, &[1.0], None).unwrap();
    assert_eq!(st.dt_next(), 1e-8);
}
