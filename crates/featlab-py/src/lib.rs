//! `featlab._featlab`: the native part of the `featlab` Python package (pyo3, abi3 for
//! CPython ≥ 3.9). The user-facing API (`featlab.run`, `featlab.load_run`, the `Run`
//! object) lives in `python/featlab/__init__.py` over these functions; see
//! `docs/python.md`.
//!
//! Depends on the `featlab-cli` crate's library (not its binary) for
//! `featlab_output::write::write_all`, so that `featlab.run(..., out=DIR)` writes the very
//! files of `featlab run --out DIR` (plots, report.html included), and for the CLI's
//! config loading, so errors read the same.

mod agf;
mod convert;
mod errors;
mod exact_linear_1d;
mod groups;
mod job;
mod load;
mod nfa;
mod run;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `(name, description)` of every embedded preset, sorted by name.
#[pyfunction]
fn presets() -> Vec<(String, String)> {
    featlab::presets::names()
        .into_iter()
        .map(|n| (n.to_string(), featlab::presets::describe(n)))
        .collect()
}

/// The TOML text of a preset (what `featlab show NAME` prints).
#[pyfunction]
fn show(name: &str) -> PyResult<String> {
    featlab::presets::get(name)
        .map(str::to_string)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "no preset named `{name}`; featlab.presets() lists them"
            ))
        })
}

/// A preset (or TOML text) as JSON text, for `featlab.preset_config` (Python's json turns it
/// into a dict to edit and pass back to `featlab.run`).
#[pyfunction]
fn toml_to_json(text: &str, origin: &str) -> PyResult<String> {
    let table = featlab::config::parse_toml(text, origin).map_err(errors::lib_err)?;
    Ok(featlab::config::table_to_json(&table).to_string())
}

#[pymodule]
fn _featlab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", featlab::output::VERSION)?;
    m.add(
        "DivergenceError",
        m.py().get_type::<errors::DivergenceError>(),
    )?;
    m.add_function(wrap_pyfunction!(run::run, m)?)?;
    m.add_function(wrap_pyfunction!(load::load_run, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(show, m)?)?;
    m.add_function(wrap_pyfunction!(toml_to_json, m)?)?;
    let e1d = PyModule::new(m.py(), "exact_linear_1d")?;
    e1d.add_function(wrap_pyfunction!(exact_linear_1d::solve, &e1d)?)?;
    e1d.add_function(wrap_pyfunction!(exact_linear_1d::order_parameters, &e1d)?)?;
    e1d.add_function(wrap_pyfunction!(exact_linear_1d::phase_cells, &e1d)?)?;
    m.add_submodule(&e1d)?;
    let nfa_m = PyModule::new(m.py(), "nfa")?;
    nfa_m.add_function(wrap_pyfunction!(nfa::agop, &nfa_m)?)?;
    nfa_m.add_function(wrap_pyfunction!(nfa::measure, &nfa_m)?)?;
    nfa_m.add_function(wrap_pyfunction!(nfa::nfm_py, &nfa_m)?)?;
    nfa_m.add_function(wrap_pyfunction!(nfa::correlation_py, &nfa_m)?)?;
    nfa_m.add_function(wrap_pyfunction!(nfa::nfa_correlation, &nfa_m)?)?;
    nfa_m.add_function(wrap_pyfunction!(nfa::alpha_fit, &nfa_m)?)?;
    m.add_submodule(&nfa_m)?;
    let agf_m = PyModule::new(m.py(), "agf")?;
    agf_m.add_function(wrap_pyfunction!(agf::run, &agf_m)?)?;
    agf_m.add_function(wrap_pyfunction!(agf::modular_data, &agf_m)?)?;
    agf_m.add_function(wrap_pyfunction!(agf::attention_data, &agf_m)?)?;
    m.add_submodule(&agf_m)?;
    let groups_m = PyModule::new(m.py(), "groups")?;
    groups_m.add_function(wrap_pyfunction!(groups::group, &groups_m)?)?;
    groups_m.add_class::<groups::NativeGroup>()?;
    m.add_submodule(&groups_m)?;
    Ok(())
}
