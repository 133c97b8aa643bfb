//! `featlab.nfa`: the Neural Feature Ansatz metrics (`featlab::theory::nfa`) on numpy
//! weights and inputs, for any layered model `f(x) = h_L`, `h_l = m_l W_l x_l + b_l`,
//! `x_{l+1} = σ(h_l)` (σ after every layer but the last).
//!
//! * NFM `W_lᵀW_l`; AGOP `G_l = (1/n) Σ_i J_l(x_i)ᵀ J_l(x_i)` with `J_l = ∂f/∂x_l`
//!   (outputs summed; Radhakrishnan et al. 2024); PTK `K_l = (1/n) Σ_i P_lᵀP_l`,
//!   `P_l = ∂f/∂h_l`, so `G_l = m_l² W_lᵀ K_l W_l` (Beaglehole et al. 2024).
//! * NFA correlation `ρ(W_lᵀW_l, G_l^α)`, best-fit α, UC-NFC `ρ(WᵀW, WᵀKW)`,
//!   C-NFC `ρ(ΔWᵀΔW, ΔWᵀKΔW)` with ΔW = W − W₀.

use crate::errors::lib_err;
use faer::{Mat, MatRef, Par};
use featlab::theory::nfa::metrics::{alpha_by_spectrum, nfm, PsdPower};
use featlab::theory::nfa::network::parse_activation;
use featlab::theory::nfa::{
    self, layer_gradients, AgopOptions, Correlation, NfaOptions, TrainedNetwork,
};
use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A list of numpy matrices.
type Matrices<'py> = Vec<Bound<'py, PyArray2<f64>>>;

fn mat(a: &PyReadonlyArray2<'_, f64>) -> Mat<f64> {
    let v = a.as_array();
    Mat::from_fn(v.nrows(), v.ncols(), |i, j| v[[i, j]])
}

fn to_py<'py>(py: Python<'py>, m: MatRef<'_, f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (r, c) = (m.nrows(), m.ncols());
    let data: Vec<f64> = (0..r * c)
        .map(|k| m[(k / c.max(1), k % c.max(1))])
        .collect();
    numpy::PyArray1::from_vec(py, data).reshape([r, c])
}

fn correlation_kind(name: &str) -> PyResult<Correlation> {
    match name {
        "pearson" => Ok(Correlation::Pearson),
        "cosine" => Ok(Correlation::Cosine),
        _ => Err(PyValueError::new_err(format!(
            "invalid configuration at `correlation`: `{name}` (pearson or cosine)"
        ))),
    }
}

/// The network of weights W_1..W_L (with optional biases and multipliers), checked by the
/// library's [`TrainedNetwork`] (the same one `featlab nfa` builds from a weight file).
fn network(
    weights: &[PyReadonlyArray2<'_, f64>],
    biases: Option<Vec<Option<PyReadonlyArray1<'_, f64>>>>,
    mults: Option<Vec<f64>>,
    act: &str,
) -> PyResult<TrainedNetwork> {
    let biases = match biases {
        None => None,
        Some(b) => Some(
            b.into_iter()
                .map(|bl| bl.map(|v| v.as_slice().map(|s| s.to_vec())).transpose())
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let activation = parse_activation(act, "activation").map_err(lib_err)?;
    TrainedNetwork::new(
        None,
        weights.iter().map(mat).collect(),
        biases,
        mults,
        activation,
    )
    .map_err(lib_err)
}

/// AGOPs `G_l` (d_l × d_l) and PTKs `K_l` (k_l × k_l) of every layer over the rows of `x`.
#[pyfunction]
#[pyo3(signature = (weights, x, activation, biases, mults, center, batch))]
#[allow(clippy::too_many_arguments)]
pub fn agop<'py>(
    py: Python<'py>,
    weights: Vec<PyReadonlyArray2<'py, f64>>,
    x: PyReadonlyArray2<'py, f64>,
    activation: &str,
    biases: Option<Vec<Option<PyReadonlyArray1<'py, f64>>>>,
    mults: Option<Vec<f64>>,
    center: bool,
    batch: usize,
) -> PyResult<(Matrices<'py>, Matrices<'py>)> {
    let net = network(&weights, biases, mults, activation)?;
    let xm = mat(&x);
    net.check_inputs(xm.as_ref()).map_err(lib_err)?;
    let opts = AgopOptions {
        batch,
        center,
        par: Par::Seq,
    };
    let g = py
        .detach(|| layer_gradients(&net.view(), xm.as_ref(), &opts))
        .map_err(lib_err)?;
    let a = g
        .agop
        .iter()
        .map(|m| to_py(py, m.as_ref()))
        .collect::<PyResult<_>>()?;
    let k = g
        .ptk
        .iter()
        .map(|m| to_py(py, m.as_ref()))
        .collect::<PyResult<_>>()?;
    Ok((a, k))
}

/// Per-layer NFA metrics (see `featlab.nfa.measure`) plus the AGOP/PTK matrices.
#[pyfunction]
#[pyo3(signature = (weights, x, init_weights, activation, biases, mults, alpha, correlation, center, batch, alpha_min, alpha_max))]
#[allow(clippy::too_many_arguments)]
pub fn measure<'py>(
    py: Python<'py>,
    weights: Vec<PyReadonlyArray2<'py, f64>>,
    x: PyReadonlyArray2<'py, f64>,
    init_weights: Option<Vec<PyReadonlyArray2<'py, f64>>>,
    activation: &str,
    biases: Option<Vec<Option<PyReadonlyArray1<'py, f64>>>>,
    mults: Option<Vec<f64>>,
    alpha: f64,
    correlation: &str,
    center: bool,
    batch: usize,
    alpha_min: f64,
    alpha_max: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let net = network(&weights, biases, mults, activation)?;
    let xm = mat(&x);
    let init: Option<Vec<Mat<f64>>> = init_weights.map(|ws| ws.iter().map(mat).collect());
    let opts = NfaOptions {
        alpha,
        correlation: correlation_kind(correlation)?,
        center_agop: center,
        batch,
        alpha_min,
        alpha_max,
        samples: None,
    };
    opts.validate("nfa").map_err(lib_err)?;
    let m = py
        .detach(|| net.measure(init.as_deref(), xm.as_ref(), &opts, Par::Seq))
        .map_err(lib_err)?;
    let d = PyDict::new(py);
    let col = |f: &dyn Fn(&nfa::LayerMetrics) -> f64| m.layers.iter().map(f).collect::<Vec<f64>>();
    d.set_item("nfm_agop_corr", col(&|l| l.nfm_agop_corr))?;
    d.set_item("alpha_fit", col(&|l| l.alpha_fit))?;
    d.set_item("alpha_fit_corr", col(&|l| l.alpha_fit_corr))?;
    d.set_item("alpha_spectrum", col(&|l| l.alpha_spectrum))?;
    d.set_item("uc_nfc", col(&|l| l.uc_nfc))?;
    d.set_item("c_nfc", col(&|l| l.c_nfc))?;
    d.set_item("rel_change", col(&|l| l.rel_change))?;
    let a: Vec<_> = m
        .grads
        .agop
        .iter()
        .map(|g| to_py(py, g.as_ref()))
        .collect::<PyResult<_>>()?;
    let k: Vec<_> = m
        .grads
        .ptk
        .iter()
        .map(|g| to_py(py, g.as_ref()))
        .collect::<PyResult<_>>()?;
    d.set_item("agop", a)?;
    d.set_item("ptk", k)?;
    Ok(d)
}

/// Neural feature matrix WᵀW.
#[pyfunction(name = "nfm")]
pub fn nfm_py<'py>(
    py: Python<'py>,
    w: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    to_py(py, nfm(mat(&w).as_ref()).as_ref())
}

/// ρ(A, B), Pearson of the flattened matrices or cosine.
#[pyfunction(name = "correlation")]
pub fn correlation_py(
    a: PyReadonlyArray2<'_, f64>,
    b: PyReadonlyArray2<'_, f64>,
    kind: &str,
) -> PyResult<f64> {
    let (a, b) = (mat(&a), mat(&b));
    if (a.nrows(), a.ncols()) != (b.nrows(), b.ncols()) {
        return Err(PyValueError::new_err(format!(
            "shape mismatch: {}×{} vs {}×{}",
            a.nrows(),
            a.ncols(),
            b.nrows(),
            b.ncols()
        )));
    }
    Ok(nfa::correlation(
        a.as_ref(),
        b.as_ref(),
        correlation_kind(kind)?,
    ))
}

fn square_pair(a: &Mat<f64>, b: &Mat<f64>) -> PyResult<()> {
    let n = a.nrows();
    if a.ncols() != n || b.nrows() != n || b.ncols() != n {
        return Err(PyValueError::new_err(
            "shape mismatch: the NFM and the AGOP must be square matrices of the same size",
        ));
    }
    Ok(())
}

/// ρ(NFM, G^α) for each α in `alphas`.
#[pyfunction]
pub fn nfa_correlation(
    nfm: PyReadonlyArray2<'_, f64>,
    agop: PyReadonlyArray2<'_, f64>,
    alphas: Vec<f64>,
    kind: &str,
) -> PyResult<Vec<f64>> {
    let (f, g) = (mat(&nfm), mat(&agop));
    square_pair(&f, &g)?;
    let pp = PsdPower::new(g.as_ref()).map_err(lib_err)?;
    let c = pp.correlator(f.as_ref(), correlation_kind(kind)?);
    Ok(alphas.iter().map(|&a| c.corr(a)).collect())
}

/// Best-fit α: (argmax over [lo, hi] of ρ(NFM, G^α), the ρ there, the log-spectrum slope).
#[pyfunction]
pub fn alpha_fit(
    nfm: PyReadonlyArray2<'_, f64>,
    agop: PyReadonlyArray2<'_, f64>,
    lo: f64,
    hi: f64,
    kind: &str,
) -> PyResult<(f64, f64, f64)> {
    let (f, g) = (mat(&nfm), mat(&agop));
    square_pair(&f, &g)?;
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "need 0 < alpha_min < alpha_max, got {lo} and {hi}"
        )));
    }
    let pp = PsdPower::new(g.as_ref()).map_err(lib_err)?;
    let (a, r) = pp
        .correlator(f.as_ref(), correlation_kind(kind)?)
        .argmax(lo, hi);
    let spec = alpha_by_spectrum(f.as_ref(), g.as_ref(), 1e-8).map_err(lib_err)?;
    Ok((a, r, spec))
}
