//! `featlab.agf`: Alternating Gradient Flows (Kunin et al., arXiv 2506.06489, NeurIPS 2025;
//! `featlab::theory::agf`) on numpy data, for the architectures of the paper:
//!
//! | `model` | network | κ | neurons | default cost phase | solver defaults from |
//! |---|---|---|---|---|---|
//! | `diagonal` | β = u ⊙ v, f = βᵀx | 2 | coordinates (u_i, v_i) | least squares, sign-flip deactivation | `agf-diagonal` |
//! | `linear` | f = A W x | 2 | (W_i·, A_·i) | rank-k regression | `agf-linear` |
//! | `relu` | f = A ReLU(W x) | 2 | (W_i·, A_·i) | gradient flow | `agf-relu` |
//! | `quadratic`, `modular` | f = A (W x)² | 3 | (W_i·, A_·i) | gradient flow | `agf-modular` |
//! | `attention` | ŷ = Σ_h v_h (sᵀk_h)(x_qᵀq_h) | 3 | heads (v_h, k_h, q_h) | gradient flow | `agf-attention` |
//!
//! AGF alternates utility maximisation of the dormant neurons — on the unit sphere,
//! dθ̄_i/dt = ρ_i^{κ−2}(∇U_i − κŪ_iθ̄_i), dS_i/dt = κŪ_i with U_i(θ) = (1/n)Σ_n⟨f_i(x_n; θ), r_n⟩
//! and r = y − f_active — until the first neuron's accumulated utility S_i reaches its
//! threshold c_i (κ = 2: log(1/ρ0_i); κ > 2: ρ0_i^{2−κ}/(κ−2)), with cost minimisation of
//! C = (1/2n)Σ_n‖y_n − f_active(x_n)‖² over the active neurons. Time is gradient-flow time
//! of L = (1/2n)Σ‖f − y‖² (unit learning rate), as in `featlab.run`.
//!
//! Defaults (α, AGF and cost-phase options) are read from the matching preset's TOML, so
//! `featlab.agf.run` on a preset's data and initialisation repeats the preset's AGF bit for
//! bit; the initialisation drawn from `seed` follows the preset's formula.

use crate::convert::{ndarray_to_py, py_dict_to_table};
use crate::errors::lib_err;
use crate::job::detached;
use faer::Mat;
use featlab::config::{from_table, parse_toml};
use featlab::data::in_context::random_covariance;
use featlab::data::in_context::{population_sequences, principal_components, sample_sequences};
use featlab::data::modular::{modular_addition, Template};
use featlab::data::Dataset;
use featlab::experiments::param_arrays;
use featlab::model::diagonal::Diagonal;
use featlab::model::linear_attention::LinearAttention;
use featlab::model::two_layer::TwoLayer;
use featlab::model::{Activation, Model};
use featlab::rng::stream;
use featlab::theory::agf::features::{
    attention_head_feature, dominant_frequency, modular_neuron_spectrum,
};
use featlab::theory::agf::linear::{linear_theory, new_mode};
use featlab::theory::agf::on_data::{self, DataModel, DataNet};
use featlab::theory::agf::{
    run_agf, run_agf_diagonal, run_agf_two_layer, AgfOptions, AgfResult, AgfRound, CostChoice,
    GradientFlowCost,
};
use featlab::train::RunContext;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Deserialize;
use std::time::Instant;

/// The architectures `featlab.agf.run` supports.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arch {
    Diagonal,
    Linear,
    Relu,
    Quadratic,
    /// Quadratic net on modular-addition data (adds the dominant frequency as the feature).
    Modular,
    Attention,
}

impl Arch {
    fn parse(name: &str) -> PyResult<Self> {
        Ok(match name {
            "diagonal" => Arch::Diagonal,
            "linear" => Arch::Linear,
            "relu" => Arch::Relu,
            "quadratic" => Arch::Quadratic,
            "modular" => Arch::Modular,
            "attention" => Arch::Attention,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "featlab.agf.run: unknown model `{name}` (diagonal, linear, relu, quadratic, modular, attention)"
                )))
            }
        })
    }
    /// The preset whose `[agf]`/`[cost]` tables and α are this architecture's defaults.
    fn preset(self) -> &'static str {
        match self {
            Arch::Diagonal => "agf-diagonal",
            Arch::Linear => "agf-linear",
            Arch::Relu => "agf-relu",
            Arch::Quadratic | Arch::Modular => "agf-modular",
            Arch::Attention => "agf-attention",
        }
    }
}

/// AGF options and cost-phase options as one table, so that a misspelt key is reported as
/// `options.<key>` or `cost_options.<key>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    options: AgfOptions,
    cost_options: GradientFlowCost,
}

fn sub_table(t: &toml::Table, key: &str) -> toml::Table {
    t.get(key)
        .and_then(|v| v.as_table())
        .cloned()
        .unwrap_or_default()
}

/// (α, AGF options table, cost-phase table) of the architecture's preset.
///
/// `agf` presets keep α in `[problem]` and the gradient-flow cost in `[agf.flow_cost]`;
/// `agf_attention`/`agf_modular` keep α at the top level and the cost in `[cost]`, and cap the
/// AGF horizon at `train.t_max` (their experiments use min(agf.t_max, train.t_max)).
fn preset_defaults(arch: Arch) -> PyResult<(f64, toml::Table, toml::Table)> {
    let name = arch.preset();
    let text = featlab::presets::get(name)
        .ok_or_else(|| PyRuntimeError::new_err(format!("preset `{name}` is missing")))?;
    let t = parse_toml(text, &format!("preset `{name}`")).map_err(lib_err)?;
    let alpha_of = |v: Option<&toml::Value>| {
        v.and_then(|a| a.as_float())
            .ok_or_else(|| PyRuntimeError::new_err(format!("preset `{name}` has no alpha")))
    };
    let mut agf = sub_table(&t, "agf");
    match arch {
        Arch::Diagonal | Arch::Linear | Arch::Relu => {
            let alpha = alpha_of(sub_table(&t, "problem").get("alpha"))?;
            let cost = agf
                .remove("flow_cost")
                .and_then(|v| v.as_table().cloned())
                .unwrap_or_default();
            agf.remove("cost");
            Ok((alpha, agf, cost))
        }
        Arch::Quadratic | Arch::Modular | Arch::Attention => {
            let alpha = alpha_of(t.get("alpha"))?;
            let train_t_max = sub_table(&t, "train")
                .get("t_max")
                .and_then(|v| v.as_float());
            let agf_t_max = agf
                .get("t_max")
                .and_then(|v| v.as_float())
                .unwrap_or(AgfOptions::default().t_max);
            if let Some(tt) = train_t_max {
                agf.insert("t_max".into(), toml::Value::Float(agf_t_max.min(tt)));
            }
            Ok((alpha, agf, sub_table(&t, "cost")))
        }
    }
}

/// Merge the preset defaults and the user's options; validate.
fn resolve_options(
    arch: Arch,
    options: Option<&Bound<'_, PyDict>>,
    cost_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(f64, AgfOptions, GradientFlowCost)> {
    let (alpha, mut agf, mut cost) = preset_defaults(arch)?;
    if let Some(o) = options {
        agf.extend(py_dict_to_table(o, "options")?);
    }
    if let Some(o) = cost_options {
        cost.extend(py_dict_to_table(o, "cost_options")?);
    }
    let mut t = toml::Table::new();
    t.insert("options".into(), toml::Value::Table(agf));
    t.insert("cost_options".into(), toml::Value::Table(cost));
    let o: Options = from_table(&t).map_err(lib_err)?;
    let bad = |key: &str, msg: String| {
        Err(PyValueError::new_err(format!(
            "invalid configuration at `{key}`: {msg}"
        )))
    };
    let a = &o.options;
    if !(a.rtol.is_finite() && a.rtol > 0.0) {
        return bad("options.rtol", format!("must be > 0, got {}", a.rtol));
    }
    if !(a.atol.is_finite() && a.atol > 0.0) {
        return bad("options.atol", format!("must be > 0, got {}", a.atol));
    }
    if !(a.t_max.is_finite() && a.t_max > 0.0) {
        return bad("options.t_max", format!("must be > 0, got {}", a.t_max));
    }
    if a.max_rounds == 0 {
        return bad("options.max_rounds", "must be ≥ 1".into());
    }
    if let Some(dt) = a.fixed_dt {
        if !(dt.is_finite() && dt > 0.0) {
            return bad("options.fixed_dt", format!("must be > 0, got {dt}"));
        }
    }
    let c = &o.cost_options;
    for (k, v) in [
        ("rtol", c.rtol),
        ("atol", c.atol),
        ("gtol", c.gtol),
        ("t_max", c.t_max),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return bad(
                &format!("cost_options.{k}"),
                format!("must be > 0, got {v}"),
            );
        }
    }
    if let Some(dt) = c.fixed_dt {
        if !(dt.is_finite() && dt > 0.0) {
            return bad("cost_options.fixed_dt", format!("must be > 0, got {dt}"));
        }
    }
    Ok((alpha, o.options, o.cost_options))
}

fn to_mat(a: &PyReadonlyArray2<'_, f64>) -> Mat<f64> {
    let v = a.as_array();
    Mat::from_fn(v.nrows(), v.ncols(), |i, j| v[[i, j]])
}

/// The training set, checked by the library's [`on_data::checked_dataset`] (the same check
/// as the `agf` experiment's `[problem] kind = "files"`).
fn dataset(x: &PyReadonlyArray2<'_, f64>, y: &PyReadonlyArray2<'_, f64>) -> PyResult<Dataset> {
    on_data::checked_dataset(to_mat(x), to_mat(y), "x", "y").map_err(lib_err)
}

/// A built network.
enum Net {
    Diag(Diagonal),
    Two(TwoLayer),
    Attn(LinearAttention),
}

impl Net {
    fn model(&self) -> &dyn Model {
        match self {
            Net::Diag(m) => m,
            Net::Two(m) => m,
            Net::Attn(m) => m,
        }
    }
}

fn need(v: Option<usize>, name: &str, arch: &str) -> PyResult<usize> {
    match v {
        Some(k) if k >= 1 => Ok(k),
        Some(_) => Err(PyValueError::new_err(format!(
            "invalid configuration at `{name}`: must be ≥ 1"
        ))),
        None => Err(PyValueError::new_err(format!(
            "featlab.agf.run(\"{arch}\", ...) needs `{name}`"
        ))),
    }
}

fn build_net(
    arch: Arch,
    name: &str,
    data: &Dataset,
    width: Option<usize>,
    context: Option<usize>,
) -> PyResult<Net> {
    let (d, c) = (data.d(), data.c());
    Ok(match arch {
        Arch::Diagonal | Arch::Linear | Arch::Relu | Arch::Quadratic | Arch::Modular => {
            if arch == Arch::Modular && d != 2 * c {
                return Err(PyValueError::new_err(format!(
                    "shape mismatch: modular-addition data has 2p input and p output columns, got x with {d} and y with {c} (featlab.agf.modular_data builds it)"
                )));
            }
            if arch != Arch::Diagonal && width.is_none() {
                need(width, "width", name)?;
            }
            match on_data::build_net(data_model(arch), d, c, width, "width").map_err(lib_err)? {
                DataNet::Diag(m) => Net::Diag(m),
                DataNet::Two(m) => Net::Two(m),
            }
        }
        Arch::Attention => {
            let n = need(context, "context", name)?;
            let heads = need(width, "width", name)?;
            // input row: N(D+1) + D columns
            if d < n || (d - n) % (n + 1) != 0 || (d - n) / (n + 1) == 0 || c != 1 {
                return Err(PyValueError::new_err(format!(
                    "shape mismatch: attention rows are [x_1, y_1, …, x_N, y_N, x_query] with N(D+1) + D columns and one target; with context N = {n}, x has {d} columns and y {c}"
                )));
            }
            Net::Attn(LinearAttention::new((d - n) / (n + 1), n, heads))
        }
    })
}

/// The library's model of a non-attention architecture (modular = quadratic).
fn data_model(arch: Arch) -> DataModel {
    match arch {
        Arch::Diagonal => DataModel::Diagonal,
        Arch::Linear => DataModel::Linear,
        Arch::Relu => DataModel::Relu,
        _ => DataModel::Quadratic,
    }
}

/// The preset's initialisation at scale α from `stream(seed, "init")`.
fn default_init(arch: Arch, net: &Net, alpha: f64, seed: u64) -> Vec<f64> {
    let scaled = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x * alpha).collect() };
    match net {
        // agf-diagonal, agf-linear / agf-relu, agf-modular: the library's direction × α
        Net::Diag(m) => scaled(on_data::init_direction(
            DataModel::Diagonal,
            &DataNet::Diag(m.clone()),
            seed,
        )),
        Net::Two(m) => scaled(on_data::init_direction(
            data_model(arch),
            &DataNet::Two(m.clone()),
            seed,
        )),
        // agf-attention: v_h = α|g|, k_h, q_h = α g (the library's direction × α)
        Net::Attn(m) => m
            .init_direction(seed)
            .into_iter()
            .map(|g| alpha * g)
            .collect(),
    }
}

/// An explicit initialisation: a flat vector or a dict of blocks (as `Run.params_init`).
fn explicit_init(model: &dyn Model, init: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let p = model.num_params();
    let v: Vec<f64> = if let Ok(d) = init.cast::<PyDict>() {
        let mut v = vec![0.0; p];
        let names: Vec<String> = model.blocks().iter().map(|b| b.name.clone()).collect();
        for (k, _) in d.iter() {
            let k: String = k.extract()?;
            if !names.contains(&k) {
                return Err(PyValueError::new_err(format!(
                    "init: unknown block `{k}` (this model has {})",
                    names.join(", ")
                )));
            }
        }
        for b in model.blocks() {
            let a = d.get_item(&b.name)?.ok_or_else(|| {
                PyValueError::new_err(format!("init: block `{}` is missing", b.name))
            })?;
            let np = PyModule::import(init.py(), "numpy")?;
            let arr = np.call_method1("asarray", (a, "float64"))?;
            let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
            if shape != b.shape {
                return Err(PyValueError::new_err(format!(
                    "shape mismatch: init block `{}` has shape {shape:?}, the model needs {:?}",
                    b.name, b.shape
                )));
            }
            let flat: Vec<f64> = arr.call_method0("ravel")?.extract()?;
            v[b.range()].copy_from_slice(&flat);
        }
        v
    } else {
        let np = PyModule::import(init.py(), "numpy")?;
        let arr = np.call_method1("asarray", (init, "float64"))?;
        let ndim: usize = arr.getattr("ndim")?.extract()?;
        let flat: Vec<f64> = arr.call_method0("ravel")?.extract()?;
        if ndim != 1 || flat.len() != p {
            return Err(PyValueError::new_err(format!(
                "shape mismatch: init must be a dict of blocks or a flat vector of the model's {p} parameters, got shape {:?}",
                arr.getattr("shape")?.extract::<Vec<usize>>()?
            )));
        }
        flat
    };
    if let Some(j) = v.iter().position(|x| !x.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "init: parameter {j} = {} is not finite",
            v[j]
        )));
    }
    Ok(v)
}

/// How the cost phase is done.
#[derive(Clone, Copy, PartialEq)]
enum CostKind {
    Auto,
    GradientFlow,
}

fn run_engine(
    net: &Net,
    data: &Dataset,
    init: &[f64],
    cost: CostKind,
    opts: &AgfOptions,
    flow: &GradientFlowCost,
    ctx: &RunContext<'_>,
) -> featlab::Result<AgfResult> {
    let choice = match cost {
        CostKind::Auto => CostChoice::Auto(flow),
        CostKind::GradientFlow => CostChoice::GradientFlow(flow),
    };
    match net {
        Net::Diag(m) => run_agf_diagonal(m, data, init, choice, opts, ctx),
        Net::Two(m) => run_agf_two_layer(m, data, init, choice, opts, ctx),
        // on the summarised rows [s, x_{N+1}] (s = Σ_n y_n x_n computed once, as the
        // `agf_attention` preset does): bitwise the sequence model's run, without the
        // context sum in every gradient evaluation
        Net::Attn(m) => {
            let model = LinearAttention::on_summaries(m.dim, m.context, m.heads);
            let summaries = Dataset::new(m.summarise(data.x.as_ref())?, data.y.clone())?;
            run_agf(&model, &summaries, init, &mut flow.clone(), opts, ctx)
        }
    }
}

/// Per-round feature: (kind, values). Diagonal: the activated coordinate; linear: the
/// singular mode (0-based, decreasing μ) whose energy grew most; modular: the dominant
/// frequency k ≥ 1 of the activated neuron; attention: the principal component (1-based,
/// decreasing eigenvalue of the empirical query covariance, as the `agf_attention` preset
/// reports PCs) best aligned with the activated head's key and query; otherwise the
/// activated neuron.
fn features(arch: Arch, net: &Net, data: &Dataset, agf: &AgfResult) -> (&'static str, Vec<i64>) {
    let first = |k: usize| agf.rounds[k].activated[0];
    let neurons = || (0..agf.rounds.len()).map(|k| first(k) as i64).collect();
    match net {
        Net::Diag(_) => ("coordinate", neurons()),
        Net::Two(m) if m.activation == Activation::Linear => match linear_theory(data, m.width) {
            Ok(th) => (
                "mode",
                agf.rounds
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        let prev = k.checked_sub(1).map(|j| &agf.rounds[j].params[..]);
                        new_mode(&th.modes, m, &r.params, prev) as i64
                    })
                    .collect(),
            ),
            // e.g. a singular input covariance: no closed-form modes
            Err(_) => ("neuron", neurons()),
        },
        Net::Two(m) if arch == Arch::Modular => (
            "frequency",
            agf.rounds
                .iter()
                .map(|r| {
                    dominant_frequency(&modular_neuron_spectrum(m, &r.params, r.activated[0]))
                        as i64
                })
                .collect(),
        ),
        Net::Two(_) => ("neuron", neurons()),
        Net::Attn(m) => {
            let (dd, off) = (m.dim, m.query_offset());
            let n = data.n() as f64;
            let cov = Mat::from_fn(dd, dd, |a, b| {
                (0..data.n())
                    .map(|i| data.x[(i, off + a)] * data.x[(i, off + b)])
                    .sum::<f64>()
                    / n
            });
            let Ok((_, pcs)) = principal_components(cov.as_ref()) else {
                return ("neuron", neurons());
            };
            (
                "principal_component",
                agf.rounds
                    .iter()
                    .map(|r| attention_head_feature(m, &r.params, r.activated[0], &pcs) as i64)
                    .collect(),
            )
        }
    }
}

fn blocks_dict<'py>(
    py: Python<'py>,
    model: &dyn Model,
    params: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (rel, a) in param_arrays(model, params, "") {
        let name = rel
            .trim_start_matches('/')
            .trim_end_matches(".npy")
            .to_string();
        d.set_item(name, ndarray_to_py(py, a)?)?;
    }
    Ok(d)
}

fn matrix<'py>(
    py: Python<'py>,
    rows: &[Vec<f64>],
    ncols: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    PyArray1::from_vec(py, flat).reshape([rows.len(), ncols])
}

fn index_lists<'py>(
    py: Python<'py>,
    lists: impl Iterator<Item = Vec<usize>>,
) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        lists.map(|v| v.into_iter().map(|i| i as i64).collect::<Vec<_>>()),
    )
}

/// Low-level `featlab.agf.run` (the Python wrapper normalises arrays and options and wraps
/// the dict in an `AgfRun`). See the module docs and `featlab/agf.py`.
#[pyfunction]
#[pyo3(signature = (model, x, y, width=None, context=None, alpha=None, seed=0, init=None, cost="auto", options=None, cost_options=None, threads=1, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn run<'py>(
    py: Python<'py>,
    model: &str,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray2<'py, f64>,
    width: Option<usize>,
    context: Option<usize>,
    alpha: Option<f64>,
    seed: u64,
    init: Option<Bound<'py, PyAny>>,
    cost: &str,
    options: Option<&Bound<'py, PyDict>>,
    cost_options: Option<&Bound<'py, PyDict>>,
    threads: usize,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let arch = Arch::parse(model)?;
    let cost_kind = match cost {
        "auto" => CostKind::Auto,
        "gradient_flow" => CostKind::GradientFlow,
        _ => {
            return Err(PyValueError::new_err(format!(
                "invalid configuration at `cost`: `{cost}` (auto or gradient_flow)"
            )))
        }
    };
    let (preset_alpha, opts, flow) = resolve_options(arch, options, cost_options)?;
    let data = dataset(&x, &y)?;
    let net = build_net(arch, model, &data, width, context)?;
    let (init, alpha) = match (init, alpha) {
        (Some(_), Some(_)) => return Err(PyValueError::new_err(
            "give either `alpha` (the preset's initialisation at that scale) or `init`, not both",
        )),
        (Some(i), None) => (explicit_init(net.model(), &i)?, None),
        (None, a) => {
            let a = a.unwrap_or(preset_alpha);
            if !(a.is_finite() && a > 0.0) {
                return Err(PyValueError::new_err(format!(
                    "invalid configuration at `alpha`: must be a finite number > 0 (small initialisation), got {a}"
                )));
            }
            (default_init(arch, &net, a, seed), Some(a))
        }
    };
    let start = Instant::now();
    let agf = detached(py, threads, progress, |ctx| {
        run_engine(&net, &data, &init, cost_kind, &opts, &flow, ctx)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let (kind, feats) = features(arch, &net, &data, &agf);
    let m = net.model();
    let p = m.num_params();
    let h = agf.init_norms.len();

    let d = PyDict::new(py);
    d.set_item("model", model)?;
    d.set_item("alpha", alpha)?;
    d.set_item("seed", seed)?;
    d.set_item("kappa", agf.kappa)?;
    d.set_item("initial_loss", agf.initial_loss)?;
    d.set_item("jump_times", PyArray1::from_vec(py, agf.jump_times()))?;
    d.set_item("levels", PyArray1::from_vec(py, agf.levels()))?;
    d.set_item("feature", PyArray1::from_vec(py, feats))?;
    d.set_item("feature_kind", kind)?;
    let rounds = &agf.rounds;
    d.set_item(
        "activated",
        index_lists(py, rounds.iter().map(|r| r.activated.clone()))?,
    )?;
    d.set_item(
        "near_ties",
        index_lists(py, rounds.iter().map(|r| r.near_ties.clone()))?,
    )?;
    d.set_item(
        "deactivated",
        index_lists(py, rounds.iter().map(|r| r.deactivated.clone()))?,
    )?;
    d.set_item(
        "active",
        index_lists(py, rounds.iter().map(|r| r.active.clone()))?,
    )?;
    let per_neuron = m.num_params() / h.max(1);
    let dirs = PyList::empty(py);
    for r in rounds {
        let cols = r.directions.first().map_or(per_neuron, Vec::len);
        dirs.append(matrix(py, &r.directions, cols)?)?;
    }
    d.set_item("directions", dirs)?;
    let params: Vec<Vec<f64>> = rounds.iter().map(|r| r.params.clone()).collect();
    d.set_item("params", matrix(py, &params, p)?)?;
    d.set_item("init", PyArray1::from_vec(py, init.clone()))?;
    d.set_item("params_init", blocks_dict(py, m, &init)?)?;
    let last = rounds
        .last()
        .map_or_else(|| vec![0.0; p], |r| r.params.clone());
    d.set_item("params_final", blocks_dict(py, m, &last)?)?;
    if let Net::Diag(dm) = &net {
        let betas: Vec<Vec<f64>> = rounds
            .iter()
            .map(|r| {
                (0..dm.d)
                    .map(|i| r.params[i] * r.params[dm.d + i])
                    .collect()
            })
            .collect();
        d.set_item("beta", matrix(py, &betas, dm.d)?)?;
    }
    d.set_item("init_norms", PyArray1::from_vec(py, agf.init_norms.clone()))?;
    d.set_item("thresholds", PyArray1::from_vec(py, agf.thresholds.clone()))?;
    d.set_item("final_utility", PyArray1::from_vec(py, agf.final_s.clone()))?;
    d.set_item(
        "utility_steps",
        PyArray1::from_vec(
            py,
            rounds.iter().map(|r| r.utility_steps).collect::<Vec<_>>(),
        ),
    )?;
    d.set_item(
        "utility_evals",
        PyArray1::from_vec(
            py,
            rounds.iter().map(|r| r.utility_evals).collect::<Vec<_>>(),
        ),
    )?;
    d.set_item(
        "cost_work",
        PyArray1::from_vec(py, rounds.iter().map(|r| r.cost_work).collect::<Vec<_>>()),
    )?;
    d.set_item(
        "cost_converged",
        PyArray1::from_vec(
            py,
            rounds.iter().map(|r| r.cost_converged).collect::<Vec<_>>(),
        ),
    )?;
    // why each cost phase ended, and how far it got (NaN where not applicable)
    d.set_item(
        "cost_stop",
        rounds
            .iter()
            .map(|r| {
                serde_json::to_value(r.cost_stop)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>(),
    )?;
    let per_round = |f: fn(&AgfRound) -> Option<f64>| {
        PyArray1::from_vec(
            py,
            rounds.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect(),
        )
    };
    d.set_item("cost_level_change", per_round(|r| r.cost_level_change))?;
    d.set_item("cost_grad_norm", per_round(|r| r.cost_grad_norm))?;
    d.set_item("cost_time", per_round(|r| r.cost_time))?;
    d.set_item("trace_t", PyArray1::from_vec(py, agf.trace.t.clone()))?;
    d.set_item("trace_norms", matrix(py, &agf.trace.norms, h)?)?;
    d.set_item(
        "stop",
        serde_json::to_value(agf.stop)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    )?;
    d.set_item("cost_minimizer", &agf.cost_name)?;
    d.set_item(
        "options_json",
        serde_json::json!({"options": opts, "cost_options": flow}).to_string(),
    )?;
    d.set_item("seconds", seconds)?;
    Ok(d)
}

/// Modular-addition data for a template: all p² pairs, x = (a·t, b·t) (p² × 2p), y =
/// ((a+b) mod p)·t (p² × p). `template` is a vector, or a dict as the `agf_modular`
/// preset's `template` (`kind` = `one_hot` | `fourier` | `gaussian`) built with modulus `p`
/// from `stream(seed, "template")`. Returns (x, y, template).
#[pyfunction]
#[pyo3(signature = (template, p=None, seed=0))]
pub fn modular_data<'py>(
    py: Python<'py>,
    template: &Bound<'py, PyAny>,
    p: Option<usize>,
    seed: u64,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let t: Vec<f64> = if let Ok(d) = template.cast::<PyDict>() {
        let p = p.ok_or_else(|| {
            PyValueError::new_err("featlab.agf.modular_data: a template dict needs the modulus `p`")
        })?;
        let mut tbl = toml::Table::new();
        tbl.insert(
            "template".into(),
            toml::Value::Table(py_dict_to_table(d, "template")?),
        );
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct T {
            template: Template,
        }
        let tt: T = from_table(&tbl).map_err(lib_err)?;
        tt.template
            .build(p, &mut stream(seed, "template"))
            .map_err(lib_err)?
    } else {
        let v: Vec<f64> = template.extract()?;
        if let Some(pp) = p {
            if pp != v.len() {
                return Err(PyValueError::new_err(format!(
                    "shape mismatch: p = {pp} but the template has {} entries",
                    v.len()
                )));
            }
        }
        if v.len() < 2 || v.iter().any(|x| !x.is_finite()) {
            return Err(PyValueError::new_err(
                "the template must have at least 2 finite entries",
            ));
        }
        v
    };
    let data = modular_addition(&t).map_err(lib_err)?;
    Ok((
        ndarray_to_py(py, featlab::NdArray::from_mat(data.x.as_ref()))?,
        ndarray_to_py(py, featlab::NdArray::from_mat(data.y.as_ref()))?,
        ndarray_to_py(py, featlab::NdArray::vector(t))?,
    ))
}

/// In-context linear-regression data for the attention model, as the `agf_attention`
/// preset builds it: Σ = Q diag(λ) Qᵀ with Q random orthogonal from `stream(seed, "sigma")`
/// (λ rescaled to sum to `trace` when given); `samples = None` gives the D² + 1
/// moment-matched sequences whose ½-MSE is the exact population loss, else `samples` i.i.d.
/// sequences from `stream(seed, "data")`. Returns (x, y, Σ).
#[pyfunction]
#[pyo3(signature = (eigenvalues, context, seed=0, trace=None, samples=None))]
pub fn attention_data<'py>(
    py: Python<'py>,
    eigenvalues: Vec<f64>,
    context: usize,
    seed: u64,
    trace: Option<f64>,
    samples: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let lam: Vec<f64> = match trace {
        Some(t) => {
            let s: f64 = eigenvalues.iter().sum();
            if !(t.is_finite() && t > 0.0 && s > 0.0) {
                return Err(PyValueError::new_err(format!(
                    "need trace > 0 and eigenvalues with a positive sum, got trace {t} and sum {s}"
                )));
            }
            eigenvalues.iter().map(|l| l * t / s).collect()
        }
        None => eigenvalues,
    };
    let sigma = random_covariance(&mut stream(seed, "sigma"), &lam).map_err(lib_err)?;
    let data = match samples {
        None => population_sequences(sigma.as_ref(), context),
        Some(0) => {
            return Err(PyValueError::new_err(
                "invalid configuration at `samples`: must be ≥ 1",
            ))
        }
        Some(n) => {
            if context == 0 {
                return Err(PyValueError::new_err(
                    "invalid configuration at `context`: context length N must be ≥ 1",
                ));
            }
            sample_sequences(&mut stream(seed, "data"), sigma.as_ref(), context, n)
        }
    }
    .map_err(lib_err)?;
    Ok((
        ndarray_to_py(py, featlab::NdArray::from_mat(data.x.as_ref()))?,
        ndarray_to_py(py, featlab::NdArray::from_mat(data.y.as_ref()))?,
        ndarray_to_py(py, featlab::NdArray::from_mat(sigma.as_ref()))?,
    ))
}
