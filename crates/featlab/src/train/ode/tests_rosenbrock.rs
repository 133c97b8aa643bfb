//! Tests of the Rosenbrock–W stepper against exact solutions and against DOPRI5. Run with
//! `--nocapture` to see the measured numbers.

use super::*;
use crate::Result;

/// `y' = A y`, `A = V diag(λ) V⁻¹` with `V = [[1, 1, 0], [0, 1, 1], [1, 0, 1]]` (det 2) and
/// `λ = (−1, −2, −λ_stiff)`: exact solution `V diag(e^{λt}) V⁻¹ y0`.
struct StiffLinear {
    lam: [f64; 3],
    /// Return this matrix from `jacobian` instead of the exact `A` (W-method test).
    jac_override: Option<[[f64; 3]; 3]>,
}

const V: [[f64; 3]; 3] = [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]];
const VINV: [[f64; 3]; 3] = [[0.5, -0.5, 0.5], [0.5, 0.5, -0.5], [-0.5, 0.5, 0.5]];

impl StiffLinear {
    fn new(stiff: f64) -> Self {
        StiffLinear {
            lam: [-1.0, -2.0, -stiff],
            jac_override: None,
        }
    }
    fn matrix(&self) -> [[f64; 3]; 3] {
        let mut a = [[0.0; 3]; 3];
        for (i, row) in a.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| V[i][k] * self.lam[k] * VINV[k][j]).sum();
            }
        }
        a
    }
    fn exact(&self, t: f64, y0: &[f64]) -> Vec<f64> {
        let z: Vec<f64> = (0..3)
            .map(|k| (self.lam[k] * t).exp() * (0..3).map(|j| VINV[k][j] * y0[j]).sum::<f64>())
            .collect();
        (0..3)
            .map(|i| (0..3).map(|k| V[i][k] * z[k]).sum())
            .collect()
    }
}

impl VectorField for StiffLinear {
    fn dim(&self) -> usize {
        3
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        let a = self.matrix();
        for i in 0..3 {
            dy[i] = (0..3).map(|j| a[i][j] * y[j]).sum();
        }
        Ok(())
    }
    fn jacobian(&mut self, _t: f64, _y: &[f64], mut jac: faer::MatMut<'_, f64>) -> Result<bool> {
        match self.jac_override {
            Some(m) => {
                for i in 0..3 {
                    for j in 0..3 {
                        jac[(i, j)] = m[i][j];
                    }
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

const Y0: [f64; 3] = [1.0, -0.5, 2.0];

/// Fixed steps of size `h` (error control off) to `t = 1`; max-norm error vs exact.
fn fixed_step_error(field: &mut StiffLinear, h: f64, jac_age: u64) -> f64 {
    let ctrl = PidController::fixed_step(h, "h").unwrap();
    let mut st = RosenbrockStepper::new(&ROS34PW2, ctrl, 3);
    st.set_jacobian_max_age(jac_age);
    st.init(field, 0.0, &Y0, Some(h)).unwrap();
    while st.t() < 1.0 {
        st.step(field, 1.0).unwrap();
    }
    let ex = field.exact(1.0, &Y0);
    st.y()
        .iter()
        .zip(&ex)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// `max_i |r_i − x_i| / max_i |r_i|`: the largest deviation of `x` from the reference `r`,
/// relative to r's largest component.
fn rel_diff(r: &[f64], x: &[f64]) -> f64 {
    let scale = r.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let diff = r
        .iter()
        .zip(x)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    diff / scale
}

fn observed_orders(errs: &[f64]) -> Vec<f64> {
    errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
}

/// Order 3 on a stiff linear problem (λ = −1, −2, −10⁴) with the finite-difference Jacobian:
/// halving h divides the error at t = 1 by ≈ 8, although h·|λ_stiff| ≥ 600 (an explicit
/// method would blow up), because ROS34PW2 is L-stable.
#[test]
fn ros34pw2_is_third_order_on_a_stiff_linear_problem() {
    let mut f = StiffLinear::new(1e4);
    let errs: Vec<f64> = [0.2, 0.1, 0.05, 0.025]
        .iter()
        .map(|&h| fixed_step_error(&mut f, h, 1))
        .collect();
    let p = observed_orders(&errs);
    println!("errors {errs:?}, observed orders {p:?}");
    for q in &p {
        assert!(
            (q - 3.0).abs() < 0.25,
            "observed order {q} (errors {errs:?})"
        );
    }
    assert!(errs[3] < 1e-5, "{errs:?}");
}

/// The W-property: with a wrong Jacobian (the exact one with its off-diagonal part dropped and
/// the diagonal halved), reused for 1000 steps, the method still converges with order 3 on the
/// non-stiff problem (λ = −1, −2, −3).
#[test]
fn ros34pw2_keeps_order_three_with_an_approximate_jacobian() {
    let mut f = StiffLinear::new(3.0);
    let a = f.matrix();
    let mut w = [[0.0; 3]; 3];
    for i in 0..3 {
        w[i][i] = 0.5 * a[i][i];
    }
    f.jac_override = Some(w);
    let errs: Vec<f64> = [0.1, 0.05, 0.025, 0.0125]
        .iter()
        .map(|&h| fixed_step_error(&mut f, h, 1000))
        .collect();
    let p = observed_orders(&errs);
    println!("approximate Jacobian: errors {errs:?}, observed orders {p:?}");
    for q in &p {
        assert!(
            (q - 3.0).abs() < 0.3,
            "observed order {q} (errors {errs:?})"
        );
    }
}

/// Adaptive: a very stiff problem (λ_stiff = −10⁶) over t ∈ [0, 20] within tolerance in ~2000
/// steps at rtol 1e-8 (DOPRI5 would need ≳ 20·10⁶/3.3 steps for stability alone); dense output between
/// steps is accurate too.
#[test]
fn ros34pw2_adaptive_solves_a_very_stiff_problem_in_few_steps() {
    let mut f = StiffLinear::new(1e6);
    let save: Vec<f64> = (0..=40).map(|i| 0.5 * i as f64).collect();
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-10), 3);
    let sol = solve_with(&mut st, &mut f, 0.0, 20.0, &Y0, &save, 100_000).unwrap();
    let mut worst = 0.0f64;
    for (t, y) in sol.ts.iter().zip(&sol.ys) {
        let ex = f.exact(*t, &Y0);
        for (a, b) in y.iter().zip(&ex) {
            worst = worst.max((a - b).abs());
        }
    }
    println!("stiff 1e6: stats {:?}, max error {worst:.3e}", sol.stats);
    assert!(worst < 1e-6, "max error {worst:e}");
    assert!(sol.stats.num_steps < 5_000, "{:?}", sol.stats);
    assert!(sol.stats.num_jacobians >= 1);
}

/// Non-autonomous and stiff (Prothero–Robinson type, exercises the f_t term):
/// y' = −10³(y − cos t) − sin t, y(0) = 2, exact y = cos t + e^{−10³ t}.
#[test]
fn ros34pw2_handles_time_dependent_fields() {
    let mut f = from_fn(1, |t, y: &[f64], dy: &mut [f64]| {
        dy[0] = -1e3 * (y[0] - t.cos()) - t.sin();
        Ok(())
    });
    let save = [0.5, 1.0, 3.0, 10.0];
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-9, 1e-12), 1);
    let sol = solve_with(&mut st, &mut f, 0.0, 10.0, &[2.0], &save, 100_000).unwrap();
    let worst = sol
        .ts
        .iter()
        .zip(&sol.ys)
        .map(|(t, y)| (y[0] - t.cos() - (-1e3 * t).exp()).abs())
        .fold(0.0, f64::max);
    println!(
        "Prothero–Robinson: stats {:?}, max error {worst:.3e}",
        sol.stats
    );
    assert!(worst < 1e-7, "max error {worst:e}");
}

/// Gradient flow of a small quadratic two-layer net (n = 30, d = 4, c = 2, `width` neurons):
/// data and init N(0, 0.3²) from the stream `seed` = (seed, tag), the `dormant` neurons
/// scaled by 1e-3; solved to t = 20 at rtol 1e-10 / atol 1e-12 with `solver` (configured by
/// `setup`), saved at t = 1, 5, 20.
fn quadratic_gradient_flow(
    seed: (u64, &str),
    width: usize,
    dormant: &[usize],
    solver: Solver,
    par: faer::Par,
    setup: impl Fn(&mut dyn Integrator),
) -> Solution {
    use crate::model::two_layer::TwoLayer;
    use crate::model::{Activation, Loss, Model, NeuronSum};
    use crate::rng::{normal_vec, stream};
    use crate::train::stepper::GradientFlowField;
    use crate::train::Problem;
    let (n, d, c) = (30, 4, 2);
    let mut rng = stream(seed.0, seed.1);
    let data = gaussian_dataset(&mut rng, n, d, c);
    let model = TwoLayer::new(d, width, c, Activation::Quadratic, false);
    let mut init = normal_vec(&mut rng, model.num_params(), 0.3);
    for &i in dormant {
        for j in model.neuron_params(i) {
            init[j] *= 1e-3;
        }
    }
    let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, par);
    let mut field = GradientFlowField {
        problem: &mut problem,
        last_loss: f64::NAN,
    };
    let mut st = solver.integrator(PidController::new(1e-10, 1e-12), init.len());
    setup(st.as_mut());
    solve_with(
        st.as_mut(),
        &mut field,
        0.0,
        20.0,
        &init,
        &[1.0, 5.0, 20.0],
        1_000_000,
    )
    .unwrap()
}

/// Largest [`rel_diff`] between two solutions' saved states.
fn max_rel_diff(a: &Solution, b: &Solution) -> f64 {
    a.ys.iter()
        .zip(&b.ys)
        .map(|(x, y)| rel_diff(x, y))
        .fold(0.0, f64::max)
}

/// Gradient flow of a small quadratic two-layer net (non-stiff at this scale): ROS34PW2 and
/// DOPRI5 agree along the trajectory to ~tolerance, and ROS34PW2 is bitwise deterministic
/// across thread counts of the gradient.
#[test]
fn ros34pw2_matches_dopri5_on_gradient_flow() {
    use faer::Par;
    let run = |solver: Solver, par: Par| {
        quadratic_gradient_flow((7, "ros-gf"), 3, &[], solver, par, |_| {})
    };
    let dp = run(Solver::Explicit(&DOPRI5), Par::Seq);
    let ro = run(Solver::Rosenbrock(&ROS34PW2), Par::Seq);
    let worst = max_rel_diff(&dp, &ro);
    println!(
        "GF: dopri5 {:?}\n    ros34pw2 {:?}\n    max rel diff {worst:.3e}",
        dp.stats, ro.stats
    );
    assert!(worst < 1e-6, "DOPRI5 vs ROS34PW2 differ by {worst:e}");
    let ro2 = run(
        Solver::Rosenbrock(&ROS34PW2),
        Par::Rayon(std::num::NonZeroUsize::new(2).unwrap()),
    );
    assert_eq!(
        ro.ys, ro2.ys,
        "not bitwise deterministic across thread counts"
    );
}

#[test]
fn solver_names_round_trip_and_unknown_names_are_config_errors() {
    for name in Solver::NAMES {
        let s = Solver::from_name(name, "train.solver").unwrap();
        assert_eq!(s.name(), name);
        let v: Solver = serde_json::from_value(serde_json::json!(name)).unwrap();
        assert_eq!(v, s);
    }
    let e = Solver::from_name("rodas9", "train.solver").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("train.solver") && msg.contains("ros34pw2"),
        "{msg}"
    );
    assert!(serde_json::from_value::<Solver>(serde_json::json!("nope")).is_err());
}

#[test]
fn rosenbrock_step_errors_are_clear() {
    let mut f = StiffLinear::new(10.0);
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-10), 3);
    assert!(st.step(&mut f, 1.0).is_err()); // before init
    assert!(st.init(&mut f, 0.0, &[1.0, 2.0], None).is_err()); // wrong shape
    st.init(&mut f, 0.0, &Y0, None).unwrap();
    assert!(st.step(&mut f, -1.0).is_err()); // backwards
    let mut nan = from_fn(3, |_t, _y: &[f64], dy: &mut [f64]| {
        dy.fill(f64::NAN);
        Ok(())
    });
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-10), 3);
    let e = st.init(&mut nan, 0.0, &Y0, None).unwrap_err().to_string();
    assert!(e.contains("non-finite"), "{e}");
}

/// The gradient-flow field's exact Jacobian −r ⊙ (∇²L + λI) (two-layer quadratic and linear
/// nets, weight decay, unequal rate multipliers) equals central finite differences of the
/// field; nets without an exact Hessian (biases) fall back to finite differences.
#[test]
fn gradient_flow_jacobian_matches_finite_differences() {
    use crate::model::two_layer::TwoLayer;
    use crate::model::{Activation, Loss, Model};
    use crate::rng::{normal_vec, stream};
    use crate::train::stepper::GradientFlowField;
    use crate::train::Problem;
    use faer::{Mat, Par};
    let (n, d, h, c) = (13, 3, 4, 2);
    let mut rng = stream(9, "gf-jac");
    let data = gaussian_dataset(&mut rng, n, d, c);
    for act in [Activation::Quadratic, Activation::Linear] {
        let model = TwoLayer::new(d, h, c, act, false)
            .multipliers(0.9, 1.1)
            .lr_mults(1.0, 0.5);
        let y = normal_vec(&mut rng, model.num_params(), 0.5);
        let mut problem = Problem::new(&model, &data, Loss::Mse, 0.03, Par::Seq);
        let mut field = GradientFlowField {
            problem: &mut problem,
            last_loss: f64::NAN,
        };
        let k = y.len();
        let mut jac = Mat::zeros(k, k);
        assert!(field.jacobian(0.0, &y, jac.as_mut()).unwrap());
        let (mut fp, mut fm) = (vec![0.0; k], vec![0.0; k]);
        let step = 1e-6;
        let (mut worst, mut jmax) = (0.0f64, 0.0f64);
        for col in 0..k {
            let mut q = y.clone();
            q[col] += step;
            field.eval(0.0, &q, &mut fp).unwrap();
            q[col] -= 2.0 * step;
            field.eval(0.0, &q, &mut fm).unwrap();
            for row in 0..k {
                let fd = (fp[row] - fm[row]) / (2.0 * step);
                worst = worst.max((fd - jac[(row, col)]).abs());
                jmax = jmax.max(jac[(row, col)].abs());
            }
        }
        assert!(jmax > 1e-2);
        assert!(
            worst <= 1e-7 * jmax,
            "{act:?}: max |J − FD| = {worst:e} (max |J| = {jmax:e})"
        );
    }
    let biased = TwoLayer::new(d, h, c, Activation::Quadratic, true);
    let y = vec![0.1; biased.num_params()];
    let mut problem = Problem::new(&biased, &data, Loss::Mse, 0.0, Par::Seq);
    let mut field = GradientFlowField {
        problem: &mut problem,
        last_loss: f64::NAN,
    };
    let mut jac = Mat::zeros(y.len(), y.len());
    assert!(!field.jacobian(0.0, &y, jac.as_mut()).unwrap());
}

/// n standard-normal inputs in dimension d and targets in dimension c (row by row from `rng`).
fn gaussian_dataset(
    rng: &mut crate::rng::Rng,
    n: usize,
    d: usize,
    c: usize,
) -> crate::data::Dataset {
    use crate::rng::normal_vec;
    use faer::Mat;
    let xs = normal_vec(rng, n * d, 1.0);
    let ys = normal_vec(rng, n * c, 1.0);
    crate::data::Dataset::new(
        Mat::from_fn(n, d, |i, j| xs[i * d + j]),
        Mat::from_fn(n, c, |i, j| ys[i * c + j]),
    )
    .unwrap()
}

/// `y' = −H y` with a symmetric `H = V diag(μ) Vᵀ` (V a fixed rotation of R^6) plus a
/// stiff diagonal part on coordinates 0 and 1 and a weak part elsewhere; exact solution
/// `e^{−Ht} y0` by eigendecomposition.
struct SymmetricFlow {
    h: faer::Mat<f64>,
}

impl SymmetricFlow {
    fn new() -> Self {
        let n = 6;
        // weak, coupled part: 1e-2·(a random-ish symmetric PSD matrix) + stiff coordinates
        let b = faer::Mat::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 5) as f64 * 0.1 - 0.2);
        let mut h = faer::Mat::from_fn(n, n, |i, j| {
            1e-2 * (0..n).map(|k| b[(i, k)] * b[(j, k)]).sum::<f64>()
        });
        h[(0, 0)] += 1e4;
        h[(1, 1)] += 1e3;
        h[(0, 1)] += 50.0;
        h[(1, 0)] += 50.0;
        SymmetricFlow { h }
    }
    /// The same flow in a rotated basis, `R H R` with the reflection `R = I − 2vvᵀ/‖v‖²`:
    /// the stiff directions are no longer coordinate axes (every column sum is stiff).
    fn rotated() -> Self {
        let h0 = Self::new().h;
        let n = h0.nrows();
        let v: Vec<f64> = (0..n).map(|i| 1.0 + 0.3 * i as f64).collect();
        let vv: f64 = v.iter().map(|x| x * x).sum();
        let r = faer::Mat::from_fn(n, n, |i, j| {
            f64::from(u8::from(i == j)) - 2.0 * v[i] * v[j] / vv
        });
        let h = &r * &h0 * &r;
        // exactly symmetric
        let h = faer::Mat::from_fn(n, n, |i, j| 0.5 * (h[(i, j)] + h[(j, i)]));
        SymmetricFlow { h }
    }
    fn exact(&self, t: f64, y0: &[f64]) -> Vec<f64> {
        let (u, l) = crate::linalg::sym_eig(self.h.as_ref()).unwrap();
        let n = y0.len();
        let z: Vec<f64> = (0..n)
            .map(|k| (-l[k] * t).exp() * (0..n).map(|j| u[(j, k)] * y0[j]).sum::<f64>())
            .collect();
        (0..n)
            .map(|i| (0..n).map(|k| u[(i, k)] * z[k]).sum())
            .collect()
    }
}

impl VectorField for SymmetricFlow {
    fn dim(&self) -> usize {
        self.h.nrows()
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        for (i, d) in dy.iter_mut().enumerate() {
            *d = -y
                .iter()
                .enumerate()
                .map(|(j, v)| self.h[(i, j)] * v)
                .sum::<f64>();
        }
        Ok(())
    }
    fn jacobian(&mut self, _t: f64, _y: &[f64], mut jac: faer::MatMut<'_, f64>) -> Result<bool> {
        let n = self.h.nrows();
        for i in 0..n {
            for j in 0..n {
                jac[(i, j)] = -self.h[(i, j)];
            }
        }
        Ok(true)
    }
    fn symmetric_jacobian(&self) -> bool {
        true
    }
}

/// Coordinate selection (`set_explicit_below`): while the steps are small nothing or only
/// the stiff pair is in the eigendecomposed Jacobian (2 ≤ |S| < n), the stiff ones stay in
/// as h grows (no explicit stability limit: a few 10³ steps to t = 200 where h·λ_max ≫ 10³),
/// and the solution stays within tolerance of the exact one, as without selection.
#[test]
fn ros34pw2_coordinate_selection_is_accurate_and_stable() {
    let y0 = [1.0, -0.5, 2.0, 0.3, -1.0, 0.7];
    let save: Vec<f64> = vec![0.01, 0.1, 1.0, 10.0, 100.0, 200.0];
    let run = |eta: f64| {
        let mut f = SymmetricFlow::new();
        let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-12), 6);
        st.set_explicit_below(eta).unwrap();
        st.init(&mut f, 0.0, &y0, None).unwrap();
        let mut worst = 0.0f64;
        let mut dims = std::collections::BTreeSet::new();
        let mut k = 0;
        let mut out = vec![0.0; 6];
        while k < save.len() {
            let iv = st.step(&mut f, 200.0).unwrap();
            dims.insert(st.jacobian_dim());
            while k < save.len() && save[k] <= iv.t1 {
                st.interpolate(save[k], &mut out);
                worst = worst.max(rel_diff(&f.exact(save[k], &y0), &out));
                k += 1;
            }
        }
        (worst, dims, st.stats())
    };
    let (err_all, dims_all, st_all) = run(0.0);
    let (err_sel, dims_sel, st_sel) = run(0.05);
    println!("all: err {err_all:.2e} |S| {dims_all:?} {st_all:?}\nselected: err {err_sel:.2e} |S| {dims_sel:?} {st_sel:?}");
    assert_eq!(dims_all.iter().copied().collect::<Vec<_>>(), vec![6]);
    // partial selections occur (the stiff pair in, the weak coordinates out)
    assert!(
        dims_sel.iter().any(|&m| (2..6).contains(&m)),
        "|S| seen: {dims_sel:?}"
    );
    assert!(err_all < 1e-6 && err_sel < 1e-6, "{err_all:e} {err_sel:e}");
    assert!(st_sel.num_steps < 5_000, "{st_sel:?}");
    // bad settings are config errors
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-12), 6);
    for bad in [-0.1, 0.5, f64::NAN] {
        assert!(st.set_explicit_below(bad).is_err(), "{bad}");
    }
}

/// Spectral selection (`set_spectral_below`) on a stiff symmetric flow whose stiff
/// directions are not coordinate axes: eigenpairs with h·|λ| < θ are left out of W⁻¹
/// (fewer kept than available), the stiff ones stay in as h grows (no explicit stability
/// limit), and the solution stays within tolerance of the exact one. With a threshold below
/// every h·|λ| the correction form `hγ·I + Q diag(λ/(d(d − λ))) Qᵀ` is the same operator
/// as `Q diag(1/(d − λ)) Qᵀ`: the trajectories agree to rounding.
#[test]
fn ros34pw2_spectral_selection_is_accurate_and_stable() {
    let y0 = [1.0, -0.5, 2.0, 0.3, -1.0, 0.7];
    let save: Vec<f64> = vec![0.01, 0.1, 1.0, 10.0, 100.0, 200.0];
    let run = |theta: f64| {
        let mut f = SymmetricFlow::rotated();
        let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-12), 6);
        st.set_spectral_below(theta).unwrap();
        st.init(&mut f, 0.0, &y0, None).unwrap();
        let mut worst = 0.0f64;
        let mut k = 0;
        let mut out = vec![0.0; 6];
        let mut ys = Vec::new();
        while k < save.len() {
            let iv = st.step(&mut f, 200.0).unwrap();
            while k < save.len() && save[k] <= iv.t1 {
                st.interpolate(save[k], &mut out);
                worst = worst.max(rel_diff(&f.exact(save[k], &y0), &out));
                ys.push(out.clone());
                k += 1;
            }
        }
        (worst, ys, st.stats())
    };
    let (err_all, ys_all, st_all) = run(0.0);
    let (err_tiny, ys_tiny, st_tiny) = run(1e-300);
    let (err_sel, _, st_sel) = run(0.05);
    println!("all: err {err_all:.2e} {st_all:?}\nθ = 1e-300: err {err_tiny:.2e} {st_tiny:?}\nθ = 0.05: err {err_sel:.2e} {st_sel:?}");
    assert_eq!((st_all.num_eigen_kept, st_all.num_eigen_total), (0, 0));
    assert_eq!(st_tiny.num_eigen_kept, st_tiny.num_eigen_total);
    let same = ys_all
        .iter()
        .zip(&ys_tiny)
        .map(|(a, b)| rel_diff(a, b))
        .fold(0.0f64, f64::max);
    assert!(same < 1e-9, "correction form differs by {same:e}");
    assert!(
        st_sel.num_eigen_kept > 0 && st_sel.num_eigen_kept < st_sel.num_eigen_total,
        "{st_sel:?}"
    );
    assert!(err_all < 1e-6 && err_sel < 1e-6, "{err_all:e} {err_sel:e}");
    assert!(st_sel.num_steps < 5_000, "{st_sel:?}");
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-8, 1e-12), 6);
    for bad in [-0.1, 0.5, f64::NAN] {
        assert!(st.set_spectral_below(bad).is_err(), "{bad}");
    }
}

/// Gradient flow of a quadratic net with small-init neurons: ROS34PW2 with coordinate and
/// spectral selection and a Jacobian kept for 100 steps agrees with DOPRI5 to ~tolerance.
#[test]
fn ros34pw2_with_spectral_selection_matches_dopri5_on_gradient_flow() {
    let run = |solver: Solver, eta: f64, theta: f64| {
        quadratic_gradient_flow((11, "ros-sel"), 4, &[2, 3], solver, faer::Par::Seq, |st| {
            st.set_jacobian_max_age(100);
            st.set_explicit_below(eta).unwrap();
            st.set_spectral_below(theta).unwrap();
        })
    };
    let dp = run(Solver::Explicit(&DOPRI5), 0.0, 0.0);
    let ro = run(Solver::Rosenbrock(&ROS34PW2), 0.01, 0.05);
    let worst = max_rel_diff(&dp, &ro);
    println!(
        "spectral selection: dopri5 {:?}\n    ros34pw2 {:?}\n    max rel diff {worst:.3e}",
        dp.stats, ro.stats
    );
    assert!(
        ro.stats.num_eigen_kept < ro.stats.num_eigen_total,
        "{:?}",
        ro.stats
    );
    assert!(
        worst < 1e-6,
        "DOPRI5 vs ROS34PW2 with spectral selection differ by {worst:e}"
    );
}

/// Gradient flow of a quadratic net with small-init (dormant) neurons: ROS34PW2 with
/// coordinate selection and a Jacobian kept for 100 steps agrees with DOPRI5 to ~tolerance.
#[test]
fn ros34pw2_with_selection_matches_dopri5_on_gradient_flow() {
    let run = |solver: Solver, eta: f64| {
        quadratic_gradient_flow((11, "ros-sel"), 4, &[2, 3], solver, faer::Par::Seq, |st| {
            st.set_jacobian_max_age(100);
            st.set_explicit_below(eta).unwrap();
        })
    };
    let dp = run(Solver::Explicit(&DOPRI5), 0.0);
    let ro = run(Solver::Rosenbrock(&ROS34PW2), 0.05);
    let worst = max_rel_diff(&dp, &ro);
    println!(
        "selection: dopri5 {:?}\n    ros34pw2 {:?}\n    max rel diff {worst:.3e}",
        dp.stats, ro.stats
    );
    assert!(
        worst < 1e-6,
        "DOPRI5 vs ROS34PW2 with selection differ by {worst:e}"
    );
}

/// The continuous extension of ROS34PW2 satisfies its defining conditions (order 2 as a
/// W-method, order 3 with the exact Jacobian, `b(1) = b`) and damps stiff components: on
/// `y' = λy` with an exact Jacobian its stability function `R(z, θ)` has `|R| ≤ 1` for all
/// real `z ≤ 0`, `θ ∈ [0, 1]`.
#[test]
fn ros34pw2_continuous_extension_is_third_order_and_bounded_on_stiff_problems() {
    let tab = &ROS34PW2;
    let s = tab.stages();
    let w = tab.continuous_extension();
    let bt = |th: f64| -> Vec<f64> {
        (0..s)
            .map(|i| th * (w[0][i] + th * (w[1][i] + th * w[2][i])))
            .collect()
    };
    let (a, gam) = (|i, j| tab.a_ij(i, j), |i, j| tab.gamma_ij(i, j));
    let (alpha, gsum) = (tab.alpha(), tab.gamma_sums());
    let beta: Vec<f64> = (0..s).map(|i| alpha[i] + gsum[i]).collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    for th in [0.1, 0.37, 0.5, 0.9, 1.0] {
        let b = bt(th);
        let bb: f64 = (0..s)
            .map(|i| b[i] * (0..s).map(|j| (a(i, j) + gam(i, j)) * beta[j]).sum::<f64>())
            .sum();
        let a2: Vec<f64> = alpha.iter().map(|x| x * x).collect();
        assert!((b.iter().sum::<f64>() - th).abs() < 1e-14, "Σb(θ) at {th}");
        assert!(
            (dot(&b, &alpha) - th * th / 2.0).abs() < 1e-14,
            "Σbα at {th}"
        );
        assert!(dot(&b, &gsum).abs() < 1e-14, "Σbg at {th}");
        assert!(
            (dot(&b, &a2) - th.powi(3) / 3.0).abs() < 1e-14,
            "Σbα² at {th}"
        );
        assert!((bb - th.powi(3) / 6.0).abs() < 1e-14, "Σbββ at {th}");
    }
    for (i, bi) in bt(1.0).iter().enumerate() {
        assert!((bi - tab.b[i]).abs() < 1e-14);
    }
    // R(z, θ) = 1 + Σ b_i(θ) k_i with (I − z(A + Γ)) k = z·1
    let r = |z: f64, th: f64| {
        let mut k = vec![0.0; s];
        for i in 0..s {
            let acc: f64 = 1.0 + (0..i).map(|j| (a(i, j) + gam(i, j)) * k[j]).sum::<f64>();
            k[i] = z * acc / (1.0 - z * tab.gamma);
        }
        1.0 + dot(&bt(th), &k)
    };
    let mut worst = 0.0f64;
    for e in 0..=260 {
        let z = -(10f64).powf(-3.0 + 0.05 * e as f64);
        for q in 0..=100 {
            worst = worst.max(r(z, q as f64 / 100.0).abs());
        }
    }
    let stiff: Vec<f64> = (0..=10).map(|q| r(-1e12, q as f64 / 10.0)).collect();
    println!("max |R(z, θ)| over z ∈ [−1e10, −1e−3], θ ∈ [0, 1]: {worst}; R(−1e12, θ) at θ = 0, 0.1, …, 1: {stiff:.3?}");
    assert!(worst <= 1.0 + 1e-12, "max |R| = {worst}");
    assert!(stiff[10].abs() < 1e-9, "R(−∞, 1) = {}", stiff[10]);
}

/// `y' = y²`, `y(0) = 1` (exact `1/(1 − t)`), with the Jacobian `2y` scaled by `jac_scale`
/// (1: exact; otherwise a W-method's approximation).
struct Riccati {
    jac_scale: f64,
}

impl VectorField for Riccati {
    fn dim(&self) -> usize {
        1
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        dy[0] = y[0] * y[0];
        Ok(())
    }
    fn jacobian(&mut self, _t: f64, y: &[f64], mut jac: faer::MatMut<'_, f64>) -> Result<bool> {
        jac[(0, 0)] = self.jac_scale * 2.0 * y[0];
        Ok(true)
    }
}

/// Order of the dense output: one step of size h from y(0) = 1 on `y' = y²`, error of the
/// interpolant at θ = 0.3, 0.6 against the exact solution. Local error O(h⁴) (order 3) with
/// the exact Jacobian, O(h³) (order 2) with a Jacobian off by 30%, as derived in
/// [`RosenbrockTableau::continuous_extension`].
#[test]
fn ros34pw2_dense_output_is_third_order_with_the_exact_jacobian_and_second_with_any() {
    let interp_error = |jac_scale: f64, h: f64| {
        let ctrl = PidController::fixed_step(h, "h").unwrap();
        let mut f = Riccati { jac_scale };
        let mut st = RosenbrockStepper::new(&ROS34PW2, ctrl, 1);
        st.init(&mut f, 0.0, &[1.0], Some(h)).unwrap();
        st.step(&mut f, 1.0).unwrap();
        let mut out = [0.0];
        [0.3, 0.6]
            .iter()
            .map(|th| {
                st.interpolate(th * h, &mut out);
                (out[0] - 1.0 / (1.0 - th * h)).abs()
            })
            .fold(0.0, f64::max)
    };
    for (jac_scale, order) in [(1.0, 3.0), (0.7, 2.0)] {
        let errs: Vec<f64> = [0.02, 0.01, 0.005, 0.0025]
            .iter()
            .map(|&h| interp_error(jac_scale, h))
            .collect();
        let p = observed_orders(&errs);
        println!("dense output, Jacobian × {jac_scale}: errors {errs:?}, local orders {p:.3?}");
        for q in &p {
            assert!(
                (q - (order + 1.0)).abs() < 0.15,
                "Jacobian × {jac_scale}: local order {q}, expected {}",
                order + 1.0
            );
        }
    }
}

/// Dense output along very stiff directions of a linear problem: `StiffLinear`
/// (λ = −1, −2, −λ_stiff) from a start off the slow manifold, with the exact Jacobian or one
/// whose stiff eigenvalue is 10% off. Between step ends the continuous extension is as
/// accurate as the step ends themselves, whatever λ_stiff.
#[test]
fn ros34pw2_dense_output_is_as_accurate_as_the_step_ends_on_stiff_linear_problems() {
    for (stiff, jac_scale) in [(1e4, 1.0), (1e8, 1.0), (1e4, 0.9), (1e8, 0.9)] {
        let mut f = StiffLinear::new(stiff);
        f.jac_override = Some(StiffLinear::new(stiff * jac_scale).matrix());
        let (rtol, atol) = (1e-6, 1e-9);
        let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(rtol, atol), 3);
        st.init(&mut f, 0.0, &Y0, None).unwrap();
        let scaled = |x: &[f64], ex: &[f64]| {
            x.iter()
                .zip(ex)
                .map(|(a, b)| (a - b).abs() / (atol + rtol * b.abs()))
                .fold(0.0, f64::max)
        };
        let (mut end_err, mut dense_err) = (0.0f64, 0.0f64);
        let mut out = [0.0; 3];
        while st.t() < 2.0 {
            let iv = st.step(&mut f, 2.0).unwrap();
            end_err = end_err.max(scaled(st.y(), &f.exact(iv.t1, &Y0)));
            for q in 1..8 {
                let t = iv.t0 + q as f64 / 8.0 * (iv.t1 - iv.t0);
                st.interpolate(t, &mut out);
                dense_err = dense_err.max(scaled(&out, &f.exact(t, &Y0)));
            }
        }
        println!(
            "λ_stiff {stiff:e}, Jacobian's λ_stiff × {jac_scale}: {:?}; max error in units of \
             the tolerance: step ends {end_err:.3}, between them {dense_err:.3}",
            st.stats()
        );
        assert!(dense_err <= 1.1 * end_err, "{dense_err} vs {end_err}");
    }
}

/// Gradient flow down a curved stiff valley, `L(x, z) = ½μ(z − sin x)² + ½ε(x − x*)²`
/// (μ = 10⁶, ε = 10⁻², x* = 30): `z` tracks the slow manifold `z = sin x` while `x` drifts
/// along it, as the active neurons of a small-init network do on a plateau.
struct CurvedValley;

impl CurvedValley {
    const MU: f64 = 1e6;
    const EPS: f64 = 1e-2;
    const TARGET: f64 = 30.0;
    fn loss(y: &[f64]) -> f64 {
        let e = y[1] - y[0].sin();
        0.5 * Self::MU * e * e + 0.5 * Self::EPS * (y[0] - Self::TARGET).powi(2)
    }
}

impl VectorField for CurvedValley {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        let e = y[1] - y[0].sin();
        dy[0] = Self::MU * e * y[0].cos() - Self::EPS * (y[0] - Self::TARGET);
        dy[1] = -Self::MU * e;
        Ok(())
    }
    fn jacobian(&mut self, _t: f64, y: &[f64], mut jac: faer::MatMut<'_, f64>) -> Result<bool> {
        // −∇²L
        let (s, c) = y[0].sin_cos();
        let e = y[1] - s;
        jac[(0, 0)] = -Self::MU * (c * c + e * s) - Self::EPS;
        jac[(0, 1)] = Self::MU * c;
        jac[(1, 0)] = Self::MU * c;
        jac[(1, 1)] = -Self::MU;
        Ok(true)
    }
    fn symmetric_jacobian(&self) -> bool {
        true
    }
}

/// On gradient flow the loss never rises. Along the stiff valley of [`CurvedValley`] the loss
/// of the dense output between step ends does not rise either (beyond rounding), whereas a
/// cubic Hermite interpolant of the same steps raises it far above its running minimum: its
/// end slopes are h·μ times the step ends' tolerated distance from the valley floor.
#[test]
fn ros34pw2_dense_output_keeps_the_gradient_flow_loss_monotone() {
    let mut f = CurvedValley;
    let mut st = RosenbrockStepper::new(&ROS34PW2, PidController::new(1e-6, 1e-9), 2);
    let y0 = [0.0, 0.5];
    st.init(&mut f, 0.0, &y0, None).unwrap();
    let (mut y_prev, mut f_prev) = (st.y().to_vec(), st.dy().to_vec());
    let (mut min_dense, mut min_herm) = (f64::INFINITY, f64::INFINITY);
    let (mut rise_dense, mut rise_herm, mut rise_ends) = (0.0f64, 0.0f64, 0.0f64);
    let mut min_ends = CurvedValley::loss(&y0);
    let (mut out, mut herm) = ([0.0; 2], [0.0; 2]);
    while st.t() < 200.0 {
        let iv = st.step(&mut f, 200.0).unwrap();
        let h = iv.t1 - iv.t0;
        for q in 1..=16 {
            let th = q as f64 / 16.0;
            st.interpolate(iv.t0 + th * h, &mut out);
            let l = CurvedValley::loss(&out);
            rise_dense = rise_dense.max((l - min_dense) / min_dense);
            min_dense = min_dense.min(l);
            let no_correction: Option<fn(usize) -> f64> = None;
            super::dense::hermite(
                &y_prev,
                st.y(),
                &f_prev,
                st.dy(),
                h,
                th,
                no_correction,
                &mut herm,
            );
            let l = CurvedValley::loss(&herm);
            rise_herm = rise_herm.max((l - min_herm) / min_herm);
            min_herm = min_herm.min(l);
        }
        let l = CurvedValley::loss(st.y());
        rise_ends = rise_ends.max((l - min_ends) / min_ends);
        min_ends = min_ends.min(l);
        y_prev.copy_from_slice(st.y());
        f_prev.copy_from_slice(st.dy());
    }
    println!(
        "curved valley: {:?}, final loss {:.6e}; largest relative rise above the running \
         minimum: step ends {rise_ends:.2e}, continuous extension {rise_dense:.2e}, cubic \
         Hermite {rise_herm:.2e}",
        st.stats(),
        CurvedValley::loss(st.y())
    );
    assert!(
        rise_ends < 1e-12 && rise_dense < 1e-12,
        "{rise_ends:e} {rise_dense:e}"
    );
    // the test is stiff enough to show the Hermite overshoot it guards against
    assert!(rise_herm > 1e-2, "Hermite rise {rise_herm:e}");
}
