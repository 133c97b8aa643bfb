//! Experiments: config → simulate + predict → compare → results.
//!
//! Each experiment kind (selected by the config's top-level `experiment` key) parses its
//! own typed config (unknown keys rejected), fills defaults ("resolves"), runs, and returns
//! a [`RunOutput`] that the output writer turns into the files of the run contract.

pub mod agf;
pub mod exact_linear_1d;
pub mod group_agf;
pub mod group_rnn;
pub mod nfa;
pub mod rfm;
pub mod study;
pub mod train;
pub mod unlearning;

use crate::figure::Figure;
use crate::train::{RunContext, Trajectory};
use crate::{Error, NdArray, Result};

/// An additional CSV table of a run (e.g. per-drop comparison rows).
#[derive(Debug, Clone)]
pub struct CsvTable {
    /// File stem: written as `<name>.csv` in the run directory.
    pub name: String,
    pub columns: Vec<String>,
    /// Column-major values: `values[j]` is column j.
    pub values: Vec<Vec<f64>>,
}

/// Everything a run produces, before it is written to disk.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// The fully resolved config (defaults filled) as a TOML table.
    pub config: toml::Table,
    /// The seed actually used.
    pub seed: u64,
    /// Summary metrics (run.json "summary").
    pub summary: serde_json::Map<String, serde_json::Value>,
    /// Recorded trajectory (trajectory.csv): column `t` first, `loss`, theory columns end in `_theory`.
    pub trajectory: Trajectory,
    /// Arrays keyed by relative path (`data/x.npy`, `params/init/W1.npy`, …).
    pub arrays: Vec<(String, NdArray)>,
    /// Figures of the run (rendered by the CLI into `plots/`).
    pub figures: Vec<Figure>,
    /// Extra CSV tables.
    pub tables: Vec<CsvTable>,
    /// Remarks for the report (disagreements, caveats).
    pub notes: Vec<String>,
    /// Theory vs experiment, one row per compared quantity (run.json `summary.agreement`).
    pub agreement: Vec<crate::compare::AgreementRow>,
}

/// An experiment kind.
pub trait Experiment: Sync {
    /// The value of the `experiment` key selecting it.
    fn name(&self) -> &'static str;
    /// One line for `featlab list` / `--help`.
    fn about(&self) -> &'static str;
    /// Parse, validate and fill defaults; the result is what run.json records as `config`.
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table>;
    /// Run a resolved config.
    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput>;
    /// [`Experiment::resolve`] then [`Experiment::run`]; experiments may do it with one
    /// parse of the config (what a sweep's points and `run_table` call).
    fn resolve_and_run(&self, table: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let resolved = self.resolve(table)?;
        self.run(&resolved, ctx)
    }
}

/// All experiment kinds.
pub fn registry() -> Vec<&'static dyn Experiment> {
    vec![
        &train::TrainExperiment,
        &unlearning::UnlearningExperiment,
        &exact_linear_1d::trajectory::Exact1dExperiment,
        &exact_linear_1d::phase::PhaseExperiment,
        &exact_linear_1d::mechanisms::MechanismsExperiment,
        &exact_linear_1d::deep_real::DeepRealExperiment,
        &nfa::NfaExperiment,
        &rfm::RfmExperiment,
        &agf::two_layer::AgfExperiment,
        &agf::attention::AgfAttentionExperiment,
        &agf::modular::AgfModularExperiment,
        &group_agf::GroupAgfExperiment,
        &group_rnn::GroupRnnExperiment,
    ]
}

/// The experiment named by the table's `experiment` key (default `train`).
pub fn select(table: &toml::Table) -> Result<&'static dyn Experiment> {
    let name = match table.get("experiment") {
        None => "train",
        Some(toml::Value::String(s)) => s.as_str(),
        Some(v) => {
            return Err(Error::config(
                "experiment",
                format!("must be a string, got {v}"),
            ))
        }
    };
    registry()
        .into_iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = registry().iter().map(|e| e.name()).collect();
            Error::config(
                "experiment",
                format!("unknown experiment `{name}`; known: {}", names.join(", ")),
            )
        })
}

/// Resolve and run a config table (its `[quick]` table, if any, is ignored).
pub fn run_table(table: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
    let table = crate::config::prepare(table.clone(), false)?;
    select(&table)?.resolve_and_run(&table, ctx)
}

/// Flat parameters → one array per block, keyed `"{prefix}/{block}.npy"`.
pub fn param_arrays(
    model: &dyn crate::model::Model,
    params: &[f64],
    prefix: &str,
) -> Vec<(String, NdArray)> {
    model
        .blocks()
        .iter()
        .map(|b| {
            (
                format!("{prefix}/{}.npy", b.name),
                NdArray::new(b.shape.clone(), params[b.range()].to_vec()),
            )
        })
        .collect()
}
