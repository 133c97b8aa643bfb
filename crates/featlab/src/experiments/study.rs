//! The shape every study takes: typed config → **simulate** → **predict** → **compare** →
//! **outputs** (issue #21; `docs/adding-a-study.md` walks through one).
//!
//! A [`Study`] names each step with its own typed value, so what the experiment measured,
//! what the theory predicts and how the two are judged are separate functions that can be
//! read, tested and reused on their own:
//!
//! * `Config` — serde, unknown keys refused (`#[serde(deny_unknown_fields)]`); resolved and
//!   validated once, in [`Study::resolve`]; run.json records the resolved form.
//! * [`Study::simulate`] — the real training, through the one runner (`train::run`): no
//!   private loops, so cancellation, divergence detection and progress come for free.
//! * [`Study::predict`] — theory as a function of the simulation's own time axis and inputs
//!   (à la neural-tangents' `predict(t)`); it never trains anything.
//! * [`Study::compare`] — the rows of run.json's `summary.agreement`
//!   ([`crate::compare::AgreementRow`]; conventions in [`crate::compare`]).
//! * [`Study::outputs`] — the typed summary (its own fields beside the shared `agreement`
//!   section), trajectory, figures, arrays, tables and notes.
//!
//! A blanket impl makes every `Study` an [`Experiment`], so adding one to
//! [`super::registry`] is one line.

use super::{Experiment, RunOutput};
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::train::RunContext;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One study of a paper: see the module docs.
pub trait Study: Sync {
    /// The study's typed config (the whole TOML document, `experiment` key included).
    type Config: Serialize + DeserializeOwned;
    /// What the experiment measured (trajectories, final parameters, solver counters).
    type Simulation;
    /// What the theory predicts, on the simulation's time axis / inputs.
    type Prediction;

    /// The value of the config's `experiment` key.
    const NAME: &'static str;
    /// One line for `featlab list` and `--help`.
    const ABOUT: &'static str;

    /// Fill defaults and validate, once; errors name the config key.
    fn resolve(&self, cfg: &mut Self::Config) -> Result<()>;
    /// Run the experiment.
    fn simulate(&self, cfg: &Self::Config, ctx: &RunContext<'_>) -> Result<Self::Simulation>;
    /// Compute the theory's prediction for this simulation (`ctx` for cancellation,
    /// progress and threads: numerical theory such as AGF can cost as much as training).
    fn predict(
        &self,
        cfg: &Self::Config,
        sim: &Self::Simulation,
        ctx: &RunContext<'_>,
    ) -> Result<Self::Prediction>;
    /// Theory vs experiment, one row per compared quantity.
    fn compare(
        &self,
        cfg: &Self::Config,
        sim: &Self::Simulation,
        pred: &Self::Prediction,
    ) -> Vec<AgreementRow>;
    /// Everything else the run writes: typed summary, trajectory, figures, arrays, notes.
    /// `agreement` and `config` of the returned [`StudyOutputs`] are filled by the caller.
    fn outputs(
        &self,
        cfg: &Self::Config,
        sim: Self::Simulation,
        pred: Self::Prediction,
    ) -> Result<StudyOutputs>;
}

/// The outputs of [`Study::outputs`]: a [`RunOutput`] whose summary comes from a typed
/// struct ([`StudyOutputs::summary`]) rather than string-keyed inserts.
pub type StudyOutputs = RunOutput;

/// A typed summary as run.json's `summary` object (the `agreement` section is added by the
/// writer from [`RunOutput::agreement`]). Fails if `summary` does not serialise to a JSON
/// object (a study's summary is a struct).
pub fn summary_map<T: Serialize>(
    summary: &T,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(summary) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::Numerical(format!(
            "a study summary must serialise to a JSON object, got {other}"
        ))),
        Err(e) => Err(Error::Numerical(format!(
            "cannot serialise the study summary: {e}"
        ))),
    }
}

impl<S: Study> Experiment for S {
    fn name(&self) -> &'static str {
        S::NAME
    }
    fn about(&self) -> &'static str {
        S::ABOUT
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let mut cfg: S::Config = from_table(table)?;
        Study::resolve(self, &mut cfg)?;
        to_table(&cfg)
    }
    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: S::Config = from_table(resolved)?;
        run_study(self, &cfg, resolved.clone(), ctx)
    }
    /// One parse instead of two (parse, resolve, serialise, parse again): the config run is
    /// the one the resolved table was serialised from (the train study's
    /// `resolved_config_round_trips` test checks they are the same config).
    fn resolve_and_run(&self, table: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let mut cfg: S::Config = from_table(table)?;
        Study::resolve(self, &mut cfg)?;
        let resolved = to_table(&cfg)?;
        run_study(self, &cfg, resolved, ctx)
    }
}

/// Simulate, predict, compare and write the outputs of `cfg`, whose resolved table
/// (run.json's `config`) is `resolved`.
fn run_study<S: Study>(
    s: &S,
    cfg: &S::Config,
    resolved: toml::Table,
    ctx: &RunContext<'_>,
) -> Result<RunOutput> {
    let sim = s.simulate(cfg, ctx)?;
    let pred = s.predict(cfg, &sim, ctx)?;
    let agreement = s.compare(cfg, &sim, &pred);
    let mut out = s.outputs(cfg, sim, pred)?;
    out.config = resolved;
    out.agreement = agreement;
    Ok(out)
}
