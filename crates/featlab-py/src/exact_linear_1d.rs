//! `featlab.exact_linear_1d`: the closed-form gradient flow of the width-d linear network
//! on scalar data (Xu & Ziyin 2024; `featlab::theory::exact_linear_1d`) on numpy arrays.
//!
//! Model `f(x) = γ (u·w) x`, loss `L = (1/2n) Σ (f(x_i) − y_i)²`, layer-wise rates η_u, η_w:
//! `du/dt = −η_u γ s r w`, `dw/dt = −η_w γ s r u`, `r = β − k`, `β = γ u·w`, `s = E[x²]`,
//! `k = E[xy]/E[x²]`. See `docs/exact-linear-1d.md` for the solution as implemented.

use crate::errors::lib_err;
use featlab::rng::stream;
use featlab::theory::exact_linear_1d::phase::evaluate_cell;
use featlab::theory::exact_linear_1d::{
    ExactLinear1d, Hyper1d, Moments1d, PhasePoint, ScalingExponents,
};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn solution(
    x: &[f64],
    y: &[f64],
    u0: &[f64],
    w0: &[f64],
    gamma: f64,
    lr_u: f64,
    lr_w: f64,
) -> PyResult<ExactLinear1d> {
    let moments = Moments1d::from_samples(x, y).map_err(lib_err)?;
    let hyper = Hyper1d { gamma, lr_u, lr_w };
    ExactLinear1d::from_vectors(hyper, moments, u0, w0).map_err(lib_err)
}

/// The exact state at each time in `t`: dict of 1-D arrays `t, beta, residual, loss, ntk,
/// cos_angle, norm_u, norm_w, log_z`, plus `u`, `w` (len(t) × d) when `vectors`; and the
/// data moments `s`, `k`, `loss_floor`.
#[pyfunction]
#[pyo3(signature = (x, y, u0, w0, t, gamma, lr_u, lr_w, vectors))]
#[allow(clippy::too_many_arguments)]
pub fn solve<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    u0: PyReadonlyArray1<'py, f64>,
    w0: PyReadonlyArray1<'py, f64>,
    t: PyReadonlyArray1<'py, f64>,
    gamma: f64,
    lr_u: f64,
    lr_w: f64,
    vectors: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let sol = solution(
        x.as_slice()?,
        y.as_slice()?,
        u0.as_slice()?,
        w0.as_slice()?,
        gamma,
        lr_u,
        lr_w,
    )?;
    let times = t.as_slice()?;
    if let Some(bad) = times.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        return Err(PyValueError::new_err(format!(
            "times must be finite and ≥ 0, got {bad}"
        )));
    }
    let states: Vec<_> = times.iter().map(|&ti| sol.at(ti)).collect();
    let d = PyDict::new(py);
    let col = |f: &dyn Fn(&featlab::theory::exact_linear_1d::State1d) -> f64| {
        states.iter().map(f).collect::<Vec<f64>>()
    };
    d.set_item("t", PyArray1::from_vec(py, col(&|s| s.t)))?;
    d.set_item("beta", PyArray1::from_vec(py, col(&|s| s.beta)))?;
    d.set_item("residual", PyArray1::from_vec(py, col(&|s| s.residual)))?;
    d.set_item("loss", PyArray1::from_vec(py, col(&|s| s.loss)))?;
    d.set_item("ntk", PyArray1::from_vec(py, col(&|s| s.ntk)))?;
    d.set_item("cos_angle", PyArray1::from_vec(py, col(&|s| s.cos_angle)))?;
    d.set_item("norm_u", PyArray1::from_vec(py, col(&|s| s.norm_u)))?;
    d.set_item("norm_w", PyArray1::from_vec(py, col(&|s| s.norm_w)))?;
    d.set_item("log_z", PyArray1::from_vec(py, col(&|s| s.log_z)))?;
    if vectors {
        let (mut us, mut ws) = (Vec::new(), Vec::new());
        for &ti in times {
            let (u, w) = sol
                .vectors_at(ti)
                .expect("built from vectors, so vectors are available");
            us.push(u);
            ws.push(w);
        }
        let dim = u0.as_slice()?.len();
        let to2 = |rows: Vec<Vec<f64>>| -> PyResult<Bound<'py, PyArray2<f64>>> {
            if rows.is_empty() {
                Ok(PyArray2::zeros(py, [0, dim], false))
            } else {
                PyArray2::from_vec2(py, &rows).map_err(|e| PyValueError::new_err(e.to_string()))
            }
        };
        d.set_item("u", to2(us)?)?;
        d.set_item("w", to2(ws)?)?;
    }
    d.set_item("s", sol.moments.s)?;
    d.set_item("k", sol.moments.k)?;
    d.set_item("loss_floor", sol.moments.loss_floor)?;
    Ok(d)
}

/// The t → ∞ order parameters of one initialisation (exact, no integration) as a dict.
#[pyfunction]
#[pyo3(signature = (x, y, u0, w0, gamma, lr_u, lr_w))]
#[allow(clippy::too_many_arguments)]
pub fn order_parameters<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    u0: PyReadonlyArray1<'py, f64>,
    w0: PyReadonlyArray1<'py, f64>,
    gamma: f64,
    lr_u: f64,
    lr_w: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let sol = solution(
        x.as_slice()?,
        y.as_slice()?,
        u0.as_slice()?,
        w0.as_slice()?,
        gamma,
        lr_u,
        lr_w,
    )?;
    let op = sol.order_parameters();
    let d = PyDict::new(py);
    d.set_item("kbar", op.kbar)?;
    d.set_item("beta0", op.beta0)?;
    d.set_item("beta_inf", op.beta_inf)?;
    d.set_item("rho0", op.rho0)?;
    d.set_item("ntk_rel_change", op.ntk_rel_change)?;
    d.set_item("log_z_plus", op.log_z_plus)?;
    d.set_item("cos0", op.cos0)?;
    d.set_item("cos_inf", op.cos_inf)?;
    d.set_item("log_norm_ratio_u", op.log_norm_ratio_u)?;
    d.set_item("log_norm_ratio_w", op.log_norm_ratio_w)?;
    Ok(d)
}

/// Phase-diagram cells, one per element of the (equal-length, already broadcast) 1-D
/// parameter arrays: medians over `replicates` random Gaussian inits of Δ = K(∞)/K(0) − 1,
/// |ln K(∞)/K(0)|, |ln z₊|, Δcos²∠(u, w), plus the analytic `boundary_log_ratio` =
/// ln(K̄_typical/|k|) and `kernel_exponent` e. Cell i draws from the stream
/// `(seed, "phase-cell-{i}")`. Runs with the GIL released.
#[pyfunction]
#[pyo3(signature = (width, gamma, sigma_u, sigma_w, lr, lr_ratio, s, k, gamma_exponent, sigma_u_exponent, sigma_w_exponent, lr_ratio_exponent, replicates, seed))]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub fn phase_cells<'py>(
    py: Python<'py>,
    width: PyReadonlyArray1<'py, f64>,
    gamma: PyReadonlyArray1<'py, f64>,
    sigma_u: PyReadonlyArray1<'py, f64>,
    sigma_w: PyReadonlyArray1<'py, f64>,
    lr: PyReadonlyArray1<'py, f64>,
    lr_ratio: PyReadonlyArray1<'py, f64>,
    s: PyReadonlyArray1<'py, f64>,
    k: PyReadonlyArray1<'py, f64>,
    gamma_exponent: PyReadonlyArray1<'py, f64>,
    sigma_u_exponent: PyReadonlyArray1<'py, f64>,
    sigma_w_exponent: PyReadonlyArray1<'py, f64>,
    lr_ratio_exponent: PyReadonlyArray1<'py, f64>,
    replicates: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = [
        width.as_slice()?,
        gamma.as_slice()?,
        sigma_u.as_slice()?,
        sigma_w.as_slice()?,
        lr.as_slice()?,
        lr_ratio.as_slice()?,
        s.as_slice()?,
        k.as_slice()?,
        gamma_exponent.as_slice()?,
        sigma_u_exponent.as_slice()?,
        sigma_w_exponent.as_slice()?,
        lr_ratio_exponent.as_slice()?,
    ];
    let n = cols[0].len();
    if cols.iter().any(|c| c.len() != n) {
        return Err(PyValueError::new_err(
            "shape mismatch: the phase-diagram parameters must broadcast to one shape",
        ));
    }
    if replicates == 0 {
        return Err(PyValueError::new_err("replicates must be ≥ 1"));
    }
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let wd = cols[0][i];
        if !(wd.is_finite() && wd >= 1.0 && wd.fract() == 0.0) {
            return Err(PyValueError::new_err(format!(
                "width must be a whole number ≥ 1, got {wd}"
            )));
        }
        if !(cols[4][i] > 0.0 && cols[5][i] > 0.0 && cols[6][i] > 0.0) {
            return Err(PyValueError::new_err(format!(
                "lr, lr_ratio and s must be > 0 (cell {i}: lr = {}, lr_ratio = {}, s = {})",
                cols[4][i], cols[5][i], cols[6][i]
            )));
        }
        points.push(PhasePoint {
            width: wd as usize,
            gamma: cols[1][i],
            sigma_u: cols[2][i],
            sigma_w: cols[3][i],
            lr: cols[4][i],
            lr_ratio: cols[5][i],
            s: cols[6][i],
            k: cols[7][i],
            exponents: ScalingExponents {
                gamma: cols[8][i],
                sigma_u: cols[9][i],
                sigma_w: cols[10][i],
                lr_ratio: cols[11][i],
            },
        });
    }
    let cells = py
        .detach(|| {
            points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut rng = stream(seed, &format!("phase-cell-{i}"));
                    evaluate_cell(p, replicates, &mut rng)
                })
                .collect::<featlab::Result<Vec<_>>>()
        })
        .map_err(lib_err)?;
    let d = PyDict::new(py);
    let put = |name: &str, v: Vec<f64>| d.set_item(name, PyArray1::from_vec(py, v));
    put(
        "ntk_rel_change",
        cells.iter().map(|c| c.ntk_rel_change).collect(),
    )?;
    put(
        "abs_log_ntk_ratio",
        cells.iter().map(|c| c.abs_log_ntk_ratio).collect(),
    )?;
    put(
        "abs_log_z_plus",
        cells.iter().map(|c| c.abs_log_z_plus).collect(),
    )?;
    put(
        "alignment_change",
        cells.iter().map(|c| c.alignment_change).collect(),
    )?;
    put(
        "boundary_log_ratio",
        points.iter().map(|p| p.boundary_log_ratio()).collect(),
    )?;
    put(
        "kernel_exponent",
        points
            .iter()
            .map(|p| p.exponents.kernel_exponent())
            .collect(),
    )?;
    Ok(d)
}
